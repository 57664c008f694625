"""One module per claim of docs/THEORY.md; each exposes ``check_cX(quick, seed) -> CheckResult``."""
from __future__ import annotations

import importlib

CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8")

__all__ = ["CLAIMS", "get_check"]


def get_check(claim: str):
    """``check_cX(quick, seed) -> CheckResult`` of claim ``cX`` (case-insensitive)."""
    claim = claim.upper()
    mod = importlib.import_module(f"numerics.checks.{claim.lower()}")
    return getattr(mod, f"check_{claim.lower()}")
