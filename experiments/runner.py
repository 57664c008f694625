"""Sweeps of W2SG runs: expansion, records, resume, local parallelism.

Every run is described by a JSON-able *config* and executed by a pure-ish function
(:func:`execute_run` / :func:`execute_reference`) that reads only the config, the embedding
cache and the reference outputs, and returns the record; a later backend (Ray) can
dispatch the same functions.  Records go to::

    <results root>/runs/reference/<task>/<weak>/seed<S>-<hash>.json   weak supervisor + ceiling
    <results root>/runs/reference/<task>/<weak>/seed<S>-<hash>.npz    its weak soft labels
    <results root>/runs/<task>/<weak>/<loss>/noise<P>-seed<S>-<hash>.json   one W2S run
    <results root>/runs/tuning/<task>/<weak>/<loss>/noise<P>-<model>-<hash>.json   one tuning cell

Records are the typed dataclasses of :mod:`w2sg.records` (``RunRecord``,
``ReferenceRecord``; field lists there), written atomically as strict JSON.  Run config
keys: kind, task, weak, strong, seed, pool, sizes, max_length, train, weak_train, loss,
noise (and, only when used, so that older configs hash as before: finetune; noise_model
when not ``symmetric``; tune {grid, select, tuning_seeds}; train.normalize).

Tuning (``sweep["tune"]``, :mod:`experiments.tuning`): the references of the tuning seeds
are computed with the others, then one *tuning job* per (task, weak, loss, noise, noise
model) trains the whole grid on all tuning seeds as one batched model and writes a
``tuning`` record (:func:`execute_tuning`); each tuned run reads its cell's record and
trains ``tuning.chosen`` on its evaluation seed.  Phases: references, tuning cells, runs.

Resume (:func:`run_sweep`): a run whose record exists is skipped only after it is
validated (:func:`check_run_record`: parses, current schema, ``config_hash`` equal to the
config's); a reference also needs its ``.npz`` with the sha256 stored in its record
(:func:`check_reference_record`).  An invalid one is moved aside
(``<name>.corrupt-<stamp>``), named on stderr and redone.  Temporary files left by a
crash between write and rename are deleted when a sweep starts.

Ctrl-C stops a sweep within seconds (:mod:`experiments.backends.local`: no job starts, every
worker is stopped and reaped; Ray tasks are cancelled): :func:`run_sweep` then removes the
temporary files of writes cut short (local backend) and re-raises
:class:`KeyboardInterrupt`.  Finished records are complete and kept, so rerunning the same
sweep resumes with exactly the runs that were missing.

Jobs are deduplicated: :func:`expand` merges repeated tasks, weak models, losses and noise
levels (first occurrence kept), so every config appears once.

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
from w2sg.records import (Baselines, CeilingMetrics, NoiseInfo, RecordError, ReferenceRecord,
                          ReferenceTimings, RunRecord, RunTimings, Tuning, TuningRecord, WeakMetrics,
                          clean_temp_files, config_hash, finite_or_none, move_aside, read_record,
                          read_regular, results_root, student_metrics, write_atomic, write_record)
from w2sg.results import read

from .losses import DEFAULT_LOSSES, QUICK_LOSSES
from .pipeline import STUDENT_TRAIN, WEAK_TRAIN

__all__ = ["DEFAULT_SWEEP", "QUICK_SWEEP", "FINETUNE_SWEEP", "PRESETS", "expand", "expand_tuning", "reference_config",
           "tuning_config", "tuning_path", "execute_tuning", "check_tuning_record",
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
    # tune: None (fixed recipe) or experiments.tuning.tune_spec(...) = {grid, select, tuning_seeds}
    "tune": None,
    "normalize": None,       # None or "curvature" (experiments.losses.make_loss)
    "noise_models": ["symmetric"],  # experiments.pipeline.NOISE_MODELS
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

#: ``w2sg run --preset finetune`` (and ``w2sg reproduce --finetune``): fine-tuned students with
#: the power to conclude (issue 20; docs/finetune.md): vader_cls with both weak supervisors ×
#: 10 seeds, so each (loss, noise) cell has 20 pairs; CE, KL (= CE, the C8 control), the bounded
#: divergences TV / JS / squared Hellinger, reverse KL and aux_conf; noise 0 and 0.4.  Recipe:
#: the top layer of MiniLM-L6 trained on cached activations (``layers`` 1; ``all`` on a GPU),
#: one epoch (145 steps of 16 texts cut at 48 tokens), linear warm-up (10 %) then linear decay,
#: dropout off, no checkpoint selection; the learning rate is tuned per (panel, loss) at noise
#: 0.4 on tuning seed 10000 (lr ∈ {1e-4, 3e-4, 1e-3}: with one layer training, 3e-5 underfits
#: in one epoch; selected on agreement with the weak labels of the validation slice) and used
#: at every noise level; the ceiling uses ``lr`` 1e-3.  20 ceilings + 280 students + 42 tuning
#: fine-tunes: 33–40 min with 2 workers on 2 idle cores (docs/finetune.md: how it was measured).
FINETUNE_SWEEP: dict[str, Any] = {
    **DEFAULT_SWEEP,
    "tasks": ["vader_cls"],
    "weak": ["minilm-l6-layer0", "minilm-l3"],
    "losses": ["ce", "kl", "tv", "js", "hellinger", "reverse_kl", "aux_conf"],
    "noise": [0.0, 0.4],
    "seeds": 10,
    "finetune": {"layers": 1, "epochs": 1, "lr": 1e-3, "schedule": "linear", "warmup": 0.1,
                 "dropout": 0.0, "batch_size": 16, "max_length": 48, "max_steps": 0,
                 "select": "last", "eval_every": 0, "patience": 0, "device": "cpu",
                 "tune": {"lr": [1e-4, 3e-4, 1e-3], "seeds": [10_000], "select": "weak",
                          "noise": 0.4}},
}
#: Named sweeps for ``w2sg run --preset NAME``.
PRESETS: dict[str, dict[str, Any]] = {"finetune": FINETUNE_SWEEP}


#: Largest reference ``.npz`` read (bytes): the weak soft labels of one task split.
MAX_ARRAYS_BYTES = 1 << 30


def _unique(values) -> list:
    """``values`` without repeats, first occurrence kept (a sweep counts each value once)."""
    return list(dict.fromkeys(values))


def _base_configs(sweep: dict[str, Any], seeds) -> list[dict]:
    """The shared keys of every (task, weak model, seed) in ``seeds``."""
    out = []
    for task in _unique(sweep["tasks"]):
        for weak in _unique(sweep["weak"]):
            for seed in seeds:
                train = dict(sweep["train"])
                if sweep.get("normalize"):  # only present when used: older hashes unchanged
                    train["normalize"] = sweep["normalize"]
                base = {"task": task, "weak": weak, "strong": sweep["strong"], "seed": seed,
                        "pool": sweep["pool"], "sizes": dict(sweep["sizes"]),
                        "max_length": sweep["max_length"], "train": train,
                        "weak_train": dict(sweep["weak_train"])}
                if sweep.get("finetune"):  # only present when used: frozen-head hashes unchanged
                    base["finetune"] = dict(sweep["finetune"])
                out.append(base)
    return out


def _cells(sweep: dict[str, Any]):
    """``(loss, noise, noise model)`` of every cell, in sweep order; repeated losses, noise
    levels (compared as floats: ``0`` and ``0.0`` are one level) or noise models count once."""
    for loss in _unique(sweep["losses"]):
        for noise in _unique(float(p) for p in sweep["noise"]):
            for model in _unique(sweep.get("noise_models") or ["symmetric"]):
                yield loss, noise, model


def expand(sweep: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Reference configs (one per task, weak model, seed — the tuning seeds' included when the
    sweep is tuned) and run configs (evaluation seeds × loss × noise × noise model).

    Repeated tasks, weak models, losses, noise levels or noise models count once (first
    occurrence kept): every config appears once."""
    tune = sweep.get("tune")
    refs, runs = [], []
    for base in _base_configs(sweep, range(int(sweep["seeds"]))):
        refs.append(reference_config({"kind": "reference", **base}))
        for loss, noise, model in _cells(sweep):
            run = {"kind": "run", **base, "loss": loss, "noise": noise}
            if model != "symmetric":  # symmetric runs hash as before noise models existed
                run["noise_model"] = model
            if tune:
                run["tune"] = copy.deepcopy(tune)
            runs.append(run)
    if tune:
        refs += [reference_config({"kind": "reference", **base})
                 for base in _base_configs(sweep, tune["tuning_seeds"])]
    return refs, runs


def expand_tuning(sweep: dict[str, Any]) -> list[dict]:
    """The tuning-cell configs of a tuned sweep (none for a fixed recipe): one per (task,
    weak, loss, noise, noise model) — :func:`tuning_config` of its runs."""
    _, runs = expand(sweep)
    seen, out = set(), []
    for run in runs if sweep.get("tune") else []:
        cfg = tuning_config(run)
        h = config_hash(cfg)
        if h not in seen:
            seen.add(h)
            out.append(cfg)
    return out


_RUN_ONLY = ("loss", "noise", "noise_model", "tune")


def reference_config(run_config: dict) -> dict:
    """The reference config of a run (or tuning) config: its (task, weak, seed) keys, without
    the run's loss, noise, noise model, tuning spec and ``train.normalize`` (the ceiling is CE)."""
    cfg = {k: copy.deepcopy(v) for k, v in run_config.items() if k not in _RUN_ONLY}
    cfg["kind"] = "reference"
    if isinstance(cfg.get("train"), dict):
        cfg["train"] = {k: v for k, v in cfg["train"].items() if k != "normalize"}
    return cfg


def tuning_config(run_config: dict) -> dict:
    """The tuning-cell config of a tuned run config: the run's keys without ``seed``, with
    an explicit ``noise_model``, kind ``tuning``."""
    cfg = {k: copy.deepcopy(v) for k, v in run_config.items() if k != "seed"}
    cfg["kind"] = "tuning"
    cfg["noise_model"] = run_config.get("noise_model", "symmetric")
    return cfg


def reference_path(config: dict, root: Path) -> Path:
    cfg = reference_config(config)
    return (Path(root) / "runs" / "reference" / slug(cfg["task"]) / cfg["weak"]
            / f"seed{cfg['seed']}-{config_hash(cfg)}.json")


def tuning_path(config: dict, root: Path) -> Path:
    cfg = tuning_config(config) if config.get("kind") != "tuning" else config
    return (Path(root) / "runs" / "tuning" / slug(cfg["task"]) / cfg["weak"] / slug(cfg["loss"])
            / f"noise{cfg['noise']:g}-{cfg['noise_model']}-{config_hash(cfg)}.json")


def run_path(config: dict, root: Path) -> Path:
    model = config.get("noise_model", "symmetric")
    tag = "" if model == "symmetric" else f"-{model}"
    return (Path(root) / "runs" / slug(config["task"]) / config["weak"] / slug(config["loss"])
            / f"noise{config['noise']:g}{tag}-seed{config['seed']}-{config_hash(config)}.json")


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
        if config["finetune"].get("layers", "all") != "all":  # and cache the frozen layers' states
            from .finetune import StrongScorer
            StrongScorer(task, config["finetune"]["layers"], config["finetune"]["max_length"])


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
    """Write ``arrays`` to ``npz`` atomically (:func:`w2sg.records.write_atomic`); returns
    the sha256 of its bytes."""
    npz.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    write_atomic(npz, data)
    return hashlib.sha256(data).hexdigest()


def _checked_reference(config: dict, root) -> tuple[ReferenceRecord, bytes]:
    """The valid reference record of ``config`` and the bytes of its ``.npz``."""
    cfg = reference_config(config)
    top = results_root(root)
    path = reference_path(cfg, top)
    rec = read(path, ReferenceRecord, root=top)  # ``arrays``: a plain file name; parsed once per process
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
    ``config_hash`` is the config's; raises :class:`w2sg.records.RecordError` otherwise.
    Read through :func:`w2sg.results.read` (parsed once per process: the summary after the
    sweep does not open it again)."""
    top = results_root(root)
    path = run_path(config, top)
    rec = read(path, RunRecord, root=top)
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


def _student_inputs(config: dict, root):
    """``(reference record, arrays, task, strong features)`` of one (task, weak, seed) config."""
    from .embed import features
    ref, arrays = _load_reference(config, root)
    task = _task(config)
    S = None if config.get("finetune") else features(task, config["strong"], config["max_length"])
    return ref, arrays, task, S


def execute_tuning(config: dict, root: str | os.PathLike | None = None,
                   write: bool = True) -> TuningRecord:
    """One tuning cell: the grid of ``config["tune"]`` trained as one batched model on every
    tuning seed (each a full replicate: its reference is loaded or computed), scored by
    ``tune.select`` (:func:`experiments.tuning.score_grid`).  Under ``select="weak"`` the
    student split's ground truth is not read."""
    from .losses import make_loss
    from .pipeline import student_problem
    from .tuning import score_grid
    t0 = time.perf_counter()
    cfg = tuning_config(config) if config.get("kind") != "tuning" else config
    spec, train = cfg["tune"], _train_cfg(cfg["train"])
    problems = []
    for seed in spec["tuning_seeds"]:
        _, arrays, task, S = _student_inputs({**cfg, "seed": seed}, root)
        prob = student_problem(task, S, arrays["weak_student"], cfg["noise"], seed, cfg["noise_model"])
        tr, va = prob["tr"], prob["va"]
        p = {"X_tr": prob["Xs"][tr], "w_tr": prob["labels"][tr], "X_va": prob["Xs"][va],
             "w_va": prob["labels"][va]}
        if spec["select"] == "oracle":  # ground truth read here only
            p["y_va"] = task.splits["student"][1][va]
        problems.append(p)
    t1 = time.perf_counter()
    loss = make_loss(cfg["loss"], smoothing=train.smoothing, normalize=train.normalize)
    out = score_grid(problems, loss, spec["grid"], train, task.kind == "cls", spec["select"])
    t2 = time.perf_counter()
    record = TuningRecord(
        config=cfg, config_hash=config_hash(cfg), task=cfg["task"], weak=cfg["weak"],
        strong=cfg["strong"], loss=cfg["loss"], noise=cfg["noise"], noise_model=cfg["noise_model"],
        tuning=Tuning(grid=[dict(g) for g in spec["grid"]], chosen=dict(spec["grid"][out["chosen_index"]]),
                      select=spec["select"], tuning_seeds=list(spec["tuning_seeds"]), scores=out["scores"]),
        per_seed_scores=out["per_seed_scores"], best_steps=out["best_steps"],
        timings=RunTimings(train_s=t2 - t1, total_s=time.perf_counter() - t0))
    if write:
        write_record(tuning_path(cfg, results_root(root)), record)
    return record


def check_tuning_record(config: dict, root) -> TuningRecord:
    """The valid tuning record of ``config`` (a tuning or tuned-run config): parses and its
    ``config_hash`` is the cell's; raises :class:`w2sg.records.RecordError` otherwise."""
    cfg = tuning_config(config) if config.get("kind") != "tuning" else config
    top = results_root(root)
    path = tuning_path(cfg, top)
    rec = read_record(path, TuningRecord, root=top)
    if rec.config_hash != config_hash(cfg):
        raise RecordError(path, "config_hash", f"{rec.config_hash} is not this config's "
                          f"{config_hash(cfg)}")
    return rec


def _tuning_of(config: dict, root) -> Tuning | None:
    """The tuning of a tuned run (its cell's record, computed when missing); None untuned."""
    if not config.get("tune"):
        return None
    try:
        return check_tuning_record(config, root).tuning
    except RecordError:  # missing or invalid (run_sweep has moved invalid ones aside)
        execute_tuning(config, root)
        return check_tuning_record(config, root).tuning


def execute_run(config: dict, root: str | os.PathLike | None = None, write: bool = True) -> RunRecord:
    """One W2S run: load (or compute) its reference (and, tuned, its tuning cell), train the
    student, return the record."""
    import dataclasses
    from w2sg.pgr import pgr
    from .pipeline import train_student
    t0 = time.perf_counter()
    tuning = _tuning_of(config, root)
    ref, arrays, task, S = _student_inputs(config, root)
    train = _train_cfg(config["train"])
    if tuning is not None:  # the cell's chosen configuration replaces lr / weight_decay
        train = dataclasses.replace(train, lr=tuning.chosen["lr"], weight_decay=tuning.chosen["weight_decay"])
    ft = config.get("finetune")
    if ft and ft.get("tune"):  # fine-tuned: the lr chosen on the tuning seeds (once per cell)
        from .finetune_tune import tuned
        tuning = Tuning(**tuned(config, results_root(root), log=_finetune_log()))
        ft = {**ft, "lr": tuning.chosen["lr"]}
    model = config.get("noise_model", "symmetric")
    m, info = train_student(task, S, arrays["weak_student"], arrays["weak_test"], config["loss"],
                            config["noise"], config["seed"], train, finetune=ft,
                            log=_finetune_log(), noise_model=model)
    base = ref.baselines
    rel = reference_path(config, Path("."))
    noise_info = info.pop("noise_info")
    record = RunRecord(
        config=config, config_hash=config_hash(config), task=config["task"],
        weak=config["weak"], strong=config["strong"], loss=config["loss"],
        noise=config["noise"], noise_model=model, seed=config["seed"],
        noise_info=NoiseInfo(**noise_info), tuning=tuning,
        smoothing=train.smoothing,  # weak-label smoothing of the loss
        metrics=student_metrics(m, pgr(m["acc"], base.weak.acc, base.ceiling.acc)),
        reference=base, reference_record=str(rel), ceiling_split=ref.ceiling_split,
        splits=ref.splits, train_info={**{k: v for k, v in info.items() if k != "train_s"},
                                       "loss_kernel": _loss_kernel(config),
                                       "lr": train.lr, "weight_decay": train.weight_decay},
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
    """Run one job ``(kind, config, root)`` — ``kind`` is ``reference``, ``tuning`` or
    ``run`` — and write its record; the public job API that every backend calls.  Returns
    ``kind``."""
    kind, config, root = job
    fn = {"reference": execute_reference, "tuning": execute_tuning}.get(kind, execute_run)
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


def resume_todo(refs: list[dict], runs: list[dict], root, tunings: list[dict] = ()):
    """``(references to compute, runs to compute[, tuning cells to compute])``: those
    without a valid record (the third only when ``tunings`` is given).

    Existing records are validated (:func:`check_reference_record`,
    :func:`check_run_record`); an invalid one (and a reference's ``.npz``) is moved aside
    (:func:`w2sg.records.move_aside`), named on stderr (even in a quiet sweep) and scheduled
    again.  The runs of a redone reference are kept: a reference is deterministic in its
    config, so the recomputed one has the baselines the runs already hold (tested).
    """
    todo_refs = _pending(refs, root, reference_path, check_reference_record,
                         lambda path: [path, path.with_suffix(".npz")])
    todo_runs = _pending(runs, root, run_path, check_run_record, lambda path: [path])
    if tunings:
        return todo_refs, todo_runs, _pending(tunings, root, tuning_path, check_tuning_record,
                                              lambda path: [path])
    return todo_refs, todo_runs


def run_sweep(sweep: dict, root=None, workers: int = 2, quiet: bool = False,
              backend: str | None = None, address: str | None = None) -> dict:
    """Run a sweep: embeddings first (once), then references, then tuning cells (a tuned
    sweep), then runs, skipping finished ones.

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
    tunings = expand_tuning(sweep)
    todo_refs, todo_runs, *todo_tune = resume_todo(refs, runs, root, tunings)  # names set-aside records
    todo_tune = todo_tune[0] if todo_tune else []
    skipped = len(refs) - len(todo_refs) + len(runs) - len(todo_runs) + len(tunings) - len(todo_tune)
    jobs = [("reference", r, str(root)) for r in todo_refs]
    tune_jobs = [("tuning", t, str(root)) for t in todo_tune]
    run_jobs = [("run", r, str(root)) for r in todo_runs]
    phases = [jobs, tune_jobs, run_jobs] if tune_jobs else [jobs, run_jobs]
    bar = tqdm(total=sum(map(len, phases)), desc="w2sg run", unit="job", disable=quiet)
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
            run_phases(phases, run_job, init_worker, address=address, workers=workers,
                       progress=bar.update)
        else:
            from .backends.local import run_phases
            run_phases(phases, run_job, init_worker, workers=workers, progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        if backend == "local":  # every worker has stopped: none is writing any more
            for tmp in clean_temp_files(root / "runs"):  # a write cut short by SIGKILL
                _say(f"removed the temporary file of an interrupted write {tmp}")
        raise
    finally:
        bar.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"root": str(root), "backend": backend, "references": len(refs), "runs": len(runs),
            "tuning_cells": len(tunings), "executed": sum(map(len, phases)), "skipped": skipped,
            "features_s": t_feat, "total_s": time.perf_counter() - t0}


def summarize(sweep: dict, root=None) -> list[dict]:
    """One row per (task, weak, loss, noise, noise model, selection) of the sweep's finished
    runs, in sweep order: :func:`w2sg.aggregate.run_summary` (means over seeds; ``w2s_acc_sd``
    the sample sd, ddof 1; ``pgr`` Burns et al.'s PGR of the means) of the run rows of the
    results table (:func:`w2sg.results.load`: each record read once per command).  A run
    record of the sweep that cannot be used raises its :class:`w2sg.records.RecordError`."""
    from w2sg.aggregate import run_summary
    from w2sg.results import load
    root = results_root(root)
    table = load(root)
    by_source = {r.source: r for r in table.runs}
    _, runs = expand(sweep)
    rows = []
    for src in (str(run_path(cfg, root).relative_to(root)) for cfg in runs):
        if table.error_of(src) is not None:
            raise table.error_of(src)
        if src in by_source:
            rows.append(by_source[src].row())
    return run_summary(rows)


def format_summary(rows: list[dict]) -> str:
    if not rows:
        return "(no finished runs)"
    extra = any(r.get("noise_model", "symmetric") != "symmetric" or r.get("select", "none") != "none"
                for r in rows)
    lines = [f"{'task':<15} {'weak':<17} {'loss':<11} {'noise':>5} {'weak':>6} {'ceil':>6} "
             f"{'w2s':>6} {'PGR':>6}" + ("  model      select chosen (wd, lr)" if extra else "")]
    for r in rows:
        line = (f"{r['task']:<15} {r['weak']:<17} {r['loss'][:11]:<11} {r['noise']:>5.2f} "
                f"{r['weak_acc']:>6.3f} {r['ceiling_acc']:>6.3f} {r['w2s_acc']:>6.3f} {r['pgr']:>6.2f}")
        if extra:
            ch = r.get("chosen")
            line += (f"  {r.get('noise_model', 'symmetric'):<10} {r.get('select', 'none'):<6} "
                     + (f"({ch['weight_decay']:g}, {ch['lr']:g})" if ch else "-"))
        lines.append(line)
    return "\n".join(lines)
