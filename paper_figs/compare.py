"""Paired comparisons of every loss against a baseline loss (pure functions: no I/O, no plots).

Input: a tidy list of rows, one per finished weak-to-strong run::

    {"task", "weak", "seed", "loss", "noise", "mode", "acc", "pgr"}   (+ optional "setting")

``mode`` separates students trained differently (``"head"``: linear head on frozen features,
``"finetune"``: the whole strong encoder); ``setting`` is an opaque key for the rest of the run
configuration (sizes, steps, ...) so that runs from different sweeps in one results root are never
paired with each other.  A *pair* is a run of ``loss`` and a run of the baseline with the same
``(task, weak, seed, setting)`` in the same ``(mode, noise)`` group: both students then saw the
same data split, the same weak labels and the same flipped labels, and differ only in the loss.

Per ``(mode, noise, loss)``, with ``d_i = scale · (metric_i(loss) − metric_i(baseline))`` over the
``n`` pairs (``scale`` = 100 for accuracy, so differences are in points; 1 for PGR):

* ``mean_diff`` = ``mean(d)``;
* ``ci_low, ci_high``: a ``confidence`` bootstrap interval of the mean of ``d``
  (:func:`scipy.stats.bootstrap`, BCa, ``n_resamples`` resamples of the *pairs*, a fixed seed:
  reproducible); when every ``d_i`` is equal the bootstrap distribution is a point and the
  interval is ``[d_1, d_1]`` (scipy's BCa is undefined there); ``None`` for ``n < 2``;
* ``p_value``: two-sided Wilcoxon signed-rank test of ``d`` (:func:`scipy.stats.wilcoxon`,
  zeros dropped, Wilcox 1945); ``1`` when every ``d_i`` is 0 (no evidence of any difference);
* ``p_holm``: Holm's (1979) step-down adjustment over every row of the table
  (:func:`holm`; controls the family-wise error rate without assuming independence).

Pairs that exist for one side only are listed in ``missing``, never dropped silently.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = ["METRICS", "PAIR_KEYS", "CONFIDENCE", "N_RESAMPLES", "SEED", "ALPHA", "holm", "bootstrap_ci", "wilcoxon_p", "pair_up", "compare",
           "verdict", "format_table"]

#: metric → factor applied to differences (accuracy in points, PGR as is)
METRICS = {"acc": 100.0, "pgr": 1.0}
#: defaults: 95% intervals from 9999 bootstrap resamples drawn with seed 0; significance level
CONFIDENCE, N_RESAMPLES, SEED, ALPHA = 0.95, 9999, 0, 0.05
#: what a pair is matched on (within one ``(mode, noise)`` group)
PAIR_KEYS = ("task", "weak", "seed", "setting")


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


def bootstrap_ci(diffs: Sequence[float], confidence: float = CONFIDENCE,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED, method: str = "BCa") -> tuple[float | None, float | None]:
    """``confidence`` bootstrap interval of ``mean(diffs)`` (:func:`scipy.stats.bootstrap`).

    Paired data: ``diffs`` are per-pair differences, so resampling them resamples pairs.
    Equal values give the point interval ``(d, d)``; fewer than 2 values give ``(None, None)``.
    """
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return None, None
    if np.ptp(d) == 0.0:
        return float(d[0]), float(d[0])
    from scipy.stats import bootstrap
    res = bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                    method=method, rng=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (lo if math.isfinite(lo) else None), (hi if math.isfinite(hi) else None)


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


def _noise_key(x) -> float:
    return round(float(x), 6)


def _pair_key(row: dict) -> tuple:
    return tuple(str(row.get(k, "")) if k != "seed" else row.get(k) for k in PAIR_KEYS)


def _missing_entry(key: tuple, lacks: str, why: str) -> dict:
    return dict(zip(PAIR_KEYS, key), lacks=lacks, why=why)


def pair_up(rows: Iterable[dict], loss: str, baseline: str, metric: str = "acc"
            ) -> tuple[list[tuple[tuple, float, float]], list[dict]]:
    """Match the runs of ``loss`` and ``baseline`` (rows of ONE ``(mode, noise)`` group).

    Returns ``(pairs, missing)``: ``pairs`` = ``[(pair key, metric(loss), metric(baseline))]``
    sorted by key; ``missing`` = one entry per key present on one side only (or whose metric is
    undefined): ``{task, weak, seed, setting, lacks: <loss name>, why}``.
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
        gone += [(name, f"{metric} undefined") for name, r in ((loss, a), (baseline, b))
                 if r is not None and not _finite(r.get(metric))]
        if gone:
            missing.extend(_missing_entry(key, name, why) for name, why in gone)
        else:
            pairs.append((key, float(a[metric]), float(b[metric])))
    return pairs, missing


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def compare(rows: Sequence[dict], baseline: str = "ce", metric: str = "acc",
            confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = SEED,
            alpha: float = ALPHA) -> list[dict]:
    """The comparison table: one row per ``(mode, noise, loss ≠ baseline)`` present in ``rows``.

    Row keys: ``mode, noise, loss, baseline, metric, n_pairs, mean_diff, ci_low, ci_high,
    p_value, p_holm, significant, ci_covers_zero, verdict, mean_loss, mean_baseline,
    n_missing, missing`` (see the module docstring; ``mean_*`` are the paired means, scaled
    like the differences; ``significant``: ``p_holm < alpha`` and the interval excludes 0).
    Ordered by mode, noise, then loss name; ``style.order_losses`` orders for display.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    scale = METRICS[metric]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((str(r.get("mode", "head")), _noise_key(r["noise"])), []).append(r)
    table = []
    for (mode, noise), grp in sorted(groups.items()):
        for loss in sorted({r["loss"] for r in grp} - {baseline}):
            pairs, missing = pair_up(grp, loss, baseline, metric)
            d = np.array([scale * (a - b) for _, a, b in pairs], dtype=float)
            lo, hi = bootstrap_ci(d, confidence, n_resamples, seed)
            table.append({
                "mode": mode, "noise": noise, "loss": loss, "baseline": baseline, "metric": metric,
                "n_pairs": int(d.size),
                "mean_diff": float(d.mean()) if d.size else None,
                "ci_low": lo, "ci_high": hi,
                "p_value": wilcoxon_p(d),
                "mean_loss": float(scale * np.mean([a for _, a, _ in pairs])) if pairs else None,
                "mean_baseline": float(scale * np.mean([b for _, _, b in pairs])) if pairs else None,
                "n_missing": len(missing), "missing": missing,
            })
    for row, p in zip(table, holm([r["p_value"] for r in table])):
        row["p_holm"] = p
        covers = row["ci_low"] is None or row["ci_high"] is None or row["ci_low"] <= 0.0 <= row["ci_high"]
        row["ci_covers_zero"] = bool(covers)
        row["significant"] = bool(not covers and p is not None and p < alpha)
        row["verdict"] = verdict(row, alpha)
    return table


def verdict(row: dict, alpha: float = ALPHA) -> str:
    """A few words for a table row: the sign of a significant difference, else why not."""
    if not row["n_pairs"]:
        return "no pairs"
    if row["ci_low"] is None or row["ci_high"] is None:
        return "no significant difference (too few pairs for an interval)"
    if row["ci_low"] <= 0.0 <= row["ci_high"]:
        return "no significant difference"
    side = "higher" if row["mean_diff"] > 0 else "lower"
    if row["p_holm"] is not None and row["p_holm"] < alpha:
        return f"{side} than {row['baseline']} (significant)"
    return f"{side}: interval excludes 0, not significant after Holm"


def _fmt(x, nd=2, sign=True) -> str:
    if x is None:
        return "—"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}g}" if x < 1e-3 else f"{x:.{nd + 1}f}"


def format_table(table: Sequence[dict], order: Sequence[str] | None = None) -> str:
    """The table as text: one block per mode, rows by noise then ``order`` (loss names)."""
    if not table:
        return "(nothing to compare)"
    rank = {n: i for i, n in enumerate(order or [])}
    metric = table[0]["metric"]
    unit = "points" if metric == "acc" else "PGR"
    lines = []
    for mode in sorted({r["mode"] for r in table}):
        rows = sorted((r for r in table if r["mode"] == mode),
                      key=lambda r: (r["noise"], rank.get(r["loss"], len(rank)), r["loss"]))
        lines.append(f"{metric} of each loss minus {table[0]['baseline']} ({unit}), student: {mode}")
        lines.append(f"{'noise':>5} {'loss':<12} {'n':>3} {'diff':>7} {'95% CI':>17} {'p':>7} "
                     f"{'p_holm':>7} {'miss':>4}  verdict")
        for r in rows:
            ci = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            lines.append(f"{r['noise']:>5g} {r['loss'][:12]:<12} {r['n_pairs']:>3} "
                         f"{_fmt(r['mean_diff']):>7} {ci:>17} {_fmt(r['p_value'], 2, False):>7} "
                         f"{_fmt(r['p_holm'], 2, False):>7} {r['n_missing']:>4}  {r['verdict']}")
        lines.append("")
    return "\n".join(lines).rstrip()
