"""Small synthetic record sets for the figure tests (written with experiments.records)."""
from __future__ import annotations

from pathlib import Path

from experiments.records import write_record

LOSSES = ("reverse_kl", "ce", "pearson", "kl")  # deliberately not in legend order
SEEDS = (0, 1, 2)
NOISES = (0.0, 0.4)
WEAK = {0: 0.60, 1: 0.62, 2: 0.58}
CEIL = {0: 0.80, 1: 0.82, 2: 0.78}


def acc_of(loss: str, noise: float, seed: int) -> float:
    base = {"ce": 0.70, "kl": 0.70, "pearson": 0.72, "reverse_kl": 0.74}[loss]
    drop = {"ce": 0.10, "kl": 0.10, "pearson": 0.04, "reverse_kl": 0.02}[loss]
    return base - (drop if noise > 0 else 0.0) + 0.01 * (seed - 1)


def write_runs(root: Path, task: str = "toy_task") -> list[Path]:
    paths = []
    for loss in LOSSES:
        for noise in NOISES:
            for seed in SEEDS:
                acc = acc_of(loss, noise, seed)
                rec = {"config": {"task": task, "weak_model": "weakling", "strong_model": "strongling",
                                  "weak": "weakling", "loss": loss, "noise": noise, "seed": seed},
                       "metrics": {"acc": acc, "w2s": {"acc": acc}, "weak": {"acc": WEAK[seed]},
                                   "ceiling": {"acc": CEIL[seed]},
                                   "pgr": (acc - WEAK[seed]) / (CEIL[seed] - WEAK[seed])}}
                paths.append(write_record(root / "runs" / f"{task}-{loss}-{noise}-{seed}.json", rec))
    return paths


def write_checks(root: Path) -> None:
    c4 = [{"generator": g, "err_w": 0.3, "err_sw": 0.3 + d, "radius": 0.1, "world_seed": i}
          for i, (g, d) in enumerate([("kl", -0.05), ("kl", 0.02), ("js", -0.01), ("reverse_kl", 0.0)])]
    write_record(root / "checks" / "C4.json", {"claim": "C4", "instances": 4, "worst_slack": 0.05,
                                               "status": "pass", "seconds": 0.1, "quick": True,
                                               "details": {"instances": c4}})
    c5 = [{"generator": "reverse_kl", "gain": 0.2, "misfit": 0.1},
          {"generator": "reverse_kl", "gain": 0.05, "misfit": 0.01}]
    write_record(root / "checks" / "C5.json", {"claim": "C5", "instances": 2, "worst_slack": 0.04,
                                               "status": "pass", "seconds": 0.1,
                                               "details": {"instances": c5}})
    write_record(root / "checks" / "counterexamples" / "c5-pearson-7.json",
                 {"generator": "pearson", "gain": 0.01, "misfit": 0.03, "seed": 7})
    per_n = [{"generator": "js", "n": n, "excess_mean": 1 / n, "bound": 5 / n ** 0.5, "coverage": 1.0}
             for n in (50, 100, 200)]
    write_record(root / "checks" / "C6.json", {"claim": "C6", "instances": 3, "worst_slack": 0.0,
                                               "status": "pass", "seconds": 0.1,
                                               "details": {"per_n": per_n, "delta": 0.1}})


def write_bench(root: Path) -> None:
    """A record in the schema of ``w2sg bench`` (experiments.bench): training and kernel rows."""
    rows = [{"loss": l, "epoch_ms_wall": ms, "epoch_ms_cpu": 2 * ms, "peak_mib": mb, "ratio_cpu": ms / 1.0}
            for l, ms, mb in [("ce", 1.0, 10.0), ("pearson", 1.5, 10.5), ("aux_conf", 1.2, 10.0)]]
    kernel_rows = [{"loss": l, "variant": v, "ratio_cpu": r, "cpu": {"median_ms": 2.0 * r}}
                   for l, v, r in [("ce", "eager", 1.0), ("pearson", "fused", 1.3), ("js", "fused", 1.7)]]
    write_record(root / "bench" / "bench-20261129T000000Z.json",
                 {"kind": "bench", "machine": {"device": "cpu"},
                  "training": {"rows": rows},
                  "kernels": {"shapes": [{"n": 64, "k": 2, "rows": kernel_rows}]}})
