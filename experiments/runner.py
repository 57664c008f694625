"""Sweeps of W2SG runs: expansion, records, resume, local parallelism.

Every run is described by a JSON-able *config* and executed by a pure-ish function
(:func:`execute_run` / :func:`execute_reference`) that reads only the config, the embedding
cache and the reference outputs, and returns the record; a later backend (Ray) can
dispatch the same functions.  Records go to::

    <results root>/runs/reference/<task>/<weak>/seed<S>-<hash>.json   weak supervisor + ceiling
    <results root>/runs/reference/<task>/<weak>/seed<S>-<hash>.npz    its weak soft labels
    <results root>/runs/<task>/<weak>/<loss>/noise<P>-seed<S>-<hash>.json   one W2S run

Records are the typed dataclasses of :mod:`w2sg.records` (``RunRecord``,
``ReferenceRecord``; field lists there), written atomically as strict JSON.  Run config
keys: kind, task, weak, strong, seed, pool, sizes, max_length, train, weak_train, loss,
noise (and finetune when used).

Resume (:func:`run_sweep`): a run whose record exists is skipped only after it is
validated (:func:`check_run_record`: parses, current schema, ``config_hash`` equal to the
config's); a reference also needs its ``.npz`` with the sha256 stored in its record
(:func:`check_reference_record`).  An invalid one is moved aside
(``<name>.corrupt-<stamp>``), named on stderr and redone.  Temporary files left by a
crash between write and rename are deleted when a sweep starts.

Every run and reference record stores ``smoothing``: the weak-label smoothing ε of the
losses (``config.train.smoothing``; :data:`experiments.pipeline.PIPELINE_SMOOTHING` by
default; the product loss ignores it).
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.paths import slug
from w2sg.records import (Baselines, CeilingMetrics, RecordError, ReferenceRecord, ReferenceTimings,
                          RunRecord, RunTimings, WeakMetrics, clean_temp_files, config_hash,
                          finite_or_none, move_aside, read_record, read_regular, results_root,
                          student_metrics, temp_path, write_record)

from .losses import DEFAULT_LOSSES, QUICK_LOSSES
from .pipeline import STUDENT_TRAIN, WEAK_TRAIN

__all__ = ["DEFAULT_SWEEP", "QUICK_SWEEP", "FINETUNE_SWEEP", "PRESETS", "expand", "reference_config",
           "run_path", "reference_path", "execute_run", "execute_reference", "run_sweep", "init_worker", "run_job", "slug",
           "prepare_features", "summarize", "format_summary", "check_run_record",
           "check_reference_record", "baselines_from", "resume_todo"]

DEFAULT_SWEEP: dict[str, Any] = {
    "tasks": ["fortunes_pairs", "vader_pairs", "vader_cls"],
    "weak": ["minilm-l6-layer0", "minilm-l3"],
    "strong": "minilm-l6",
    "losses": list(DEFAULT_LOSSES),
    "noise": [0.0, 0.1, 0.2, 0.3, 0.4],
    "seeds": 5,
    "pool": None,            # texts per task pool (None: experiments.data.tasks.DEFAULT_POOL)
    "sizes": {"weak_gt": 300, "test": 800, "val_frac": 0.2},
    "max_length": 128,
    # train.smoothing: the losses' weak-label smoothing, explicit (pipeline.PIPELINE_SMOOTHING)
    "train": STUDENT_TRAIN.as_config(),
    "weak_train": WEAK_TRAIN.as_config(),
}
#: The quick sweep (< 3 minutes from a cold embedding cache): one task, one weak model.
QUICK_SWEEP: dict[str, Any] = {
    **DEFAULT_SWEEP,
    "tasks": ["vader_cls"],
    "weak": ["minilm-l6-layer0"],
    "losses": list(QUICK_LOSSES),
    "noise": [0.0, 0.2],
    "seeds": 1,
}

#: ``w2sg run --preset finetune`` (and ``w2sg reproduce --finetune``): fine-tuned students on
#: the task with the largest weak–ceiling gap per forward pass (vader_cls, weak MiniLM-L3: 10.7
#: points with linear heads; vader_pairs' 10.8 costs two texts per example), CE and the
#: f-divergences that matter (kl = CE, C8), noise 0 / 0.2 / 0.4, 3 seeds: 3 fine-tuned
#: ceilings + 54 fine-tuned students.  Each run: 60 AdamW steps (lr 1e-4) of 16 texts cut at 48
#: tokens (VADER: p95 = 45), the validation slice scored every 20 steps (best kept; patience 2),
#: the test split once: ~40 CPU-seconds, so ~20 min with 2 workers on 2 idle cores (README;
#: wall time grows with whatever else shares the cores).  ``device`` is replaced by
#: ``--device`` (default auto).  On CUDA the same preset scales to the default grid:
#: ``w2sg run --preset finetune --device cuda --workers 1 --tasks fortunes_pairs vader_pairs
#: vader_cls --weak minilm-l6-layer0 minilm-l3 --losses ce kl pearson hellinger js jeffreys
#: reverse_kl tv --noise 0 0.1 0.2 0.3 0.4`` (fortunes texts are longer: add a ``[finetune]``
#: ``max_length = 208`` table for its p95).
FINETUNE_SWEEP: dict[str, Any] = {
    **DEFAULT_SWEEP,
    "tasks": ["vader_cls"],
    "weak": ["minilm-l3"],
    "losses": ["ce", "kl", "tv", "js", "hellinger", "reverse_kl"],
    "noise": [0.0, 0.2, 0.4],
    "seeds": 3,
    "finetune": {"epochs": 1, "lr": 1e-4, "batch_size": 16, "max_length": 48, "max_steps": 60,
                 "eval_every": 20, "patience": 2, "device": "cpu"},
}
#: Named sweeps for ``w2sg run --preset NAME``.
PRESETS: dict[str, dict[str, Any]] = {"finetune": FINETUNE_SWEEP}


#: Largest reference ``.npz`` read (bytes): the weak soft labels of one task split.
MAX_ARRAYS_BYTES = 1 << 30


def expand(sweep: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Reference configs (one per task, weak model, seed) and run configs (× loss × noise)."""
    refs, runs = [], []
    for task in sweep["tasks"]:
        for weak in sweep["weak"]:
            for seed in range(int(sweep["seeds"])):
                base = {"task": task, "weak": weak, "strong": sweep["strong"], "seed": seed,
                        "pool": sweep["pool"], "sizes": dict(sweep["sizes"]),
                        "max_length": sweep["max_length"], "train": dict(sweep["train"]),
                        "weak_train": dict(sweep["weak_train"])}
                if sweep.get("finetune"):  # only present when used: frozen-head hashes unchanged
                    base["finetune"] = dict(sweep["finetune"])
                refs.append({"kind": "reference", **base})
                for loss in sweep["losses"]:
                    for noise in sweep["noise"]:
                        runs.append({"kind": "run", **base, "loss": loss, "noise": float(noise)})
    return refs, runs


def reference_config(run_config: dict) -> dict:
    cfg = {k: copy.deepcopy(v) for k, v in run_config.items() if k not in ("loss", "noise")}
    cfg["kind"] = "reference"
    return cfg


def reference_path(config: dict, root: Path) -> Path:
    cfg = reference_config(config)
    return (Path(root) / "runs" / "reference" / slug(cfg["task"]) / cfg["weak"]
            / f"seed{cfg['seed']}-{config_hash(cfg)}.json")


def run_path(config: dict, root: Path) -> Path:
    return (Path(root) / "runs" / slug(config["task"]) / config["weak"] / slug(config["loss"])
            / f"noise{config['noise']:g}-seed{config['seed']}-{config_hash(config)}.json")


def _task(config: dict):
    from .data import build_task
    return build_task(config["task"], config["seed"], pool=config.get("pool"), sizes=config.get("sizes"))


def _train_cfg(d: dict):
    from .pipeline import TrainConfig
    return TrainConfig(**d)


def prepare_features(config: dict, quiet: bool = True) -> None:
    """Compute (or find in the cache) the strong and weak features a config needs."""
    from .embed import features
    task = _task(config)
    models = (config["weak"],) if config.get("finetune") else (config["strong"], config["weak"])
    for model in models:  # a fine-tuned run reads tokens, not strong features
        features(task, model, config["max_length"], quiet=quiet)
    if config.get("finetune"):  # tokenise the pool once, before the workers start
        from .embed import tokenize_cached
        tokenize_cached(task.texts, task.dataset, config["finetune"]["max_length"])


def baselines_from(part: dict) -> Baselines:
    """:class:`Baselines` from :func:`experiments.pipeline.reference_outputs`' record part."""
    w, c = part["weak"], part["ceiling"]
    return Baselines(
        weak=WeakMetrics(acc=w["acc"], auroc=finite_or_none(w["auroc"]), ece=w["ece"],
                         acc_student_split=w["acc_student_split"]),
        ceiling=CeilingMetrics(acc=c["acc"], auroc=finite_or_none(c["auroc"]), ece=c["ece"],
                               agreement_weak=c["agreement_weak"]),
        gap=part["gap"])


def execute_reference(config: dict, root: str | os.PathLike | None = None,
                      write: bool = True) -> ReferenceRecord:
    """Weak supervisor + strong ceiling for one reference config; writes the ``.npz``
    (weak soft labels) first, then the record holding its sha256."""
    from .embed import features
    from .pipeline import reference_outputs
    t0 = time.perf_counter()
    cfg = reference_config(config)
    task = _task(cfg)
    S = None if cfg.get("finetune") else features(task, cfg["strong"], cfg["max_length"])
    W = features(task, cfg["weak"], cfg["max_length"])
    t1 = time.perf_counter()
    arrays, part = reference_outputs(task, S, W, cfg["seed"], _train_cfg(cfg["train"]),
                                     finetune=cfg.get("finetune"),
                                     weak_cfg=_train_cfg(cfg["weak_train"]), log=_finetune_log())
    path = reference_path(cfg, results_root(root))
    npz = path.with_suffix(".npz")
    digest = ""
    if write:
        digest = _write_arrays(npz, arrays)
    record = ReferenceRecord(
        config=cfg, config_hash=config_hash(cfg), task=cfg["task"], weak=cfg["weak"],
        strong=cfg["strong"], seed=cfg["seed"], smoothing=_train_cfg(cfg["train"]).smoothing,
        baselines=baselines_from(part),
        ceiling_split=part["ceiling_split"], splits=task.info, train_info=part["train_info"],
        timings=ReferenceTimings(weak_s=part["timings"]["weak_s"],
                                 ceiling_s=part["timings"]["ceiling_s"], features_s=t1 - t0,
                                 total_s=time.perf_counter() - t0),
        arrays=npz.name, arrays_sha256=digest)
    if write:
        write_record(path, record)
    return record


def _write_arrays(npz: Path, arrays: dict) -> str:
    """Write ``arrays`` to ``npz`` atomically (a temporary file of
    :func:`w2sg.records.temp_path`, then rename); returns the sha256 of its bytes."""
    npz.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    fd, tmp = temp_path(npz)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, npz)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return hashlib.sha256(data).hexdigest()


def _checked_reference(config: dict, root) -> tuple[ReferenceRecord, bytes]:
    """The valid reference record of ``config`` and the bytes of its ``.npz``."""
    cfg = reference_config(config)
    top = results_root(root)
    path = reference_path(cfg, top)
    rec = read_record(path, ReferenceRecord, root=top)  # ``arrays``: a plain file name
    if rec.config_hash != config_hash(cfg):
        raise RecordError(path, "config_hash", f"{rec.config_hash} is not this config's "
                          f"{config_hash(cfg)}")
    npz = path.with_name(rec.arrays)
    if not os.path.lexists(npz):
        raise RecordError(path, "arrays", f"{npz.name} is missing")
    try:
        data = read_regular(npz, MAX_ARRAYS_BYTES, root=top)
    except RecordError as exc:
        raise RecordError(path, "arrays", f"{npz.name}: {exc.problem}") from None
    if hashlib.sha256(data).hexdigest() != rec.arrays_sha256:
        raise RecordError(path, "arrays_sha256", f"{npz.name} does not have the stored sha256 "
                          "(changed or corrupt)")
    return rec, data


def check_reference_record(config: dict, root) -> ReferenceRecord:
    """The valid reference record of ``config`` under ``root``: it parses (current schema,
    every value in range, ``arrays`` a plain file name in its folder), its ``config_hash``
    is the config's and its ``.npz`` is a regular file with the stored sha256.
    Raises :class:`w2sg.records.RecordError` otherwise (also when it is missing)."""
    return _checked_reference(config, root)[0]


def check_run_record(config: dict, root) -> RunRecord:
    """The valid run record of ``config``: parses (current schema) and its
    ``config_hash`` is the config's; raises :class:`w2sg.records.RecordError` otherwise."""
    top = results_root(root)
    path = run_path(config, top)
    rec = read_record(path, RunRecord, root=top)
    if rec.config_hash != config_hash(config):
        raise RecordError(path, "config_hash", f"{rec.config_hash} is not this config's "
                          f"{config_hash(config)}")
    return rec


def _load_reference(config: dict, root) -> tuple[ReferenceRecord, dict]:
    try:
        ref, data = _checked_reference(config, root)
    except RecordError:  # missing or invalid (run_sweep has moved invalid ones aside)
        execute_reference(config, root)
        ref, data = _checked_reference(config, root)
    with np.load(io.BytesIO(data)) as z:  # the bytes whose sha256 was checked
        arrays = {k: z[k] for k in z.files}
    return ref, arrays


def execute_run(config: dict, root: str | os.PathLike | None = None, write: bool = True) -> RunRecord:
    """One W2S run: load (or compute) its reference, train the student, return the record."""
    from .embed import features
    from w2sg.pgr import pgr
    from .pipeline import train_student
    t0 = time.perf_counter()
    ref, arrays = _load_reference(config, root)
    task = _task(config)
    S = None if config.get("finetune") else features(task, config["strong"], config["max_length"])
    m, info = train_student(task, S, arrays["weak_student"], arrays["weak_test"], config["loss"],
                            config["noise"], config["seed"], _train_cfg(config["train"]),
                            finetune=config.get("finetune"), log=_finetune_log())
    base = ref.baselines
    rel = reference_path(config, Path("."))
    record = RunRecord(
        config=config, config_hash=config_hash(config), task=config["task"],
        weak=config["weak"], strong=config["strong"], loss=config["loss"],
        noise=config["noise"], seed=config["seed"],
        smoothing=_train_cfg(config["train"]).smoothing,  # weak-label smoothing of the loss
        metrics=student_metrics(m, pgr(m["acc"], base.weak.acc, base.ceiling.acc)),
        reference=base, reference_record=str(rel), ceiling_split=ref.ceiling_split,
        splits=ref.splits, train_info={**{k: v for k, v in info.items() if k != "train_s"},
                                       "loss_kernel": _loss_kernel(config)},
        timings=RunTimings(train_s=info["train_s"], total_s=time.perf_counter() - t0))
    if write:
        write_record(run_path(config, results_root(root)), record)
    return record


def _loss_kernel(config: dict) -> str | None:
    """The kernel that computed the run's f-divergence loss (provenance, not part of the
    config: :func:`experiments.losses.fdiv_kernel_for`)."""
    from .losses import fdiv_kernel_for
    ft = config.get("finetune")
    device = ft.get("device", "cpu") if isinstance(ft, dict) else "cpu"
    return fdiv_kernel_for(config["loss"], _train_cfg(config["train"]).dtype, device)


def _finetune_log():
    """Progress lines of fine-tuned runs go to stderr unless ``$W2SG_QUIET`` is set
    (:func:`run_sweep` sets it for ``quiet`` sweeps; worker processes inherit it)."""
    if os.environ.get("W2SG_QUIET"):
        return None
    import sys
    return lambda line: print(line, file=sys.stderr, flush=True)


def init_worker() -> None:
    """Set up a worker process before its first job: single-threaded torch (the workers
    already run in parallel)."""
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass


def run_job(job: tuple) -> str:
    """Run one job ``(kind, config, root)`` — ``kind`` is ``reference`` or ``run`` — and
    write its record; the public job API that every backend calls.  Returns ``kind``."""
    kind, config, root = job
    fn = execute_reference if kind == "reference" else execute_run
    fn(config, root)
    return kind


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(f"[w2sg run] {msg}", file=sys.stderr, flush=True)


def _set_aside(exc: RecordError, paths) -> None:
    moved = [str(move_aside(p)) for p in paths if os.path.lexists(p)]
    # named on the console even with --quiet: a record that was not trusted is news
    print(f"[w2sg run] invalid record, redoing it: {exc}; moved aside: {', '.join(moved) or '-'}",
          file=sys.stderr, flush=True)


def _pending(configs, root, path_of, check, files_of) -> list[dict]:
    """The configs whose record at ``path_of(config, root)`` is missing or fails ``check``
    (its ``files_of(path)`` are then moved aside and named)."""
    todo = []
    for cfg in configs:
        path = path_of(cfg, root)
        if not os.path.lexists(path):
            todo.append(cfg)
            continue
        try:
            check(cfg, root)
        except RecordError as exc:
            _set_aside(exc, files_of(path))
            todo.append(cfg)
    return todo


def resume_todo(refs: list[dict], runs: list[dict], root):
    """``(references to compute, runs to compute)``: those without a valid record.

    Existing records are validated (:func:`check_reference_record`,
    :func:`check_run_record`); an invalid one (and a reference's ``.npz``) is moved aside
    (:func:`w2sg.records.move_aside`), named on stderr (even in a quiet sweep) and scheduled
    again.  The runs of a redone reference are kept: a reference is deterministic in its
    config, so the recomputed one has the baselines the runs already hold (tested).
    """
    todo_refs = _pending(refs, root, reference_path, check_reference_record,
                         lambda path: [path, path.with_suffix(".npz")])
    todo_runs = _pending(runs, root, run_path, check_run_record, lambda path: [path])
    return todo_refs, todo_runs


def run_sweep(sweep: dict, root=None, workers: int = 2, quiet: bool = False,
              backend: str | None = None, address: str | None = None) -> dict:
    """Run a sweep: embeddings first (once), then references, then runs, skipping finished ones.

    ``backend``: ``local`` (processes; default) or ``ray`` (Ray tasks on
    the cluster at ``address``, else a local Ray with ``workers``
    CPUs; :mod:`experiments.backends.ray_backend`).
    """
    from tqdm.auto import tqdm
    backend = backend or "local"
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be local or ray, got {backend!r}")
    root = results_root(root)
    t0 = time.perf_counter()
    for tmp in clean_temp_files(root / "runs"):  # left by a crash between write and rename
        _say(f"removed a leftover temporary file {tmp}")  # named even when quiet: a deletion
    refs, runs = expand(sweep)
    seen = set()
    for ref in refs:  # one embedding pass per (task pool, model)
        key = (ref["task"], ref["weak"], ref["pool"], ref["max_length"])
        if key not in seen:
            seen.add(key)
            prepare_features(ref, quiet=quiet)
    t_feat = time.perf_counter() - t0
    todo_refs, todo_runs = resume_todo(refs, runs, root)  # names set-aside records even when quiet
    skipped = len(refs) - len(todo_refs) + len(runs) - len(todo_runs)
    jobs = [("reference", r, str(root)) for r in todo_refs]
    run_jobs = [("run", r, str(root)) for r in todo_runs]
    bar = tqdm(total=len(jobs) + len(run_jobs), desc="w2sg run", unit="run", disable=quiet)
    env = {}  # read by the workers (they inherit this process's environment)
    if quiet:
        env["W2SG_QUIET"] = "1"  # no per-evaluation lines from fine-tuned runs
    if str((sweep.get("finetune") or {}).get("device", "cpu")).startswith("cuda"):
        env["W2SG_START_METHOD"] = "spawn"  # a CUDA runtime does not survive fork
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        if backend == "ray":
            from .backends.ray_backend import run_phases
            run_phases([jobs, run_jobs], run_job, init_worker, address=address, workers=workers,
                       progress=bar.update)
        else:
            from .backends.local import run_phases
            run_phases([jobs, run_jobs], run_job, init_worker, workers=workers, progress=bar.update)
    finally:
        bar.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"root": str(root), "backend": backend, "references": len(refs), "runs": len(runs),
            "executed": len(jobs) + len(run_jobs), "skipped": skipped,
            "features_s": t_feat, "total_s": time.perf_counter() - t0}


def summarize(sweep: dict, root=None) -> list[dict]:
    """Mean (± sd over seeds) weak / ceiling / w2s accuracy and PGR per (task, weak, loss, noise)."""
    root = results_root(root)
    _, runs = expand(sweep)
    groups: dict[tuple, list[RunRecord]] = {}
    for cfg in runs:
        path = run_path(cfg, root)
        if path.exists():
            rec = read_record(path, RunRecord, root=root)
            groups.setdefault((cfg["task"], cfg["weak"], cfg["loss"], cfg["noise"]), []).append(rec)
    rows = []
    for (task, weak, loss, noise), recs in groups.items():
        acc = np.array([r.metrics.acc for r in recs])
        pg = np.array([np.nan if r.metrics.pgr is None else r.metrics.pgr for r in recs])
        auroc = [np.nan if r.metrics.auroc is None else r.metrics.auroc for r in recs]
        rows.append({"task": task, "weak": weak, "loss": loss, "noise": noise, "n_seeds": len(recs),
                     "weak_acc": float(np.mean([r.reference.weak.acc for r in recs])),
                     "ceiling_acc": float(np.mean([r.reference.ceiling.acc for r in recs])),
                     "w2s_acc": float(acc.mean()), "w2s_acc_sd": float(acc.std()),
                     "pgr": float(np.nanmean(pg)) if np.isfinite(pg).any() else float("nan"),
                     "agreement_weak": float(np.mean([r.metrics.agreement_weak for r in recs])),
                     "ece": float(np.mean([r.metrics.ece for r in recs])),
                     "auroc": float(np.mean(auroc))})
    return rows


def format_summary(rows: list[dict]) -> str:
    if not rows:
        return "(no finished runs)"
    lines = [f"{'task':<15} {'weak':<17} {'loss':<11} {'noise':>5} {'weak':>6} {'ceil':>6} "
             f"{'w2s':>6} {'PGR':>6}"]
    for r in rows:
        lines.append(f"{r['task']:<15} {r['weak']:<17} {r['loss'][:11]:<11} {r['noise']:>5.2f} "
                     f"{r['weak_acc']:>6.3f} {r['ceiling_acc']:>6.3f} {r['w2s_acc']:>6.3f} {r['pgr']:>6.2f}")
    return "\n".join(lines)
