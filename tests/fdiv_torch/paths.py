"""Test helpers: one loss evaluated on a fused kernel (default: the one ``fdiv_loss`` picks) and
on the reference path; the float32 loss semantics evaluated in float64 as an oracle."""
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


def float32_semantics_in_float64(z: torch.Tensor, w, spec, smoothing: float = 0.0, lc: float = 30.0):
    """``(per-example loss, ∂ Σ loss / ∂z)`` of the loss as float32 defines it (``l`` clamped
    to ``±lc`` and continued linearly), computed in float64 on the CPU from the symbolic
    generator, independently of the kernels: ``Σ_{w>0} w (g(clamp l) + tails) + Σ_{w=0}
    s f'(∞)``, with ``w ← (w + ε)/(1 + kε)`` and the slopes ``g'(±lc)`` from sympy."""
    from fdiv_torch.codegen import logratio_torch
    from theory import get_generator
    from theory.codegen import logratio_grad_expr
    from theory.derived import fprime_at_inf, to_float
    from theory.parsing import L
    gen = get_generator(spec)
    dg = logratio_grad_expr(gen)
    lo, hi = (float(dg.subs(L, a).evalf()) for a in (-lc, lc))
    x = z.detach().double().cpu().requires_grad_()
    w = torch.as_tensor(w).double().cpu()
    w = (w + smoothing) / (1 + w.shape[-1] * smoothing)
    log_s = torch.log_softmax(x, -1)
    pos = w > 0
    l = log_s - torch.log(torch.where(pos, w, torch.ones_like(w)))
    val = (logratio_torch(gen)(l.clamp(-lc, lc)) + torch.where(l < -lc, lo * (l + lc), 0.0)
           + torch.where(l > lc, hi * (l - lc), 0.0))
    zero_term = log_s.exp() * to_float(fprime_at_inf(gen)) if not pos.all() else 0.0
    per = torch.where(pos, w * val, zero_term).sum(-1)
    per.sum().backward()
    return per.detach(), x.grad
