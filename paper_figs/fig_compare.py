"""Forest plot of ``w2sg compare``: each loss's paired accuracy difference to CE, with its 95%
bootstrap interval, one panel per label-noise level, a row of panels per family (student mode,
hyperparameter selection — the fixed recipe, or each loss tuned on weak labels or on ground
truth — and noise model), so a loss's fixed-recipe and tuned differences sit one above the
other on a shared x-axis."""
from __future__ import annotations

from . import compare, style
from .common import FigureResult, files, skipped
from .compare import ALPHA, CONFIDENCE, N_RESAMPLES, SEED
from .compare_data import tidy_runs

NAME = "compare_forest"
TITLE = "Paired accuracy difference to CE per loss, with 95% intervals, per noise level"
BASELINE, METRIC = "ce", "acc"


def data(root) -> dict:
    """The run table and the paired comparison (``table``), or ``skip``: why there is none."""
    runs = tidy_runs(root)
    if not runs.rows:
        return {"skip": f"no run records under {root}/runs (run `w2sg run`)"}
    if BASELINE not in {r["loss"] for r in runs.rows}:
        return {"skip": f"no {BASELINE} runs to compare against"}
    table = compare.compare(runs.rows, BASELINE, METRIC, CONFIDENCE, N_RESAMPLES, SEED, ALPHA)
    if not table:
        return {"skip": f"only {BASELINE} runs: nothing to compare"}
    return {"runs": runs, "table": table}


#: how each hyperparameter selection is named in the panel titles
SELECT_LABEL = {"none": "fixed recipe", "weak": "tuned, weak-label selection",
                "oracle": "tuned, oracle selection"}
_SELECT_ORDER = {"none": 0, "weak": 1, "oracle": 2}


def family_of(row: dict) -> tuple:
    """``(mode, select, noise model)``: the rows compared together (one Holm family)."""
    return (row["mode"], row.get("select", "none"), row.get("noise_model", "symmetric"))


def family_label(family: tuple, families: list) -> str:
    """A panel-title suffix naming what differs between the families present."""
    mode, select, model = family
    parts = []
    if len({f[0] for f in families}) > 1:
        parts.append("fine-tuned" if mode == "finetune" else "linear head")
    if len({f[1] for f in families}) > 1:
        parts.append(SELECT_LABEL.get(select, select))
    if len({f[2] for f in families}) > 1:
        parts.append(f"{model} noise")
    return "".join(f" · {p}" for p in parts)


def plot(d):
    runs, table = d["runs"], d["table"]
    modes = sorted({family_of(r) for r in table},
                   key=lambda f: (f[0] != "head", _SELECT_ORDER.get(f[1], 9), f[2]))
    noises = sorted({r["noise"] for r in table})
    losses = style.order_losses(r["loss"] for r in table)
    ncols = min(len(noises), 3)
    nrows = len(modes) * -(-len(noises) // ncols)
    fig, axes = style.new_figure(ncols=ncols, nrows=nrows, width=style.PAGE_WIDTH,
                                 height=1.0 + 0.2 * len(losses) * nrows, sharey=True, sharex=True)
    ypos = {l: -i for i, l in enumerate(losses)}
    for a in axes.flat[len(modes) * len(noises):]:
        a.set_visible(False)
    for i, mode in enumerate(modes):
        for j, noise in enumerate(noises):
            ax = axes.flat[i * len(noises) + j]
            here = [r for r in table if family_of(r) == mode and r["noise"] == noise]
            title = f"noise {noise:g}" + family_label(mode, modes)
            if not here:  # this family was not run at this noise level
                ax.set_title(title, fontsize=7)
                ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center",
                        fontsize=7, color="#777777")
                ax.set_xticks([])
                continue
            ax.axvline(0, color="#777777", lw=0.8, zorder=1)
            for r in here:
                if r["mean_diff"] is None:
                    continue
                kw = style.line_kw(r["loss"])
                y = ypos[r["loss"]]
                if r["ci_low"] is not None:
                    ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=kw["color"], lw=1.4,
                            solid_capstyle="butt", zorder=2)
                ax.plot(r["mean_diff"], y, marker=kw.get("marker", "o"), color=kw["color"],
                        markerfacecolor=kw["color"] if r["significant"] else "white",
                        markeredgewidth=1.0, markersize=4.5, ls="none", zorder=3)
                if r["significant"]:
                    ax.annotate("*", (r["mean_diff"], y), textcoords="offset points", xytext=(0, 2),
                                ha="center", fontsize=8, color=kw["color"])
            ax.set_title(title, fontsize=7)
            ax.margins(x=0.15)
            ax.set_xlabel(f"accuracy − {style.label(BASELINE)} (points)", fontsize=7.5)
            ax.tick_params(labelbottom=True)
    for a in axes[:, 0]:
        a.set_yticks([ypos[l] for l in losses], [style.label(l) for l in losses])
    n_pairs = sorted({r["n_pairs"] for r in table})
    fig.suptitle(f"Paired difference to {style.label(BASELINE)} with {CONFIDENCE:.0%} bootstrap interval — "
                 f"{len(runs.sources)} run records, pairs per row: {', '.join(map(str, n_pairs))}\n"
                 f"filled, *: Holm-adjusted Wilcoxon p < {ALPHA:g} and interval excludes 0; "
                 "hollow: not significant; x-axis shared by all panels", fontsize=7.5)
    return fig


def make(root, figures_dir) -> FigureResult:
    d = data(root)
    if "skip" in d:
        return skipped(NAME, TITLE, d["skip"])
    fig = plot(d)
    runs, table = d["runs"], d["table"]
    sig = [f"{r['loss']}@{r['noise']:g}/{'/'.join(family_of(r))}: {r['mean_diff']:+.2f}"
           for r in table if r["significant"]]
    caption = (f"Paired comparison (`w2sg compare --baseline {BASELINE} --metric {METRIC}`). For each "
               "loss and label-noise level: mean over runs matched on (task, weak supervisor, seed) "
               f"of the loss's test accuracy minus {style.label(BASELINE)}'s, in points; bar: "
               f"{CONFIDENCE:.0%} stratified cluster bootstrap interval ((task, seed) clusters "
               f"resampled within each task, percentile, {N_RESAMPLES} resamples, seed {SEED}); filled "
               f"marker and *: significant (Wilcoxon signed-rank p on cluster means, Holm-adjusted "
               f"within each (mode, selection, noise model) family, < {ALPHA:g}, and the interval "
               "excludes 0); hollow: no significant "
               "difference. KL trains exactly like CE (C8), so its difference is 0. "
               f"Significant: {'; '.join(sig) if sig else 'none'}. "
               f"Missing pair members: {sum(r['n_missing'] for r in table)}. "
               f"Unreadable records: {len(runs.unreadable)}.")
    sources = list(runs.sources)
    paths = style.save_figure(fig, figures_dir, NAME, caption, sources)
    summary = {"rows": [{k: r.get(k) for k in ("mode", "select", "noise_model", "noise", "loss", "n_pairs",
                                                 "mean_diff", "ci_low", "ci_high", "p_holm", "significant")}
                        for r in table]}
    return FigureResult(NAME, TITLE, "made", "", files(paths), list(runs.sources), summary)
