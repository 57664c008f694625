"""C6 sample complexity: excess risk against n with the bound, and its empirical coverage."""
from __future__ import annotations

import numpy as np

from . import readers, style
from .common import FigureResult, files, skipped

NAME = "c6_sample_complexity"
TITLE = "C6: excess risk vs n with the bound and its coverage"


def data(root) -> dict:
    c6 = readers.read_checks(root).get("C6")
    pts = readers.c6_points(c6) if c6 else []
    return {"c6": c6, "pts": pts, "gens": style.order_losses(p["generator"] for p in pts),
            "deltas": sorted({p["delta"] for p in pts if p["delta"] is not None})}


def plot(d):
    fig, axes = style.new_figure(ncols=2, width=style.PAGE_WIDTH, height=3.4)
    ax, axc = axes[0, 0], axes[0, 1]
    gens = d["gens"]
    for k, g in enumerate(gens):
        gp = sorted((p for p in d["pts"] if p["generator"] == g), key=lambda p: p["n"])
        n = np.array([p["n"] for p in gp], dtype=float)
        kw = style.line_kw(g)
        ax.plot(n, [p["excess_mean"] for p in gp], **kw)
        if any(p["excess_q"] is not None for p in gp):
            ax.plot(n, [p["excess_q"] if p["excess_q"] is not None else np.nan for p in gp],
                    color=kw["color"], ls="none", marker="_", ms=6)
        if any(p["bound"] is not None for p in gp):
            ax.plot(n, [p["bound"] if p["bound"] is not None else np.nan for p in gp], color=kw["color"],
                    ls="--", lw=1)
        if any(p["coverage"] is not None for p in gp):  # dodged along n so equal curves stay apart
            dodge = 1.0 + 0.06 * (k - (len(gens) - 1) / 2)
            axc.plot(n * dodge, [p["coverage"] if p["coverage"] is not None else np.nan for p in gp],
                     **{**kw, "label": style.label(g), "ls": "-", "lw": 0.8, "alpha": 0.9})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (weak-labelled examples)")
    ax.set_ylabel("excess risk R_f(ĝ) − inf R_f")
    ax.set_title("median (solid), max over draws (—),\nbound (dashed)", fontsize=8.5)
    for dl in d["deltas"]:
        axc.axhline(1 - dl, color="#999999", ls=":", lw=1, label=f"1 − δ = {1 - dl:g}")
        axc.annotate(f"1 − δ = {1 - dl:g}", (0.02, 1 - dl), xycoords=("axes fraction", "data"),
                     xytext=(0, -10), textcoords="offset points", fontsize=7.5, color="#666666")
    axc.set_xscale("log")
    axc.set_ylim(0, 1.08)
    axc.set_xlabel("n (points dodged along n)")
    axc.set_ylabel("coverage of the bound")
    axc.set_title("fraction of draws within the bound", fontsize=8.5)
    handles, labels = axc.get_legend_handles_labels()
    fig.suptitle("C6 sample complexity — from w2sg check records", fontsize=9)
    fig.tight_layout()
    style.legend_below(fig, handles, labels, ncol=4, fontsize=7.5)
    return fig


def make(root, figures_dir) -> FigureResult:
    d = data(root)
    c6, pts = d["c6"], d["pts"]
    if not pts:
        return skipped(NAME, TITLE, f"no C6 check record with per-n results under {root}/checks "
                                    "(run `w2sg check`)")
    fig = plot(d)
    summary = {g: [{"n": p["n"], "excess": p["excess_mean"], "bound": p["bound"], "coverage": p["coverage"]}
                   for p in sorted((p for p in pts if p["generator"] == g), key=lambda p: p["n"])]
               for g in d["gens"]}
    caption = ("C6. Left: excess population risk of the ERM head over the best head against the "
               "number n of weak-labelled examples (median over repeated draws, bars: the largest draw; dashes: the "
               "high-probability bound 4L_f ℜ_n + 2B_f √(ln(2/δ)/(2n))). Right: fraction of "
               "draws in which the bound held, against 1 − δ (points of each generator shifted "
               f"slightly along n so that equal values stay visible). Data: {style.as_text(summary)}")
    paths = style.save_figure(fig, figures_dir, NAME, caption, [c6["source"]])
    return FigureResult(NAME, TITLE, "made", "", files(paths), [c6["source"]], summary)
