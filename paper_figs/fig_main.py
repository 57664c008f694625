"""The main result: strong-model test accuracy against label noise, one line per loss
(mean ± std over seeds), a panel per task and weak→strong pair, weak supervisor and strong
ceiling as reference lines; and the same in PGR."""
from __future__ import annotations

import numpy as np

from . import aggregate, readers, style
from .common import FigureResult, files, skipped

NAME = "main_accuracy_vs_noise"
TITLE = "Strong-model accuracy and PGR vs label noise, per loss"


def compute(rows) -> dict:
    return {"acc": aggregate.summarize(rows, "acc"), "pgr": aggregate.summarize(rows, "pgr"),
            "refs": aggregate.references(rows),
            "panels": sorted({(r["task"], r["pair"]) for r in rows}),
            "losses": style.order_losses(r["loss"] for r in rows)}


def make(root, figures_dir) -> FigureResult:
    rows = readers.read_runs(root)
    if not rows:
        return skipped(NAME, TITLE, f"no run records under {rows.folder} (run `w2sg run`)")
    data = compute(rows)
    panels = data["panels"]
    n = len(panels)
    fig, axes = style.new_figure(ncols=n, nrows=2, width=max(style.COLUMN_WIDTH, 2.3 * n) + 1.2,
                                 height=4.6)
    summary = {}
    for j, (task, pair) in enumerate(panels):
        ref = data["refs"].get((task, pair), {})
        for i, metric in enumerate(("acc", "pgr")):
            ax = axes[i, j]
            table = data[metric]
            for loss in data["losses"]:
                pts = sorted((k[3], v) for k, v in table.items() if k[:3] == (task, pair, loss) and v[2])
                if not pts:
                    continue
                x = np.array([p[0] for p in pts])
                m = np.array([p[1][0] for p in pts])
                s = np.array([p[1][1] for p in pts])
                kw = style.line_kw(loss)
                ax.plot(x, m, **kw)
                ax.fill_between(x, m - s, m + s, color=kw["color"], alpha=0.12, lw=0)
                if metric == "acc":
                    summary.setdefault(f"{task} | {pair}", {})[loss] = {
                        f"{xx:g}": [round(mm, 4), round(ss, 4)] for xx, mm, ss in zip(x, m, s)}
            if metric == "acc":
                vals = {}
                for which in ("weak", "ceiling"):
                    mu, sd, cnt = ref.get(which, (float("nan"),) * 3)
                    if cnt:
                        ax.axhline(mu, **style.REFERENCE[which],
                                   label="weak supervisor" if which == "weak" else "strong ceiling")
                        vals[which] = mu
                sub = " · ".join(f"{k} {v:.3f}" for k, v in vals.items())
                ax.set_title(f"{task}\n{pair}" + (f"\n{sub}" if sub else ""), fontsize=6.5)
                ax.set_ylabel("test accuracy" if j == 0 else "")
            else:
                ax.axhline(0, **style.REFERENCE["weak"])
                ax.axhline(1, **style.REFERENCE["ceiling"])
                ax.set_ylabel("PGR" if j == 0 else "")
                ax.set_xlabel("label-noise level")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    nrec = len(rows.sources)
    seeds = sorted({str(r["seed"]) for r in rows})
    fig.suptitle(f"Accuracy / PGR vs noise — {nrec} run records in {rows.folder.name}/ "
                 f"(seeds {', '.join(seeds)}; mean ± std)", fontsize=7)
    refs = {f"{t} | {p}": {"weak": round(v['weak'][0], 4), "ceiling": round(v['ceiling'][0], 4)}
            for (t, p), v in data["refs"].items()}
    caption = ("Main result. Strong-model test accuracy (top) and PGR (bottom) against the "
               "fraction of flipped weak labels, one line per loss in the paper's legend order "
               "(KL dashed with hollow markers: it trains exactly like CE, C8), mean ± sample std "
               "over seeds (band). Dotted: weak supervisor; dash-dot: strong ceiling (strong head "
               "on ground truth of the student split). PGR per run, then averaged. "
               + ("Panels marked (fine-tuned): the whole strong encoder is trained, student and "
                  "ceiling alike (`w2sg run --preset finetune`). " if any(r.get("finetune") for r in rows) else "")
               + 
               f"References: {refs}. Skipped records: {rows.skipped}.")
    paths = style.save_figure(fig, figures_dir, NAME, caption,
                              [f"{len(rows.sources)} records under <results root>/runs/:"] + list(rows.sources))
    return FigureResult(NAME, TITLE, "made", "", files(paths), list(rows.sources),
                        {"accuracy_mean_std": summary, "references": refs})
