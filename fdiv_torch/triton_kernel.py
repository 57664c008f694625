"""A Triton f-divergence loss kernel generated from the symbolic generator (GPU path).

One kernel launch computes, per row of the logits ``z`` (``n × k``) and weak labels ``w``,
the value and the gradient of

    ``D_f(softmax(z) ‖ w) = Σ_c w_c g(l_c)``,  ``l_c = log s_c − log w_c``,  ``g(l) = f(e^l)``

with the same semantics as the reference path of :func:`experiments.losses.fdiv_loss`:
``g`` evaluated on ``l`` clamped to ``[−Lc, Lc]`` and continued linearly outside with the
slopes ``g'(±Lc)``; a class with ``w_c = 0`` contributes ``s_c f'(∞)`` (the limit of
``w g(log s − log w)`` as ``w → 0``; ``f'(∞)`` from :func:`theory.derived.fprime_at_inf`);
weak rows smoothed as ``w ← (w + ε)/(1 + kε)`` when ``ε > 0``.  The gradient is the
analytic one (as in :mod:`fdiv_torch.fused`): with ``a_c = w_c g'(clamp(l_c))`` (``s_c f'(∞)``
where ``w_c = 0``), ``∂/∂z_j = a_j − s_j Σ_c a_c``.

Code generation.  The elementwise body — ``g`` and ``g'`` of the clamped log-ratio — is
printed from the sympy expressions :func:`theory.codegen.logratio_expr` and
:func:`theory.codegen.logratio_grad_expr` (:func:`triton_source`: a DAG printer mapping
``exp``/``log``/powers/``Piecewise``/… to ``tl.exp``/``tl.log``/multiplications/``tl.where``),
so any generator, named or typed, gets its own kernel; nothing is retyped.

Kernel.  A program owns ``ROWS`` rows (many rows per program when ``k`` is small, one
when it is large) and walks the columns in blocks of ``BLOCK``: an online max / sum-exp
pass gives ``log Σ e^z``; a second pass accumulates the loss and ``Σ_c a_c``; a third writes
the gradient.  When a row fits in one block (``k ≤ 4096``) the tile is loaded once and all
three steps run on registers.  Accumulation is in float32 whatever the logits' dtype
(float32, bfloat16, float16); the gradient is written in the logits' dtype and saved for
the backward pass (one multiply), as cross-entropy saves ``log_softmax``.

Weak labels are read as they come (any float dtype, fresh tensor every step): the kernel
smooths, logs and validates them itself (per-row flags for NaN/inf, entries outside
``[0, 1 + tol]``, rows not summing to 1, and zero entries when ``f'(∞)`` is infinite).  The
flags are checked with ``torch._assert_async``: no host synchronisation per step, but on
CUDA a bad weak-label tensor surfaces as a device-side assertion at the next
synchronisation (the CPU path raises ``ValueError`` with the row instead).

Triton is optional: :func:`available` says whether it imports; on CPU the kernel runs
only under Triton's interpreter (``TRITON_INTERPRET=1``), which the tests use.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

import sympy as sp

from theory.codegen import logratio_expr, logratio_grad_expr
from theory.generators import Generator
from theory.parsing import L

from .fused import with_saved_gradient

__all__ = ["available", "unavailable_reason", "Unsupported", "triton_source", "fdiv_kernel_triton",
           "launch_config", "body_statements", "interpreting", "MAX_BLOCK",
           "compile_ahead"]


class Unsupported(Exception):
    """The generator's expressions contain a node the Triton printer cannot print."""


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """``None`` if Triton imports, else why not (one line)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return f"triton does not import: {type(exc).__name__}: {exc}"[:200]
    return None


def available() -> bool:
    """Whether Triton imports here (a GPU or ``TRITON_INTERPRET=1`` is still needed to run)."""
    return unavailable_reason() is None


def interpreting() -> bool:
    """Whether Triton kernels run in the interpreter (``TRITON_INTERPRET=1``: CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


# ----------------------------------------------------------------------------- printer
_FUNCS = {sp.exp: "tl.exp({})", sp.log: "tl.log({})", sp.Abs: "tl.abs({})"}


def _num(x) -> str:
    v = float(x)
    if not math.isfinite(v):
        raise Unsupported(f"non-finite constant {x}")
    return repr(v)


class _Printer:
    """Statements ``tK = …`` for the DAG of ``exprs`` (each distinct subtree once)."""

    def __init__(self, names: dict):
        self.names = dict(names)
        self.lines: list[str] = []

    def tmp(self, text: str) -> str:
        name = f"t{len(self.lines)}"
        self.lines.append(f"{name} = {text}")
        return name

    def __call__(self, e) -> str:
        if e in self.names:
            return self.names[e]
        if e.is_Symbol:
            raise Unsupported(f"free symbol {e}")
        if e.is_Number:
            return _num(e)
        if e in (sp.S.true, sp.S.false):
            raise Unsupported("boolean constant")
        name = self.tmp(self._node(e))
        self.names[e] = name
        return name

    def _node(self, e) -> str:
        p = self
        if isinstance(e, sp.Add):
            return " + ".join(p(a) for a in e.args)
        if isinstance(e, sp.Mul):
            return " * ".join(p(a) for a in e.args)
        if isinstance(e, sp.Pow):
            b, x = e.args
            if x.is_Integer and abs(int(x)) <= 16:
                n = abs(int(x))
                base = p(b)
                acc, sq, first = None, base, True
                while n:  # square-and-multiply, each partial product a temporary
                    if n & 1:
                        acc = sq if acc is None else self.tmp(f"{acc} * {sq}")
                    n >>= 1
                    if n:
                        sq = self.tmp(f"{sq} * {sq}")
                return f"1.0 / {acc}" if int(x) < 0 else f"{acc} + 0.0"
            if x == sp.Rational(1, 2):
                return f"tl.sqrt({p(b)})"
            if x == sp.Rational(-1, 2):
                return f"1.0 / tl.sqrt({p(b)})"
            if not x.free_symbols and b.is_Number and float(b) > 0:  # c**x → exp(x log c)
                return f"tl.exp({p(x)} * {_num(sp.log(b))})"
            # b**x = exp(x log b): NaN for b < 0 (as torch.pow), 0/inf at b = 0
            return f"tl.exp({p(x)} * tl.log({p(b)}))"
        f = _FUNCS.get(type(e))
        if f is not None:
            return f.format(p(e.args[0]))
        if isinstance(e, sp.sign):
            a = p(e.args[0])
            return f"tl.where({a} > 0.0, 1.0, tl.where({a} < 0.0, -1.0, 0.0 * {a}))"
        if isinstance(e, sp.Heaviside):
            a = p(e.args[0])
            h0 = _num(e.args[1]) if len(e.args) > 1 else "0.5"
            return f"tl.where({a} > 0.0, 1.0, tl.where({a} < 0.0, 0.0, {h0} + 0.0 * {a}))"
        if isinstance(e, sp.sinh):
            a = p(e.args[0])
            return f"0.5 * (tl.exp({a}) - tl.exp(-{a}))"
        if isinstance(e, sp.cosh):
            a = p(e.args[0])
            return f"0.5 * (tl.exp({a}) + tl.exp(-{a}))"
        if isinstance(e, sp.tanh):
            a = p(e.args[0])
            return f"1.0 - 2.0 / (tl.exp(2.0 * {a}) + 1.0)"
        if isinstance(e, (sp.Max, sp.Min)):
            op = "tl.maximum" if isinstance(e, sp.Max) else "tl.minimum"
            out = p(e.args[0])
            for a in e.args[1:]:
                out = self.tmp(f"{op}({out}, {p(a)})")
            return f"{out} + 0.0"
        if isinstance(e, sp.Piecewise):
            out = None
            for val, cond in reversed(e.args):
                v = p(val)
                if cond == sp.S.true:
                    out = v
                    continue
                if out is None:  # no otherwise-branch: NaN, as lambdify's select
                    out = "float('nan')"
                out = self.tmp(f"tl.where({self.cond(cond)}, {v}, {out})")
            return f"{out} + 0.0"
        raise Unsupported(type(e).__name__)

    def cond(self, c) -> str:
        ops = {sp.StrictLessThan: "<", sp.LessThan: "<=", sp.StrictGreaterThan: ">",
               sp.GreaterThan: ">=", sp.Equality: "==", sp.Unequality: "!="}
        if type(c) in ops:
            return f"({self(c.lhs)} {ops[type(c)]} {self(c.rhs)})"
        if isinstance(c, sp.And):
            return "(" + " & ".join(self.cond(a) for a in c.args) + ")"
        if isinstance(c, sp.Or):
            return "(" + " | ".join(self.cond(a) for a in c.args) + ")"
        if isinstance(c, sp.Not):
            return f"(~{self.cond(c.args[0])})"
        raise Unsupported(f"condition {type(c).__name__}")


def body_statements(gen: Generator) -> list[str]:
    """Statements computing ``g`` and ``dg`` (floats in the kernel) from ``l``."""
    g, dg = logratio_expr(gen), logratio_grad_expr(gen)
    pr = _Printer({L: "l"})
    gs, dgs = pr(g), pr(dg)
    # constants broadcast to l's shape (a constant g' is common: kl, tv's tails)
    return pr.lines + [f"g = {gs} + 0.0 * l", f"dg = {dgs} + 0.0 * l"]


_TEMPLATE = '''"""Generated by fdiv_torch.triton_kernel for f(t) = {text} (do not edit)."""
import triton
import triton.language as tl


@triton.jit
def _g_dg(l):
{body}
    return g, dg


@triton.jit
def _terms(z, w_raw, valid, m, log_d, eps, norm, lc, slope_lo, slope_hi, f_inf):
    """Per element: (term of the loss, a = ∂loss/∂log s, s)."""
    w = (w_raw + eps) / norm
    log_s = (z - m[:, None]) - log_d[:, None]
    s = tl.exp(log_s)
    pos = w > 0.0
    l = log_s - tl.log(tl.where(pos, w, 1.0))
    lcl = tl.minimum(tl.maximum(l, -lc), lc)
    g, dg = _g_dg(lcl)
    val = g + tl.where(l < -lc, slope_lo * (l + lc), 0.0) + tl.where(l > lc, slope_hi * (l - lc), 0.0)
    zero_w = s * f_inf
    term = tl.where(valid, tl.where(pos, w * val, zero_w), 0.0)
    a = tl.where(valid, tl.where(pos, w * dg, zero_w), 0.0)
    return term, a, s


@triton.jit
def _checks(w_raw, valid, eps, norm, tol, ZERO_OK: tl.constexpr):
    """Per row: count of bad entries (NaN/inf, outside [0, 1+tol], zero with f'(inf) = inf)."""
    bad = (w_raw != w_raw) | (w_raw < 0.0) | (w_raw > 1.0 + tol)
    if not ZERO_OK:
        bad = bad | (((w_raw + eps) / norm) == 0.0)
    return tl.sum(tl.where(valid & bad, 1, 0), axis=1)


@triton.jit
def fdiv_fwd(Z, W, LOSS, GRAD, FLAG, n_rows, n_cols, stride_z, stride_w, stride_g,
             eps, norm, lc, slope_lo, slope_hi, f_inf, tol,
             ROWS: tl.constexpr, BLOCK: tl.constexpr, ONE_BLOCK: tl.constexpr,
             NEED_GRAD: tl.constexpr, ZERO_OK: tl.constexpr):
    pid = tl.program_id(0)
    rows = pid * ROWS + tl.arange(0, ROWS)
    rmask = rows < n_rows
    r64 = rows.to(tl.int64)
    z_ptr = Z + r64[:, None] * stride_z
    w_ptr = W + r64[:, None] * stride_w
    g_ptr = GRAD + r64[:, None] * stride_g
    cols0 = tl.arange(0, BLOCK)
    if ONE_BLOCK:
        valid = rmask[:, None] & (cols0[None, :] < n_cols)
        z = tl.load(z_ptr + cols0[None, :], mask=valid, other=float("-inf")).to(tl.float32)
        z = tl.where(rmask[:, None], z, 0.0)
        w_raw = tl.load(w_ptr + cols0[None, :], mask=valid, other=0.0).to(tl.float32)
        m = tl.max(z, axis=1)
        log_d = tl.log(tl.sum(tl.exp(z - m[:, None]), axis=1))
        term, a, s = _terms(z, w_raw, valid, m, log_d, eps, norm, lc, slope_lo, slope_hi, f_inf)
        loss = tl.sum(term, axis=1)
        a_sum = tl.sum(a, axis=1)
        bad = _checks(w_raw, valid, eps, norm, tol, ZERO_OK)
        w_sum = tl.sum(w_raw, axis=1)
        if NEED_GRAD:
            grad = a - s * a_sum[:, None]
            tl.store(g_ptr + cols0[None, :], grad.to(GRAD.dtype.element_ty), mask=valid)
    else:
        m = tl.full([ROWS], float("-inf"), tl.float32)
        d = tl.zeros([ROWS], tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + cols0
            valid = rmask[:, None] & (cols[None, :] < n_cols)
            z = tl.load(z_ptr + cols[None, :], mask=valid, other=float("-inf")).to(tl.float32)
            z = tl.where(rmask[:, None], z, 0.0)
            m_new = tl.maximum(m, tl.max(z, axis=1))
            d = d * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new[:, None]), axis=1)
            m = m_new
        log_d = tl.log(d)
        loss = tl.zeros([ROWS], tl.float32)
        a_sum = tl.zeros([ROWS], tl.float32)
        w_sum = tl.zeros([ROWS], tl.float32)
        bad = tl.zeros([ROWS], tl.int32)
        for start in range(0, n_cols, BLOCK):
            cols = start + cols0
            valid = rmask[:, None] & (cols[None, :] < n_cols)
            z = tl.load(z_ptr + cols[None, :], mask=valid, other=0.0).to(tl.float32)
            w_raw = tl.load(w_ptr + cols[None, :], mask=valid, other=0.0).to(tl.float32)
            term, a, s = _terms(z, w_raw, valid, m, log_d, eps, norm, lc, slope_lo, slope_hi, f_inf)
            loss += tl.sum(term, axis=1)
            a_sum += tl.sum(a, axis=1)
            w_sum += tl.sum(w_raw, axis=1)
            bad += _checks(w_raw, valid, eps, norm, tol, ZERO_OK)
        if NEED_GRAD:
            for start in range(0, n_cols, BLOCK):
                cols = start + cols0
                valid = rmask[:, None] & (cols[None, :] < n_cols)
                z = tl.load(z_ptr + cols[None, :], mask=valid, other=0.0).to(tl.float32)
                w_raw = tl.load(w_ptr + cols[None, :], mask=valid, other=0.0).to(tl.float32)
                term, a, s = _terms(z, w_raw, valid, m, log_d, eps, norm, lc, slope_lo, slope_hi, f_inf)
                grad = a - s * a_sum[:, None]
                tl.store(g_ptr + cols[None, :], grad.to(GRAD.dtype.element_ty), mask=valid)
    bad += tl.where(tl.abs(w_sum - 1.0) > tol, 1, 0)
    tl.store(LOSS + rows, loss, mask=rmask)
    tl.store(FLAG + rows, bad, mask=rmask)
'''


def triton_source(gen: Generator) -> str:
    """The Triton module (source text) for generator ``gen``: the template with ``g`` and
    ``g'`` printed from sympy.  Raises :class:`Unsupported` for unprintable expressions."""
    body = "\n".join("    " + line for line in body_statements(gen))
    return _TEMPLATE.format(text=gen.text.replace('"', "'"), body=body)


def _cache_dir() -> Path:
    root = os.environ.get("W2SG_KERNEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "w2sg", "triton")
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    path = Path(tempfile.gettempdir()) / f"w2sg-triton-{os.getuid() if hasattr(os, 'getuid') else 0}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=256)
def _module(gen: Generator):
    """Import the generated module (a file: ``triton.jit`` reads its functions' source)."""
    return _load(gen, "")


def _load(gen: Generator, suffix: str):
    src = triton_source(gen)
    digest = hashlib.sha256(src.encode()).hexdigest()[:16]
    name = f"w2sg_fdiv_{digest}{suffix}"
    path = _cache_dir() / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


#: Widest column block; rows wider than this are walked in blocks (tests lower it).
MAX_BLOCK = 4096


def launch_config(n: int, k: int) -> dict:
    """Tile shape and warps for ``n × k`` logits: one block per row up to ``MAX_BLOCK``
    columns (several rows per program when ``k`` is small: up to 2048 elements per
    program, while keeping ≥ ~512 programs), column blocks of ``MAX_BLOCK`` beyond."""
    block = 1 << max(0, (k - 1).bit_length())
    one_block = block <= MAX_BLOCK
    if not one_block:
        block = MAX_BLOCK
    spread = 1 << max(0, (max(1, n // 512)).bit_length() - 1)  # power of two ≤ n/512
    rows = max(1, min(2048 // block, spread))
    elems = rows * block
    warps = 1 if elems <= 256 else 2 if elems <= 512 else 4 if elems <= 2048 else 8 if elems <= 4096 else 16
    return {"ROWS": rows, "BLOCK": block, "ONE_BLOCK": one_block, "num_warps": warps}


@functools.lru_cache(maxsize=256)
def fdiv_kernel_triton(gen: Generator, clamp: float, slopes: tuple[float, float],
                       f_inf: float) -> Callable:
    """``(z, w, smoothing, tol) ↦ per-example loss`` (float32, shape ``(n,)``), differentiable
    in ``z`` with the analytic gradient (saved in the logits' dtype, float32 for float16
    logits, whose gradient saturates at ±65504 after scaling; not twice differentiable).

    ``z``: ``(n, k)`` float32/bfloat16/float16 logits on a CUDA device (or CPU under
    ``TRITON_INTERPRET=1``); ``w``: ``(n, k)`` raw weak labels (any float dtype, same
    device), smoothed in the kernel with ``smoothing``.  ``clamp``/``slopes``: ``Lc`` and
    ``g'(±Lc)``; ``f_inf``: ``f'(∞)`` (``inf`` makes zero weak entries an error).
    Raises :class:`Unsupported` when the generator cannot be printed to Triton.
    """
    import torch

    mod = _module(gen)
    lo, hi = (float(s) for s in slopes)
    zero_ok = math.isfinite(f_inf)
    f_inf_arg = float(f_inf) if zero_ok else 0.0

    def parts(z, w, smoothing=0.0, tol=1e-4, *, need_grad):
        n, k = z.shape
        if z.stride(-1) != 1:
            z = z.contiguous()
        if w.stride(-1) != 1:
            w = w.contiguous()
        loss = torch.empty(n, dtype=torch.float32, device=z.device)
        flag = torch.empty(n, dtype=torch.int32, device=z.device)
        # float16: the gradient is kept in float32 and saturated at ±65504 only after the
        # backward pass scales it (as the other paths); bf16 has float32's range
        gdtype = torch.float32 if z.dtype == torch.float16 else z.dtype
        grad = torch.empty(z.shape, dtype=gdtype, device=z.device) if need_grad else loss
        cfg = launch_config(n, k)
        grid = (triton_cdiv(n, cfg["ROWS"]),)
        mod.fdiv_fwd[grid](z, w, loss, grad, flag, n, k, z.stride(0), w.stride(0),
                           grad.stride(0) if need_grad else 0,
                           float(smoothing), 1.0 + k * float(smoothing), float(clamp), lo, hi,
                           f_inf_arg, float(tol), ROWS=cfg["ROWS"], BLOCK=cfg["BLOCK"],
                           ONE_BLOCK=cfg["ONE_BLOCK"], NEED_GRAD=need_grad, ZERO_OK=zero_ok,
                           num_warps=cfg["num_warps"])
        _check_async(flag, zero_ok)
        return loss, (grad if need_grad else None)

    return with_saved_gradient(parts)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _check_async(flag, zero_ok: bool) -> None:
    """Assert that no row was flagged, without waiting for the device (``_assert_async``)."""
    import torch
    ok = flag.amax() == 0 if flag.numel() else torch.ones((), dtype=torch.bool, device=flag.device)
    if flag.device.type == "cpu":  # interpreter: a readable error instead of a bare assert
        if not bool(ok):
            row = int((flag != 0).nonzero()[0].item())
            why = "NaN/inf, entries outside [0, 1], a row not summing to 1"
            if not zero_ok:
                why += ", or zero entries while f'(∞) is infinite (use smoothing > 0)"
            raise ValueError(f"weak_probs row {row} is invalid ({why})")
        return
    torch._assert_async(ok)


def compile_ahead(gen: Generator, arch: int = 90, logits: str = "fp32", one_block: bool = True,
                  zero_ok: bool = True, num_warps: int = 8):
    """Compile the generator's kernel for a CUDA architecture without a GPU (``arch=90``:
    Hopper, e.g. H100/H200), through Triton's compiler and the ``ptxas`` it ships; returns
    Triton's compiled kernel (``.asm["ptx"]``, ``.asm["cubin"]``).  A check that the
    generated source is valid Triton for the device, not only for the interpreter.  Needs a
    process in which Triton's interpreter is off (tests run it in a subprocess)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if interpreting():
        raise RuntimeError("compile_ahead needs a process where triton was imported without "
                           "TRITON_INTERPRET=1 (the interpreter replaces Triton's own functions)")
    fn = _module(gen).fdiv_fwd
    ptr = f"*{logits}"
    sig = {"Z": ptr, "W": "*fp32", "LOSS": "*fp32", "GRAD": "*fp32" if logits == "fp16" else ptr, "FLAG": "*i32",
           "n_rows": "i32", "n_cols": "i32", "stride_z": "i32", "stride_w": "i32", "stride_g": "i32",
           **{name: "fp32" for name in ("eps", "norm", "lc", "slope_lo", "slope_hi", "f_inf", "tol")},
           **{name: "constexpr" for name in ("ROWS", "BLOCK", "ONE_BLOCK", "NEED_GRAD", "ZERO_OK")}}
    consts = {"ROWS": 2 if one_block else 1, "BLOCK": 1024 if one_block else MAX_BLOCK,
              "ONE_BLOCK": one_block, "NEED_GRAD": True, "ZERO_OK": zero_ok}
    names = list(sig)
    src = ASTSource(fn=fn, signature=sig, constexprs={(names.index(k),): v for k, v in consts.items()})
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": num_warps})
