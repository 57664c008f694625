"""Training losses for the strong model: f-divergences, cross-entropy, Burns et al. baselines.

Convention (``docs/THEORY.md``): ``D_f(S‖W) = Σ_c w_c f(s_c / w_c)``, strong first.
:func:`fdiv_loss` evaluates it in log space, ``l_c = log s_c − log w_c`` with
``log s = log_softmax(logits)``, through the generated log-ratio form ``g(l) = f(e^l)``
(:func:`fdiv_torch.codegen.logratio_torch`); no formula is retyped here.

Exact by default.  With default arguments every loss here computes exactly the quantity in
its docstring: no label smoothing unless asked (``smoothing=0.0``, like torch's
``label_smoothing``).  Weak-label entries ``w_c = 0`` follow the f-divergence convention
``0·f(s/0) = s·f'(∞)`` with ``f'(∞) = lim_{t→∞} f(t)/t`` derived symbolically per generator
(:func:`theory.derived.fprime_at_inf`: 0 for ``kl``, 1 for ``hellinger``, ½·log 2 for ``js``,
½ for ``tv``).  Where ``f'(∞) = ∞`` (``reverse_kl``, ``pearson``, ``jeffreys``) a zero weak
entry makes ``D_f`` infinite (the strong probability is always positive), and the loss
raises a ``ValueError`` that suggests ``smoothing``.

Smoothing (opt-in).  ``smoothing = ε > 0`` replaces every weak row by
``w ← (w + ε) / (1 + k ε)`` before the loss; ``ce`` and ``aux_conf`` accept the same
argument so ``ce`` and ``kl`` keep identical gradients (claim C8).  The training pipeline
(:mod:`experiments.pipeline`) sets ``ε = 1e-6`` explicitly in its config: its weak labels are
exactly 0/1 in float32 when a weak logit exceeds about 17, where ``reverse_kl``, ``pearson``
and ``jeffreys`` are infinite.

Stability. ``l`` is clamped to ``[−Lc, Lc]`` (``Lc = 30`` in float32, ``200`` in float64)
and ``g`` is continued linearly outside (``torch.where``, no cancellation in the backward
pass) with the slopes ``g'(±Lc)`` evaluated from the symbolic derivative
:func:`theory.codegen.logratio_grad_expr`.  Inside the clamp the value is exact; for
generators whose ``g`` is linear in a tail (``kl`` in both, ``jeffreys`` as ``l → −∞``) it is
exact everywhere, and for the others it keeps values and gradients finite for logits up to
±100.

Mixed precision.  float16 / bfloat16 logits are computed in float32 inside (value in
float32, gradient in the logits' dtype, as autocast does for losses); weak labels are
validated in float32 or better (their own dtype if wider) before any cast.  float16
gradients saturate at ±65504 rather than overflow (bfloat16 has float32's range).

Loss names.  :data:`DEFAULT_LOSSES` (the default sweep), :data:`BASELINE_LOSSES` and the
other lists come from the one loss table, :mod:`theory.loss_table`; :data:`LOSS_NAMES` (every
valid name) adds the generators of :mod:`theory.generators`; this module
imports torch only when a loss is built or called, so the names are cheap to import.
"""
from __future__ import annotations

import functools
import importlib
import math
from typing import Callable

from theory.loss_table import BASELINE_LOSSES, DEFAULT_LOSSES, FDIV_LOSSES, QUICK_LOSSES

__all__ = ["fdiv_loss", "fdiv_kernel_for", "ce_loss", "aux_conf_loss", "aux_conf_alpha", "product_loss", "make_loss",
           "prepare_weak", "check_smoothing", "as_multiclass_logits", "harden_class_balance", "LOSS_NAMES",
           "BASELINE_LOSSES", "FDIV_LOSSES", "DEFAULT_LOSSES", "QUICK_LOSSES",
           "AUX_CONF_ALPHA_MAX", "AUX_CONF_WARMUP", "Loss",
           "NORMALIZE_CHOICES", "curvature_scale"]


class _LazyModule:
    """``torch`` (or a submodule) imported on first attribute access: the loss-name registry
    below is imported by light modules (the sweep runner, figures) that need no torch."""

    def __init__(self, name: str):
        self.__dict__["_name"] = name

    def __getattr__(self, attr):
        module = importlib.import_module(self.__dict__["_name"])
        self.__dict__.update(vars(module))  # later lookups are plain attribute hits
        return getattr(module, attr)


torch = _LazyModule("torch")
F = _LazyModule("torch.nn.functional")

# ----------------------------------------------------------------------------- loss registry
# FDIV_LOSSES, BASELINE_LOSSES, DEFAULT_LOSSES, QUICK_LOSSES: from the one loss table
# (theory.loss_table), imported above; nothing is retyped here.

def _names() -> tuple[str, ...]:
    from theory import NAMED
    return ("ce",) + tuple(NAMED) + BASELINE_LOSSES


#: Every valid loss name (besides ``alpha:a`` and generators typed as expressions in ``t``).
LOSS_NAMES = _names()

#: Burns et al. 2023, Appendix A.4 ("auxiliary confidence loss"): α warms up linearly from 0 to
#: α_max = 0.75 over the first 20% of training.  (Their released code,
#: github.com/openai/weak-to-strong ``weak_to_strong/loss.py`` ``logconf_loss_fn``, defaults to
#: aux_coef 0.5 and warmup_frac 0.1; we follow the paper's text.)
AUX_CONF_ALPHA_MAX = 0.75
AUX_CONF_WARMUP = 0.2


# ----------------------------------------------------------------------------- inputs
def as_multiclass_logits(logits):
    """``(n,)`` binary logits ``z`` → ``(n, 2)`` logits ``[0, z]`` (softmax = sigmoid); else as is."""
    if logits.dim() == 1:
        return torch.stack([torch.zeros_like(logits), logits], dim=-1)
    if logits.dim() != 2:
        raise ValueError(f"strong_logits must have shape (n,) or (n, k), got {tuple(logits.shape)}")
    return logits


def _compute_dtype(dtype):
    """float64 stays float64; everything else (float32, float16, bfloat16) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@functools.lru_cache(maxsize=1)
def _saturating_upcast():
    """float16 → float32 whose backward saturates the gradient at ±65504 (float16's largest
    finite value) instead of overflowing to ±inf when cast back."""
    class _Upcast(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.to(torch.float32)

        @staticmethod
        def backward(ctx, grad):
            top = torch.finfo(torch.float16).max
            return grad.clamp(-top, top).to(torch.float16)

    return _Upcast.apply


def _float_logits(strong_logits):
    """``(n, k)`` floating logits (``(n,)`` binary logits stacked, integers as float32), not
    yet cast to a compute dtype."""
    logits = as_multiclass_logits(strong_logits)
    return logits if logits.is_floating_point() else logits.float()


def _cast_logits(logits, dtype):
    """``logits`` in ``dtype``.  The cast is differentiable: the gradient comes back in the
    caller's dtype; float16 → float32 saturates it at ±65504 (a gradient that large, e.g.
    Neyman χ² at a confidently wrong logit of 100, is outside float16's range)."""
    if (logits.dtype == torch.float16 and dtype == torch.float32 and logits.requires_grad
            and torch.is_grad_enabled()):
        return _saturating_upcast()(logits)
    return logits.to(dtype)


def _logits(strong_logits):
    """``(n, k)`` logits in the compute dtype (:func:`_compute_dtype`; see :func:`_cast_logits`)."""
    logits = _float_logits(strong_logits)
    return _cast_logits(logits, _compute_dtype(logits.dtype))


def _weak_rows(weak_probs, k: int, device) -> tuple[torch.Tensor, float]:
    """``weak_probs`` as an ``(n, k)`` floating tensor (``(n,)`` P(class 1) stacked for binary
    tasks, integers as float32) and the least row-sum tolerance its dtype allows: ``k·eps``
    for half-precision weak labels, else 0.

    Raises:
        ValueError: a shape that does not match ``k`` classes.
    """
    w = torch.as_tensor(weak_probs, device=device)
    if not w.is_floating_point():
        w = w.to(torch.float32)
    min_tol = k * torch.finfo(w.dtype).eps if w.dtype in (torch.float16, torch.bfloat16) else 0.0
    if w.dim() == 1:
        if k != 2:
            raise ValueError(f"1-d weak_probs are P(class 1) for binary tasks, but the logits have {k} classes")
        w = torch.stack([1 - w, w], dim=-1)
    if w.dim() != 2 or w.shape[1] != k:
        raise ValueError(f"weak_probs must have shape (n,) or (n, {k}), got {tuple(w.shape)}")
    return w, min_tol


def check_smoothing(smoothing: float, k: int) -> None:
    """Raise ``ValueError`` unless ``0 ≤ smoothing < 1/k``, the smoothing ``ε`` of
    ``w ← (w + ε)/(1 + kε)`` that the loss paths accept (all check it here)."""
    if not (0 <= smoothing < 1 / k):
        raise ValueError(f"smoothing must be in [0, 1/k), got {smoothing}")


def prepare_weak(weak_probs, k: int, dtype, device=None,
                 smoothing: float = 0.0, tol: float = 1e-4):
    """Validate weak labels, optionally smooth them, return ``(n, k)`` rows in ``dtype``.

    ``weak_probs`` is ``(n,)`` P(class 1) (binary) or ``(n, k)`` probability rows.  It is
    validated in its own dtype or float32, whichever is wider (never in a half-precision
    logits dtype); half-precision weak labels get a row-sum tolerance of ``k·eps`` of
    their dtype when that exceeds ``tol``.  ``smoothing = ε > 0``: ``w ← (w + ε)/(1 + kε)``
    (default 0: the labels are returned unchanged, zeros included).

    Raises:
        ValueError: NaN/inf, negative entries or entries above 1, rows not summing to 1
            (within the tolerance), a shape that does not match the logits, or bad ``smoothing``.
    """
    w, min_tol = _weak_rows(weak_probs, k, device)
    tol = max(tol, min_tol)
    w = w.to(torch.promote_types(w.dtype, torch.float32))
    lo, hi = torch.aminmax(w) if w.numel() else (torch.zeros(()), torch.zeros(()))
    if not (bool(lo >= 0) and bool(hi <= 1 + tol)):  # one pass (NaN fails both); then which row
        if not torch.isfinite(w).all():
            bad = (~torch.isfinite(w)).any(dim=1).nonzero()[0].item()
            raise ValueError(f"weak_probs row {bad} contains NaN or inf")
        bad = ((w < 0) | (w > 1 + tol)).any(dim=1).nonzero()[0].item()
        raise ValueError(f"weak_probs row {bad} has entries outside [0, 1]: {w[bad].tolist()}")
    sums = w.sum(dim=1)
    off = (sums - 1).abs() > tol
    if off.any():
        bad = off.nonzero()[0].item()
        raise ValueError(f"weak_probs row {bad} sums to {sums[bad].item():.6g}, not 1 (tolerance {tol:g})")
    check_smoothing(smoothing, k)
    if smoothing:
        w = torch.add(w, smoothing).div_(1 + k * smoothing)  # (w + ε)/(1 + kε), one new tensor
    return w.to(dtype)


# ----------------------------------------------------------------------------- f-divergences
@functools.lru_cache(maxsize=256)
def _compiled(spec: str):
    """``(gen, slopes)``: the generator and ``slopes[Lc] = (g'(−Lc), g'(Lc))`` for both clamp
    limits (:func:`fdiv_torch.logratio.tail_slopes`; raises early when not finite)."""
    from fdiv_torch.logratio import tail_slopes
    from theory import get_generator
    gen = get_generator(spec)
    return gen, {lc: tail_slopes(gen, lc) for lc in (30.0, 200.0)}


def _fprime_inf(spec: str) -> float:
    """``f'(∞) = lim_{t→∞} f(t)/t`` of generator ``spec`` (:func:`fdiv_torch.logratio.fprime_inf`)
    as a float (``inf`` when infinite, ``nan`` when it could not be determined)."""
    from fdiv_torch.logratio import fprime_inf
    return fprime_inf(_compiled(spec)[0])


def _zero_term(spec: str, zero, gen_text: str) -> float:
    """``f'(∞)`` for weak labels with exact zeros (``zero``: their mask); raises where the
    term ``s_c f'(∞)`` is infinite or unknown."""
    value = _fprime_inf(spec)
    if not math.isfinite(value):
        r, c = (int(i) for i in zero.nonzero()[0].tolist())
        why = ("f'(∞) = lim_{t→∞} f(t)/t = ∞" if value == math.inf
               else "f'(∞) = lim_{t→∞} f(t)/t could not be determined")
        raise ValueError(
            f"D_f(S‖W) for f = {spec!r} ({gen_text}) is not finite here: weak_probs[{r}, {c}] = 0 while "
            f"the strong probability is positive, and {why}, so w_c·f(s_c/w_c) → s_c·f'(∞) = ∞. "
            f"Pass smoothing > 0 (e.g. smoothing=1e-6: w ← (w + ε)/(1 + kε)), or use a generator "
            f"with finite f'(∞) (kl, hellinger, js, tv)")
    return value


#: (weak tensor, its version, key) → prepared weak labels: validated, smoothed and logged
#: once per dataset, not per training step (see :func:`_prepared_weak`).
_WEAK_CACHE: dict = {}


def _prepared_weak(weak_probs, k, dtype, device, smoothing, need_log: bool = True):
    """``(w, log w̃, w̃, zero)`` memoised on the weak-label tensor itself.

    ``w`` is :func:`prepare_weak`'s output; ``zero`` the mask of its exact zeros (``None``
    when there are none); ``w̃`` is ``w`` with those zeros replaced by 1 (``w`` itself when
    there are none), so ``log w̃`` and ``s / w̃`` are finite and the zero entries can be
    given their limit ``s_c f'(∞)`` separately.  A hit requires the same tensor object,
    unchanged (``_version``: any in-place write invalidates), same storage, shape, dtype,
    device and smoothing; numpy input and tensors that require grad are prepared every
    call.  At most 8 entries are kept.  ``need_log=False``: ``log w̃`` is left ``None``
    (unless already cached; the fused kernel takes it per block where it needs it).
    """
    cacheable = isinstance(weak_probs, torch.Tensor) and not weak_probs.requires_grad
    if cacheable:
        key = (id(weak_probs), weak_probs._version, weak_probs.data_ptr(), tuple(weak_probs.shape),
               weak_probs.dtype, str(weak_probs.device), k, dtype, str(device), smoothing)
        hit = _WEAK_CACHE.get(key)
        if hit is not None and hit[0] is weak_probs:
            w, log_w, w_div, zero = hit[1]
            if need_log and log_w is None:
                _WEAK_CACHE[key] = (weak_probs, (w, torch.log(w_div), w_div, zero))
                return _WEAK_CACHE[key][1]
            return hit[1]
    w = prepare_weak(weak_probs, k, dtype, device, smoothing)
    zero = w == 0
    if bool(zero.any()):
        w_div = torch.where(zero, torch.ones_like(w), w)
    else:
        zero, w_div = None, w
    prepared = (w, torch.log(w_div) if need_log else None, w_div, zero)
    if cacheable:
        if len(_WEAK_CACHE) >= 8:
            _WEAK_CACHE.pop(next(iter(_WEAK_CACHE)))
        _WEAK_CACHE[key] = (weak_probs, prepared)
    return prepared


def fdiv_loss(strong_logits, weak_probs, f, smoothing: float = 0.0,
              reduction: str = "mean", fused: bool | str = True):
    """Mean over the batch of ``D_f(softmax(strong_logits) ‖ weak_probs) = Σ_c w_c f(s_c/w_c)``.

    Entries with ``w_c = 0`` contribute ``s_c·f'(∞)`` (the f-divergence convention
    ``0·f(s/0) = s·f'(∞)``, ``f'(∞) = lim f(t)/t`` derived symbolically).

    Args:
        strong_logits: ``(n, k)`` logits, or ``(n,)`` binary logits ``z`` (class-1 prob ``σ(z)``);
            float64 is computed in float64, every other dtype in float32 (the gradient
            comes back in the logits' dtype).
        weak_probs: ``(n, k)`` probability rows, or ``(n,)`` P(class 1) for binary.
        f: a generator name (``"kl"``, ``"alpha:0.5"``), a typed expression in ``t``
            (``"(t-1)**2/(t+1)"``) or a :class:`theory.Generator`.
        smoothing: ``ε`` in ``w ← (w + ε)/(1 + kε)``; default 0 (exact ``D_f``).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per example).
        fused: ``True`` (default): a generated kernel with the analytic gradient, the
            fastest that applies (same values as the reference path within rounding):
            on CPU, for float32/float64/bfloat16/float16 logits, the generated C kernel
            :func:`fdiv_torch.c_kernel.fdiv_kernel_c` when a C compiler builds it with
            vectorised exp/log (one read of the logits and weak labels; weak labels
            validated in the same pass); otherwise the generated torch kernel
            :func:`fdiv_torch.fused.fdiv_kernel_torch` (weak labels prepared once per
            tensor).  ``"c"`` and ``"torch"`` force those two;
            ``"compile"``: the torch kernel through ``torch.compile``
            (:func:`fdiv_torch.fused.fdiv_kernel_compiled`; seconds to compile per shape).
            ``False`` is the reference path (autograd through the generated ``g``), also
            taken automatically when ``weak_probs`` requires grad.  The fused kernel is
            not twice differentiable: pass ``fused=False`` for Hessians.  On CUDA
            (float32/bfloat16/float16 logits) ``fused=True`` takes the generated Triton
            kernel :func:`fdiv_torch.triton_kernel.fdiv_kernel_triton` when Triton is
            installed (one pass over the logits, float32 accumulation, weak labels read
            as given every step, no host synchronisation: invalid weak labels surface as a
            device-side assertion); ``"triton"`` forces it.

    Raises:
        ValueError: invalid weak labels (:func:`prepare_weak`), or a zero weak entry
            under a generator with ``f'(∞) = ∞`` (``reverse_kl``, ``pearson``,
            ``jeffreys``, ...), where ``D_f`` is infinite: pass ``smoothing``.
    """
    from fdiv_torch.registry import Query, select
    spec = f.name if hasattr(f, "expr") and f.is_named else (f.text if hasattr(f, "expr") else f)
    gen, slopes = _compiled(spec)
    logits = _float_logits(strong_logits)
    w_grad = isinstance(weak_probs, torch.Tensor) and weak_probs.requires_grad
    backend, kernel = select(Query(gen, slopes, logits.device.type, logits.dtype, w_grad, fused))
    logits = _cast_logits(logits, backend.compute_dtype(logits.dtype))  # after dispatch: where needed
    if backend.weak == "raw":
        return _reduce(_raw_kernel(backend, kernel, spec, gen, logits, weak_probs, smoothing), reduction)
    # log w̃ only where it is read: the reference path, torch.compile, generators that read l
    need_log = backend.name in ("reference", "compile") or _reads_l(gen)
    w, log_w, w_div, zero = _prepared_weak(weak_probs, logits.shape[1], logits.dtype, logits.device,
                                           smoothing, need_log)
    _check_rows(logits, w)
    fpi = _zero_term(spec, zero, gen.text) if zero is not None else 0.0
    zeros = None if zero is None else (w_div, zero.to(logits.dtype), fpi)
    return _reduce(kernel(logits, w, log_w, zeros), reduction)


def _check_rows(logits, w, weak_probs=None, smoothing: float = 0.0) -> None:
    """Raise ``ValueError`` unless the logits and weak labels have as many rows; with the raw
    ``weak_probs`` given, invalid weak labels are reported first (as on every path)."""
    if w.shape[0] != logits.shape[0]:
        if weak_probs is not None:
            prepare_weak(weak_probs, logits.shape[1], logits.dtype, logits.device, smoothing)
        raise ValueError(f"{logits.shape[0]} logit rows but {w.shape[0]} weak rows")


def _raw_kernel(backend, kernel, spec, gen, logits, weak_probs, smoothing):
    """Per-example loss from a kernel that reads raw weak rows (C, Triton: they smooth and
    validate the weak labels themselves, with :func:`prepare_weak`'s tolerance).  Invalid
    weak labels raise the same ``ValueError`` as :func:`prepare_weak` (the C kernel only
    flags the row; it is then validated here to say what is wrong)."""
    from fdiv_torch.c_kernel import InvalidWeakRow
    k = logits.shape[1]
    check_smoothing(smoothing, k)
    w, min_tol = _weak_rows(weak_probs, k, logits.device)
    _check_rows(logits, w, weak_probs, smoothing)
    if backend.name == "triton" and w.dtype == torch.float64:
        w = w.to(torch.float32)  # the Triton kernel computes in float32
    try:
        return kernel(logits, w, float(smoothing), max(1e-4, min_tol))  # tolerance as prepare_weak's
    except InvalidWeakRow:
        w = prepare_weak(weak_probs, k, logits.dtype, logits.device, smoothing)
        zero = w == 0
        if bool(zero.any()):
            _zero_term(spec, zero, gen.text)
        raise


def fdiv_kernel_for(loss: str, dtype: str = "float32", device: str = "cpu") -> str | None:
    """Which kernel ``fdiv_loss``'s default path takes for loss ``loss`` on ``device`` with
    logits of ``dtype`` (weak labels that do not require grad): ``"triton"``, ``"c"`` or
    ``"torch"``, as the one dispatch (:func:`fdiv_torch.registry.select`) answers it for
    ``fdiv_loss`` (the kernel is built, so a generator without a C kernel, or a C library
    that does not load, is named ``"torch"``); ``None`` for losses that are not
    f-divergences (``ce``, ``aux_conf``, ``product``).  The kernels agree within rounding,
    but a long training run can amplify rounding (``w2sg run`` records this as
    ``train_info.loss_kernel``)."""
    if loss in BASELINE_LOSSES or loss == "ce":
        return None
    from fdiv_torch.registry import Query, select
    gen, slopes = _compiled(loss)
    tdtype = getattr(torch, str(dtype).split(".")[-1])
    return select(Query(gen, slopes, str(device).split(":")[0], tdtype))[0].name


def _reads_l(gen) -> bool:
    from fdiv_torch.fused import logratio_value_and_grad_ratio_torch
    return logratio_value_and_grad_ratio_torch(gen)[1]


def _reduce(x, reduction: str):
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")


# ----------------------------------------------------------------------------- cross-entropy
def ce_loss(strong_logits, weak_probs, smoothing: float = 0.0, reduction: str = "mean"):
    """Soft-label cross-entropy ``CE(W, S) = −Σ_c w_c log s_c`` (same smoothing and dtype
    rules as :func:`fdiv_loss`; ``smoothing=0`` by default)."""
    logits = _logits(strong_logits)
    w = _prepared_weak(weak_probs, logits.shape[1], logits.dtype, logits.device, smoothing, False)[0]
    per_example = -(w * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return _reduce(per_example, reduction)


# ----------------------------------------------------------------------------- Burns et al. baselines
def harden_class_balance(probs, weak_mean):
    """Burns et al.'s hardening of strong predictions to one-hot rows by class balance.

    Binary (``k = 2``), as in Burns et al. 2023 (github.com/openai/weak-to-strong,
    ``logconf_loss_fn``): ``threshold = quantile(P_S(class 0), q)`` with ``q`` the batch mean
    of the weak P(class 1) (``torch.quantile``, linear interpolation); rows with
    ``P_S(class 0) < threshold`` become class 1, the others class 0.  About a fraction
    ``q`` of the batch is thus hardened to class 1, whatever the strong model leans to.

    ``k > 2`` (our generalisation; Burns et al. define the binary case only): class ``c``
    gets the quota ``m_c`` = ``n·weak_mean_c`` rounded by largest remainders (``Σ m_c = n``);
    (row, class) pairs are visited in decreasing strong probability and a row takes the
    class of the first pair whose row is unassigned and whose class still has quota.  For
    ``k = 2`` this greedy rule hardens exactly the ``m_1`` rows of largest ``P_S(class 1)``
    to class 1, i.e. the quantile rule up to how the count is rounded.

    Args:
        probs: ``(n, k)`` strong probabilities (not differentiated).
        weak_mean: ``(k,)`` batch mean of the weak labels.
    Returns:
        ``(n, k)`` one-hot rows in ``probs``' dtype.
    """
    probs = probs.detach()
    n, k = probs.shape
    if k == 2:
        p0 = probs[:, 0]
        threshold = torch.quantile(p0, weak_mean[1].to(p0.dtype).clamp(0, 1))
        return torch.stack([p0 >= threshold, p0 < threshold], dim=-1).to(probs.dtype)
    import numpy as np
    p = probs.cpu().double().numpy()
    share = np.clip(weak_mean.detach().cpu().double().numpy(), 0, None)
    share = share / share.sum() * n
    quota = np.floor(share).astype(int)
    rest = n - int(quota.sum())
    quota[np.argsort(-(share - quota), kind="stable")[:rest]] += 1
    label = np.full(n, -1)
    left = n
    for flat in np.argsort(-p, axis=None, kind="stable"):
        r, c = divmod(int(flat), k)
        if label[r] < 0 and quota[c] > 0:
            label[r] = c
            quota[c] -= 1
            left -= 1
            if not left:
                break
    out = torch.zeros_like(probs)
    out[torch.arange(n), torch.as_tensor(label, device=probs.device)] = 1
    return out


def aux_conf_loss(strong_logits, weak_probs, alpha: float = AUX_CONF_ALPHA_MAX,
                  smoothing: float = 0.0, reduction: str = "mean", harden: str = "class_balance"):
    """Burns et al. 2023 auxiliary confidence loss ``(1−α)·CE(W,S) + α·CE(Ŝ,S)``.

    ``Ŝ`` is the strong prediction hardened to one-hot (detached) over the batch:
    ``harden="class_balance"`` (default) is Burns et al.'s rule,
    :func:`harden_class_balance` (binary: the q-quantile threshold with q = the batch mean
    of the weak P(class 1); ``k > 2``: our documented quota generalisation);
    ``harden="argmax"`` hardens each row by its argmax (an explicit alternative, not
    theirs).  ``α`` is the current weight: :func:`aux_conf_alpha` gives their warm-up.
    ``smoothing`` (default 0) applies to ``W`` as in :func:`ce_loss`.
    """
    logits = _logits(strong_logits)
    k = logits.shape[1]
    w = _prepared_weak(weak_probs, k, logits.dtype, logits.device, smoothing, False)[0]
    if harden == "class_balance":
        hard = harden_class_balance(torch.softmax(logits.detach(), dim=-1), w.mean(dim=0))
    elif harden == "argmax":
        hard = F.one_hot(logits.detach().argmax(dim=-1), k).to(logits.dtype)
    else:
        raise ValueError(f"harden must be 'class_balance' or 'argmax', got {harden!r}")
    log_s = F.log_softmax(logits, dim=-1)
    per = -((1 - alpha) * w + alpha * hard) * log_s
    return _reduce(per.sum(dim=-1), reduction)


def aux_conf_alpha(progress: float, alpha_max: float = AUX_CONF_ALPHA_MAX,
                   warmup: float = AUX_CONF_WARMUP) -> float:
    """Warm-up of Burns et al. 2023 (App. A.4): ``α`` grows linearly from 0 to ``alpha_max``
    (0.75) over the first ``warmup`` (20%) of training, then stays (``progress`` in [0, 1])."""
    if warmup <= 0:
        return alpha_max
    return alpha_max * min(1.0, max(0.0, progress) / warmup)


def product_loss(strong_logits, weak_probs, alpha: float = 1.0, beta: float = 1.0,
                 reduction: str = "mean"):
    """Burns et al. 2023 product loss: ``CE(T, S)`` with the target
    ``T = W^α ⊙ S^β / Σ_c w_c^α s_c^β`` (detached), the weak and strong beliefs combined
    (github.com/openai/weak-to-strong, ``product_loss_fn``).

    Computed in log space (``α log w + β log s``, ``log 0 = −∞``), so a weak zero stays an
    exact zero of the target: one-hot weak labels give one-hot targets whatever the strong
    model predicts.  There is no smoothing: the target is finite for any weak labels, and
    smoothing would let a confident strong model flip a one-hot target.
    """
    logits = _logits(strong_logits)
    w = _prepared_weak(weak_probs, logits.shape[1], logits.dtype, logits.device, 0.0, False)[0]
    log_s = F.log_softmax(logits, dim=-1)
    if alpha == 0:
        log_wa = torch.zeros_like(w)  # w^0 = 1, also at w = 0 (torch.pow(0, 0) = 1)
    else:
        log_wa = torch.where(w > 0, alpha * torch.log(torch.where(w > 0, w, torch.ones_like(w))),
                             torch.full_like(w, -math.inf))
    target = torch.softmax(log_wa + beta * log_s.detach(), dim=-1)
    return _reduce(-(target * log_s).sum(dim=-1), reduction)


# ----------------------------------------------------------------------------- by name
class Loss:
    """A named training loss ``loss(logits, weak_probs, progress=0.0, reduction="mean")``.

    ``progress`` (fraction of training done) only matters for ``aux_conf``'s warm-up.
    ``smoothing`` is the loss's own (set by :func:`make_loss`); passing ``smoothing`` to a
    call overrides it.  ``product`` ignores it (see :func:`product_loss`).  ``scale``
    multiplies the value (``1/f''(1)`` under ``normalize="curvature"``, else 1) and
    ``normalize`` names the control (``None`` or ``"curvature"``).  ``rowwise``: each row's
    value depends on that row only, so a batch of independent problems can be stacked into
    one call with ``reduction="none"`` (false for ``aux_conf``, whose hardening reads the
    whole batch).
    """

    def __init__(self, name: str, fn: Callable, description: str = "", smoothing: float = 0.0,
                 scale: float = 1.0, normalize: str | None = None, rowwise: bool = True):
        self.name = name
        self._fn = fn
        self.description = description
        self.smoothing = smoothing
        self.scale = float(scale)
        self.normalize = normalize
        self.rowwise = rowwise

    def __call__(self, logits, weak_probs, progress: float = 0.0, smoothing: float | None = None,
                 reduction: str = "mean"):
        value = self._fn(logits, weak_probs, progress, self.smoothing if smoothing is None else smoothing,
                         reduction)
        return value if self.scale == 1.0 else value * self.scale

    def __repr__(self) -> str:
        extra = f", normalize={self.normalize!r}" if self.normalize else ""
        return f"Loss({self.name!r}, smoothing={self.smoothing:g}{extra})"


#: Scale controls of :func:`make_loss` (``normalize=``).
NORMALIZE_CHOICES: tuple[str, ...] = ("curvature",)


def curvature_scale(name: str) -> float:
    """``1/f''(1)`` of the loss ``name`` (``f''(1)`` derived symbolically,
    :func:`theory.derived.f2_at_1`); 1 for ``ce``, ``aux_conf`` and ``product`` (CE-like:
    their local χ² constant is that of KL, ``f''(1) = 1``).

    Raises:
        ValueError: (one line) a generator with no finite positive ``f''(1)`` (``tv``:
            not differentiable at 1), or an unknown loss.
    """
    key = name.strip()
    if key in ("ce", "aux_conf", "product"):
        return 1.0
    from theory import GeneratorError, get_generator
    from theory.derived import f2_at_1, to_float
    try:
        gen = get_generator(key)
    except GeneratorError as exc:
        raise ValueError(f"unknown loss {name!r}: {exc}") from None
    value = f2_at_1(gen)
    x = to_float(value) if value is not None else None
    if x is None or not math.isfinite(x) or x <= 0:
        raise ValueError(f"normalize='curvature' needs a finite positive f''(1), and loss {gen.name!r} "
                         f"has none (f = {gen.text} is not twice differentiable at 1); "
                         "drop it or use normalize=None")
    return 1.0 / x


def make_loss(name: str, smoothing: float = 0.0, normalize: str | None = None) -> Loss:
    """The loss called ``name``: ``ce``, ``aux_conf``, ``product`` or any generator spec
    accepted by :func:`theory.get_generator` (name, ``alpha:a`` or an expression in ``t``),
    with weak-label ``smoothing`` (default 0: exact).

    ``normalize="curvature"`` returns ``D_f / f''(1)`` (:func:`curvature_scale`): every smooth
    ``D_f`` is then ``χ²/2`` to second order (C2), like CE and KL, so losses are compared at
    the same local scale; ``ce``, ``kl``, ``aux_conf`` and ``product`` are unchanged.
    ``None`` (default): the loss as defined.

    Raises:
        ValueError: unknown loss (message lists the valid names), bad ``smoothing``, an
            unknown ``normalize``, or ``normalize="curvature"`` for a loss without ``f''(1)``.
    """
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 0.5):
        raise ValueError(f"smoothing must be a number in [0, 1/k) (k ≥ 2), got {smoothing!r}")
    if normalize is not None and normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"normalize must be None or one of {', '.join(NORMALIZE_CHOICES)}, got {normalize!r}")
    key = name.strip()
    if key == "ce":
        loss = Loss("ce", lambda z, w, p, eps, r: ce_loss(z, w, eps, r), "soft-label cross-entropy CE(W,S)",
                    smoothing)
    elif key == "aux_conf":
        loss = Loss("aux_conf", lambda z, w, p, eps, r: aux_conf_loss(z, w, aux_conf_alpha(p), eps, r),
                    f"Burns et al. auxiliary confidence loss (class-balance hardening; α warm-up "
                    f"to {AUX_CONF_ALPHA_MAX} over {AUX_CONF_WARMUP:.0%})", smoothing, rowwise=False)
    elif key == "product":
        loss = Loss("product", lambda z, w, p, eps, r: product_loss(z, w, reduction=r),
                    "Burns et al. product loss CE(W·S/Σ, S) (no smoothing)", smoothing)
    else:
        from theory import GeneratorError, get_generator
        try:
            gen = get_generator(key)
        except GeneratorError as exc:
            raise ValueError(f"unknown loss {name!r}: valid names are {', '.join(LOSS_NAMES)}, "
                             f"alpha:a, or a convex generator f(t) ({exc})") from None
        spec = gen.name
        _compiled(spec)
        loss = Loss(spec, lambda z, w, p, eps, r: fdiv_loss(z, w, spec, eps, reduction=r),
                    f"D_f(S‖W), f = {gen.text}", smoothing)
    if normalize == "curvature":
        loss.scale = curvature_scale(loss.name)
        loss.normalize = normalize
        if loss.scale != 1.0:
            loss.description += f" / f''(1) (× {loss.scale:g})"
    return loss
