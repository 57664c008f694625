"""The one sigmoid, binary D_f and its gradients (theory/binary.py, theory/divergence.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from theory import NAMED, get_generator
from theory.binary import binary_logit_grad, binary_prob_grad, sigmoid
from theory.divergence import binary_divergence, divergence


def test_sigmoid_closed_form_and_extremes():
    z = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 40.0, 800.0])
    s = sigmoid(z)
    assert s[3] == 0.5 and s[-1] == 1.0 and s[0] == 0.0
    for zi, si in zip(z[1:-1], s[1:-1]):
        assert si == pytest.approx(1 / (1 + math.exp(-zi)), rel=1e-15)
    assert sigmoid(-30.0) == pytest.approx(math.exp(-30) / (1 + math.exp(-30)), rel=1e-14)
    zz = np.linspace(-20, 20, 101)  # σ(z) + σ(−z) = 1
    assert np.allclose(sigmoid(zz) + sigmoid(-zz), 1.0, atol=1e-15)


@pytest.mark.parametrize("name", NAMED)
def test_binary_divergence_fast_path_is_the_general_one(name):
    gen = get_generator(name)
    rng = np.random.default_rng(0)
    s, w = rng.uniform(0.01, 0.99, 50), rng.uniform(0.01, 0.99, 50)
    fast = binary_divergence(gen, s, w)
    general = divergence(gen, np.stack([s, 1 - s], -1), np.stack([w, 1 - w], -1))
    assert np.array_equal(fast, general)
    # at the border the conventions apply (KL(S‖W) at s = 0 is −log(1 − w))
    if name == "reverse_kl":
        assert binary_divergence(gen, 0.0, 0.25) == pytest.approx(-math.log(0.75))


@pytest.mark.parametrize("name", ["kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "neyman"])
def test_gradients_are_derivatives_of_binary_divergence(name):
    gen = get_generator(name)
    s, w, h = np.array([0.2, 0.5, 0.8]), np.array([0.6, 0.3, 0.9]), 1e-6
    num_s = (binary_divergence(gen, s + h, w) - binary_divergence(gen, s - h, w)) / (2 * h)
    assert binary_prob_grad(gen, s, w) == pytest.approx(num_s, rel=1e-6)
    z = np.log(s / (1 - s))
    num_z = (binary_divergence(gen, sigmoid(z + h), w) - binary_divergence(gen, sigmoid(z - h), w)) / (2 * h)
    assert binary_logit_grad(gen, s, w) == pytest.approx(num_z, rel=1e-6)


def test_the_figure_pull_is_the_theory_gradient():
    from numerics.reference import binary_grad_logit  # the independent oracle of C7
    from paper_figs.fig_noise import pull
    z = np.linspace(-12, 4, 50)
    gen = get_generator("hellinger")
    assert np.allclose(pull("hellinger", z), -binary_logit_grad(gen, sigmoid(z), 0.9), rtol=0, atol=0)
    assert np.allclose(pull("hellinger", z), -binary_grad_logit(gen, sigmoid(z), 0.9), rtol=1e-12)
    assert np.allclose(pull("ce", z), 0.9 - sigmoid(z))
