"""C3: the joint range of D_f and TV, with the classical closed-form inequalities over it.

Computed from ``theory/`` directly (deterministic, about a second): the tight curve
``L_f(δ)`` (two-point infimum), its convex envelope, and each classical bound; a bound the
toolkit finds tight is drawn solid, a loose one dotted.
"""
from __future__ import annotations

import numpy as np

from . import style
from .common import FigureResult, files, theory_source

NAME = "c3_joint_range"
TITLE = "C3: joint range of D_f and TV (tight curve vs classical bounds)"
from theory.loss_table import FDIV_LOSSES  # noqa: E402

GENERATORS = tuple(n for n in FDIV_LOSSES if n != "reverse_kl")  # reverse_kl: same curve as kl


def compute(points: int = 120) -> dict:
    import sympy as sp
    from theory import get_generator
    from theory.inequalities import classical_bounds, compare
    from theory.joint_range import convex_envelope, tight_curve
    deltas = np.linspace(0.0, 0.98, points)
    out = {}
    for name in GENERATORS:
        gen = get_generator(name)
        curve = np.asarray(tight_curve(gen, deltas), dtype=float)
        env = np.array([convex_envelope(gen, float(d)) for d in deltas[::6]])
        bounds = []
        for b in classical_bounds(gen):
            free = sorted(b.expr.free_symbols, key=str)
            fn = sp.lambdify(free, b.expr, "numpy") if free else (lambda *_: float(b.expr))
            with np.errstate(all="ignore"):
                vals = np.broadcast_to(np.asarray(fn(deltas) if free else fn(), dtype=float), deltas.shape)
            cmp = compare(gen, b, points=200)
            bounds.append({"name": b.name, "source": b.source, "values": vals,
                           "tight": bool(cmp["tight"]), "valid": bool(cmp["valid"]),
                           "max_relative_gap": float(cmp["max_relative_gap"])})
        out[name] = {"deltas": deltas, "curve": curve, "env_deltas": deltas[::6], "envelope": env,
                     "bounds": bounds}
    return out


def data(root=None) -> dict:
    return compute()


def plot(data):
    fig, axes = style.new_figure(ncols=2, nrows=3, width=style.PAGE_WIDTH, height=9.0)
    for ax, name in zip(axes.flat, GENERATORS):
        d = data[name]
        kw = style.line_kw(name, markers=False)
        kw["label"] = f"tight $L_f$ ({style.label(name)})"
        kw.pop("zorder", None)
        ax.plot(d["deltas"], d["curve"], **{**kw, "ls": "-", "lw": 2.2})
        ax.plot(d["env_deltas"], d["envelope"], ls="none", marker="o", ms=2.5, color="#444444",
                label="convex envelope")
        grey = ["#999999", "#666666", "#BBBBBB"]
        for i, b in enumerate(d["bounds"]):
            ax.plot(d["deltas"], b["values"], color=grey[i % 3] if not b["tight"] else "#222222",
                    ls="-" if b["tight"] else ":", lw=1.0,
                    label=f"{b['name']}{' (tight)' if b['tight'] else ''}")
        top = float(np.nanmax(d["curve"][d["deltas"] <= 0.9])) * 1.3
        ax.set_ylim(0, top if np.isfinite(top) and top > 0 else 1)
        ax.set_xlim(0, 1)
        ax.set_title(style.label(name) + (" (= reverse KL)" if name == "kl" else ""))
        ax.set_xlabel("TV δ")
        ax.set_ylabel("D_f")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), frameon=False, fontsize=7)
    fig.suptitle("C3 joint range with TV — from theory.joint_range (no records needed)", fontsize=9)
    return fig


def make(root, figures_dir) -> FigureResult:
    data = compute()
    fig = plot(data)
    summary = {name: [{k: b[k] for k in ("name", "tight", "valid", "max_relative_gap")}
                      for b in data[name]["bounds"]] for name in GENERATORS}
    caption = ("C3. Tight lower curve L_f(δ) = inf{D_f(P‖Q): TV(P,Q)=δ} (two-point infimum, "
               "Vajda 1972; Harremoës & Vajda 2011) per generator, its convex envelope (dots), and "
               "the classical closed forms (solid black: tight everywhere on (0,1); dotted: valid "
               "but loose). KL and reverse KL share one curve (TV is symmetric). "
               "Tightness per bound: " + "; ".join(
                   f"{style.label(n)}: " + ", ".join(f"{b['name']} {'tight' if b['tight'] else 'loose'}"
                                                     for b in bs) for n, bs in summary.items()))
    sources = [theory_source("joint_range.tight_curve, convex_envelope; inequalities.classical_bounds, compare")]
    from . import readers
    c3 = readers.read_checks(root).get("C3") if root is not None else None
    note = ""
    if c3:
        note = (f"Numerical check of this curve (w2sg check, {'quick' if c3.get('quick') else 'full'}): "
                f"C3 {c3['status']}, worst slack {style.as_text(c3['worst_slack'])}.")
        caption += " " + note
        sources.append(c3["source"])
    paths = style.save_figure(fig, figures_dir, NAME, caption, sources)
    return FigureResult(NAME, TITLE, "made", note if c3 and c3.get("status") == "FAIL" else "", files(paths),
                        sources, {"bounds": summary, "c3_check": {k: c3[k] for k in ("status", "worst_slack", "source")} if c3 else None})
