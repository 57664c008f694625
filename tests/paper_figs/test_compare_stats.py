"""`w2sg compare`'s statistics on tiny tables worked by hand: the stratified cluster bootstrap,
Burns et al.'s PGR of means with small-gap panels left out, Holm within families, exact-zero
rows outside them, and the minimum detectable effect."""
from __future__ import annotations

import math

import numpy as np
import pytest

from paper_figs import compare

Z = 1.959963984540054 + 0.8416212335729143  # z_{0.975} + z_{0.8}


def _run(loss, acc, seed, task="t", weak="w", select="none", noise_model="symmetric", noise=0.0,
         weak_acc=None, ceiling_acc=None):
    return {"task": task, "weak": weak, "seed": seed, "loss": loss, "noise": noise, "mode": "head",
            "select": select, "noise_model": noise_model, "setting": "s", "acc": acc,
            "weak_acc": weak_acc, "ceiling_acc": ceiling_acc, "pgr": None}


def _pairs(loss, diffs_points, ce=True, **kw):
    """``loss`` at 0.5 + d/100 (and CE at 0.5, unless ``ce`` is false) for seed i = 0, 1, …"""
    rows = []
    for seed, d in enumerate(diffs_points):
        rows += [_run("ce", 0.5, seed, **kw)] if ce else []
        rows += [_run(loss, 0.5 + d / 100, seed, **kw)]
    return rows


def _row(table, loss, **want):
    (r,) = [r for r in table if r["loss"] == loss and all(r[k] == v for k, v in want.items())]
    return r


# --------------------------------------------------------------------------- cluster bootstrap
def test_cluster_bootstrap_by_hand():
    mean = lambda t: t[:, 0] / t[:, 1]
    # two clusters with means 0 and 4: resampled means 0, 2, 4 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% quantiles of 9999 resamples are the atoms 0 and 4
    assert compare.cluster_bootstrap([np.array([[0.0, 1], [4.0, 1]])], mean) == (0.0, 4.0)
    # stratified: a second task whose two clusters are both 10 always contributes 10 + 10, so
    # the mean of the 4 drawn values is (0|4|8 + 20)/4 ∈ {5, 6, 7}: interval [5, 7]
    # (resampling all four clusters together would reach 0 and 10)
    strata = [np.array([[0.0, 1], [4.0, 1]]), np.array([[10.0, 1], [10.0, 1]])]
    assert compare.cluster_bootstrap(strata, mean) == (5.0, 7.0)
    assert compare.cluster_bootstrap([np.array([[3.0, 1]])], mean) == (None, None)


def test_cluster_bootstrap_of_singletons_is_scipys_percentile_interval():
    from scipy.stats import bootstrap
    d = np.array([1.2, 0.5, -0.3, 2.0, 1.1, 0.8])
    data = [np.stack([d, np.ones_like(d)], axis=1)]
    lo, hi = compare.cluster_bootstrap(data, lambda t: t[:, 0] / t[:, 1])
    ref = bootstrap((d,), np.mean, confidence_level=0.95, n_resamples=9999, method="percentile",
                    rng=np.random.default_rng(0)).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert lo < d.mean() < hi and lo > d.min() and hi < d.max()
    assert compare.cluster_bootstrap(data, lambda t: t[:, 0] / t[:, 1], seed=1) != (lo, hi)


def test_pairs_of_one_task_and_seed_are_one_cluster():
    """Both weak models of a (task, seed) share one split: their pairs are resampled together."""
    rows = []
    for seed, (d1, d2) in enumerate([(0.0, 2.0), (4.0, 6.0)]):
        for weak, d in (("w1", d1), ("w2", d2)):
            rows += [_run("ce", 0.5, seed, weak=weak), _run("tv", 0.5 + d / 100, seed, weak=weak)]
    r = _row(compare.compare(rows), "tv")
    assert (r["n_pairs"], r["n_clusters"]) == (4, 2)
    assert r["mean_diff"] == pytest.approx(3.0)
    # clusters with means 1 and 5: resampled means 1, 3, 5 (a pair bootstrap would reach 0 and 6)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((1.0, 5.0))
    # Wilcoxon on the 2 cluster means, both positive: exact p = 2 · (1/2)² = 0.5
    assert r["p_value"] == pytest.approx(0.5)
    # MDE = (z_.975 + z_.8) · sd(1, 5) / √2 = 2.8016 · 2√2 / √2
    assert r["mde"] == pytest.approx(Z * 2.0)
    assert "detectable: ±5.6" in r["verdict"] and not r["significant"]


# --------------------------------------------------------------------------- PGR of means
def _pgr_rows():
    rows = []
    panel = {  # (task, weak): per seed (weak acc, ceiling acc, acc of tv, acc of ce)
        ("t", "w1"): [(0.60, 0.80, 0.71, 0.66), (0.64, 0.80, 0.73, 0.68)],
        ("t", "w2"): [(0.70, 0.71, 0.75, 0.70), (0.70, 0.71, 0.70, 0.70)],  # gap 1 point
        ("u", "w1"): [(0.50, 0.90, 0.70, 0.50), (0.50, 0.90, 0.70, 0.50)],
    }
    for (task, weak), seeds in panel.items():
        for seed, (w, c, a_tv, a_ce) in enumerate(seeds):
            for loss, a in (("tv", a_tv), ("ce", a_ce)):
                rows.append(_run(loss, a, seed, task=task, weak=weak, weak_acc=w, ceiling_acc=c))
    return rows


def test_pgr_of_means_by_hand():
    r = _row(compare.compare(_pgr_rows(), metric="pgr"), "tv")
    # panel (t, w1): means weak .62, ceiling .80 (gap .18), tv .72, ce .67
    #   PGR tv = .10/.18 = 5/9 (the mean of the per-run PGRs would be (.55 + .5625)/2), ce = .05/.18
    # panel (u, w1): gap .40, tv (.70 − .50)/.40 = .5, ce 0
    # panel (t, w2): gap .01 < 2 points: left out
    pgr_t = (0.10 / 0.18, 0.05 / 0.18)
    assert r["mean_loss"] == pytest.approx((pgr_t[0] + 0.5) / 2)
    assert r["mean_baseline"] == pytest.approx((pgr_t[1] + 0.0) / 2)
    assert r["mean_diff"] == pytest.approx((pgr_t[0] - pgr_t[1] + 0.5) / 2)
    assert r["mean_loss"] != pytest.approx(((0.11 / 0.20 + 0.09 / 0.16) / 2 + 0.5) / 2)
    assert r["n_panels"] == 2 and r["n_pairs"] == 4 and r["n_clusters"] == 4
    (ex,) = r["excluded_panels"]
    assert (ex["task"], ex["weak"]) == ("t", "w2") and ex["gap"] == pytest.approx(0.01)
    # cluster scores: (tv − ce) / panel gap = .05/.18 (both seeds of t), .2/.4 (both seeds of u)
    scores = [0.05 / 0.18, 0.05 / 0.18, 0.5, 0.5]
    assert r["mde"] == pytest.approx(Z * np.std(scores, ddof=1) / 2)
    assert r["p_value"] == pytest.approx(compare.wilcoxon_p(scores))


def test_pgr_cell_with_only_small_gaps_has_no_pairs():
    rows = [r for r in _pgr_rows() if r["weak"] == "w2"]
    r = _row(compare.compare(rows, metric="pgr"), "tv")
    assert r["n_pairs"] == 0 and r["mean_diff"] is None and len(r["excluded_panels"]) == 1
    assert r["verdict"] == "no panel with a gap ≥ 2 points"


# --------------------------------------------------------------------------- families, zeros
def test_holm_within_families_and_exact_zeros_outside():
    six, five = [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5]  # exact Wilcoxon p: 2/2⁶, 2/2⁵
    rows = (_pairs("tv", six) + _pairs("js", five, ce=False)
            + _pairs("kl", [0] * 6, ce=False)
            + _pairs("tv", six, select="weak")
            + _pairs("tv", five, noise_model="asymmetric"))
    table = compare.compare(rows)
    tv, js, kl = (_row(table, l, select="none", noise_model="symmetric") for l in ("tv", "js", "kl"))
    assert tv["p_value"] == pytest.approx(1 / 32) and js["p_value"] == pytest.approx(1 / 16)
    # family (head, none, symmetric) = {tv, js}: Holm m = 2 (KL, identical, is not counted)
    assert tv["p_holm"] == pytest.approx(2 / 32) and js["p_holm"] == pytest.approx(1 / 16)
    assert kl["identical"] and (kl["mean_diff"], kl["ci_low"], kl["ci_high"]) == (0.0, 0.0, 0.0)
    assert (kl["p_value"], kl["p_holm"], kl["mde"], kl["significant"]) == (1.0, 1.0, None, False)
    assert kl["verdict"] == "identical (every difference exactly 0)"
    # the tuned family and the asymmetric-noise family have one test each: p_holm = p
    weak = _row(table, "tv", select="weak")
    assert weak["p_holm"] == pytest.approx(1 / 32) and weak["n_pairs"] == 6
    asym = _row(table, "tv", noise_model="asymmetric")
    assert asym["p_holm"] == pytest.approx(1 / 16) and asym["n_pairs"] == 5
    assert weak["significant"] and not tv["significant"]
    assert len(table) == 5


def test_runs_are_never_paired_across_selection_or_noise_model():
    rows = _pairs("tv", [1, 2, 3])
    rows = [dict(r, select="oracle") if r["loss"] == "tv" else r for r in rows]
    table = compare.compare(rows)
    r = _row(table, "tv", select="oracle")
    assert r["n_pairs"] == 0 and r["n_missing"] == 3 and {m["why"] for m in r["missing"]} == {"no run"}
    assert {m["lacks"] for m in r["missing"]} == {"ce"}


def test_missing_select_and_noise_model_mean_the_fixed_recipe_and_symmetric_noise():
    rows = [{k: v for k, v in r.items() if k not in ("select", "noise_model")}
            for r in _pairs("tv", [1, 2, 3])]
    r = _row(compare.compare(rows), "tv")
    assert (r["select"], r["noise_model"], r["n_pairs"]) == ("none", "symmetric", 3)


def test_format_table_shows_family_clusters_and_mde():
    text = compare.format_table(compare.compare(_pairs("tv", [1, 2, 3]) + _pairs("kl", [0, 0, 0], ce=False)))
    assert "selection: none, noise model: symmetric" in text and "MDE" in text and "clu" in text
    tv = next(l for l in text.splitlines() if " tv " in l)
    assert f"{Z * 1.0 / math.sqrt(3):.2f}" in tv  # sd(1, 2, 3) = 1
    assert "identical" in next(l for l in text.splitlines() if " kl " in l)
