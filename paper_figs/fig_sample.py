"""C6 sample complexity: excess risk against n with the bound, and its empirical coverage."""
from __future__ import annotations

import numpy as np

from . import readers, style
from .common import FigureResult, files, skipped

NAME = "c6_sample_complexity"
TITLE = "C6: excess risk vs n with the bound and its coverage"


def make(root, figures_dir) -> FigureResult:
    c6 = readers.read_checks(root).get("C6")
    pts = readers.c6_points(c6) if c6 else []
    if not pts:
        return skipped(NAME, TITLE, f"no C6 check record with per-n results under {root}/checks "
                                    "(run `w2sg check`)")
    gens = style.order_losses(p["generator"] for p in pts)
    fig, axes = style.new_figure(ncols=2, width=2 * style.COLUMN_WIDTH, height=2.7)
    ax, axc = axes[0, 0], axes[0, 1]
    summary = {}
    deltas = sorted({p["delta"] for p in pts if p["delta"] is not None})
    for g in gens:
        gp = sorted((p for p in pts if p["generator"] == g), key=lambda p: p["n"])
        n = np.array([p["n"] for p in gp])
        kw = style.line_kw(g)
        ax.plot(n, [p["excess_mean"] for p in gp], **kw)
        if any(p["excess_q"] is not None for p in gp):
            ax.plot(n, [p["excess_q"] if p["excess_q"] is not None else np.nan for p in gp],
                    color=kw["color"], ls="none", marker="_", ms=6)
        if any(p["bound"] is not None for p in gp):
            ax.plot(n, [p["bound"] if p["bound"] is not None else np.nan for p in gp], color=kw["color"],
                    ls="--", lw=1)
        if any(p["coverage"] is not None for p in gp):
            axc.plot(n, [p["coverage"] if p["coverage"] is not None else np.nan for p in gp],
                     **{**kw, "label": style.label(g)})
        summary[g] = [{"n": p["n"], "excess": p["excess_mean"], "bound": p["bound"],
                       "coverage": p["coverage"]} for p in gp]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (weak-labelled examples)")
    ax.set_ylabel("excess risk R_f(ĝ) − inf R_f")
    ax.set_title("median (solid), max over draws (—), bound (dashed)", fontsize=6.5)
    ax.legend(frameon=False, fontsize=5, loc="lower left", ncol=2)
    for d in deltas:
        axc.axhline(1 - d, color="#999999", ls=":", lw=1, label=f"1 − δ = {1 - d:g}")
    axc.set_xscale("log")
    axc.set_ylim(0, 1.05)
    axc.set_xlabel("n")
    axc.set_ylabel("coverage")
    axc.set_title(f"coverage — {c6['source']}", fontsize=6.5)
    fig.suptitle("C6 sample complexity — from w2sg check records", fontsize=7)
    caption = ("C6. Left: excess population risk of the ERM head over the best head against the "
               "number n of weak-labelled examples (median over repeated draws, bars: the largest draw; dashes: the "
               "high-probability bound 4L_f ℜ_n + 2B_f √(ln(2/δ)/(2n))). Right: fraction of "
               f"draws in which the bound held, against 1 − δ. Data: {summary}")
    paths = style.save_figure(fig, figures_dir, NAME, caption, [c6["source"]])
    return FigureResult(NAME, TITLE, "made", "", files(paths), [c6["source"]], summary)
