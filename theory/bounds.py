"""The paper's W2SG bounds as functions: C4 (generalisation limit) and C6 (sample complexity).

C4 (triangle inequality, C3, Jensen with the concave ``L̆_f⁻¹``)::

    |err(F_sw) − err(F_w)| ≤ E_x TV(F_sw, F_w) ≤ L̆_f⁻¹(R_f(F_sw, F_w))

C6: the binary loss ``ℓ_f(s, w) = w f(s/w) + (1−w) f((1−s)/(1−w))`` on ``[γ, 1−γ]²``.
``ℓ_f`` is jointly convex, so its maximum over the box is at a vertex:
``B_f(γ) = max(ℓ_f(γ, 1−γ), ℓ_f(1−γ, γ))`` (symbolic in γ).  ``∂_s ℓ_f =
f'(s/w) − f'((1−s)/(1−w))`` is increasing in ``s`` and decreasing in ``w``, so
``sup |∂_s ℓ_f|`` is at the vertices ``(1−γ, γ)`` and ``(γ, 1−γ)`` (symbolic).  In the
logit ``z`` of ``s = σ(z)``, ``∂_z ℓ_f = s(1−s) ∂_s ℓ_f``, maximised numerically on the box.
With probability ≥ 1−δ (Mohri et al. 2018, Thm 3.3; Bartlett & Mendelson 2002)::

    R_f(ĝ, F_w) ≤ inf_g R_f(g, F_w) + 4 L_f ℜ_n + 2 B_f √(ln(2/δ)/(2n))

with ``ℜ_n ≤ Λρ/√n`` for linear heads ``‖θ‖ ≤ Λ`` on ``‖h‖ ≤ ρ``; for a finite class
``2 B_f √(ln(2|G|/δ)/(2n))`` (Hoeffding + union bound, both sides).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import sympy as sp

from .derived import to_float
from .generators import Generator
from .joint_range import tv_inverse
from .limits import SoftTimeout, soft_time_limit
from .parsing import T

__all__ = ["error_interval", "LossConstants", "loss_constants", "loss_constant_exprs",
           "excess_risk_bound", "sample_size", "SampleSizeError", "MAX_SAMPLES", "GAMMA"]

GAMMA = sp.Symbol("gamma", positive=True)
#: Largest sample size :func:`sample_size` reports (beyond it the arithmetic is meaningless).
MAX_SAMPLES = 1e18


class SampleSizeError(ValueError):
    """No finite sample size (≤ :data:`MAX_SAMPLES`) meets the requested ε and δ."""


def error_interval(gen: Generator, weak_error: float, disagreement: float) -> tuple[float, float]:
    """C4: ``[err_w − L̆_f⁻¹(R), err_w + L̆_f⁻¹(R)] ∩ [0, 1]``.

    Args:
        weak_error: ``err(F_w) = E_x TV(F*(x), F_w(x))`` in ``[0, 1]``.
        disagreement: ``R_f(F_sw, F_w) ≥ 0``.
    """
    if not 0 <= weak_error <= 1:
        raise ValueError("weak error must lie in [0, 1]")
    if not disagreement >= 0:
        raise ValueError("disagreement R_f must be ≥ 0")
    radius = tv_inverse(gen, disagreement)
    return max(0.0, weak_error - radius), min(1.0, weak_error + radius)


@dataclasses.dataclass(frozen=True)
class LossConstants:
    """C6 constants of the binary loss on ``[γ, 1−γ]``."""

    gamma: float
    bound: float            # B_f(γ)
    lipschitz_prob: float   # sup |∂_s ℓ_f|
    lipschitz_logit: float  # sup |∂_z ℓ_f|, s = σ(z)


def _binary_loss(gen: Generator, s, w):
    f = gen.expr
    return w * f.subs(T, s / w) + (1 - w) * f.subs(T, (1 - s) / (1 - w))


@functools.lru_cache(maxsize=256)
def loss_constant_exprs(gen: Generator) -> tuple[sp.Expr, sp.Expr]:
    """Symbolic ``(B_f(γ), L_f^prob(γ))`` as expressions in :data:`GAMMA` (``0 < γ < ½``)."""
    g = GAMMA

    def tidy(e):
        try:
            with soft_time_limit(1.0):
                return sp.simplify(e)
        except SoftTimeout:
            return e
    bound = sp.Max(tidy(_binary_loss(gen, g, 1 - g)), tidy(_binary_loss(gen, 1 - g, g)))
    fp = sp.diff(gen.expr, T)

    def ds(s, w):
        return fp.subs(T, s / w) - fp.subs(T, (1 - s) / (1 - w))
    lip = sp.Max(sp.Abs(tidy(ds(1 - g, g))), sp.Abs(tidy(ds(g, 1 - g))))
    return bound, lip


@functools.lru_cache(maxsize=1024)
def loss_constants(gen: Generator, gamma: float) -> LossConstants:
    """``B_f(γ)``, ``L_f(γ)`` in the probability and in the logit, for ``0 < γ < ½``."""
    if not 0 < gamma < 0.5:
        raise ValueError("γ must lie in (0, 1/2)")
    bound_expr, lip_expr = loss_constant_exprs(gen)
    # the decimal γ exactly (nsimplify would round 1e-40 to 0 and 0.49999999 to 1/2)
    g_exact = sp.Rational(repr(float(gamma)))
    bound = to_float(bound_expr.subs(GAMMA, g_exact))
    lip = to_float(lip_expr.subs(GAMMA, g_exact))
    # logit Lipschitz: s(1−s)|∂_s ℓ| over the box, by grid then local refinement
    s_sym, w_sym = sp.symbols("s w", positive=True)
    fp = sp.diff(gen.expr, T)
    dz = s_sym * (1 - s_sym) * (fp.subs(T, s_sym / w_sym) - fp.subs(T, (1 - s_sym) / (1 - w_sym)))
    fn = sp.lambdify((s_sym, w_sym), dz, "numpy")
    axis = np.linspace(gamma, 1 - gamma, 401)
    S, W = np.meshgrid(axis, axis, indexing="ij")
    with np.errstate(all="ignore"):
        vals = np.abs(np.asarray(fn(S, W), dtype=float) * np.ones_like(S))
    i, j = np.unravel_index(np.nanargmax(vals), vals.shape)
    best = float(vals[i, j])
    from scipy.optimize import minimize

    def neg(x):
        s, w = np.clip(x, gamma, 1 - gamma)
        with np.errstate(all="ignore"):
            return -abs(float(fn(s, w)))
    res = minimize(neg, x0=[S[i, j], W[i, j]], bounds=[(gamma, 1 - gamma)] * 2, method="L-BFGS-B")
    best = max(best, -float(res.fun))
    return LossConstants(gamma, bound, lip, best)


def _rademacher_term(lip: float, radius: float, n: int) -> float:
    return 4 * lip * radius / math.sqrt(n)


def excess_risk_bound(gen: Generator, gamma: float, n: int, delta: float,
                      class_size: int | None = None, radius: float | None = None) -> float:
    """C6: the excess-risk bound ``R_f(ĝ) − inf_g R_f(g)`` holding with prob. ≥ ``1−δ``.

    Exactly one of ``class_size`` (finite head class ``|G|``) or ``radius`` (``Λρ``) is given.
    """
    _check_sample_args(gamma, 0.1, delta, class_size, radius)
    c = loss_constants(gen, gamma)
    if class_size is not None:
        return 2 * c.bound * math.sqrt(math.log(2 * class_size / delta) / (2 * n))
    return _rademacher_term(c.lipschitz_logit, radius, n) + \
        2 * c.bound * math.sqrt(math.log(2 / delta) / (2 * n))


def _check_sample_args(gamma, eps, delta, class_size, radius):
    if not 0 < gamma < 0.5:
        raise ValueError("γ must lie in (0, 1/2)")
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError("ε must be a finite number > 0")
    if not 0 < delta < 1:
        raise ValueError("δ must lie in (0, 1)")
    if (class_size is None) == (radius is None):
        raise ValueError("give exactly one of a finite class size or a linear-head radius Λρ")
    if class_size is not None and class_size < 1:
        raise ValueError("class size must be ≥ 1")
    if radius is not None and not (radius > 0 and math.isfinite(radius)):
        raise ValueError("radius Λρ must be a finite number > 0")


def sample_size(gen: Generator, gamma: float, eps: float, delta: float,
                class_size: int | None = None, radius: float | None = None) -> dict:
    """Smallest ``n`` with excess-risk bound ≤ ``ε`` (C6), and the constants used.

    Finite class: ``n = ⌈2 B² ln(2|G|/δ) / ε²⌉``.
    Linear heads: ``n = ⌈((4 L Λρ + B √(2 ln(2/δ))) / ε)²⌉``.
    """
    _check_sample_args(gamma, eps, delta, class_size, radius)
    c = loss_constants(gen, gamma)
    lip = c.lipschitz_logit
    for name, value in (("B_f", c.bound), ("L_f", lip)):
        if value is None or not math.isfinite(value):
            raise SampleSizeError(f"{name}(γ={gamma}) of {gen.name} is not finite, so no sample "
                                  f"size guarantees ε = {eps}")
    log_term = math.log(2) - math.log(delta)  # ln(2/δ) without overflow for tiny δ
    try:
        if class_size is not None:
            x = 2 * c.bound ** 2 * (log_term + math.log(class_size)) / eps ** 2
        else:
            x = ((4 * lip * radius + c.bound * math.sqrt(2 * log_term)) / eps) ** 2
    except (OverflowError, ZeroDivisionError):
        x = math.inf
    if not x <= MAX_SAMPLES:
        raise SampleSizeError(f"the sample size for ε = {eps}, δ = {delta} exceeds {MAX_SAMPLES:.0e} "
                              f"examples; ask for a larger --eps (or --delta)")
    n = math.ceil(x)
    return {"n": max(n, 1), "B_f": c.bound, "L_f": lip, "L_f_prob": c.lipschitz_prob,
            "gamma": gamma, "eps": eps, "delta": delta, "class_size": class_size,
            "radius": radius}
