"""hypothesis strategies: distributions, generators, W2SG instances.

* :func:`distributions` — points of the simplex with ``k`` classes, including
  near-degenerate ones (masses of 0, 1e-12, or almost all mass on one class);
* :func:`distribution_pairs` — ``(P, Q)`` with the same ``k``;
* :func:`named_generators` — the registry names;
* :func:`typed_generators` — a small grammar of convex generators as typed text:
  positive combinations ``a·f1 + b·f2`` of known convex generators (with the ``(t-1)``
  terms that keep ``f(1) = 0``), ``alpha:a``, and fixed extras such as
  ``'(t-1)**2/(t+1)'`` (Vincze–Le Cam);
* :func:`generators` — either;
* :func:`w2sg_worlds` — keyword arguments for :func:`numerics.world.make_world`.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from theory import NAMED, get_generator

__all__ = ["distributions", "distribution_pairs", "named_generators", "typed_generators",
           "generators", "generator_texts", "w2sg_worlds", "BASE_TEXTS"]

#: convex generators with f(1) = 0, as text in t (the atoms of the grammar)
BASE_TEXTS = ("-log(t)", "t*log(t)", "(t-1)**2", "(sqrt(t)-1)**2", "(t-1)*log(t)",
              "(t-1)**2/t", "(t-1)**2/(t+1)", "abs(t-1)/2", "t*log(t) - (1+t)*log((1+t)/2)")
_EXTRAS = ("(t-1)**2/(t+1)", "alpha:0.5", "alpha:2", "alpha:-1", "alpha:3/2",
           "t*log(t) - log(t)", "(t-1)**4", "exp(t-1) - t")


@st.composite
def distributions(draw, k_min: int = 2, k_max: int = 10, degenerate: bool = True):
    k = draw(st.integers(k_min, k_max))
    raw = draw(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=k, max_size=k))
    p = np.asarray(raw, float) + 1e-3
    if degenerate:
        mode = draw(st.sampled_from(["plain", "zero", "tiny", "spike"]))
        j = draw(st.integers(0, k - 1))
        if mode == "zero":
            p[j] = 0.0
        elif mode == "tiny":
            p[j] = 1e-12
        elif mode == "spike":
            p = np.full(k, 1e-9)
            p[j] = 1.0
    return p / p.sum()


@st.composite
def distribution_pairs(draw, k_min: int = 2, k_max: int = 10, degenerate: bool = True):
    k = draw(st.integers(k_min, k_max))
    return (draw(distributions(k, k, degenerate)), draw(distributions(k, k, degenerate)))


def named_generators():
    return st.sampled_from(NAMED).map(get_generator)


@st.composite
def generator_texts(draw):
    kind = draw(st.sampled_from(["combo", "extra", "alpha"]))
    if kind == "extra":
        return draw(st.sampled_from(_EXTRAS))
    if kind == "alpha":
        a = draw(st.sampled_from(["-1", "1/2", "1/3", "2", "3", "3/2", "0", "1"]))
        return f"alpha:{a}"
    f1, f2 = draw(st.lists(st.sampled_from(BASE_TEXTS), min_size=2, max_size=2, unique=True))
    a = draw(st.sampled_from(["1", "2", "1/2", "3"]))
    b = draw(st.sampled_from(["1", "1/4", "2"]))
    lin = draw(st.sampled_from(["", " + (t-1)", " - 2*(t-1)"]))  # linear terms: same D_f
    return f"{a}*({f1}) + {b}*({f2}){lin}"


def typed_generators():
    return generator_texts().map(get_generator)


def generators():
    return st.one_of(named_generators(), typed_generators())


@st.composite
def w2sg_worlds(draw):
    """kwargs for :func:`numerics.world.make_world` (exact discrete support)."""
    strong = draw(st.sampled_from(["full", "random", "subset"]))
    return {"seed": draw(st.integers(0, 10_000)),
            "d": draw(st.integers(3, 6)),
            "noise": draw(st.sampled_from([0.0, 0.05, 0.2, 0.3])),
            "weak_features": draw(st.integers(1, 3)),
            "weak_n": draw(st.sampled_from([20, 100, 400])),
            "weak_temperature": draw(st.sampled_from([0.5, 1.0, 2.0])),
            "strong": strong,
            "strong_dim": draw(st.integers(2, 12)) if strong != "subset" else draw(st.integers(1, 3)),
            "support": draw(st.sampled_from([8, 32, 64]))}
