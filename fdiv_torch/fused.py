"""A fused f-divergence training kernel generated from the symbolic generator.

``(z, w, log w) ↦ Σ_c w_c g(l_c)`` with ``l = log_softmax(z) − log w`` and ``g(l) = f(e^l)``
(:func:`theory.codegen.logratio_expr`), whose gradient is generated from ``g'`` rather than
traced by autograd.  It is the speed path of :func:`experiments.losses.fdiv_loss`; the
reference path (autograd through :func:`fdiv_torch.codegen.logratio_torch`) gives the same
values and gradients (``tests/fdiv_torch/test_fused.py``).  Nothing here is retyped by hand:
``g`` and ``g'`` come from sympy, rewritten into the cheapest form that agrees with the
direct expression on a grid, and executed as an in-place program over reused buffers.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import weakref
from typing import Callable

import numpy as np
import sympy as sp

from theory.codegen import logratio_expr, logratio_grad_expr, numpy_function
from theory.generators import Generator
from theory.parsing import L

from .codegen import TORCH_MODULES

__all__ = ["fdiv_kernel_torch", "fdiv_kernel_compiled", "with_saved_gradient", "logratio_value_and_grad_ratio_torch",
           "inplace_program", "BufferPool", "WORKSPACE", "E_RATIO", "ratio_exprs", "top_class_gradient"]


def _cheaper_grad(gen: Generator) -> sp.Expr:
    """``g'`` in the cheapest form found: ``sympy.simplify`` when it has fewer operations,
    no ``Piecewise``, and agrees with the unsimplified derivative on a grid (float64).

    (``js``: 24 → 9 operations, ``neyman``: 9 → 2, ``hellinger``: 6 → 4.)
    """
    dg = logratio_grad_expr(gen)
    if sp.count_ops(dg) > 80 or not dg.free_symbols:
        return dg
    try:
        cand = sp.simplify(dg)
    except Exception:  # noqa: BLE001 - simplification is an optimisation only
        return dg
    if cand.has(sp.Piecewise) or sp.count_ops(cand) >= sp.count_ops(dg):
        return dg
    grid = np.linspace(-25.0, 25.0, 201)
    with np.errstate(all="ignore"):
        a = np.asarray(numpy_function(dg, L)(grid), dtype=float)
        b = np.asarray(numpy_function(cand, L)(grid), dtype=float)
    ok = np.isfinite(a)
    if not np.array_equal(ok, np.isfinite(b)) or not np.allclose(a[ok], b[ok], rtol=1e-9, atol=1e-12):
        return dg
    return cand


#: Stands for ``e^l = s / w`` in :func:`logratio_value_and_grad_ratio_torch`.
E_RATIO = sp.Symbol("E_ratio", positive=True)


def _exp_to_ratio(expr: sp.Expr) -> sp.Expr:
    """Replace ``exp(c·l)`` by ``E^c`` for integer and half-integer ``c`` (``E = e^l``):
    powers, products and square roots of ``E`` need no transcendental function."""
    def rep(arg):
        c = sp.nsimplify(sp.simplify(arg / L)) if arg.has(L) else None
        if c is not None and c.is_Rational and (2 * c).is_Integer and abs(c) <= 4:
            return E_RATIO ** c
        return sp.exp(arg)
    return expr.replace(sp.exp, rep)


def _cheapest(candidates, ref: sp.Expr, args) -> sp.Expr:
    """The cheapest candidate (:func:`_cost`) that agrees with ``ref`` on an ``l`` grid."""
    grid = np.linspace(-25.0, 25.0, 201)
    vals = [grid, np.exp(grid)][:len(args)]
    with np.errstate(all="ignore"):
        want = np.broadcast_to(np.asarray(numpy_function(ref, L)(grid), dtype=float), grid.shape)
    ok = np.isfinite(want)
    best = None
    for cand in candidates:
        if cand is None or cand.has(sp.Piecewise):
            continue
        try:
            fn = sp.lambdify(args, cand, modules=["numpy"])
            with np.errstate(all="ignore"):
                got = np.broadcast_to(np.asarray(fn(*vals), dtype=float), grid.shape)
        except Exception:  # noqa: BLE001 - a candidate that does not evaluate is skipped
            continue
        if not np.array_equal(ok, np.isfinite(got)) or not np.allclose(
                got[ok], want[ok], rtol=1e-9, atol=1e-12):
            continue
        if best is None or _cost(cand) < _cost(best):
            best = cand
    return best


def _cost(expr: sp.Expr) -> int:
    """Operation count, a transcendental function (``exp``, ``log``, ``sinh`` …) worth 20."""
    heavy = sum(1 for node in sp.preorder_traversal(expr)
                if isinstance(node, sp.Function) and not isinstance(node, (sp.Abs, sp.sign)))
    return int(sp.count_ops(expr)) + 20 * heavy


def _try_simplify(expr: sp.Expr):
    if sp.count_ops(expr) > 80:
        return None
    try:
        return sp.simplify(expr)
    except Exception:  # noqa: BLE001 - simplification is an optimisation only
        return None



# ----------------------------------------------------------------------------- in-place programs
_UNARY = {sp.exp: "exp", sp.log: "log", sp.Abs: "abs", sp.sign: "sign", sp.sinh: "sinh",
          sp.cosh: "cosh", sp.tanh: "tanh", sp.sqrt: "sqrt"}


class _Unsupported(Exception):
    pass


class BufferPool:
    """Scratch tensors reused across calls (per thread): ``get(like)`` a free tensor shaped
    like ``like`` (else a new one), ``put`` it back.  Re-touching memory that is already
    mapped avoids the page faults that dominate a fresh large tensor on CPU.  At most
    ``per_shape`` free tensors are kept per (shape, dtype, device); more are dropped."""

    def __init__(self, per_shape: int = 8):
        import threading
        self._local = threading.local()
        self.per_shape = per_shape

    def _free(self) -> dict:
        free = getattr(self._local, "free", None)
        if free is None:
            free = self._local.free = {}
        return free

    def get(self, like):
        return self.empty(like.shape, like.dtype, like.device)

    def empty(self, shape, dtype, device):
        """A free tensor of this shape, dtype and device (uninitialised), else a new one."""
        import torch
        key = (tuple(shape), dtype, torch.device(device))
        stack = self._free().get(key)
        return stack.pop() if stack else torch.empty(key[0], dtype=key[1], device=key[2])

    def put(self, t) -> None:
        stack = self._free().setdefault((tuple(t.shape), t.dtype, t.device), [])
        if len(stack) < self.per_shape and not any(x is t for x in stack):
            stack.append(t)

    def clear(self) -> None:
        self._free().clear()

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for v in self._free().values() for t in v)


#: Scratch space of :func:`fdiv_kernel_torch` (``WORKSPACE.clear()`` releases it).
WORKSPACE = BufferPool()

#: :func:`fdiv_kernel_torch` works on blocks of about this many logits (whole rows) when a
#: batch is larger than twice that: the blocks' temporaries stay in the CPU caches.
CHUNK_ELEMENTS = 1 << 18


def _schedule(exprs: tuple, args: tuple) -> tuple[list, dict]:
    """The nodes of ``exprs``' DAG to evaluate, operands first (symbols and numbers left
    out), and how often each node is used (outputs once more: never overwritten).  Raises
    ``_Unsupported`` for node types :func:`inplace_program` does not know."""
    order: list = []
    uses: dict = {}

    def visit(e):
        if e in uses:
            uses[e] += 1
            return
        uses[e] = 1
        if not (e.is_Symbol or e.is_Number):
            if not (isinstance(e, (sp.Add, sp.Mul, sp.Pow)) or type(e) in _UNARY):
                raise _Unsupported(type(e).__name__)
            for a in e.args:
                visit(a)
        order.append(e)

    for e in exprs:
        visit(e)
        uses[e] += 1  # outputs are never overwritten
    for a in args:
        uses.setdefault(a, 1)
    steps = []
    for e in order:
        if e.is_Symbol:
            if e not in args:
                raise _Unsupported(f"free symbol {e}")
        elif e.is_Number:
            if not e.is_real:
                raise _Unsupported(str(e))
        else:
            steps.append(e)
    return steps, uses


def _add_mul(e, ops, new):
    """An ``Add``/``Mul`` node from its operands ``[(value, may overwrite)]``: a float when
    every operand is one, else a tensor (an overwritable operand reused in place)."""
    import torch
    tensors = [(v, own) for v, own in ops if isinstance(v, torch.Tensor)]
    consts = [v for v, _ in ops if not isinstance(v, torch.Tensor)]
    mul = isinstance(e, sp.Mul)
    c = math.prod(consts) if mul else sum(consts)
    if not tensors:
        return c
    acc, own = next(((v, o) for v, o in tensors if o), tensors[0])
    rest = [v for v, o in tensors if v is not acc] + [v for v, o in tensors if v is acc][1:]
    if not own:
        op = torch.mul if mul else torch.add
        if rest:
            acc = op(acc, rest.pop(0), out=new(acc))
        elif (mul and c != 1) or (not mul and c != 0):
            acc = op(acc, c, out=new(acc))
            c = 1 if mul else 0
        else:
            acc = new(acc).copy_(acc)
    for v in rest:
        acc = acc.mul_(v) if mul else acc.add_(v)
    if mul and c != 1:
        acc = acc.neg_() if c == -1 else acc.mul_(c)
    elif not mul and c != 0:
        acc = acc.add_(c)
    return acc


def _pow(e, ops, new):
    """A ``Pow`` node (squares, reciprocals and roots by their own functions)."""
    import torch
    (b, own), (x, _) = ops
    if isinstance(x, torch.Tensor):
        return torch.pow(b, x, out=new(x if not isinstance(b, torch.Tensor) else b))
    if not isinstance(b, torch.Tensor):
        return float(b) ** x
    fn = {2.0: "square", -1.0: "reciprocal", 0.5: "sqrt", -0.5: "rsqrt", 1.0: None}.get(x, "pow")
    if fn is None:
        return b if own else new(b).copy_(b)
    if fn == "pow":
        return b.pow_(x) if own else torch.pow(b, x, out=new(b))
    return getattr(b, fn + "_")() if own else getattr(torch, fn)(b, out=new(b))


def _unary(e, ops, new):
    """An ``exp``/``log``/``abs``/… node."""
    import torch
    (b, own), = ops
    name = _UNARY[type(e)]
    if not isinstance(b, torch.Tensor):
        return float(sp.N(e))
    return getattr(b, name + "_")() if own else getattr(torch, name)(b, out=new(b))


def inplace_program(exprs: tuple, args: tuple, donate: bool = False) -> Callable:
    """Compile ``exprs`` (functions of ``args``) to torch with buffer reuse.

    The expression DAG (identical subtrees evaluated once) is run node by node; a node
    whose operand is a temporary at its last use overwrites it in place (``mul_``,
    ``exp_`` …) instead of allocating.  On CPU a fresh ``n × k`` tensor costs several
    times an in-place pass, so this is most of the speed of a generated loss.  Raises
    ``_Unsupported`` for node types it does not know (the caller falls back to lambdify).
    Outputs that are constant come back as Python floats.  ``donate=True``: the input
    tensors belong to the program too and may be overwritten at their last use.
    """
    import torch
    steps, uses = _schedule(exprs, args)

    def run(*vals, pool=None):
        env = {a: v for a, v in zip(args, vals)}

        def new(like):
            return pool.get(like) if pool is not None else torch.empty_like(like)

        owned = {a for a, v in zip(args, vals) if isinstance(v, torch.Tensor)} if donate else set()
        left = dict(uses)

        def val(e):
            return float(e) if e.is_Number else env[e]

        def take(e):
            """Operand ``e``; (value, may overwrite)."""
            left[e] -= 1
            v = val(e)
            return v, (e in owned and left[e] == 0)

        for e in steps:
            ops = [take(a) for a in e.args]
            evaluate = _add_mul if isinstance(e, (sp.Add, sp.Mul)) else _pow if isinstance(e, sp.Pow) else _unary
            acc = env[e] = evaluate(e, ops, new)
            if not isinstance(acc, torch.Tensor):
                continue
            owned.add(e)
            if pool is not None:  # temporaries that died here go back to the pool
                for a in e.args:
                    if a in owned and left[a] == 0 and env[a] is not acc:
                        pool.put(env[a])
                        owned.discard(a)
        return tuple(val(e) for e in exprs)

    return run


@functools.lru_cache(maxsize=256)
def ratio_exprs(gen: Generator) -> tuple[sp.Expr, sp.Expr]:
    """``(g, g')`` as functions of ``(l, E = e^l)``, each in its cheapest verified form."""
    g, dg = logratio_expr(gen), logratio_grad_expr(gen)
    args = (L, E_RATIO)
    g_e = _exp_to_ratio(g)
    dg_e = _exp_to_ratio(dg)
    g_best = _cheapest([g_e, _exp_to_ratio(_try_simplify(g) or g), _try_simplify(g_e)], g, args) or g
    dg_best = _cheapest([dg_e, _exp_to_ratio(_cheaper_grad(gen)), _try_simplify(dg_e)], dg, args) or dg
    return g_best, dg_best


@functools.lru_cache(maxsize=256)
def logratio_value_and_grad_ratio_torch(gen: Generator) -> tuple[Callable, bool, bool]:
    """``(l, E) ↦ (g(l), g'(l))`` with ``E = e^l`` supplied by the caller (torch).

    ``l`` and ``E`` are overwritten (they are scratch space of the caller).

    A loss already has ``s = softmax(z)``, so ``E = s / w`` costs one division instead of
    an ``exp`` per element: ``pearson`` ``(E−1)²``, ``hellinger`` ``(√E−1)²``, ``neyman``
    ``(E−1)²/E`` need no transcendental function at all.  Returns the function and
    whether it reads ``l`` (``kl``, ``js``, ``jeffreys``, ``reverse_kl`` do; the caller
    skips forming ``l`` otherwise).  Each output is the cheapest form found (``exp`` →
    ``E``, with or without ``sympy.simplify``) that matches the direct expression on a
    grid; common subexpressions of ``g`` and ``g'`` are computed once (``cse``).
    """
    args = (L, E_RATIO)
    g_best, dg_best = ratio_exprs(gen)
    try:
        fn = inplace_program((g_best, dg_best), args, donate=True)
    except _Unsupported:
        fn = sp.lambdify(args, (g_best, dg_best), modules=TORCH_MODULES, cse=True)
    return (fn, bool(g_best.has(L) or dg_best.has(L)),
            bool(g_best.has(E_RATIO) or dg_best.has(E_RATIO)))


@dataclasses.dataclass(frozen=True)
class _TorchKernel:
    """What one generator's torch kernel evaluates: ``gd(l, E) -> (g, g')`` (an
    :func:`inplace_program` when ``native``), whether it reads ``l`` and ``E = e^l``, the tail
    slopes ``lo = g'(−lc)``, ``hi = g'(lc)`` and the clamp ``lc``."""
    gd: Callable
    needs_l: bool
    needs_ratio: bool
    native: bool
    lo: float
    hi: float
    lc: float


@functools.lru_cache(maxsize=256)
def fdiv_kernel_torch(gen: Generator, clamp: float, slopes: tuple[float, float],
                      workspace: bool = True) -> Callable:
    """A fused ``D_f(softmax(z) ‖ w)`` kernel for training: ``(z, w, log w) ↦ per-example loss``.

    Same value as the reference path of :func:`experiments.losses.fdiv_loss` (``g`` on
    ``l = log_softmax(z) − log w`` clamped to ``[−clamp, clamp]`` and continued linearly
    with ``slopes = (g'(−clamp), g'(clamp))``), but its gradient is generated, not traced:
    with ``a = w ⊙ g'(clamp(l))`` (``g'`` from :func:`logratio_grad_expr`; the derivative of
    the linear continuation is ``g'`` at the clamp)

        ``∂/∂z_j Σ_c w_c g(l_c) = a_j − s_j Σ_c a_c``,  ``s = softmax(z)``,

    and at a row's single top class ``a_j (1 − s_j) − s_j Σ_{c≠j} a_c`` with ``1 − s_j``
    summed from the other classes (:func:`top_class_gradient`, the C and Triton kernels'
    formula: the first form cancels when ``s_j → 1``).

    ``e^l`` is taken as ``s / w`` (:func:`logratio_value_and_grad_ratio_torch`), so most
    generators need no transcendental function beyond the softmax; ``l`` itself is only
    formed for generators that read it.  The forward pass evaluates ``g`` and ``g'``
    together (common subexpressions shared), forms that
    gradient in place and saves only it (one ``n × k`` tensor, as cross-entropy saves
    ``log_softmax``), so the backward pass is one multiply.  Autograd through the
    elementwise expression would instead save several intermediates and replay every op.
    The tail terms are only formed when some ``|l|`` exceeds the clamp (one min/max pass).
    ``g`` and ``g'`` run as an :func:`inplace_program`; with ``workspace`` (default) the
    ``n × k`` scratch tensors come from :data:`WORKSPACE` and stay allocated between calls
    (``WORKSPACE.nbytes()``; ``WORKSPACE.clear()`` frees them).  A batch of more than
    ``2 × CHUNK_ELEMENTS`` logits is processed in blocks of whole rows of about
    ``CHUNK_ELEMENTS`` logits, so that the elementwise passes run in cache (every quantity is
    row-wise; the tails are formed per block where that block needs them).

    ``log w`` may be passed as ``None``: it is then taken per block, and only where ``l``
    is formed (generators that read ``l``, or a block that needs the tails).

    Not twice differentiable (raises on double backward); ``w`` must not require grad —
    callers fall back to autograd through :func:`logratio_torch` for those cases.

    Zero weak entries (the kernel's optional 4th argument ``zeros = (w̃, mask, f'(∞))``):
    ``w̃`` is ``w`` with its zeros replaced by 1 and ``log_w`` must be ``log w̃``, so
    ``s / w̃`` and ``l`` stay finite; ``w_c g(l_c)`` and ``a_c`` are then exactly 0 there and
    each zero entry gets its limit instead, ``s_c f'(∞)`` in the value and
    ``a_c = s_c f'(∞)`` in the gradient (``w g'(l) = s f'(s/w) → s f'(∞)`` as ``w → 0``).
    ``f'(∞)`` must be finite (:func:`experiments.losses.fdiv_loss` raises otherwise).
    """
    gd, needs_l, needs_ratio = logratio_value_and_grad_ratio_torch(gen)
    spec = _TorchKernel(gd, needs_l, needs_ratio, gd.__name__ == "run", float(slopes[0]), float(slopes[1]),
                        float(clamp))
    pool = WORKSPACE if workspace else None

    def parts(z, w, log_w, zeros=None, *, need_grad):
        if w.requires_grad or (log_w is not None and log_w.requires_grad):
            raise ValueError("fdiv_kernel_torch: weak labels must not require grad")
        return _in_row_blocks(spec, z, w, log_w, zeros, need_grad, pool)

    return with_saved_gradient(parts)


def _in_row_blocks(spec: _TorchKernel, z, w, log_w, zeros, need_grad: bool, pool):
    """``(per-example loss, gradient or None)``: the whole batch at once, or, beyond
    ``2 × CHUNK_ELEMENTS`` logits, in blocks of whole rows small enough that each of the
    ~15 elementwise passes over them reads cache, not memory (every quantity is row-wise)."""
    import torch
    n, k = z.shape
    rows = max(1, CHUNK_ELEMENTS // max(k, 1))
    if z.numel() <= 2 * CHUNK_ELEMENTS or n <= rows:
        return _forward_block(spec, z, w, log_w, need_grad, pool, zeros)
    loss = torch.empty(n, dtype=z.dtype, device=z.device)
    grad = torch.empty_like(z) if need_grad else None
    for i in range(0, n, rows):
        j = min(n, i + rows)
        zi = None if zeros is None else (zeros[0][i:j], None if zeros[1] is None else zeros[1][i:j], zeros[2])
        _forward_block(spec, z[i:j], w[i:j], None if log_w is None else log_w[i:j], need_grad, pool, zi,
                       grad_out=grad[i:j] if need_grad else None, loss_out=loss[i:j])
    return loss, grad


def _softmax_and_logratio(z, w_div, log_w, buf):
    """``s = softmax(z)`` and a function forming ``l = log s − log w̃`` (in a new buffer);
    ``buf()``: a scratch tensor shaped like ``z``."""
    import torch
    if z.shape[-1] <= 16:  # few classes: log_softmax + exp is the faster pair
        log_s = torch._log_softmax(z, -1, False, out=buf())
        s = torch.exp(log_s, out=buf())

        def logratio():
            return log_s.sub_(log_w if log_w is not None else torch.log(w_div, out=buf()))
        return s, logratio
    s = torch._softmax(z, -1, False, out=buf())  # many classes: log s = z − lse, no second exp pass

    def logratio():
        # at the argmax j, s_j = max s ≥ 1/k, so lse = max z − log max s is exact
        lse = z.amax(dim=-1, keepdim=True).sub_(s.amax(dim=-1, keepdim=True).log_())
        return torch.sub(z, lse, out=buf()).sub_(log_w if log_w is not None else torch.log(w_div, out=buf()))
    return s, logratio


def _g_and_dg(spec: _TorchKernel, s, w_div, logratio, buf, pool):
    """``(g(clamp l) + tails, g'(clamp l))`` elementwise: ``E = s / w̃`` where the generator
    reads it, ``l`` where it reads ``l`` or some ``E`` (``l``) leaves ``[e^−lc, e^lc]``
    (``[−lc, lc]``), the linear tails only then."""
    import torch
    lc = spec.lc
    ratio = l = None
    if spec.needs_ratio:
        ratio = torch.div(s, w_div, out=buf())  # e^l without an exp
        r_lo, r_hi = torch.aminmax(ratio)
        tails = not (bool(r_lo >= math.exp(-lc)) and bool(r_hi <= math.exp(lc)))  # NaN: slow path
        if spec.needs_l or tails:
            l = logratio()
    else:
        l = logratio()
        l_lo, l_hi = torch.aminmax(l)
        tails = not (bool(l_lo >= -lc) and bool(l_hi <= lc))
    if tails:
        l_raw = l
        l = torch.clamp(l_raw, -lc, lc, out=buf())
        ratio = torch.exp(l, out=buf())
    gv, dg = spec.gd(l, ratio, pool=pool) if spec.native else spec.gd(l, ratio)  # overwrites l, ratio
    if not (isinstance(gv, torch.Tensor) and gv is not dg):
        gv = torch.add(torch.zeros_like(s), gv)
    if tails:
        zero = torch.zeros((), dtype=s.dtype)
        gv.add_(torch.where(l_raw < -lc, spec.lo * (l_raw + lc), zero))
        gv.add_(torch.where(l_raw > lc, spec.hi * (l_raw - lc), zero))
    return gv, dg


def _forward_block(spec: _TorchKernel, z, w, log_w, need_grad, pool, zeros=None, grad_out=None, loss_out=None):
    """``(per-example loss, gradient or None)`` of one block of rows (see
    :func:`fdiv_kernel_torch`); the results go to ``loss_out``/``grad_out`` when given."""
    import torch
    # n × k temporaries are written in place, or taken from the reused workspace: a fresh
    # large tensor costs several times an arithmetic pass over it on CPU (page faults)
    scratch = []

    def buf(like=z):
        t = pool.get(like) if pool is not None else torch.empty_like(like)
        scratch.append(t)
        return t

    # exact-zero weak entries (issue 11): divide by w̃ (zeros → 1), add s_c f'(∞) below
    w_div, zmask, fpi = zeros if zeros is not None else (w, None, 0.0)
    s, logratio = _softmax_and_logratio(z, w_div, log_w, buf)
    gv, dg = _g_and_dg(spec, s, w_div, logratio, buf, pool)
    gv.mul_(w)
    if zmask is not None and fpi != 0:  # w_c = 0: 0·f(s_c/0) = s_c f'(∞)
        gv.addcmul_(s, zmask, value=fpi)
    per_example = torch.sum(gv, dim=-1, out=loss_out) if loss_out is not None else gv.sum(dim=-1)
    grad = None
    if need_grad:
        # the gradient is saved for backward: a fresh tensor, never workspace
        grad = torch.mul(w, dg, out=grad_out) if grad_out is not None else torch.mul(w, dg)
        if zmask is not None and fpi != 0:  # a_c = s_c f'(∞) where w_c = 0
            grad.addcmul_(s, zmask, value=fpi)
        top_class_gradient(grad, s)  # overwrites s (scratch)
    if pool is not None:
        for t in scratch + [x for x in (gv, dg) if isinstance(x, torch.Tensor)]:
            pool.put(t)
    return per_example, grad


def top_class_gradient(a, s):
    """``a ← ∂/∂z`` in place from ``a_c = ∂loss/∂log s_c`` and ``s = softmax(z)`` (rows):
    ``a_c − s_c Σ a``, and at a row's top class ``j`` where ``s_j > 1/2`` (then it is the
    single largest) ``a_j (1 − s_j) − s_j Σ_{c≠j} a_c`` with ``1 − s_j = Σ_{c≠j} s_c`` — the
    formula of the C and Triton kernels, which does not cancel as ``s_j → 1`` (``a_j − s_j Σ a``
    loses most digits there in float32).  Two classes: ``∂/∂z_0 = a_0 s_1 − s_0 a_1 = −∂/∂z_1``,
    the same formula for both.  ``s`` may be overwritten (its top entries set to 0).
    Returns ``a``."""
    import torch
    if a.shape[-1] == 2:
        g0 = a[:, 0] * s[:, 1] - s[:, 0] * a[:, 1]
        a[:, 0] = g0
        torch.neg(g0, out=g0)
        a[:, 1] = g0
        return a
    s_top, top = s.max(dim=-1, keepdim=True)
    a_top = a.gather(-1, top)
    a.scatter_(-1, top, 0.0)
    s.scatter_(-1, top, 0.0)
    a_rest, s_rest = a.sum(dim=-1, keepdim=True), s.sum(dim=-1, keepdim=True)
    a_sum = a_rest + a_top
    a.addcmul_(s, a_sum, value=-1)  # the top entries stay 0 here
    a.scatter_(-1, top, torch.where(s_top > 0.5, a_top * s_rest - s_top * a_rest, a_top - s_top * a_sum))
    return a


def _text_hash(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=64)
def fdiv_kernel_compiled(gen: Generator, clamp: float, slopes: tuple[float, float]) -> Callable:
    """:func:`fdiv_kernel_torch` with its forward pass (value *and* analytic gradient)
    compiled by ``torch.compile`` (inductor fuses the elementwise work into a few loops).

    Optional: compilation takes seconds per generator and shape, needs a C++ compiler,
    and may be unavailable; ``w2sg bench`` measures it.  Same contract as the eager kernel.
    """
    import torch

    g_e, dg_e = ratio_exprs(gen)
    gd = sp.lambdify((L, E_RATIO), (g_e, dg_e), modules=TORCH_MODULES)
    lo, hi = slopes
    lc = float(clamp)

    def parts(z, w, log_w, zmask, fpi):
        # zero weak entries (see fdiv_kernel_torch): log_w = log w̃ is finite there, w = 0
        # removes g, and zmask (0/1, or None) adds their limit s_c f'(∞)
        log_s = torch.log_softmax(z, dim=-1)
        s = torch.exp(log_s)
        l_raw = log_s - log_w
        l = l_raw.clamp(-lc, lc)
        gv, dg = gd(l, torch.exp(l))
        gv = (gv + torch.where(l_raw < -lc, lo * (l_raw + lc), 0.0)
              + torch.where(l_raw > lc, hi * (l_raw - lc), 0.0))
        a = w * dg
        value = w * gv
        if zmask is not None:
            a = a + fpi * s * zmask
            value = value + fpi * s * zmask
        return value.sum(dim=-1), top_class_gradient(a, s)  # (s is not read after this)

    # one code object per generator: dynamo caches compiled frames per code object, and
    # closures sharing one would count as recompilations of a single frame (limit 8)
    import types
    name = f"fdiv_parts_{_text_hash(gen.text)}"
    parts = types.FunctionType(parts.__code__.replace(co_name=name, co_qualname=name),
                               parts.__globals__, name, parts.__defaults__, parts.__closure__)
    compiled = torch.compile(parts, dynamic=False)

    def run(z, w, log_w, zeros=None, *, need_grad):
        zmask, fpi = (None, 0.0) if zeros is None or zeros[2] == 0 else (zeros[1], zeros[2])
        return compiled(z, w, log_w, zmask, fpi)

    return with_saved_gradient(run)


def with_saved_gradient(parts: Callable, recycle: Callable | None = None) -> Callable:
    """Wrap ``parts(z, *args, need_grad=…) -> (per-example loss, ∂loss/∂z or None)`` as a
    differentiable ``(z, *args) ↦ per-example loss`` whose backward pass is one multiply by
    the gradient saved in the forward pass (``once_differentiable``).  The gradient comes back
    in ``z``'s dtype; for float16 ``z`` (whose gradient ``parts`` keeps in float32) it
    saturates at ±65504 instead of overflowing.  The fused kernels here, the C kernel
    (:mod:`fdiv_torch.c_kernel`) and the Triton kernel (:mod:`fdiv_torch.triton_kernel`)
    share it.  ``recycle(grad)`` (optional) is called with the saved gradient once its graph
    is gone (nothing can read it any more, ``retain_graph`` included): a buffer pool gets
    it back, so that the next step writes into memory that is already mapped."""
    import torch

    class _SavedGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, *args):
            per_example, grad = parts(z, *args, need_grad=ctx.needs_input_grad[0])
            ctx.half, ctx.n_args = z.dtype == torch.float16, len(args)
            ctx.save_for_backward(grad if grad is not None else torch.empty(0))
            if recycle is not None and grad is not None:
                weakref.finalize(ctx, recycle, grad)
            return per_example

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, gout):
            (grad,) = ctx.saved_tensors
            # (a stride-0 ``expand`` of the mean's scalar makes a broadcast multiply 3-4x slower)
            out = grad * gout.to(grad.dtype).reshape(-1, 1).contiguous()
            if ctx.half:
                top = torch.finfo(torch.float16).max
                out = out.clamp_(-top, top).to(torch.float16)
            return (out,) + (None,) * ctx.n_args

    def kernel(z, *args):
        if not z.requires_grad or not torch.is_grad_enabled():
            with torch.no_grad():
                return parts(z, *args, need_grad=False)[0]
        return _SavedGradient.apply(z, *args)

    return kernel
