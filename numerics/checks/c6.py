"""C6: sample complexity — coverage of the excess-risk bound by repeated draws.

Population: ``m`` points with weights ``π``, features ``h(x)`` scaled to ``‖h‖ = ρ``, a weak
label ``F_w(x) ∈ [γ, 1−γ]``; heads ``s = σ(θ·h)`` with ``‖θ‖ ≤ Λ``, so every prediction lies
in ``[γ, 1−γ]`` with ``γ = σ(−Λρ)`` (weak labels are clipped to the same box).
For each ``n``, ``reps`` independent samples give the constrained ERM ``θ̂`` (SLSQP, two
starts); the exact population excess ``R_f(θ̂) − min_θ R_f(θ)`` is compared with
``theory.bounds.excess_risk_bound(gen, γ, n, δ, radius=Λρ)``
(= ``4 L_f Λρ/√n + 2 B_f √(ln(2/δ)/(2n))``).  Reported per generator and ``n``: coverage
(fraction of draws where the bound holds; must be ≥ 1−δ), and looseness
(bound / median excess).  Also checks the constants: the symbolic ``B_f``, ``L_f`` are at
least their grid maxima (:func:`numerics.reference.binary_loss_constants`).
Also ``B_f(γ)`` as ``γ → 0``: at most ``sup D_f`` for bounded divergences, growing for
unbounded ones.  Slack = min over cells of ``coverage − (1−δ)`` and of the constants' margins.
"""
from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import minimize

from theory import get_generator
from theory.divergence import binary_divergence
from theory.loss_table import PAPER_LOSSES

from .. import api
from .. import reference as ref
from ..result import CheckResult, status_for
from ..binary import sigmoid

__all__ = ["check_c6", "coverage_cell", "make_population"]

GENS = PAPER_LOSSES  # the paper's six f-divergence losses (the loss table)


def make_population(seed: int, m: int = 40, d: int = 3, rho: float = 1.0, lam: float = 2.0):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((m, d))
    h = rho * h / np.linalg.norm(h, axis=1, keepdims=True)
    gamma = float(sigmoid(-lam * rho))
    w = np.clip(sigmoid(h @ rng.standard_normal(d) * 2 + 0.5 * rng.standard_normal(m)), gamma, 1 - gamma)
    pi = rng.dirichlet(np.ones(m) * 2)
    return {"h": h, "w": w, "pi": pi, "gamma": gamma, "rho": rho, "lam": lam}


def _risk_fn(gen, h, w, weights):
    def risk(theta):
        return float(np.sum(weights * binary_divergence(gen, sigmoid(h @ theta), w)))
    return risk


def _erm(gen, h, w, weights, lam, starts):
    risk = _risk_fn(gen, h, w, weights)
    cons = [{"type": "ineq", "fun": lambda th: lam ** 2 - th @ th}]
    best = None
    for x0 in starts:
        res = minimize(risk, x0, method="SLSQP", constraints=cons, options={"ftol": 1e-13, "maxiter": 300})
        th = res.x if res.x @ res.x <= lam ** 2 else res.x * lam / np.linalg.norm(res.x)
        if best is None or risk(th) < risk(best):
            best = th
    return best, risk(best)


def coverage_cell(gen, pop, n: int, reps: int, delta: float, rng) -> dict:
    h, w, pi, lam = pop["h"], pop["w"], pop["pi"], pop["lam"]
    d = h.shape[1]
    theta_star, r_star = _erm(gen, h, w, pi, lam, [np.zeros(d), np.full(d, 0.3)])
    pop_risk = _risk_fn(gen, h, w, pi)
    bound = api.excess_risk_bound(gen, pop["gamma"], n, delta, radius=lam * pop["rho"])
    excess = []
    for _ in range(reps):
        idx = rng.choice(len(pi), size=n, p=pi)
        th, _ = _erm(gen, h[idx], w[idx], np.full(n, 1.0 / n), lam, [np.zeros(d), theta_star])
        excess.append(pop_risk(th) - r_star)
    excess = np.array(excess)
    cov = float(np.mean(excess <= bound))
    med = float(np.median(excess))
    return {"generator": gen.name, "n": n, "reps": reps, "delta": delta, "gamma": pop["gamma"],
            "bound": bound, "coverage": cov, "excess_mean": float(excess.mean()),
            "excess_q": float(np.quantile(excess, 1 - delta)), "excess_median": med, "excess_max": float(excess.max()),
            "excess_min": float(excess.min()),
            "looseness": bound / med if med > 0 else math.inf}


def check_c6(quick: bool = True, seed: int = 0) -> CheckResult:
    start = time.time()
    delta = 0.1
    gens = GENS[:3] if quick else GENS
    ns = (50, 400) if quick else (25, 100, 400, 1600)
    reps = 20 if quick else 100
    pop = make_population(seed)
    rng = np.random.default_rng(seed + 7)
    cells, const = [], {}
    worst = math.inf
    for name in gens:
        gen = get_generator(name)
        c = api.loss_constants(gen, pop["gamma"])
        grid = ref.binary_loss_constants(gen, pop["gamma"])
        margins = {"bound": c.bound - grid["bound"] + 1e-9 * (1 + grid["bound"]),
                   "lipschitz_logit": c.lipschitz_logit - grid["lipschitz_logit"] + 1e-9 * (1 + grid["lipschitz_logit"]),
                   "lipschitz_prob": c.lipschitz_prob - grid["lipschitz_prob"] + 1e-9 * (1 + grid["lipschitz_prob"])}
        const[name] = {"B_f": c.bound, "L_logit": c.lipschitz_logit, "L_prob": c.lipschitz_prob,
                       "grid": grid, "margins": margins}
        worst = min(worst, *margins.values())
        for n in ns:
            cell = coverage_cell(gen, pop, n, reps, delta, rng)
            cells.append(cell)
            worst = min(worst, cell["coverage"] - (1 - delta))
    # B_f(γ) as γ → 0: finite for bounded divergences (≤ sup D_f = f(0+) + f'(∞)), unbounded otherwise
    from theory.derived import is_bounded, max_value, to_float
    limits = {}
    for name in (GENS + ("tv",) if not quick else ("kl", "hellinger", "js")):
        gen = get_generator(name)
        bs = [api.loss_constants(gen, g).bound for g in (1e-2, 1e-4, 1e-6)]
        if is_bounded(gen):
            top = to_float(max_value(gen))
            margin = top - bs[-1] + 1e-9 * (1 + top)
        else:
            top = math.inf
            margin = 1e-9 if bs[-1] > 2 * bs[0] else -1.0
        limits[name] = {"bounded": is_bounded(gen), "sup_D_f": top, "B_f(1e-2,1e-4,1e-6)": bs,
                        "margin": margin}
        worst = min(worst, margin)
    return CheckResult("C6", sum(c["reps"] for c in cells), worst, status_for(worst), time.time() - start,
                       {"coverage": cells, "constants": const, "delta": delta, "B_f_as_gamma_to_0": limits,
                        "population": {"m": len(pop["pi"]), "d": pop["h"].shape[1], "rho": pop["rho"],
                                       "Lambda": pop["lam"], "gamma": pop["gamma"]},
                        "sources": api.sources(),
                        "tolerance": "coverage ≥ 1−δ exactly (no allowance); constants 1e-9 rel"})
