import math

import numpy as np
import pytest

from theory import NAMED, get_generator
from theory.bounds import error_interval, excess_risk_bound, loss_constants, sample_size
from theory.divergence import binary_divergence


def test_kl_constants_by_hand():
    # KL(W‖S) as a function of the logit: ∂_z = s − w, so sup = 1 − 2γ;
    # bound at the vertex: (1−γ)log((1−γ)/γ) + γ log(γ/(1−γ)) = (1−2γ) log((1−γ)/γ)
    g = 0.1
    c = loss_constants(get_generator("kl"), g)
    assert c.lipschitz_logit == pytest.approx(1 - 2 * g, rel=1e-6)
    assert c.bound == pytest.approx((1 - 2 * g) * math.log((1 - g) / g), rel=1e-12)
    assert c.lipschitz_prob == pytest.approx(1 / g - 1 / (1 - g) if False else (1 - 2 * g) / (g * (1 - g)), rel=1e-12)


def test_tv_constants_by_hand():
    c = loss_constants(get_generator("tv"), 0.2)
    assert c.bound == pytest.approx(0.6)
    assert c.lipschitz_prob == pytest.approx(1.0)
    assert c.lipschitz_logit == pytest.approx(0.25, rel=1e-6)


@pytest.mark.parametrize("name", NAMED)
def test_bound_and_lipschitz_dominate_a_dense_grid(name):
    gen = get_generator(name)
    g = 0.07
    c = loss_constants(gen, g)
    s, w = np.meshgrid(np.linspace(g, 1 - g, 121), np.linspace(g, 1 - g, 121))
    vals = binary_divergence(gen, s, w)
    assert vals.max() <= c.bound * (1 + 1e-9)
    assert vals.max() >= c.bound * (1 - 1e-9)  # attained at a vertex
    # finite differences in the logit never exceed the logit Lipschitz constant
    z = np.log(s / (1 - s))
    dz = np.diff(z, axis=1)
    slopes = np.abs(np.diff(vals, axis=1)) / dz
    assert slopes.max() <= c.lipschitz_logit * (1 + 1e-6)


def test_sample_size_formulas():
    gen = get_generator("js")
    c = loss_constants(gen, 0.1)
    out = sample_size(gen, 0.1, 0.05, 0.05, class_size=1000)
    assert out["n"] == math.ceil(2 * c.bound ** 2 * math.log(2 * 1000 / 0.05) / 0.05 ** 2)
    out = sample_size(gen, 0.1, 0.05, 0.05, radius=3.0)
    n = out["n"]
    assert excess_risk_bound(gen, 0.1, n, 0.05, radius=3.0) <= 0.05
    assert excess_risk_bound(gen, 0.1, n - 1, 0.05, radius=3.0) > 0.05
    with pytest.raises(ValueError):
        sample_size(gen, 0.1, 0.05, 0.05)


def test_error_interval_tv_and_clipping():
    lo, hi = error_interval(get_generator("tv"), 0.2, 0.05)
    assert (lo, hi) == (pytest.approx(0.15), pytest.approx(0.25))
    lo, hi = error_interval(get_generator("kl"), 0.1, 2 * 0.3 ** 2)  # Pinsker radius would be 0.3
    assert lo == 0.0 and 0.3 < hi < 0.4


@pytest.mark.parametrize("gamma", [1e-12, 0.49999999, 0.05])
def test_gamma_is_substituted_exactly(gamma):
    """B_f(γ) of KL is (1−2γ) log((1−γ)/γ) for the γ typed: not for a rounded one
    (nsimplify made 0.49999999 into 1/2, where B_f = 0, and 1e-40 into 0)."""
    want = (1 - 2 * gamma) * math.log((1 - gamma) / gamma)
    got = loss_constants(get_generator("kl"), gamma).bound
    assert got > 0 and got == pytest.approx(want, rel=1e-9)
