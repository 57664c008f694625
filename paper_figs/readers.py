"""Record readers: flat rows for the figures, from the results table of :mod:`w2sg.results`.

Thin façades over :func:`w2sg.results.load`, which reads each record of a results root once
per command (parsed into its dataclass by :func:`w2sg.records.read_record`; nothing is
guessed).  Each reader returns flat rows (plain dicts with fixed keys, fresh on every call)
and the relative paths of the records it used, so the figures can say what they were made
from.  A record that cannot be used (not JSON, wrong kind, missing or mistyped field) is
listed in ``ReadResult.problems`` (one line naming the file and the field), never silently
dropped; :func:`audit` lists every such record under a results root for ``w2sg figs`` to
print, and a record of an unknown ``schema`` raises :class:`w2sg.records.RecordSchemaError`.

Layout under the results root (see :mod:`w2sg.records`)::

    runs/    run, reference and llm-run records   (``w2sg run``)
    checks/  check, check-summary, check-data and counterexample records (``w2sg check``)
    bench/   bench records                        (``w2sg bench``)
"""
from __future__ import annotations

import math
from pathlib import Path

from w2sg.results import FINETUNED_SUFFIX, load

__all__ = ["RunRow", "FINETUNED_SUFFIX", "RUN_ROW_KEYS", "read_runs", "read_checks",
           "read_counterexamples", "read_bench", "read_kernel_ratios", "c4_points", "c6_points",
           "audit", "ReadResult", "finite"]

RunRow = dict  # keys: RUN_ROW_KEYS

#: the keys of a :func:`read_runs` row (fields of :class:`w2sg.results.Run`)
RUN_ROW_KEYS = ("task", "pair", "loss", "noise", "seed", "acc", "weak_acc", "ceiling_acc", "pgr",
                "train_s", "steps", "finetune", "source")

#: the record folders under a results root that :func:`audit` covers
FOLDERS = ("runs", "checks", "bench")


class ReadResult(list):
    """A list of rows with ``.sources`` (relative record paths), ``.problems`` (one line per
    record that could not be used) and ``.skipped`` (their number)."""

    def __init__(self, rows=(), sources=(), problems=(), folder=None):
        super().__init__(rows)
        self.sources = list(sources)
        self.problems = list(problems)
        self.folder = folder

    @property
    def skipped(self) -> int:
        return len(self.problems)


def _table(root, *folders: str):
    """The results table of ``root``, refusing a record of an unknown schema in ``folders``."""
    table = load(root)
    table.refuse_unknown_schema(*folders)
    return table


def audit(root: str | Path) -> list[str]:
    """One line per record under ``root`` (``runs/``, ``checks/``, ``bench/``) that cannot be
    used, naming the file and the field; raises :class:`w2sg.records.RecordSchemaError` on
    a record of an unknown schema (``w2sg figs`` refuses those)."""
    return _table(root, *FOLDERS).problems(*FOLDERS)


# ----------------------------------------------------------------------------- runs
def read_runs(root: str | Path) -> ReadResult:
    """One row per W2S run (``run`` and ``llm-run`` records) under ``<root>/runs``
    (reference records hold the baselines every run copies; they are not rows)."""
    table = _table(root, "runs")
    rows = [r.row(RUN_ROW_KEYS) for r in table.runs]
    return ReadResult(rows, dict.fromkeys(r["source"] for r in rows), table.problems("runs"),
                      Path(root) / "runs")


# ----------------------------------------------------------------------------- checks
def read_checks(root: str | Path) -> dict[str, dict]:
    """One row per claim from the ``check`` records under ``<root>/checks``:
    ``{"C4": {"claim", "status", "worst_slack", "instances", "details", "source", "quick"}}``.

    When several records hold the same claim, a full run is preferred over a quick one,
    then the newest (``written_at``).
    """
    best: dict[str, tuple] = {}
    for e in _table(root, "checks").checks:
        rec, src = e.record, e.source
        key = (rec.mode == "full", rec.written_at, src)
        if rec.claim not in best or key > best[rec.claim][0]:
            best[rec.claim] = (key, {"claim": rec.claim, "status": rec.status,
                                     "worst_slack": rec.worst_slack, "instances": rec.instances,
                                     "details": rec.details, "source": src,
                                     "quick": rec.mode == "quick"})
    return {c: v[1] for c, v in sorted(best.items())}


def read_counterexamples(root: str | Path) -> ReadResult:
    """Stored C5 counterexamples: rows ``{variant, generator, gain, misfit, seed,
    counterexample, source}`` where ``gain = E D(F*‖F_w) − E D(F*‖F̂_sw)`` and ``misfit =
    E D(F̂_sw‖F_w)`` (the inequality says gain ≥ misfit)."""
    table = _table(root, "checks")
    rows = [{"variant": e.record.variant, "generator": e.record.generator, "gain": e.record.gain,
             "misfit": e.record.misfit, "seed": e.record.search_seed,
             "counterexample": True,  # stored because the search found it failing
             "source": e.source} for e in table.counterexamples]
    return ReadResult(rows, dict.fromkeys(r["source"] for r in rows), table.problems("checks"),
                      Path(root) / "checks")


def c4_points(check: dict) -> list[dict]:
    """C4 instances of a check row (``details["instances"]``, :mod:`numerics.checks.c4`):
    ``{generator, err_w, err_sw, radius}`` (``radius = L̆_f⁻¹(R_f)``; the claim is
    ``|err_sw − err_w| ≤ radius``)."""
    return [{"generator": it["generator"], "err_w": it["err_w"], "err_sw": it["err_sw"],
             "radius": it["radius"]}
            for it in check["details"].get("instances", [])
            if None not in (it["err_w"], it["err_sw"], it["radius"])]


def c6_points(check: dict) -> list[dict]:
    """C6 cells of a check row (``details["coverage"]``, :mod:`numerics.checks.c6`) per
    ``(generator, n)``: ``{generator, n, excess_mean, excess_q, bound, coverage, delta}``."""
    return [{k: cell[k] for k in ("generator", "n", "excess_mean", "excess_q", "bound",
                                   "coverage", "delta")}
            for cell in check["details"].get("coverage", [])]


# ----------------------------------------------------------------------------- bench
def _newest_bench(root: Path, section: str):
    """``(source, record, problems)`` of the newest bench record (by file name: a UTC stamp)
    that has ``section``; ``(None, None, problems)`` if none."""
    from w2sg.records import BenchRecord
    table = _table(root, "bench")
    found = [e for e in table.bench if isinstance(e.record, BenchRecord)]
    for e in sorted(found, key=lambda e: Path(e.source).name, reverse=True):
        if getattr(e.record, section):
            return e.source, e.record, table.problems("bench")
    return None, None, table.problems("bench")


def read_bench(root: str | Path) -> ReadResult:
    """Training-cost rows ``{loss, step_ms, peak_mb, device, source}`` from the newest bench
    record with a ``training`` section (:func:`experiments.bench.bench_training`: one row
    per loss, ``epoch_ms_wall`` = one full-batch step of the head trainer, ``peak_mib``).

    Wall time is used: the losses are timed interleaved, so load affects them alike, while
    process CPU time also counts idle-spinning pool threads (seen here: CE's first epochs
    charged twice their wall time).  ``w2sg bench`` measures on the CPU.
    """
    root = Path(root)
    src, rec, problems = _newest_bench(root, "training")
    if rec is None:
        return ReadResult([], {}, problems, root / "bench")
    out = [{"loss": r["loss"], "step_ms": r["epoch_ms_wall"], "peak_mb": r["peak_mib"],
            "device": "cpu", "source": src} for r in rec.training["rows"]]
    return ReadResult(out, {src: None}, problems, root / "bench")


def read_kernel_ratios(root: str | Path) -> ReadResult:
    """Loss-kernel rows ``{loss, shape, variant, ratio, ms, source}`` (time ÷ CE, forward +
    backward, median CPU time) from the newest bench record with a ``kernels`` section."""
    root = Path(root)
    src, rec, problems = _newest_bench(root, "kernels")
    if rec is None:
        return ReadResult([], {}, problems, root / "bench")
    out = [{"loss": r["loss"], "shape": f"{sh['n']}×{sh['k']}", "variant": r["variant"],
            "ratio": r["ratio_cpu"], "ms": r["cpu"]["median_ms"], "source": src}
           for sh in rec.kernels["shapes"] for r in sh["rows"]]
    return ReadResult(out, {src: None}, problems, root / "bench")


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)
