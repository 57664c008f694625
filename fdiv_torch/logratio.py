"""The clamped log-ratio form of a generator on torch tensors: the one implementation that
the reference loss path (:func:`experiments.losses.fdiv_loss` with ``fused=False``) and the
numerics fits (:mod:`numerics.fit`) call.

``g(l) = f(e^l)`` (:func:`fdiv_torch.codegen.logratio_torch`, generated from sympy) is
evaluated at ``clamp(l, −Lc, Lc)`` and continued linearly outside with the slopes
``g'(±Lc)`` evaluated from the symbolic derivative
(:func:`theory.codegen.logratio_grad_expr`)::

    ĝ(l) = g(clamp(l)) + g'(−Lc)·(l + Lc)·[l < −Lc] + g'(Lc)·(l − Lc)·[l > Lc]

Inside ``[−Lc, Lc]`` the value is exactly ``g``; generators linear in a tail (``kl`` in
both) are exact everywhere.  ``Lc`` (:func:`clamp_limit`) is 30 below float64 (``e^30``
is far beyond any ratio a float32 softmax resolves) and 200 in float64.
"""
from __future__ import annotations

import functools
import math

import torch

from theory.codegen import logratio_grad_expr
from theory.generators import Generator
from theory.parsing import L

from .codegen import logratio_torch

__all__ = ["clamp_limit", "tail_slopes", "clamped_logratio"]


def clamp_limit(dtype: torch.dtype) -> float:
    """``Lc``: 200 for float64 logits, 30 otherwise."""
    return 200.0 if dtype == torch.float64 else 30.0


@functools.lru_cache(maxsize=512)
def tail_slopes(gen: Generator, lc: float) -> tuple[float, float]:
    """``(g'(−Lc), g'(Lc))`` from the symbolic derivative.

    Raises:
        ValueError: a slope is not finite (e.g. ``exp(t-1)-t`` at ``Lc = 200``): the
            loss cannot be continued linearly there.
    """
    dg = logratio_grad_expr(gen)
    pair = []
    for at in (-lc, lc):
        try:
            value = float(dg.subs(L, at).evalf())
        except (TypeError, ValueError):
            value = float("nan")
        if not math.isfinite(value):
            raise ValueError(f"generator {gen.text!r}: g'(l) = d f(e^l)/dl is not finite at l = {at:g}; "
                             f"its log-space loss cannot be continued linearly there")
        pair.append(value)
    return pair[0], pair[1]


def clamped_logratio(gen: Generator, l: torch.Tensor, lc: float | None = None) -> torch.Tensor:
    """``ĝ(l)`` elementwise (any shape; autograd-ready); ``lc`` defaults to
    :func:`clamp_limit` of ``l``'s dtype.

    The tails go through ``torch.where``, so the backward pass never adds and subtracts the
    (possibly huge) tail slopes: an unselected branch contributes an exact zero.
    """
    lc = clamp_limit(l.dtype) if lc is None else float(lc)
    lo, hi = tail_slopes(gen, lc)
    zero = torch.zeros_like(l)
    return (logratio_torch(gen)(l.clamp(-lc, lc)) + torch.where(l < -lc, lo * (l + lc), zero)
            + torch.where(l > lc, hi * (l - lc), zero))
