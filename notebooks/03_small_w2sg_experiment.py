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
# 1. a **weak supervisor** is trained on a little ground truth;
# 2. it labels a disjoint split (soft labels); a fraction `noise` of them is flipped
#    (`p → 1 − p`: label noise on top of the supervisor's own mistakes);
# 3. a **strong student** (a rich frozen representation + a trained head) learns from those
#    weak labels with some loss;
# 4. we compare it to the weak supervisor and to the **strong ceiling** (the same head trained
#    on ground truth of the same split).
#
# This notebook runs a slice of the paper's default sweep on real data, offline: the task
# `vader_cls` (is a movie-review snippet positive? VADER's human ratings), the weak model
# **MiniLM-L6 layer 0** (token embeddings, mean-pooled: 384 features, no context) and the
# strong model **all 7 hidden states of MiniLM-L6** (2,688 features), linear heads.  The
# embeddings come from one MiniLM pass over the task's 4,000 texts (about a minute the first
# time, then cached under `~/.cache/w2sg`); each run trains one linear head in seconds.
#
# The runs are made by `w2sg run`'s own runner and stored as JSON records in a folder of
# their own; everything below reads them back from that folder.  The settings are those of
# the default sweep, so these records are cells of it.

# %%
import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # run from notebooks/ without installing
import numpy as np
from scipy import stats

from experiments.runner import DEFAULT_SWEEP, run_sweep
from paper_figs import readers, style
from w2sg.records import results_root

QUICK = os.environ.get("W2SG_QUICK") == "1"
LOSSES = ["ce", "tv", "js"]
NOISES = [0.0, 0.4] if QUICK else [0.0, 0.2, 0.4]
SEEDS = 3 if QUICK else 5
SWEEP = {**DEFAULT_SWEEP, "tasks": ["vader_cls"], "weak": ["minilm-l6-layer0"],
         "losses": LOSSES, "noise": NOISES, "seeds": SEEDS}
OUT = results_root() / "notebook03"   # $W2SG_RESULTS (or ./results) / notebook03
print(f"{SEEDS} seeds × {len(LOSSES)} losses × {len(NOISES)} noise levels → {OUT}")

# %% [markdown]
# ## Run (resumable)
# One *reference* per seed (weak supervisor + strong ceiling), then one student per loss and
# noise level.  A seed fixes the splits, the weak supervisor and which labels are flipped, so
# the losses are compared on exactly the same data: differences between losses are *paired*
# by seed.  Rerunning the cell skips every run whose record exists.

# %%
info = run_sweep(SWEEP, OUT, workers=2, quiet=True)
print(f"{info['executed']} runs executed, {info['skipped']} already recorded, "
      f"{info['total_s']:.0f} s")

# %%
rows = readers.read_runs(OUT)          # the same reader the paper figures use
assert not rows.problems, rows.problems
print(f"{len(rows)} run records under {rows.folder}")
acc = {(r["loss"], r["noise"], r["seed"]): r["acc"] for r in rows}
pgr = {(r["loss"], r["noise"], r["seed"]): r["pgr"] for r in rows}
weak = {r["seed"]: r["weak_acc"] for r in rows}
ceiling = {r["seed"]: r["ceiling_acc"] for r in rows}
seeds = sorted(weak)


def interval(values, confidence=0.95):
    """Mean and Student-t interval over seeds (few values: t, not a normal or a bootstrap)."""
    v = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


w, c = interval([weak[s] for s in seeds]), interval([ceiling[s] for s in seeds])
print(f"weak supervisor {w[0]:.3f} [{w[1]:.3f}, {w[2]:.3f}]   "
      f"strong ceiling {c[0]:.3f} [{c[1]:.3f}, {c[2]:.3f}]   (mean, 95% interval over {len(seeds)} seeds)")
print(f"\n{'loss':6s}" + "".join(f"   {f'noise {n:g}: accuracy':21s}  {'PGR':20s}" for n in NOISES))
SUMMARY = {}
for loss in LOSSES:
    cells = []
    for n in NOISES:
        a = interval([acc[(loss, n, s)] for s in seeds])
        p = interval([pgr[(loss, n, s)] for s in seeds])
        SUMMARY[(loss, n)] = {"acc": a, "pgr": p}
        cells.append(f"   {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}]  {p[0]:+.2f} [{p[1]:+.2f}, {p[2]:+.2f}]")
    print(f"{loss:6s}" + "".join(cells))

# %% [markdown]
# ## How to read PGR
# `PGR = (acc_student − acc_weak) / (acc_ceiling − acc_weak)`, per run (per seed):
#
# * **0**: the student only imitated its supervisor; **1**: it recovered the whole gap to the
#   ceiling; **negative**: it is *worse* than the supervisor that taught it.
# * The denominator is small: here the gap is about 10 accuracy points, so **one point of
#   accuracy moves PGR by about 0.1**, and one test example (1/800 of the test split) by
#   0.012.  A PGR of 0.25 means "2–3 points above the supervisor".  PGR is a ratio of
#   noisy numbers: read it with its interval, and over several seeds.
#
# **At noise 0** the student beats its weak supervisor: every loss's mean PGR is above 0, and
# CE's in every seed (its interval excludes 0) — yet far from 1.  The strong head, fitting *soft* labels
# of a weaker model on features that do not contain that model's errors, generalizes past
# them — this is weak-to-strong generalization.  (If the strong features *contained* the weak
# model — e.g. a world where the weak model sees 2 of the strong model's 6 features — every
# strictly convex loss would be minimised by copying the supervisor, claim C2, and PGR would
# be 0 whatever the loss.)  At noise 0 the losses agree within about two points: near
# agreement every smooth f-divergence is the same χ² (claim C2).

# %%
for loss in LOSSES:
    print(f"{loss}: PGR at noise 0 per seed", [round(pgr[(loss, 0.0, s)], 2) for s in seeds])

# %% [markdown]
# ## The losses separate as noise grows
# With 40% of the weak labels flipped, the supervisor's signal is weak and the loss decides
# what the student fits.  CE (= the `kl` generator) keeps pulling towards every label, flipped
# or not — its pull on a confidently contradicted label does not vanish (claim C7) — and the
# student ends *below* its supervisor.  TV and JS stop pulling on labels the student confidently
# contradicts: they keep most of the accuracy.  Paired by seed (same splits, same flipped
# labels):

# %%
HIGH = max(NOISES)
DIFF = {}
for loss in ("tv", "js"):
    for n in NOISES:
        d = [acc[(loss, n, s)] - acc[("ce", n, s)] for s in seeds]
        DIFF[(loss, n)] = {"mean": interval(d), "per_seed": d}
        m, lo, hi = interval(d)
        print(f"{loss} − ce at noise {n:g}: {100 * m:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]"
              f"   per seed {[round(100 * x, 1) for x in d]}")
DROP = {loss: SUMMARY[(loss, 0.0)]["acc"][0] - SUMMARY[(loss, HIGH)]["acc"][0] for loss in LOSSES}
print("accuracy lost from noise 0 to", HIGH, {k: round(v, 3) for k, v in DROP.items()})

# %%
import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg") if not hasattr(sys, "ps1") else matplotlib.get_backend())
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(3.5, 2.6))
for k, loss in enumerate(LOSSES):
    m = np.array([SUMMARY[(loss, n)]["acc"] for n in NOISES])
    shift = (k - 1) * 0.008  # side by side, so the intervals do not hide each other
    ax.errorbar(np.array(NOISES) + shift, m[:, 0], yerr=[m[:, 0] - m[:, 1], m[:, 2] - m[:, 0]],
                capsize=2, **style.line_kw(loss))
ax.axhline(w[0], **style.REFERENCE["weak"], label="weak supervisor")
ax.axhline(c[0], **style.REFERENCE["ceiling"], label="strong ceiling")
ax.set_xlabel("fraction of weak labels flipped")
ax.set_ylabel("test accuracy")
ax.set_xticks(NOISES)
ax.legend(fontsize=6, loc="lower left")
ax.set_title(f"vader_cls, mean and 95% interval over {len(seeds)} seeds", fontsize=7)
plt.show()

# %% [markdown]
# What to take away:
#
# * **Weak-to-strong generalization is real here but partial**: at noise 0 the student closes
#   a tenth to a third of the gap (mean PGR ≈ 0.1–0.3), whatever the loss.
# * **The loss matters once labels are noisy**: at 40% flipped labels TV is about 5 points
#   above CE (every seed agrees), JS a few points (every seed agrees too); CE falls well
#   below its supervisor (negative PGR) and loses the most accuracy of the three.  The mechanism is the pull at confident disagreement (claim C7,
#   notebook 1's last column).
# * **Intervals over seeds**: a few seeds give wide intervals on accuracy (the seeds differ in
#   their splits); *paired* differences between losses are much tighter, because the
#   seed-to-seed variation is shared.  `w2sg compare` does this for the whole sweep (bootstrap
#   intervals and Holm-corrected tests).
#
# To go further: add `"reverse_kl"`, `"hellinger"` or a generator of your own (`"-log(t)"`,
# `"alpha:0.5"`) to `LOSSES`, or `"minilm-l3"` to the weak models, and rerun — finished runs
# are skipped.  `w2sg run` makes the full sweep; `w2sg figs --out <folder>` draws its figures.
