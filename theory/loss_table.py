"""The one table of losses: every list of loss names and every figure style is derived from it.

One row per loss the toolkit knows by name, in the paper's legend order (CE, its
f-divergences, TV, Neyman χ², then the Burns et al. 2023 baselines):

* ``name``: the loss name the command line takes;
* ``label``: how figures and tables print it;
* ``kind``: ``"ce"``, ``"fdiv"`` (a named generator of :mod:`theory.generators`) or
  ``"baseline"`` (not an f-divergence);
* ``f2_at_1``: ``f''(1)`` (``None``: ``f`` is not twice differentiable at 1, or no generator);
* ``bounded``: whether ``D_f`` is bounded (``None`` for CE and the baselines).

``f2_at_1`` and ``bounded`` are constants here (so that this module imports nothing);
``tests/theory/test_loss_table.py`` derives both from the generators' sympy expressions
(:func:`theory.derived.f2_at_1`, :func:`theory.derived.is_bounded`) and fails on any
difference.  Colours and markers are the figures' business: :mod:`paper_figs.style` keys
them by these names (a test checks it styles exactly these rows).
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["LossInfo", "LOSS_TABLE", "LOSS_ORDER", "GENERATOR_NAMES", "PAPER_LOSSES",
           "FDIV_LOSSES", "BASELINE_LOSSES", "DEFAULT_LOSSES", "QUICK_LOSSES", "SMOOTH_GENERATORS",
           "info", "label"]


class LossInfo(NamedTuple):
    name: str
    label: str
    kind: str
    f2_at_1: float | None
    bounded: bool | None
    in_paper: bool = False   # one of the paper's six f-divergence losses
    in_sweep: bool = False   # trained by the default sweep (``w2sg run``)


LOSS_TABLE: tuple[LossInfo, ...] = (
    LossInfo("ce", "CE", "ce", None, None, in_sweep=True),
    LossInfo("kl", "KL", "fdiv", 1.0, False, True, True),
    LossInfo("pearson", "Pearson χ²", "fdiv", 2.0, False, True, True),
    LossInfo("hellinger", "squared Hellinger", "fdiv", 0.5, True, True, True),
    LossInfo("js", "JS", "fdiv", 0.25, True, True, True),
    LossInfo("jeffreys", "Jeffreys", "fdiv", 2.0, False, True, True),
    LossInfo("reverse_kl", "reverse KL", "fdiv", 1.0, False, True, True),
    LossInfo("tv", "TV", "fdiv", None, True, False, True),
    LossInfo("neyman", "Neyman χ²", "fdiv", 2.0, False),
    LossInfo("aux_conf", "aux. confidence", "baseline", None, None, in_sweep=True),
    LossInfo("product", "product", "baseline", None, None, in_sweep=True),
)
_BY_NAME = {r.name: r for r in LOSS_TABLE}

#: every named loss, in the paper's legend order
LOSS_ORDER: tuple[str, ...] = tuple(r.name for r in LOSS_TABLE)
#: the named f-divergence generators (legend order, then the extras: Neyman χ², TV last)
GENERATOR_NAMES: tuple[str, ...] = tuple(
    [r.name for r in LOSS_TABLE if r.kind == "fdiv" and r.name not in ("tv", "neyman")]
    + ["neyman", "tv"])
#: the paper's six f-divergence losses
PAPER_LOSSES: tuple[str, ...] = tuple(r.name for r in LOSS_TABLE if r.in_paper)
#: f-divergence losses of the default sweep: the paper's six plus ``tv``
FDIV_LOSSES: tuple[str, ...] = tuple(r.name for r in LOSS_TABLE if r.kind == "fdiv" and r.in_sweep)
#: Burns et al. 2023's baselines (not f-divergences)
BASELINE_LOSSES: tuple[str, ...] = tuple(r.name for r in LOSS_TABLE if r.kind == "baseline")
#: the default sweep: ``ce``, the f-divergences, then the baselines
DEFAULT_LOSSES: tuple[str, ...] = tuple(r.name for r in LOSS_TABLE if r.in_sweep)
#: the quick sweep (``w2sg run --quick``): CE and one bounded/unbounded/non-smooth each
QUICK_LOSSES: tuple[str, ...] = ("ce", "reverse_kl", "hellinger", "tv")
#: generators twice differentiable at 1 (C2's ratio has a limit ``f''(1)/2``)
SMOOTH_GENERATORS: tuple[str, ...] = tuple(r.name for r in LOSS_TABLE
                                           if r.kind == "fdiv" and r.f2_at_1 is not None)

assert set(QUICK_LOSSES) <= set(DEFAULT_LOSSES)


def info(name: str) -> LossInfo | None:
    """The row of ``name`` (``None`` for a loss typed as an expression)."""
    return _BY_NAME.get(name)


def label(name: str) -> str:
    """The printed name of a loss (the name itself when it has no row)."""
    row = _BY_NAME.get(name)
    return row.label if row else name
