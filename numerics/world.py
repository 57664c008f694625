"""A synthetic weak-to-strong world with a known ground truth ``F*`` (binary, ``k = 2``).

* Inputs ``x ~ N(0, I_d)`` — or, with ``support=m``, uniform on ``m`` fixed Gaussian
  points, so that every population quantity is an exact finite sum.
* Truth: a logistic teacher with symmetric label noise ``η``:
  ``F*(x)_1 = η + (1 − 2η) σ(β·x + b)`` (``η = 0`` and large ``‖β‖`` give near one-hot truth).
* Weak supervisor ``F_w``: logistic regression fitted (cross-entropy) on ``weak_n`` noisy
  labels using only the first ``weak_features`` coordinates, then tempered by
  ``weak_temperature``; fewer features / labels = a worse supervisor.
* Strong representation ``h_s``: ``"full"`` (all ``d`` coordinates + bias),
  ``"subset"`` (first ``strong_dim`` coordinates + bias), or ``"random"``
  (``strong_dim`` random ReLU features of ``x`` + bias); richness is dialled by the kind
  and ``strong_dim``.  The strong model is ``F_sw = σ(h_s(x)·θ)`` with only ``θ`` learned.

Probabilities are returned as arrays ``(n, 2)`` (columns: class 0, class 1).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .binary import as_dist, sigmoid

__all__ = ["World", "make_world", "Population", "as_dist", "sigmoid"]


@dataclasses.dataclass
class Population:
    """Inputs with weights: exact (discrete support) or a Monte Carlo sample.

    ``mc_se(values)`` gives the standard error of ``Σ weights·values`` (0 when exact).
    """

    x: np.ndarray
    weights: np.ndarray
    exact: bool

    def mean(self, values) -> float:
        return float(np.sum(self.weights * np.asarray(values, float)))

    def mc_se(self, values) -> float:
        if self.exact:
            return 0.0
        v = np.asarray(values, float)
        return float(np.std(v) / np.sqrt(len(v)))


@dataclasses.dataclass
class World:
    d: int
    teacher: np.ndarray
    bias: float
    noise: float
    weak_features: int
    weak_theta: np.ndarray
    weak_temperature: float
    strong: str
    strong_dim: int
    random_proj: np.ndarray | None
    support: np.ndarray | None
    seed: int

    # ----- truth, weak, strong features
    def f_star(self, x) -> np.ndarray:
        z = np.asarray(x, float) @ self.teacher + self.bias
        return as_dist(self.noise + (1 - 2 * self.noise) * sigmoid(z))

    def weak_features_of(self, x) -> np.ndarray:
        x = np.asarray(x, float)
        return np.concatenate([x[:, :self.weak_features], np.ones((len(x), 1))], 1)

    def weak_logit(self, x) -> np.ndarray:
        return self.weak_features_of(x) @ self.weak_theta / self.weak_temperature

    def weak(self, x) -> np.ndarray:
        return as_dist(sigmoid(self.weak_logit(x)))

    def strong_features(self, x) -> np.ndarray:
        x = np.asarray(x, float)
        if self.strong == "full":
            h = x
        elif self.strong == "subset":
            h = x[:, :self.strong_dim]
        else:
            h = np.maximum(x @ self.random_proj, 0.0) / np.sqrt(self.strong_dim)
        return np.concatenate([h, np.ones((len(x), 1))], 1)

    # ----- sampling
    def sample_x(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.support is not None:
            return self.support[rng.integers(0, len(self.support), n)]
        return rng.standard_normal((n, self.d))

    def sample_labels(self, x, rng) -> np.ndarray:
        return (rng.random(len(x)) < self.f_star(x)[:, 1]).astype(float)

    def population(self, n_mc: int = 200_000, seed: int = 12345) -> Population:
        """Exact support with uniform weights, else ``n_mc`` held-out draws (weights 1/n)."""
        if self.support is not None:
            m = len(self.support)
            return Population(self.support, np.full(m, 1.0 / m), True)
        x = self.sample_x(n_mc, np.random.default_rng(seed))
        return Population(x, np.full(n_mc, 1.0 / n_mc), False)


def make_world(seed: int = 0, d: int = 6, noise: float = 0.1, teacher_scale: float = 3.0,
               weak_features: int = 2, weak_n: int = 200, weak_temperature: float = 1.0,
               strong: str = "full", strong_dim: int | None = None,
               support: int | None = 64) -> World:
    """Build a world; the weak supervisor is fitted here (cross-entropy, tiny ridge)."""
    from .fit import fit_head  # local import: fit depends on torch
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal(d)
    teacher *= teacher_scale / np.linalg.norm(teacher)
    bias = 0.3 * rng.standard_normal()
    strong_dim = d if strong_dim is None else int(strong_dim)
    proj = rng.standard_normal((d, strong_dim)) if strong == "random" else None
    pts = rng.standard_normal((support, d)) if support else None
    world = World(d, teacher, float(bias), float(noise), int(weak_features), np.zeros(weak_features + 1),
                  float(weak_temperature), strong, strong_dim, proj, pts, seed)
    xs = world.sample_x(weak_n, rng)
    ys = world.sample_labels(xs, rng)
    fit = fit_head("ce", world.weak_features_of(xs), as_dist(ys), l2=1e-2)
    world.weak_theta = fit.theta
    return world
