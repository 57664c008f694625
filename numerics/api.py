"""The ``theory`` functions the checks test, with a flagged stand-in while one is missing.

Each accessor returns ``(function, source)``; ``source`` names the module used and is
recorded in every check's details, so a check that ran on a stand-in says so.  The
stand-ins come from :mod:`numerics.reference` (independent brute-force code), never a
copy of the theory module.
"""
from __future__ import annotations

import importlib

import numpy as np

from . import reference as ref

__all__ = ["divergence", "tv", "tight_curve", "convex_envelope", "tv_inverse",
           "two_point_minimiser", "error_interval", "loss_constants", "excess_risk_bound",
           "sources"]

_SOURCES: dict[str, str] = {}


def _get(module: str, name: str):
    try:
        mod = importlib.import_module(module)
        fn = getattr(mod, name)
        _SOURCES[name] = f"{module}.{name}"
        return fn
    except (ImportError, AttributeError):
        _SOURCES[name] = f"numerics.reference stand-in ({module}.{name} missing)"
        return None


def sources() -> dict[str, str]:
    """Which implementation each accessor used so far."""
    return dict(_SOURCES)


def divergence(gen, p, q, axis=-1):
    fn = _get("theory.divergence", "divergence")
    return (fn or ref.divergence)(gen, p, q, axis=axis)


def tv(p, q, axis=-1):
    return ref.tv(p, q, axis=axis)


def _ref_envelope(gen):
    grid = np.unique(np.concatenate([np.linspace(0, 1, 401), np.geomspace(1e-4, 1, 200)]))
    curve, _ = ref.two_point_curve(gen, grid)
    return grid, curve, ref.lower_hull(grid, curve)


_ENV: dict = {}


def tight_curve(gen, deltas):
    fn = _get("theory.joint_range", "tight_curve")
    if fn is not None:
        return np.asarray(fn(gen, np.asarray(deltas, float)), float)
    return ref.two_point_curve(gen, deltas)[0]


def two_point_minimiser(gen, delta):
    fn = _get("theory.joint_range", "two_point_minimiser")
    if fn is not None:
        return fn(gen, delta)
    _, q = ref.two_point_curve(gen, [delta])
    q = float(q[0])
    return np.array([q + delta, 1 - q - delta]), np.array([q, 1 - q])


def convex_envelope(gen, delta):
    fn = _get("theory.joint_range", "convex_envelope")
    if fn is not None:
        return float(fn(gen, delta))
    if gen not in _ENV:
        _ENV[gen] = _ref_envelope(gen)
    grid, _, env = _ENV[gen]
    return float(np.interp(delta, grid, env))


def tv_inverse(gen, r):
    fn = _get("theory.joint_range", "tv_inverse")
    if fn is not None:
        return float(fn(gen, float(r)))
    if gen not in _ENV:
        _ENV[gen] = _ref_envelope(gen)
    grid, _, env = _ENV[gen]
    return ref.tv_inverse_from_curve(grid, env, float(r))


def error_interval(gen, weak_error, disagreement):
    fn = _get("theory.bounds", "error_interval")
    if fn is not None:
        lo, hi = fn(gen, weak_error, disagreement)
        return float(lo), float(hi)
    rad = tv_inverse(gen, disagreement)
    return max(0.0, weak_error - rad), min(1.0, weak_error + rad)


class _Constants:
    def __init__(self, d):
        self.bound = d["bound"]
        self.lipschitz_prob = d["lipschitz_prob"]
        self.lipschitz_logit = d["lipschitz_logit"]


def loss_constants(gen, gamma):
    fn = _get("theory.bounds", "loss_constants")
    if fn is not None:
        return fn(gen, gamma)
    return _Constants(ref.binary_loss_constants(gen, gamma))


def excess_risk_bound(gen, gamma, n, delta, class_size=None, radius=None):
    fn = _get("theory.bounds", "excess_risk_bound")
    if fn is not None:
        return float(fn(gen, gamma, n, delta, class_size=class_size, radius=radius))
    c = loss_constants(gen, gamma)
    if class_size is not None:
        return 2 * c.bound * np.sqrt(np.log(2 * class_size / delta) / (2 * n))
    return 4 * c.lipschitz_logit * radius / np.sqrt(n) + 2 * c.bound * np.sqrt(np.log(2 / delta) / (2 * n))


def envelope_grid(gen):
    """``(δ grid, L_f, L̆_f)`` (theory's cached grid, else the reference one)."""
    fn = _get("theory.joint_range", "envelope_grid")
    if fn is not None:
        return fn(gen)
    if gen not in _ENV:
        _ENV[gen] = _ref_envelope(gen)
    return _ENV[gen]


def tv_inverse_fast(gen, r):
    """``L̆_f⁻¹(r)`` by inverting the cached envelope grid (linear between grid points).

    Linear interpolation lies on or above the convex envelope, so this inverse is on or
    below the exact one: a bound check that passes with it passes with the exact value.
    """
    grid, _, env = envelope_grid(gen)
    return ref.tv_inverse_from_curve(np.asarray(grid), np.asarray(env), float(r))
