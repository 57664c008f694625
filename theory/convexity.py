"""Convexity of a typed generator on the whole domain ``(0, ∞)`` (``docs/THEORY.md``).

:func:`check_convex` returns how convexity was established, or raises
:class:`theory.parsing.GeneratorError` naming where ``f`` fails to be convex:

1. **proved symbolically** — sympy shows the simplified ``f''`` is nonnegative, or solves
   ``f''(t) < 0`` over ``(0, ∞)`` and finds no solution (``solveset``, at most
   :data:`SOLVE_SECONDS`); a non-empty solution set is a refusal (a point of it, confirmed).
2. **checked on grid** — where sympy cannot decide (or ``f`` is not smooth: ``|t-1|``,
   ``Max``), every test below must pass, and a failure is a refusal:

   * the sign of ``f''`` as ``t → ∞`` and ``t → 0+`` (sympy's Gruntz ``sign``), so a generator
     that turns concave beyond any grid (``log(t)**30`` for ``t > e^29``) is caught;
   * ``f''`` (its Dirac terms at kinks left out) on a log grid of :data:`SAMPLES` points from
     ``1e-300`` to ``1e300``, in :data:`DIGITS`-digit arithmetic (mpmath: no overflow), each
     negative value confirmed by sympy's exact evaluation;
   * the chord slopes on a dense float64 grid of ``[1e-6, 1e6]`` (also the kinks), each drop
     confirmed in 50-digit arithmetic.

   This is a check, not a proof: a concave stretch narrower than the grid spacing that
   sympy cannot solve for is not found.  All of it takes well under a second for the
   generators in the tests.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from .limits import SoftTimeout, soft_time_limit
from .parsing import T, GeneratorError

__all__ = ["check_convex", "SAMPLES", "DIGITS", "SOLVE_SECONDS"]

#: Points of the log grid on which ``f''`` is sampled (``1e-300 … 1e300``).
SAMPLES = 1201
#: Working digits of the sampled ``f''``.
DIGITS = 40
#: CPU seconds given to each symbolic attempt (``simplify``, ``solveset``, each limit sign).
SOLVE_SECONDS = 1.0


def check_convex(expr: sp.Expr, label: str) -> str:
    """``"proved symbolically"`` or ``"checked on grid"``; raises :class:`GeneratorError`
    (with a failing point or range) if ``expr`` is not convex on ``(0, ∞)``."""
    second = sp.diff(expr, T, 2)
    smooth = not (second.has(sp.DiracDelta, sp.Heaviside, sp.Piecewise, sp.sign)
                  or expr.has(sp.Abs, sp.Max, sp.Min))
    if smooth:
        second = _tidy(second)
        if second.is_nonnegative:
            return "proved symbolically"
        if _solve_negative(second, label):
            return "proved symbolically"
    regular = second.replace(sp.DiracDelta, lambda *a: sp.S.Zero)  # kinks: the chord test
    _check_ends(regular, label)
    _check_samples(regular, label)
    _check_chords(expr, label)
    return "checked on grid"


def _tidy(second: sp.Expr) -> sp.Expr:
    try:
        with soft_time_limit(SOLVE_SECONDS, cpu=True):
            return sp.simplify(second)
    except SoftTimeout:
        return second


def _refuse(label: str, where: str) -> GeneratorError:
    return GeneratorError(f"generator {label!r} is not convex on (0, inf): f''(t) < 0 {where}; "
                          f"D_f is an f-divergence only for convex f")


def _negative_at(second: sp.Expr, t: sp.Expr) -> bool:
    """``f''(t) < 0``, decided by sympy's exact (adaptive-precision) evaluation."""
    try:
        value = second.subs(T, t).evalf(30)
    except Exception:  # noqa: BLE001 (cannot evaluate: not confirmed)
        return False
    return bool(value.is_real and value.is_comparable and value < 0)


def _point_in(interval: sp.Interval) -> sp.Expr | None:
    lo, hi = interval.inf, interval.sup
    if hi is sp.oo:
        return 2 * lo + 1 if lo.is_finite else None
    return (lo + hi) / 2


def _solve_negative(second: sp.Expr, label: str) -> bool:
    """True if sympy proves ``f'' >= 0`` on ``(0, ∞)``; raises if it finds (and a point
    confirms) ``f'' < 0`` somewhere; False when undecided."""
    try:
        with soft_time_limit(SOLVE_SECONDS, cpu=True):
            found = sp.solveset(second < 0, T, sp.Interval.open(0, sp.oo))
    except Exception:  # noqa: BLE001 (SoftTimeout or any sympy failure: undecided)
        return False
    if found is sp.S.EmptySet:
        return True
    pieces = found.args if isinstance(found, sp.Union) else (found,)
    for piece in pieces:
        if isinstance(piece, sp.Interval):
            t = _point_in(piece)
            if t is not None and _negative_at(second, t):
                raise _refuse(label, f"for t in {_show(piece)}, e.g. at t={float(t):.4g}")
    return False


def _show(interval: sp.Interval) -> str:
    def num(x):
        return "inf" if x is sp.oo else f"{float(x):.4g}"
    return f"({num(interval.inf)}, {num(interval.sup)})"


def _check_ends(second: sp.Expr, label: str) -> None:
    """Refuse when ``f''`` is eventually negative as ``t → ∞`` or ``t → 0+``."""
    from sympy.series.gruntz import sign as eventual_sign
    u = sp.Symbol("u", positive=True)
    for where, expr in (("for all large t (t → inf)", second),
                        ("for all small t (t → 0+)", second.subs(T, 1 / u).subs(u, T))):
        try:
            with soft_time_limit(SOLVE_SECONDS, cpu=True):
                s = eventual_sign(expr, T)
        except Exception:  # noqa: BLE001 (SoftTimeout, PoleError, ...: undecided at this end)
            continue
        if s == -1:
            raise _refuse(label, where + " (limit at the end of the domain)")


def _check_samples(second: sp.Expr, label: str) -> None:
    """``f''`` on a log grid of ``[1e-300, 1e300]`` in :data:`DIGITS`-digit arithmetic."""
    import mpmath
    if second.is_zero:
        return
    try:
        fn = sp.lambdify(T, second, modules="mpmath")
    except Exception:  # noqa: BLE001 (a function mpmath lacks): the other checks remain
        return
    with mpmath.workdps(DIGITS):
        for k in np.linspace(-300, 300, SAMPLES):
            t = mpmath.mpf(10) ** mpmath.mpf(float(k))
            try:
                v = fn(t)
            except (ValueError, ZeroDivisionError, TypeError, OverflowError):
                continue
            if mpmath.im(v) == 0 and mpmath.re(v) < 0 \
                    and _negative_at(second, sp.Integer(10) ** sp.Rational(repr(float(k)))):
                raise _refuse(label, f"at t={mpmath.nstr(t, 4)}")


def _check_chords(expr: sp.Expr, label: str) -> None:
    """Refuse ``expr`` if it is not convex on a dense log-spaced grid of ``[1e-6, 1e6]``.

    Slopes of the chords between neighbouring grid points must be nondecreasing
    (this also covers non-smooth generators such as ``|t-1|``).
    """
    f = sp.lambdify(T, expr, modules="numpy")
    grid = np.logspace(-6, 6, 4001)
    with np.errstate(all="ignore"):
        values = np.asarray(f(grid), dtype=float) * np.ones_like(grid)
    bad = ~np.isfinite(values)
    if bad.any():
        raise GeneratorError(
            f"generator {label!r} is not finite at t={grid[bad][0]:.3g}; a generator must be "
            f"a finite convex function on (0, inf)")
    slopes = np.diff(values) / np.diff(grid)
    drop = slopes[:-1] - slopes[1:]
    # rounding in each chord slope is about eps * |f| / Δt: allow a few of those
    dt = np.diff(grid)
    scale = np.maximum(np.maximum(np.abs(values[:-2]), np.abs(values[1:-1])), np.abs(values[2:]))
    tol = (1e-10 * (np.abs(slopes[:-1]) + np.abs(slopes[1:]))
           + 16 * np.finfo(float).eps * scale * (1 / dt[:-1] + 1 / dt[1:]))
    fails = [i for i in np.nonzero(drop > tol)[0][:20] if _slope_drops_exactly(expr, grid[i:i + 3])]
    if fails:
        t_bad = grid[fails[0] + 1]
        raise GeneratorError(
            f"generator {label!r} is not convex on (0, inf): the slope decreases at "
            f"t={t_bad:.4g} (f''<0 there); D_f is an f-divergence only for convex f")


def _slope_drops_exactly(expr: sp.Expr, points) -> bool:
    """Whether the chord slope of ``expr`` really decreases over the three ``points``,
    recomputed in 50-digit arithmetic (mpmath): float64 flags false drops where large terms
    cancel, e.g. ``(t-1)**2/t - 2*(t-1)`` near ``t = 1e6``."""
    import mpmath
    f = sp.lambdify(T, expr, modules="mpmath")
    with mpmath.workdps(50):
        a, b, c = (mpmath.mpf(float(x)) for x in points)
        try:
            fa, fb, fc = f(a), f(b), f(c)
        except (ValueError, ZeroDivisionError, TypeError):
            return True  # cannot confirm: keep the float64 verdict
        drop = (fb - fa) / (b - a) - (fc - fb) / (c - b)
        scale = abs(fa) + abs(fb) + abs(fc) + 1
        return bool(mpmath.im(drop) == 0 and mpmath.re(drop) > mpmath.mpf(10) ** -30 * scale
                    * (1 / (b - a) + 1 / (c - b)))

