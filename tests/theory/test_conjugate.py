import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, strategies as st

from theory import NAMED, get_generator
from theory.codegen import f_numpy
from theory.conjugate import conjugate, conjugate_numeric, conjugate_numpy, optimal_critic
from theory.divergence import divergence
from theory.parsing import U

GENS = list(NAMED) + ["alpha:0.5", "alpha:3", "(t-1)**2/(t+1)"]


def test_kl_conjugate_closed_form():
    # f(t) = -log t: f*(u) = -1 - log(-u) on u < 0
    conj = conjugate(get_generator("kl"))
    assert conj.symbolic and conj.hi == 0 and not conj.hi_closed
    v = sp.Symbol("v", positive=True)  # u = -v < 0
    assert sp.simplify((conj.expr - (-1 - sp.log(-U))).subs(U, -v)) == 0


def test_reverse_kl_and_hellinger_closed_forms():
    assert sp.simplify(conjugate(get_generator("reverse_kl")).expr - sp.exp(U - 1)) == 0
    assert sp.simplify(conjugate(get_generator("hellinger")).expr - U / (1 - U)) == 0


def test_jeffreys_conjugate_uses_lambert_w():
    conj = conjugate(get_generator("jeffreys"))
    assert conj.symbolic and conj.expr.has(sp.LambertW)


def test_pearson_conjugate_is_piecewise_with_floor():
    fn = conjugate_numpy(get_generator("pearson"))
    np.testing.assert_allclose(fn(np.array([-5.0, -2.0, 0.0, 2.0])), [-1, -1, 0, 3])


@pytest.mark.parametrize("name", GENS)
def test_symbolic_equals_numeric_conjugate(name):
    gen = get_generator(name)
    conj = conjugate(gen)
    hi = conj.hi if math.isfinite(conj.hi) else 5.0
    u = np.linspace(-6, hi - 1e-3, 50)
    np.testing.assert_allclose(conjugate_numpy(gen)(u), conjugate_numeric(gen, u), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", GENS)
@given(t=st.floats(1e-3, 1e3), u=st.floats(-20, 20))
def test_fenchel_young(name, t, u):
    gen = get_generator(name)
    fu = float(conjugate_numpy(gen)(np.array([u]))[0])
    assert float(f_numpy(gen)(np.array([t]))[0]) + fu >= t * u - 1e-9 * (1 + abs(t * u))


@pytest.mark.parametrize("name", GENS)
def test_biconjugate_recovers_f(name):
    gen = get_generator(name)
    conj = conjugate(gen)
    hi = conj.hi if math.isfinite(conj.hi) else 60.0
    u = np.concatenate([-np.logspace(-4, 4, 3000)[::-1], np.linspace(-1e-4, hi, 4000)])
    u = u[conj.contains(u)]
    fstar = conjugate_numpy(gen)(u)
    t = np.array([0.05, 0.3, 1.0, 2.0, 7.0])
    fstarstar = np.max(u[None, :] * t[:, None] - fstar[None, :], axis=1)
    np.testing.assert_allclose(fstarstar, f_numpy(gen)(t), atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("name", [n for n in GENS if n != "tv"])
def test_variational_form_attained_at_fprime_ratio(name):
    gen = get_generator(name)
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    crit = optimal_critic(gen, p, q)
    value = np.sum(p * crit) - np.sum(q * conjugate_numpy(gen)(crit))
    assert value == pytest.approx(float(divergence(gen, p, q)), rel=1e-8)
    # any other critic gives less
    other = crit + rng.normal(0, 0.1, size=5)
    conj = conjugate(gen)
    other = np.minimum(other, conj.hi - 1e-6) if math.isfinite(conj.hi) else other
    assert np.sum(p * other) - np.sum(q * conjugate_numpy(gen)(other)) <= value + 1e-12


def test_jeffreys_conjugate_closed_form():
    # t* = 1/W(e^{1-u}); f*(u) = u - 2 + W + 1/W with W = W(e^{1-u}) (worked by hand)
    w = sp.LambertW(sp.exp(1 - U))
    assert sp.simplify(conjugate(get_generator("jeffreys")).expr - (U - 2 + w + 1 / w)) == 0
