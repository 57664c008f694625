"""Bounds against measurements: C4 interval vs measured strong error; C5 misfit–gain
scatter with counterexamples marked (both from ``w2sg check`` records)."""
from __future__ import annotations

import numpy as np

from . import readers, style
from .common import FigureResult, files, skipped

NAME = "c4_c5_bounds_vs_measured"
TITLE = "C4 interval vs measured error; C5 misfit–gain with counterexamples"


C5_GENERATORS = ("kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "tv")


def random_c5_points(per_generator: int = 40, seed: int = 0) -> list[dict]:
    """Background of the C5 scatter: random instances of the C5 check's family (mixtures of
    two fixed predictors containing F*), each projected with D_f and scored in KL (the
    paper's statement).  Exact projections, well under a second; no model is trained."""
    from numerics.checks.c5 import gaps, random_instance
    from theory import get_generator
    rng = np.random.default_rng(seed)
    out = []
    for name in C5_GENERATORS:
        gen = get_generator(name)
        for _ in range(per_generator):
            g = gaps(gen, **random_instance(rng))["kl"]
            gain, misfit = g["rhs"] + g["misfit"] - g["lhs"], g["misfit"]
            out.append({"generator": name, "gain": gain, "misfit": misfit, "variant": "kl",
                        "counterexample": g["gap"] < -1e-9, "stored": False})
    return out


def data(root) -> dict:
    """C4 instances from the C4 check record; the C5 scatter: stored counterexamples (KL
    variant) over fresh random instances of the C5 family (:func:`random_c5_points`, computed
    here, in the data layer, when a C5 record or counterexample exists)."""
    checks = readers.read_checks(root)
    c4, c5 = checks.get("C4"), checks.get("C5")
    cex = readers.read_counterexamples(root)
    stored = [dict(r, stored=True) for r in cex]
    p5 = [r for r in stored if r["variant"] == "kl"]
    if c5 or stored:  # the C5 record keeps no scatter: draw fresh random instances
        p5 = random_c5_points() + p5
    return {"c4": c4, "c5": c5, "cex": cex, "stored": stored,
            "p4": readers.c4_points(c4) if c4 else [], "p5": p5}


def _plot_c4(ax, p4, c4) -> dict:
    gens = style.order_losses(p["generator"] for p in p4)
    x, centres = 0, []
    for g in gens:
        pts = sorted((p for p in p4 if p["generator"] == g), key=lambda p: p["err_w"])
        kw = style.line_kw(g)
        xs = np.arange(x, x + len(pts))
        lo = np.array([max(0.0, p["err_w"] - p["radius"]) for p in pts])
        hi = np.array([min(1.0, p["err_w"] + p["radius"]) for p in pts])
        ax.vlines(xs, lo, hi, color=kw["color"], lw=2.5, alpha=0.35)
        ax.plot(xs, [p["err_w"] for p in pts], ls="none", marker="_", color="#555555", ms=5)
        ax.plot(xs, [p["err_sw"] for p in pts], ls="none", marker=kw["marker"], color=kw["color"],
                ms=3.5, mec="k" if kw["color"].startswith("#4") else kw["color"], mew=0.4)
        centres.append((x + (len(pts) - 1) / 2, style.label(g)))
        x += len(pts) + 2
    inside = sum(abs(p["err_sw"] - p["err_w"]) <= p["radius"] + 1e-9 for p in p4)
    tight = [abs(p["err_sw"] - p["err_w"]) / p["radius"] for p in p4 if p["radius"] > 0]
    ax.set_xticks([c for c, _ in centres], [l for _, l in centres], rotation=45, ha="right", fontsize=7)
    ax.set_xlabel("fitted synthetic instances, grouped by generator")
    ax.set_ylabel("error E TV(F*, F)")
    ax.set_title(f"C4: err(F_sw) (marker) in err(F_w) (—) ± L̆⁻¹(R_f) (bar)\n"
                 f"{inside}/{len(p4)} inside the interval", fontsize=8)
    return {"instances": len(p4), "inside_interval": int(inside),
            "median_tightness": float(np.median(tight)) if tight else None,
            "median_radius": float(np.median([p["radius"] for p in p4])),
            "status": c4["status"], "worst_slack": c4["worst_slack"]}


def _plot_c5(ax, p5) -> dict:
    gens = style.order_losses(p["generator"] for p in p5)
    allv = [v for p in p5 for v in (p["gain"], p["misfit"]) if np.isfinite(v)]
    lo, hi = (min(allv), max(allv)) if allv else (0, 1)
    ax.plot([lo, hi], [lo, hi], color="#999999", lw=0.8, ls="--", label="gain = misfit")
    n_cex = {}
    for g in gens:
        pts = [p for p in p5 if p["generator"] == g]
        kw = style.line_kw(g)
        ok = [p for p in pts if not p["counterexample"]]
        bad_r = [p for p in pts if p["counterexample"] and not p.get("stored")]
        bad_s = [p for p in pts if p["counterexample"] and p.get("stored")]
        if ok:
            ax.plot([p["misfit"] for p in ok], [p["gain"] for p in ok], ls="none",
                    marker=kw["marker"], color=kw["color"], ms=3, alpha=0.7, label=style.label(g))
        if bad_r:
            ax.plot([p["misfit"] for p in bad_r], [p["gain"] for p in bad_r], ls="none", marker="x",
                    color=kw["color"], ms=4, mew=1.0)
        if bad_s:
            ax.plot([p["misfit"] for p in bad_s], [p["gain"] for p in bad_s], ls="none", marker="X",
                    color=kw["color"], ms=7, mec="k", mew=0.6)
        n_cex[g] = {"random_draws_failing": len(bad_r), "random_draws": sum(not p.get("stored") for p in pts),
                    "stored_counterexamples": len(bad_s)}
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlim(left=0)
    ax.set_xlabel("misfit E KL(F̂_sw‖F_w)")
    ax.set_ylabel("gain in KL to the truth")
    ax.set_title("C5 misfit–gain (reverse KL: gain ≥ misfit)\nsmall ×: random draw violating; "
                 "big X: stored counterexample", fontsize=8)
    ax.plot([], [], ls="none", marker="x", color="k", ms=4, label="random draw violating")
    ax.plot([], [], ls="none", marker="X", color="w", mec="k", ms=7, label="stored counterexample")
    return n_cex


def plot(d):
    panels = [p for p, ok in (("c4", d["p4"]), ("c5", d["p5"])) if ok]
    fig, axes = style.new_figure(ncols=len(panels), width=style.PAGE_WIDTH if len(panels) > 1 else None,
                                 height=3.6)
    d["summary"] = {}
    for ax, panel in zip(axes.flat, panels):
        if panel == "c4":
            d["summary"]["C4"] = _plot_c4(ax, d["p4"], d["c4"])
        else:
            d["summary"]["C5"] = {"points": len(d["p5"]), "counterexamples_by_generator": _plot_c5(ax, d["p5"]),
                                  "stored_same_f_counterexamples": sum(r["variant"] == "same_f" for r in d["stored"]),
                                  "status": d["c5"]["status"] if d["c5"] else None,
                                  "worst_slack": d["c5"]["worst_slack"] if d["c5"] else None}
            handles, labels = ax.get_legend_handles_labels()
    fig.suptitle("Bounds vs measurements — from w2sg check records", fontsize=9)
    fig.tight_layout()
    if "c5" in panels:  # below the panels, outside every axes
        style.legend_below(fig, handles, labels, ncol=5, fontsize=7)
    return fig


CAPTION = ("C4 (left): for each fitted synthetic W2SG instance, the measured strong error "
           "err(F_sw) (marker) against the interval err(F_w) ± L̆_f⁻¹(R_f(F_sw,F_w)) (bar; tick: "
           "err(F_w)), instances grouped by generator. C5 (right): misfit E KL(F̂_sw‖F_w) vs gain "
           "in KL to the truth; the theorem (reverse KL, convex class containing F*) says gain ≥ "
           "misfit (above the dashed line). Points: random instances of the C5 check's family "
           "(two-predictor mixtures containing F*, D_f projection, scored in KL; computed with "
           "numerics.checks.c5, seed 0, by the figure's data layer) unless the check stored its "
           "instances; small ×: a random draw that violates the inequality; big X: a "
           "counterexample stored by `w2sg check` (KL variant; the same-f variant's are counted "
           "in the summary). ")


def make(root, figures_dir) -> FigureResult:
    d = data(root)
    if not d["p4"] and not d["p5"]:
        return skipped(NAME, TITLE, f"no C4/C5 check records with instances under {root}/checks "
                                    "(run `w2sg check`)")
    fig = plot(d)
    sources = ([d["c4"]["source"]] if d["p4"] else []) + (
        ([d["c5"]["source"]] if d["c5"] else []) + list(d["cex"].sources) if d["p5"] else [])
    summary = d["summary"]
    caption = CAPTION + f"Summary: {style.as_text(summary)}"
    paths = style.save_figure(fig, figures_dir, NAME, caption, sources)
    return FigureResult(NAME, TITLE, "made", "", files(paths), sources, summary)
