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

from experiments.losses import BASELINE_LOSSES, FDIV_LOSSES  # noqa: E402  (names only; no torch)

__all__ = ["LOSS_ORDER", "LABELS", "COLORS", "line_kw", "order_losses", "new_figure",
           "save_figure", "COLUMN_WIDTH", "apply_style"]

#: The paper's legend order (CE, its f-divergences, TV: the sweep's registry,
#: :data:`experiments.losses.FDIV_LOSSES`), then Neyman χ² and the baselines.
LOSS_ORDER = ("ce",) + FDIV_LOSSES + ("neyman",) + BASELINE_LOSSES

LABELS = {
    "ce": "CE", "kl": "KL", "pearson": "Pearson χ²", "hellinger": "squared Hellinger",
    "js": "JS", "jeffreys": "Jeffreys", "reverse_kl": "reverse KL", "tv": "TV",
    "neyman": "Neyman χ²", "aux_conf": "aux. confidence", "product": "product",
}

# Okabe–Ito: black, orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple
_OI = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
       "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
       "grey": "#999999"}
COLORS = {
    "ce": _OI["black"], "kl": _OI["orange"], "pearson": _OI["sky"], "hellinger": _OI["green"],
    "js": _OI["yellow"], "jeffreys": _OI["blue"], "reverse_kl": _OI["vermillion"],
    "tv": _OI["purple"], "neyman": _OI["grey"], "aux_conf": "#666666", "product": "#AAAAAA",
}
_MARKERS = {"ce": "o", "kl": "o", "pearson": "s", "hellinger": "^", "js": "v", "jeffreys": "D",
            "reverse_kl": "P", "tv": "X", "neyman": "*", "aux_conf": "<", "product": ">"}

#: one figure column of a two-column paper, in inches
COLUMN_WIDTH = 3.4

REFERENCE = {"weak": dict(color="#777777", ls=":", lw=1.2),
             "ceiling": dict(color="#333333", ls="-.", lw=1.2)}


def apply_style() -> None:
    plt.rcParams.update({
        "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 6.5,
        "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.4,
        "lines.markersize": 3.5, "axes.spines.top": False, "axes.spines.right": False,
        "figure.dpi": 100, "savefig.dpi": 150, "pdf.fonttype": 42,
    })


def label(name: str) -> str:
    return LABELS.get(name, name)


def line_kw(name: str, markers: bool = True) -> dict:
    """Plot keywords for a loss / generator: colour, marker, and KL dashed + hollow."""
    kw = {"color": COLORS.get(name, "#555555"), "label": label(name)}
    if markers:
        kw["marker"] = _MARKERS.get(name, ".")
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
    apply_style()
    width = width or COLUMN_WIDTH * min(ncols, 2) * (1.0 if ncols <= 2 else ncols / 2)
    height = height or 2.4 * nrows
    return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)


def save_figure(fig, figures_dir: str | os.PathLike, name: str, caption: str,
                sources: list[str]) -> list[Path]:
    """Write ``name.png``, ``name.pdf`` and ``name.txt`` (caption + the records used)."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        fig.savefig(p, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    txt = out / f"{name}.txt"
    lines = [caption.strip(), "", "Made from:"] + [f"  {s}" for s in sources]
    txt.write_text("\n".join(lines) + "\n")
    paths.append(txt)
    return paths
