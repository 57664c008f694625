"""The readers understand the records the other packages actually write (real writers only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paper_figs import readers
from w2sg.records import RunRecord, read_record

from . import synthetic as syn

TINY = {"tasks": ["fortunes_pairs"], "weak": ["minilm-l6-layer0"], "losses": ["ce", "tv"],
        "noise": [0.0, 0.2], "seeds": 1, "pool": 600,
        "sizes": {"weak_gt": 60, "test": 100, "val_frac": 0.2},
        "train": {"steps": 30, "lr": 0.01, "weight_decay": 1.0, "eval_every": 10}}


@pytest.fixture
def seeded_features(monkeypatch):
    """Deterministic random features instead of the encoders (seeded by the model name)."""
    import experiments.embed as E
    seeds = {"minilm-l6": 1, "minilm-l6-layer0": 2}

    def features(task, model, max_length=128, quiet=True):
        d = 48 if model == "minilm-l6" else 8
        return np.random.default_rng([seeds[model], len(task.texts)]).normal(
            size=(len(task.texts), d)).astype(np.float32)
    monkeypatch.setattr(E, "features", features)


def test_a_real_tiny_sweep_feeds_the_figures(tmp_path, seeded_features):
    from experiments.runner import DEFAULT_SWEEP, expand, run_path, run_sweep
    from paper_figs.build import build_all
    sweep = {**DEFAULT_SWEEP, **TINY}
    run_sweep(sweep, tmp_path, workers=1, quiet=True)
    rows = readers.read_runs(tmp_path)
    assert rows.problems == [] and len(rows) == 4
    for cfg in expand(sweep)[1]:
        path = run_path(cfg, tmp_path)
        rec = read_record(path, RunRecord)
        (row,) = [r for r in rows if r["source"] == str(path.relative_to(tmp_path))]
        assert (row["task"], row["pair"], row["loss"], row["noise"], row["seed"]) == \
            ("fortunes_pairs", "minilm-l6-layer0→minilm-l6", cfg["loss"], cfg["noise"], 0)
        assert (row["acc"], row["weak_acc"], row["ceiling_acc"], row["train_s"], row["steps"]) == \
            (rec.metrics.acc, rec.reference.weak.acc, rec.reference.ceiling.acc,
             rec.timings.train_s, 30)
        gap = rec.reference.ceiling.acc - rec.reference.weak.acc
        if abs(gap) > 1e-12:
            assert row["pgr"] == pytest.approx((rec.metrics.acc - rec.reference.weak.acc) / gap)
        else:
            assert row["pgr"] is None and rec.metrics.pgr_undefined
    res = {r.name: r for r in build_all(tmp_path, only=["main_accuracy_vs_noise", "cost_per_step"])}
    assert res["main_accuracy_vs_noise"].status == "made"
    assert res["cost_per_step"].status == "made"  # from the runs' training times


def test_llm_run_records_are_rows(tmp_path):
    from w2sg.records import LlmRunRecord, write_record
    cfg = {"kind": "llm-run", "weak": "gpt2", "strong": "gpt2-medium", "data": "hh.jsonl", "n": 10,
           "loss": "js", "noise": 0.2, "seed": 1, "device": "cpu", "max_length": 16,
           "train": {"steps": 40, "smoothing": 1e-6}}
    run = syn.run_record({**cfg, "task": "x"}, 0.6, 0.55, 0.7)
    fields = {k: getattr(run, k) for k in ("config_hash", "loss", "noise", "seed", "metrics",
                                           "reference", "ceiling_split", "splits", "train_info",
                                           "timings")}
    rec = LlmRunRecord(config=cfg, task="llm:hh.jsonl", weak="gpt2", strong="gpt2-medium",
                       data="hh.jsonl", **fields)
    write_record(tmp_path / "runs" / "llm" / "gpt2__gpt2-medium" / "js" / "a.json", rec)
    (r,) = readers.read_runs(tmp_path)
    assert r["pair"] == "gpt2→gpt2-medium" and r["task"] == "llm:hh.jsonl"
    assert r["pgr"] == pytest.approx((0.6 - 0.55) / (0.7 - 0.55)) and r["steps"] == 40


def test_check_cli_schema(tmp_path):
    numerics_cli = pytest.importorskip("numerics.cli")
    from numerics.checks.c5 import random_instance, recheck
    from numerics.result import CheckResult
    inst = random_instance(np.random.default_rng(3))
    c4 = CheckResult("C4", 1, 0.1, "pass", 0.1, {"instances": [
        {"generator": "kl", "err_w": 0.3, "err_sw": 0.25, "radius": 0.1}]})
    c5 = CheckResult("C5", 1, 0.0, "pass", 0.1, {"search": {}, "counterexamples": [
        {"claim": "C5", "generator": "pearson", "variant": "kl", "search_seed": 5, "index": 0,
         "origin": "random", "draw": 0, "instance": inst, "violation": 0.1,
         "gain": 0.01, "misfit": 0.03}]})
    c6 = CheckResult("C6", 20, float("inf"), "pass", 0.1, {"delta": 0.1, "coverage": [
        {"generator": "js", "n": 50, "reps": 20, "delta": 0.1, "bound": 1.0, "coverage": 1.0,
         "excess_mean": 0.01, "excess_q": 0.04, "excess_median": 0.01, "excess_max": 0.05}]})
    paths = numerics_cli.write_records([c4, c5, c6], tmp_path, quick=True, seed=0)
    checks = readers.read_checks(tmp_path)
    assert checks["C4"]["quick"] and checks["C4"]["source"] == "checks/C4.json"
    assert readers.c4_points(checks["C4"])[0]["err_sw"] == 0.25
    (p6,) = readers.c6_points(checks["C6"])
    assert (p6["n"], p6["excess_mean"], p6["excess_q"], p6["bound"], p6["coverage"], p6["delta"]) == \
        (50, 0.01, 0.04, 1.0, 1.0, 0.1)
    # an infinite slack is null with its reason, not the string "inf" nor a JSON Infinity
    c6rec = read_record(tmp_path / "checks" / "C6.json")
    assert c6rec.worst_slack is None and c6rec.worst_slack_nonfinite == "inf"
    (ce,) = readers.read_counterexamples(tmp_path)
    assert ce["generator"] == "pearson" and ce["variant"] == "kl" and ce["counterexample"]
    assert (ce["gain"], ce["misfit"], ce["seed"]) == (0.01, 0.03, 5)
    import json
    stored = json.loads(Path(next(p for p in paths if "counterexamples" in p)).read_text())
    assert recheck(stored)["violation"] == pytest.approx(recheck({"generator": "pearson",
                                                                  "variant": "kl", "instance": inst})["violation"])
    assert readers.audit(tmp_path) == []


def test_cost_falls_back_to_run_training_times(tmp_path):
    from experiments.runner import run_path
    from paper_figs import fig_cost
    from w2sg.records import write_record
    cfgs = [c for c in syn.expand(syn.sweep())[1] if c["seed"] == 0 and c["noise"] == 0.0
            and c["loss"] in ("ce", "kl")]
    for c in cfgs:
        write_record(run_path(c, tmp_path), syn.run_record(c, 0.7, 0.6, 0.8))
    res = fig_cost.make(tmp_path, tmp_path / "figures")
    assert res.status == "made" and "train_s / steps" in res.message
    steps = syn.sweep()["train"]["steps"]
    assert res.summary["ce"]["step_ms"] == pytest.approx(1e3 * syn.TRAIN_S / steps)
    assert res.summary["kl"]["time_vs_ce"] == pytest.approx(1.0)
