import math

import numpy as np
import pytest
import sympy as sp

from theory import NAMED, get_generator
from theory.derived import (disagreement_pull, dual, f2_at_1, f_at_0, fprime_at_inf, is_bounded,
                            is_symmetric, max_value, to_float)
from theory.divergence import divergence

# f''(1) and C7 pulls worked out by hand (docs/THEORY.md table and C7)
F2 = {"kl": 1, "reverse_kl": 1, "pearson": 2, "neyman": 2, "hellinger": sp.Rational(1, 2),
      "js": sp.Rational(1, 4), "jeffreys": 2, "tv": None}
PULL = {"kl": -1, "jeffreys": -1, "reverse_kl": 0, "pearson": 0, "hellinger": 0, "js": 0,
        "tv": 0, "neyman": -sp.oo}
SYMMETRIC = {"hellinger", "js", "jeffreys", "tv"}
MAX = {"hellinger": 2, "js": sp.log(2), "tv": 1}


@pytest.mark.parametrize("name", NAMED)
def test_hand_worked_constants(name):
    gen = get_generator(name)
    assert f2_at_1(gen) == F2[name]
    assert disagreement_pull(gen) == PULL[name]
    assert is_symmetric(gen) == (name in SYMMETRIC)
    assert is_bounded(gen) == (name in MAX)
    if name in MAX:
        assert sp.simplify(max_value(gen) - MAX[name]) == 0
    else:
        assert max_value(gen) == sp.oo


def test_limits_by_hand():
    assert f_at_0(get_generator("js")) == sp.log(2) / 2
    assert fprime_at_inf(get_generator("neyman")) == 1
    assert f_at_0(get_generator("reverse_kl")) == 0
    assert fprime_at_inf(get_generator("pearson")) == sp.oo


def test_dual_of_kl_is_reverse_kl():
    assert sp.simplify(dual(get_generator("kl")) - get_generator("reverse_kl").expr) == 0


@pytest.mark.parametrize("name", list(NAMED) + ["(t-1)**2/(t+1)", "alpha:3"])
def test_dual_swaps_arguments(name):
    from theory.generators import Generator
    gen = get_generator(name)
    swapped = Generator("dual", dual(gen))
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(4), size=20), rng.dirichlet(np.ones(4), size=20)
    np.testing.assert_allclose(divergence(swapped, p, q), divergence(gen, q, p), rtol=1e-10)


def test_max_value_is_attained_by_singular_pair():
    for name in MAX:
        gen = get_generator(name)
        val = divergence(gen, np.array([1.0, 0.0]), np.array([0.0, 1.0]))
        assert math.isclose(float(val), to_float(max_value(gen)), rel_tol=1e-12)
