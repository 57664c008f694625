"""The one loss table: its constants equal what theory derives from the sympy generators,
and every list of losses is a view of it."""
from __future__ import annotations

import math

import pytest

from theory import NAMED, PAPER_LOSSES, get_generator
from theory import loss_table as lt
from theory.derived import f2_at_1, is_bounded, to_float


@pytest.mark.parametrize("row", [r for r in lt.LOSS_TABLE if r.kind == "fdiv"], ids=lambda r: r.name)
def test_f2_and_boundedness_match_the_symbolic_derivation(row):
    gen = get_generator(row.name)
    derived = f2_at_1(gen)
    if row.f2_at_1 is None:
        assert derived is None or to_float(derived) is None or not math.isfinite(to_float(derived))
    else:
        assert to_float(derived) == pytest.approx(row.f2_at_1, abs=0, rel=1e-12)
    assert is_bounded(gen) is row.bounded


def test_the_lists_are_views_of_the_table():
    assert lt.LOSS_ORDER == ("ce", "kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl",
                             "tv", "neyman", "aux_conf", "product")
    assert NAMED == lt.GENERATOR_NAMES == ("kl", "pearson", "hellinger", "js", "jeffreys",
                                           "reverse_kl", "neyman", "tv")
    assert PAPER_LOSSES == lt.PAPER_LOSSES == NAMED[:6]
    assert lt.FDIV_LOSSES == PAPER_LOSSES + ("tv",)
    assert lt.DEFAULT_LOSSES == ("ce",) + lt.FDIV_LOSSES + lt.BASELINE_LOSSES
    assert lt.SMOOTH_GENERATORS == ("kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "neyman")
    assert lt.label("js") == "JS" and lt.label("t*log(t)") == "t*log(t)"
    assert lt.info("tv").bounded and lt.info("ce").f2_at_1 is None


def test_experiments_and_checks_take_their_lists_from_the_table():
    from experiments import losses
    from numerics.checks import c5, c6
    assert losses.DEFAULT_LOSSES is lt.DEFAULT_LOSSES and losses.QUICK_LOSSES is lt.QUICK_LOSSES
    assert c5.SEARCHED == tuple(n for n in lt.FDIV_LOSSES if n != "reverse_kl")
    assert c6.GENS == lt.PAPER_LOSSES
