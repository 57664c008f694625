"""Typed, versioned result records: one dataclass per kind, strict JSON, atomic writes.

A leaf module: the standard library and :mod:`w2sg.strict_json` only (nothing else of the
toolkit), so every package (and any outside script) can read records without torch.

Kinds (the ``kind`` field) and where :func:`results_root` keeps them::

    run            runs/<task>/<weak>/<loss>/noise<P>-seed<S>-<hash>.json   RunRecord
    reference      runs/reference/<task>/<weak>/seed<S>-<hash>.json (+ .npz) ReferenceRecord
    tuning         runs/tuning/<task>/<weak>/<loss>/noise<P>-<model>-<hash>.json TuningRecord
    llm-run        runs/llm/<weak>__<strong>/<loss>/noise<P>-seed<S>-<hash>.json  LlmRunRecord
    check          checks/C<k>.json                                        CheckRecord
    check-summary  checks/summary.json                                     CheckSummaryRecord
    check-data     checks/c3_curves.json, c4_slacks.json, c6_coverage.json CheckDataRecord
    counterexample checks/counterexamples/c5_*.json                        CounterexampleRecord
    bench          bench/bench-<UTC stamp>[-quick].json                    BenchRecord
    compare        compare/<metric>-vs-<baseline>.json                     CompareRecord
    (figures/      PNG + PDF + caption per figure, ``w2sg figs``)

Schema versions (the integer ``schema`` field of every kind):

* ``1`` — the untyped records written before this module existed (they have no ``schema``
  field; ``NaN`` literals, duplicated ``weak``/``weak_model``).  They are **refused**, not
  upgraded: :func:`parse_record` raises :class:`RecordError` saying which command rewrites
  them (``w2sg run`` moves an invalid run/reference record aside and recomputes it).
* ``2`` — :data:`SCHEMA`, the dataclasses below.  Values are strict JSON: a quantity that
  is undefined or non-finite is ``null``, with a reason field where a reader needs one
  (``pgr`` / ``pgr_undefined``, ``worst_slack`` / ``worst_slack_nonfinite``).

Readers call :func:`read_record` (or :func:`parse_record`) and read fields of the returned
dataclass, never alternatives; anything else — a file that is not a regular file (FIFO,
device, folder, a link out of the results root), too large or too deep (:data:`MAX_RECORD_BYTES`,
:data:`MAX_DEPTH`), unparsable JSON, an unknown ``schema``, a wrong ``kind``, a missing field
(except the few marked :data:`ADDED_LATER`, which records written before them lack and read
as their default), one of the wrong type, a number that is not finite or a value out of the
range declared on its field (:func:`fraction`, :func:`nonnegative`, :func:`in_range`,
:func:`file_name`, :func:`relative_path`) — raises :class:`RecordError`, whose one-line
message names the file and the field.  Free-form sub-objects (a run's
``config``, ``splits``, ``train_info``; a check's ``details``; the bench sections) are typed
``dict`` and documented where they are written.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import stat
import subprocess
import tempfile
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .strict_json import dumps, plain

__all__ = ["to_plain", "finite_or_none", "SCHEMA", "RecordError", "RecordSchemaError", "WeakMetrics", "CeilingMetrics",
           "Baselines", "StudentMetrics",
           "Tuning", "NoiseInfo", "TuningRecord", "ADDED_LATER", "RunTimings", "ReferenceTimings", "RunRecord",
           "ReferenceRecord", "LlmRunRecord", "CheckRow", "CheckRecord", "CheckSummaryRecord",
           "CheckDataRecord", "CounterexampleRecord", "BenchRecord", "CudaBenchRecord", "CompareRecord", "KINDS", "Record",
           "results_root", "config_hash", "code_version", "file_sha256", "write_record", "write_atomic",
           "read_record", "parse_record", "student_metrics", "worst_slack_fields",
           "PGR_UNDEFINED", "clean_temp_files", "move_aside", "in_range", "fraction", "nonnegative",
           "file_name", "relative_path", "MAX_RECORD_BYTES", "MAX_DEPTH", "read_regular",
           "temp_path", "is_temp_file"]

#: The schema version every record written by this code carries.
SCHEMA = 2

#: ``pgr_undefined`` when the ceiling and the weak supervisor have the same accuracy.
PGR_UNDEFINED = "ceiling accuracy equals weak accuracy (no gap to recover)"


class RecordError(ValueError):
    """A record that cannot be used; the message is one line naming the file and the field."""

    def __init__(self, path, field: str | None, problem: str):
        self.path, self.field, self.problem = str(path), field, problem
        where = f"{self.path}: field '{field}'" if field else self.path
        super().__init__(f"{where}: {problem}")


class RecordSchemaError(RecordError):
    """A record of an unknown ``schema`` version (including unversioned, older records)."""


# ----------------------------------------------------------------------------- value ranges
# Declared once, on the fields (``dataclasses.field`` metadata), enforced by parse_record and
# listed in docs/RECORDS.md (a test keeps the two in step).  Every number of a record, typed
# or inside a free-form object, must be finite; a field with a range must lie in it.
def in_range(lo: float, hi: float, **kw):
    """A field whose value (each item, for a list) lies in ``[lo, hi]``; ``kw`` as for
    :func:`dataclasses.field` (e.g. ``default=None`` for an optional field)."""
    return field(metadata={"range": (lo, hi)}, **kw)


def fraction(**kw):
    """A probability, accuracy, AUROC, ECE or agreement: in ``[0, 1]``."""
    return in_range(0.0, 1.0, **kw)


def nonnegative(**kw):
    """A time, count or seed: ``>= 0``."""
    return in_range(0, math.inf, **kw)


def file_name(**kw):
    """A path stored in a record that must stay in the record's own folder: a plain file name
    (no ``/``, ``\\``, NUL, not ``.``/``..``, not hidden)."""
    return field(metadata={"format": "file name in the record's folder"}, **kw)


def relative_path(**kw):
    """A path stored in a record, relative to the results root, that cannot leave it
    (not absolute, no ``..`` or ``.`` part, no ``\\`` or NUL)."""
    return field(metadata={"format": "path relative to the results root"}, **kw)


def _check_file_name(x: str) -> str | None:
    if x in ("", ".", "..") or x.startswith(".") or any(c in x for c in "/\\\0"):
        return f"{x!r} is not a plain file name in the record's folder"
    return None


def _check_relative_path(x: str) -> str | None:
    parts = x.split("/")
    if not x or x.startswith("/") or any(c in x for c in "\\\0") or \
            any(p in ("", ".", "..") for p in parts):
        return f"{x!r} is not a path inside the results root (relative, no '..')"
    return None


_FORMATS = {"file name in the record's folder": _check_file_name,
            "path relative to the results root": _check_relative_path}


def _fmt_bound(x) -> str:
    return "inf" if x == math.inf else f"{x:g}"


def range_text(f: dataclasses.Field) -> str:
    """The constraint of a field as written in docs/RECORDS.md (``""`` if none)."""
    if "range" in f.metadata:
        lo, hi = f.metadata["range"]
        return f"in [{_fmt_bound(lo)}, {_fmt_bound(hi)}]" if hi != math.inf else f">= {_fmt_bound(lo)}"
    return f.metadata.get("format", "")


# ----------------------------------------------------------------------------- kinds
@dataclass
class WeakMetrics:
    """The weak supervisor on the test split (``auroc`` null with one class), and its
    accuracy on the student split it labels."""
    acc: float = fraction()
    auroc: Optional[float] = fraction()
    ece: float = fraction()
    acc_student_split: float = fraction()


@dataclass
class CeilingMetrics:
    """The strong ceiling (trained on ground truth) on the test split; ``agreement_weak``:
    fraction of test predictions equal to the weak supervisor's."""
    acc: float = fraction()
    auroc: Optional[float] = fraction()
    ece: float = fraction()
    agreement_weak: float = fraction()


@dataclass
class Baselines:
    """Weak supervisor and strong ceiling of one (task, weak model, seed); ``gap`` =
    ceiling acc − weak acc."""
    weak: WeakMetrics
    ceiling: CeilingMetrics
    gap: float = in_range(-1.0, 1.0)


@dataclass
class StudentMetrics:
    """The W2S student on the test split.  ``pgr`` = (acc − weak acc)/(ceiling acc − weak
    acc) (:func:`w2sg.pgr.pgr`), null with ``pgr_undefined`` saying why when there is no gap.
    ``agreement_weak``: test predictions equal to the weak supervisor's;
    ``agreement_weak_labels_train``: train predictions equal to the (noisy) weak labels (null
    when fine-tuning: it would cost a pass over the train split);
    ``acc_on_flipped_train``: accuracy on the flipped train examples (null when none were
    flipped, or when fine-tuning); ``noisy_label_acc_train``: accuracy of the noisy labels."""
    acc: float = fraction()
    auroc: Optional[float] = fraction()
    ece: float = fraction()
    pgr: Optional[float]
    pgr_undefined: Optional[str]
    agreement_weak: float = fraction()
    agreement_weak_labels_train: Optional[float] = fraction()
    acc_on_flipped_train: Optional[float] = fraction()
    noisy_label_acc_train: float = fraction()


@dataclass
class Tuning:
    """How a tuned run's training hyperparameters were chosen (``w2sg run --tune``;
    :func:`experiments.runner.execute_tuning`; fine-tuned runs: :mod:`experiments.finetune_tune`).
    ``grid``: the configurations tried, each ``{"weight_decay", "lr"}`` (fine-tuned runs:
    ``{"lr"}``); ``chosen``: the one used (an entry of ``grid``);
    ``select``: ``"weak"`` (agreement with the noisy weak labels of the validation slice) or
    ``"oracle"`` (ground truth of the validation slice); ``tuning_seeds``: the seeds the
    grid was scored on (disjoint from the evaluation seeds); ``scores``: the selection score
    of each grid entry (mean over the tuning seeds; same order as ``grid``)."""
    grid: list[dict]
    chosen: dict
    select: str
    tuning_seeds: list[int] = nonnegative()
    scores: list[float] = fraction()


@dataclass
class NoiseInfo:
    """The label noise actually applied to the student split: ``flipped`` rows in all,
    ``flipped_by_class`` = [from class 0, from class 1], the class of the weak label before
    flipping (P(class 1) > 0.5; pair tasks: the sign of the logit, A preferred = 1)."""
    flipped: int = nonnegative()
    flipped_by_class: list[int] = nonnegative()


@dataclass
class RunTimings:
    train_s: float = nonnegative()
    total_s: float = nonnegative()


@dataclass
class ReferenceTimings:
    weak_s: float = nonnegative()
    ceiling_s: float = nonnegative()
    features_s: float = nonnegative()
    total_s: float = nonnegative()


@dataclass(kw_only=True)
class _Header:
    """Fields every record has: ``kind``, ``schema``, ``code_version`` (``git describe``)
    and ``written_at`` (UTC, ISO 8601)."""
    kind: str
    schema: int = SCHEMA
    code_version: str = ""
    written_at: str = ""


@dataclass(kw_only=True)
class RunRecord(_Header):
    """One W2S run (``w2sg run``; :func:`experiments.runner.execute_run`).

    ``config``: the run config (kind, task, weak, strong, seed, pool, sizes, max_length,
    train, weak_train, loss, noise[, finetune]); ``config_hash`` = :func:`config_hash` of it.
    ``weak``/``strong``: model names.  ``smoothing``: the weak-label smoothing ε of the
    loss (``config["train"]["smoothing"]``).  ``reference``: the baselines copied from the
    reference record at ``reference_record`` (path relative to the results root).
    ``splits``: the task's split info; ``train_info``: val_acc, best_step, final_loss,
    n_flipped (or finetune settings), loss_kernel (``c``, ``torch``, ``triton`` or null:
    which generated kernel computed an f-divergence loss; records written before it have
    no such key), lr and weight_decay (the values trained with: ``tuning.chosen`` in a tuned
    run; older records lack them).  ``noise_model``: ``symmetric`` (default), ``asymmetric`` or ``confident``
    (:func:`experiments.pipeline.noise_labels`); ``noise_info``: :class:`NoiseInfo`;
    ``tuning``: :class:`Tuning` for a tuned run, null otherwise (the config then has a
    ``tune`` key, and ``config.train``'s lr / weight_decay are replaced by ``tuning.chosen``).
    These three are :data:`ADDED_LATER`: a record written before them reads as symmetric,
    null, null."""
    kind: str = "run"
    config: dict
    config_hash: str
    task: str
    weak: str
    strong: str
    loss: str
    noise: float = fraction()
    noise_model: str = field(default="symmetric", metadata={"added_later": True})
    noise_info: Optional[NoiseInfo] = field(default=None, metadata={"added_later": True})
    tuning: Optional[Tuning] = field(default=None, metadata={"added_later": True})
    seed: int = nonnegative()
    smoothing: float = nonnegative()
    metrics: StudentMetrics
    reference: Baselines
    reference_record: str = relative_path()
    ceiling_split: str
    splits: dict
    train_info: dict
    timings: RunTimings


@dataclass(kw_only=True)
class ReferenceRecord(_Header):
    """Weak supervisor + strong ceiling of one (task, weak, seed)
    (:func:`experiments.runner.execute_reference`).  ``arrays``: file name of the ``.npz``
    next to the record (the weak soft labels ``weak_student``, ``weak_test``) and
    ``arrays_sha256`` its content hash (checked before the arrays are used)."""
    kind: str = "reference"
    config: dict
    config_hash: str
    task: str
    weak: str
    strong: str
    seed: int = nonnegative()
    smoothing: float = nonnegative()
    baselines: Baselines
    ceiling_split: str
    splits: dict
    train_info: dict
    timings: ReferenceTimings
    arrays: str = file_name()
    arrays_sha256: str


@dataclass(kw_only=True)
class TuningRecord(_Header):
    """One tuning cell (:func:`experiments.runner.execute_tuning`): the whole grid trained
    on every tuning seed for one (task, weak model, noise, noise model, loss); the runs of
    that cell train ``tuning.chosen`` on the evaluation seeds.  ``config``: kind, task,
    weak, strong, pool, sizes, max_length, train, weak_train, loss, noise, noise_model,
    tune {grid, select, tuning_seeds}; ``per_seed_scores[i][j]``: the selection score of grid
    entry ``j`` on tuning seed ``i``; ``best_steps[i][j]``: its selected checkpoint step;
    ``tuning.scores`` is the mean of ``per_seed_scores`` over seeds."""
    kind: str = "tuning"
    config: dict
    config_hash: str
    task: str
    weak: str
    strong: str
    loss: str
    noise: float = fraction()
    noise_model: str
    tuning: Tuning
    per_seed_scores: list[list[float]]
    best_steps: list[list[int]]
    timings: RunTimings


@dataclass(kw_only=True)
class LlmRunRecord(_Header):
    """One run of the LLM path (:func:`experiments.llm.run_llm_sweep`): like a run, but
    the baselines are computed in the same process (no reference record) and ``data`` names
    the preference-pair source."""
    kind: str = "llm-run"
    config: dict
    config_hash: str
    task: str
    weak: str
    strong: str
    data: str
    loss: str
    noise: float = fraction()
    seed: int = nonnegative()
    metrics: StudentMetrics
    reference: Baselines
    ceiling_split: str
    splits: dict
    train_info: dict
    timings: RunTimings


@dataclass
class CheckRow:
    """One claim's check result (``numerics.result.CheckResult`` without details).
    ``worst_slack`` null when non-finite, with ``worst_slack_nonfinite`` = ``"inf"``,
    ``"-inf"`` or ``"nan"``."""
    claim: str
    instances: int = nonnegative()
    worst_slack: Optional[float]
    worst_slack_nonfinite: Optional[str]
    status: str
    seconds: float = nonnegative()


@dataclass(kw_only=True)
class CheckRecord(_Header, CheckRow):
    """``checks/C<k>.json``: one claim's row plus its claim-specific ``details``.
    ``mode``: ``"quick"`` or ``"full"``; ``seed``: the check's seed."""
    kind: str = "check"
    mode: str
    seed: int = nonnegative()
    details: dict


@dataclass(kw_only=True)
class CheckSummaryRecord(_Header):
    """``checks/summary.json``: every claim's row of one ``w2sg check``."""
    kind: str = "check-summary"
    mode: str
    seed: int = nonnegative()
    rows: list[CheckRow]


@dataclass(kw_only=True)
class CheckDataRecord(_Header):
    """Bulky data of one claim's check (C3 curves, C4 slacks, C6 coverage) in ``data``."""
    kind: str = "check-data"
    mode: str
    seed: int = nonnegative()
    claim: str
    name: str
    data: dict


@dataclass(kw_only=True)
class CounterexampleRecord(_Header):
    """One stored C5 counterexample: ``gain`` = E D(F*‖F_w) − E D(F*‖F̂), ``misfit`` =
    E D(F̂‖F_w) (the inequality claims gain ≥ misfit) for ``generator`` and ``variant``
    (``same_f`` or ``kl``); ``instance`` re-checkable with ``numerics.checks.c5.recheck``;
    ``search``: how it was found (origin, draw, violation, gaps, …)."""
    kind: str = "counterexample"
    mode: str
    seed: int = nonnegative()
    claim: str
    generator: str
    variant: str
    search_seed: int = nonnegative()
    index: int = nonnegative()
    instance: dict
    gain: float
    misfit: float
    search: dict


@dataclass(kw_only=True)
class BenchRecord(_Header):
    """``w2sg bench`` (:func:`experiments.bench.run_bench`): ``machine`` (cpus, torch,
    threads, …), ``method`` (text) and one section per part measured (null if not run):
    ``kernels`` {default_path, c_kernel, shapes[].rows[] {loss, variant, ratio_cpu,
    cpu{median_ms}, …}},
    ``training.rows[]`` {loss, epoch_ms_wall, epoch_ms_cpu, peak_mib, …}, ``scaling``,
    ``curve``."""
    kind: str = "bench"
    quick: bool
    what: list[str]
    machine: dict
    method: str
    elapsed_s: float = nonnegative()
    kernels: Optional[dict] = None
    training: Optional[dict] = None
    scaling: Optional[dict] = None
    curve: Optional[dict] = None


@dataclass(kw_only=True)
class CompareRecord(_Header):
    """``w2sg compare`` (:mod:`paper_figs.compare_cli`): paired differences of each loss to
    ``baseline`` in ``metric`` (``acc`` in points ×100, or ``pgr``: Burns et al.'s PGR of means
    per (task, weak) panel, ``pgr_of_means`` says how; ``""`` for ``acc``).  ``rows[]``: mode,
    select (``none`` / ``weak`` / ``oracle``), noise_model, noise, loss, n_pairs, n_clusters,
    mean_diff, ci_low, ci_high, p_value, p_holm, identical, mde, significant, verdict,
    mean_loss, mean_baseline, n_missing, missing (and n_panels, excluded_panels for ``pgr``);
    ``ci`` / ``bootstrap``: how the interval was made (stratified cluster bootstrap);
    ``test``, ``correction`` (Holm per family), ``power`` (the ``mde`` formula);
    ``sources``: the run records used; ``unreadable``: those that could not be used (one line
    each)."""
    kind: str = "compare"
    baseline: str
    metric: str
    unit: str
    pairing: str
    confidence: float = fraction()
    ci: str
    bootstrap: str
    test: str
    correction: str
    power: str
    pgr_of_means: str
    alpha: float = fraction()
    n_runs: int = nonnegative()
    unreadable: list[str]
    rows: list[dict]
    sources: list[str] = relative_path()


@dataclass(kw_only=True)
class CudaBenchRecord(_Header):
    """``w2sg bench --device cuda`` (:func:`experiments.bench_cuda.bench_kernels_cuda`):
    ``machine``, ``method`` (text) and ``kernels_cuda``: ``device`` {name, driver,
    cuda_runtime, torch, triton, liger_kernel, …}, ``pool``, ``method``, ``shapes[]`` {n, k,
    dtype, reps, warmup, rows[] {loss, variant, typed, gpu{median_ms, q1_ms, q3_ms, iqr_ms,
    min_ms, n}, peak_mib, ratio, peak_ratio}, errors, liger_note}."""
    kind: str = "bench-cuda"
    quick: bool
    what: list[str]
    machine: dict
    method: str
    elapsed_s: float = nonnegative()
    kernels_cuda: dict


KINDS: dict[str, type] = {
    "run": RunRecord, "reference": ReferenceRecord, "tuning": TuningRecord, "llm-run": LlmRunRecord,
    "check": CheckRecord, "check-summary": CheckSummaryRecord, "check-data": CheckDataRecord,
    "counterexample": CounterexampleRecord, "bench": BenchRecord, "bench-cuda": CudaBenchRecord,
    "compare": CompareRecord}
Record = typing.Union[RunRecord, ReferenceRecord, TuningRecord, LlmRunRecord, CheckRecord, CheckSummaryRecord,
                      CheckDataRecord, CounterexampleRecord, BenchRecord, CudaBenchRecord, CompareRecord]

#: How to regenerate a refused (older or unknown-schema) record, per kind.
_REGENERATE = {
    "run": "rerun the same `w2sg run` (it moves the old record aside and recomputes it)",
    "reference": "rerun the same `w2sg run` (it moves the old record aside and recomputes it)",
    "tuning": "rerun the same `w2sg run --tune` (it moves the old record aside and recomputes it)",
    "llm-run": "delete it and rerun `w2sg run --llm ...`",
    "check": "rerun `w2sg check --out <root>`", "check-summary": "rerun `w2sg check --out <root>`",
    "check-data": "rerun `w2sg check --out <root>`",
    "counterexample": "rerun `w2sg check --out <root>`", "bench": "rerun `w2sg bench --out <root>`",
    "bench-cuda": "rerun `w2sg bench --device cuda --out <root>` on a CUDA machine",
    "compare": "rerun `w2sg compare --out <root>`",
}


# ----------------------------------------------------------------------------- helpers
def student_metrics(m: dict, pgr_value: float) -> StudentMetrics:
    """:class:`StudentMetrics` from the pipeline's metric dict and the run's PGR (NaN when
    undefined → null + :data:`PGR_UNDEFINED`)."""
    ok = pgr_value is not None and math.isfinite(pgr_value)
    return StudentMetrics(acc=m["acc"], auroc=finite_or_none(m["auroc"]), ece=m["ece"],
                          pgr=float(pgr_value) if ok else None,
                          pgr_undefined=None if ok else PGR_UNDEFINED,
                          agreement_weak=m["agreement_weak"],
                          agreement_weak_labels_train=m["agreement_weak_labels_train"],
                          acc_on_flipped_train=m.get("acc_on_flipped_train"),
                          noisy_label_acc_train=m["noisy_label_acc_train"])


def worst_slack_fields(worst_slack: float) -> dict:
    """``{"worst_slack", "worst_slack_nonfinite"}`` for a possibly non-finite slack."""
    x = float(worst_slack)
    if math.isfinite(x):
        return {"worst_slack": x, "worst_slack_nonfinite": None}
    return {"worst_slack": None, "worst_slack_nonfinite": "nan" if math.isnan(x) else
            ("inf" if x > 0 else "-inf")}


def finite_or_none(x):
    """``x`` as a float, or ``None`` when it is missing or not finite (strict JSON has no NaN)."""
    return float(x) if x is not None and math.isfinite(x) else None


def results_root(out: str | os.PathLike | None = None) -> Path:
    """The results root: ``out``, else ``$W2SG_RESULTS`` (unless blank), else ``./results``.
    (The commands first refuse a blank ``--out``: :func:`w2sg.paths.results_dir`.)"""
    env = os.environ.get("W2SG_RESULTS")
    return Path(out or (env if env and env.strip() else None) or "results")


def config_hash(config: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a JSON-able config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_CODE_VERSION: str | None = None


def code_version() -> str:
    """``git describe`` of the toolkit checkout (``+dirty`` if modified), else the package version."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        here = Path(__file__).resolve().parent.parent
        try:
            out = subprocess.run(["git", "describe", "--always", "--dirty=+dirty"], cwd=here,
                                 capture_output=True, text=True, timeout=5)
            _CODE_VERSION = out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.SubprocessError):
            _CODE_VERSION = ""
        if not _CODE_VERSION:
            from . import __version__
            _CODE_VERSION = f"w2sg-{__version__}"
    return _CODE_VERSION


# ----------------------------------------------------------------------------- writing
#: Largest record file read (bytes); a bigger one is refused like a corrupt one.
MAX_RECORD_BYTES = 64 << 20
#: Deepest nesting of objects and lists in a record (ours are < 10 deep).
MAX_DEPTH = 64

# The temporary files of this module's writers: ``.<target name>.<pid>.<random>.tmp`` (the
# target a ``.json`` record or its ``.npz``), renamed onto the target when complete.
_TEMP = re.compile(r"\.(?P<target>[^/]+\.(?:json|npz))\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.tmp")


def temp_path(path: str | os.PathLike) -> tuple[int, Path]:
    """``(fd, temporary path)``: a new private file next to ``path`` (open for writing, as
    :func:`tempfile.mkstemp`) whose name :func:`clean_temp_files` recognises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    return fd, Path(tmp)


def is_temp_file(name: str) -> bool:
    """Whether ``name`` is a temporary file name of this module's writers (:func:`temp_path`)."""
    return _TEMP.fullmatch(name) is not None


def write_record(path: str | os.PathLike, record: Record) -> Path:
    """Write the dataclass ``record`` as strict JSON to ``path`` atomically.

    Fills ``code_version`` and ``written_at`` when empty; the file (mode 0644) appears
    complete or not at all (:func:`temp_path` in the same folder, fsync, ``os.replace``).
    Non-finite floats inside free-form fields become ``null`` (:func:`w2sg.strict_json.plain`).
    """
    if type(record) not in KINDS.values():
        raise TypeError(f"write_record takes a record dataclass, got {type(record).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not record.code_version:
        record.code_version = code_version()
    if not record.written_at:
        record.written_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = dataclasses.asdict(record)
    text = dumps({"kind": data.pop("kind"), "schema": data.pop("schema"), **data})
    write_atomic(path, text.encode("utf-8"))
    return path


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file named by :func:`temp_path` in
    the same folder, flushed to disk, mode 0644, then renamed over ``path`` (a reader sees
    the old file or the whole new one; the temporary file is removed if anything fails)."""
    fd, tmp = temp_path(Path(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes nothing while it cleans
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists (another user's), or cannot tell: keep its file
    return True


def clean_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that an interrupted :func:`write_record` (or reference
    ``.npz`` write, :func:`temp_path`) left under ``folder``; returns them.

    Only regular files named exactly ``.<record>.json.<pid>.<random>.tmp`` or
    ``.<record>.npz.<pid>.<random>.tmp`` whose writer process ``<pid>`` is gone are
    removed: a user's own hidden files, and the files of a sweep still running, stay.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    gone = []
    for p in sorted(folder.rglob(".*.tmp")):
        m = _TEMP.fullmatch(p.name)
        if m is None or _alive(int(m["pid"])):
            continue
        try:
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue
            p.unlink()
            gone.append(p)
        except OSError:
            pass
    return gone


def move_aside(path: str | os.PathLike) -> Path:
    """Rename an invalid file to ``<name>.corrupt-<UTC stamp>`` (kept for inspection,
    never read again: readers take ``*.json`` / ``*.npz`` only); returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    new = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while new.exists() or new.is_symlink():
        new = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    os.replace(path, new)
    return new


# ----------------------------------------------------------------------------- reading
_KIND_OF_FILE = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISDIR, "a folder"),
                 (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                 (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str:
    return next((name for test, name in _KIND_OF_FILE if test(mode)), "not a regular file")


def _inside(path: Path, root: str | os.PathLike) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def read_regular(path: str | os.PathLike, max_bytes: int = MAX_RECORD_BYTES,
                 root: str | os.PathLike | None = None) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them.

    Refused with :class:`RecordError` (never opened, never blocking): a FIFO, device, socket
    or folder; a symbolic link that resolves outside ``root`` (when given); a larger file.
    The file is opened non-blocking and checked again on the open descriptor (no race).
    """
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            if root is not None and not _inside(Path(path), root):
                raise RecordError(path, None, f"a symbolic link to {os.path.realpath(path)}, "
                                  f"outside the results root {root}: not read")
            info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise RecordError(path, None, f"is {_not_regular(info.st_mode)}, not a record file: not read")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RecordError(path, None, f"is {_not_regular(info.st_mode)}, not a record file: not read")
            if info.st_size > max_bytes:
                raise RecordError(path, None, f"{info.st_size} bytes, over the limit of {max_bytes}")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise RecordError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise RecordError(path, None, f"over the limit of {max_bytes} bytes")
    return data


def read_record(path: str | os.PathLike, kind: type | tuple[type, ...] | None = None,
                root: str | os.PathLike | None = None) -> Record:
    """The record at ``path`` as its dataclass; ``kind``: the class(es) accepted.

    Raises :class:`RecordError` (one line naming the file and the field) if the file cannot
    be read (:func:`read_regular`: not a regular file, a link out of ``root``, over
    :data:`MAX_RECORD_BYTES`), is not strict UTF-8 JSON, is nested deeper than
    :data:`MAX_DEPTH`, has an unknown ``schema`` or ``kind``, or a field is missing,
    unexpected, of the wrong type, not finite or out of its range.
    """
    raw = read_regular(path, MAX_RECORD_BYTES, root)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(path, None, f"cannot read: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:  # the parser's own recursion limit (~1000 levels): far too deep
        raise RecordError(path, None, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise RecordError(path, None, f"not valid JSON ({exc})") from None
    return parse_record(data, path, kind)


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_record(data: Any, path: str | os.PathLike = "<record>",
                 kind: type | tuple[type, ...] | None = None) -> Record:
    """Parse decoded JSON ``data`` into its record dataclass (see :func:`read_record`)."""
    if not isinstance(data, dict):
        raise RecordError(path, None, f"a record is a JSON object, got {type(data).__name__}")
    k = data.get("kind")
    cls = KINDS.get(k) if isinstance(k, str) else None
    if "schema" not in data:
        how = _REGENERATE.get(k, "regenerate it with the command that wrote it")
        raise RecordSchemaError(path, "schema", f"missing: an unversioned record from an older "
                                f"w2sg (schema 1) is not read; {how}")
    if data["schema"] != SCHEMA or isinstance(data["schema"], bool):
        how = _REGENERATE.get(k, "regenerate it with the command that wrote it")
        raise RecordSchemaError(path, "schema", f"unknown schema {data['schema']!r} "
                                f"(this w2sg reads schema {SCHEMA}); {how}")
    if cls is None:
        raise RecordError(path, "kind", f"unknown kind {k!r} (known: {', '.join(KINDS)})")
    _check_tree(data, path)
    wanted = kind if isinstance(kind, tuple) else ((kind,) if kind else None)
    if wanted and cls not in wanted:
        raise RecordError(path, "kind", f"is {k!r}, expected "
                          f"{' or '.join(repr(c.kind if hasattr(c, 'kind') else c) for c in _kinds_of(wanted))}")
    return _build(cls, data, path, "")


def _kinds_of(classes):
    inv = {v: k for k, v in KINDS.items()}
    return [inv.get(c, c.__name__) for c in classes]


#: Fields added to a kind after its schema version was fixed, as ``(class, field)``: a record
#: written before them lacks them and reads as the field's default (``field(...,
#: metadata={"added_later": True})``); every other field is required.
ADDED_LATER = frozenset((cls, f.name) for cls in (RunRecord,) for f in dataclasses.fields(cls)
                        if f.metadata.get("added_later"))

_HINTS: dict[type, dict] = {}


def _hints(cls) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _build(cls, data, path, prefix):
    if not isinstance(data, dict):
        raise RecordError(path, prefix.rstrip(".") or None, f"expected an object, got {_tname(data)}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    extra = sorted(set(data) - set(names))
    if extra:
        raise RecordError(path, prefix + extra[0], "unexpected field")
    kwargs = {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if f.name not in data:  # every field is written (null when empty): none may be missing
            if (cls, f.name) in ADDED_LATER:  # older records predate it: its default
                continue
            raise RecordError(path, name, "missing")
        kwargs[f.name] = _value(hints[f.name], data[f.name], path, name)
        if f.metadata:
            _check_field(f, kwargs[f.name], path, name)
    return cls(**kwargs)


def _check_field(f: dataclasses.Field, value, path, name) -> None:
    """The range or format declared on field ``f`` (each item of a list)."""
    items = enumerate(value) if isinstance(value, list) else ((None, value),)
    for i, x in items:
        where = name if i is None else f"{name}[{i}]"
        if x is None:
            continue
        if "range" in f.metadata:
            lo, hi = f.metadata["range"]
            if not lo <= x <= hi:
                raise RecordError(path, where, f"{x!r} is out of range: {range_text(f)}")
        check = _FORMATS.get(f.metadata.get("format"))
        problem = check(x) if check else None
        if problem:
            raise RecordError(path, where, problem)


def _check_tree(data, path) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and any non-finite number, anywhere
    (free-form objects included); iterative, so no input can exhaust the recursion."""
    stack = [(data, "", 1)]
    while stack:
        x, name, depth = stack.pop()
        if isinstance(x, float) and not math.isfinite(x):
            raise RecordError(path, name or None, f"{x!r} is not a finite number")
        if isinstance(x, (dict, list)):
            if depth > MAX_DEPTH:
                raise RecordError(path, name or None, f"nested deeper than {MAX_DEPTH} levels")
            items = x.items() if isinstance(x, dict) else enumerate(x)
            for k, v in items:
                if isinstance(v, (dict, list, float)):
                    sub = f"{name}[{k}]" if isinstance(x, list) else (f"{name}.{k}" if name else str(k))
                    stack.append((v, sub, depth + 1))


def _tname(x) -> str:
    return "null" if x is None else type(x).__name__


def _value(tp, x, path, name):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if x is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, x, path, name)
    if dataclasses.is_dataclass(tp):
        return _build(tp, x, path, name + ".")
    if origin is list:
        if not isinstance(x, list):
            raise RecordError(path, name, f"expected a list, got {_tname(x)}")
        (inner,) = typing.get_args(tp) or (Any,)
        return [_value(inner, v, path, f"{name}[{i}]") for i, v in enumerate(x)]
    if tp is Any:
        return x
    if tp is float:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise RecordError(path, name, f"expected a number, got {_tname(x)}")
        try:
            value = float(x)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise RecordError(path, name, "is not a finite number")
        return value
    if tp is int:
        if isinstance(x, bool) or not isinstance(x, int):
            raise RecordError(path, name, f"expected an integer, got {_tname(x)}")
        return x
    for simple, label in ((str, "a string"), (bool, "true/false"), (dict, "an object")):
        if tp is simple:
            if not isinstance(x, simple):
                raise RecordError(path, name, f"expected {label}, got {_tname(x)}")
            return x
    raise TypeError(f"unsupported field type {tp!r} for {name}")  # a bug in this module


def to_plain(record: Record) -> dict:
    """A record as plain (strict-JSON) data, as written."""
    return plain(dataclasses.asdict(record))
