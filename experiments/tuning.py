"""Equal-budget hyperparameter tuning of the student heads, selected honestly.

Protocol (``w2sg run --tune``; issue 19).  Every loss gets the same grid of training
configurations (:data:`DEFAULT_GRID`: L2 weight ∈ {0.25, 1, 4, 16} × Adam lr ∈ {0.003, 0.01,
0.03}).  For each cell (task, weak model, noise, noise model, loss) the whole grid is trained
on the *tuning seeds* (:func:`tuning_seeds`: 1000, 1001, …, disjoint from the evaluation seeds
0..S−1; each a full replicate with its own split, weak supervisor and noisy labels), and the
configuration with the best mean selection score is chosen (ties: the first in grid order);
the evaluation runs then train that configuration on the evaluation seeds.

Selection scores (per head; the checkpoint of every head is selected as in an evaluation run,
on agreement with the noisy weak labels of the validation slice):

* ``weak`` (default): the selected checkpoint's agreement with the *weak* (noisy) labels of the
  validation slice — what a practitioner without ground truth can do.  No ground-truth label
  of the student split is read (the runner passes none; tested by permuting them).
* ``oracle``: the selected checkpoint's accuracy on the validation slice's ground truth — a
  labelled upper bound of what tuning can buy.

Two tuning seeds by default (:data:`DEFAULT_TUNING_SEEDS`): one seed's validation slice
(20% of the student split: 580 rows on the default tasks) scores a configuration with a
binomial sd of about 2 points, the size of the differences between neighbouring grid entries
(0.3–3 points in the quick sweep); two seeds halve the variance (and average over two
splits and two weak supervisors) for one more replicate per cell, and a third would add 50%
to the tuning cost, which the 20-minute budget of the default sweep on 2 cores does not leave.

The grid is trained as one batched model (:func:`experiments.batched.train_heads_batched`):
the tuning seeds of equal shape and all grid entries share each step's matrix product.
"""
from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_GRID", "SELECT_CHOICES", "DEFAULT_TUNING_SEEDS", "TUNING_SEED_BASE",
           "tuning_seeds", "tune_spec", "score_grid"]

#: L2 weights × learning rates of the default grid (linear heads).
DEFAULT_WEIGHT_DECAYS = (0.25, 1.0, 4.0, 16.0)
DEFAULT_LRS = (0.003, 0.01, 0.03)
#: The default grid: every (weight_decay, lr) pair, weight decay outermost.
DEFAULT_GRID: tuple[dict, ...] = tuple({"weight_decay": wd, "lr": lr}
                                       for wd in DEFAULT_WEIGHT_DECAYS for lr in DEFAULT_LRS)
#: ``--select`` choices.
SELECT_CHOICES = ("weak", "oracle")
#: Number of tuning seeds by default (see the module docstring for why two).
DEFAULT_TUNING_SEEDS = 2
#: The first tuning seed; evaluation seeds must stay below it (disjoint sets).
TUNING_SEED_BASE = 1000


def tuning_seeds(n: int) -> list[int]:
    """The ``n`` tuning seeds ``1000, 1001, …`` (evaluation seeds are ``0..S−1``, S < 1000)."""
    return list(range(TUNING_SEED_BASE, TUNING_SEED_BASE + int(n)))


def tune_spec(grid=None, select: str = "weak", n_seeds: int = DEFAULT_TUNING_SEEDS) -> dict:
    """The sweep's ``tune`` entry: ``{"grid": [{"weight_decay", "lr"}, …], "select",
    "tuning_seeds"}`` (it is part of every tuned run's config, hence of its hash)."""
    grid = [dict(g) for g in (grid if grid is not None else DEFAULT_GRID)]
    grid = [{"weight_decay": float(g["weight_decay"]), "lr": float(g["lr"])} for g in grid]
    return {"grid": grid, "select": select, "tuning_seeds": tuning_seeds(n_seeds)}


def _groups(problems: list[dict]) -> list[list[int]]:
    """Indices of the problems grouped by shape (equal shapes train as one batch)."""
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault((p["X_tr"].shape, p["X_va"].shape), []).append(i)
    return list(groups.values())


def score_grid(problems: list[dict], loss, grid: list[dict], train_cfg, bias: bool,
               select: str) -> dict:
    """Train every grid entry on every problem (one tuning seed each) and score it.

    ``problems[i]``: ``X_tr``, ``w_tr`` (noisy weak labels of the train slice), ``X_va``,
    ``w_va`` (noisy weak labels of the validation slice) and, for ``select="oracle"`` only,
    ``y_va`` (its ground truth; never read under ``"weak"``).  ``train_cfg``: steps,
    eval_every, dtype (its lr / weight_decay are replaced by the grid's).

    Returns ``{"per_seed_scores": (T, G) list, "best_steps": (T, G) list, "scores": (G,)
    mean over seeds, "chosen_index": int}``.
    """
    from .batched import train_heads_batched
    if select not in SELECT_CHOICES:
        raise ValueError(f"select must be one of {', '.join(SELECT_CHOICES)}, got {select!r}")
    pairs = [(g["lr"], g["weight_decay"]) for g in grid]
    T, G = len(problems), len(grid)
    scores = np.zeros((T, G))
    steps = np.zeros((T, G), dtype=int)
    for idx in _groups(problems):
        X = np.stack([problems[i]["X_tr"] for i in idx])
        W = np.stack([problems[i]["w_tr"] for i in idx])
        Xv = np.stack([problems[i]["X_va"] for i in idx])
        Wv = np.stack([problems[i]["w_va"] for i in idx])
        theta, b, info = train_heads_batched(X, W, loss, pairs, train_cfg.steps, train_cfg.eval_every,
                                             bias=bias, val=(Xv, Wv), dtype=train_cfg.dtype)
        steps[idx] = info["best_step"]
        for row, i in enumerate(idx):  # the kept checkpoint's agreement with the selection labels
            ref = (np.asarray(problems[i]["w_va"]) > 0.5) if select == "weak" else \
                (np.asarray(problems[i]["y_va"]) == 1)
            z = np.einsum("md,gd->gm", np.asarray(problems[i]["X_va"], dtype=np.float64),
                          theta[row].astype(np.float64)) + b[row].astype(np.float64)[:, None]
            scores[i] = ((z > 0) == ref[None, :]).mean(-1)
    mean = scores.mean(0)
    return {"per_seed_scores": scores.tolist(), "best_steps": steps.tolist(),
            "scores": mean.tolist(), "chosen_index": int(np.argmax(mean))}
