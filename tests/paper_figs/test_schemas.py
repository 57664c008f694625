"""The readers understand the records the other packages actually write."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.records import write_record
from paper_figs import readers


def _run_record(loss, noise, seed, acc):
    # the shape experiments.runner.execute_run writes
    cfg = {"kind": "run", "task": "vader_cls", "weak": "minilm-l6-layer0", "strong": "minilm-l6",
           "seed": seed, "loss": loss, "noise": noise, "train": {"steps": 200}}
    return {"kind": "run", "config": cfg, "config_hash": "x", "task": "vader_cls",
            "weak": "minilm-l6-layer0", "strong": "minilm-l6", "loss": loss, "noise": noise,
            "seed": seed, "metrics": {"acc": acc, "auroc": 0.8, "ece": 0.05, "pgr": 0.25},
            "reference": {"weak": {"acc": 0.7}, "ceiling": {"acc": 0.8}, "gap": 0.1,
                          "record": "runs/reference/x.json"},
            "timings": {"train_s": 0.5, "total_s": 0.6}}


def test_runner_schema(tmp_path):
    write_record(tmp_path / "runs" / "vader_cls" / "minilm-l6-layer0" / "ce" / "noise0-seed0-x.json",
                 _run_record("ce", 0.0, 0, 0.725))
    write_record(tmp_path / "runs" / "reference" / "vader_cls" / "minilm-l6-layer0" / "seed0-x.json",
                 {"kind": "reference", "config": {"task": "vader_cls"}, "task": "vader_cls",
                  "weak": {"acc": 0.7}, "ceiling": {"acc": 0.8}, "gap": 0.1})
    rows = readers.read_runs(tmp_path)
    assert len(rows) == 1 and rows.skipped == 0  # the reference record is not a run
    r = rows[0]
    assert (r["task"], r["pair"], r["loss"], r["noise"], r["seed"]) == \
        ("vader_cls", "minilm-l6-layer0→minilm-l6", "ce", 0.0, 0)
    assert (r["acc"], r["weak_acc"], r["ceiling_acc"], r["pgr"]) == (0.725, 0.7, 0.8, 0.25)


def test_llm_schema(tmp_path):
    rec = _run_record("js", 0.2, 1, 0.6)
    rec.update(kind="llm-run", task="llm:hh.jsonl", weak="gpt2", strong="gpt2-medium")
    write_record(tmp_path / "runs" / "llm" / "gpt2__gpt2-medium" / "js" / "a.json", rec)
    (r,) = readers.read_runs(tmp_path)
    assert r["pair"] == "gpt2→gpt2-medium" and r["task"] == "llm:hh.jsonl"


def test_check_cli_schema(tmp_path):
    numerics_cli = pytest.importorskip("numerics.cli")
    from numerics.checks.c5 import random_instance
    from numerics.result import CheckResult
    inst = random_instance(np.random.default_rng(3))
    c4 = CheckResult("C4", 1, 0.1, "pass", 0.1, {"instances": [
        {"generator": "kl", "err_w": 0.3, "err_sw": 0.25, "radius": 0.1}]})
    c5 = CheckResult("C5", 1, 0.0, "pass", 0.1, {"search": {}, "counterexamples": [
        {"claim": "C5", "generator": "pearson", "variant": "kl", "search_seed": 5, "index": 0,
         "origin": "random", "draw": 0, "instance": inst, "violation": 0.1}]})
    c6 = CheckResult("C6", 20, 0.0, "pass", 0.1, {"delta": 0.1, "coverage": [
        {"generator": "js", "n": 50, "reps": 20, "delta": 0.1, "bound": 1.0, "coverage": 1.0,
         "excess_median": 0.01, "excess_max": 0.05}]})
    numerics_cli.write_records([c4, c5, c6], tmp_path, quick=True, seed=0)
    checks = readers.read_checks(tmp_path)
    assert checks["C4"]["quick"] and checks["C4"]["source"] == "checks/C4.json"
    assert readers.c4_points(checks["C4"])[0]["err_sw"] == 0.25
    (p6,) = readers.c6_points(checks["C6"])
    assert (p6["n"], p6["excess_mean"], p6["bound"], p6["coverage"], p6["delta"]) == (50, 0.01, 1.0, 1.0, 0.1)
    (ce,) = readers.read_counterexamples(tmp_path)
    assert ce["generator"] == "pearson" and ce["variant"] == "kl" and ce["counterexample"]
    assert np.isfinite(ce["gain"]) and np.isfinite(ce["misfit"])


def test_cost_falls_back_to_run_training_times(tmp_path):
    from paper_figs import fig_cost
    for loss in ("ce", "js"):
        write_record(tmp_path / "runs" / f"{loss}.json", _run_record(loss, 0.0, 0, 0.7))
    res = fig_cost.make(tmp_path, tmp_path / "figures")
    assert res.status == "made" and "train_s / steps" in res.message
    assert res.summary["ce"]["step_ms"] == pytest.approx(1e3 * 0.5 / 200)
    assert res.summary["js"]["time_vs_ce"] == pytest.approx(1.0)
