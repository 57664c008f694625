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
# # 3. A small weak-to-strong experiment, and how to read its result
#
# The recipe of Burns et al. (2023):
#
# 1. a **weak supervisor** is trained on ground truth;
# 2. it labels a disjoint split (soft labels); a fraction of them is flipped (label noise);
# 3. a **strong model** (a rich frozen representation + a trained head) learns from the weak
#    labels with some loss;
# 4. we compare it to the weak supervisor and to the **strong ceiling** (the same head trained
#    on ground truth): `PGR = (acc_w2s − acc_weak) / (acc_ceiling − acc_weak)`.
#
# To run in seconds, this notebook uses the synthetic world of the numerics lab (logistic
# teacher, a weak model that sees 2 of 6 features, a strong model that sees all of them).
# The real runs (`w2sg run`: MiniLM encoders on VADER and fortunes) produce records in the same
# shape; the last cell reads them if you have run them.

# %%
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
import numpy as np

from numerics.fit import fit_head
from numerics.world import make_world
from paper_figs import aggregate, style
from theory import get_generator

QUICK = os.environ.get("W2SG_QUICK") == "1"
LOSSES = ["kl", "pearson", "hellinger", "reverse_kl"] if QUICK else \
         ["kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl"]
NOISES = [0.0, 0.2, 0.4]
SEEDS = [0, 1] if QUICK else [0, 1, 2]
N = 300

# %% [markdown]
# ## The pieces
# `world.weak(x)` is the weak supervisor's soft prediction (two columns: class 0, class 1);
# `world.strong_features(x)` is `h_s(x)`; `fit_head(loss, H, W)` minimises the empirical
# `R_f(g∘h_s, F_w)` over the head `g`.  Accuracy is measured against sampled true labels on a
# large test sample.

# %%
def accuracy(p1, y):
    return float(np.mean((p1 > 0.5) == (y == 1)))


def flip(w, noise, rng):
    w = w.copy()
    idx = rng.permutation(len(w))[: int(round(noise * len(w)))]
    w[idx] = w[idx, ::-1]
    return w


def one_run(seed):
    world = make_world(seed, d=6, noise=0.05, weak_features=2, strong="full", support=None)
    rng = np.random.default_rng(seed)
    x_train, x_test = world.sample_x(N, rng), world.sample_x(5000, rng)
    y_train = world.sample_labels(x_train, rng)
    y_test = world.sample_labels(x_test, rng)
    H, Ht = world.strong_features(x_train), world.strong_features(x_test)
    weak_acc = accuracy(world.weak(x_test)[:, 1], y_test)
    onehot = np.stack([1 - y_train, y_train], -1).astype(float) * 0.998 + 0.001
    ceiling = fit_head(get_generator("kl"), H, onehot, l2=1e-3, seed=seed)
    ceil_acc = accuracy(ceiling.probs(Ht)[:, 1], y_test)
    rows = []
    for noise in NOISES:
        labels = flip(world.weak(x_train), noise, np.random.default_rng([seed, 1]))
        for loss in LOSSES:
            fit = fit_head(get_generator(loss), H, labels, l2=1e-3, seed=seed)
            rows.append({"task": "synthetic", "pair": "2 features→6 features", "loss": loss,
                         "noise": noise, "seed": seed, "acc": accuracy(fit.probs(Ht)[:, 1], y_test),
                         "weak_acc": weak_acc, "ceiling_acc": ceil_acc, "converged": fit.converged})
    for r in rows:
        r["pgr"] = aggregate.pgr(r["acc"], r["weak_acc"], r["ceiling_acc"])
    return rows


rows = [r for s in SEEDS for r in one_run(s)]
print(len(rows), "runs;", sum(not r["converged"] for r in rows), "unconverged")

# %% [markdown]
# ## Reading the result
# These rows have the same keys as the rows `paper_figs.readers.read_runs` makes from the
# real run records, so the same aggregation applies: mean ± std over seeds, PGR per run.

# %%
acc = aggregate.summarize(rows, "acc")
pgr = aggregate.summarize(rows, "pgr")
refs = aggregate.references(rows)[("synthetic", "2 features→6 features")]
print(f"weak supervisor {refs['weak'][0]:.3f}   strong ceiling {refs['ceiling'][0]:.3f}")
print(f"{'loss':12s}" + "".join(f"  noise {n:<4g} acc (PGR)  " for n in NOISES))
for loss in style.order_losses(LOSSES):
    cells = []
    for n in NOISES:
        m, s, _ = acc[("synthetic", "2 features→6 features", loss, n)]
        p, _, _ = pgr[("synthetic", "2 features→6 features", loss, n)]
        cells.append(f"  {m:.3f}±{s:.3f} ({p:+.2f})  ")
    print(f"{loss:12s}" + "".join(cells))

# %%
import matplotlib

matplotlib.use("Agg") if not hasattr(sys, "ps1") else None
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4, 2.8))
for loss in style.order_losses(LOSSES):
    m = [acc[("synthetic", "2 features→6 features", loss, n)][0] for n in NOISES]
    s = [acc[("synthetic", "2 features→6 features", loss, n)][1] for n in NOISES]
    ax.errorbar(NOISES, m, yerr=s, capsize=2, **style.line_kw(loss))
ax.axhline(refs["weak"][0], **style.REFERENCE["weak"], label="weak")
ax.axhline(refs["ceiling"][0], **style.REFERENCE["ceiling"], label="ceiling")
ax.set_xlabel("label-noise level")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=6)
plt.show()

# %% [markdown]
# How to read it:
#
# * In this world the strong features *contain* the weak model's (the weak model is a
#   logistic head on 2 of the 6 coordinates the strong head sees).  Claim C2 then says every
#   strictly convex loss has the same minimiser `F_sw = F_w`: at noise 0 the student copies
#   its supervisor and PGR ≈ 0, whatever the loss.  Gain needs a strong class that *cannot*
#   represent the weak model's mistakes — try `strong="random", strong_dim=24` in `one_run`.
# * **PGR near 0** means the student only imitated its supervisor; **PGR near 1** means it
#   recovered the ceiling.  Claim C4 (notebook 2) says the gain is capped by the disagreement.
# * **Noise tolerance** (claim C7): losses whose pull on a confidently contradicted label
#   vanishes (`reverse_kl`, `pearson`, `hellinger`, `js`) should lose less accuracy as noise
#   grows than `kl`/CE and `jeffreys`, which keep pulling.  Compare the columns above: does the
#   mechanism predict what happened here?  The answer can be "no" — report it either way.
#
# ## The real experiment
# `w2sg run --quick` trains strong heads on frozen MiniLM features for the offline tasks and
# writes one JSON record per run under `results/runs/`; `w2sg figs` turns them into the
# figures.  If records exist, the cell below reads them with the same reader the figures use.

# %%
from paper_figs import readers
from w2sg.records import results_root

real = readers.read_runs(results_root())
print(f"{len(real)} real run records under {results_root() / 'runs'}")
if real:
    table = aggregate.summarize(real, "acc")
    for key, (m, s, n) in list(table.items())[:12]:
        print(key, f"{m:.3f} ± {s:.3f} (n={n})")
