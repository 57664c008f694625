"""Run records → the tidy rows of :mod:`paper_figs.compare`, from the results table
(:func:`w2sg.results.load`: each record read once per command).

A row is ``{task, weak, seed, loss, noise, noise_model, select, mode, setting, acc, pgr,
weak_acc, ceiling_acc, source}`` (fields of :class:`w2sg.results.Run`): ``mode`` is
``"finetune"`` when the run config has a ``finetune`` table (the whole encoder was trained),
else ``"head"``; ``select`` is ``"none"`` for the fixed recipe, else how the tuned run chose
its hyperparameters (``"weak"`` / ``"oracle"``); ``setting`` is the config hash of everything
else in the run config (:func:`w2sg.results.setting_of`), so runs of different sweeps are
never paired.  A record that cannot be used is named in ``unreadable`` (one line: file and
field); one of an unknown schema raises :class:`w2sg.records.RecordSchemaError`.
"""
from __future__ import annotations

import dataclasses

from w2sg.results import load

__all__ = ["RunTable", "tidy_runs", "TIDY_KEYS"]

#: the keys of a tidy row
TIDY_KEYS = ("task", "weak", "seed", "loss", "noise", "noise_model", "select", "mode", "setting",
             "acc", "pgr", "weak_acc", "ceiling_acc", "source")


@dataclasses.dataclass
class RunTable:
    """``rows``: tidy rows; ``sources``: their record paths (relative to the root);
    ``unreadable``: one line per record under ``runs/`` that cannot be used (not used)."""

    rows: list[dict]
    sources: list[str]
    unreadable: list[str]


def tidy_runs(root) -> RunTable:
    """One tidy row per run record under ``<root>/runs`` (reference records are skipped:
    they are not students)."""
    table = load(root)
    table.refuse_unknown_schema("runs")
    rows = [r.row(TIDY_KEYS) for r in table.runs]
    return RunTable(rows, [r["source"] for r in rows], table.problems("runs"))
