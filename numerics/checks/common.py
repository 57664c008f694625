"""Shared pieces of the checks: generator lists, random distributions, timing."""
from __future__ import annotations

import numpy as np

from theory import NAMED, get_generator

#: typed generators exercised next to the named ones (a small convex grammar).
TYPED = ("(t-1)**2/(t+1)", "alpha:0.5", "alpha:2", "t*log(t) - log(t)", "2*(t-1)**2 + (sqrt(t)-1)**2")
#: strictly convex, smooth at 1 (no tv)
SMOOTH = tuple(n for n in NAMED if n != "tv")


def generators(quick: bool, smooth_only: bool = False):
    names = SMOOTH if smooth_only else NAMED
    typed = TYPED[:2] if quick else TYPED
    return [get_generator(n) for n in names] + [get_generator(t) for t in typed]


def random_dist(rng: np.random.Generator, k: int, kind: str = "mixed") -> np.ndarray:
    """A random point of the simplex; ``kind`` ``"degenerate"`` puts tiny or zero masses in."""
    p = rng.dirichlet(np.full(k, rng.choice([0.3, 1.0, 3.0])))
    if kind == "degenerate" or (kind == "mixed" and rng.random() < 0.25):
        j = rng.integers(0, k)
        p[j] = rng.choice([0.0, 1e-12, 1e-8])
        p = p / p.sum()
    return p
