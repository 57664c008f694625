"""Numeric ``D_f(P‖Q)`` for any generator, with the conventions of ``docs/THEORY.md``.

``D_f(P‖Q) = Σ_c q_c f(p_c/q_c)`` with ``0·f(0/0) = 0``, ``q f(0/q) = q f(0+)`` and, for
``q_c = 0 < p_c``, ``p_c f'(∞)``.  The generator is evaluated through the function
generated from its sympy expression (:mod:`theory.codegen`).
"""
from __future__ import annotations

import math

import numpy as np

from .codegen import f_numpy
from .derived import f_at_0, fprime_at_inf, to_float
from .generators import Generator

__all__ = ["divergence", "binary_divergence", "tv", "chi2"]


def _limits(gen: Generator) -> tuple[float, float]:
    f0 = to_float(f_at_0(gen))
    finf = to_float(fprime_at_inf(gen))
    return (math.nan if f0 is None else f0), (math.nan if finf is None else finf)


def divergence(gen: Generator, p, q, axis: int = -1) -> np.ndarray:
    """``D_f(P‖Q)`` along ``axis``.

    Args:
        p, q: probability vectors, broadcastable, classes along ``axis``.
    Returns:
        array with ``axis`` removed (``inf`` where the divergence is infinite).
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    p, q = np.broadcast_arrays(p, q)
    f = f_numpy(gen)
    f0, finf = _limits(gen)
    pos_q = q > 0
    with np.errstate(all="ignore"):
        ratio = np.where(pos_q, p / np.where(pos_q, q, 1.0), 1.0)
        inner = np.where(ratio > 0, f(np.where(ratio > 0, ratio, 1.0)), f0)
        terms = np.where(pos_q, q * inner, np.where(p > 0, p * finf, 0.0))
    return terms.sum(axis=axis)


def binary_divergence(gen: Generator, s, w) -> np.ndarray:
    """``D_f((s, 1−s) ‖ (w, 1−w))`` elementwise for probabilities ``s``, ``w`` of class 1.

    When every ``s`` and ``w`` lies in ``(0, 1)`` it is ``w f(s/w) + (1−w) f((1−s)/(1−w))``
    directly (the same numbers as :func:`divergence`, without its bookkeeping: the numeric
    checks call it inside optimisers); otherwise :func:`divergence` applies the conventions
    at 0 and 1.
    """
    s = np.asarray(s, dtype=float)
    w = np.asarray(w, dtype=float)
    if np.all((s > 0) & (s < 1) & (w > 0) & (w < 1)):
        f = f_numpy(gen)
        with np.errstate(all="ignore"):
            return w * f(s / w) + (1 - w) * f((1 - s) / (1 - w))
    return divergence(gen, np.stack([s, 1 - s], -1), np.stack([w, 1 - w], -1))


def tv(p, q, axis: int = -1) -> np.ndarray:
    """Total variation ``½ Σ |p − q|``."""
    return 0.5 * np.abs(np.asarray(p, float) - np.asarray(q, float)).sum(axis=axis)


def chi2(p, q, axis: int = -1) -> np.ndarray:
    """Pearson ``χ²(P‖Q) = Σ (p − q)² / q`` (``q > 0``)."""
    p = np.asarray(p, float)
    q = np.asarray(q, float)
    return ((p - q) ** 2 / q).sum(axis=axis)
