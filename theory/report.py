"""One dictionary of every derived quantity of a generator (what ``w2sg derive`` prints)."""
from __future__ import annotations

import math

import sympy as sp

from .bounds import loss_constant_exprs, loss_constants
from .codegen import logratio_expr
from .conjugate import conjugate
from .derived import (disagreement_pull, dual, f2_at_1, f_at_0, fprime_at_inf, is_bounded,
                      is_symmetric, max_value, to_float)
from .generators import Generator
from .inequalities import classical_bounds, compare

__all__ = ["summary", "DEFAULT_GAMMA"]

DEFAULT_GAMMA = 0.05


def _num(value: sp.Expr | None) -> float | None:
    """A finite float, else ``None`` (JSON has no infinities)."""
    x = to_float(value) if value is not None else None
    return x if x is not None and math.isfinite(x) else None


def _text(value: sp.Expr | None) -> str | None:
    return None if value is None else sp.sstr(value)


def summary(gen: Generator, gamma: float = DEFAULT_GAMMA, with_inequalities: bool = False) -> dict:
    """Every derived quantity of ``gen``, JSON-ready (stable field names).

    Numbers are floats, or ``None`` where infinite/undefined; ``*_text`` fields hold
    the exact sympy value (``oo`` for infinity).
    """
    conj = conjugate(gen)
    b_expr, lip_expr = loss_constant_exprs(gen)
    consts = loss_constants(gen, gamma)
    pull = disagreement_pull(gen)
    out = {
        "name": gen.name,
        "description": gen.description,
        "generator": gen.text,
        "convexity": gen.convexity,
        "f2_at_1": _num(f2_at_1(gen)),
        "f2_at_1_text": _text(f2_at_1(gen)),
        "dual": sp.sstr(dual(gen)),
        "symmetric": is_symmetric(gen),
        "f_at_0": _num(f_at_0(gen)),
        "f_at_0_text": _text(f_at_0(gen)),
        "fprime_at_inf": _num(fprime_at_inf(gen)),
        "fprime_at_inf_text": _text(fprime_at_inf(gen)),
        "bounded": is_bounded(gen),
        "max_value": _num(max_value(gen)),
        "max_value_text": _text(max_value(gen)),
        "conjugate": None if conj.expr is None else sp.sstr(conj.expr),
        "conjugate_symbolic": conj.symbolic,
        "conjugate_domain": [None if math.isinf(conj.lo) else conj.lo,
                             None if math.isinf(conj.hi) else conj.hi],
        "conjugate_domain_hi_closed": conj.hi_closed,
        "logratio_form": sp.sstr(logratio_expr(gen)),
        "disagreement_pull": _num(pull),
        "disagreement_pull_text": _text(pull),
        "B_f_expr": sp.sstr(b_expr),
        "L_f_prob_expr": sp.sstr(lip_expr),
        "gamma": gamma,
        "B_f": consts.bound,
        "L_f_prob": consts.lipschitz_prob,
        "L_f_logit": consts.lipschitz_logit,
    }
    if with_inequalities:
        out["classical_bounds"] = [compare(gen, b) for b in classical_bounds(gen)]
    return out
