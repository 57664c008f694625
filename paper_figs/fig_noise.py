"""C7 noise tolerance: the pull of each loss on a confidently contradicted label against
the strong logit (theory), next to the measured accuracy drop from noise 0 to 0.4 per loss
(run records).  Does the mechanism predict the experiment?"""
from __future__ import annotations

import numpy as np

from experiments.losses import FDIV_LOSSES

from . import aggregate, readers, style
from .common import FigureResult, files, theory_source

NAME = "c7_noise_tolerance"
TITLE = "C7: pull at confident disagreement vs measured accuracy drop under noise"
GENERATORS = ("ce",) + FDIV_LOSSES  # CE and the sweep's f-divergences (the baselines have no pull formula)
W = 0.9  # the weak label says class 1 with probability 0.9


def pull(name: str, z: np.ndarray, w: float = W) -> np.ndarray:
    """``−∂_z`` of the loss at logit ``z`` (``s = σ(z)``), weak label ``w``: the pull toward
    the label (C7: ``∂_z D_f(s‖w) = s(1−s)[f'(s/w) − f'((1−s)/(1−w))]``; CE: ``s − w``)."""
    s = 1.0 / (1.0 + np.exp(-z))
    if name == "ce":
        return -(s - w)
    from theory import get_generator
    from theory.codegen import fprime_numpy
    fp = fprime_numpy(get_generator(name))
    with np.errstate(all="ignore"):
        g = s * (1 - s) * (np.asarray(fp(s / w), dtype=float) - np.asarray(fp((1 - s) / (1 - w)), dtype=float))
    return -g


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


def make(root, figures_dir) -> FigureResult:
    rows = readers.read_runs(root)
    drops = aggregate.noise_drop(rows) if rows else {}
    fig, axes = style.new_figure(ncols=2 if drops else 1, width=2 * style.COLUMN_WIDTH if drops else style.COLUMN_WIDTH * 1.3,
                                 height=2.8)
    ax = axes[0, 0]
    z = np.linspace(-12, 4, 400)
    lim = limits()
    for name in GENERATORS:
        ax.plot(z, pull(name, z), **style.line_kw(name, markers=False))
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_xlabel("strong logit z  (weak label w = 0.9 for class 1)")
    ax.set_ylabel("pull toward the label  −∂D/∂z")
    ax.set_title("C7 (theory/): pull on a contradicted label", fontsize=7)
    ax.set_yscale("symlog", linthresh=0.2)
    ax.set_ylim(-0.2, 20)
    ax.legend(frameon=False, fontsize=5.5, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    summary = {"pull_limit_w0.9": lim}
    sources = [theory_source("codegen.fprime_numpy; derived.disagreement_pull")]
    message = ""
    if drops:
        ax2 = axes[0, 1]
        losses = style.order_losses(k[2] for k in drops)
        per_loss = {l: [v for k, v in drops.items() if k[2] == l] for l in losses}
        xs = np.arange(len(losses))
        hi_levels = sorted({v[2] for v in drops.values()})
        for i, l in enumerate(losses):
            vals = [v[0] for v in per_loss[l]]
            m = float(np.mean(vals))
            kw = style.line_kw(l)
            ax2.bar(i, m, color=kw["color"], alpha=0.55 if l != "kl" else 0.25,
                    edgecolor=kw["color"], hatch="///" if l == "kl" else None)
            ax2.plot(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, "k.", ms=3)
            summary.setdefault("accuracy_drop_mean_over_panels", {})[l] = round(m, 4)
            if l in lim and np.isfinite(lim[l]):
                ax2.annotate(f"pull→{lim[l]:.2g}", (i, 0), textcoords="offset points", xytext=(0, 3),
                             ha="center", fontsize=5, rotation=90)
        ax2.set_xticks(xs, [style.label(l) for l in losses], rotation=45, ha="right")
        ax2.axhline(0, color="#999999", lw=0.6)
        ax2.set_ylabel(f"accuracy drop, noise 0 → {','.join(f'{h:g}' for h in hi_levels)}")
        ax2.set_title(f"measured ({len(rows.sources)} run records; dots: task×pair)", fontsize=7)
        keep = {l: d for l, d in summary["accuracy_drop_mean_over_panels"].items() if l in lim}
        zero = [d for l, d in keep.items() if abs(lim[l]) < 1e-12]
        pulling = [d for l, d in keep.items() if abs(lim[l]) >= 1e-12]
        if zero and pulling:
            summary["prediction"] = {
                "mean_drop_zero_limit_pull": round(float(np.mean(zero)), 4),
                "mean_drop_nonzero_limit_pull": round(float(np.mean(pulling)), 4),
                "ranked_by_drop": sorted(keep, key=keep.get)}
            ax2.set_title(f"measured ({len(rows.sources)} run records; dots: task×pair)\n"
                          f"mean drop: zero pull {np.mean(zero):.3f}, non-zero pull {np.mean(pulling):.3f}",
                          fontsize=6.5)
        summary["accuracy_drop_per_panel"] = {f"{k[0]} | {k[1]} | {k[2]}": [round(v[0], 4), round(v[1], 4), v[2]]
                                              for k, v in drops.items()}
        sources += [f"{len(rows.sources)} records under <results root>/runs/:"] + list(rows.sources)
    else:
        message = "right panel (measured drop) omitted: no run records with noise 0 and > 0"
    fig.suptitle(TITLE, fontsize=7)
    caption = ("C7. Left: −∂_z D_f(σ(z)‖w) for w = 0.9 as the strong logit z moves from agreeing "
               "(z > 0) to confidently contradicting the weak label (z ≪ 0). Limits of the pull "
               f"as z → −∞: {', '.join(f'{style.label(k)} {v:.3g}' for k, v in lim.items())} "
               "(non-zero: keeps fitting a wrong label; zero: stops pulling — tolerates noise). "
               "Right: measured drop of test accuracy from noise 0 to 0.4, mean over task×pair "
               "panels (bars) and each panel (dots). If the mechanism predicts the experiment, "
               "losses with zero limiting pull drop least. "
               + (f"Measured: {summary.get('prediction')}. " if summary.get("prediction") else "")
               + (message or ""))
    paths = style.save_figure(fig, figures_dir, NAME, caption, sources)
    return FigureResult(NAME, TITLE, "made", message, files(paths), sources, summary)
