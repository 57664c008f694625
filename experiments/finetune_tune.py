"""Learning-rate tuning of fine-tuned students (the fair-comparison protocol of issue 19).

A sweep whose ``finetune`` table has ``tune = {"lr": [...], "seeds": [...], "select": "weak",
"noise": null}`` trains every loss with the learning rate chosen for it: per *cell* (task,
weak model, loss, noise level — or, with ``tune.noise`` a number, that one noise level for
every level of the sweep) each ``lr`` of the grid is fine-tuned on every *tuning seed* (seeds
the evaluation never uses: the sweep refuses overlapping ones) with the sweep's recipe, and
scored on the validation slice of the student split: ``select = "weak"`` — agreement with the
(noisy) weak labels there, what a practitioner without ground truth can measure; ``"oracle"``
— agreement with its ground truth (a labelled upper bound).  The best mean score wins (ties:
the earlier grid entry).  Under ``"weak"`` no ground-truth label of the student split is read.

The result of a cell is stored as strict JSON at
``<results root>/tuning/finetune/<hash>.json`` (``hash``: the cell config's
:func:`w2sg.records.config_hash`; the file holds the config; outside ``runs/``, which holds
typed records only) and checked when read (parses, same config hash, scores for every grid entry, the
chosen entry in the grid); an invalid file is moved aside, named on stderr and recomputed.
The first run of a cell computes it under a file lock, so parallel workers never tune one
cell twice.  A tuned run record carries ``tuning`` = ``{grid: [{"lr": …}], chosen, select,
tuning_seeds, scores}`` (scores: mean over tuning seeds, in grid order).
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["TUNE_DEFAULT", "TUNE_SEED_BASE", "tuning_config", "tuning_path", "tune_cell",
           "tuned", "check_tuning"]

#: The first tuning seed: far above any evaluation seed of a sweep (``seeds`` counts from 0).
TUNE_SEED_BASE = 10_000
#: ``[finetune] tune`` when tuning is on without explicit settings.
TUNE_DEFAULT = {"lr": [3e-5, 1e-4, 3e-4], "seeds": [TUNE_SEED_BASE], "select": "weak",
                "noise": None}


def tuning_config(run_config: dict) -> dict:
    """The cell config of a tuned run config (what its tuning depends on: no seed, no lr)."""
    ft = copy.deepcopy(run_config["finetune"])
    tune = ft.pop("tune")
    ft.pop("lr")
    noise = run_config["noise"] if tune.get("noise") is None else float(tune["noise"])
    return {"kind": "finetune-tuning", "task": run_config["task"], "weak": run_config["weak"],
            "strong": run_config["strong"], "pool": run_config["pool"],
            "sizes": copy.deepcopy(run_config["sizes"]), "max_length": run_config["max_length"],
            "train": copy.deepcopy(run_config["train"]),
            "weak_train": copy.deepcopy(run_config["weak_train"]),
            "loss": run_config["loss"], "noise": float(noise), "finetune": ft, "tune": tune}


def tuning_path(cell: dict, root) -> Path:
    """``<root>/tuning/finetune/<hash>.json`` (the file holds the cell config)."""
    from w2sg.records import config_hash
    return Path(root) / "tuning" / "finetune" / f"{config_hash(cell)}.json"


def tune_cell(cell: dict, log=None) -> dict:
    """Fine-tune every grid ``lr`` on every tuning seed of ``cell``; the stored result."""
    from .data import build_task
    from .embed import features
    from .finetune import finetune_predict, train_settings
    from .losses import make_loss
    from .pipeline import TrainConfig, flip_labels, split_student, weak_supervisor
    t0 = time.perf_counter()
    tune, ft = cell["tune"], train_settings(cell["finetune"])
    loss = make_loss(cell["loss"], smoothing=cell["train"]["smoothing"])
    per_seed = []
    for seed in tune["seeds"]:
        task = build_task(cell["task"], seed, pool=cell["pool"], sizes=cell["sizes"])
        weak, _ = weak_supervisor(task, features(task, cell["weak"], cell["max_length"]), seed,
                                  TrainConfig(**cell["weak_train"]))
        labels, _ = flip_labels(weak["student"], cell["noise"], seed)
        tr, va = split_student(len(labels), task.info["val_frac"])
        val = labels[va] if tune["select"] == "weak" else task.splits["student"][1][va]
        row = []
        for lr in tune["lr"]:
            _, info = finetune_predict(task, labels[tr], val, loss, seed, **{**ft, "lr": lr},
                                       desc=f"[tune] {cell['task']} {cell['loss']} noise "
                                            f"{cell['noise']:g} lr {lr:g} seed {seed}", log=log)
            row.append(float(info["val_acc"]))
        per_seed.append(row)
    scores = np.mean(per_seed, axis=0)
    grid = [{"lr": float(lr)} for lr in tune["lr"]]
    tuning = {"grid": grid, "chosen": grid[int(np.argmax(scores))], "select": tune["select"],
              "tuning_seeds": [int(s) for s in tune["seeds"]],
              "scores": [float(s) for s in scores]}
    from w2sg.records import config_hash
    return {"kind": "finetune-tuning", "config": cell, "config_hash": config_hash(cell),
            "tuning": tuning, "per_seed_scores": per_seed,
            "timings": {"total_s": time.perf_counter() - t0}}


def check_tuning(cell: dict, path: Path) -> dict:
    """The tuning result stored at ``path`` for ``cell``; ``ValueError`` naming what is wrong."""
    from w2sg.records import config_hash
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    t = data.get("tuning") if isinstance(data, dict) else None
    if not isinstance(t, dict) or data.get("config_hash") != config_hash(cell):
        raise ValueError(f"{path}: config_hash is not this cell's {config_hash(cell)}")
    grid = [{"lr": float(lr)} for lr in cell["tune"]["lr"]]
    if (t.get("grid") != grid or t.get("chosen") not in grid or not isinstance(t.get("scores"), list)
            or len(t["scores"]) != len(grid)
            or t.get("tuning_seeds") != list(cell["tune"]["seeds"])
            or t.get("select") != cell["tune"]["select"]):
        raise ValueError(f"{path}: tuning does not match the cell's grid, seeds and selection")
    return {k: t[k] for k in ("grid", "chosen", "select", "tuning_seeds", "scores")}


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tuned(run_config: dict, root, log=None) -> dict:
    """The ``tuning`` object of a tuned run config: read (checked) or computed and stored."""
    from w2sg.records import move_aside
    from w2sg.strict_json import dumps
    cell = tuning_config(run_config)
    path = tuning_path(cell, root)
    with _locked(path):
        if path.exists():
            try:
                return check_tuning(cell, path)
            except ValueError as exc:
                moved = move_aside(path)
                print(f"[w2sg run] invalid tuning result, redoing it: {exc}; moved aside: {moved}",
                      file=sys.stderr, flush=True)
        data = tune_cell(cell, log)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(dumps(data))
        os.replace(tmp, path)
        return check_tuning(cell, path)
