"""Independent reference implementations used as oracles by the checks.

These are deliberately written separately from ``theory/`` (simpler, slower, by brute
force) so that a check compares two routes to the same number (:mod:`numerics.api`
holds the ``theory`` side).

* :func:`divergence`: ``D_f(P‖Q) = Σ q f(p/q)`` with ``0·f(0/0)=0``, ``q f(0+)`` for
  ``p = 0`` and ``p f'(∞)`` for ``q = 0 < p`` (docs/THEORY.md conventions).
* :func:`two_point_curve`: ``L_f(δ)`` over two-point pairs by bounded Brent search on the
  convex function ``q ↦ D_f((q+δ, 1−q−δ) ‖ (q, 1−q))`` plus both end points.
* :func:`lower_hull`, :func:`tv_inverse_from_curve`: convex envelope and its inverse.
* :func:`binary_loss_constants`: ``B_f(γ)``, Lipschitz constants in ``s`` and in the logit,
  by dense grids over ``[γ, 1−γ]²`` (C6 oracle).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from theory.codegen import f_numpy, fprime_numpy
from theory.derived import f_at_0, fprime_at_inf, to_float
from theory.joint_range import lower_hull  # a generic hull: shared, not an oracle

__all__ = ["limits", "divergence", "binary_divergence", "tv", "chi2", "two_point_curve",
           "lower_hull", "tv_inverse_from_curve", "binary_loss_constants", "binary_grad_logit"]


def limits(gen) -> tuple[float, float]:
    """``(f(0+), f'(∞))`` as floats (``inf`` allowed, ``nan`` if unknown)."""
    a, b = to_float(f_at_0(gen)), to_float(fprime_at_inf(gen))
    return (math.nan if a is None else a), (math.nan if b is None else b)


def divergence(gen, p, q, axis: int = -1) -> np.ndarray:
    p, q = np.broadcast_arrays(np.asarray(p, float), np.asarray(q, float))
    p = np.moveaxis(p, axis, -1)
    q = np.moveaxis(q, axis, -1)
    f = f_numpy(gen)
    f0, finf = limits(gen)
    out = np.zeros(p.shape[:-1])
    with np.errstate(all="ignore"):
        for c in range(p.shape[-1]):
            pc, qc = p[..., c], q[..., c]
            term = np.zeros_like(pc)
            both = (qc > 0) & (pc > 0)
            term[both] = qc[both] * np.asarray(f(pc[both] / qc[both]), float)
            zp = (qc > 0) & (pc == 0)
            term[zp] = qc[zp] * f0
            zq = (qc == 0) & (pc > 0)
            term[zq] = pc[zq] * finf
            out = out + term
    return out


def binary_divergence(gen, s, w) -> np.ndarray:
    s, w = np.asarray(s, float), np.asarray(w, float)
    return divergence(gen, np.stack([s, 1 - s], -1), np.stack([w, 1 - w], -1))


def tv(p, q, axis: int = -1) -> np.ndarray:
    return 0.5 * np.abs(np.asarray(p, float) - np.asarray(q, float)).sum(axis=axis)


def chi2(p, q, axis: int = -1) -> np.ndarray:
    p, q = np.asarray(p, float), np.asarray(q, float)
    return ((p - q) ** 2 / q).sum(axis=axis)


def _phi(gen, delta: float, q: float) -> float:
    p = np.array([q + delta, 1 - q - delta])
    qq = np.array([q, 1 - q])
    val = float(divergence(gen, np.clip(p, 0, 1), np.clip(qq, 0, 1)))
    return val if not math.isnan(val) else math.inf


def two_point_curve(gen, deltas) -> tuple[np.ndarray, np.ndarray]:
    """``(L_f(δ), argmin q)`` over two-point pairs ``P=(q+δ,·)``, ``Q=(q,·)``."""
    deltas = np.atleast_1d(np.asarray(deltas, float))
    vals, qs = np.zeros_like(deltas), np.zeros_like(deltas)
    for i, d in enumerate(deltas):
        if d <= 0:
            continue
        cands = [(_phi(gen, d, 0.0), 0.0), (_phi(gen, d, 1 - d), 1 - d)]
        if d < 1:
            res = minimize_scalar(lambda q: _phi(gen, d, q), bounds=(0.0, 1 - d),
                                  method="bounded", options={"xatol": 1e-13, "maxiter": 500})
            cands.append((float(res.fun), float(res.x)))
            grid = np.linspace(0, 1 - d, 41)[1:-1]
            cands += [(_phi(gen, d, g), g) for g in grid]
        vals[i], qs[i] = min(cands)
    return vals, qs


def tv_inverse_from_curve(xs: np.ndarray, env: np.ndarray, r: float) -> float:
    """``sup{δ : L̆(δ) ≤ r}`` for a nondecreasing envelope on a grid (linear between)."""
    ok = np.isfinite(env)
    x, e = xs[ok], env[ok]
    if r >= e[-1]:
        return float(x[-1]) if x[-1] < 1 else 1.0
    j = int(np.searchsorted(e, r, side="right"))
    if j == 0:
        return 0.0
    x0, x1, e0, e1 = x[j - 1], x[j], e[j - 1], e[j]
    return float(x0 + (x1 - x0) * (r - e0) / (e1 - e0)) if e1 > e0 else float(x1)


def binary_grad_logit(gen, s, w) -> np.ndarray:
    """``∂_z D_f(σ(z)‖w) = s(1−s)[f'(s/w) − f'((1−s)/(1−w))]`` (C7 formula)."""
    fp = fprime_numpy(gen)
    s, w = np.asarray(s, float), np.asarray(w, float)
    with np.errstate(all="ignore"):
        return s * (1 - s) * (np.asarray(fp(s / w), float) - np.asarray(fp((1 - s) / (1 - w)), float))


def binary_loss_constants(gen, gamma: float, points: int = 401) -> dict:
    """Grid estimates of ``B_f(γ) = max D_f(s‖w)``, ``max |∂_s D_f|``, ``max |∂_z D_f|``."""
    g = np.linspace(gamma, 1 - gamma, points)
    s, w = np.meshgrid(g, g, indexing="ij")
    d = binary_divergence(gen, s, w)
    fp = fprime_numpy(gen)
    with np.errstate(all="ignore"):
        ds = np.asarray(fp(s / w), float) - np.asarray(fp((1 - s) / (1 - w)), float)
    dz = s * (1 - s) * ds
    return {"bound": float(np.nanmax(d)), "lipschitz_prob": float(np.nanmax(np.abs(ds))),
            "lipschitz_logit": float(np.nanmax(np.abs(dz)))}
