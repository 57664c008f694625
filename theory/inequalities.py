"""Classical closed-form lower bounds of ``D_f`` in terms of ``δ = TV(P, Q)`` (C3).

Each entry is checked against the computed tight curve :func:`theory.joint_range.tight_curve`
by :func:`compare`, which marks it *tight* (equal to the curve on ``(0, 1)``) or *loose*
(strictly below it somewhere), and *valid* (never above the curve).

Sources: Pinsker 1964 / Csiszár 1967 (KL ≥ 2δ²); Vajda 1970; Bretagnolle & Huber 1979;
Le Cam 1986 (Hellinger); Gilardoni 2006 (χ²: 4δ² for δ ≤ ½, δ/(1−δ) above);
Lin 1991 and Topsøe 2000 (Jensen–Shannon); Sason & Verdú 2016 (survey).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import sympy as sp

from .generators import Generator
from .joint_range import tight_curve

__all__ = ["ClassicalBound", "classical_bounds", "compare", "DELTA"]

#: The variable ``δ`` of the closed forms.
DELTA = sp.Symbol("delta", nonnegative=True)
d = DELTA


@dataclasses.dataclass(frozen=True)
class ClassicalBound:
    """``D_f(P‖Q) ≥ expr(δ)`` on ``0 ≤ δ < 1``."""

    name: str
    expr: sp.Expr
    source: str

    @property
    def function(self) -> Callable[[np.ndarray], np.ndarray]:
        from .codegen import numpy_function
        return numpy_function(self.expr, DELTA)


_KL = [
    ClassicalBound("Pinsker 2δ²", 2 * d ** 2, "Pinsker 1964; Csiszár 1967"),
    ClassicalBound("Bretagnolle–Huber −log(1−δ²)", -sp.log(1 - d ** 2), "Bretagnolle & Huber 1979"),
    ClassicalBound("Vajda log((1+δ)/(1−δ)) − 2δ/(1+δ)",
                   sp.log((1 + d) / (1 - d)) - 2 * d / (1 + d), "Vajda 1970"),
]
_CHI2 = [
    ClassicalBound("χ² ≥ 4δ²", 4 * d ** 2, "from Cauchy–Schwarz; Sason & Verdú 2016"),
    ClassicalBound("Gilardoni: 4δ² (δ≤½), δ/(1−δ) (δ>½)",
                   sp.Piecewise((4 * d ** 2, d <= sp.Rational(1, 2)), (d / (1 - d), True)),
                   "Gilardoni 2006"),
]
_TABLE: dict[str, list[ClassicalBound]] = {
    "kl": _KL,
    "reverse_kl": _KL,
    "pearson": _CHI2,
    "neyman": _CHI2,
    "hellinger": [
        ClassicalBound("δ²", d ** 2, "Le Cam 1986 (H² ≥ δ²/2 with Σ(√p−√q)² = 2H²)"),
        ClassicalBound("Le Cam 2(1 − √(1−δ²))", 2 * (1 - sp.sqrt(1 - d ** 2)), "Le Cam 1986"),
    ],
    "js": [
        ClassicalBound("δ²/2", d ** 2 / 2, "Lin 1991 / Topsøe 2000 (leading term)"),
        ClassicalBound("((1+δ)/2)log(1+δ) + ((1−δ)/2)log(1−δ)",
                       (1 + d) / 2 * sp.log(1 + d) + (1 - d) / 2 * sp.log(1 - d),
                       "Topsøe 2000; Briët & Harremoës 2009"),
    ],
    "jeffreys": [
        ClassicalBound("4δ² (Pinsker twice)", 4 * d ** 2, "Pinsker 1964"),
        ClassicalBound("2δ log((1+δ)/(1−δ))", 2 * d * sp.log((1 + d) / (1 - d)),
                       "symmetric two-point pair; Sason & Verdú 2016"),
    ],
    "tv": [ClassicalBound("δ", d, "definition")],
}


def classical_bounds(gen: Generator) -> list[ClassicalBound]:
    """The closed-form bounds known for ``gen`` (empty for typed generators)."""
    return list(_TABLE.get(gen.name, []))


def compare(gen: Generator, bound: ClassicalBound, points: int = 400) -> dict:
    """Compare a closed form with the tight curve on ``δ ∈ (0, 1)``.

    Returns ``{"name", "expr", "source", "valid", "tight", "max_gap", "max_relative_gap"}``;
    ``valid`` means ``bound ≤ L_f`` (to 1e-9 relative) everywhere, ``tight`` means the
    largest relative gap is below 1e-7.
    """
    deltas = np.linspace(0.0025, 0.9975, points)
    curve = tight_curve(gen, deltas)
    with np.errstate(all="ignore"):
        values = np.asarray(bound.function(deltas), dtype=float) * np.ones_like(deltas)
    gap = curve - values
    rel = gap / np.maximum(np.abs(curve), 1e-300)
    return {
        "name": bound.name,
        "expr": sp.sstr(bound.expr),
        "source": bound.source,
        "valid": bool(np.all(rel >= -1e-9)),
        "tight": bool(np.max(np.abs(rel)) < 1e-7),
        "max_gap": float(np.max(gap)),
        "max_relative_gap": float(np.max(rel)),
    }
