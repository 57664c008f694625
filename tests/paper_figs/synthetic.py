"""Small record sets for the figure tests, written by the REAL writers.

Run records are :class:`w2sg.records.RunRecord` built from the configs
:func:`experiments.runner.expand` makes, at the paths :func:`experiments.runner.run_path`
gives, with the PGR of :func:`w2sg.pgr.pgr` (as :func:`experiments.runner.execute_run`
does); check records come from :func:`numerics.cli.write_records`; the bench record is a
:class:`w2sg.records.BenchRecord`.  Renaming a writer's field breaks these tests.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.runner import DEFAULT_SWEEP, expand, reference_path, run_path
from w2sg.pgr import pgr
from w2sg.records import (Baselines, BenchRecord, CeilingMetrics, RunRecord, RunTimings,
                          WeakMetrics, config_hash, student_metrics, write_record)

LOSSES = ("reverse_kl", "ce", "pearson", "kl")  # deliberately not in legend order
SEEDS = (0, 1, 2)
NOISES = (0.0, 0.4)
WEAK = {0: 0.60, 1: 0.62, 2: 0.58}
CEIL = {0: 0.80, 1: 0.82, 2: 0.78}
TRAIN_S = 0.5


def acc_of(loss: str, noise: float, seed: int) -> float:
    base = {"ce": 0.70, "kl": 0.70, "pearson": 0.72, "reverse_kl": 0.74}[loss]
    drop = {"ce": 0.10, "kl": 0.10, "pearson": 0.04, "reverse_kl": 0.02}[loss]
    return base - (drop if noise > 0 else 0.0) + 0.01 * (seed - 1)


def sweep(task: str = "toy_task") -> dict:
    return {**DEFAULT_SWEEP, "tasks": [task], "weak": ["weakling"], "strong": "strongling",
            "losses": list(LOSSES), "noise": list(NOISES), "seeds": len(SEEDS)}


def run_record(config: dict, acc: float, weak_acc: float, ceil_acc: float,
               train_s: float = TRAIN_S) -> RunRecord:
    """A run record as :func:`experiments.runner.execute_run` builds it (given the numbers)."""
    m = {"acc": acc, "auroc": 0.8, "ece": 0.05, "agreement_weak": 0.9,
         "agreement_weak_labels_train": 0.9, "acc_on_flipped_train": None,
         "noisy_label_acc_train": 0.7}
    base = Baselines(weak=WeakMetrics(acc=weak_acc, auroc=0.7, ece=0.1, acc_student_split=weak_acc),
                     ceiling=CeilingMetrics(acc=ceil_acc, auroc=0.9, ece=0.05, agreement_weak=0.8),
                     gap=ceil_acc - weak_acc)
    return RunRecord(config=config, config_hash=config_hash(config), task=config["task"],
                     weak=config["weak"], strong=config["strong"], loss=config["loss"],
                     noise=config["noise"], seed=config["seed"],
                     smoothing=config["train"]["smoothing"],
                     metrics=student_metrics(m, pgr(acc, weak_acc, ceil_acc)), reference=base,
                     reference_record=str(reference_path(config, Path("."))),
                     ceiling_split="student", splits={"pool": 100},
                     train_info={"val_acc": 0.7, "best_step": 10, "final_loss": 0.5, "n_flipped": 0},
                     timings=RunTimings(train_s=train_s, total_s=train_s + 0.1))


def write_runs(root: Path, task: str = "toy_task") -> list[Path]:
    paths = []
    for cfg in expand(sweep(task))[1]:
        seed = cfg["seed"]
        rec = run_record(cfg, acc_of(cfg["loss"], cfg["noise"], seed), WEAK[seed], CEIL[seed])
        paths.append(write_record(run_path(cfg, root), rec))
    return paths


def write_checks(root: Path) -> list[str]:
    from numerics.checks.c5 import random_instance
    from numerics.cli import write_records
    from numerics.result import CheckResult
    c4 = [{"generator": g, "err_w": 0.3, "err_sw": 0.3 + d, "radius": 0.1, "world_seed": i}
          for i, (g, d) in enumerate([("kl", -0.05), ("kl", 0.02), ("js", -0.01), ("reverse_kl", 0.0)])]
    inst = random_instance(np.random.default_rng(3))
    ce = {"claim": "C5", "generator": "pearson", "variant": "kl", "search_seed": 7, "index": 0,
          "origin": "random", "draw": 0, "instance": inst, "violation": 0.02,
          "gain": 0.01, "misfit": 0.03}
    cells = [{"generator": "js", "n": n, "reps": 20, "delta": 0.1, "bound": 5 / n ** 0.5,
              "coverage": 1.0, "excess_mean": 1 / n, "excess_q": 2 / n} for n in (50, 100, 200)]
    results = [CheckResult("C4", 4, 0.05, "pass", 0.1, {"instances": c4}),
               CheckResult("C5", 2, 0.04, "pass", 0.1, {"search": {}, "counterexamples": [ce]}),
               CheckResult("C6", 3, 0.0, "pass", 0.1, {"coverage": cells, "delta": 0.1})]
    return write_records(results, root, quick=True, seed=0)


BENCH_NAME = "bench-20261129T000000Z.json"


def write_bench(root: Path) -> Path:
    """A bench record in the schema ``w2sg bench`` writes: training and kernel rows."""
    rows = [{"loss": l, "epoch_ms_wall": ms, "epoch_ms_cpu": 2 * ms, "peak_mib": mb, "ratio_cpu": ms / 1.0}
            for l, ms, mb in [("ce", 1.0, 10.0), ("pearson", 1.5, 10.5), ("aux_conf", 1.2, 10.0)]]
    kernel_rows = [{"loss": l, "variant": v, "ratio_cpu": r, "cpu": {"median_ms": 2.0 * r}}
                   for l, v, r in [("ce", "eager", 1.0), ("pearson", "fused", 1.3), ("js", "fused", 1.7)]]
    rec = BenchRecord(quick=True, what=["training", "kernels"], machine={"cpus": 2}, method="test",
                      elapsed_s=1.0, training={"rows": rows},
                      kernels={"shapes": [{"n": 64, "k": 2, "rows": kernel_rows}]})
    return write_record(root / "bench" / BENCH_NAME, rec)
