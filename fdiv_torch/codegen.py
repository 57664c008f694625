"""Torch functions generated from the symbolic generators (never retyped).

The torch side of :mod:`theory.codegen`: ``sympy.lambdify`` of the same expressions
(``g(l) = f(e^l)`` and ``g'(l)`` from :func:`theory.codegen.logratio_expr` and
:func:`theory.codegen.logratio_grad_expr`) into torch operations, differentiable by autograd.
"""
from __future__ import annotations

import functools
from typing import Callable

import sympy as sp
import torch

from theory.codegen import broadcasting, logratio_expr, logratio_grad_expr
from theory.generators import Generator
from theory.parsing import L

__all__ = ["TORCH_MODULES", "torch_function", "logratio_torch", "logratio_grad_torch"]


def _torch_max(*args):
    out = torch.as_tensor(args[0])
    for a in args[1:]:
        out = torch.maximum(out, torch.as_tensor(a, dtype=out.dtype) if not isinstance(a, torch.Tensor) else a)
    return out


def _torch_min(*args):
    out = torch.as_tensor(args[0])
    for a in args[1:]:
        out = torch.minimum(out, torch.as_tensor(a, dtype=out.dtype) if not isinstance(a, torch.Tensor) else a)
    return out


TORCH_MODULES = [{"max": _torch_max, "min": _torch_min, "amax": _torch_max, "amin": _torch_min},
                  "torch"]


@functools.lru_cache(maxsize=1024)
def torch_function(expr: sp.Expr, var: sp.Symbol) -> Callable:
    """``x ↦ expr(x)`` on torch tensors (any float dtype, autograd-ready), via ``lambdify``.

    Common subexpressions are computed once (``cse=True``: e.g. ``exp(l)`` in ``js``), and
    only a constant expression pays for broadcasting (an extra ``zeros_like`` pass).
    """
    fn = sp.lambdify(var, expr, modules=TORCH_MODULES, cse=True)
    if var in expr.free_symbols:
        return fn
    return broadcasting(fn, torch.zeros_like)


def logratio_torch(gen: Generator) -> Callable:
    """``l ↦ f(e^l)`` (torch, differentiable)."""
    return torch_function(logratio_expr(gen), L)


def logratio_grad_torch(gen: Generator) -> Callable:
    """``l ↦ g'(l) = e^l f'(e^l)`` (torch)."""
    return torch_function(logratio_grad_expr(gen), L)
