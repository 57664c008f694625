"""Strict JSON (RFC 8259): what every record and every ``--json`` output is written as.

A leaf module (imports nothing of the toolkit).  ``NaN`` and ``±Infinity`` are not JSON
(jq, browsers and most languages reject them), so :func:`plain` maps every non-finite
float to ``None``; numpy scalars and arrays become Python numbers and lists, paths strings.
:func:`dumps` then encodes with ``allow_nan=False``, so nothing non-strict can slip through.
"""
from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

__all__ = ["plain", "dumps"]


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: dicts, lists, str, int, finite float, bool, None.

    Non-finite floats become ``None``; numpy scalars/arrays, tuples and sets are converted;
    dataclass-like objects must be converted by their owner first (anything else is an error).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [plain(v) for v in sorted(value)]
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return plain(tolist())
    raise TypeError(f"{type(value).__name__} is not JSON data: {value!r}")


def dumps(value: Any, indent: int | None = 1) -> str:
    """``value`` (after :func:`plain`) as strict JSON text."""
    return json.dumps(plain(value), indent=indent, allow_nan=False, ensure_ascii=False)
