"""The main result: strong-model test accuracy against label noise, one line per loss (mean
over seeds with a 95% t-interval, losses dodged along x), a panel per task and weak→strong
pair in a grid, weak supervisor and strong ceiling as reference lines; and PGR of the means."""
from __future__ import annotations

import math

import numpy as np

from . import aggregate, readers, style
from .common import FigureResult, files, skipped

NAME = "main_accuracy_vs_noise"
TITLE = "Strong-model accuracy and PGR vs label noise, per loss"
NCOLS = 3


def t95(sd: float, n: int) -> float:
    """Half-width of the 95% t-interval of a mean of ``n`` values with sample std ``sd``."""
    if n < 2 or not math.isfinite(sd):
        return 0.0
    from scipy.stats import t
    return float(t.ppf(0.975, n - 1) * sd / math.sqrt(n))


def compute(rows) -> dict:
    return {"acc": aggregate.summarize(rows, "acc"), "refs": aggregate.references(rows),
            "panels": sorted({(r["task"], r["pair"]) for r in rows}),
            "losses": style.order_losses(r["loss"] for r in rows)}


def data(root) -> dict:
    """Per panel and loss: noise levels, mean accuracy, its 95% interval half-width, and the
    PGR of the means ``(mean acc − mean weak)/(mean ceiling − mean weak)``."""
    rows = readers.read_runs(root)
    out = {"rows": rows, "root": root}
    if not rows:
        return out
    c = compute(rows)
    panels = []
    for task, pair in c["panels"]:
        ref = c["refs"].get((task, pair), {})
        weak, ceil = (ref.get(k, (float("nan"),) * 3)[0] for k in ("weak", "ceiling"))
        curves = {}
        for loss in c["losses"]:
            pts = sorted((k[3], v) for k, v in c["acc"].items() if k[:3] == (task, pair, loss) and v[2])
            if not pts:
                continue
            x = np.array([p[0] for p in pts])
            m = np.array([p[1][0] for p in pts])
            half = np.array([t95(p[1][1], p[1][2]) for p in pts])
            curves[loss] = {"noise": x, "mean": m, "ci95": half,
                            "pgr_of_means": np.array([aggregate.pgr(v, weak, ceil) for v in m])}
        panels.append({"task": task, "pair": pair, "weak": weak, "ceiling": ceil, "curves": curves})
    out.update(panels=panels, losses=c["losses"])
    return out


def _panel(ax, p, losses, metric) -> None:
    steps = sorted({x for c in p["curves"].values() for x in c["noise"]})
    gap = min(np.diff(steps)) if len(steps) > 1 else 0.1
    dodge = 0.25 * gap / max(1, len(losses))  # all losses within a quarter of the noise step
    for i, loss in enumerate(losses):
        c = p["curves"].get(loss)
        if c is None:
            continue
        x = c["noise"] + (i - (len(losses) - 1) / 2) * dodge
        kw = style.line_kw(loss)
        if metric == "acc":
            ax.errorbar(x, c["mean"], yerr=c["ci95"], capsize=0, elinewidth=0.8, **kw)
        else:
            ax.plot(x, c["pgr_of_means"], **kw)
    if metric == "acc":
        for which, val in (("weak", p["weak"]), ("ceiling", p["ceiling"])):
            if math.isfinite(val):
                ax.axhline(val, **style.REFERENCE[which],
                           label="weak supervisor" if which == "weak" else "strong ceiling")
    else:
        ax.set_xticks(steps, [f"{x:g}" for x in steps])
        ax.axhline(0, **style.REFERENCE["weak"], label="weak supervisor")
        ax.axhline(1, **style.REFERENCE["ceiling"], label="strong ceiling")


def plot(d) -> "object":
    panels, losses = d["panels"], d["losses"]
    ncols = min(NCOLS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = style.new_figure(ncols=ncols, nrows=2 * nrows,
                                 width=style.PAGE_WIDTH if ncols > 1 else style.COLUMN_WIDTH,
                                 height=1.7 * 2 * nrows + 0.6,
                                 sharex=True, sharey="row", layout="constrained")
    for j, p in enumerate(panels):
        r, c = divmod(j, ncols)
        for k, metric in enumerate(("acc", "pgr")):
            ax = axes[2 * r + k, c]
            _panel(ax, p, losses, metric)
            if k == 0:
                ax.set_title(f"{p['task']}\n{p['pair']}", fontsize=8)
            if c == 0:
                ax.set_ylabel("test accuracy" if metric == "acc" else "PGR of means")
            if k == 1:
                ax.set_xlabel("label-noise level")
                ax.tick_params(labelbottom=True)
    for j in range(len(panels), nrows * ncols):
        r, c = divmod(j, ncols)
        for k in range(2):
            axes[2 * r + k, c].set_visible(False)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=6 if ncols > 1 else 2,
               frameon=False, fontsize=7.5)  # constrained layout keeps it below the panels
    return fig


def make(root, figures_dir) -> FigureResult:
    d = data(root)
    rows = d["rows"]
    if not rows:
        return skipped(NAME, TITLE, f"no run records under {rows.folder} (run `w2sg run`)")
    fig = plot(d)
    seeds = sorted({str(r["seed"]) for r in rows})
    summary = {f"{p['task']} | {p['pair']}": {
        loss: {f"{x:g}": [round(float(m), 4), round(float(h), 4)]
               for x, m, h in zip(c["noise"], c["mean"], c["ci95"])}
        for loss, c in p["curves"].items()} for p in d["panels"]}
    refs = {f"{p['task']} | {p['pair']}": {"weak": round(p["weak"], 3), "ceiling": round(p["ceiling"], 3)}
            for p in d["panels"]}
    caption = ("Main result. Strong-model test accuracy (upper row of each pair) and PGR (lower "
               "row) against the fraction of flipped weak labels, one line per loss in the paper's "
               "legend order (KL dashed with hollow markers: it trains exactly like CE, C8), "
               f"losses shifted slightly along x so that they stay apart. Markers: mean over "
               f"seeds ({', '.join(seeds)}); bars: 95% t-interval of that mean. Dotted: weak "
               "supervisor; dash-dot: strong ceiling (strong head on ground truth of the student "
               "split). PGR of the means: (mean accuracy − mean weak)/(mean ceiling − mean weak) "
               "per panel. "
               + ("Panels marked (fine-tuned): the whole strong encoder is trained, student and "
                  "ceiling alike (`w2sg run --preset finetune`). " if any(r.get("finetune") for r in rows) else "")
               + f"References: {style.as_text(refs)}. Skipped records: {rows.skipped}.")
    paths = style.save_figure(fig, figures_dir, NAME, caption, list(rows.sources))
    return FigureResult(NAME, TITLE, "made", "", files(paths), list(rows.sources),
                        {"accuracy_mean_ci95": summary, "references": refs})
