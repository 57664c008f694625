"""Issue 19: equal-budget tuning (batched grid trainer, honest selection), noise models and
the curvature scale control."""
import json

import numpy as np
import pytest

from experiments.batched import train_heads_batched
from experiments.losses import make_loss
from experiments.pipeline import TrainConfig, flip_labels, noise_labels, train_head


# ----------------------------------------------------------------------------- batched trainer
def _problems(B=2, N=240, d=12, M=60, seed=0):
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=d)
    X = rng.normal(size=(B, N, d))
    Xv = rng.normal(size=(B, M, d))
    targets = 1 / (1 + np.exp(-(X @ w_true + rng.normal(size=(B, N)))))
    flip = rng.random((B, N)) < 0.2  # noisy, so that checkpoints differ between configs
    targets[flip] = 1 - targets[flip]
    return X, targets, Xv, (Xv @ w_true > 0).astype(float)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("name", ["ce", "js", "tv", "aux_conf", "product"])
@pytest.mark.parametrize("bias", [True, False])
def test_batched_grid_equals_train_head_one_config_at_a_time(dtype, tol, name, bias):
    X, T, Xv, yv = _problems()
    grid = [(0.003, 0.25), (0.01, 1.0), (0.03, 4.0), (0.03, 16.0)]
    loss = make_loss(name, smoothing=1e-6)
    theta, b, info = train_heads_batched(X, T, loss, grid, 50, 10, bias, (Xv, yv), dtype)
    steps = set()
    for i in range(len(X)):
        for g, (lr, wd) in enumerate(grid):
            cfg = TrainConfig(steps=50, lr=lr, weight_decay=wd, eval_every=10, dtype=dtype)
            th1, b1, info1 = train_head(X[i], T[i], loss, cfg, bias, (Xv[i], yv[i]))
            assert info["best_step"][i, g] == info1["best_step"]
            assert info["val_acc"][i, g] == info1["val_acc"]
            np.testing.assert_allclose(theta[i, g], th1, rtol=0, atol=tol)
            assert abs(b[i, g] - b1) <= tol
            steps.add(info1["best_step"])
    assert len(steps) > 1 or name == "tv"  # the comparison covers different checkpoints


def test_batched_without_validation_keeps_the_last_step():
    X, T, _, _ = _problems(B=1)
    loss = make_loss("hellinger", smoothing=1e-6)
    theta, b, info = train_heads_batched(X, T, loss, [(0.01, 1.0)], 30, 10, True, None, "float64")
    th1, b1, info1 = train_head(X[0], T[0], loss, TrainConfig(steps=30, dtype="float64"), True, None)
    np.testing.assert_allclose(theta[0, 0], th1, atol=1e-12)
    assert info["best_step"][0, 0] == 30 and np.isnan(info["val_acc"][0, 0])


# ----------------------------------------------------------------------------- scale control
def test_curvature_normalisation_divides_by_f2_at_1():
    import torch
    z = torch.linspace(-3, 3, 11, dtype=torch.float64)
    w = torch.linspace(0.05, 0.95, 11, dtype=torch.float64)
    # f''(1): js 1/4, hellinger 1/2, pearson 2, jeffreys 2, (t-1)^2 typed as an expression 2
    for name, f2 in [("js", 0.25), ("hellinger", 0.5), ("pearson", 2.0), ("jeffreys", 2.0),
                     ("(t-1)**2", 2.0), ("reverse_kl", 1.0), ("alpha:0.5", 1.0)]:
        plain, scaled = make_loss(name), make_loss(name, normalize="curvature")
        assert scaled.scale == pytest.approx(1 / f2, rel=1e-12) and scaled.normalize == "curvature"
        assert float(scaled(z, w)) == pytest.approx(float(plain(z, w)) / f2, rel=1e-12)
    for name in ("ce", "kl", "aux_conf", "product"):  # f''(1) = 1: unchanged, bit for bit
        assert make_loss(name, normalize="curvature").scale == 1.0
        assert float(make_loss(name, normalize="curvature")(z, w)) == float(make_loss(name)(z, w))


def test_curvature_normalisation_refuses_tv_in_one_line():
    with pytest.raises(ValueError, match="f''\\(1\\)") as info:
        make_loss("tv", normalize="curvature")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="normalize must be"):
        make_loss("ce", normalize="scale")


# ----------------------------------------------------------------------------- noise models
def test_symmetric_noise_is_todays_flips():
    w = np.linspace(0.01, 0.99, 200)
    labels, mask, info = noise_labels(w, 0.3, 5, "symmetric")
    old, old_mask = flip_labels(w, 0.3, 5)
    np.testing.assert_array_equal(labels, old)
    np.testing.assert_array_equal(mask, old_mask)
    assert info["flipped"] == 60 == sum(info["flipped_by_class"])
    assert info["flipped_by_class"] == [int((mask & (w <= 0.5)).sum()), int((mask & (w > 0.5)).sum())]


def test_asymmetric_noise_flips_class_one_only_with_probability_eta():
    w = np.random.default_rng(0).uniform(size=20000)
    labels, mask, info = noise_labels(w, 0.3, 2, "asymmetric")
    assert not mask[w <= 0.5].any()  # class 0 never
    rate = mask[w > 0.5].mean()
    assert abs(rate - 0.3) < 4 * np.sqrt(0.3 * 0.7 / (w > 0.5).sum())
    np.testing.assert_allclose(labels[mask], 1 - w[mask])
    np.testing.assert_array_equal(labels[~mask], w[~mask])
    assert info == {"flipped": int(mask.sum()), "flipped_by_class": [0, int(mask.sum())]}
    assert (noise_labels(w, 0.3, 2, "asymmetric")[1] == mask).all()  # same rows for every loss
    assert not (noise_labels(w, 0.3, 3, "asymmetric")[1] == mask).all()


def test_confident_noise_flips_the_most_confident_rows():
    w = np.array([0.5, 0.9, 0.02, 0.6, 0.99, 0.3, 0.45, 0.1, 0.75, 0.55])
    labels, mask, info = noise_labels(w, 0.3, 0, "confident")
    assert set(np.flatnonzero(mask)) == {4, 2, 1}  # |w − ½| = 0.49, 0.48, 0.40: the top 3
    assert info == {"flipped": 3, "flipped_by_class": [1, 2]}
    np.testing.assert_allclose(labels[mask], 1 - w[mask])
    assert noise_labels(w, 0.0, 0, "confident")[2]["flipped"] == 0
    with pytest.raises(ValueError, match="noise model"):
        noise_labels(w, 0.1, 0, "adversarial")


# ----------------------------------------------------------------------------- sweeps
SMALL = {"tasks": ["vader_cls"], "weak": ["minilm-l6-layer0"], "losses": ["ce", "tv"],
         "noise": [0.0, 0.3], "seeds": 1, "pool": 600,
         "sizes": {"weak_gt": 60, "test": 100, "val_frac": 0.25},
         "train": {"steps": 40, "lr": 0.01, "weight_decay": 1.0, "eval_every": 10,
                   "dtype": "float32", "smoothing": 1e-6}}
GRID = [{"weight_decay": 0.25, "lr": 0.003}, {"weight_decay": 1.0, "lr": 0.03},
        {"weight_decay": 16.0, "lr": 0.01}]


def _sweep(select="weak", n_seeds=2, **over):
    from experiments.runner import DEFAULT_SWEEP
    from experiments.tuning import tune_spec
    return {**DEFAULT_SWEEP, **SMALL, "tune": tune_spec(GRID, select, n_seeds), **over}


def test_fixed_recipe_configs_hash_as_before():
    """Symmetric, untuned, unnormalised run configs carry none of the new keys: their hashes
    are those of the code before issue 19 (values computed on that code)."""
    from experiments.runner import DEFAULT_SWEEP, expand
    from w2sg.records import config_hash
    refs, runs = expand(DEFAULT_SWEEP)
    assert config_hash(runs[0]) == "2dad5fce43d40ad7" and config_hash(runs[-1]) == "5bdc17ae62702d08"
    assert config_hash(refs[0]) == "f4780a27888ee11e"
    assert not {"noise_model", "tune"} & set(runs[0]) and "normalize" not in runs[0]["train"]


def test_tuned_and_normalised_and_noise_model_configs_never_collide():
    from experiments.runner import expand, expand_tuning, reference_path, run_path
    from w2sg.records import config_hash
    base = {**_sweep(), "tune": None}
    variants = [base, _sweep(), _sweep("oracle"), _sweep(n_seeds=3), {**base, "normalize": "curvature"},
                {**base, "noise_models": ["confident"]}]
    hashes = [config_hash(expand(v)[1][1]) for v in variants]
    assert len(set(hashes)) == len(hashes)
    refs, runs = expand(_sweep())
    assert sorted(r["seed"] for r in refs) == [0, 1000, 1001]  # tuning seeds: own replicates
    assert len({reference_path(r, ".") for r in refs}) == 3
    # every loss/noise/normalize variant of a (task, weak, seed) shares one reference
    assert len({reference_path(v, ".") for vv in variants for v in expand(vv)[0] if v["seed"] == 0}) == 1
    assert len(expand_tuning(_sweep())) == 4 and expand_tuning(base) == []
    assert "-confident-seed0-" in str(run_path(expand(variants[-1])[1][0], "."))


def _tune_all(sweep, root):
    from experiments.runner import execute_tuning, expand_tuning
    return {(c["loss"], c["noise"]): execute_tuning(c, root) for c in expand_tuning(sweep)}


@pytest.fixture
def permuted_ground_truth(monkeypatch):
    """Build every task with the ground-truth labels of its student split permuted."""
    import experiments.data as D
    original = D.build_task

    def build_task(name, seed, **kw):
        task = original(name, seed, **kw)
        items, y = task.splits["student"]
        perm = np.random.default_rng(seed + 17).permutation(len(y))
        assert not np.array_equal(y[perm], y)
        task.splits["student"] = (items, y[perm])
        return task

    monkeypatch.setattr(D, "build_task", build_task)


def test_weak_selection_never_reads_student_ground_truth(tmp_path, needs_vader, fake_features,
                                                         request):
    honest = {"weak": _tune_all(_sweep("weak"), tmp_path / "a"),
              "oracle": _tune_all(_sweep("oracle"), tmp_path / "b")}
    request.getfixturevalue("permuted_ground_truth")
    permuted = {"weak": _tune_all(_sweep("weak"), tmp_path / "c"),
                "oracle": _tune_all(_sweep("oracle"), tmp_path / "d")}
    for cell, rec in honest["weak"].items():  # every choice, every score unchanged
        other = permuted["weak"][cell]
        assert rec.tuning.chosen == other.tuning.chosen
        assert rec.tuning.scores == other.tuning.scores and rec.per_seed_scores == other.per_seed_scores
    # the oracle does read them: its scores move (the weak labels did not)
    assert any(honest["oracle"][c].tuning.scores != permuted["oracle"][c].tuning.scores
               for c in honest["oracle"])


def test_tuned_sweep_records_and_resume(tmp_path, needs_vader, fake_features):
    from experiments.runner import (check_tuning_record, expand, run_path, run_sweep,
                                    summarize, tuning_path)
    from w2sg.records import RunRecord, read_record
    sweep = _sweep()
    first = run_sweep(sweep, tmp_path, workers=1, quiet=True)
    assert (first["references"], first["tuning_cells"], first["runs"]) == (3, 4, 4)
    assert first["executed"] == 11
    _, runs = expand(sweep)
    for cfg in runs:
        rec = read_record(run_path(cfg, tmp_path), RunRecord)
        cell = check_tuning_record(cfg, tmp_path)
        assert rec.tuning == cell.tuning and rec.tuning.chosen in GRID
        assert rec.tuning.grid == GRID and rec.tuning.select == "weak"
        assert rec.tuning.tuning_seeds == [1000, 1001] and rec.seed not in rec.tuning.tuning_seeds
        scores = np.mean(cell.per_seed_scores, axis=0)
        np.testing.assert_allclose(rec.tuning.scores, scores)
        assert rec.tuning.chosen == GRID[int(np.argmax(scores))]
        assert (rec.train_info["lr"], rec.train_info["weight_decay"]) == \
            (rec.tuning.chosen["lr"], rec.tuning.chosen["weight_decay"])
        assert rec.noise_model == "symmetric"
        assert rec.noise_info.flipped == rec.train_info["n_flipped"]
        assert cfg["tune"] == sweep["tune"]
        raw = json.loads(run_path(cfg, tmp_path).read_text())
        assert list(raw).index("noise_model") == list(raw).index("noise") + 1
    victim = tuning_path(runs[0], tmp_path)
    victim.write_text("{broken")
    again = run_sweep(sweep, tmp_path, workers=1, quiet=True)
    assert again["executed"] == 1 and again["skipped"] == 10  # the bad cell only, redone
    rows = summarize(sweep, tmp_path)
    assert {r["select"] for r in rows} == {"weak"} and all(r["chosen"] in GRID for r in rows)


def test_untuned_noise_model_runs(tmp_path, needs_vader, fake_features):
    from experiments.runner import execute_run, expand
    sweep = {**_sweep(), "tune": None, "losses": ["js"], "noise": [0.3],
             "noise_models": ["symmetric", "asymmetric", "confident"], "normalize": "curvature"}
    _, runs = expand(sweep)
    recs = [execute_run(c, tmp_path) for c in runs]
    assert [r.noise_model for r in recs] == ["symmetric", "asymmetric", "confident"]
    assert all(r.tuning is None and r.config["train"]["normalize"] == "curvature" for r in recs)
    assert recs[1].noise_info.flipped_by_class[0] == 0
    n = recs[0].noise_info.flipped
    assert recs[2].noise_info.flipped == n == sum(recs[0].noise_info.flipped_by_class)


# ----------------------------------------------------------------------------- CLI
def _cli(argv, capsys):
    from w2sg.cli import main
    rc = main(argv)
    return rc, capsys.readouterr()


@pytest.mark.parametrize("argv, needle", [
    (["run", "--select", "oracle"], "--select needs --tune"),
    (["run", "--tuning-seeds", "3"], "--tuning-seeds needs --tune"),
    (["run", "--normalize", "curvature", "--losses", "tv"], "f''(1)"),
    (["run", "--tune", "--tuning-seeds", "0"], "tuning seeds"),
    (["run", "--tune", "--finetune"], "linear heads"),
])
def test_cli_tuning_usage_errors(argv, needle, capsys):
    rc, out = _cli(argv + ["--dry-run"], capsys)
    assert rc == 2 and needle in out.err and len(out.err.strip().splitlines()) == 1


def test_cli_dry_run_shows_tuning_keys(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text('normalize = "curvature"\nnoise_models = ["symmetric", "confident"]\n'
                   'losses = ["ce", "js"]\n[tune]\nweight_decay = [1, 4]\nlr = [0.01]\nselect = "oracle"\n'
                   'seeds = 3\n')
    rc, out = _cli(["run", "--config", str(cfg), "--quick", "--dry-run", "--json"], capsys)
    assert rc == 0
    d = json.loads(out.out)
    tune = d["sweep"]["tune"]
    assert tune == {"grid": [{"weight_decay": 1.0, "lr": 0.01}, {"weight_decay": 4.0, "lr": 0.01}],
                    "select": "oracle", "tuning_seeds": [1000, 1001, 1002]}
    assert d["sweep"]["normalize"] == "curvature" and d["sweep"]["noise_models"] == ["symmetric", "confident"]
    assert d["tuning_cells"] == 2 * 2 * 2 and d["references"] == 1 + 3
    rc, out = _cli(["run", "--quick", "--tune", "--dry-run", "--json"], capsys)
    tune = json.loads(out.out)["sweep"]["tune"]
    assert len(tune["grid"]) == 12 and tune["select"] == "weak" and tune["tuning_seeds"] == [1000, 1001]
    rc, out = _cli(["run", "--quick", "--dry-run", "--json"], capsys)
    d = json.loads(out.out)
    assert d["sweep"]["tune"] is None and d["tuning_cells"] == 0 and d["sweep"]["noise_models"] == ["symmetric"]
