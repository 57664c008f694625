"""A C f-divergence loss kernel for CPUs, generated from the symbolic generator.

Same computation and contract as the Triton kernel (:mod:`fdiv_torch.triton_kernel`), for
float32 or float64 logits on the CPU: per row of the logits ``z`` (``n × k``) and raw weak
labels ``w``, the value and the analytic gradient of

    ``D_f(softmax(z) ‖ w) = Σ_c w_c g(l_c)``,  ``l_c = log s_c − log w_c``,  ``g(l) = f(e^l)``,

``g`` evaluated at ``l`` clamped to ``[−Lc, Lc]`` and continued linearly outside with the
slopes ``g'(±Lc)``; a class with ``w_c = 0`` contributes ``s_c f'(∞)``; ``w ← (w + ε)/(1 + kε)``
when smoothing ``ε > 0`` (computed as ``(w + ε)·(1/(1 + kε))``: within one rounding of the
quotient; exact for ``ε = 0``).  With ``a_c = w_c g'(clamp(l_c))`` (``s_c f'(∞)`` where
``w_c = 0``) the gradient is ``∂/∂z_j = a_j − s_j Σ_c a_c``, and at a row's single top class
``a_j (1 − s_j) − s_j Σ_{c≠j} a_c`` with ``1 − s_j`` summed from the other classes (the
first form cancels when ``s_j → 1``); it is saved for the backward pass (one multiply).

Per row, while the row is in the L1 cache: its max; ``e^{z−max}``, its sum and the
weak-label checks; ``log w`` (own loop); the loss terms and ``a``; the gradient, written
once.  The logits and weak labels are read from memory once, where the eager torch kernel
(:mod:`fdiv_torch.fused`) makes about fifteen elementwise passes.  Rows of ``K`` ∈
:data:`FIXED_K` classes instead go one row per SIMD lane, the classes written out.  ``g``
and ``g'`` are the cheapest verified forms in ``(l, E = e^l)``
(:func:`fdiv_torch.fused.ratio_exprs`), printed to C by :mod:`fdiv_torch.printing`; ``E``
is taken as ``s / w``, so generators that do not read ``l`` (``pearson``, ``hellinger``,
``neyman``, ``tv`` …) need no logarithm per element; a row where some ``E`` leaves
``[e^{−Lc}, e^{Lc}]`` is redone with ``l`` and the linear tails.  Rows are split over
``torch.get_num_threads()`` threads when the batch is large, on 64-row boundaries (the same
bits for any thread count).  No loop reads an array under a condition: gcc's masked loads
keep stale register lanes, and a stale subnormal there cost a microcode assist per vector.

Compilation.  The source is compiled once per generator and dtype by the system's C
compiler with ``-O3 -march=native``, and glibc's vector math library (``libmvec``) where it
links, so that ``exp``/``log`` are vectorised (:mod:`fdiv_torch.c_build`: ``$W2SG_CC``,
``W2SG_CC=none`` to turn this path off, one deadline for a compiler that hangs, failures
remembered); the shared library is cached in a folder only the user can write
(:func:`fdiv_torch.kernel_cache.kernel_cache_dir`, default ``~/.cache/w2sg/c``), named by the
hash of the source, the flags, the compiler and the CPU, and loaded only while its SHA-256
is the one recorded when it was built.  Accuracy: libmvec's ``expf``/``logf`` are within 4 ulp,
sums run in a different order than torch's; values and gradients equal the reference path
within rounding, and the float32 gradient is at least as close to the float64 one as the
reference path's (``tests/fdiv_torch/test_c_kernel.py``).
"""
from __future__ import annotations

import ctypes
import functools
import math
import shlex
from typing import Callable

from theory.generators import Generator
from theory.parsing import L

from .fused import E_RATIO, BufferPool, ratio_exprs, with_saved_gradient
from . import c_build
from .printing import C_DOUBLE, C_FLOAT, DagPrinter, Unsupported

__all__ = ["available", "unavailable_reason", "vector_math", "Unsupported", "InvalidWeakRow", "c_source",
           "body_statements", "fdiv_kernel_c", "compile_flags", "probe_flags", "FIXED_K",
           "MIN_ELEMENTS_PER_THREAD", "GRADIENTS"]

#: A thread is given at least this many logits (smaller batches run on the calling thread).
MIN_ELEMENTS_PER_THREAD = 1 << 16

#: The saved gradients (``n × k``), back in the pool once their graph is gone: a fresh
#: large tensor costs a page fault per 4 KiB on first write, about the kernel's own time
#: on this kind of machine.  Two per shape are kept (a training step's and the previous
#: step's, whose graph is freed only when its loss is); ``GRADIENTS.clear()`` frees them.
GRADIENTS = BufferPool(per_shape=2)


class InvalidWeakRow(ValueError):
    """Row ``row`` of the weak labels is invalid (NaN/inf, an entry outside ``[0, 1 + tol]``,
    a row sum off 1 by more than ``tol``, or a zero entry while ``f'(∞)`` is infinite)."""

    def __init__(self, row: int):
        super().__init__(f"weak_probs row {row} is invalid (NaN/inf, entries outside [0, 1], a row not "
                         f"summing to 1, or zero entries while f'(∞) is infinite: use smoothing > 0)")
        self.row = row


# ----------------------------------------------------------------------------- source
#: What the C source differs in between the two precisions: the real type, the literal
#: suffix, the math functions, the printing dialect.
_PRECISION = {
    "float32": {"R": "float", "F": "f", "EXP": "expf", "LOG": "logf", "FABS": "fabsf", "dialect": C_FLOAT,
                "max": 3.4028234663852886e38},
    "float64": {"R": "double", "F": "", "EXP": "exp", "LOG": "log", "FABS": "fabs", "dialect": C_DOUBLE,
                "max": 1.7976931348623157e308},
}


def body_statements(gen: Generator, dtype: str = "float32") -> tuple[list[str], bool]:
    """C statements setting ``*g`` and ``*dg`` from ``l`` and ``E`` (``dtype``: ``"float32"``
    or ``"float64"``), and whether they read ``l`` (else only ``E``)."""
    g, dg = ratio_exprs(gen)
    pr = DagPrinter(_PRECISION[dtype]["dialect"], {L: "l", E_RATIO: "E"})
    gs, dgs = pr(g), pr(dg)
    return pr.lines + [f"*g = {gs};", f"*dg = {dgs};"], bool(g.has(L) or dg.has(L))


# The template's placeholders: {R} real type, {EXP}/{LOG}/{FABS} math
# functions; the generator's constants and its g/g' statements ({body}).
_TEMPLATE = r"""/* Generated by fdiv_torch.c_kernel for f(t) = {text}, {dtype} (do not edit). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>

#ifdef W2SG_MVEC  /* glibc's vector math: the compiler may call exp/log on whole vectors */
#pragma omp declare simd notinbranch
{R} {EXP}({R});
#pragma omp declare simd notinbranch
{R} {LOG}({R});
#endif

#define LC {lc}
#define SLOPE_LO {lo}
#define SLOPE_HI {hi}
#define E_LO {e_lo}   /* e^-LC */
#define E_HI {e_hi}   /* e^LC */
#define F_INF {f_inf}   /* f'(inf) (0 when infinite: zero weak entries are then invalid) */
#define ZERO_OK {zero_ok}
#define READS_L {reads_l}
/* selects, which vectorise (fmax/fmin are library calls that stop vectorisation) */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
typedef {R} real;

static inline void g_dg(real l, real E, real *g, real *dg)
{{
    (void)l; (void)E;
{body}
}}

/* The arguments of g for one class: l = clamp(log s - log w) and the tail term (when
   tail || READS_L), E = s/w clamped to [E_LO, E_HI]; *out: E was outside (generators that
   read only E, tail = 0). */
static inline void prepare(real zc, real wr, real e, real lw, real lsub, real inv_d,
                           real eps, real inv_norm, int tail, real *l_out, real *E_out,
                           real *extra_out, int *out)
{{
    const real wv = (wr + eps) * inv_norm;
    const int pos = wv > 0;
    const real wd = pos ? wv : 1;
    const real r = (e * inv_d) / wd;
    real l = 0, extra = 0;
    if (tail || READS_L) {{  /* lw = log(wd), from its own loop (no call here: no spills) */
        const real lr = (zc - lsub) - lw;
        l = MIN(MAX(lr, -LC), LC);
        /* selects: a slope beyond the type's range (INFINITY) never meets a zero */
        extra = (lr < -LC ? SLOPE_LO * (lr + LC) : 0) + (lr > LC ? SLOPE_HI * (lr - LC) : 0);
    }} else {{
        *out = pos & !(r >= E_LO && r <= E_HI);
    }}
    *l_out = l;
    *E_out = MIN(MAX(r, E_LO), E_HI);
    *extra_out = extra;
}}

/* The loss term w g(l) + tail and a = w g'(l) of a class with w_c > 0; 0 and 0 where w_c = 0. */
static inline real combine(real wr, real eps, real inv_norm, real g, real dg, real extra, real *a)
{{
    const real wv = (wr + eps) * inv_norm;
    const int pos = wv > 0;
    *a = pos ? wv * dg : 0;
    return pos ? wv * (g + extra) : 0;
}}

/* One class: its loss term, *a = w g'(l); 0 and 0 where w_c = 0 (the caller adds s_c f'(inf)
   there).  tail: g at clamp(l), continued linearly outside [-LC, LC]; otherwise (generators
   that read only E) E = s/w is assumed inside [E_LO, E_HI] and *out says where it was not.
   Every array element a loop reads is read unconditionally, so the compiler never masks a
   load: a masked load merges stale register lanes, and a stale subnormal there cost kl a
   microcode assist per vector (2x its time). */
static inline real element(real zc, real wr, real e, real lw, real lsub, real inv_d,
                           real eps, real inv_norm, int tail, real *a, int *out)
{{
    real l, E, extra;
    prepare(zc, wr, e, lw, lsub, inv_d, eps, inv_norm, tail, &l, &E, &extra, out);
    real g, dg;
    g_dg(l, E, &g, &dg);
    return combine(wr, eps, inv_norm, g, dg, extra, a);
}}

/* s_c f'(inf) where the (smoothed) weak entry is 0, else 0 (exact: a 0/1 factor). */
static inline real zero_term(real wr, real e, real inv_d, real eps, real inv_norm)
{{
    return (real)((wr + eps) * inv_norm == 0) * ((e * inv_d) * F_INF);
}}

/* Whether a raw weak entry is invalid (NaN/inf, outside [0, 1 + tol], or zero after
   smoothing while f'(inf) is infinite). */
static inline int invalid(real wr, real eps, real inv_norm, real tol)
{{
    return (wr != wr) | (wr < 0) | (wr > 1 + tol) | (!ZERO_OK & ((wr + eps) * inv_norm == 0));
}}

/* The loss terms and a_c of one row (tail: see element()); sums into the pointers.
   lw[] is scratch for log(w_c) (w_c = 0: log 1). */
static inline void terms(const real *restrict z, const real *restrict w, real *restrict a,
                         const real *restrict e, real *restrict lw, int64_t k, real m,
                         real lsub, real inv_d, real eps, real inv_norm, int tail, int nzero,
                         real *loss_out, real *asum_out, real *arest_out, int *out_out)
{{
    real loss = 0, asum = 0, arest = 0;
    int out = 0;
    if (tail || READS_L) {{
#pragma omp simd
        for (int64_t c = 0; c < k; c++) {{
            const real wv = (w[c] + eps) * inv_norm;
            lw[c] = {LOG}(wv > 0 ? wv : 1);
        }}
    }}
#pragma omp simd reduction(+:loss, asum, arest) reduction(|:out)
    for (int64_t c = 0; c < k; c++) {{
        real ac;
        int oc = 0;
        loss += element(z[c], w[c], e[c], (tail || READS_L) ? lw[c] : 0, lsub, inv_d, eps, inv_norm,
                        tail, &ac, &oc);
        a[c] = ac;
        asum += ac;
        arest += z[c] == m ? 0 : ac;
        out |= oc;
    }}
    if (nzero && F_INF != 0) {{  /* w_c = 0: w g(l) -> s f'(inf) (a pass only for rows with zeros) */
#pragma omp simd reduction(+:loss, asum, arest)
        for (int64_t c = 0; c < k; c++) {{
            const real t = zero_term(w[c], e[c], inv_d, eps, inv_norm);
            loss += t;
            a[c] += t;
            asum += t;
            arest += z[c] == m ? 0 : t;
        }}
    }}
    *loss_out = loss;
    *asum_out = asum;
    *arest_out = arest;
    *out_out = out;
}}

/* One row of k logits: the loss into *loss_out, a_c into a[], then (need_grad)
   a_c - s_c sum(a) into a[]; e[] is scratch of 2k.  Returns nonzero when the weak row is invalid. */
static int row(const real *restrict z, const real *restrict w, real *restrict a,
               real *restrict e, int64_t k, real eps, real inv_norm, real tol, int need_grad,
               real *loss_out)
{{
    real m = -INFINITY;
#pragma omp simd reduction(max:m)
    for (int64_t c = 0; c < k; c++) m = MAX(m, z[c]);
    real rest = 0, wsum = 0, wmin = INFINITY, wmax = -INFINITY;  /* rest: sum of e^(z_c - m) */
    int nmax = 0;                                                  /* below the max */
#pragma omp simd reduction(+:rest, wsum, nmax) reduction(min:wmin) reduction(max:wmax)
    for (int64_t c = 0; c < k; c++) {{
        const real x = {EXP}(z[c] - m);
        const real wr = w[c];
        const int top = z[c] == m;
        e[c] = x;
        rest += top ? 0 : x;
        nmax += top;
        wsum += wr;
        wmin = MIN(wmin, wr);
        wmax = MAX(wmax, wr);
    }}
    /* the checks of invalid() from the row's extremes (a NaN makes wsum NaN) */
    const int nzero = (wmin + eps) * inv_norm == 0;
    const int bad = (wmin < 0) | (wmax > 1 + tol) | (!ZERO_OK & nzero);
    const real d = rest + nmax, lsub = m + {LOG}(d), inv_d = 1 / d;
    real loss, asum, arest;
    int out;
    terms(z, w, a, e, e + k, k, m, lsub, inv_d, eps, inv_norm, 0, nzero, &loss, &asum, &arest, &out);
    if (!READS_L && out)  /* some E outside [E_LO, E_HI]: this row again with the tails */
        terms(z, w, a, e, e + k, k, m, lsub, inv_d, eps, inv_norm, 1, nzero, &loss, &asum, &arest, &out);
    if (need_grad) {{
        int64_t top = k;
        if (nmax == 1) {{
#pragma omp simd reduction(min:top)
            for (int64_t c = 0; c < k; c++) top = z[c] == m ? MIN(top, c) : top;
        }}
        const real a_top = top < k ? a[top] : 0, t = inv_d * asum;
#pragma omp simd
        for (int64_t c = 0; c < k; c++) a[c] -= e[c] * t;
        if (top < k)  /* the top class: a(1 - s) - s sum_{{c != top}} a_c, no cancellation */
            a[top] = a_top * (rest * inv_d) - inv_d * arest;
    }}
    *loss_out = loss;
    return bad | ({FABS}(wsum - 1) > tol) | (wsum != wsum);
}}
{fixed}
typedef struct {{
    const real *z, *w;
    real *loss, *grad;
    int64_t r0, r1, k, zs, ws, gs;
    real eps, inv_norm, tol;
    int need_grad;
    int64_t first_bad;  /* out: first invalid row, -1 if none; -2: out of memory */
}} job_t;

/* The first row of j whose weak labels are invalid (-1 if none); the error path only. */
static int64_t first_invalid_row(const job_t *j)
{{
    for (int64_t r = j->r0; r < j->r1; r++) {{
        const real *w = j->w + r * j->ws;
        real wsum = 0;
        int bad = 0;
        for (int64_t c = 0; c < j->k; c++) {{
            wsum += w[c];
            bad |= invalid(w[c], j->eps, j->inv_norm, j->tol);
        }}
        if (bad | ({FABS}(wsum - 1) > j->tol) | (wsum != wsum)) return r;
    }}
    return -1;
}}

static void *run_rows(void *arg)
{{
    job_t *j = (job_t *)arg;
    if (j->zs == j->k && j->ws == j->k && (!j->need_grad || j->gs == j->k)) {{
        switch (j->k) {{  /* few classes: vectorised across rows */
{dispatch}
        }}
    }}
    real *buf = (real *)malloc(sizeof(real) * (size_t)(3 * j->k));  /* e, log w, a */
    j->first_bad = -1;
    if (!buf) {{
        j->first_bad = -2;
        return NULL;
    }}
    for (int64_t r = j->r0; r < j->r1; r++) {{
        real *a = j->need_grad ? j->grad + r * j->gs : buf + 2 * j->k;
        if (row(j->z + r * j->zs, j->w + r * j->ws, a, buf, j->k, j->eps, j->inv_norm, j->tol,
                j->need_grad, j->loss + r) && j->first_bad == -1)
            j->first_bad = r;
    }}
    free(buf);
    return NULL;
}}

/* Rows [0, n) over nthreads threads (the caller's included).  Returns the first invalid
   weak row, -1 if none, -2 when memory could not be had. */
int64_t w2sg_fdiv(const real *z, int64_t zs, const real *w, int64_t ws, real *loss,
                  real *grad, int64_t gs, int64_t n, int64_t k, double eps, double inv_norm,  /* 1/(1 + k eps) */
                  double tol, int need_grad, int nthreads)
{{
    if (nthreads > 64) nthreads = 64;
    if (nthreads > n) nthreads = (int)n;
    if (nthreads < 1) nthreads = 1;
    job_t jobs[64];
    pthread_t tid[64];
    int started[64] = {{0}};
    for (int t = 0; t < nthreads; t++) {{
        /* ranges start at multiples of 64 rows: a row lands in a vector lane or in the scalar
           remainder (whose exp/log may differ in the last bit) the same for any thread count */
        const int64_t r0 = t == 0 ? 0 : (n * t / nthreads) & ~(int64_t)63;
        const int64_t r1 = t == nthreads - 1 ? n : (n * (t + 1) / nthreads) & ~(int64_t)63;
        job_t j = {{z, w, loss, grad, r0, r1, k, zs, ws, gs,
                   (real)eps, (real)inv_norm, (real)tol, need_grad, -1}};
        jobs[t] = j;
    }}
    for (int t = 1; t < nthreads; t++)
        started[t] = pthread_create(&tid[t], NULL, run_rows, &jobs[t]) == 0;
    for (int t = 1; t < nthreads; t++)  /* a thread that did not start: its rows run here */
        if (!started[t]) run_rows(&jobs[t]);
    run_rows(&jobs[0]);
    int64_t first = -1;
    for (int t = 0; t < nthreads; t++) {{
        if (t > 0 && started[t]) pthread_join(tid[t], NULL);
        const int64_t b = jobs[t].first_bad;
        if (b == -2 || first == -2) first = -2;
        else if (b >= 0 && (first == -1 || b < first)) first = b;
    }}
    return first;
}}
"""

#: Class counts with a kernel vectorised across rows (a row of ``K`` logits per SIMD lane),
#: where a per-row loop would spend its time in loop overhead.
FIXED_K: tuple[int, ...] = (2, 3, 4, 8)

def _fixed_rows(K: int) -> str:
    """C functions ``rows_k{K}``: rows of ``K`` logits, one row per SIMD lane.  The classes
    are written out (no inner loop), the gradient flag is a constant of each of the two
    variants (no masked store) and invalid rows are only counted (an OR), so the compiler
    vectorises the loop over rows; each step is the per-row computation of ``row()``
    (with the tails always formed)."""
    cs = range(K)

    def each(fmt: str, sep: str = "\n        ") -> str:
        return sep.join(fmt.format(c=c, K=K) for c in cs)
    return f"""
static inline __attribute__((always_inline)) int rows_k{K}_(
    const real *restrict z, const real *restrict w, real *restrict loss, real *restrict grad,
    int64_t r0, int64_t r1, real eps, real inv_norm, real tol, const int need_grad)
{{
    int any_bad = 0;
#pragma omp simd reduction(|:any_bad)
    for (int64_t r = r0; r < r1; r++) {{
        {each("const real z{c} = z[r * {K} + {c}], w{c} = w[r * {K} + {c}];")}
        real m = z0;
        {each("m = MAX(m, z{c});")}
        {each("const real e{c} = {{EXP}}(z{c} - m);")}
        {each("const int t{c} = z{c} == m;")}
        const real rest = {each("(t{c} ? 0 : e{c})", " + ")};
        const int nmax = {each("t{c}", " + ")};
        const real d = rest + nmax, lsub = m + {{LOG}}(d), inv_d = 1 / d;
        {each("const real v{c} = (w{c} + eps) * inv_norm, l{c} = {{LOG}}(v{c} > 0 ? v{c} : 1);")}
        {each("const real q{c} = zero_term(w{c}, e{c}, inv_d, eps, inv_norm);")}
        {each("real a{c};")}
        int unused = 0;
        real lo = 0;
        {each("lo += element(z{c}, w{c}, e{c}, l{c}, lsub, inv_d, eps, inv_norm, 1, &a{c}, &unused) + q{c};")}
        {each("a{c} += q{c};")}
        const real asum = {each("a{c}", " + ")};
        const real arest = {each("(t{c} ? 0 : a{c})", " + ")};
        const real wsum = {each("w{c}", " + ")};
        int bad = ({{FABS}}(wsum - 1) > tol) | (wsum != wsum);
        {each("bad |= invalid(w{c}, eps, inv_norm, tol);")}
        loss[r] = lo;
        if (need_grad) {{  /* as row(): the top class without cancellation */
            const real t = inv_d * asum, one_minus_s = rest * inv_d;
            {each("grad[r * {K} + {c}] = nmax == 1 && t{c} ? a{c} * one_minus_s - inv_d * arest : a{c} - e{c} * t;", chr(10) + "            ")}
        }}
        any_bad |= bad;
    }}
    return any_bad;
}}

static int rows_k{K}(const real *restrict z, const real *restrict w, real *restrict loss,
                     real *restrict grad, int64_t r0, int64_t r1, real eps, real inv_norm,
                     real tol, int need_grad)
{{
    return need_grad ? rows_k{K}_(z, w, loss, grad, r0, r1, eps, inv_norm, tol, 1)
                     : rows_k{K}_(z, w, loss, grad, r0, r1, eps, inv_norm, tol, 0);
}}
"""


def _c_real(x: float, dtype: str) -> str:
    """A real constant as a C literal of ``dtype``; beyond the type's range ``±INFINITY``
    (as torch rounds a Python float to the tensor's dtype).  NaN is refused."""
    v = float(x)
    if math.isnan(v):
        raise Unsupported(f"constant {x} is NaN")
    if abs(v) > _PRECISION[dtype]["max"]:
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(v) + _PRECISION[dtype]["F"]


def c_source(gen: Generator, clamp: float, slopes: tuple[float, float], f_inf: float,
             dtype: str = "float32") -> str:
    """The C source of the kernel for ``gen`` in ``dtype`` (``"float32"`` or ``"float64"``):
    ``Lc = clamp``, ``slopes = g'(±Lc)``, ``f_inf = f'(∞)`` (``inf``/``nan`` make zero weak
    entries invalid).  Raises :class:`Unsupported` when a node cannot be printed or a
    constant is NaN."""
    lines, reads_l = body_statements(gen, dtype)
    prec = _PRECISION[dtype]
    lc = float(clamp)
    zero_ok = math.isfinite(f_inf)
    lo, hi = (float(s) for s in slopes)
    subs = {key: prec[key] for key in ("R", "F", "EXP", "LOG", "FABS")}
    return _TEMPLATE.format(
        text=gen.text.replace("*/", "* /"), dtype=dtype, lc=_c_real(lc, dtype),
        lo=_c_real(lo, dtype), hi=_c_real(hi, dtype), e_lo=_c_real(math.exp(-lc), dtype),
        e_hi=_c_real(math.exp(lc), dtype), f_inf=_c_real(f_inf if zero_ok else 0.0, dtype),
        zero_ok=int(zero_ok), reads_l=int(reads_l),
        body="\n".join("    " + line for line in lines),
        fixed="".join(_fixed_rows(k).replace("{EXP}", subs["EXP"]).replace("{LOG}", subs["LOG"])
                      .replace("{FABS}", subs["FABS"]) for k in FIXED_K),
        dispatch="\n".join(f"        case {k}:\n            j->first_bad = rows_k{k}(j->z, j->w, j->loss, "
                           f"j->grad, j->r0, j->r1, j->eps, j->inv_norm, j->tol, j->need_grad)\n"
                           f"                ? first_invalid_row(j) : -1;\n"
                           f"            return NULL;" for k in FIXED_K),
        **subs)


# ----------------------------------------------------------------------------- compiling
compile_flags = c_build.compile_flags


def _probe_sources() -> list[str]:
    """The kernels built to find out whether the C path works here: kl, float32 and float64."""
    from theory import get_generator
    from .logratio import tail_slopes
    gen = get_generator("kl")
    return [c_source(gen, lc, tail_slopes(gen, lc), 1.0, dtype) for dtype, lc in (("float32", 30.0), ("float64", 200.0))]


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """``None`` when a C kernel compiles and loads here, else why not (one line)."""
    try:
        for source in _probe_sources():
            _load(source)
    except (Unsupported, OSError) as exc:  # OSError: e.g. a full disk
        return f"C kernel unavailable: {exc}"[:300].replace("\n", " ")
    return None


def available() -> bool:
    """Whether the C kernel path can run here (a C compiler that builds it)."""
    return unavailable_reason() is None


@functools.lru_cache(maxsize=1)
def probe_flags() -> tuple[str, ...] | None:
    """The compiler flags the kernels here are built with (those of the float32 probe; ``None``
    when none builds): ``-DW2SG_MVEC`` means vectorised exp/log."""
    return tuple(_load(_probe_sources()[0]).w2sg_flags) if available() else None


def vector_math() -> bool:
    """Whether the kernels here are built with vectorised ``exp``/``log`` (glibc's libmvec).
    Without it the C kernel calls the scalar functions once per element and is slower than
    the torch kernel on wide rows (4096×1000: 25 ms against 10 ms for kl on this machine),
    so :func:`experiments.losses.fdiv_loss` takes it by default only with vector math."""
    return "-DW2SG_MVEC" in (probe_flags() or ())


@functools.lru_cache(maxsize=256)
def _load(source: str):
    """The kernel function of ``source``'s library (:func:`fdiv_torch.c_build.library`), built
    with the first flag set of :data:`fdiv_torch.c_build.FLAG_SETS` that builds and loads;
    ``fn.w2sg_flags``: the flags.  Raises :class:`Unsupported` saying why none did."""
    cc = c_build.compiler()
    errors = []
    for extra in c_build.FLAG_SETS:
        flags = c_build.compile_flags(extra)
        try:
            path = c_build.library(source, flags)
        except c_build.BuildFailed as exc:
            errors.append(str(exc))
            if exc.final:
                break
            continue
        try:
            fn = ctypes.CDLL(str(path)).w2sg_fdiv  # ctypes releases the GIL during the call
        except (OSError, AttributeError) as exc:  # e.g. a cache on a noexec mount
            why = f"the compiled kernel {path} does not load: {exc}"
            c_build.forget(path, why)
            errors.append(why)
            continue
        i64, f64, ptr = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
        fn.argtypes = [ptr, i64, ptr, i64, ptr, ptr, i64, i64, i64, f64, f64, f64, ctypes.c_int, ctypes.c_int]
        fn.restype = i64
        fn.w2sg_flags = flags
        return fn
    raise Unsupported(f"{shlex.join(cc)} could not compile the kernel: {errors[-1]}")


@functools.lru_cache(maxsize=256)
def fdiv_kernel_c(gen: Generator, clamp: float, slopes: tuple[float, float], f_inf: float,
                  dtype: str = "float32") -> Callable:
    """``(z, w, smoothing, tol) ↦ per-example loss`` (shape ``(n,)``, in ``dtype``),
    differentiable in ``z`` with the analytic gradient (saved; not twice differentiable).

    ``z``: ``(n, k)`` logits on the CPU in ``dtype`` (``"float32"`` or ``"float64"``);
    ``w``: ``(n, k)`` raw weak labels (converted to ``dtype``), smoothed in the kernel with
    ``smoothing``; rows are validated with tolerance ``tol``.  ``clamp``/``slopes``: ``Lc``
    and ``g'(±Lc)``; ``f_inf``: ``f'(∞)`` (``inf`` makes zero weak entries invalid).
    Raises :class:`Unsupported` when the generator cannot be printed or compiled,
    :class:`InvalidWeakRow` (a ``ValueError``) for an invalid weak row.
    """
    import torch

    fn = _load(c_source(gen, clamp, slopes, f_inf, dtype))
    tdtype = getattr(torch, dtype)

    def parts(z, w, smoothing=0.0, tol=1e-4, *, need_grad):
        if z.dtype != tdtype or z.device.type != "cpu" or z.dim() != 2:
            raise ValueError(f"this C kernel takes (n, k) {dtype} CPU logits, not {tuple(z.shape)} "
                             f"{z.dtype} on {z.device}")
        n, k = z.shape
        z = z.detach()
        if z.stride(-1) != 1:
            z = z.contiguous()
        if w.dtype != tdtype or w.stride(-1) != 1:
            w = w.to(tdtype).contiguous()
        loss = torch.empty(n, dtype=tdtype)
        grad = GRADIENTS.empty((n, k), tdtype, "cpu") if need_grad else None
        threads = max(1, min(torch.get_num_threads(), (n * k) // MIN_ELEMENTS_PER_THREAD))
        first = fn(z.data_ptr(), z.stride(0), w.data_ptr(), w.stride(0), loss.data_ptr(),
                   grad.data_ptr() if need_grad else None, k, n, k, float(smoothing),
                   1.0 / (1.0 + k * float(smoothing)), float(tol), int(need_grad), threads)
        if first == -2:
            raise MemoryError("the C kernel could not allocate its row buffers")
        if first >= 0:
            raise InvalidWeakRow(int(first))
        return loss, grad

    return with_saved_gradient(parts, recycle=GRADIENTS.put)
