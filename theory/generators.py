"""The registry of f-divergence generators and the :class:`Generator` type.

Convention (``docs/THEORY.md``): ``D_f(P‖Q) = Σ_c q_c f(p_c / q_c)`` with the
strong model first, ``D_f(S‖W)``.  Every named generator below is the single
symbolic source of its divergence; numpy and torch functions are generated from it
(:mod:`theory.codegen`).

Named generators (``f(t)``, and what ``D_f(S‖W)`` is):

========== ============================================ ======================
name       f(t)                                         D_f(S‖W)
========== ============================================ ======================
kl         -log t                                       KL(W‖S)
reverse_kl t log t                                      KL(S‖W)
pearson    (t-1)^2                                      χ²(S‖W)
neyman     (t-1)^2 / t                                  χ²(W‖S)
hellinger  (√t-1)^2                                     Σ(√s-√w)²
js         ½[t log t - (1+t) log((1+t)/2)]              Jensen–Shannon (nats)
jeffreys   (t-1) log t                                  KL(S‖W)+KL(W‖S)
tv         ½|t-1|                                       total variation
alpha:a    (t^a - a t - (1-a)) / (a(a-1))               α-divergence (a=0,1 limits)
========== ============================================ ======================
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import sympy as sp

from .convexity import check_convex
from .parsing import MAX_DIGITS, MAX_EXPONENT, T, GeneratorError, parse_generator

__all__ = ["Generator", "GeneratorError", "get_generator", "NAMED", "PAPER_LOSSES",
           "alpha_generator"]

_NAMED_EXPRS = {
    "kl": -sp.log(T),
    "reverse_kl": T * sp.log(T),
    "pearson": (T - 1) ** 2,
    "neyman": (T - 1) ** 2 / T,
    "hellinger": (sp.sqrt(T) - 1) ** 2,
    "js": (T * sp.log(T) - (1 + T) * sp.log((1 + T) / 2)) / 2,
    "jeffreys": (T - 1) * sp.log(T),
    "tv": sp.Abs(T - 1) / 2,
}
_DESCRIPTIONS = {
    "kl": "KL(W‖S) (forward KL; same gradient as CE)",
    "reverse_kl": "KL(S‖W) (reverse KL)",
    "pearson": "Pearson χ²(S‖W)",
    "neyman": "Neyman χ²(W‖S)",
    "hellinger": "squared Hellinger Σ(√s−√w)²",
    "js": "Jensen–Shannon divergence (nats)",
    "jeffreys": "Jeffreys KL(S‖W)+KL(W‖S)",
    "tv": "total variation",
}
#: The named generators, in the paper's legend order (then the extras).
NAMED: tuple[str, ...] = ("kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl",
                          "neyman", "tv")
#: The f-divergence losses the paper trains with (``ce`` is a loss, not a generator).
PAPER_LOSSES: tuple[str, ...] = ("kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl")


@dataclasses.dataclass(frozen=True)
class Generator:
    """A validated convex generator ``f`` with ``f(1) = 0``.

    Attributes:
        name: registry name (``"kl"``, ``"alpha:0.5"``) or the typed text.
        expr: sympy expression in the positive symbol ``t`` (:data:`theory.parsing.T`).
        description: what ``D_f(S‖W)`` is, in words.
        convexity: how convexity on ``(0, ∞)`` was established
            (``"named"``, ``"proved symbolically"`` or ``"checked on grid"``:
            :func:`theory.convexity.check_convex`).
    """

    name: str
    expr: sp.Expr
    description: str = ""
    convexity: str = "named"

    def __hash__(self) -> int:  # sympy caches its structural hash: cheap on every lookup
        return hash((self.name, self.expr))

    @property
    def text(self) -> str:
        """The generator as sympy text in ``t``."""
        return sp.sstr(self.expr)

    @property
    def is_named(self) -> bool:
        return self.convexity == "named"


def alpha_generator(a: sp.Rational) -> sp.Expr:
    """``f_a(t) = (t^a − a t − (1−a)) / (a(a−1))`` with its limits at ``a = 0, 1``.

    ``a → 1``: ``t log t − t + 1`` (reverse KL); ``a → 0``: ``−log t + t − 1`` (KL).
    """
    a = sp.nsimplify(a)
    if a == 1:
        return T * sp.log(T) - T + 1
    if a == 0:
        return -sp.log(T) + T - 1
    return (T ** a - a * T - (1 - a)) / (a * (a - 1))


@functools.lru_cache(maxsize=256)
def get_generator(spec: str) -> Generator:
    """Return the validated :class:`Generator` for a name, ``alpha:a`` or a typed ``f(t)``.

    Raises:
        GeneratorError: unparsable text, other free symbols, ``f(1) ≠ 0`` (with the
            value to subtract) or ``f`` not convex on ``(0, ∞)`` (with the failing point).
    """
    if not isinstance(spec, str):
        raise GeneratorError(f"generator must be a name or an expression string, got {spec!r}")
    key = spec.strip()
    if key in _NAMED_EXPRS:
        return Generator(key, _NAMED_EXPRS[key], _DESCRIPTIONS[key], "named")
    if key.startswith("alpha:"):
        text = key.split(":", 1)[1].strip()
        try:
            if len(text) > 40:
                raise ValueError(text)
            a = sp.Rational(text)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            raise GeneratorError(
                f"bad alpha generator {key!r}: write alpha:a with a finite real number a, "
                f"e.g. alpha:0.5") from None
        if abs(a) > MAX_EXPONENT or max(len(str(abs(a.p))), len(str(a.q))) > MAX_DIGITS // 5:
            raise GeneratorError(
                f"alpha generator {key!r} is too extreme: use |a| <= {MAX_EXPONENT} with at most "
                f"{MAX_DIGITS // 5} digits (e.g. alpha:0.5, alpha:2, alpha:-1)")
        return Generator(f"alpha:{text}", alpha_generator(a),
                         f"α-divergence with α={a}", "named")
    if key.isidentifier() and key not in ("t", "pi", "E"):
        raise GeneratorError(
            f"unknown generator {key!r}; named generators: {', '.join(NAMED)}, alpha:a "
            f"(any real a), or type an expression in t such as '(t-1)**2/(t+1)'")
    expr = parse_generator(key)
    extra = expr.free_symbols - {T}
    if extra:
        raise GeneratorError(f"generator {key!r} has symbols other than t: {sorted(map(str, extra))}")
    if T not in expr.free_symbols:
        raise GeneratorError(f"generator {key!r} does not depend on t")
    at_one = sp.simplify(expr.subs(T, 1))
    if at_one.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or not at_one.is_number:
        raise GeneratorError(
            f"generator {key!r} is undefined at t = 1 (f(1) = {at_one}); a generator must be "
            f"finite on (0, inf) with f(1) = 0")
    if at_one != 0:
        raise GeneratorError(
            f"generator {key!r} has f(1) = {at_one}, but an f-divergence needs f(1) = 0; "
            f"subtract it: '({key}) - ({at_one})'")
    convexity = check_convex(expr, key)
    return Generator(key, expr, "user generator", convexity)


def named_generators() -> list[Generator]:
    """Every named generator, in :data:`NAMED` order."""
    return [get_generator(n) for n in NAMED]
