"""Convex conjugates ``f*(u) = sup_{t>0} (u t − f(t))`` and their effective domain (C1).

Symbolic route: solve ``f'(t) = u`` for ``t`` (sympy ``solve``; Lambert W appears for
Jeffreys), pick the branch that is a real positive inverse of ``f'`` and set
``f*(u) = u t*(u) − f(t*(u))`` on the range of ``f'``.  Below that range
(``u ≤ f'(0+)``, when finite) the supremum is approached as ``t → 0+`` and
``f*(u) = −f(0+)``; at ``u = f'(∞)`` the value is ``lim_{t→∞} (u t − f(t))`` when finite;
above it ``f* = +∞``.  So the domain is ``(−∞, f'(∞)]`` or ``(−∞, f'(∞))``.

Numeric route (:func:`conjugate_numeric`), always available and used as the flagged
fallback: ``t ↦ u t − f(t)`` is concave, so its maximiser solves ``f'(t) = u`` and is
found by bisection in ``log t``.

Reference: Nowozin, Cseke, Tomioka 2016 (f-GAN), Table 2; Nguyen, Wainwright, Jordan 2010.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import sympy as sp

from .codegen import f_numpy, fprime_numpy, numpy_function
from .derived import f_at_0, fprime_at_inf, limit, to_float
from .generators import Generator
from .limits import SoftTimeout, soft_time_limit
from .parsing import T, U

__all__ = ["Conjugate", "conjugate", "conjugate_numeric", "conjugate_numpy", "optimal_critic"]


@dataclasses.dataclass(frozen=True)
class Conjugate:
    """``f*`` of a generator.

    Attributes:
        expr: sympy ``f*(u)`` on its domain (a Piecewise where ``f*`` is constant below
            ``f'(0+)``), or ``None`` when only the numeric conjugate is available.
        lo, hi: effective domain bounds (``lo`` is always ``-inf``); ``hi = f'(∞)``.
        hi_closed: whether ``hi`` itself belongs to the domain.
        symbolic: False when ``expr`` is ``None`` (numeric fallback, flagged).
    """

    expr: sp.Expr | None
    lo: float
    hi: float
    hi_closed: bool
    symbolic: bool

    def contains(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        return (u <= self.hi) if self.hi_closed else (u < self.hi)


def _sample_points(lo: float, hi: float) -> list[float]:
    """A few points strictly inside ``(lo, hi)`` (either may be infinite)."""
    if math.isfinite(lo) and math.isfinite(hi):
        return [lo + (hi - lo) * c for c in (0.1, 0.37, 0.5, 0.83)]
    if math.isfinite(hi):
        return [hi - d for d in (0.05, 0.7, 3.0, 20.0)]
    if math.isfinite(lo):
        return [lo + d for d in (0.05, 0.7, 3.0, 20.0)]
    return [-5.0, -0.3, 0.4, 4.0]


def _pick_inverse(gen: Generator, roots, lo: float, hi: float):
    fp = fprime_numpy(gen)
    for root in roots:
        ok = True
        for u in _sample_points(lo, hi):
            try:
                val = complex(sp.N(root.subs(U, u), 20))
            except (TypeError, ValueError, ZeroDivisionError):
                ok = False
                break
            if not (abs(val.imag) < 1e-9 * (1 + abs(val.real)) and val.real > 0):
                ok = False
                break
            if abs(float(fp(np.array([val.real]))[0]) - u) > 1e-6 * (1 + abs(u)):
                ok = False
                break
        if ok:
            return root
    return None


def _tidy_lambert_w(expr: sp.Expr) -> sp.Expr:
    """Use ``e^{W(z)} = z / W(z)`` to fold exponentials of Lambert W (Jeffreys)."""
    for w in expr.atoms(sp.LambertW):
        z = w.args[0]
        expr = expr.replace(lambda x: isinstance(x, sp.exp) and x.args[0].has(w),
                            lambda x: sp.exp(sp.expand(x.args[0] - w)) * z / w)
    return sp.simplify(expr)


def _simplify_below(expr: sp.Expr, hi: sp.Expr | None) -> sp.Expr:
    """Simplify ``expr(u)`` using ``u < hi`` (write ``u = hi − v`` with ``v > 0``)."""
    plain = sp.simplify(expr)
    if hi is None:
        return plain
    v = sp.Symbol("v", positive=True)
    shifted = sp.simplify(expr.subs(U, hi - v)).subs(v, hi - U)
    return min([plain, sp.simplify(shifted)], key=sp.count_ops)


@functools.lru_cache(maxsize=256)
def conjugate(gen: Generator, timeout_s: float = 4.0) -> Conjugate:
    """The convex conjugate of ``gen`` with its effective domain (symbolic if possible)."""
    fp = sp.diff(gen.expr, T)
    fp0 = to_float(limit(fp, 0, "+"))
    hi_val = to_float(fprime_at_inf(gen))
    hi = math.inf if hi_val is None else hi_val
    lo_fp = -math.inf if fp0 is None else fp0
    # at u = f'(∞) finite: value lim_{t→∞} (u t − f(t))
    hi_closed = False
    at_hi = None
    if math.isfinite(hi):
        at_hi = limit(fprime_at_inf(gen) * T - gen.expr, sp.oo, "-")
        hi_closed = to_float(at_hi) is not None and math.isfinite(to_float(at_hi))
    expr = None
    if not gen.expr.has(sp.Abs, sp.Max, sp.Min, sp.Piecewise):
        try:
            with soft_time_limit(timeout_s):
                roots = sp.solve(sp.Eq(fp, U), T)
                inverse = _pick_inverse(gen, roots, lo_fp, hi)
                if inverse is not None:
                    if inverse.has(sp.LambertW):
                        body = _tidy_lambert_w(U * inverse - gen.expr.subs(T, inverse))
                    else:
                        body = _simplify_below(U * inverse - gen.expr.subs(T, inverse),
                                               fprime_at_inf(gen) if math.isfinite(hi) else None)
                    pieces = []
                    f0 = f_at_0(gen)
                    if math.isfinite(lo_fp):
                        pieces.append((-f0, U <= sp.nsimplify(limit(fp, 0, "+"))))
                    pieces.append((body, U < fprime_at_inf(gen)) if math.isfinite(hi) else (body, True))
                    if hi_closed:
                        pieces.append((sp.simplify(at_hi), sp.Eq(U, fprime_at_inf(gen))))
                    expr = body if len(pieces) == 1 else sp.Piecewise(*pieces)
        except (SoftTimeout, NotImplementedError, ValueError, TypeError, RecursionError):
            expr = None
    return Conjugate(expr, -math.inf, hi, hi_closed, expr is not None)


def conjugate_numeric(gen: Generator, u: np.ndarray, iters: int = 200) -> np.ndarray:
    """``f*(u)`` by maximising the concave ``u t − f(t)`` over ``t > 0`` (bisection on ``log t``).

    Args:
        u: any shape. Returns the same shape; ``+inf`` outside the domain.
    """
    u = np.asarray(u, dtype=float)
    f, fp = f_numpy(gen), fprime_numpy(gen)
    conj = conjugate(gen) if gen.is_named else None
    hi = conj.hi if conj is not None else to_float(fprime_at_inf(gen))
    hi = math.inf if hi is None else hi
    lo_log, hi_log = np.full(u.shape, -40.0), np.full(u.shape, 40.0)
    with np.errstate(all="ignore"):
        for _ in range(iters):
            mid = (lo_log + hi_log) / 2
            go_right = fp(np.exp(mid)) < u
            lo_log = np.where(go_right, mid, lo_log)
            hi_log = np.where(go_right, hi_log, mid)
        t = np.exp((lo_log + hi_log) / 2)
        value = u * t - f(t)
        f0 = to_float(f_at_0(gen))
        if f0 is not None and math.isfinite(f0):
            value = np.maximum(value, -f0)
    value = np.where(u > hi, np.inf, value)
    return value


def conjugate_numpy(gen: Generator):
    """``u ↦ f*(u)`` vectorised: the generated symbolic conjugate, else the numeric one."""
    conj = conjugate(gen)
    if conj.expr is None:
        return lambda u: conjugate_numeric(gen, u)
    fn = numpy_function(conj.expr, U)

    def evaluate(u):
        u = np.asarray(u, dtype=float)
        with np.errstate(all="ignore"):
            out = np.asarray(fn(u), dtype=float) * np.ones_like(u)
        inside = conj.contains(u)
        bad = inside & ~np.isfinite(out)  # overflow inside the formula (e.g. LambertW(e^1000))
        if bad.any():
            out[bad] = conjugate_numeric(gen, u[bad])
        return np.where(inside, out, np.inf)
    return evaluate


def optimal_critic(gen: Generator, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The maximiser ``T = f'(p/q)`` of ``E_P[T] − E_Q[f*(T)]`` (C1); ``q > 0`` required."""
    return fprime_numpy(gen)(np.asarray(p, float) / np.asarray(q, float))
