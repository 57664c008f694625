"""Every mean, spread and PGR over runs: the one aggregation module (numpy; no schema, no I/O).

A leaf module (:mod:`w2sg.pgr` only), used by ``w2sg run``'s summary
(:func:`experiments.runner.summarize`), the figures (:mod:`paper_figs.aggregate` re-exports
it) and ``w2sg compare`` (:mod:`paper_figs.compare`).  Rows are plain dicts such as
:meth:`w2sg.results.Run.row` makes.

* **Spread** over seeds is the *sample* standard deviation, :data:`DDOF` = 1 (``0`` for a
  single value), everywhere.
* **PGR** of a group of runs is Burns et al.'s PGR *of means* (:func:`pgr_of_means`):
  ``(mean acc_w2s − mean acc_weak) / (mean acc_ceiling − mean acc_weak)`` over the group's
  seeds (:func:`w2sg.pgr.pgr` on the means).  A run's own PGR (``metrics.pgr``) stays in its
  record; :func:`summarize` of ``"pgr"`` (the figures' per-seed curves) averages it.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from .pgr import pgr

__all__ = ["DDOF", "mean_std", "group", "summarize", "references", "noise_drop", "pgr",
           "pgr_of_means", "run_summary", "SUMMARY_KEYS"]

#: the one delta degrees of freedom of every spread over seeds (sample standard deviation)
DDOF = 1


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, sample std (ddof 1), n)`` over the finite values; std 0 for one value;
    ``(NaN, NaN, 0)`` when there are none."""
    v = np.array([x for x in values if _finite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    sd = float(v.std(ddof=DDOF)) if v.size > DDOF else 0.0
    return float(v.mean()), sd, int(v.size)


def group(rows: Sequence[dict], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    """Rows grouped by the values of ``keys`` (in first-seen order)."""
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[tuple(r.get(k) for k in keys)].append(r)
    return dict(out)


def summarize(rows: Sequence[dict], value: str = "acc",
              keys: Sequence[str] = ("task", "pair", "loss", "noise")) -> dict[tuple, tuple]:
    """``{key: (mean, std, n)}`` of ``value`` over seeds (:func:`mean_std`)."""
    return {k: mean_std(r.get(value) for r in g) for k, g in sorted(group(rows, keys).items(),
                                                                      key=lambda kv: str(kv[0]))}


def references(rows: Sequence[dict]) -> dict[tuple, dict]:
    """Weak supervisor and strong ceiling per ``(task, pair)``: mean ± std over seeds
    (one value per seed: they do not depend on the loss or the noise)."""
    out = {}
    for key, g in group(rows, ("task", "pair")).items():
        per_seed_w, per_seed_c = {}, {}
        for r in g:
            if r.get("weak_acc") is not None:
                per_seed_w.setdefault(r.get("seed"), r["weak_acc"])
            if r.get("ceiling_acc") is not None:
                per_seed_c.setdefault(r.get("seed"), r["ceiling_acc"])
        out[key] = {"weak": mean_std(per_seed_w.values()), "ceiling": mean_std(per_seed_c.values())}
    return out


def noise_drop(rows: Sequence[dict], low: float = 0.0, high: float = 0.4) -> dict[tuple, tuple]:
    """Accuracy drop ``mean acc(noise=low) − mean acc(noise=high)`` per ``(task, pair, loss)``,
    with its standard error from the two seed spreads: ``{key: (drop, se, high_used)}``.

    When ``high`` was not run the largest noise level present is used (``high_used``).
    """
    out = {}
    for key, g in group(rows, ("task", "pair", "loss")).items():
        levels = sorted({r["noise"] for r in g})
        if not levels or not any(abs(l - low) < 1e-9 for l in levels):
            continue
        hi = [l for l in levels if abs(l - high) < 1e-9]
        hi_level = hi[0] if hi else levels[-1]
        if abs(hi_level - low) < 1e-9:
            continue
        m0, s0, n0 = mean_std(r["acc"] for r in g if abs(r["noise"] - low) < 1e-9)
        m1, s1, n1 = mean_std(r["acc"] for r in g if abs(r["noise"] - hi_level) < 1e-9)
        se = math.sqrt((s0 ** 2 / max(n0, 1)) + (s1 ** 2 / max(n1, 1)))
        out[key] = (m0 - m1, se, hi_level)
    return out


def pgr_of_means(w2s: Iterable[float], weak: Iterable[float], ceiling: Iterable[float]) -> float:
    """Burns et al.'s PGR of a group of runs: :func:`w2sg.pgr.pgr` of the three means
    (NaN when a mean is undefined or the mean gap is 0)."""
    m = [mean_std(v)[0] for v in (w2s, weak, ceiling)]
    return pgr(*m) if all(math.isfinite(x) for x in m) else float("nan")


#: the keys of a :func:`run_summary` row
SUMMARY_KEYS = ("task", "weak", "loss", "noise", "noise_model", "select", "n_seeds", "weak_acc",
                "ceiling_acc", "w2s_acc", "w2s_acc_sd", "pgr", "agreement_weak", "ece", "auroc")


def run_summary(rows: Sequence[dict]) -> list[dict]:
    """One row per ``(task, weak, loss, noise, noise_model, select)`` (first-seen order):
    ``n_seeds``, the means over seeds of ``weak_acc``, ``ceiling_acc``, ``w2s_acc`` (with
    ``w2s_acc_sd``, :data:`DDOF` 1), ``agreement_weak``, ``ece``, ``auroc`` (over the
    seeds where it is defined) and ``pgr`` = :func:`pgr_of_means` (NaN when undefined); a tuned
    cell adds ``chosen`` (its rows' ``chosen``: one configuration per cell)."""
    out = []
    keys = ("task", "weak", "loss", "noise", "noise_model", "select")
    for key, g in group(rows, keys).items():
        acc, sd, n = mean_std(r["acc"] for r in g)
        out.append(dict(zip(keys, key), n_seeds=len(g),
                        weak_acc=mean_std(r["weak_acc"] for r in g)[0],
                        ceiling_acc=mean_std(r["ceiling_acc"] for r in g)[0],
                        w2s_acc=acc, w2s_acc_sd=sd,
                        pgr=pgr_of_means([r["acc"] for r in g], [r["weak_acc"] for r in g],
                                         [r["ceiling_acc"] for r in g]),
                        agreement_weak=mean_std(r["agreement_weak"] for r in g)[0],
                        ece=mean_std(r["ece"] for r in g)[0],
                        auroc=mean_std(r["auroc"] for r in g)[0]))
        if g[0].get("chosen") is not None:  # a tuned cell: one configuration for every seed
            out[-1]["chosen"] = g[0]["chosen"]
    return out
