"""C7: the gradient at confident disagreement (noise tolerance).

For ``s = σ(z)`` and weak label ``w``, the loss ``D_f(s‖w)`` is evaluated in log space with
the generated torch function (:func:`fdiv_torch.codegen.logratio_torch`) and differentiated by
autograd.  Checked per generator:

* the formula ``∂_z D_f = s(1−s)[f'(s/w) − f'((1−s)/(1−w))]`` at random ``(z, w)``
  (relative error ≤ 1e-7);
* the limit as ``z → −∞`` (the strong model confidently contradicts the label):
  ``∂_z D_f → w · lim_{t→0+} t f'(t)`` (:func:`theory.derived.disagreement_pull`).  Finite
  limits: ``|autograd(z=−40) − w·pull| ≤ 1e-6 (1+|pull|)``; ``−∞`` (``neyman``): the gradient is
  below ``−1e6`` at ``z = −40`` and grows in magnitude as ``z`` decreases.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from fdiv_torch.codegen import logratio_torch
from theory.derived import disagreement_pull, to_float

from .. import reference as ref
from ..result import CheckResult, status_for
from .common import generators

__all__ = ["check_c7", "autograd_grad"]


def autograd_grad(gen, z, w) -> np.ndarray:
    """``∂_z D_f(σ(z)‖w)`` by torch autograd on the log-space loss (float64)."""
    g = logratio_torch(gen)
    zt = torch.tensor(np.asarray(z, float), dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(np.asarray(w, float), dtype=torch.float64)
    log_s1 = torch.nn.functional.logsigmoid(zt)
    log_s0 = torch.nn.functional.logsigmoid(-zt)
    loss = wt * g(log_s1 - torch.log(wt)) + (1 - wt) * g(log_s0 - torch.log1p(-wt))
    (grad,) = torch.autograd.grad(loss.sum(), zt)
    return grad.detach().numpy()


def check_c7(quick: bool = True, seed: int = 0) -> CheckResult:
    start = time.time()
    rng = np.random.default_rng(seed)
    per, worst, instances = {}, math.inf, 0
    for gen in generators(quick):
        z = rng.uniform(-6, 6, 50)
        w = rng.uniform(0.05, 0.95, 50)
        auto = autograd_grad(gen, z, w)
        formula = ref.binary_grad_logit(gen, 1 / (1 + np.exp(-z)), w)
        rel = np.abs(auto - formula) / (1e-12 + np.abs(formula) + 1e-9)
        smooth = gen.name != "tv"
        form_slack = float(1e-7 - np.max(rel)) if smooth else float(1e-7 - np.median(rel))
        pull = to_float(disagreement_pull(gen))
        ws = rng.uniform(0.1, 0.9, 10)
        zs = np.array([-20.0, -30.0, -40.0])
        grads = np.array([autograd_grad(gen, np.full_like(ws, zz), ws) for zz in zs])  # (3, 10)
        if pull is None:
            lim_slack, kind = -1.0, "unknown limit"
        elif math.isinf(pull):
            kind = "unbounded"
            lim_slack = float(min(-1e6 - grads[-1].max(),
                                  np.min(np.abs(grads[2]) - np.abs(grads[1]))))
            lim_slack = 1e-6 if lim_slack >= 0 else lim_slack
        else:
            kind = "finite"
            lim_slack = float(1e-6 * (1 + abs(pull)) - np.max(np.abs(grads[-1] - ws * pull)))
        per[gen.name] = {"pull": pull, "kind": kind, "formula_slack": form_slack,
                         "limit_slack": lim_slack,
                         "grad_at_z-40_over_w": (grads[-1] / ws).tolist()[:3]}
        worst = min(worst, form_slack, lim_slack)
        instances += 50 + 30
    return CheckResult("C7", instances, worst, status_for(worst), time.time() - start,
                       {"per_generator": per,
                        "tolerance": "formula 1e-7 rel (tv: median, kink at s=w); limit 1e-6(1+|pull|)"})
