"""Paired comparisons of every loss against a baseline loss (pure functions: no I/O, no plots).

Input: a tidy list of rows, one per finished weak-to-strong run (:mod:`paper_figs.compare_data`)::

    {"task", "weak", "seed", "loss", "noise", "mode", "acc"}
    (+ optional "select", "noise_model", "setting", "weak_acc", "ceiling_acc", "pgr")

**Groups.**  Runs are compared within one group ``(mode, select, noise_model, noise)``:
``mode`` (``"head"``: linear head on frozen features, ``"finetune"``: the whole encoder),
``select`` (``"none"``: the fixed recipe; ``"weak"`` / ``"oracle"``: tuned, selected on weak or
true labels) and ``noise_model`` (``"symmetric"``, …) are never mixed.  A *pair* is a run of
``loss`` and a run of the baseline with equal ``(task, weak, seed, setting)`` in a group: both
students saw the same split, weak labels and flipped labels, and differ only in the loss.
Pairs that exist for one side only are listed in ``missing``, never dropped silently.

**Clusters.**  Both weak supervisors of a task share the split of a seed, so their pairs are
not independent: the unit of resampling and of the test is the *cluster* ``(task, setting,
seed)``, and clusters are resampled within their *stratum* ``(task, setting)``.

Per group and ``loss ≠ baseline`` (one table row), with ``metric``:

* ``acc``: ``d_i = 100 · (acc_i(loss) − acc_i(baseline))`` per pair (points);
  ``mean_diff = mean(d)``; a cluster's score is the mean of its ``d_i``.
* ``pgr``: Burns et al.'s PGR *of means* per *panel* ``(task, setting, weak)``:
  ``PGR = (mean acc − mean weak acc) / (mean ceiling acc − mean weak acc)`` over the panel's
  paired seeds, for the loss and the baseline (same seeds, same weak and ceiling).  Panels whose
  mean gap (ceiling − weak) is below :data:`MIN_GAP` (2 points) are left out and listed in
  ``excluded_panels``; ``mean_loss`` / ``mean_baseline`` are the means of the panel PGRs over the
  kept panels, ``mean_diff`` their difference.  A cluster's score is the mean over its kept
  panels of ``(acc(loss) − acc(baseline)) / panel gap`` (the PGR difference it contributes).

Statistics of a row:

* ``ci_low, ci_high``: :func:`cluster_bootstrap` — a stratified cluster bootstrap of the row's
  statistic (whole clusters resampled with replacement within each stratum, the statistic —
  mean of ``d`` or mean panel PGR difference, panels kept as in the data — recomputed), a
  ``confidence`` *percentile* interval from ``n_resamples`` resamples drawn with ``seed``;
  ``None`` for fewer than 2 clusters;
* ``p_value``: two-sided Wilcoxon signed-rank test of the cluster scores
  (:func:`wilcoxon_p`, zeros dropped);
* ``identical``: every ``d_i`` is exactly 0 (e.g. KL vs CE, C8): reported as exact zeros with
  ``p_value = p_holm = 1`` and kept *out* of the Holm family;
* ``p_holm``: Holm's step-down adjustment (:func:`holm`) within each *family*
  ``(mode, select, noise_model)`` (all noise levels and losses of the family);
* ``mde``: the smallest difference this row could have detected —
  ``(z_{1−α/2} + z_{0.8}) · sd / √n`` with ``sd`` the sample sd of the cluster scores and ``n``
  the number of clusters (normal approximation of a two-sided paired test at level ``alpha``
  with 80% power, before the multiplicity correction: after Holm it is larger);
  ``None`` for identical rows or fewer than 2 clusters.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Iterable, Sequence

import numpy as np

from w2sg.aggregate import DDOF

__all__ = ["METRICS", "PAIR_KEYS", "GROUP_KEYS", "FAMILY_KEYS", "CONFIDENCE", "N_RESAMPLES", "SEED",
           "ALPHA", "POWER", "MIN_GAP", "BOOTSTRAP", "holm", "cluster_bootstrap", "wilcoxon_p",
           "mde", "pair_up", "compare", "verdict", "format_table"]

#: metric → factor applied to differences (accuracy in points, PGR as is)
METRICS = {"acc": 100.0, "pgr": 1.0}
#: defaults: 95% intervals from 9999 bootstrap resamples drawn with seed 0; significance level;
#: power of the minimum detectable effect
CONFIDENCE, N_RESAMPLES, SEED, ALPHA, POWER = 0.95, 9999, 0, 0.05, 0.8
#: smallest mean gap (ceiling − weak accuracy) of a panel whose PGR is used, in accuracy
MIN_GAP = 0.02
#: what a pair is matched on (within one group)
PAIR_KEYS = ("task", "weak", "seed", "setting")
#: what a group is (never paired across); a Holm family is a group without its noise level
GROUP_KEYS = ("mode", "select", "noise_model", "noise")
FAMILY_KEYS = ("mode", "select", "noise_model")
#: the interval's method, as the compare record states it
BOOTSTRAP = ("stratified cluster bootstrap: whole (task, seed) clusters — both weak models of a "
             "task and seed share one split — resampled with replacement within each task, the "
             "statistic recomputed; percentile interval")
_DEFAULTS = {"mode": "head", "select": "none", "noise_model": "symmetric", "setting": ""}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values, in the input order (``None`` stays ``None``).

    With the ``m`` p-values sorted, ``p_(1) ≤ … ≤ p_(m)``:
    ``p̃_(i) = min(1, max_{j ≤ i} (m − j + 1) p_(j))`` (Holm 1979, Scand. J. Statist. 6:65–70).
    Rejecting where ``p̃ < α`` controls the family-wise error rate at ``α``.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, (m - rank) * float(pvalues[i]))
        out[i] = min(1.0, running)
    return out


def cluster_bootstrap(strata: Sequence[np.ndarray], statistic, confidence: float = CONFIDENCE,
                      n_resamples: int = N_RESAMPLES, seed: int = SEED) -> tuple[float | None, float | None]:
    """Percentile interval of a statistic of summed cluster data, stratified cluster bootstrap.

    ``strata``: one array per stratum, shape ``(clusters, *features)`` (each cluster's summed
    data, e.g. ``[Σd, count]``); ``statistic`` maps summed features of shape
    ``(n_resamples, *features)`` to ``(n_resamples,)`` values.  Each resample draws, per
    stratum in order, as many clusters as it has, with replacement
    (``numpy.random.default_rng(seed).integers(0, n, (n_resamples, n))``), and sums the
    features of all drawn clusters.  Returns the ``(1 ± confidence)/2`` quantiles
    (:func:`numpy.quantile`, linear) of the finite statistics; ``(None, None)`` for fewer than
    2 clusters in all.  With one stratum of one-pair clusters this is
    :func:`scipy.stats.bootstrap`'s percentile interval of the mean (tested).
    """
    strata = [np.asarray(s, dtype=float) for s in strata if len(s)]
    if sum(len(s) for s in strata) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    total = 0.0
    for s in strata:
        idx = rng.integers(0, len(s), (n_resamples, len(s)))
        total = total + s[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.asarray(statistic(total), dtype=float)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return None, None
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return float(lo), float(hi)


def wilcoxon_p(diffs: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (:func:`scipy.stats.wilcoxon`, zeros
    dropped); ``1.0`` when all are zero, ``None`` when there are none."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return None
    if not np.any(d != 0.0):
        return 1.0
    from scipy.stats import wilcoxon
    return float(wilcoxon(d).pvalue)


def mde(scores: Sequence[float], alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Minimum detectable mean of ``scores`` (independent cluster scores) by a two-sided paired
    test at level ``alpha`` with ``power``: ``(z_{1−α/2} + z_{power}) · sd / √n`` (normal
    approximation, sample sd with ``ddof`` 1); ``None`` for fewer than 2 scores."""
    s = np.asarray(scores, dtype=float)
    if s.size < 2:
        return None
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0) + NormalDist().inv_cdf(power)
    return float(z * s.std(ddof=DDOF) / math.sqrt(s.size))


def _noise_key(x) -> float:
    return round(float(x), 6)


def _get(row: dict, key: str):
    v = row.get(key)
    return _DEFAULTS.get(key) if v is None and key in _DEFAULTS else v


def _pair_key(row: dict) -> tuple:
    return tuple(str(_get(row, k) or "") if k != "seed" else row.get(k) for k in PAIR_KEYS)


def _missing_entry(key: tuple, lacks: str, why: str) -> dict:
    return dict(zip(PAIR_KEYS, key), lacks=lacks, why=why)


def _usable(row: dict, metric: str) -> str | None:
    """Why ``row`` cannot enter a pair for ``metric`` (``None`` if it can)."""
    if not _finite(row.get("acc")):
        return "acc undefined"
    if metric == "pgr" and not (_finite(row.get("weak_acc")) and _finite(row.get("ceiling_acc"))):
        return "pgr undefined (no weak or ceiling accuracy)"
    return None


def pair_up(rows: Iterable[dict], loss: str, baseline: str, metric: str = "acc"
            ) -> tuple[list[dict], list[dict]]:
    """Match the runs of ``loss`` and ``baseline`` (rows of ONE group).

    Returns ``(pairs, missing)``: ``pairs`` = ``[{key, a, b, weak, ceiling}]`` (``a``, ``b``:
    the accuracies of loss and baseline; ``weak``, ``ceiling``: the loss run's reference
    accuracies) sorted by key; ``missing`` = one entry per key present on one side only (or
    not usable for ``metric``): ``{task, weak, seed, setting, lacks: <loss name>, why}``.
    """
    side: dict[str, dict[tuple, dict]] = {loss: {}, baseline: {}}
    for r in rows:
        if r["loss"] in side:
            key = _pair_key(r)
            if key in side[r["loss"]]:
                raise ValueError(f"two {r['loss']} runs share the pair key {dict(zip(PAIR_KEYS, key))}: "
                                 f"{side[r['loss']][key].get('source', '?')} and {r.get('source', '?')}")
            side[r["loss"]][key] = r
    pairs, missing = [], []
    for key in sorted(set(side[loss]) | set(side[baseline]), key=str):
        a, b = side[loss].get(key), side[baseline].get(key)
        gone = [(name, "no run") for name, r in ((loss, a), (baseline, b)) if r is None]
        gone += [(name, _usable(r, metric)) for name, r in ((loss, a), (baseline, b))
                 if r is not None and _usable(r, metric)]
        if gone:
            missing.extend(_missing_entry(key, name, why) for name, why in gone)
        else:
            pairs.append({"key": key, "a": float(a["acc"]), "b": float(b["acc"]),
                          "weak": a.get("weak_acc"), "ceiling": a.get("ceiling_acc")})
    return pairs, missing


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ----------------------------------------------------------------------------- one row
def _clusters(pairs: list[dict], panels: list[tuple] | None):
    """Group pairs into clusters ``(task, setting, seed)`` within strata ``(task, setting)``:
    ``{stratum: {cluster: [pairs]}}`` (only pairs of ``panels`` when given)."""
    out: dict[tuple, dict[tuple, list[dict]]] = {}
    for p in pairs:
        task, weak, seed, setting = p["key"]
        if panels is not None and (task, setting, weak) not in panels:
            continue
        out.setdefault((task, setting), {}).setdefault((task, setting, seed), []).append(p)
    return out


def _acc_row(pairs: list[dict], scale: float, boot: dict) -> dict:
    """Statistics of a row in accuracy: mean of ``d``, cluster bootstrap, cluster scores."""
    d = [scale * (p["a"] - p["b"]) for p in pairs]
    strata = _clusters(pairs, None)
    data = [np.array([[sum(scale * (p["a"] - p["b"]) for p in c), len(c)] for c in cl.values()])
            for cl in strata.values()]
    scores = [float(np.mean([scale * (p["a"] - p["b"]) for p in c]))
              for cl in strata.values() for c in cl.values()]
    lo, hi = cluster_bootstrap(data, lambda t: t[:, 0] / t[:, 1], **boot)
    return {"n_pairs": len(d), "n_clusters": len(scores),
            "mean_diff": float(np.mean(d)) if d else None, "ci_low": lo, "ci_high": hi,
            "scores": scores, "identical": bool(d) and all(x == 0.0 for x in d),
            "mean_loss": float(scale * np.mean([p["a"] for p in pairs])) if pairs else None,
            "mean_baseline": float(scale * np.mean([p["b"] for p in pairs])) if pairs else None}


def _panel_pgrs(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PGR of means of loss and baseline per panel from summed ``[a, b, weak, ceiling, n]``
    (last axis)."""
    m = sums[..., :4] / sums[..., 4:5]
    gap = m[..., 3] - m[..., 2]
    return (m[..., 0] - m[..., 2]) / gap, (m[..., 1] - m[..., 2]) / gap


def _pgr_row(pairs: list[dict], boot: dict) -> dict:
    """Statistics of a row in PGR of means per panel (panels with a gap < MIN_GAP left out)."""
    by_panel: dict[tuple, list[dict]] = {}
    for p in pairs:
        task, weak, _, setting = p["key"]
        by_panel.setdefault((task, setting, weak), []).append(p)
    kept, excluded = [], []
    for panel, ps in sorted(by_panel.items(), key=lambda kv: str(kv[0])):
        gap = float(np.mean([p["ceiling"] for p in ps]) - np.mean([p["weak"] for p in ps]))
        (kept if gap >= MIN_GAP else excluded).append((panel, gap))
    index = {panel: i for i, (panel, _) in enumerate(kept)}
    gaps = {panel: gap for panel, gap in kept}
    strata = _clusters(pairs, index)
    data = []
    for cl in strata.values():
        x = np.zeros((len(cl), len(kept), 5))
        for j, c in enumerate(cl.values()):
            for p in c:
                task, weak, _, setting = p["key"]
                x[j, index[(task, setting, weak)]] += (p["a"], p["b"], p["weak"], p["ceiling"], 1.0)
        data.append(x)
    used = [p for ps in by_panel.values() for p in ps if (p["key"][0], p["key"][3], p["key"][1]) in index]
    point = _panel_pgrs(sum(x.sum(axis=0) for x in data)) if kept else (np.array([]), np.array([]))
    scores = [float(np.mean([(p["a"] - p["b"]) / gaps[(p["key"][0], p["key"][3], p["key"][1])] for p in c]))
              for cl in strata.values() for c in cl.values()]
    lo, hi = (cluster_bootstrap(data, lambda t: np.mean(np.subtract(*_panel_pgrs(t)), axis=-1), **boot)
              if kept else (None, None))
    return {"n_pairs": len(used), "n_clusters": len(scores),
            "mean_diff": float(np.mean(point[0] - point[1])) if kept else None,
            "ci_low": lo, "ci_high": hi, "scores": scores,
            "identical": bool(used) and all(p["a"] == p["b"] for p in used),
            "mean_loss": float(np.mean(point[0])) if kept else None,
            "mean_baseline": float(np.mean(point[1])) if kept else None, "n_panels": len(kept),
            "excluded_panels": [{"task": t, "setting": s, "weak": w, "gap": g}
                                for (t, s, w), g in excluded]}


# ----------------------------------------------------------------------------- the table
def _groups(rows: Sequence[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = tuple(str(_get(r, k)) for k in FAMILY_KEYS) + (_noise_key(r["noise"]),)
        groups.setdefault(key, []).append(r)
    return dict(sorted(groups.items()))


def compare(rows: Sequence[dict], baseline: str = "ce", metric: str = "acc",
            confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = SEED,
            alpha: float = ALPHA) -> list[dict]:
    """The comparison table: one row per ``(mode, select, noise_model, noise, loss ≠ baseline)``.

    Row keys: ``mode, select, noise_model, noise, loss, baseline, metric, n_pairs, n_clusters,
    mean_diff, ci_low, ci_high, p_value, p_holm, identical, mde, significant, ci_covers_zero,
    verdict, mean_loss, mean_baseline, n_missing, missing`` (+ ``n_panels, excluded_panels``
    for ``pgr``); see the module docstring (``significant``: ``p_holm < alpha`` and the interval
    excludes 0).  Ordered by mode, select, noise model, noise, then loss name.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    scale = METRICS[metric]
    boot = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    table = []
    for (mode, select, noise_model, noise), grp in _groups(rows).items():
        for loss in sorted({r["loss"] for r in grp} - {baseline}):
            pairs, missing = pair_up(grp, loss, baseline, metric)
            stats = _acc_row(pairs, scale, boot) if metric == "acc" else _pgr_row(pairs, boot)
            scores = stats.pop("scores")
            identical = stats["identical"]
            table.append({"mode": mode, "select": select, "noise_model": noise_model, "noise": noise,
                          "loss": loss, "baseline": baseline, "metric": metric, **stats,
                          "p_value": 1.0 if identical else wilcoxon_p(scores),
                          "mde": None if identical else mde(scores, alpha),
                          "n_missing": len(missing), "missing": missing})
    _adjust(table, alpha)
    return table


def _adjust(table: list[dict], alpha: float) -> None:
    """Holm within each family (identical rows: ``p_holm`` 1, outside it), then the verdicts."""
    families: dict[tuple, list[dict]] = {}
    for row in table:
        if row["identical"]:
            row["p_holm"] = 1.0
        else:
            families.setdefault(tuple(row[k] for k in FAMILY_KEYS), []).append(row)
    for fam in families.values():
        for row, p in zip(fam, holm([r["p_value"] for r in fam])):
            row["p_holm"] = p
    for row in table:
        covers = row["ci_low"] is None or row["ci_high"] is None or row["ci_low"] <= 0.0 <= row["ci_high"]
        row["ci_covers_zero"] = bool(covers)
        row["significant"] = bool(not row["identical"] and not covers and row["p_holm"] is not None
                                  and row["p_holm"] < alpha)
        row["verdict"] = verdict(row, alpha)


def verdict(row: dict, alpha: float = ALPHA) -> str:
    """A few words for a table row: the sign of a significant difference, else why not (with
    the smallest detectable difference)."""
    if not row["n_pairs"]:
        return "no panel with a gap ≥ 2 points" if row.get("excluded_panels") else "no pairs"
    if row.get("identical"):
        return "identical (every difference exactly 0)"
    if row["ci_low"] is None or row["ci_high"] is None:
        return "no significant difference (too few clusters for an interval)"
    power = f" (detectable: ±{row['mde']:.2g})" if row.get("mde") is not None else ""
    if row["ci_low"] <= 0.0 <= row["ci_high"]:
        return "no significant difference" + power
    side = "higher" if row["mean_diff"] > 0 else "lower"
    if row["p_holm"] is not None and row["p_holm"] < alpha:
        return f"{side} than {row['baseline']} (significant)"
    return f"{side}: interval excludes 0, not significant after Holm" + power


def _fmt(x, nd=2, sign=True) -> str:
    if x is None:
        return "—"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}g}" if x < 1e-3 else f"{x:.{nd + 1}f}"


def format_table(table: Sequence[dict], order: Sequence[str] | None = None) -> str:
    """The table as text: one block per family ``(mode, select, noise model)``, rows by noise
    then ``order`` (loss names)."""
    if not table:
        return "(nothing to compare)"
    rank = {n: i for i, n in enumerate(order or [])}
    metric = table[0]["metric"]
    unit = "points" if metric == "acc" else "PGR"
    lines = []
    for fam in sorted({tuple(_get(r, k) for k in FAMILY_KEYS) for r in table}):
        rows = sorted((r for r in table if tuple(_get(r, k) for k in FAMILY_KEYS) == fam),
                      key=lambda r: (r["noise"], rank.get(r["loss"], len(rank)), r["loss"]))
        mode, select, noise_model = fam
        lines.append(f"{metric} of each loss minus {table[0]['baseline']} ({unit}), student: {mode}, "
                     f"selection: {select}, noise model: {noise_model}")
        lines.append(f"{'noise':>5} {'loss':<12} {'n':>3} {'clu':>3} {'diff':>7} {'95% CI':>17} {'p':>7} "
                     f"{'p_holm':>7} {'MDE':>6} {'miss':>4}  verdict")
        for r in rows:
            ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            mde_s = "—" if r.get("mde") is None else f"{r['mde']:.2f}"
            lines.append(f"{r['noise']:>5g} {r['loss'][:12]:<12} {r['n_pairs']:>3} "
                         f"{r.get('n_clusters', r['n_pairs']):>3} "
                         f"{_fmt(r['mean_diff']):>7} {ci:>17} {_fmt(r['p_value'], 2, False):>7} "
                         f"{_fmt(r['p_holm'], 2, False):>7} {mde_s:>6} {r['n_missing']:>4}  {r['verdict']}")
        lines.append("")
    return "\n".join(lines).rstrip()
