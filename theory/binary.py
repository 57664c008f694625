"""Binary predictions ``s = σ(z)`` against a weak label ``w`` (class-1 probabilities): the
logistic function and the gradients of ``D_f(s‖w)``, each written once (numpy, from the
generator's generated ``f'``, :mod:`theory.codegen`).

``D_f(s‖w)`` itself is :func:`theory.divergence.binary_divergence`.
"""
from __future__ import annotations

import numpy as np

from .codegen import fprime_numpy
from .generators import Generator

__all__ = ["sigmoid", "binary_prob_grad", "binary_logit_grad"]


def sigmoid(z):
    """``σ(z) = 1/(1 + e^{−z})`` elementwise, computed as written (float64).

    Exact to a few ulp wherever the result is a normal float; for ``z < −709`` ``e^{−z}``
    overflows to ``inf`` (no warning) and the result is ``0`` (the true value is below
    ``1e−308``).
    """
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def binary_prob_grad(gen: Generator, s, w) -> np.ndarray:
    """``∂_s D_f(s‖w) = f'(s/w) − f'((1−s)/(1−w))`` for ``s, w ∈ (0, 1)``."""
    fp = fprime_numpy(gen)
    s, w = np.asarray(s, float), np.asarray(w, float)
    with np.errstate(all="ignore"):
        return np.asarray(fp(s / w), float) - np.asarray(fp((1 - s) / (1 - w)), float)


def binary_logit_grad(gen: Generator, s, w) -> np.ndarray:
    """``∂_z D_f(σ(z)‖w) = s(1−s)[f'(s/w) − f'((1−s)/(1−w))]`` at ``s = σ(z)`` (claim C7;
    the pull toward the weak label is its negative)."""
    s = np.asarray(s, float)
    return s * (1 - s) * binary_prob_grad(gen, s, w)
