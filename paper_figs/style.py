"""One look for every figure: palette, legend order, line styles, output files.

Palette: Okabe & Ito (2008), colour-blind safe.  Legend order is the paper's: CE, KL,
Pearson χ², squared Hellinger, JS, Jeffreys, reverse KL, then TV (and the Burns et al.
baselines).  KL trains exactly like CE (claim C8), so its line would hide behind CE's: it is
drawn dashed with hollow markers so the overlap is visible.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

try:
    import matplotlib
except ValueError:  # matplotlib validates $MPLBACKEND on import
    from w2sg.errors import UsageError
    raise UsageError(f"$MPLBACKEND={os.environ.get('MPLBACKEND', '')!r} is not a matplotlib "
                     "backend; unset it (figures use Agg) or name one, e.g. MPLBACKEND=Agg") from None

if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from theory.loss_table import LOSS_ORDER, LOSS_TABLE  # noqa: E402  (names and labels; no torch)

__all__ = ["LOSS_ORDER", "LABELS", "COLORS", "MARKERS", "line_kw", "order_losses", "new_figure",
           "save_figure", "COLUMN_WIDTH", "PAGE_WIDTH", "apply_style", "legend_below",
           "round_sig", "as_text", "summarize_sources"]

#: printed names, from the one loss table (:mod:`theory.loss_table`)
LABELS = {r.name: r.label for r in LOSS_TABLE}

# Okabe–Ito: black, orange, sky blue, bluish green, blue, vermillion, reddish purple; Okabe–Ito
# yellow (#F0E442) is too faint on white for markers, so JS takes a dark gold instead.
_OI = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
       "gold": "#9A7B00", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
       "grey": "#999999"}
#: colour and marker of every row of the loss table (a test checks the keys are its names)
STYLE = {
    "ce": (_OI["black"], "o"), "kl": (_OI["orange"], "o"), "pearson": (_OI["sky"], "s"),
    "hellinger": (_OI["green"], "^"), "js": (_OI["gold"], "v"), "jeffreys": (_OI["blue"], "D"),
    "reverse_kl": (_OI["vermillion"], "P"), "tv": (_OI["purple"], "X"), "neyman": ("#7A7A7A", "*"),
    "aux_conf": ("#555555", "<"), "product": ("#A0A0A0", ">"),
}
COLORS = {k: v[0] for k, v in STYLE.items()}
MARKERS = {k: v[1] for k, v in STYLE.items()}
#: markers for losses outside the table (typed generators), assigned in order of appearance
_EXTRA_MARKERS = ("h", "8", "p", "d", "1", "2", "3", "4")
_EXTRA_COLORS = ("#444444", "#8C564B", "#17BECF", "#7F7F00")
_extra: dict[str, int] = {}

#: one figure column of a two-column paper, and the full page width, in inches
COLUMN_WIDTH = 3.5
PAGE_WIDTH = 7.0

REFERENCE = {"weak": dict(color="#777777", ls=":", lw=1.2),
             "ceiling": dict(color="#333333", ls="-.", lw=1.2)}


def apply_style() -> None:
    """Sizes for print: figures are made at the width they print (3.5 or 7 in), text 8–9 pt."""
    plt.rcParams.update({
        "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8,
        "xtick.labelsize": 8, "ytick.labelsize": 8, "lines.linewidth": 1.3,
        "lines.markersize": 4, "axes.spines.top": False, "axes.spines.right": False,
        "figure.dpi": 100, "savefig.dpi": 200, "pdf.fonttype": 42,
        "axes.formatter.min_exponent": 3,
    })


def label(name: str) -> str:
    return LABELS.get(name, name)


def line_kw(name: str, markers: bool = True) -> dict:
    """Plot keywords for a loss / generator: colour, marker, and KL dashed + hollow."""
    if name in STYLE:
        color, marker = STYLE[name]
    else:  # a typed generator: its own marker and colour, stable within the process
        i = _extra.setdefault(name, len(_extra))
        color, marker = _EXTRA_COLORS[i % len(_EXTRA_COLORS)], _EXTRA_MARKERS[i % len(_EXTRA_MARKERS)]
    kw = {"color": color, "label": label(name)}
    if markers:
        kw["marker"] = marker
    if name == "kl":
        kw.update(ls=(0, (4, 2)), lw=1.6, zorder=4)
        if markers:
            kw.update(markerfacecolor="none", markersize=6, markeredgewidth=1.1)
    if name == "ce":
        kw.update(lw=2.4, zorder=3)
    return kw


def order_losses(names: Iterable[str]) -> list[str]:
    """``names`` in the paper's legend order (unknown names last, alphabetically)."""
    names = list(dict.fromkeys(names))
    known = [n for n in LOSS_ORDER if n in names]
    return known + sorted(n for n in names if n not in LOSS_ORDER)


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None,
               height: float | None = None, **kw):
    """``(fig, axes[nrows, ncols])`` at print size: one column (3.5 in) for one panel, else
    the page width (7 in); never wider than the page."""
    apply_style()
    width = min(width or (COLUMN_WIDTH if ncols == 1 else PAGE_WIDTH), PAGE_WIDTH)
    height = height or 2.4 * nrows
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)


def legend_below(target, handles=None, labels=None, ncol: int = 4, ax=None, **kw):
    """A legend under ``target`` (an axes, or the figure when ``ax`` is given for handles),
    outside every plotting area."""
    if handles is None:
        handles, labels = (ax or target).get_legend_handles_labels()
    if hasattr(target, "transAxes"):
        return target.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                             ncol=ncol, frameon=False, **kw)
    return target.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                         ncol=ncol, frameon=False, **kw)


def round_sig(value, digits: int = 3):
    """``value`` with every float rounded to ``digits`` significant digits (dicts, lists)."""
    if isinstance(value, float):
        if value == 0 or value != value or value in (float("inf"), float("-inf")):
            return value
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: round_sig(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_sig(v, digits) for v in value]
    return value


def as_text(value, digits: int = 3) -> str:
    """``value`` for a caption: numbers to ``digits`` significant digits, dicts as
    ``key: value`` lists (nested ones in parentheses), no Python quotes or braces."""
    value = round_sig(value, digits)
    if isinstance(value, dict):
        return "; ".join(f"{k}: " + (f"({as_text(v, digits)})" if isinstance(v, dict) else as_text(v, digits))
                         for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(as_text(v, digits) for v in value) + "]"
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def summarize_sources(sources: list[str]) -> str:
    """One line for the records a figure was made from: how many, and how many per folder
    (two levels deep, e.g. ``runs/<task>``); other sources (theory) as they are."""
    recs = [s for s in sources if s.endswith(".json")]
    other = [s for s in sources if not s.endswith(".json")]
    folders: dict[str, int] = {}
    for s in recs:
        parts = Path(s).parts
        key = "/".join(parts[:2]) if len(parts) > 2 else (parts[0] if len(parts) > 1 else ".")
        folders[key] = folders.get(key, 0) + 1
    text = [f"{len(recs)} records" + (": " + ", ".join(f"{n} in {f}/" for f, n in sorted(folders.items()))
                                     if folders else "")]
    return "; ".join(text + other)


def save_figure(fig, figures_dir: str | os.PathLike, name: str, caption: str,
                sources: list[str]) -> list[Path]:
    """Write ``name.png``, ``name.pdf``, ``name.txt`` (the caption and one line summarising
    the records used) and ``name.records.json`` (the full list of records)."""
    from w2sg.records import code_version
    from w2sg.strict_json import dumps
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not fig.legends:  # a figure legend below the panels: plot() laid the panels out above it
        fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        fig.savefig(p, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    txt = out / f"{name}.txt"
    side = out / f"{name}.records.json"
    lines = [caption.strip(), "", f"Made from: {summarize_sources(sources)} (code version "
             f"{code_version()}; the full list: {side.name})"]
    txt.write_text("\n".join(lines) + "\n")
    side.write_text(dumps({"figure": name, "code_version": code_version(), "sources": list(sources)}))
    paths += [txt, side]
    return paths
