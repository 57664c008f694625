import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.special import kl_div, rel_entr

from theory import NAMED, get_generator
from theory.derived import f2_at_1, to_float
from theory.divergence import binary_divergence, chi2, divergence, tv


def dists(k):
    return st.lists(st.floats(1e-3, 1.0), min_size=k, max_size=k).map(lambda v: np.array(v) / np.sum(v))


pairs = st.integers(2, 8).flatmap(lambda k: st.tuples(dists(k), dists(k)))


@given(pairs)
def test_scipy_references(pq):
    p, q = pq
    assert divergence(get_generator("kl"), p, q) == pytest.approx(rel_entr(q, p).sum(), rel=1e-9, abs=1e-12)
    assert divergence(get_generator("reverse_kl"), p, q) == pytest.approx(kl_div(p, q).sum(), rel=1e-9, abs=1e-12)
    # scipy's jensenshannon is the square root of JS (nats with base e)
    assert divergence(get_generator("js"), p, q) == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-7, abs=1e-12)
    assert divergence(get_generator("pearson"), p, q) == pytest.approx(chi2(p, q), rel=1e-9, abs=1e-12)
    assert divergence(get_generator("tv"), p, q) == pytest.approx(tv(p, q), rel=1e-9, abs=1e-12)
    assert divergence(get_generator("hellinger"), p, q) == pytest.approx(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", list(NAMED) + ["(t-1)**2/(t+1)", "alpha:0.3"])
@given(pq=pairs)
def test_nonnegative_and_zero_iff_equal(name, pq):
    p, q = pq
    gen = get_generator(name)
    assert divergence(gen, p, p) == pytest.approx(0, abs=1e-12)
    assume(tv(p, q) > 1e-3)
    assert divergence(gen, p, q) > 0


def test_zero_conventions():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.0, 0.5])
    # KL(W‖S) with S = p has a zero where W = q is positive: infinite
    assert divergence(get_generator("kl"), p, q) == np.inf
    # tv and js stay finite: q f(0) and p f'(∞) terms
    assert divergence(get_generator("tv"), p, q) == pytest.approx(0.5)
    assert divergence(get_generator("js"), p, q) == pytest.approx(jensenshannon(p, q) ** 2)


@pytest.mark.parametrize("name", [n for n in NAMED if n != "tv"] + ["alpha:3", "(t-1)**2/(t+1)"])
def test_local_chi2_equivalence(name):
    gen = get_generator(name)
    rng = np.random.default_rng(3)
    q = rng.dirichlet(np.ones(5))
    delta = rng.normal(size=5)
    delta -= delta.mean()
    ratios = []
    for eps in [1e-2, 1e-3, 1e-4]:
        p = q + eps * delta * q.min()
        ratios.append(divergence(gen, p, q) / chi2(p, q))
    target = to_float(f2_at_1(gen)) / 2
    errs = [abs(r - target) for r in ratios]
    assert errs[-1] < 1e-3 * target
    assert errs[2] <= errs[0] + 1e-9  # converging (pearson: exact for every eps)
    assert errs[0] > 5 * errs[1] or errs[0] < 1e-9  # the error is O(eps)


def test_binary_matches_two_class():
    gen = get_generator("jeffreys")
    s, w = 0.3, 0.8
    assert binary_divergence(gen, s, w) == pytest.approx((s - w) * np.log(s / w) + (w - s) * np.log((1 - s) / (1 - w)))
