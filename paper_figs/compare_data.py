"""Run records → the tidy rows of :mod:`paper_figs.compare` (the one place that reads them).

Schema read (``kind = "run"`` records of :mod:`experiments.runner`, ``kind = "llm-run"`` of
:mod:`experiments.llm`): ``config.{task|data, weak, seed, loss, noise, finetune}``,
``task``, ``metrics.acc``, ``metrics.pgr``.  ``mode`` is ``"finetune"`` when the run config has
a ``finetune`` table (the whole encoder was trained), else ``"head"``; ``setting`` is the
config hash of everything else in the run config, so runs of different sweeps are never paired.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

__all__ = ["RunTable", "tidy_runs"]

_PAIRED = ("kind", "task", "weak", "seed", "loss", "noise", "finetune")


@dataclasses.dataclass
class RunTable:
    """``rows``: tidy rows; ``sources``: their record paths (relative to the root);
    ``unreadable``: records under ``runs/`` that do not parse or lack a field (named, not used)."""

    rows: list[dict]
    sources: list[str]
    unreadable: list[str]


def tidy_runs(root) -> RunTable:
    """One row ``{task, weak, seed, loss, noise, mode, setting, acc, pgr, source}`` per run
    record under ``<root>/runs`` (reference records are skipped: they are not students)."""
    from experiments.records import config_hash
    root = Path(root)
    rows, sources, bad = [], [], []
    folder = root / "runs"
    paths = sorted(p for p in folder.rglob("*.json") if not p.name.startswith(".")) if folder.exists() else []
    for p in paths:
        rel = str(p.relative_to(root))
        try:
            rec = json.loads(p.read_text())
            if rec.get("kind") == "reference":
                continue
            cfg = rec["config"]
            pgr = rec["metrics"].get("pgr")
            row = {"task": str(rec.get("task", cfg.get("task"))), "weak": str(cfg["weak"]),
                   "seed": int(cfg["seed"]), "loss": str(cfg["loss"]), "noise": float(cfg["noise"]),
                   "mode": "finetune" if cfg.get("finetune") else "head",
                   "setting": config_hash({k: v for k, v in cfg.items() if k not in _PAIRED}),
                   "acc": float(rec["metrics"]["acc"]),
                   "pgr": None if pgr is None else float(pgr), "source": rel}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            bad.append(rel)
            continue
        rows.append(row)
        sources.append(rel)
    return RunTable(rows, sources, bad)
