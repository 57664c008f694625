"""A grid of linear heads trained as one batched model (the tuning workhorse).

:func:`train_heads_batched` trains ``B`` independent problems (e.g. tuning seeds of equal
shape) × ``G`` training configurations (learning rate, L2 weight) at once: parameters are
stacked ``(B, G, d)``, each step is one batched matrix product ``(B, G, d) @ (B, d, N)`` and
one loss call over all ``B·G·N`` rows.  It computes exactly what
:func:`experiments.pipeline.train_head` computes for each (problem, configuration) run
alone — full-batch Adam (torch's update, written out so that every configuration has its own
learning rate), objective ``mean loss + weight_decay·½‖θ‖²`` (bias not decayed), the
validation accuracy checked every ``eval_every`` steps and the best checkpoint kept (ties:
the later one) — up to floating-point summation order (tested against ``train_head``).
"""
from __future__ import annotations

import numpy as np

__all__ = ["train_heads_batched", "ADAM_BETAS", "ADAM_EPS"]

#: torch.optim.Adam's defaults, which ``train_head`` uses.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _objective(loss, Z, W_rows, W_blocks, progress, coef, theta):
    """Sum over (problem, config) of ``mean loss + coef·‖θ‖²``: each configuration's gradient
    is its own (its parameters appear in its term only), with a per-configuration mean."""
    import torch
    B, G, N = Z.shape
    if loss.rowwise:  # one call over every row, reduced per (problem, config)
        per = loss(Z.reshape(-1), W_rows, progress, reduction="none").view(B, G, N).mean(-1)
    else:  # a loss that reads its whole batch (aux_conf): one call per (problem, config)
        per = torch.stack([torch.stack([loss(Z[b, g], W_blocks[b], progress) for g in range(G)])
                           for b in range(B)])
    return (per + coef * (theta * theta).sum(-1)).sum()


def _adam_step(p, grad, m, v, step, lr_t, beta1, beta2, eps, dtype):
    """torch.optim.Adam's single-tensor update with a per-configuration learning rate
    (``lr_t``: Python floats, one per configuration; dim 1 of ``p``)."""
    import torch
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bc1 = 1 - beta1 ** step
    bc2_sqrt = (1 - beta2 ** step) ** 0.5
    neg = torch.tensor([-(lr / bc1) for lr in lr_t], dtype=dtype)  # step size rounded as torch does
    neg = neg.view((1, -1) + (1,) * (p.dim() - 2))
    denom = (v.sqrt() / bc2_sqrt).add_(eps)
    p.add_((m / denom) * neg)


def train_heads_batched(X, targets, loss, grid, steps: int, eval_every: int, bias: bool = True,
                        val=None, dtype: str = "float32"):
    """Train ``B`` problems × ``G`` configurations of linear logit heads ``z = Xθ (+ b)``.

    Args:
        X: ``(B, N, d)`` design rows (``B`` problems of the same shape).
        targets: ``(B, N)`` soft labels P(y=1).
        loss: an :class:`experiments.losses.Loss` (with its smoothing and scale).
        grid: ``G`` pairs ``(lr, weight_decay)``.
        steps, eval_every: as :class:`experiments.pipeline.TrainConfig`.
        val: ``(X_val (B, M, d), y_val (B, M))``: each head keeps the step with the best
            validation accuracy against ``y_val > 0.5`` (the last step when ``None``).
    Returns:
        ``(theta (B, G, d), b (B, G), info)`` as numpy, ``info`` = ``{"val_acc": (B, G),
        "best_step": (B, G)}`` (``val_acc`` NaN without ``val``).
    """
    import torch
    if torch.get_num_threads() > 1:
        torch.set_num_threads(1)  # as train_head: small matrices
    dt = getattr(torch, dtype)
    Xt = torch.as_tensor(np.asarray(X), dtype=dt)
    B, N, d = Xt.shape
    G = len(grid)
    XT = Xt.transpose(1, 2).contiguous()  # (B, d, N)
    W_blocks = torch.as_tensor(np.asarray(targets, dtype=float), dtype=dt)  # (B, N)
    # (B·G·N, 2) probability rows [1 − w, w], built once (as the losses build them from (n,) labels)
    W_rows = torch.stack([1 - W_blocks, W_blocks], dim=-1)[:, None].expand(B, G, N, 2).reshape(-1, 2)
    lrs = [float(lr) for lr, _ in grid]
    coef = torch.tensor([float(wd) * 0.5 for _, wd in grid], dtype=dt).view(1, G)
    theta = torch.zeros(B, G, d, dtype=dt, requires_grad=True)
    b = torch.zeros(B, G, dtype=dt, requires_grad=bias)
    state = [(theta, torch.zeros_like(theta), torch.zeros_like(theta))]
    if bias:
        state.append((b, torch.zeros_like(b), torch.zeros_like(b)))
    best_acc = torch.full((B, G), -1.0, dtype=torch.float64)
    best_theta, best_b = theta.detach().clone(), b.detach().clone()
    best_step = torch.zeros(B, G, dtype=torch.int64)
    XvT = yv = None
    if val is not None:
        XvT = torch.as_tensor(np.asarray(val[0]), dtype=dt).transpose(1, 2).contiguous()
        yv = torch.as_tensor(np.asarray(val[1]) > 0.5)[:, None, :]  # (B, 1, M)
    beta1, beta2 = ADAM_BETAS
    for step in range(steps):
        Z = torch.bmm(theta, XT) + b[..., None]  # (B, G, N): one matrix product
        obj = _objective(loss, Z, W_rows, W_blocks, step / max(1, steps), coef, theta)
        grads = torch.autograd.grad(obj, [p for p, _, _ in state])
        with torch.no_grad():
            for (p, m, v), g in zip(state, grads):
                _adam_step(p, g, m, v, step + 1, lrs, beta1, beta2, ADAM_EPS, dt)
            if XvT is not None and eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
                acc = ((torch.bmm(theta, XvT) + b[..., None]) > 0).eq(yv).double().mean(-1)
                better = acc >= best_acc
                best_acc = torch.where(better, acc, best_acc)
                best_theta[better] = theta[better]
                best_b[better] = b[better]
                best_step[better] = step + 1
    if XvT is None or not eval_every:
        best_theta, best_b = theta.detach().clone(), b.detach().clone()
        best_acc = torch.full((B, G), float("nan"), dtype=torch.float64)
        best_step = torch.full((B, G), steps, dtype=torch.int64)
    return (best_theta.numpy(), best_b.detach().numpy(),
            {"val_acc": best_acc.numpy(), "best_step": best_step.numpy()})
