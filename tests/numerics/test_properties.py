"""hypothesis properties calling the same check code as ``w2sg check``."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from theory import get_generator
from numerics import reference as ref
from numerics import strategies as S
from numerics.checks import c1, c3, c4, c5, c7
from numerics.fit import UnconvergedFit, fit_head
from numerics.world import make_world

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(S.generators(), st.integers(0, 2**31 - 1))
def test_c1_fenchel_young_biconjugate(gen, seed):
    r = c1.check_generator(gen, np.random.default_rng(seed), n_points=8)
    for key, val in r.items():
        if isinstance(val, float):
            assert val >= 0, (gen.name, key, val)


@FAST
@given(S.generators(), S.distribution_pairs())
def test_c3_tight_curve_below_divergence(gen, pq):
    p, q = pq
    assert c3.check_pair(gen, p, q) >= 0


@FAST
@given(S.named_generators(), S.distribution_pairs())
def test_reference_divergence_matches_theory(gen, pq):
    from theory.divergence import divergence
    p, q = pq
    a, b = float(ref.divergence(gen, p, q)), float(divergence(gen, p, q))
    if math.isinf(a) or math.isinf(b):
        assert a == b
    else:
        assert abs(a - b) <= 1e-9 * (1 + abs(a))


@SLOW
@given(S.w2sg_worlds(), st.sampled_from(["kl", "pearson", "hellinger", "js", "jeffreys",
                                         "reverse_kl", "(t-1)**2/(t+1)"]))
def test_c4_interval_on_random_worlds(world_kwargs, name):
    world = make_world(**world_kwargs)
    try:
        r = c4.c4_instance(get_generator(name), world, n=100, seed=world_kwargs["seed"], exact=False)
    except UnconvergedFit:
        assume(False)
    assert r["slack"] >= 0 and r["triangle_slack"] >= 0 and r["jensen_slack"] >= 0


@FAST
@given(st.integers(0, 2**31 - 1), st.integers(1, 4), st.sampled_from([2, 3]))
def test_c5_reverse_kl_pythagorean(seed, m, K):
    inst = c5.random_instance(np.random.default_rng(seed), m=m, K=K)
    g = c5.gaps(get_generator("reverse_kl"), **inst)
    assert g["same_f"]["gap"] >= -c5.TOL
    assert abs(g["same_f"]["gap"] - g["kl"]["gap"]) < 1e-12  # same statement for reverse KL


def test_c5_counterexamples_recheck(quick):
    res = quick("C5")
    ces = res.details["counterexamples"]
    assert {c["generator"] for c in ces} >= {"kl", "pearson", "hellinger", "js", "jeffreys", "tv"}
    for ce in ces[:6]:
        assert c5.recheck(ce)["fails"]


@FAST
@given(S.generators(), st.floats(-8, 8), st.floats(0.02, 0.98))
def test_c7_autograd_matches_formula(gen, z, w):
    assume(gen.name != "tv" and "abs" not in gen.name)
    auto = float(c7.autograd_grad(gen, np.array([z]), np.array([w]))[0])
    s = 1 / (1 + math.exp(-z))
    formula = float(ref.binary_grad_logit(gen, np.array([s]), np.array([w]))[0])
    assert abs(auto - formula) <= 1e-7 * (1 + abs(formula))


def test_fit_refuses_unconverged():
    world = make_world(0, support=32)
    pop = world.population()
    fit = fit_head("tv", world.strong_features(pop.x), world.weak(pop.x), pop.weights, max_iter=20)
    assert not fit.converged
    with pytest.raises(UnconvergedFit):
        fit.require_converged()


def test_world_population_exact_and_weak_quality():
    good = make_world(1, weak_features=4, weak_n=400, noise=0.0)
    bad = make_world(1, weak_features=1, weak_n=20, noise=0.0)
    pop = good.population()
    assert pop.exact and abs(pop.weights.sum() - 1) < 1e-12
    err = lambda w: pop.mean(ref.tv(w.f_star(pop.x), w.weak(pop.x)))  # noqa: E731
    assert err(good) < err(bad)
