"""The row every check returns (one per claim of docs/THEORY.md)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["CheckResult", "status_for"]


@dataclasses.dataclass
class CheckResult:
    """One claim's check.

    Attributes:
        claim: ``"C1"`` … ``"C8"``.
        instances: how many instances (points, pairs, fits, draws) were tried.
        worst_slack: the smallest margin of the claimed inequality over all instances,
            after allowing the stated numerical tolerance (``details["tolerance"]``):
            ``≥ 0`` means the claim held everywhere it was tried.  For an equality,
            slack = tolerance − |error|.
        status: ``"pass"``, ``"FAIL"`` (a theorem failed: a bug) or ``"info"``.
        seconds: wall time.
        details: claim-specific data (curves, slacks, coverage, counterexamples, sources).
    """

    claim: str
    instances: int
    worst_slack: float
    status: str
    seconds: float
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not math.isfinite(d["worst_slack"]):
            d["worst_slack"] = str(d["worst_slack"])
        return d


def status_for(worst_slack: float) -> str:
    return "pass" if worst_slack >= 0 else "FAIL"
