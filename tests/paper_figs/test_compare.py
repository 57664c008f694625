"""`w2sg compare`: Holm by hand, scipy's bootstrap and Wilcoxon, pairing, KL = CE (C8), the
forest figure and the CLI — on records written by the real runner (fake fast encoders)."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_figs import compare
from paper_figs.compare_data import tidy_runs

# --------------------------------------------------------------------------- records
SWEEP = {"tasks": ["fortunes_pairs"], "weak": ["minilm-l6-layer0"], "losses": ["ce", "kl", "tv"],
         "noise": [0.0, 0.2], "seeds": 3, "pool": 600, "sizes": {"weak_gt": 60, "test": 100, "val_frac": 0.2},
         "train": {"steps": 30, "lr": 0.01, "weight_decay": 1.0, "eval_every": 10}}


def _fake_features(task, model, max_length=128, quiet=True):
    """Deterministic random features (as tests/experiments/conftest.py): no encoder needed."""
    d = 48 if model == "minilm-l6" else 8
    rng = np.random.default_rng(abs(hash((model, len(task.texts)))) % 2**32)
    return rng.normal(size=(len(task.texts), d)).astype(np.float32)


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory):
    """3 seeds × {ce, kl, tv} × noise {0, 0.2}: 18 run records from ``run_sweep``."""
    import experiments.embed as E
    from experiments.runner import DEFAULT_SWEEP, run_sweep
    root = tmp_path_factory.mktemp("compare") / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(E, "features", _fake_features)
        out = run_sweep({**DEFAULT_SWEEP, **SWEEP}, root, workers=1, quiet=True)
    assert out["executed"] == 3 + 18
    return root


@pytest.fixture
def root(sweep_root, tmp_path):
    """A private copy of the sweep's records (tests may delete some)."""
    dest = tmp_path / "results"
    shutil.copytree(sweep_root, dest)
    return dest


def _row(table, loss, noise, mode="head"):
    (r,) = [r for r in table if r["loss"] == loss and r["noise"] == noise and r["mode"] == mode]
    return r


# --------------------------------------------------------------------------- estimators
def test_holm_hand_worked():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06
    assert compare.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1; None (no test) is not counted in m
    assert compare.holm([0.5, None, 0.6]) == [1.0, None, 1.0]
    assert compare.holm([0.2, None]) == [0.2, None]
    assert compare.holm([]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_rejects_what_the_step_down_procedure_rejects(p, alpha):
    """Holm (1979): reject H_(1..k−1), k the first rank with p_(k) > α/(m−k+1)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    rejected = set()
    for rank, i in enumerate(order):
        if p[i] > alpha / (m - rank):
            break
        rejected.add(i)
    adj = compare.holm(p)
    assert {i for i in range(m) if adj[i] <= alpha} == rejected
    assert all(p[i] - 1e-15 <= adj[i] <= min(1.0, m * p[i]) + 1e-15 for i in range(m))


def test_bootstrap_ci_is_scipys_and_contains_the_mean():
    from scipy.stats import bootstrap
    d = np.array([1.2, 0.5, -0.3, 2.0, 1.1, 0.8])
    lo, hi = compare.bootstrap_ci(d)
    ref = bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=9999, method="BCa",
                    rng=np.random.default_rng(0)).confidence_interval
    assert (lo, hi) == (ref.low, ref.high)
    assert lo < d.mean() < hi and lo > d.min() and hi < d.max()
    assert compare.bootstrap_ci(d) == (lo, hi)  # fixed seed: reproducible
    assert compare.bootstrap_ci(d, seed=1) != (lo, hi)
    assert compare.bootstrap_ci([0.25, 0.25, 0.25]) == (0.25, 0.25)  # a point distribution
    assert compare.bootstrap_ci([0.25]) == (None, None)


def test_wilcoxon_closed_form_and_all_zero():
    # five positive differences: exact two-sided p = 2 · (1/2)^5
    assert compare.wilcoxon_p([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2 / 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compare.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert compare.wilcoxon_p([]) is None


def test_modes_are_separate_groups():
    rows = [{"task": "t", "weak": "w", "seed": s, "loss": l, "noise": 0.0, "mode": m,
             "acc": a + (0.1 if m == "finetune" and l == "tv" else 0.0), "pgr": None}
            for s, a in enumerate([0.70, 0.72, 0.71]) for l in ("ce", "tv") for m in ("head", "finetune")]
    table = compare.compare(rows)
    assert {(r["mode"], r["loss"]) for r in table} == {("head", "tv"), ("finetune", "tv")}
    assert _row(table, "tv", 0.0)["mean_diff"] == 0.0
    assert _row(table, "tv", 0.0, "finetune")["mean_diff"] == pytest.approx(10.0)  # points
    pgr = compare.compare(rows, metric="pgr")
    assert _row(pgr, "tv", 0.0)["n_pairs"] == 0 and _row(pgr, "tv", 0.0)["n_missing"] == 6
    with pytest.raises(ValueError, match="metric"):
        compare.compare(rows, metric="auroc")


# --------------------------------------------------------------------------- real records
def test_tidy_rows_from_runner_records(sweep_root):
    runs = tidy_runs(sweep_root)
    assert len(runs.rows) == 18 and runs.unreadable == []  # reference records are not students
    assert {r["mode"] for r in runs.rows} == {"head"} and len({r["setting"] for r in runs.rows}) == 1
    by_path = {r["source"]: r for r in runs.rows}
    src = next(s for s in by_path if "/tv/" in s and "noise0.2-seed1" in s)
    rec = json.loads((sweep_root / src).read_text())
    assert by_path[src]["acc"] == rec["metrics"]["acc"] and by_path[src]["pgr"] == rec["metrics"]["pgr"]


def test_paired_differences_by_hand(sweep_root):
    runs = tidy_runs(sweep_root)
    table = compare.compare(runs.rows)
    assert len(table) == 4  # {kl, tv} × {0, 0.2}
    acc = {(r["loss"], r["noise"], r["seed"]): r["acc"] for r in runs.rows}
    d = np.array([100 * (acc[("tv", 0.2, s)] - acc[("ce", 0.2, s)]) for s in range(3)])
    r = _row(table, "tv", 0.2)
    assert r["n_pairs"] == 3 and r["n_missing"] == 0 and r["missing"] == []
    assert r["mean_diff"] == pytest.approx(d.mean(), abs=1e-12)
    assert (r["ci_low"], r["ci_high"]) == compare.bootstrap_ci(d)
    assert r["p_value"] == compare.wilcoxon_p(d)
    assert [x["p_holm"] for x in table] == compare.holm([x["p_value"] for x in table])
    assert r["ci_covers_zero"] == (r["ci_low"] is None or r["ci_low"] <= 0 <= r["ci_high"])


def test_kl_row_is_exactly_zero(sweep_root):
    """C8: KL's gradient is CE's, so the same run gives the same predictions and accuracy."""
    table = compare.compare(tidy_runs(sweep_root).rows)
    for noise in (0.0, 0.2):
        r = _row(table, "kl", noise)
        assert r["n_pairs"] == 3
        assert (r["mean_diff"], r["ci_low"], r["ci_high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
        assert r["verdict"] == "no significant difference" and not r["significant"]


def test_missing_pair_is_reported(root):
    victim = next((root / "runs" / "fortunes_pairs" / "minilm-l6-layer0" / "tv").glob("noise0.2-seed1-*.json"))
    victim.unlink()
    r = _row(compare.compare(tidy_runs(root).rows), "tv", 0.2)
    assert r["n_pairs"] == 2 and r["n_missing"] == 1
    assert r["missing"] == [{"task": "fortunes_pairs", "weak": "minilm-l6-layer0", "seed": 1,
                             "setting": r["missing"][0]["setting"], "lacks": "tv", "why": "no run"}]


def test_finetune_records_form_their_own_mode(root):
    """A run config with a ``finetune`` table (as ``w2sg run --finetune`` writes) is its own group."""
    from w2sg.records import RunRecord, read_record, write_record
    for p in list((root / "runs" / "fortunes_pairs").rglob("noise0-*.json")):
        rec = read_record(p, RunRecord)
        rec.config["finetune"] = {"epochs": 1, "lr": 3e-5, "batch_size": 16, "max_length": 64}
        write_record(p.with_name("ft-" + p.name), rec)
    runs = tidy_runs(root)
    table = compare.compare(runs.rows)
    assert sum(r["mode"] == "finetune" for r in runs.rows) == 9
    assert {(r["mode"], r["noise"]) for r in table} == {("head", 0.0), ("head", 0.2), ("finetune", 0.0)}
    assert _row(table, "tv", 0.0, "finetune")["n_pairs"] == 3  # not mixed with the head runs
    assert _row(table, "tv", 0.0, "finetune")["mean_diff"] == _row(table, "tv", 0.0)["mean_diff"]
    from paper_figs import fig_compare
    res = fig_compare.make(root, root / "figures")  # a row of panels per mode
    assert res.status == "made" and {r["mode"] for r in res.summary["rows"]} == {"head", "finetune"}


def test_forest_figure_renders_from_records(root):
    from paper_figs.build import build_all, figure_names
    assert "compare_forest" in figure_names()
    (res,) = build_all(root, only=["compare_forest"])
    assert res.status == "made", res.message
    for ext in ("png", "pdf", "txt"):
        assert (root / "figures" / f"compare_forest.{ext}").stat().st_size > 0
    rows = res.summary["rows"]
    assert {(r["loss"], r["noise"]) for r in rows} == {("kl", 0.0), ("kl", 0.2), ("tv", 0.0), ("tv", 0.2)}
    assert "18 in runs/fortunes_pairs/" in (root / "figures" / "compare_forest.txt").read_text()
    listed = json.loads((root / "figures" / "compare_forest.records.json").read_text())["sources"]
    assert any(s.startswith("runs/fortunes_pairs/minilm-l6-layer0/tv/") for s in listed)


def test_forest_figure_skips_without_records(tmp_path):
    from paper_figs import fig_compare
    res = fig_compare.make(tmp_path, tmp_path / "figures")
    assert res.status == "skipped" and "w2sg run" in res.message


# --------------------------------------------------------------------------- CLI
def _strict(text):
    def bad(c):
        raise ValueError(f"non-strict JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def test_cli_json_keys_and_record(root, capsys):
    from w2sg.cli import main
    assert main(["compare", "--out", str(root), "--json"]) == 0
    out = _strict(capsys.readouterr().out)
    assert out["baseline"] == "ce" and out["metric"] == "acc" and out["n_runs"] == 18
    keys = {"loss", "noise", "mode", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_value", "p_holm",
            "n_missing", "missing", "verdict", "significant"}
    assert len(out["rows"]) == 4 and all(keys <= set(r) for r in out["rows"])
    assert [r["loss"] for r in out["rows"]] == ["kl", "tv", "kl", "tv"]  # legend order per noise
    rec = _strict((root / "compare" / "acc-vs-ce.json").read_text())
    assert rec["kind"] == "compare" and rec["rows"] == out["rows"] and out["record"].endswith("acc-vs-ce.json")
    assert main(["compare", "--out", str(root), "--metric", "pgr", "--baseline", "tv"]) == 0
    text = capsys.readouterr().out
    assert "minus tv (PGR)" in text and (root / "compare" / "pgr-vs-tv.json").exists()
    assert "no significant difference" in text or "significant" in text


def test_cli_bad_input(root, tmp_path, capsys):
    from w2sg.cli import main
    assert main(["compare", "--out", str(root), "--baseline", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown baseline 'bogus'" in err and "ce, kl, tv" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--out", str(root), "--metric", "auroc"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "invalid choice" in err and len(err.splitlines()) == 1
    assert main(["compare", "--out", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no run records" in err and len(err.splitlines()) == 1


def test_cli_duplicated_runs_are_refused(root, capsys):
    """A copied record would be paired twice: the command names both files instead."""
    from w2sg.cli import main
    src = next((root / "runs" / "fortunes_pairs" / "minilm-l6-layer0" / "tv").glob("noise0-seed0-*.json"))
    (root / "runs" / "copy").mkdir()
    shutil.copy(src, root / "runs" / "copy" / src.name)
    assert main(["compare", "--out", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "share the pair key" in err and f"runs/copy/{src.name}" in err and len(err.splitlines()) == 1


def test_cli_help_lists_compare(capsys):
    from w2sg.cli import main
    for argv in (["--help"], ["compare", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0 and "compare" in capsys.readouterr().out
