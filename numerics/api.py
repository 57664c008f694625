"""The ``theory`` functions the checks test, in one place.

Checks call these names (never a private copy), and ``sources()`` names the module each
comes from in every check record.  Independent oracles live in :mod:`numerics.reference`.
"""
from __future__ import annotations

import numpy as np

from theory.bounds import error_interval, excess_risk_bound, loss_constants
from theory.divergence import divergence
from theory.joint_range import (convex_envelope, envelope_grid, tight_curve, tv_inverse,
                                two_point_minimiser)

from . import reference as ref

__all__ = ["divergence", "tv", "tight_curve", "convex_envelope", "tv_inverse",
           "two_point_minimiser", "error_interval", "loss_constants", "excess_risk_bound",
           "envelope_grid", "tv_inverse_fast", "sources"]

#: total variation from the independent reference (the checks compare against it)
tv = ref.tv


def sources() -> dict[str, str]:
    """Which implementation each accessor uses (stored in check records)."""
    names = {"divergence": "theory.divergence", "tight_curve": "theory.joint_range",
             "convex_envelope": "theory.joint_range", "tv_inverse": "theory.joint_range",
             "two_point_minimiser": "theory.joint_range", "envelope_grid": "theory.joint_range",
             "error_interval": "theory.bounds", "loss_constants": "theory.bounds",
             "excess_risk_bound": "theory.bounds", "tv": "numerics.reference"}
    return {name: f"{module}.{name}" for name, module in names.items()}


def tv_inverse_fast(gen, r):
    """``L̆_f⁻¹(r)`` by inverting the cached envelope grid (linear between grid points).

    Linear interpolation lies on or above the convex envelope, so this inverse is on or
    below the exact one: a bound check that passes with it passes with the exact value.
    """
    grid, _, env = envelope_grid(gen)
    return ref.tv_inverse_from_curve(np.asarray(grid), np.asarray(env), float(r))
