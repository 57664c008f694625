"""Binary classifiers' probabilities: the logistic function (:func:`theory.binary.sigmoid`,
re-exported) and class-1 probabilities as two-class distributions (numpy)."""
from __future__ import annotations

import numpy as np

from theory.binary import sigmoid

__all__ = ["sigmoid", "as_dist"]


def as_dist(p1) -> np.ndarray:
    """Class-1 probabilities ``(n,)`` → distributions ``(n, 2)``."""
    p1 = np.asarray(p1, float)
    return np.stack([1 - p1, p1], -1)
