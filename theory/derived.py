"""Quantities derived symbolically from a generator ``f`` (``docs/THEORY.md`` C1, C2, C6, C7).

All functions take a :class:`theory.generators.Generator` and are cached.

* ``f''(1)``: the local (χ²) constant of C2, ``D_f ≈ (f''(1)/2) χ²``.
* dual ``f◇(t) = t f(1/t)``, with ``D_{f◇}(P‖Q) = D_f(Q‖P)``; symmetric iff
  ``f◇ − f`` is linear in ``t − 1``.
* ``f(0+)``, ``f'(∞) = lim f(t)/t``; ``D_f`` is bounded iff both are finite, and then
  ``max D_f = f(0+) + f'(∞)`` (attained by mutually singular P, Q; Liese & Vajda 2006).
* the C7 pull ``lim_{t→0+} t f'(t)``: the limit of ``∂_z D_f(σ(z)‖w) / w`` as the strong
  model confidently contradicts the label (``s → 0``).
"""
from __future__ import annotations

import functools
import math

import sympy as sp

from .generators import Generator
from .parsing import T

__all__ = ["f2_at_1", "dual", "is_symmetric", "f_at_0", "fprime_at_inf", "is_bounded",
           "max_value", "disagreement_pull", "to_float"]


def to_float(value: sp.Expr) -> float | None:
    """A sympy value as a float (``±inf`` for infinities); ``None`` if not a real number."""
    if value is None:
        return None
    if value in (sp.oo,):
        return math.inf
    if value in (-sp.oo,):
        return -math.inf
    if value.has(sp.nan, sp.zoo) or not value.is_number:
        return None
    try:
        num = complex(sp.N(value, 30))
    except (TypeError, ValueError):
        return None
    if abs(num.imag) > 1e-12 * (1 + abs(num.real)):
        return None
    return float(num.real)


def _symbolic_limit(expr: sp.Expr, point, direction: str) -> sp.Expr:
    try:
        value = sp.limit(expr, T, point, direction)
    except (NotImplementedError, ValueError, TypeError, RecursionError):
        return sp.nan
    if isinstance(value, sp.AccumBounds) or value.has(sp.Limit):
        return sp.nan
    return value


def _numeric_limit(expr: sp.Expr, point) -> sp.Expr:
    """Fallback: evaluate along t → 0+ or t → ∞ and accept a converged (or diverging) value."""
    import numpy as np
    fn = sp.lambdify(T, expr, "numpy")
    exps = np.arange(6, 15) if point == 0 else -np.arange(6, 15)
    ts = 10.0 ** (-exps.astype(float))
    with np.errstate(all="ignore"):
        vals = np.asarray(fn(ts), dtype=float) * np.ones_like(ts)
    if not np.all(np.isfinite(vals)):
        return sp.nan
    steps = np.abs(np.diff(vals))
    if steps[-1] <= 1e-7 * (1 + abs(vals[-1])):
        return sp.Float(vals[-1], 10)
    if np.all(np.diff(vals) > 0) and vals[-1] > 1e6:
        return sp.oo
    if np.all(np.diff(vals) < 0) and vals[-1] < -1e6:
        return -sp.oo
    return sp.nan


def _limit(expr: sp.Expr, point, direction: str = "+") -> sp.Expr:
    """``lim expr`` as ``t → point``: symbolic, then via Piecewise, then numeric."""
    value = _symbolic_limit(expr, point, direction)
    if value is sp.nan and expr.has(sp.Max, sp.Min, sp.Abs):
        value = _symbolic_limit(expr.rewrite(sp.Piecewise), point, direction)
    if value is sp.nan:
        value = _numeric_limit(expr, point)
    return value


@functools.lru_cache(maxsize=256)
def f2_at_1(gen: Generator) -> sp.Expr | None:
    """``f''(1)``; ``None`` where ``f`` is not twice differentiable at 1 (e.g. ``tv``)."""
    second = sp.diff(gen.expr, T, 2)
    if second.has(sp.DiracDelta, sp.Heaviside, sp.sign) or gen.expr.has(sp.Abs, sp.Max, sp.Min):
        return None
    value = sp.simplify(second.subs(T, 1))
    return value if to_float(value) is not None and math.isfinite(to_float(value)) else None


@functools.lru_cache(maxsize=256)
def dual(gen: Generator) -> sp.Expr:
    """``f◇(t) = t f(1/t)`` (swaps the arguments of ``D_f``)."""
    raw = T * gen.expr.subs(T, 1 / T)
    candidates = [raw, sp.expand_log(raw, force=True), sp.simplify(raw)]
    candidates.append(sp.simplify(sp.expand_log(sp.expand(raw), force=True)))
    return min(candidates, key=sp.count_ops)


@functools.lru_cache(maxsize=256)
def is_symmetric(gen: Generator) -> bool:
    """True iff ``D_f(P‖Q) = D_f(Q‖P)`` for all P, Q, i.e. ``f◇ − f`` is linear in ``t−1``."""
    diff = sp.simplify(dual(gen) - gen.expr)
    if diff == 0:
        return True
    curvature = sp.simplify(sp.diff(diff, T, 2))
    if curvature == 0:
        return True
    # Non-smooth generators (|t-1|): compare numerically on a grid of t.
    import numpy as np
    fn = sp.lambdify(T, diff, "numpy")
    grid = np.logspace(-3, 3, 61)
    vals = np.asarray(fn(grid), dtype=float) * np.ones_like(grid)
    slope, icpt = np.polyfit(grid - 1, vals, 1)
    return bool(np.allclose(vals, slope * (grid - 1) + icpt, atol=1e-9, rtol=1e-9))


@functools.lru_cache(maxsize=256)
def f_at_0(gen: Generator) -> sp.Expr:
    """``f(0+) = lim_{t→0+} f(t)`` (may be ``oo``)."""
    return _limit(gen.expr, 0, "+")


@functools.lru_cache(maxsize=256)
def fprime_at_inf(gen: Generator) -> sp.Expr:
    """``f'(∞) = lim_{t→∞} f(t)/t`` (may be ``oo``)."""
    return _limit(gen.expr / T, sp.oo, "-")


def is_bounded(gen: Generator) -> bool:
    """``D_f`` is bounded iff ``f(0+)`` and ``f'(∞)`` are both finite."""
    a, b = to_float(f_at_0(gen)), to_float(fprime_at_inf(gen))
    return a is not None and b is not None and math.isfinite(a) and math.isfinite(b)


def max_value(gen: Generator) -> sp.Expr:
    """``sup_{P,Q} D_f(P‖Q) = f(0+) + f'(∞)`` (``oo`` when unbounded)."""
    if not is_bounded(gen):
        return sp.oo
    return sp.simplify(f_at_0(gen) + fprime_at_inf(gen))


@functools.lru_cache(maxsize=256)
def disagreement_pull(gen: Generator) -> sp.Expr:
    """``lim_{t→0+} t f'(t)`` (C7).

    For a binary head ``s = σ(z)`` and weak label ``w``,
    ``∂_z D_f(s‖w) → w · lim_{t→0+} t f'(t)`` as ``s → 0``: a negative value is a
    pull back toward the label, 0 means the loss stops pulling, ``-oo`` an unbounded pull.
    """
    return _limit(sp.simplify(T * sp.diff(gen.expr, T)), 0, "+")
