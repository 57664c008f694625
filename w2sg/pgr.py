"""Performance gap recovered (PGR): the one implementation (a leaf module: no imports).

``PGR = (acc_w2s − acc_weak) / (acc_ceiling − acc_weak)`` (Burns et al. 2023, "Weak-to-strong
generalization", eq. 1): the fraction of the weak-to-ceiling accuracy gap the student
recovers.  Undefined (NaN here; ``null`` with a reason in records) when the gap is zero.
"""
from __future__ import annotations

__all__ = ["pgr"]


def pgr(acc_w2s: float, acc_weak: float, acc_ceiling: float) -> float:
    """``(acc_w2s − acc_weak) / (acc_ceiling − acc_weak)``; NaN when ``|gap| ≤ 1e-12``."""
    gap = acc_ceiling - acc_weak
    return float((acc_w2s - acc_weak) / gap) if abs(gap) > 1e-12 else float("nan")
