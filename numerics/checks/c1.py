"""C1: convex conjugate, Fenchel–Young, biconjugacy, variational form attained at f'(p/q).

For each generator (named and typed):

* Fenchel–Young ``f(t) + f*(u) − t u ≥ 0`` on random ``t > 0`` (log-uniform) and random
  ``u`` in the domain of ``f*`` (``theory.conjugate.conjugate_numpy``);
* attainment ``f(t) + f*(f'(t)) − t f'(t) = 0`` (the sup defining ``f*`` is attained at ``t``);
* biconjugacy ``f**(t) = sup_u (t u − f*(u)) = f(t)``: the supremum is computed
  numerically (bounded scalar search over ``u`` in the domain), never from ``f'``;
* symbolic vs numeric conjugate agree (``conjugate_numeric`` bisection);
* variational form on random ``P, Q`` (full support):
  ``E_P[T] − E_Q[f*(T)] = D_f(P‖Q)`` at ``T = f'(p/q)`` and ``≤ D_f`` for perturbed ``T``.
"""
from __future__ import annotations

import math
import time

import numpy as np
from scipy.optimize import minimize_scalar

from theory.codegen import f_numpy, fprime_numpy
from theory.conjugate import conjugate, conjugate_numeric, conjugate_numpy, optimal_critic

from .. import api
from ..result import CheckResult, status_for
from .common import generators, random_dist

__all__ = ["check_c1", "check_generator"]


def _biconj(fstar, t, hi, hi_closed):
    """``sup_u (t u − f*(u))`` by bracket expansion (the objective is concave in u)."""
    def val(u):
        v = t * u - float(fstar(np.array([u]))[0])
        return v if math.isfinite(v) else -math.inf
    top = hi if math.isfinite(hi) else math.inf
    edge = top if hi_closed else top - 1e-13 * (1 + abs(top))
    lo, up = -1.0, min(1.0, edge)
    # expand until the concave objective turns down; the cap is far beyond any f'(t) for
    # t ≤ e⁴ (exp-type generators reach f'(t) ≈ e⁵⁵: a 1e12 cap stopped short of the maximiser)
    while val(lo) > val(lo / 2 if lo < -1 else lo + 0.5) and lo > -1e250:
        lo *= 2
    while math.isfinite(top) is False and val(up) > val(up / 2 if up > 1 else up - 0.5) and up < 1e250:
        up *= 2
    if math.isfinite(top):
        up = edge
    best = max(val(lo), val(up))
    res = minimize_scalar(lambda u: -val(u) if math.isfinite(val(u)) else 1e300,
                          bounds=(lo, up), method="bounded", options={"xatol": 1e-13, "maxiter": 2000})
    return max(best, -res.fun)


def check_generator(gen, rng: np.random.Generator, n_points: int = 40) -> dict:
    """All C1 margins for one generator: a dict of worst slacks (tolerance-adjusted; ``None``
    where a sub-check had no admissible instance — never a slack for nothing checked) and
    ``n_checked``, the number of instances actually checked."""
    f, fp = f_numpy(gen), fprime_numpy(gen)
    conj = conjugate(gen)
    fstar = conjugate_numpy(gen)
    t = np.exp(rng.uniform(-4, 4, n_points))
    # u in the domain: a spread of f'(t') values plus some well below
    u = np.concatenate([fp(np.exp(rng.uniform(-6, 6, n_points // 2))),
                        rng.uniform(-10, 0, n_points - n_points // 2)])
    u = u[conj.contains(u)]
    with np.errstate(all="ignore"):
        T_, U_ = np.meshgrid(t, u, indexing="ij")
        gap = f(T_) + fstar(U_) - T_ * U_
        scale = 1 + np.abs(T_ * U_) + np.abs(f(T_))
    fy = float(np.nanmin(gap + 1e-9 * scale))
    # attainment
    ut = fp(t)
    ok = conj.contains(ut)
    att_err = np.abs(f(t[ok]) + fstar(ut[ok]) - t[ok] * ut[ok]) / (1 + np.abs(t[ok] * ut[ok]))
    attain = float(1e-7 - att_err.max()) if att_err.size else None
    # biconjugacy on a few points
    bic = []
    for ti in t[:8]:
        val = _biconj(fstar, ti, conj.hi, conj.hi_closed)
        bic.append(abs(val - float(f(np.array([ti]))[0])) / (1 + abs(float(f(np.array([ti]))[0]))))
    biconj = float(1e-5 - max(bic))
    # symbolic vs numeric conjugate
    if conj.symbolic:
        uu = u[: 10]
        sym_num = float(1e-6 - np.max(np.abs(fstar(uu) - conjugate_numeric(gen, uu)) / (1 + np.abs(fstar(uu)))))
    else:
        sym_num = None
    # variational form
    var_eq, var_le = [], []
    for _ in range(6):
        k = int(rng.integers(2, 7))
        p, q = random_dist(rng, k, "plain"), random_dist(rng, k, "plain")
        d = float(api.divergence(gen, p, q))
        Tc = optimal_critic(gen, p, q)
        if not np.all(conj.contains(Tc)):
            continue
        val = float(p @ Tc - q @ fstar(Tc))
        var_eq.append(abs(val - d) / (1 + abs(d)))
        for _ in range(3):
            Tp = Tc + rng.normal(0, 0.3, k)
            Tp = np.where(conj.contains(Tp), Tp, Tc)
            var_le.append(d - float(p @ Tp - q @ fstar(Tp)) + 1e-9 * (1 + abs(d)))
    return {"fenchel_young": fy, "attained": attain, "biconjugate": biconj,
            "symbolic_vs_numeric": sym_num,
            "variational_equality": float(1e-7 - max(var_eq)) if var_eq else None,
            "variational_upper": float(min(var_le)) if var_le else None,
            "conjugate_symbolic": bool(conj.symbolic),
            "n_checked": int(len(t) * len(u) + att_err.size + len(bic)
                             + (min(10, len(u)) if sym_num is not None else 0)
                             + len(var_eq) + len(var_le))}


def check_c1(quick: bool = True, seed: int = 0) -> CheckResult:
    start = time.time()
    rng = np.random.default_rng(seed)
    per, instances, worst = {}, 0, math.inf
    for gen in generators(quick):
        r = check_generator(gen, rng, 20 if quick else 60)
        per[gen.name] = r
        instances += r["n_checked"]
        worst = min(worst, *(v for k, v in r.items() if isinstance(v, float)))
    return CheckResult("C1", instances, worst, status_for(worst), time.time() - start,
                       {"per_generator": per, "sources": api.sources(),
                        "tolerance": "FY 1e-9·(1+|tu|+|f|); attainment 1e-7 rel; biconjugate 1e-5 rel; "
                                     "variational 1e-7 rel"})
