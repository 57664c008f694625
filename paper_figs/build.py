"""Build every figure from the records under a results root (never trains a model)."""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from . import (fig_bounds, fig_compare, fig_cost, fig_joint_range, fig_local, fig_main, fig_noise,
               fig_sample)
from .common import FigureResult
from w2sg.records import RecordSchemaError

__all__ = ["FIGURES", "build_all", "figure_names"]

#: in the order of the issues: main result, C3, C2, C7, C4/C5, C6, cost, paired comparison
FIGURES = (fig_main, fig_joint_range, fig_local, fig_noise, fig_bounds, fig_sample, fig_cost,
           fig_compare)


def figure_names() -> list[str]:
    return [m.NAME for m in FIGURES]


def build_all(root, only: list[str] | None = None) -> list[FigureResult]:
    """Make each figure under ``<root>/figures``; a figure whose records are missing is
    skipped with a message, one that fails is reported as ``error`` (the others still run).
    Writes ``<root>/figures/index.json`` (with ``only``, other figures' entries are kept)."""
    root = Path(root)
    figdir = root / "figures"
    results = []
    for mod in FIGURES:
        if only and mod.NAME not in only:
            continue
        t0 = time.perf_counter()
        try:
            res = mod.make(root, figdir)
        except RecordSchemaError:  # refused, never a figure made without it
            raise
        except Exception as exc:  # a plotting bug must not hide the other figures
            res = FigureResult(mod.NAME, mod.TITLE, "error", f"{type(exc).__name__}: {exc}",
                               summary={"traceback": traceback.format_exc(limit=4)})
        res.summary = dict(res.summary, seconds=round(time.perf_counter() - t0, 2))
        results.append(res)
    figdir.mkdir(parents=True, exist_ok=True)
    entries = {r.name: r.to_dict() for r in results}
    if only:  # keep the entries of the figures not rebuilt this time
        try:
            old = {e["name"]: e for e in json.loads((figdir / "index.json").read_text())}
        except (OSError, ValueError, KeyError, TypeError):
            old = {}
        entries = {**old, **entries}
    ordered = [entries[n] for n in figure_names() if n in entries]
    tmp = figdir / ".index.json.tmp"
    from w2sg.strict_json import dumps
    tmp.write_text(dumps(ordered))
    tmp.replace(figdir / "index.json")
    return results
