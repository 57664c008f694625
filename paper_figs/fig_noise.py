"""C7 noise tolerance: the pull of each loss on a confidently contradicted label against
the strong logit (theory), next to the measured accuracy drop from noise 0 to 0.4 per loss
(run records).  Does the mechanism predict the experiment?"""
from __future__ import annotations

import numpy as np

from theory.loss_table import FDIV_LOSSES

from . import aggregate, readers, style
from .common import FigureResult, files, theory_source

NAME = "c7_noise_tolerance"
TITLE = "C7: pull at confident disagreement vs measured accuracy drop under noise"
GENERATORS = ("ce",) + FDIV_LOSSES  # CE and the sweep's f-divergences (the baselines have no pull formula)
W = 0.9  # the weak label says class 1 with probability 0.9


def pull(name: str, z: np.ndarray, w: float = W) -> np.ndarray:
    """``−∂_z`` of the loss at logit ``z`` (``s = σ(z)``), weak label ``w``: the pull toward
    the label (C7, :func:`theory.binary.binary_logit_grad`; CE: ``−(s − w)``)."""
    from theory.binary import binary_logit_grad, sigmoid
    s = sigmoid(z)
    if name == "ce":
        return -(s - w)
    from theory import get_generator
    return -binary_logit_grad(get_generator(name), s, w)


def limits() -> dict:
    """``w · (−lim t f'(t))``: the pull left as ``s → 0`` (``ce`` as ``kl``)."""
    from theory import get_generator
    from theory.derived import disagreement_pull
    out = {}
    for name in GENERATORS:
        gen = get_generator("kl" if name == "ce" else name)
        try:
            v = float(disagreement_pull(gen))
        except (TypeError, ValueError):
            v = float("nan")
        out[name] = -W * v + 0.0
    return out


def data(root) -> dict:
    """The theory curves (pull against z, its limits) and the measured drops per loss."""
    rows = readers.read_runs(root)
    z = np.linspace(-12, 4, 400)
    d = {"z": z, "pull": {n: pull(n, z) for n in GENERATORS}, "limits": limits(), "rows": rows,
         "drops": aggregate.noise_drop(rows) if rows else {}}
    if d["drops"]:
        losses = style.order_losses(k[2] for k in d["drops"])
        d["losses"] = losses
        d["per_loss"] = {l: [v[0] for k, v in d["drops"].items() if k[2] == l] for l in losses}
        d["hi_levels"] = sorted({v[2] for v in d["drops"].values()})
    return d


def plot(d):
    drops = bool(d["drops"])
    fig, axes = style.new_figure(ncols=2 if drops else 1, width=style.PAGE_WIDTH if drops else style.COLUMN_WIDTH,
                                 height=3.3)
    ax = axes[0, 0]
    for name in GENERATORS:
        ax.plot(d["z"], d["pull"][name], **style.line_kw(name, markers=False))
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_xlabel("strong logit z (weak label w = 0.9)")
    ax.set_ylabel("pull toward the label −∂D/∂z")
    ax.set_title("C7 (theory): pull on a contradicted label", fontsize=8.5)
    ax.set_yscale("symlog", linthresh=0.2)
    ax.set_ylim(-0.2, 20)
    style.legend_below(ax, ncol=4, fontsize=7)
    if drops:
        ax2, lim = axes[0, 1], d["limits"]
        for i, l in enumerate(d["losses"]):
            vals = d["per_loss"][l]
            kw = style.line_kw(l)
            ax2.bar(i, float(np.mean(vals)), color=kw["color"], alpha=0.55 if l != "kl" else 0.25,
                    edgecolor=kw["color"], hatch="///" if l == "kl" else None)
            ax2.plot(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, "k.", ms=3)
        ax2.set_xticks(np.arange(len(d["losses"])), [style.label(l) for l in d["losses"]],
                       rotation=45, ha="right")
        ax2.axhline(0, color="#999999", lw=0.6)
        ax2.set_ylabel(f"accuracy drop, noise 0 → {','.join(f'{h:g}' for h in d['hi_levels'])}")
        ax2.set_title("measured (bars: mean; dots: task × pair)", fontsize=8.5)
        labels = [f"{style.label(l)}: {lim[l]:.2g}" for l in d["losses"] if l in lim and np.isfinite(lim[l])]
        ax2.text(1.02, 1.0, "pull as z → −∞\n" + "\n".join(labels), transform=ax2.transAxes,
                 va="top", fontsize=7)
    fig.suptitle(TITLE, fontsize=9)
    return fig


def make(root, figures_dir) -> FigureResult:
    d = data(root)
    rows, lim = d["rows"], d["limits"]
    fig = plot(d)
    summary = {"pull_limit_w0.9": lim}
    sources = [theory_source("theory.binary.binary_logit_grad; derived.disagreement_pull")]
    message = ""
    if d["drops"]:
        keep = {l: round(float(np.mean(v)), 4) for l, v in d["per_loss"].items()}
        summary["accuracy_drop_mean_over_panels"] = keep
        keep = {l: v for l, v in keep.items() if l in lim}
        zero = [v for l, v in keep.items() if abs(lim[l]) < 1e-12]
        pulling = [v for l, v in keep.items() if abs(lim[l]) >= 1e-12]
        if zero and pulling:
            summary["prediction"] = {"mean_drop_zero_limit_pull": round(float(np.mean(zero)), 4),
                                     "mean_drop_nonzero_limit_pull": round(float(np.mean(pulling)), 4),
                                     "ranked_by_drop": sorted(keep, key=keep.get)}
        summary["accuracy_drop_per_panel"] = {f"{k[0]} | {k[1]} | {k[2]}": [round(v[0], 4), round(v[1], 4), v[2]]
                                              for k, v in d["drops"].items()}
        sources += list(rows.sources)
    else:
        message = "right panel (measured drop) omitted: no run records with noise 0 and > 0"
    caption = ("C7. Left: −∂_z D_f(σ(z)‖w) for w = 0.9 as the strong logit z moves from agreeing "
               "(z > 0) to confidently contradicting the weak label (z ≪ 0). Limits of the pull "
               f"as z → −∞: {', '.join(f'{style.label(k)} {v:.3g}' for k, v in lim.items())} "
               "(non-zero: keeps fitting a wrong label; zero: stops pulling — tolerates noise). "
               "Right: measured drop of test accuracy from noise 0 to 0.4, mean over task×pair "
               "panels (bars) and each panel (dots). If the mechanism predicts the experiment, "
               "losses with zero limiting pull drop least. "
               + (f"Measured: {style.as_text(summary.get('prediction'))}. " if summary.get("prediction") else "")
               + (message or ""))
    paths = style.save_figure(fig, figures_dir, NAME, caption, sources)
    return FigureResult(NAME, TITLE, "made", message, files(paths), sources, summary)
