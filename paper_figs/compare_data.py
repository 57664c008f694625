"""Run records → the tidy rows of :mod:`paper_figs.compare` (the one place that reads them).

Reads the typed ``run`` and ``llm-run`` records (:mod:`w2sg.records`): ``task``, ``weak``,
``seed``, ``loss``, ``noise``, ``metrics.acc``, ``metrics.pgr`` and ``config``.  ``mode`` is
``"finetune"`` when the run config has a ``finetune`` table (the whole encoder was trained),
else ``"head"``; ``setting`` is the config hash of everything else in the run config, so runs
of different sweeps are never paired.  A record that cannot be used is named in
``unreadable`` (one line: file and field); one of an unknown schema raises
:class:`w2sg.records.RecordSchemaError`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from w2sg.records import LlmRunRecord, RunRecord, config_hash

from .readers import records_of

__all__ = ["RunTable", "tidy_runs"]

_PAIRED = ("kind", "task", "weak", "seed", "loss", "noise", "finetune")


@dataclasses.dataclass
class RunTable:
    """``rows``: tidy rows; ``sources``: their record paths (relative to the root);
    ``unreadable``: one line per record under ``runs/`` that cannot be used (not used)."""

    rows: list[dict]
    sources: list[str]
    unreadable: list[str]


def tidy_runs(root) -> RunTable:
    """One row ``{task, weak, seed, loss, noise, mode, setting, acc, pgr, source}`` per run
    record under ``<root>/runs`` (reference records are skipped: they are not students)."""
    root = Path(root)
    rows, sources = [], []
    found, bad = records_of(root / "runs", (RunRecord, LlmRunRecord))
    for p, rec in found:
        rel = str(p.relative_to(root))
        cfg = rec.config
        rows.append({"task": rec.task, "weak": rec.weak, "seed": rec.seed, "loss": rec.loss,
                     "noise": rec.noise, "mode": "finetune" if cfg.get("finetune") else "head",
                     "setting": config_hash({k: v for k, v in cfg.items() if k not in _PAIRED}),
                     "acc": rec.metrics.acc, "pgr": rec.metrics.pgr, "source": rel})
        sources.append(rel)
    return RunTable(rows, sources, bad)
