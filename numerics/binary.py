"""Binary classifiers' probabilities: the logistic function and class-1 probabilities as
two-class distributions (numpy)."""
from __future__ import annotations

import numpy as np

__all__ = ["sigmoid", "as_dist"]


def sigmoid(z):
    """``σ(z) = 1/(1 + e^{−z})`` without overflow for any float ``z`` (elementwise)."""
    z = np.asarray(z, float)
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


def as_dist(p1) -> np.ndarray:
    """Class-1 probabilities ``(n,)`` → distributions ``(n, 2)``."""
    p1 = np.asarray(p1, float)
    return np.stack([1 - p1, p1], -1)
