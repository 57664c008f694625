"""Record readers: flat rows for the figures, from the typed records of :mod:`w2sg.records`.

Every reader parses each file into its dataclass (:func:`w2sg.records.read_record`) and reads
its fields; nothing is guessed.  It returns flat rows (plain dicts with fixed keys) and the
relative paths of the records it used, so the figures can say what they were made from.
A record that cannot be used (not JSON, wrong kind, missing or mistyped field) is listed in
``ReadResult.problems`` (one line naming the file and the field), never silently dropped;
:func:`audit` lists every such record under a results root for ``w2sg figs`` to print, and a
record of an unknown ``schema`` raises :class:`w2sg.records.RecordSchemaError`.

Layout under the results root (see :mod:`w2sg.records`)::

    runs/    run, reference and llm-run records   (``w2sg run``)
    checks/  check, check-summary, check-data and counterexample records (``w2sg check``)
    bench/   bench records                        (``w2sg bench``)
"""
from __future__ import annotations

import math
from pathlib import Path

from w2sg.records import (BenchRecord, CheckRecord, CounterexampleRecord, LlmRunRecord,
                          RecordError, RecordSchemaError, ReferenceRecord, RunRecord, read_record)

__all__ = ["RunRow", "FINETUNED_SUFFIX", "read_runs", "records_of", "read_checks", "read_counterexamples", "read_bench",
           "read_kernel_ratios", "c4_points", "c6_points", "audit", "ReadResult", "finite"]

RunRow = dict  # keys: task, pair, loss, noise, seed, acc, weak_acc, ceiling_acc, pgr, train_s, steps, finetune, source

#: Appended to the weak→strong pair name of fine-tuned runs (records with a ``finetune``
#: config table), so every figure groups them apart from the frozen-encoder heads.
FINETUNED_SUFFIX = "(fine-tuned)"

#: the record folders under a results root, each read by the readers below
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


# ----------------------------------------------------------------------------- helpers
def _json_files(folder: Path) -> list[Path]:
    """Record files under ``folder``: ``*.json``, not hidden (temporary files are hidden;
    records moved aside end in ``.corrupt-<stamp>``).  Only names are listed (nothing is
    opened; linked folders are not followed): :func:`w2sg.records.read_record` refuses what
    is not a regular file (a FIFO, a device, a folder named ``*.json``, a link out of the root)."""
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.rglob("*.json"))
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def records_of(folder: Path, kinds: tuple, root: str | Path | None = None):
    """``(path, record)`` of every file of ``kinds`` under ``folder`` (sorted by path), and
    the problems (one line each: file and field; a file that is not a regular file, links
    out of ``root`` (default: ``folder``'s parent, the results root), is too large or too
    deep, or holds a value out of its range is one of them).
    Records of other (known) kinds are passed over; an unknown schema raises."""
    folder = Path(folder)
    root = folder.parent if root is None else root
    out, problems = [], []
    for p in _json_files(folder):
        try:
            rec = read_record(p, root=root)
        except RecordSchemaError:
            raise
        except RecordError as exc:
            problems.append(str(exc))
            continue
        if isinstance(rec, kinds):
            out.append((p, rec))
    return out, problems


def audit(root: str | Path) -> list[str]:
    """One line per record under ``root`` (``runs/``, ``checks/``, ``bench/``) that cannot be
    used, naming the file and the field; raises :class:`w2sg.records.RecordSchemaError` on
    a record of an unknown schema (``w2sg figs`` refuses those)."""
    root = Path(root)
    problems = []
    for name in FOLDERS:
        problems += records_of(root / name, ())[1]
    return problems


# ----------------------------------------------------------------------------- runs
def _run_row(rec: RunRecord | LlmRunRecord, source: str) -> RunRow:
    finetuned = bool(rec.config.get("finetune"))
    pair = f"{rec.weak}→{rec.strong}" + (f" {FINETUNED_SUFFIX}" if finetuned else "")
    return {"task": rec.task, "pair": pair, "loss": rec.loss, "finetune": finetuned,
            "noise": rec.noise, "seed": rec.seed, "acc": rec.metrics.acc,
            "weak_acc": rec.reference.weak.acc, "ceiling_acc": rec.reference.ceiling.acc,
            "pgr": rec.metrics.pgr, "train_s": rec.timings.train_s,
            "steps": rec.config["train"]["steps"], "source": source}


def read_runs(root: str | Path) -> ReadResult:
    """One row per W2S run (``run`` and ``llm-run`` records) under ``<root>/runs``
    (reference records hold the baselines every run copies; they are not rows)."""
    root = Path(root)
    folder = root / "runs"
    found, problems = records_of(folder, (RunRecord, LlmRunRecord))
    rows = [_run_row(rec, _rel(p, root)) for p, rec in found]
    return ReadResult(rows, dict.fromkeys(r["source"] for r in rows), problems, folder)


# ----------------------------------------------------------------------------- checks
def read_checks(root: str | Path) -> dict[str, dict]:
    """One row per claim from the ``check`` records under ``<root>/checks``:
    ``{"C4": {"claim", "status", "worst_slack", "instances", "details", "source", "quick"}}``.

    When several records hold the same claim, a full run is preferred over a quick one,
    then the newest (``written_at``).
    """
    root = Path(root)
    found, _ = records_of(root / "checks", (CheckRecord,))
    best: dict[str, tuple] = {}
    for p, rec in found:
        key = (rec.mode == "full", rec.written_at, str(p))
        if rec.claim not in best or key > best[rec.claim][0]:
            best[rec.claim] = (key, {"claim": rec.claim, "status": rec.status,
                                     "worst_slack": rec.worst_slack, "instances": rec.instances,
                                     "details": rec.details, "source": _rel(p, root),
                                     "quick": rec.mode == "quick"})
    return {c: v[1] for c, v in sorted(best.items())}


def read_counterexamples(root: str | Path) -> ReadResult:
    """Stored C5 counterexamples: rows ``{variant, generator, gain, misfit, seed,
    counterexample, source}`` where ``gain = E D(F*‖F_w) − E D(F*‖F̂_sw)`` and ``misfit =
    E D(F̂_sw‖F_w)`` (the inequality says gain ≥ misfit)."""
    root = Path(root)
    folder = root / "checks"
    found, problems = records_of(folder, (CounterexampleRecord,))
    rows = [{"variant": rec.variant, "generator": rec.generator, "gain": rec.gain,
             "misfit": rec.misfit, "seed": rec.search_seed,
             "counterexample": True,  # stored because the search found it failing
             "source": _rel(p, root)} for p, rec in found]
    return ReadResult(rows, dict.fromkeys(r["source"] for r in rows), problems, folder)


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
    """``(path, record, problems)`` of the newest bench record (by file name: a UTC stamp)
    that has ``section``; ``(None, None, problems)`` if none."""
    found, problems = records_of(root / "bench", (BenchRecord,))
    for p, rec in sorted(found, key=lambda pr: pr[0].name, reverse=True):
        if getattr(rec, section):
            return p, rec, problems
    return None, None, problems


def read_bench(root: str | Path) -> ReadResult:
    """Training-cost rows ``{loss, step_ms, peak_mb, device, source}`` from the newest bench
    record with a ``training`` section (:func:`experiments.bench.bench_training`: one row
    per loss, ``epoch_ms_wall`` = one full-batch step of the head trainer, ``peak_mib``).

    Wall time is used: the losses are timed interleaved, so load affects them alike, while
    process CPU time also counts idle-spinning pool threads (seen here: CE's first epochs
    charged twice their wall time).  ``w2sg bench`` measures on the CPU.
    """
    root = Path(root)
    p, rec, problems = _newest_bench(root, "training")
    if rec is None:
        return ReadResult([], {}, problems, root / "bench")
    src = _rel(p, root)
    out = [{"loss": r["loss"], "step_ms": r["epoch_ms_wall"], "peak_mb": r["peak_mib"],
            "device": "cpu", "source": src} for r in rec.training["rows"]]
    return ReadResult(out, {src: None}, problems, root / "bench")


def read_kernel_ratios(root: str | Path) -> ReadResult:
    """Loss-kernel rows ``{loss, shape, variant, ratio, ms, source}`` (time ÷ CE, forward +
    backward, median CPU time) from the newest bench record with a ``kernels`` section."""
    root = Path(root)
    p, rec, problems = _newest_bench(root, "kernels")
    if rec is None:
        return ReadResult([], {}, problems, root / "bench")
    src = _rel(p, root)
    out = [{"loss": r["loss"], "shape": f"{sh['n']}×{sh['k']}", "variant": r["variant"],
            "ratio": r["ratio_cpu"], "ms": r["cpu"]["median_ms"], "source": src}
           for sh in rec.kernels["shapes"] for r in sh["rows"]]
    return ReadResult(out, {src: None}, problems, root / "bench")


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)
