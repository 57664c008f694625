"""One module per claim of docs/THEORY.md; each exposes ``check_cX(quick, seed) -> CheckResult``."""
from __future__ import annotations

import importlib

CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8")

__all__ = ["CLAIMS", "get_check", "run_check"]


def get_check(claim: str):
    claim = claim.upper()
    mod = importlib.import_module(f"numerics.checks.{claim.lower()}")
    return getattr(mod, f"check_{claim.lower()}")


def run_check(claim: str, quick: bool = True, seed: int = 0):
    return get_check(claim)(quick=quick, seed=seed)
