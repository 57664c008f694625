"""C8: ``ce`` and ``kl`` training give the same run.

``CE(W,S) = KL(W‖S) + H(W)`` and ``H(W)`` does not depend on the strong model, so the
gradients agree and training from the same seed gives the same parameters.  Checked on
synthetic worlds for (a) plain gradient descent (fixed steps: the trajectories must agree
to rounding, ``max|θ_ce − θ_kl| ≤ 1e-10``), (b) L-BFGS to convergence (``≤ 1e-7``), and
(c) the loss difference ``CE − KL = H(W)`` exactly (``≤ 1e-12``).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..fit import fit_head, head_loss
from ..result import CheckResult, status_for
from ..world import make_world

__all__ = ["check_c8", "compare_runs"]


def compare_runs(world, n: int = 200, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    xs = world.sample_x(n, rng)
    H, W = world.strong_features(xs), world.weak(xs)
    out = {}
    gd_ce = fit_head("ce", H, W, seed=seed, optimizer="gd", lr=0.5, steps=100)
    gd_kl = fit_head("kl", H, W, seed=seed, optimizer="gd", lr=0.5, steps=100)
    out["gd_max_abs_diff"] = float(np.max(np.abs(gd_ce.theta - gd_kl.theta)))
    lb_ce = fit_head("ce", H, W, seed=seed)
    lb_kl = fit_head("kl", H, W, seed=seed)
    out["lbfgs_max_abs_diff"] = float(np.max(np.abs(lb_ce.theta - lb_kl.theta)))
    out["lbfgs_converged"] = bool(lb_ce.converged and lb_kl.converged)
    th = torch.tensor(gd_ce.theta, dtype=torch.float64)
    Ht, Wt = torch.as_tensor(H, dtype=torch.float64), torch.as_tensor(W, dtype=torch.float64)
    wts = torch.full((n,), 1.0 / n, dtype=torch.float64)
    ce = float(head_loss("ce", th, Ht, Wt, wts))
    kl = float(head_loss("kl", th, Ht, Wt, wts))
    ent = float(-(W * np.log(W)).sum(1).mean())
    out["loss_identity_err"] = abs(ce - kl - ent)
    out["slack"] = min(1e-10 - out["gd_max_abs_diff"], 1e-7 - out["lbfgs_max_abs_diff"],
                       1e-12 - out["loss_identity_err"])
    return out


def check_c8(quick: bool = True, seed: int = 0) -> CheckResult:
    start = time.time()
    rows = []
    for i in range(2 if quick else 6):
        world = make_world(seed * 100 + i, strong="random" if i % 2 else "full", strong_dim=10,
                           noise=0.1 * (i % 3), support=None if i % 2 else 64)
        rows.append(compare_runs(world, n=200, seed=seed + i))
    worst = min(r["slack"] for r in rows) if rows else math.inf
    return CheckResult("C8", len(rows), worst, status_for(worst), time.time() - start,
                       {"runs": rows, "tolerance": "GD 1e-10, L-BFGS 1e-7 (abs, parameters); loss identity 1e-12"})
