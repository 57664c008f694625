import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from theory import NAMED, get_generator
from theory.divergence import divergence, tv
from theory.joint_range import (convex_envelope, curve_is_convex, lower_bound, tight_curve,
                                tv_inverse, two_point_minimiser)

GENS = list(NAMED) + ["(t-1)**2/(t+1)", "alpha:3", "alpha:-0.5"]


def _mp_reference(fstr: str, delta: float) -> mp.mpf:
    mp.mp.dps = 40
    f = lambda t: eval(fstr, {"log": mp.log, "sqrt": mp.sqrt, "t": t})  # noqa: E731  (test reference)
    d = mp.mpf(delta)
    phi = lambda q: q * f((q + d) / q) + (1 - q) * f((1 - q - d) / (1 - q))  # noqa: E731
    lo, hi, g = mp.mpf(0), 1 - d, (mp.sqrt(5) - 1) / 2
    for _ in range(220):
        x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
        if phi(x1) <= phi(x2):
            hi = x2
        else:
            lo = x1
    return phi((lo + hi) / 2)


@pytest.mark.parametrize("name,fstr", [("kl", "-log(t)"), ("js", "(t*log(t)-(1+t)*log((1+t)/2))/2"),
                                       ("jeffreys", "(t-1)*log(t)"), ("neyman", "(t-1)**2/t")])
@pytest.mark.parametrize("delta", [1e-3, 0.05, 0.4, 0.9, 0.995])
def test_relative_accuracy_1e8_against_mpmath(name, fstr, delta):
    ref = _mp_reference(fstr, delta)
    assert abs(lower_bound(get_generator(name), delta) - float(ref)) <= 1e-8 * float(ref)


def test_chi2_and_hellinger_closed_forms_hold_exactly():
    d = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(tight_curve(get_generator("pearson"), d),
                               np.where(d <= 0.5, 4 * d ** 2, d / (1 - d)), rtol=1e-9)
    np.testing.assert_allclose(tight_curve(get_generator("hellinger"), d),
                               2 * (1 - np.sqrt(1 - d ** 2)), rtol=1e-9)
    np.testing.assert_allclose(tight_curve(get_generator("tv"), d), d, rtol=1e-9)


def test_pinsker_below_kl_curve():
    d = np.linspace(0.001, 0.999, 200)
    assert np.all(tight_curve(get_generator("kl"), d) >= 2 * d ** 2)


dist_pairs = st.integers(2, 10).flatmap(lambda k: st.tuples(
    st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k),
    st.lists(st.floats(1e-3, 1.0), min_size=k, max_size=k)))


@pytest.mark.parametrize("name", GENS)
@given(raw=dist_pairs)
def test_curve_never_above_divergence(name, raw):
    p, q = np.array(raw[0]) + 1e-12, np.array(raw[1])
    p, q = p / p.sum(), q / q.sum()
    gen = get_generator(name)
    delta = float(tv(p, q))
    if delta >= 1:
        return
    assert convex_envelope(gen, delta) <= lower_bound(gen, delta) + 1e-12
    assert lower_bound(gen, delta) <= float(divergence(gen, p, q)) * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("name", GENS)
def test_two_point_minimiser_attains(name):
    gen = get_generator(name)
    for delta in [0.1, 0.6]:
        p, q = two_point_minimiser(gen, delta)
        assert float(tv(p, q)) == pytest.approx(delta)
        assert float(divergence(gen, p, q)) == pytest.approx(lower_bound(gen, delta), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("name", GENS)
def test_tv_inverse_inverts_the_envelope(name):
    gen = get_generator(name)
    assert curve_is_convex(gen)
    for delta in [0.02, 0.3, 0.8]:
        r = convex_envelope(gen, delta)
        assert tv_inverse(gen, r) == pytest.approx(delta, abs=1e-9)
    assert tv_inverse(gen, 0.0) == 0.0


def test_tv_inverse_saturates_for_bounded_divergences():
    assert tv_inverse(get_generator("js"), np.log(2)) == 1.0
    assert tv_inverse(get_generator("tv"), 0.25) == pytest.approx(0.25, abs=1e-9)
    with pytest.raises(ValueError):
        tv_inverse(get_generator("kl"), -0.1)


def test_lower_hull_by_hand():
    from theory.joint_range import lower_hull
    xs = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    ys = np.array([0.0, 2.0, 1.0, 3.0, np.inf])
    # hull vertices (0,0), (2,1), (3,3); the infinite point is left out
    np.testing.assert_allclose(lower_hull(xs, ys), [0.0, 0.5, 1.0, 3.0, np.inf])
