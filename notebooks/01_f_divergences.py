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
from w2sg.theory_cli import readable  # the shortest equal form `w2sg derive` prints

QUICK = os.environ.get("W2SG_QUICK") == "1"

# %% [markdown]
# ## Named generators
# The table below is derived, not typed in: `f''(1)` is the local χ² constant (claim C2),
# the *dual* `f◇(t) = t f(1/t)` swaps the arguments, and `lim t f'(t)` as `t → 0` is the
# pull of the loss on a confidently contradicted label (claim C7).

# %%
W = 0.9  # the weak label's probability of the class the student contradicts (C7 figure)


def show(x):
    """sympy value as printed in the table: — for undefined, ∞ for infinite."""
    if x is None:
        return "—"
    return {"oo": "∞", "-oo": "-oo"}.get(str(x), str(x))


rows = []
for name in NAMED:
    g = get_generator(name)
    lim = disagreement_pull(g)
    pull = -W * lim                      # what the C7 figure plots
    rows.append((name, str(g.expr), show(f2_at_1(g)), readable(str(dual(g))),
                 show(lim), "∞" if pull == sp.oo else f"{float(pull):g}", is_bounded(g)))
WIDTH = max(len(r[1]) for r in rows)     # columns as wide as their longest entry: nothing cut
DW = max(len(r[3]) for r in rows)
print(f"{'name':11s} {'f(t)':{WIDTH}s} {'f″(1)':6s} {'dual f◇(t)':{DW}s} {'lim t f′(t)':11s} "
      f"{'pull at w=0.9':13s} bounded")
for r in rows:
    print(f"{r[0]:11s} {r[1]:{WIDTH}s} {r[2]:6s} {r[3]:{DW}s} {r[4]:11s} {r[5]:13s} {r[6]}")

# %% [markdown]
# Reading the table:
#
# * **`f″(1)` of `tv` is `—`**: `f(t) = |t − 1|/2` has a kink at `t = 1` (slopes −1/2 and
#   +1/2), so it is not twice differentiable there and has no local χ² constant: TV is the one
#   named divergence that does *not* behave like `f″(1)/2 · χ²` between nearby distributions
#   (it is linear in the distance, not quadratic).
# * **The sign of the pull.**  For a binary head `s = σ(z)` and weak label `w`, the gradient of
#   the loss as the student confidently contradicts the label (`s → 0`) tends to
#   `∂_z D_f(s‖w) → w · lim t f′(t)`.  Gradient *descent* moves `z` by `−∂_z`, so the
#   pull toward the label is `−w · lim t f′(t)`: the column `lim t f′(t)` is negative (`−1` for
#   `kl`, i.e. cross-entropy) when the loss keeps pulling, and the last column — the quantity
#   the C7 figure (`c7_noise_tolerance`) plots, for `w = 0.9` — is the same number with the
#   sign of a pull: `0.9` for `kl`.  Both say the same thing; `0` in both means the loss stops
#   pulling on labels the student confidently contradicts (it tolerates flipped labels), `∞`
#   (`neyman`) means an unbounded pull.

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
