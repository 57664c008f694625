"""Test helper: one loss evaluated on a fused kernel (default: the one ``fdiv_loss`` picks) and
on the reference path."""
from __future__ import annotations

import torch

from experiments.losses import fdiv_loss


def fused_and_reference(z: torch.Tensor, w, spec, reduction: str = "mean", fused=True, **kw):
    """``(fused loss, reference loss, fused ∂/∂z, reference ∂/∂z)`` of
    :func:`experiments.losses.fdiv_loss` at logits ``z`` (gradients of the summed loss);
    ``fused``: which kernel (``True``, ``"c"``, ``"torch"``); ``kw``: e.g. ``smoothing``."""
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    la = fdiv_loss(a, w, spec, reduction=reduction, fused=fused, **kw)
    lb = fdiv_loss(b, w, spec, reduction=reduction, fused=False, **kw)
    la.sum().backward()
    lb.sum().backward()
    return la.detach(), lb.detach(), a.grad, b.grad
