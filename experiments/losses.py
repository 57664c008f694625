"""Training losses for the strong model: f-divergences, cross-entropy, Burns et al. baselines.

Convention (``docs/THEORY.md``): ``D_f(S‖W) = Σ_c w_c f(s_c / w_c)``, strong first.
:func:`fdiv_loss` evaluates it in log space, ``l_c = log s_c − log w_c`` with
``log s = log_softmax(logits)``, through the generated log-ratio form ``g(l) = f(e^l)``
(:func:`fdiv_torch.codegen.logratio_torch`); no formula is retyped here.

Stability. ``l`` is clamped to ``[−Lc, Lc]`` (``Lc = 30`` in float32, ``200`` in float64)
and ``g`` is continued linearly outside (``torch.where``, no cancellation in the backward pass) with the slopes ``g'(±Lc)`` evaluated from the
symbolic derivative :func:`theory.codegen.logratio_grad_expr`.  Inside the clamp the value
is exact; for generators whose ``g`` is linear in a tail (``kl`` in both, ``jeffreys``
as ``l → −∞``) it is exact everywhere, and for the others it keeps values and gradients
finite for logits up to ±100.

Smoothing. Weak labels with exact zeros would make ``log w = −∞``; every weak row is
replaced by ``w ← (w + ε) / (1 + k ε)`` (``ε = smoothing``, default 1e-6; ``smoothing=0``
disables it).  The same smoothing is used by ``ce`` so ``ce`` and ``kl`` have identical
gradients (claim C8).
"""
from __future__ import annotations

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["fdiv_loss", "ce_loss", "aux_conf_loss", "product_loss", "make_loss",
           "prepare_weak", "as_multiclass_logits", "LOSS_NAMES", "BASELINE_LOSSES",
           "DEFAULT_LOSSES", "Loss"]

#: Default sweep losses: the paper's seven (``ce`` then its f-divergences) plus ``tv``.
DEFAULT_LOSSES: tuple[str, ...] = ("ce", "kl", "pearson", "hellinger", "js", "jeffreys",
                                   "reverse_kl", "tv")
#: Baselines from Burns et al. 2023 (not f-divergences).
BASELINE_LOSSES: tuple[str, ...] = ("aux_conf", "product")


def _names() -> tuple[str, ...]:
    from theory import NAMED
    return ("ce",) + tuple(NAMED) + BASELINE_LOSSES


LOSS_NAMES = _names()


def as_multiclass_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(n,)`` binary logits ``z`` → ``(n, 2)`` logits ``[0, z]`` (softmax = sigmoid); else as is."""
    if logits.dim() == 1:
        return torch.stack([torch.zeros_like(logits), logits], dim=-1)
    if logits.dim() != 2:
        raise ValueError(f"strong_logits must have shape (n,) or (n, k), got {tuple(logits.shape)}")
    return logits


def prepare_weak(weak_probs, k: int, dtype: torch.dtype, device=None,
                 smoothing: float = 1e-6, tol: float = 1e-4) -> torch.Tensor:
    """Validate weak labels and smooth them: ``(n,)`` P(class 1) or ``(n, k)`` rows.

    Raises:
        ValueError: NaN/inf, negative entries or entries above 1, rows not summing to 1
            (within ``tol``), a shape that does not match the logits, or bad ``smoothing``.
    """
    w = torch.as_tensor(weak_probs, device=device)
    w = w.to(dtype)
    if w.dim() == 1:
        if k != 2:
            raise ValueError(f"1-d weak_probs are P(class 1) for binary tasks, but the logits have {k} classes")
        w = torch.stack([1 - w, w], dim=-1)
    if w.dim() != 2 or w.shape[1] != k:
        raise ValueError(f"weak_probs must have shape (n,) or (n, {k}), got {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        bad = (~torch.isfinite(w)).any(dim=1).nonzero()[0].item()
        raise ValueError(f"weak_probs row {bad} contains NaN or inf")
    if (w < 0).any() or (w > 1 + tol).any():
        bad = ((w < 0) | (w > 1 + tol)).any(dim=1).nonzero()[0].item()
        raise ValueError(f"weak_probs row {bad} has entries outside [0, 1]: {w[bad].tolist()}")
    sums = w.sum(dim=1)
    off = (sums - 1).abs() > tol
    if off.any():
        bad = off.nonzero()[0].item()
        raise ValueError(f"weak_probs row {bad} sums to {sums[bad].item():.6g}, not 1 (tolerance {tol})")
    if not (0 <= smoothing < 1 / k):
        raise ValueError(f"smoothing must be in [0, 1/k), got {smoothing}")
    if smoothing:
        w = (w + smoothing) / (1 + k * smoothing)
    return w


@functools.lru_cache(maxsize=256)
def _compiled(spec: str):
    """``(gen, g, slope_lo, slope_hi)`` per float kind: g generated, slopes from sympy."""
    from theory import get_generator
    from fdiv_torch.codegen import logratio_torch
    from theory.codegen import L, logratio_grad_expr
    gen = get_generator(spec)
    g = logratio_torch(gen)
    dg = logratio_grad_expr(gen)
    slopes = {}
    for lc in (30.0, 200.0):
        pair = []
        for at in (-lc, lc):
            try:
                value = float(dg.subs(L, at).evalf())
            except (TypeError, ValueError):
                value = float("nan")
            if not math.isfinite(value):
                raise ValueError(f"generator {spec!r}: g'(l) = d f(e^l)/dl is not finite at l = {at:g}; "
                                 f"its log-space loss cannot be continued linearly there")
            pair.append(value)
        slopes[lc] = tuple(pair)
    return gen, g, slopes


def _clamp_limit(dtype: torch.dtype) -> float:
    return 200.0 if dtype == torch.float64 else 30.0


#: (weak tensor, its version, key) → (w, log w): weak labels are validated, smoothed and
#: logged once per dataset, not per training step (see :func:`_prepared_weak`).
_WEAK_CACHE: dict = {}


def _prepared_weak(weak_probs, k, dtype, device, smoothing):
    """``(w, log w)`` for :func:`fdiv_loss`, memoised on the weak-label tensor itself.

    A hit requires the same tensor object, unchanged (``_version``: any in-place write
    invalidates), same storage, shape, dtype, device and smoothing; numpy input and
    tensors that require grad are prepared every call.  At most 8 entries are kept.
    """
    cacheable = isinstance(weak_probs, torch.Tensor) and not weak_probs.requires_grad
    if cacheable:
        key = (id(weak_probs), weak_probs._version, weak_probs.data_ptr(), tuple(weak_probs.shape),
               weak_probs.dtype, str(weak_probs.device), k, dtype, str(device), smoothing)
        hit = _WEAK_CACHE.get(key)
        if hit is not None and hit[0] is weak_probs:
            return hit[1], hit[2]
    w = prepare_weak(weak_probs, k, dtype, device, smoothing)
    log_w = torch.log(w)
    if cacheable:
        if len(_WEAK_CACHE) >= 8:
            _WEAK_CACHE.pop(next(iter(_WEAK_CACHE)))
        _WEAK_CACHE[key] = (weak_probs, w, log_w)
    return w, log_w


def fdiv_loss(strong_logits: torch.Tensor, weak_probs, f, smoothing: float = 1e-6,
              reduction: str = "mean", fused: bool | str = True) -> torch.Tensor:
    """Mean over the batch of ``D_f(softmax(strong_logits) ‖ weak_probs)``.

    Args:
        strong_logits: ``(n, k)`` logits, or ``(n,)`` binary logits ``z`` (class-1 prob ``σ(z)``).
        weak_probs: ``(n, k)`` probability rows, or ``(n,)`` P(class 1) for binary.
        f: a generator name (``"kl"``, ``"alpha:0.5"``), a typed expression in ``t``
            (``"(t-1)**2/(t+1)"``) or a :class:`theory.Generator`.
        smoothing: ``ε`` in ``w ← (w + ε)/(1 + kε)``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per example).
        fused: use the generated fused kernel :func:`fdiv_torch.fused.fdiv_kernel_torch`
            (same values; analytic gradient; weak labels prepared once per tensor);
            ``"compile"``: the same kernel through ``torch.compile``
            (:func:`fdiv_torch.fused.fdiv_kernel_compiled`; seconds to compile per shape).
            ``False`` is the reference path (autograd through the generated ``g``), also
            taken automatically when ``weak_probs`` requires grad.  The fused kernel is
            not twice differentiable: pass ``fused=False`` for Hessians.
    """
    spec = f.name if hasattr(f, "expr") and f.is_named else (f.text if hasattr(f, "expr") else f)
    gen, g, slopes = _compiled(spec)
    logits = as_multiclass_logits(strong_logits)
    if not logits.is_floating_point():
        logits = logits.float()
    k = logits.shape[1]
    if fused and not (isinstance(weak_probs, torch.Tensor) and weak_probs.requires_grad):
        from fdiv_torch.fused import fdiv_kernel_compiled, fdiv_kernel_torch
        w, log_w = _prepared_weak(weak_probs, k, logits.dtype, logits.device, smoothing)
        if w.shape[0] != logits.shape[0]:
            raise ValueError(f"{logits.shape[0]} logit rows but {w.shape[0]} weak rows")
        lc_val = _clamp_limit(logits.dtype)
        make = fdiv_kernel_compiled if fused == "compile" else fdiv_kernel_torch
        kernel = make(gen, lc_val, slopes[lc_val])
        return _reduce(kernel(logits, w, log_w), reduction)
    w = prepare_weak(weak_probs, k, logits.dtype, logits.device, smoothing)
    if w.shape[0] != logits.shape[0]:
        raise ValueError(f"{logits.shape[0]} logit rows but {w.shape[0]} weak rows")
    log_s = F.log_softmax(logits, dim=-1)
    log_w = torch.log(w)
    l = log_s - log_w
    lc_val = _clamp_limit(logits.dtype)
    lo, hi = slopes[lc_val]
    lc = l.clamp(-lc_val, lc_val)
    # Linear tails through torch.where, so the backward pass never adds and subtracts the
    # (possibly huge) tail slopes: an unselected branch contributes an exact zero.
    zero = torch.zeros_like(l)
    per_class = (g(lc) + torch.where(l < -lc_val, lo * (l + lc_val), zero)
                 + torch.where(l > lc_val, hi * (l - lc_val), zero))
    per_example = (w * per_class).sum(dim=-1)
    return _reduce(per_example, reduction)


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")


def ce_loss(strong_logits: torch.Tensor, weak_probs, smoothing: float = 1e-6,
            reduction: str = "mean") -> torch.Tensor:
    """Soft-label cross-entropy ``CE(W, S) = −Σ_c w_c log s_c`` (same smoothing as :func:`fdiv_loss`)."""
    logits = as_multiclass_logits(strong_logits)
    w, _ = _prepared_weak(weak_probs, logits.shape[1], logits.dtype, logits.device, smoothing)
    per_example = -(w * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return _reduce(per_example, reduction)


def aux_conf_loss(strong_logits: torch.Tensor, weak_probs, alpha: float = 0.75,
                  smoothing: float = 1e-6, reduction: str = "mean") -> torch.Tensor:
    """Burns et al. 2023 auxiliary confidence loss ``(1−α)·CE(W,S) + α·CE(Ŝ,S)``.

    ``Ŝ`` is the strong prediction hardened to one-hot by argmax (detached; Burns et al.
    threshold at the batch's weak-label class prior, argmax for balanced tasks). ``α`` is
    the current weight: use :func:`aux_conf_alpha` for their warm-up schedule.
    """
    logits = as_multiclass_logits(strong_logits)
    k = logits.shape[1]
    w, _ = _prepared_weak(weak_probs, k, logits.dtype, logits.device, smoothing)
    hard = F.one_hot(logits.detach().argmax(dim=-1), k).to(logits.dtype)
    log_s = F.log_softmax(logits, dim=-1)
    per = -((1 - alpha) * w + alpha * hard) * log_s
    return _reduce(per.sum(dim=-1), reduction)


def aux_conf_alpha(progress: float, alpha_max: float = 0.75, warmup: float = 0.2) -> float:
    """Warm-up of Burns et al.: ``α`` grows linearly from 0 to ``alpha_max`` over the
    first ``warmup`` fraction of training, then stays (``progress`` in [0, 1])."""
    if warmup <= 0:
        return alpha_max
    return alpha_max * min(1.0, max(0.0, progress) / warmup)


def product_loss(strong_logits: torch.Tensor, weak_probs, alpha: float = 1.0, beta: float = 1.0,
                 smoothing: float = 1e-6, reduction: str = "mean") -> torch.Tensor:
    """Burns et al. 2023 product loss: CE against the normalised product ``W^α · S^β``
    (the strong factor detached), i.e. the target is the weak and strong beliefs combined."""
    logits = as_multiclass_logits(strong_logits)
    w, log_w = _prepared_weak(weak_probs, logits.shape[1], logits.dtype, logits.device, smoothing)
    log_s = F.log_softmax(logits, dim=-1)
    target = torch.softmax(alpha * log_w + beta * log_s.detach(), dim=-1)
    return _reduce(-(target * log_s).sum(dim=-1), reduction)


class Loss:
    """A named training loss ``loss(logits, weak_probs, progress=0.0)``.

    ``progress`` (fraction of training done) only matters for ``aux_conf``'s warm-up.
    """

    def __init__(self, name: str, fn: Callable, description: str = ""):
        self.name = name
        self._fn = fn
        self.description = description

    def __call__(self, logits, weak_probs, progress: float = 0.0, smoothing: float = 1e-6):
        return self._fn(logits, weak_probs, progress, smoothing)

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


def make_loss(name: str) -> Loss:
    """The loss called ``name``: ``ce``, ``aux_conf``, ``product`` or any generator spec
    accepted by :func:`theory.get_generator` (name, ``alpha:a`` or an expression in ``t``).

    Raises:
        ValueError: unknown loss (message lists the valid names).
    """
    key = name.strip()
    if key == "ce":
        return Loss("ce", lambda z, w, p, eps: ce_loss(z, w, eps), "soft-label cross-entropy CE(W,S)")
    if key == "aux_conf":
        return Loss("aux_conf", lambda z, w, p, eps: aux_conf_loss(z, w, aux_conf_alpha(p), eps),
                    "Burns et al. auxiliary confidence loss (α warm-up to 0.75 over 20%)")
    if key == "product":
        return Loss("product", lambda z, w, p, eps: product_loss(z, w, smoothing=eps),
                    "Burns et al. product loss")
    from theory import GeneratorError, get_generator
    try:
        gen = get_generator(key)
    except GeneratorError as exc:
        raise ValueError(f"unknown loss {name!r}: valid names are {', '.join(LOSS_NAMES)}, "
                         f"alpha:a, or a convex generator f(t) ({exc})") from None
    spec = gen.name
    _compiled(spec)
    return Loss(spec, lambda z, w, p, eps: fdiv_loss(z, w, spec, eps), f"D_f(S‖W), f = {gen.text}")
