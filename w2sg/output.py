"""What a command prints: one payload as strict JSON (``--json``) or as text (a leaf module)."""
from __future__ import annotations

from .strict_json import dumps

__all__ = ["emit"]


def emit(payload, as_json: bool, text: str) -> None:
    """Print ``payload`` as strict JSON (``--json``; non-finite numbers as ``null``) or ``text``."""
    print(dumps(payload, indent=2) if as_json else text)
