"""What every figure module returns, and the provenance line for theory figures."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

__all__ = ["FigureResult", "theory_source", "skipped"]


@dataclasses.dataclass
class FigureResult:
    """``status``: ``"made"`` or ``"skipped"`` (``message`` says why)."""

    name: str
    title: str
    status: str
    message: str = ""
    files: list[str] = dataclasses.field(default_factory=list)
    sources: list[str] = dataclasses.field(default_factory=list)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def skipped(name: str, title: str, message: str) -> FigureResult:
    return FigureResult(name, title, "skipped", message)


def theory_source(what: str) -> str:
    from w2sg.records import code_version
    return f"computed from theory/ ({what}); code version {code_version()}"


def files(paths) -> list[str]:
    return [str(Path(p)) for p in paths]
