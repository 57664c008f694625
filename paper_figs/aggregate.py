"""Aggregation of reader rows (pure numpy; no schema knowledge, no plotting).

Spread over seeds is the sample standard deviation (``ddof = 1``; 0 for one seed).
PGR is computed per run by the writer (:func:`w2sg.pgr.pgr`: ``(acc_w2s − acc_weak) /
(acc_ceiling − acc_weak)`` with that run's own weak and ceiling accuracies; ``None`` when
undefined), read from its record and averaged over seeds.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np

from w2sg.pgr import pgr  # the one implementation (re-exported here)

__all__ = ["mean_std", "group", "summarize", "references", "noise_drop", "pgr"]


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, sample std, n)`` over the finite values (NaN, 0 when there are none)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean()), sd, int(v.size)


def group(rows: Sequence[dict], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[tuple(r.get(k) for k in keys)].append(r)
    return dict(out)


def summarize(rows: Sequence[dict], value: str = "acc",
              keys: Sequence[str] = ("task", "pair", "loss", "noise")) -> dict[tuple, tuple]:
    """``{key: (mean, std, n)}`` of ``value`` over seeds."""
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
