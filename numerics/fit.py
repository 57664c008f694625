"""Fit the strong head ``g`` by minimising the empirical ``R_f(g∘h_s, F_w)`` (any generator).

The loss is computed in log space from logits: with ``log s = log_softmax(z)`` and
``l = log s − log w``, ``D_f(S‖W) = Σ_c w_c g(l_c)`` where ``g(l) = f(e^l)`` is generated
from the generator's sympy expression (:func:`fdiv_torch.codegen.logratio_torch`); no
probability ratio is formed.  ``"ce"`` is ``−Σ w log s``.  Optimiser: torch L-BFGS
(strong-Wolfe line search) in float64; the reported gradient norm is recomputed at the
returned parameters and ``converged`` is ``grad_norm ≤ grad_tol``.  Bound checks must call
:meth:`FitResult.require_converged`, which refuses unconverged fits.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

__all__ = ["FitResult", "UnconvergedFit", "fit_head", "loss_fn", "head_loss"]


class UnconvergedFit(RuntimeError):
    """A bound check was asked of a fit whose gradient norm is above tolerance."""


@dataclasses.dataclass
class FitResult:
    theta: np.ndarray
    loss: float
    grad_norm: float
    converged: bool
    iterations: int
    loss_name: str

    def require_converged(self) -> "FitResult":
        if not self.converged:
            raise UnconvergedFit(f"fit with {self.loss_name} did not converge "
                                 f"(gradient norm {self.grad_norm:.3g}); refusing the bound check")
        return self

    def probs(self, features) -> np.ndarray:
        from .binary import as_dist, sigmoid
        return as_dist(sigmoid(np.asarray(features, float) @ self.theta))


def loss_fn(loss):
    """``(log_s, w, log_w) ↦ per-example loss`` (torch): ``−Σ_c w_c log s_c`` for ``"ce"``,
    else ``Σ_c w_c ĝ(log s_c − log w_c)`` for a generator/name, with ``ĝ`` the clamped
    log-ratio of :func:`fdiv_torch.logratio.clamped_logratio` (exact inside ``±Lc``)."""
    if isinstance(loss, str) and loss == "ce":
        return lambda log_s, w, log_w: -(w * log_s).sum(-1)
    from fdiv_torch.logratio import clamped_logratio
    from theory import get_generator
    gen = get_generator(loss) if isinstance(loss, str) else loss
    return lambda log_s, w, log_w: (w * clamped_logratio(gen, log_s - log_w)).sum(-1)


def head_loss(loss, theta: torch.Tensor, H: torch.Tensor, W: torch.Tensor, weights: torch.Tensor,
              l2: float = 0.0) -> torch.Tensor:
    """Weighted empirical ``R_f`` of the binary head ``σ(Hθ)`` against weak labels ``W``."""
    z = H @ theta
    log_s = torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], -1)
    with torch.no_grad():
        log_w = torch.log(W)
    per = loss_fn(loss)(log_s, W, log_w)
    return (weights * per).sum() + 0.5 * l2 * (theta ** 2).sum()


def fit_head(loss, H, W, weights=None, l2: float = 0.0, theta0=None, seed: int = 0,
             max_iter: int = 500, grad_tol: float = 1e-7, optimizer: str = "lbfgs",
             lr: float = 0.5, steps: int = 200) -> FitResult:
    """Minimise ``Σ_i weights_i ℓ(σ(H_i θ), W_i) + ½ l2 ‖θ‖²``.

    Args:
        loss: ``"ce"``, a generator name/expression, or a :class:`theory.Generator`.
        H: features ``(n, d)``; W: weak labels ``(n, 2)``; a class with ``w_c = 0``
            contributes nothing (hard labels are allowed for every loss).
        weights: per-example weights (default ``1/n``).
        theta0: start (default: ``seed``-drawn small normal).
        optimizer: ``"lbfgs"`` or ``"gd"`` (``steps`` plain gradient steps of size ``lr``).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problems: thread start-up dominates (5 ms per op on 2 cores)
    try:
        return _fit(loss, H, W, weights, l2, theta0, seed, max_iter, grad_tol, optimizer, lr, steps)
    finally:
        torch.set_num_threads(threads)


def _fit(loss, H, W, weights, l2, theta0, seed, max_iter, grad_tol, optimizer, lr, steps):
    H = torch.as_tensor(np.asarray(H, float), dtype=torch.float64)
    W_np = np.asarray(W, float)
    W = torch.as_tensor(np.clip(W_np, 1e-300, 1.0), dtype=torch.float64)
    n, d = H.shape
    wts = torch.as_tensor(np.full(n, 1.0 / n) if weights is None else np.asarray(weights, float), dtype=torch.float64)
    if theta0 is None:
        theta0 = np.random.default_rng(seed).normal(0, 0.01, d)
    theta = torch.tensor(np.asarray(theta0, float), dtype=torch.float64, requires_grad=True)
    zero_mask = torch.as_tensor(W_np > 0)
    Wm = torch.where(zero_mask, W, torch.zeros_like(W))
    per_example = loss_fn(loss)
    # classes with w_c = 0 contribute 0 (D_f's q = 0 < p term p·f'(∞) is not a training
    # loss here): their log w is set to log s, so l = 0 there and no inf/nan enters the graph
    log_W = torch.log(W)

    def objective():
        z = H @ theta
        log_s = torch.stack([torch.nn.functional.logsigmoid(-z), torch.nn.functional.logsigmoid(z)], -1)
        per = per_example(log_s, Wm, torch.where(zero_mask, log_W, log_s.detach()))
        return (wts * per).sum() + 0.5 * l2 * (theta ** 2).sum()

    iters = 0
    if optimizer == "gd":
        for _ in range(steps):
            val = objective()
            (grad,) = torch.autograd.grad(val, theta)
            with torch.no_grad():
                theta -= lr * grad
            iters += 1
    else:
        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, tolerance_grad=grad_tol * 1e-2,
                                tolerance_change=1e-16, history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            val = objective()
            val.backward()
            return val
        for _ in range(3):  # restarts of the L-BFGS memory help on flat tails
            opt.step(closure)
            iters += opt.state[opt._params[0]].get("n_iter", 0)
            theta.grad = None
            val = objective()
            (grad,) = torch.autograd.grad(val, theta)
            if float(grad.norm()) <= grad_tol:
                break
    val = objective()
    (grad,) = torch.autograd.grad(val, theta)
    gn = float(grad.norm())
    name = loss if isinstance(loss, str) else loss.name
    return FitResult(theta.detach().numpy().copy(), float(val.detach()), gn,
                     bool(np.isfinite(gn) and gn <= grad_tol), iters, name)
