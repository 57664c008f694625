# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. f-divergences, generators, conjugates and the variational form
#
# This notebook follows the conventions of `docs/THEORY.md`: for a convex `f` on `(0, ∞)` with
# `f(1) = 0`,
#
# $$D_f(P\|Q) = \sum_c q_c\, f(p_c / q_c),$$
#
# and the W2SG loss puts the **strong** model first: `R_f(F_sw, F_w) = E_x D_f(F_sw(x) ‖ F_w(x))`.
# So the generator `kl` is `f(t) = −log t` (it gives KL(weak‖strong), the cross-entropy up to a
# constant) and `reverse_kl` is `f(t) = t log t`.
#
# Everything here is computed by the toolkit's symbolic core `theory/` (sympy) and its
# generated numpy functions.  Reading time: ~10 minutes.

# %%
import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # run from notebooks/ without installing
import numpy as np
import sympy as sp

from theory import NAMED, get_generator
from theory.derived import f2_at_1, disagreement_pull, dual, is_bounded

QUICK = os.environ.get("W2SG_QUICK") == "1"

# %% [markdown]
# ## Named generators
# The table below is derived, not typed in: `f''(1)` is the local χ² constant (claim C2),
# the *dual* `f◇(t) = t f(1/t)` swaps the arguments, and `lim t f'(t)` as `t → 0` is the
# pull of the loss on a confidently contradicted label (claim C7).

# %%
rows = []
for name in NAMED:
    g = get_generator(name)
    rows.append((name, str(g.expr), str(f2_at_1(g)), str(sp.simplify(dual(g))),
                 str(disagreement_pull(g)), is_bounded(g)))
print(f"{'name':11s} {'f(t)':34s} {'f″(1)':6s} {'dual f◇(t)':30s} {'lim t f′(t)':10s} bounded")
for r in rows:
    print(f"{r[0]:11s} {r[1][:34]:34s} {r[2]:6s} {r[3][:30]:30s} {r[4]:10s} {r[5]}")

# %% [markdown]
# Note `kl` and `reverse_kl` are each other's duals, and `pearson` / `neyman` too:
# `D_{f◇}(P‖Q) = D_f(Q‖P)`.  Let us check that numerically.

# %%
from theory.divergence import divergence

rng = np.random.default_rng(0)
p, q = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
print("KL(S‖W) via reverse_kl :", float(divergence(get_generator("reverse_kl"), p, q)))
print("KL(W‖S) via kl, swapped:", float(divergence(get_generator("kl"), q, p)))
print("scipy KL(p‖q)          :", float(np.sum(p * np.log(p / q))))

# %% [markdown]
# ## Your own generator
# Any expression in `t` is accepted, checked for convexity and `f(1) = 0`, and everything
# above is derived for it automatically — or refused with a clear reason.  Change the string
# below and re-run the notebook.

# %%
MY_F = "(t-1)**2/(t+1)"   # try "alpha:0.5", "t*log(t) - log(t)", "abs(t-1)**1.5"
mine = get_generator(MY_F)
print(mine)
print("f''(1) =", f2_at_1(mine), "  lim t f'(t) =", disagreement_pull(mine),
      "  bounded:", is_bounded(mine))
print("D_f(p‖q) =", float(divergence(mine, p, q)))

# %%
from theory import GeneratorError

for bad in ("t**3 - sin(t)", "log(t)", "t**2"):
    try:
        get_generator(bad)
    except GeneratorError as exc:
        print(f"{bad!r:16s} refused: {exc}")

# %% [markdown]
# ## Convex conjugate and the variational form (claim C1)
# `f*(u) = sup_t (u t − f(t))`; the toolkit derives it symbolically with its effective domain.
# The variational form `D_f(P‖Q) = sup_T E_P[T] − E_Q[f*(T)]` is attained at the critic
# `T = f'(p/q)` — the idea behind f-GANs (Nowozin et al. 2016).

# %%
from theory.conjugate import conjugate, conjugate_numpy, optimal_critic

for name in ("kl", "reverse_kl", "pearson", "hellinger", MY_F):
    c = conjugate(get_generator(name))
    print(f"{name:16s} f*(u) = {c.expr}   on u ∈ ({c.lo}, {c.hi}{']' if c.hi_closed else ')'}")

# %%
for name in ("kl", "pearson", "js", MY_F):
    g = get_generator(name)
    T = optimal_critic(g, p, q)
    fstar = conjugate_numpy(g)
    variational = float(np.sum(p * T) - np.sum(q * fstar(T)))
    # any other critic gives less: perturb the optimum
    worse = float(np.sum(p * (T + 0.1)) - np.sum(q * fstar(T + 0.1)))
    print(f"{name:16s} D_f = {float(divergence(g, p, q)):.6f}   sup at f'(p/q): {variational:.6f}"
          f"   perturbed critic: {worse:.6f}")

# %% [markdown]
# ## Fenchel–Young, pictured
# `f(t) + f*(u) ≥ t u` with equality when `u = f'(t)`: the conjugate is the envelope of
# the tangent lines.

# %%
import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg") if not hasattr(sys, "ps1") else matplotlib.get_backend())
import matplotlib.pyplot as plt

from theory.codegen import f_numpy, fprime_numpy

g = get_generator("kl")
f, fp = f_numpy(g), fprime_numpy(g)
t = np.linspace(0.2, 3, 200)
fig, ax = plt.subplots(figsize=(4, 2.6))
ax.plot(t, f(t), lw=2, label="f(t) = −log t")
for t0 in (0.4, 1.0, 2.0):
    ax.plot(t, f(t0) + fp(t0) * (t - t0), lw=0.8, ls="--", label=f"tangent at {t0}")
ax.set_ylim(-1.5, 2)
ax.legend(fontsize=7)
ax.set_xlabel("t")
plt.show()

# %% [markdown]
# **Takeaway.** A generator `f` fixes a loss; its local constant `f''(1)`, its conjugate, its
# boundedness and its pull at confident disagreement are all computable from `f` alone.
# Notebook 2 asks what these divergences can and cannot say about weak-to-strong
# generalization.
