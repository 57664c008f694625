"""Cost: time and peak memory per training step of each loss vs CE and the
auxiliary-confidence baseline (``w2sg bench`` records)."""
from __future__ import annotations

import numpy as np

from . import aggregate, readers, style
from .common import FigureResult, files, skipped

NAME = "cost_per_step"
TITLE = "Cost per training step of each loss vs CE and the aux-confidence baseline"


def step_times_from_runs(root) -> readers.ReadResult:
    """Fallback rows ``{loss, step_ms, peak_mb=None}`` from run records' training times."""
    runs = readers.read_runs(root)
    rows = [{"loss": r["loss"], "step_ms": 1e3 * r["train_s"] / r["steps"], "peak_mb": None,
             "device": "cpu", "source": r["source"]}
            for r in runs if readers.finite(r["train_s"]) and r["steps"]]
    return readers.ReadResult(rows, dict.fromkeys(r["source"] for r in rows), runs.problems, runs.folder)


def data(root) -> dict:
    """Training-cost rows (bench record, else run records' training times), kernel ratios and
    the per-loss values plotted (``summary``: mean of each quantity, ``*_sd``, ``*_n``)."""
    rows = readers.read_bench(root)
    note = ""
    if not rows:
        rows = step_times_from_runs(root)
        note = ("from the training time recorded in each run (train_s / steps, full-batch head "
                "training incl. validation; no memory: run `w2sg bench` for that)")
    losses = style.order_losses(r["loss"] for r in rows)
    summary, spread = {}, {}
    for key in ("step_ms", "peak_mb"):
        for l in losses:
            m, sd, n = aggregate.mean_std(r[key] for r in rows if r["loss"] == l)
            if n:
                summary.setdefault(l, {})[key] = m
                spread[(l, key)] = sd if n > 1 else None
    kernels = readers.read_kernel_ratios(root)
    for r in kernels:
        if r["loss"] != "ce" and r["variant"] == "fused":
            summary.setdefault(r["loss"], {}).setdefault(f"kernel_ratio_{r['shape']}", r["ratio"])
    if summary.get("ce", {}).get("step_ms"):
        for l in summary:
            if summary[l].get("step_ms"):
                summary[l]["time_vs_ce"] = summary[l]["step_ms"] / summary["ce"]["step_ms"]
    return {"rows": rows, "note": note, "losses": losses, "kernels": kernels, "summary": summary,
            "spread": spread, "has_mem": any(r["peak_mb"] is not None for r in rows)}


def plot(d):
    losses, summary, kernels = d["losses"], d["summary"], d["kernels"]
    ncols = 1 + d["has_mem"] + bool(kernels)
    fig, axes = style.new_figure(ncols=ncols, width=style.PAGE_WIDTH if ncols > 1 else None,
                                 height=1.2 + 0.19 * max(len(losses), 6))
    for j, (key, label) in enumerate((("step_ms", "ms per training step"), ("peak_mb", "peak memory (MiB)"))):
        if key == "peak_mb" and not d["has_mem"]:
            continue
        ax = axes[0, j]
        for i, l in enumerate(losses):
            kw = style.line_kw(l)
            ax.barh(-i, summary.get(l, {}).get(key, np.nan), xerr=d["spread"].get((l, key)),
                    color=kw["color"], alpha=0.7, hatch="///" if l == "kl" else None, edgecolor=kw["color"])
        ce = summary.get("ce", {}).get(key)
        if ce:
            ax.axvline(ce, color="#000000", ls=":", lw=0.8)
            ax.annotate("CE", (ce, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                        textcoords="offset points", fontsize=7, ha="center")
        ax.set_yticks(-np.arange(len(losses)), [style.label(l) for l in losses] if j == 0 else [])
        ax.set_xlabel(label)
    if kernels:
        _kernel_panel(axes[0, ncols - 1], kernels)
    devices = sorted({r["device"] for r in d["rows"]})
    kind = "run records (training time)" if d["note"] else "bench records"
    fig.suptitle(f"Cost per step ({', '.join(devices)}) — {len(d['rows'].sources)} {kind}", fontsize=9)
    return fig


def make(root, figures_dir) -> FigureResult:
    d = data(root)
    if not d["rows"]:
        return skipped(NAME, TITLE, f"no bench records under {root}/bench (run `w2sg bench`) "
                                    "and no run records with training times")
    fig = plot(d)
    note, summary = d["note"], d["summary"]
    spread = ("mean ± std over the run records (error bars)" if note else
              "one value per loss from the bench record (wall time of one full-batch step, "
              "median over repeats; no error bars)")
    caption = ("Cost. Time (and peak memory where recorded) per training step of each loss, "
               f"{spread}; dotted line: CE. Right: loss-kernel time ÷ CE with the 1.5× goal "
               "(dashed, labelled). f-divergence losses need no auxiliary "
               f"model. {('Measured ' + note + '. ') if note else ''}Values: {style.as_text(summary)}")
    sources = list(dict.fromkeys(list(d["rows"].sources) + list(d["kernels"].sources)))
    paths = style.save_figure(fig, figures_dir, NAME, caption, sources)
    return FigureResult(NAME, TITLE, "made", note, files(paths), sources, summary)


def _kernel_panel(ax, kernels) -> None:
    """Loss kernel forward+backward time ÷ CE per shape (``fdiv_loss``'s default path; 1.5× target)."""
    rows = [r for r in kernels if r["loss"] != "ce" and r["variant"] == "fused"]
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    losses = style.order_losses(r["loss"] for r in rows)
    width = 0.8 / max(1, len(shapes))
    for j, shape in enumerate(shapes):
        for i, l in enumerate(losses):
            vals = [r["ratio"] for r in rows if r["loss"] == l and r["shape"] == shape]
            if vals:
                ax.barh(-i - (j - (len(shapes) - 1) / 2) * width, vals[0], height=width,
                        color=style.line_kw(l)["color"], alpha=0.9 if j == 0 else 0.5,
                        hatch=None if j == 0 else "..", edgecolor="#000000", linewidth=0.3)
    ax.axvline(1.0, color="#000000", ls=":", lw=0.8)
    ax.axvline(1.5, color="#CC0000", ls="--", lw=0.8)
    ax.annotate("1.5× goal", (1.5, 0.0), xycoords=("data", "axes fraction"), xytext=(3, 3),
                textcoords="offset points", fontsize=7, color="#CC0000", ha="left", rotation=90)
    ax.set_yticks(-np.arange(len(losses)), [style.label(l) for l in losses])
    ax.set_xlabel("loss kernel time ÷ CE")
    ax.set_title("kernel fwd+bwd:\n" + ", ".join(f"{s} ({'solid' if j == 0 else 'dotted'})"
                                                   for j, s in enumerate(shapes)), fontsize=7.5)
