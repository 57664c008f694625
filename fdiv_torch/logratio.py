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

__all__ = ["clamp_limit", "tail_slopes", "clamped_logratio", "fprime_inf", "reference_kernel"]


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


@functools.lru_cache(maxsize=256)
def fprime_inf(gen: Generator) -> float:
    """``f'(∞) = lim_{t→∞} f(t)/t`` (:func:`theory.derived.fprime_at_inf`) as a float: ``inf``
    when infinite, ``nan`` when it could not be determined."""
    from theory.derived import fprime_at_inf, to_float
    value = to_float(fprime_at_inf(gen))
    return float("nan") if value is None else value


def reference_kernel(gen: Generator, lc: float):
    """The reference path as a kernel, ``(z, w, log w̃, zeros) ↦ per-example loss``:
    ``Σ_c w_c ĝ(log_softmax(z)_c − log w̃_c)`` through autograd (twice differentiable, weak
    labels may require grad), plus ``Σ_{c: w_c = 0} s_c f'(∞)`` where ``zeros = (w̃, mask,
    f'(∞))`` is given (``w̃``: ``w`` with its zeros replaced by 1)."""
    def kernel(z, w, log_w, zeros=None):
        log_s = torch.log_softmax(z, dim=-1)
        per_example = (w * clamped_logratio(gen, log_s - log_w, lc)).sum(dim=-1)
        if zeros is not None and zeros[2] != 0:  # Σ_{c: w_c = 0} s_c f'(∞)
            per_example = per_example + zeros[2] * (torch.exp(log_s) * zeros[1]).sum(dim=-1)
        return per_example
    return kernel
