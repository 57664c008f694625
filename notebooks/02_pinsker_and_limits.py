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
# # 2. Pinsker-type bounds and the limits of weak-to-strong generalization
#
# **Joint range (claim C3).** `L_f(δ) = inf{D_f(P‖Q) : TV(P,Q) = δ}` is attained on two-point
# distributions (Vajda 1972; Harremoës & Vajda 2011).  Its convex envelope `L̆_f` gives the
# sharpest Pinsker-type inequality `TV(P,Q) ≤ L̆_f⁻¹(D_f(P‖Q))`.
#
# **Limit of W2SG (claim C4).** With `err(F) = E_x TV(F*(x), F(x))`, for *every* `f`
#
# $$|err(F_{sw}) - err(F_w)| \le E_x TV(F_{sw}, F_w) \le \breve L_f^{-1}(R_f(F_{sw}, F_w)).$$
#
# The strong model can beat its supervisor only as far as it *disagrees* with it.

# %%
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
import numpy as np

from theory import get_generator
from theory.inequalities import classical_bounds, compare
from theory.joint_range import convex_envelope, tight_curve, tv_inverse

QUICK = os.environ.get("W2SG_QUICK") == "1"

# %% [markdown]
# ## Pinsker is not tight; the tight curve is computed
# For KL, Pinsker's `2δ²` is only the second-order term: the tight curve is above it.

# %%
kl = get_generator("kl")
deltas = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
tight = tight_curve(kl, deltas)
for d, L in zip(deltas, tight):
    print(f"δ = {d:.1f}   tight L_KL = {L:.4f}   Pinsker 2δ² = {2 * d * d:.4f}")

# %%
for name in ("kl", "hellinger", "js", "jeffreys", "pearson"):
    g = get_generator(name)
    for b in classical_bounds(g):
        r = compare(g, b, points=100 if QUICK else 400)
        print(f"{name:10s} {b.name:45s} valid={r['valid']!s:5s} tight={r['tight']!s:5s} "
              f"max rel. gap={r['max_relative_gap']:.3g}")

# %% [markdown]
# ## The figure
# The same picture as `w2sg figs` makes (`c3_joint_range`), computed from `theory/`.

# %%
import matplotlib

matplotlib.use("Agg") if not hasattr(sys, "ps1") else None
import matplotlib.pyplot as plt

from paper_figs import style

xs = np.linspace(0, 0.95, 60 if QUICK else 200)
fig, ax = plt.subplots(figsize=(4, 2.8))
for name in ("kl", "pearson", "hellinger", "js", "jeffreys", "tv"):
    ax.plot(xs, tight_curve(get_generator(name), xs), **style.line_kw(name, markers=False))
ax.plot(xs, 2 * xs ** 2, "k:", lw=1, label="Pinsker 2δ²")
ax.set_ylim(0, 3)
ax.set_xlabel("TV δ")
ax.set_ylabel("L_f(δ)")
ax.legend(fontsize=6, ncol=2)
plt.show()

# %% [markdown]
# ## What this says about W2SG
# Suppose the weak supervisor has error 0.30 and training drove the W2SG loss down to `R_f`.
# How much better can the strong model be?  At most `L̆_f⁻¹(R_f)`:

# %%
from theory.bounds import error_interval

for name in ("kl", "reverse_kl", "hellinger", "js", "pearson"):
    g = get_generator(name)
    cells = []
    for r_f in (0.001, 0.01, 0.05, 0.2):
        lo, hi = error_interval(g, 0.30, r_f)
        cells.append(f"R_f={r_f:<5g}→[{lo:.3f}, {hi:.3f}]")
    print(f"{name:10s} " + "  ".join(cells))

# %% [markdown]
# Fitting the weak labels *tightly* (small `R_f`) pins the strong model's error to the weak
# model's: gain requires disagreement.  Because every smooth `f` behaves like
# `(f''(1)/2) χ²` near zero (claim C2), losses differ only in how they treat *large*
# disagreements — which is exactly where label noise lives (notebook 3).
#
# ## Checking it on a synthetic world
# The numerics lab fits a strong head under each loss on a world with known truth and checks
# that the measured strong error lies in the interval (`w2sg check` does this at scale).
# Here **error** is the soft error `err(F) = E_x TV(F*(x), F(x))`, how far the predicted class
# probabilities are from the true ones (not the 0–1 error of the thresholded prediction).
#
# Two worlds, two lessons:
#
# * **A**: the strong class *contains* the weak model (the strong head sees every feature the
#   weak one sees).  The student can copy its supervisor exactly, so it does: `R_f ≈ 0`, and
#   the interval shrinks around `err_w`.  The bound is informative — it *proves* that this
#   student cannot be more than about a point better than its supervisor, whatever
#   the loss.
# * **B**: the strong class is a different, random 12-feature view.  It cannot copy the
#   supervisor, `R_f` is larger and so is the interval — still strictly inside `(0, 1)`, so
#   it says something on both sides: the student's error is within `L̆_f⁻¹(R_f)` of the
#   supervisor's.  Here the student is *worse* than its supervisor in soft error: the bound
#   caps the gain, it does not promise one.
#
# When is the interval clipped at 0 (uninformative below)?  When the radius `L̆_f⁻¹(R_f)`
# exceeds `err_w`: a good supervisor (small `err_w`) and a loose fit (large `R_f`).  For
# `kl` the radius is about `√(R_f/2)` (Pinsker), so with `err_w = 0.08` any `R_f` above
# about `0.013` already allows an error of 0.

# %%
from numerics.checks.c4 import WORLDS, c4_instance
from numerics.world import make_world

WORLD_A = make_world(3, support=64, **WORLDS[1])   # strong="full": contains the weak model
WORLD_B = make_world(5, support=64, **WORLDS[0])   # strong="random", 12 features
C4 = {}
names = ("kl", "reverse_kl", "hellinger") if QUICK else ("kl", "reverse_kl", "pearson", "hellinger", "js", "jeffreys")
for label, world in (("A", WORLD_A), ("B", WORLD_B)):
    for name in names:
        r = c4_instance(get_generator(name), world, n=200, seed=world.seed)
        C4[(label, name)] = r
        print(f"world {label}  {name:10s} err_w={r['err_w']:.3f}  err_sw={r['err_sw']:.3f}  "
              f"R_f={r['R_f']:.4f}  interval=[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]  "
              f"used {r['tightness']:.0%} of it")

# %% [markdown]
# **Takeaway.** Pinsker-type inequalities, made tight, turn the W2SG loss into a hard cap on
# the gain over the supervisor.  They do not say *which* loss gains more; that is an
# empirical question about noisy, large disagreements.
