"""The one dispatch of the f-divergence loss kernels: which kernel computes a loss.

:data:`BACKENDS` lists every kernel once, in the order ``fused=True`` tries them: the generated
Triton kernel (CUDA), the generated C kernel (CPU), the generated torch kernel, the torch
kernel through ``torch.compile`` (only when asked), and the reference path (autograd through
the generated ``g``).  Each :class:`Backend` says when it applies (:attr:`Backend.why_not`:
device, dtype, weak labels that require grad, availability), which dtype it computes in
(:attr:`Backend.compute_dtype`: the logits are cast *after* dispatch, only where the chosen
kernel needs it) and builds its kernel (:attr:`Backend.build`; a generator it cannot print
or compile, or a build that fails, counts as "does not apply").  :func:`select` is the rule;
:func:`experiments.losses.fdiv_loss` runs the kernel it returns and
:func:`experiments.losses.fdiv_kernel_for` names it, so a record names the kernel that
really computed its loss.

Kernels come in two calling conventions (:attr:`Backend.weak`): ``"raw"`` kernels (C,
Triton) take ``(logits, raw weak rows, smoothing, tol)`` and validate and smooth the weak
labels themselves; ``"prepared"`` kernels (torch, compile, reference) take
``(logits, w, log w̃, zeros)`` from the weak labels validated and smoothed beforehand
(:func:`experiments.losses.prepare_weak`).

``fused`` (the argument of ``fdiv_loss``): ``True`` tries Triton, C, torch in that order
(the reference path when the weak labels require grad); ``"triton"`` and ``"c"`` force those
kernels (a ``ValueError`` in one line where they cannot run); ``"torch"`` and ``"compile"``
take those kernels (the reference path when the weak labels require grad); ``False`` is the
reference path.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import torch

from theory.generators import Generator

from .logratio import clamp_limit, fprime_inf, reference_kernel
from .printing import Unsupported

__all__ = ["Backend", "Query", "BACKENDS", "FUSED", "select"]

#: The accepted values of ``fused``.
FUSED = (True, False, "c", "torch", "compile", "triton")

_HALF = (torch.float16, torch.bfloat16)


@dataclasses.dataclass(frozen=True)
class Query:
    """What the dispatch depends on: the generator and its tail slopes (``{Lc: (g'(−Lc),
    g'(Lc))}``), where the logits live, their dtype (before any cast), whether the weak labels
    require grad, and ``fused``."""
    gen: Generator
    slopes: dict
    device: str
    dtype: torch.dtype
    weak_grad: bool = False
    fused: bool | str = True

    def forced(self, backend: "Backend") -> bool:
        return backend.forced is not None and self.fused == backend.forced


@dataclasses.dataclass(frozen=True)
class Backend:
    """One kernel: ``name`` (recorded as ``loss_kernel``); ``fused``: the values of ``fused``
    that consider it; ``forced``: the value that demands it (a ``ValueError`` instead of a
    fallback); ``weak``: its calling convention (see the module docstring);
    ``why_not(query)``: ``None`` where it applies, else why not (one line);
    ``compute_dtype(dtype)``: the logits' dtype it computes in; ``build(query)``: the kernel
    (raises :class:`~fdiv_torch.printing.Unsupported` or ``OSError`` where it cannot be had,
    described by ``unbuilt``)."""
    name: str
    fused: tuple
    forced: str | None
    weak: str
    why_not: Callable[[Query], str | None]
    compute_dtype: Callable[[torch.dtype], torch.dtype]
    build: Callable[[Query], Callable]
    unbuilt: str = "generator {gen!r} has no kernel here ({exc})"


def _float32_unless_double(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (float32, float16, bfloat16) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _f_inf(gen: Generator) -> float:
    return fprime_inf(gen)


# ----------------------------------------------------------------------------- Triton
def _triton_why_not(q: Query) -> str | None:
    from . import triton_kernel as tk
    if not (q.device == "cuda" or (q.forced(TRITON) and tk.interpreting())):
        return "the Triton kernel needs a CUDA device (or TRITON_INTERPRET=1)"
    if q.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return f"the Triton kernel takes float32/bfloat16/float16 logits, not {q.dtype}"
    if q.weak_grad:
        return "weak labels that require grad take the reference path"
    if not tk.available():
        return tk.unavailable_reason() or "triton unavailable"
    return None


def _triton_build(q: Query) -> Callable:
    from . import triton_kernel as tk
    lc = clamp_limit(torch.float32)  # computed in float32 whatever the logits' dtype
    return tk.fdiv_kernel_triton(q.gen, lc, q.slopes[lc], _f_inf(q.gen))


TRITON = Backend("triton", (True, "triton"), "triton", "raw", _triton_why_not, lambda dtype: dtype,
                 _triton_build, "generator {gen!r} does not print to Triton ({exc})")


# ----------------------------------------------------------------------------- C
def _c_why_not(q: Query) -> str | None:
    from . import c_kernel as ck
    if q.device != "cpu":
        return f"the C kernel runs on the CPU, not {q.device}"
    if q.dtype not in (torch.float32, torch.float64) + _HALF:
        return f"the C kernel takes float32 or float64 logits, not {q.dtype}"
    if q.weak_grad:
        return "weak labels that require grad take the reference path"
    if not ck.available():
        return ck.unavailable_reason() or "C kernel unavailable"
    if not q.forced(C) and not ck.vector_math():
        return "scalar exp/log only: the torch kernel is faster (fused='c' still takes the C kernel)"
    return None


def _c_build(q: Query) -> Callable:
    from . import c_kernel as ck
    dtype = _float32_unless_double(q.dtype)
    lc = clamp_limit(dtype)
    return ck.fdiv_kernel_c(q.gen, lc, q.slopes[lc], _f_inf(q.gen), str(dtype).split(".")[-1])


C = Backend("c", (True, "c"), "c", "raw", _c_why_not, _float32_unless_double, _c_build,
            "generator {gen!r} has no C kernel ({exc})")


# ----------------------------------------------------------------------------- torch
def _fused_why_not(q: Query) -> str | None:
    return "weak labels that require grad take the reference path" if q.weak_grad else None


def _torch_build(q: Query, compiled: bool = False) -> Callable:
    from .fused import fdiv_kernel_compiled, fdiv_kernel_torch
    lc = clamp_limit(_float32_unless_double(q.dtype))
    return (fdiv_kernel_compiled if compiled else fdiv_kernel_torch)(q.gen, lc, q.slopes[lc])


TORCH = Backend("torch", (True, "torch"), None, "prepared", _fused_why_not, _float32_unless_double,
                _torch_build)
COMPILE = Backend("compile", ("compile",), None, "prepared", _fused_why_not, _float32_unless_double,
                  functools.partial(_torch_build, compiled=True))
REFERENCE = Backend("reference", FUSED, None, "prepared", lambda q: None, _float32_unless_double,
                    lambda q: reference_kernel(q.gen, clamp_limit(_float32_unless_double(q.dtype))))

#: Every kernel, in the order ``fused=True`` tries them.
BACKENDS: tuple[Backend, ...] = (TRITON, C, TORCH, COMPILE, REFERENCE)


def select(q: Query) -> tuple[Backend, Callable]:
    """The first backend of :data:`BACKENDS` that ``q.fused`` considers, that applies and whose
    kernel builds, and that kernel.

    Raises:
        ValueError: ``fused`` is not one of :data:`FUSED`, or it forces a kernel (``"c"``,
            ``"triton"``) that cannot run here (the message says why, in one line).
    """
    if q.fused not in FUSED:
        raise ValueError(f"fused must be one of {', '.join(map(repr, FUSED))}, got {q.fused!r}")
    for backend in BACKENDS:
        if q.fused not in backend.fused:
            continue
        why = backend.why_not(q)
        if why is None:
            try:
                return backend, backend.build(q)
            except (Unsupported, OSError) as exc:  # OSError: e.g. a full cache disk
                why = backend.unbuilt.format(gen=q.gen.text, exc=exc)
        if q.forced(backend):
            raise ValueError(f"fused={backend.forced!r}: {why}")
    raise AssertionError("the reference path applies to every query")  # pragma: no cover
