"""The results table: every record under a results root, each file read once, as typed rows.

A leaf module (:mod:`w2sg.records` only), so every command can use it: ``w2sg run``'s
summary (:func:`experiments.runner.summarize`), ``w2sg compare``, ``w2sg figs`` and
``w2sg reproduce`` all read records through :func:`load`, and nothing else of the toolkit
parses a results root.  Layout (see :mod:`w2sg.records`)::

    runs/     run, llm-run → ``table.runs`` (:class:`Run`); reference → ``table.references``
    checks/   check → ``table.checks``; counterexample → ``table.counterexamples``;
              check-summary, check-data → ``table.entries("checks")``
    bench/    bench, bench-cuda → ``table.bench``
    compare/  compare → ``table.compare``

**Read once.**  A record file is parsed the first time a folder holding it is asked for,
and the result — the record, or why it cannot be used — is kept in this process keyed by
the file's path and its ``(device, inode, mtime_ns, ctime_ns, size)``; a later :func:`load` of the
same root (another figure, the next step of ``w2sg reproduce``) lists and stats the
folder but opens only files that are new or rewritten (records are written by atomic
rename, so a rewritten record is a new inode).  Each record file is therefore opened at
most once per command unless it changes (``tests/paper_figs/test_results.py`` counts the
``open`` events).  Records and rows handed out are shared: treat them as read-only.

**Unusable records, in one place.**  A file that is not a usable record (not JSON, wrong
kind, missing or mistyped field; not a regular file) is listed in ``table.problems(...)``,
one line naming the file and the field, never silently dropped; a record of an unknown
``schema`` is listed in ``table.schema_errors(...)`` (the commands refuse those:
:meth:`ResultsTable.refuse_unknown_schema`).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import stat
from pathlib import Path
from typing import Any

from .records import (BenchRecord, CheckRecord, CompareRecord, CounterexampleRecord, CudaBenchRecord,
                      LlmRunRecord, RecordError, RecordSchemaError, ReferenceRecord, RunRecord,
                      config_hash, read_record)

__all__ = ["Run", "Reference", "Entry", "ResultsTable", "load", "read", "run_of", "record_files",
           "FOLDERS", "FINETUNED_SUFFIX", "PAIRED_CONFIG_KEYS", "setting_of", "clear_cache"]

#: the record folders under a results root
FOLDERS = ("runs", "checks", "bench", "compare")

#: Appended to the weak→strong pair name of fine-tuned runs (records with a ``finetune``
#: config table), so every figure groups them apart from the frozen-encoder heads.
FINETUNED_SUFFIX = "(fine-tuned)"

#: run-config keys that a comparison pairs or groups on explicitly; ``setting`` hashes the rest
PAIRED_CONFIG_KEYS = ("kind", "task", "weak", "seed", "loss", "noise", "noise_model", "finetune")


@dataclasses.dataclass(frozen=True)
class Run:
    """One W2S run (a ``run`` or ``llm-run`` record), flattened.

    ``pair``: ``"<weak>→<strong>"`` (+ :data:`FINETUNED_SUFFIX` when fine-tuned); ``mode``:
    ``"finetune"`` when the run config has a ``finetune`` table, else ``"head"``;
    ``select``: how the training hyperparameters were chosen (``"none"``: the fixed recipe;
    ``"weak"`` / ``"oracle"``: the run record's ``tuning.select``); ``noise_model``:
    ``"symmetric"`` unless the record says otherwise; ``setting``: :func:`setting_of` (runs
    of different sweeps never pair); ``acc``, ``pgr`` (the run's own, ``None`` if undefined),
    ``weak_acc``, ``ceiling_acc``: test accuracies; ``steps``: training steps of the config;
    ``chosen``: the tuned configuration (``tuning.chosen``) or ``None``.
    ``record``: the parsed record (shared: read-only)."""

    source: str
    kind: str
    task: str
    weak: str
    strong: str
    pair: str
    loss: str
    noise: float
    noise_model: str
    select: str
    seed: int
    mode: str
    finetune: bool
    setting: str
    acc: float
    pgr: float | None
    weak_acc: float
    ceiling_acc: float
    train_s: float
    steps: Any
    agreement_weak: float
    ece: float
    auroc: float | None
    record: Any = dataclasses.field(repr=False, compare=False)
    chosen: dict | None = None

    def row(self, keys=None) -> dict:
        """A fresh dict of the fields (all but ``record``, or ``keys``)."""
        names = keys or [f.name for f in dataclasses.fields(self) if f.name != "record"]
        return {k: getattr(self, k) for k in names}


@dataclasses.dataclass(frozen=True)
class Reference:
    """Weak supervisor and strong ceiling of one ``(task, weak, seed)`` (a ``reference``
    record): test accuracies and the record."""

    source: str
    task: str
    weak: str
    strong: str
    seed: int
    weak_acc: float
    ceiling_acc: float
    record: Any = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Entry:
    """Any other record: its path relative to the root and the parsed record."""

    source: str
    record: Any = dataclasses.field(repr=False, compare=False)


def setting_of(config: dict, tuning=None) -> str:
    """:func:`w2sg.records.config_hash` of the run config without the keys a comparison
    pairs or groups on (:data:`PAIRED_CONFIG_KEYS`) and, for a tuned run, without the tuned
    training hyperparameters (the keys of ``tuning["chosen"]`` in ``config["train"]``: they
    differ per loss by design, the grid they were chosen from does not)."""
    rest = {k: v for k, v in config.items() if k not in PAIRED_CONFIG_KEYS}
    chosen = tuning.get("chosen") if isinstance(tuning, dict) else None
    if isinstance(chosen, dict) and isinstance(rest.get("train"), dict):
        rest["train"] = {k: v for k, v in rest["train"].items() if k not in chosen}
    return config_hash(rest)


def _tuning_of(rec) -> dict | None:
    """A run record's ``tuning`` as a plain dict (the record holds a
    :class:`w2sg.records.Tuning`), or ``None`` for a fixed-recipe run."""
    tuning = getattr(rec, "tuning", None)
    if dataclasses.is_dataclass(tuning):
        return dataclasses.asdict(tuning)
    return tuning if isinstance(tuning, dict) else None


def _select_of(rec) -> str:
    tuning = _tuning_of(rec)
    return str(tuning.get("select", "weak")) if tuning else "none"


def run_of(rec: RunRecord | LlmRunRecord, source: str) -> Run:
    """The :class:`Run` row of a run record (``source``: its path, relative to the root)."""
    cfg = rec.config
    finetuned = bool(cfg.get("finetune"))
    m = rec.metrics
    return Run(source=source, kind=rec.kind, task=rec.task, weak=rec.weak, strong=rec.strong,
               pair=f"{rec.weak}→{rec.strong}" + (f" {FINETUNED_SUFFIX}" if finetuned else ""),
               loss=rec.loss, noise=rec.noise,
               noise_model=str(getattr(rec, "noise_model", None) or "symmetric"),
               select=_select_of(rec), seed=rec.seed, mode="finetune" if finetuned else "head",
               finetune=finetuned, setting=setting_of(cfg, _tuning_of(rec)),
               acc=m.acc, pgr=m.pgr, weak_acc=rec.reference.weak.acc,
               ceiling_acc=rec.reference.ceiling.acc, train_s=rec.timings.train_s,
               steps=(cfg.get("train") or {}).get("steps"), agreement_weak=m.agreement_weak,
               ece=m.ece, auroc=m.auroc, chosen=(_tuning_of(rec) or {}).get("chosen"), record=rec)


# ----------------------------------------------------------------------------- files
def record_files(folder: Path) -> list[tuple[Path, os.stat_result | None]]:
    """``(path, stat)`` of the record files under ``folder`` (sorted by path): ``*.json``,
    not hidden (temporary files are hidden; records moved aside end in
    ``.corrupt-<stamp>``).  Only names are listed and stat-ed (nothing is opened; linked
    folders are not followed); ``stat`` is ``None`` when it fails (a dangling link, a file
    that vanished): :func:`w2sg.records.read_record` then says why."""
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.rglob("*.json")):
        if any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        try:
            out.append((p, os.stat(p)))
        except OSError:
            out.append((p, None))
    return out


#: path → (stat key, record or RecordError): the parse of each file, kept for this process
_CACHE: dict[str, tuple[tuple, Any]] = {}


def clear_cache() -> None:
    """Forget every parsed file (the next :func:`load` reads everything again)."""
    _CACHE.clear()
    _ROWS.clear()


@functools.lru_cache(maxsize=64)
def _real(root: str) -> str:
    return os.path.realpath(root)


def _parse(path: Path, st: os.stat_result | None, root: Path | None):
    """The record at ``path`` or the :class:`RecordError` saying why it cannot be used
    (:func:`w2sg.records.read_record` with ``root``: it refuses what is not a regular file, a
    link out of the root, an oversized or too deep file, a value out of range); a regular
    file is opened only when it is new or changed since it was last parsed in this process."""
    if st is None or not stat.S_ISREG(st.st_mode):  # read_record names what it is, never caches
        try:
            return read_record(path, root=root)
        except RecordError as exc:
            return exc
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size,
           None if root is None else _real(str(root)))
    hit = _CACHE.get(str(path))
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        value = read_record(path, root=root)
    except RecordError as exc:
        value = exc
    _CACHE[str(path)] = (key, value)
    return value


# ----------------------------------------------------------------------------- table
class _Folder:
    """One folder's records (``found``: ``(relative path, record)``) and problems."""

    def __init__(self, root: Path, name: str):
        self.found: list[tuple[str, Any]] = []
        self.problems: list[str] = []
        self.schema: list[RecordSchemaError] = []
        self.errors: dict[str, RecordError] = {}
        for p, st in record_files(root / name):
            value = _parse(p, st, root)
            if isinstance(value, RecordError):
                self.errors[_rel(p, root)] = value
            if isinstance(value, RecordSchemaError):
                self.schema.append(value)
            elif isinstance(value, RecordError):
                self.problems.append(str(value))
            else:
                self.found.append((_rel(p, root), value))

    def of(self, kinds: tuple) -> list[tuple[str, Any]]:
        return [(s, r) for s, r in self.found if isinstance(r, kinds)]


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class ResultsTable:
    """The records under ``root`` as typed tables; each folder is listed on first use and
    kept for the life of this object (:func:`load` makes a fresh one per call, cheaply)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._folders: dict[str, _Folder] = {}
        self._runs: list[Run] | None = None

    def _folder(self, name: str) -> _Folder:
        if name not in FOLDERS:
            raise ValueError(f"unknown results folder {name!r}; known: {', '.join(FOLDERS)}")
        if name not in self._folders:
            self._folders[name] = _Folder(self.root, name)
        return self._folders[name]

    @property
    def runs(self) -> list[Run]:
        """Every ``run`` and ``llm-run`` record under ``runs/``, sorted by path."""
        if self._runs is None:
            self._runs = [_run_cached(rec, src, self.root)
                          for src, rec in self._folder("runs").of((RunRecord, LlmRunRecord))]
        return self._runs

    @property
    def references(self) -> list[Reference]:
        return [Reference(src, r.task, r.weak, r.strong, r.seed, r.baselines.weak.acc,
                          r.baselines.ceiling.acc, r)
                for src, r in self._folder("runs").of((ReferenceRecord,))]

    def entries(self, folder: str, kinds: tuple = ()) -> list[Entry]:
        """Every usable record under ``folder`` (of ``kinds``, when given), sorted by path."""
        found = self._folder(folder).found if not kinds else self._folder(folder).of(kinds)
        return [Entry(src, rec) for src, rec in found]

    @property
    def checks(self) -> list[Entry]:
        return self.entries("checks", (CheckRecord,))

    @property
    def counterexamples(self) -> list[Entry]:
        return self.entries("checks", (CounterexampleRecord,))

    @property
    def bench(self) -> list[Entry]:
        return self.entries("bench", (BenchRecord, CudaBenchRecord))

    @property
    def compare(self) -> list[Entry]:
        return self.entries("compare", (CompareRecord,))

    def problems(self, *folders: str) -> list[str]:
        """One line per unusable record under ``folders`` (default: runs, checks, bench)."""
        return [line for f in (folders or FOLDERS[:3]) for line in self._folder(f).problems]

    def schema_errors(self, *folders: str) -> list[RecordSchemaError]:
        return [e for f in (folders or FOLDERS[:3]) for e in self._folder(f).schema]

    def error_of(self, source: str) -> RecordError | None:
        """Why the record at ``source`` (relative to the root) cannot be used, else ``None``."""
        folder = Path(source).parts[0] if Path(source).parts else ""
        return self._folder(folder).errors.get(source) if folder in FOLDERS else None

    def refuse_unknown_schema(self, *folders: str) -> None:
        """Raise the first :class:`RecordSchemaError` under ``folders`` (default: runs,
        checks, bench), if any: a record of an unknown schema is refused, never skipped."""
        errors = self.schema_errors(*folders)
        if errors:
            raise errors[0]


#: file path → (record, Run): a record's row is built once, like the record is parsed once
_ROWS: dict[str, tuple[Any, Run]] = {}


def _run_cached(rec, source: str, root: Path) -> Run:
    key = str(root / source)
    hit = _ROWS.get(key)
    if hit is not None and hit[0] is rec and hit[1].source == source:
        return hit[1]
    row = run_of(rec, source)
    _ROWS[key] = (rec, row)
    return row


def read(path: str | os.PathLike, kind: type | tuple[type, ...] | None = None,
         root: str | os.PathLike | None = None):
    """:func:`w2sg.records.read_record` (``kind``, ``root``) through this module's cache: the
    record at ``path`` (parsed once per process while the file is unchanged), else
    :class:`RecordError`."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    value = _parse(path, st, None if root is None else Path(root))
    if isinstance(value, RecordError):
        raise value
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds):
            raise RecordError(path, "kind", f"is {value.kind!r}, expected "
                              f"{' or '.join(repr(k.kind) for k in kinds)}")
    return value


def load(root: str | os.PathLike) -> ResultsTable:
    """The results table of ``root`` (files already parsed in this process and unchanged
    since are not opened again)."""
    return ResultsTable(root)
