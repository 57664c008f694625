"""The generated C kernel (fdiv_torch.c_kernel) equals the reference path.

Skipped with the reason when no C compiler builds it here (then ``fdiv_loss`` falls back to
the torch kernel, which the last tests check in a subprocess).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

from experiments.losses import fdiv_loss
from fdiv_torch import c_kernel as ck
from fdiv_torch.logratio import tail_slopes
from theory import get_generator
from tests.fdiv_torch.paths import float32_semantics_in_float64, fused_and_reference

needs_c = pytest.mark.skipif(not ck.available(), reason=str(ck.unavailable_reason()))

NAMED = ["kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "neyman", "tv"]
#: typed generators whose g/g' print to selects, |·|, sign, cosh, Max, powers, exp(x log b)
TYPED = ["alpha:0.5", "alpha:0.3", "(t-1)**2/(t+1)", "t*log(t)-log(t)", "abs(t-1)**3",
         "cosh(log(t))-1", "Max(t,1)-1-log(Max(t,1))"]
#: slopes g'(±30) within float32 (|t−1|³'s is not: its own test; the reference path's
#: gradient is NaN there, inf·0 from the unselected tail)
FINITE_F32 = [s for s in NAMED + TYPED if s != "abs(t-1)**3"]
TOL = {torch.float32: 1e-4, torch.float64: 1e-9}


def _batch(n, k, dtype, scale, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=dtype) * scale
    w = torch.softmax(torch.randn(n, k, generator=g, dtype=dtype) * 3, dim=-1)
    return z, w


def _close(la, lb, ga, gb, tol, what):
    assert torch.isfinite(la).all() and torch.isfinite(ga).all(), what
    assert torch.allclose(la, lb, rtol=tol, atol=tol), (what, float((la - lb).abs().max()))
    err = (ga - gb).abs().max() / (gb.abs().max() + 1e-30)
    assert err < tol * 10, (what, float(err))


def _as_accurate(z, w, spec, what, **kw):
    """float32: the C kernel's value and gradient are within float32 rounding of the same
    loss in float64 (:func:`tests.fdiv_torch.paths.float32_semantics_in_float64`), its gradient at least as close to it as the float32
    reference path's (which loses digits to cancellation in a_j − s_j Σ a_c at a confident
    top class; the kernel takes that class as a_j (1 − s_j) − s_j Σ_{c≠j} a_c)."""
    la, lb, ga, gb = fused_and_reference(z, w, spec, reduction="none", fused="c", **kw)
    l64, g64 = float32_semantics_in_float64(z, w, spec, **kw)
    assert torch.isfinite(la).all() and torch.isfinite(ga).all(), what
    assert torch.allclose(la.double(), l64, rtol=1e-5, atol=1e-5), (what, float((la - l64).abs().max()))
    scale = g64.abs().max() + 1e-30
    err = float((ga.double() - g64).abs().max() / scale)
    err_ref = float((gb.double() - g64).abs().max() / scale)
    assert err <= max(err_ref, 1e-5), (what, err, err_ref)


@needs_c
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 3, 5, 8, 9, 40])  # 2, 3, 8: vectorised across rows; 5, 9, 40: per row
@pytest.mark.parametrize("scale", [1.0, 100.0])  # 100: the linear tails
def test_values_and_gradients_equal_the_reference_path(dtype, k, scale):
    z, w = _batch(64, k, dtype, scale, seed=k)
    for spec in (FINITE_F32 if dtype == torch.float32 else NAMED + TYPED):
        if dtype == torch.float32:
            _as_accurate(z, w, spec, (spec, k, scale))
        else:
            la, lb, ga, gb = fused_and_reference(z, w, spec, reduction="none", fused="c")
            _close(la, lb, ga, gb, TOL[dtype], (spec, k, scale))


@needs_c
def test_the_top_class_gradient_has_no_cancellation():
    """pearson, s = softmax([−58.3, −44.1]) (s_1 ≈ 1 − 6.7e−7), w = [1 − 5.7e−5, 5.7e−5]:
    ∂/∂z_1 = a_1 s_0 − s_1 a_0 = 0.0224370046 (float64).  In float32 the reference path's
    a_1 − s_1 (a_0 + a_1) gives 0.02098 (7% off); the C kernel is within 1e-6 relative."""
    z = torch.tensor([[-58.33470153808594, -44.06867980957031]])
    w = torch.tensor([[0.9999431371688843, 5.680803587893024e-05]])
    _, _, ga, gb = fused_and_reference(z, w, "pearson", fused="c")
    g64 = float32_semantics_in_float64(z, w, "pearson")[1]
    assert g64[0, 1].item() == pytest.approx(0.0224370046, rel=1e-8)
    assert ga[0, 1].item() == pytest.approx(g64[0, 1].item(), rel=1e-6)
    assert abs(gb[0, 1].item() / g64[0, 1].item() - 1) > 0.05


@needs_c
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 40])
def test_zero_weak_entries_and_smoothing(dtype, k):
    """Exact zeros contribute s·f'(∞) where f'(∞) is finite; smoothing ε > 0 equals the
    reference path with the same ε for every generator."""
    z, w = _batch(50, k, dtype, 4.0, seed=3)
    w = torch.where(torch.rand(50, k, generator=torch.Generator().manual_seed(9), dtype=dtype) < 0.3,
                    torch.zeros_like(w), w)
    w[:, 0] += (w.sum(1) == 0).to(dtype)
    w = w / w.sum(1, keepdim=True)
    assert (w == 0).any()
    check = _as_accurate if dtype == torch.float32 else (
        lambda z, w, spec, what, **kw: _close(*fused_and_reference(z, w, spec, reduction="none", fused="c", **kw),
                                              TOL[dtype], what))
    for spec in ["kl", "hellinger", "js", "neyman", "tv", "alpha:0.5", "(t-1)**2/(t+1)"]:
        check(z, w, spec, spec)
    for spec in NAMED:
        check(z, w, spec, (spec, "smoothed"), smoothing=1e-3)


@needs_c
@pytest.mark.parametrize("spec", ["pearson", "hellinger", "neyman", "tv"])  # read e^l only
def test_rows_leaving_the_clamp_are_redone_with_the_tails(spec):
    """Generators that read only E = s/w skip the logarithm; a row where some E leaves
    [e^-Lc, e^Lc] is recomputed with l and the linear tails: those rows and the others
    equal the reference path (per example)."""
    z, w = _batch(40, 30, torch.float64, 2.0, seed=11)
    z[5] *= 400  # softmax ratios far outside e^±200 (the float64 clamp) in rows 5 and 17 only
    z[17, 3] = -900.0
    l = torch.log_softmax(z, -1) - torch.log(w)
    out = (l.abs() > 200).any(1)
    assert out.tolist().count(True) == 2 and out[5] and out[17]
    _close(*fused_and_reference(z, w, spec, reduction="none", fused="c"), 1e-9, spec)


def test_the_printed_body_reads_l_only_where_the_cheap_form_needs_it():
    reads = {spec: ck.body_statements(get_generator(spec))[1] for spec in NAMED}
    assert reads == {"kl": True, "pearson": False, "hellinger": False, "js": True, "jeffreys": True,
                     "reverse_kl": True, "neyman": False, "tv": False}


@needs_c
@pytest.mark.parametrize("k", [3, 20])  # rows vectorised across rows, and the per-row loop
def test_invalid_weak_rows_raise_the_validation_message(k):
    z = torch.zeros(4, k)
    good = torch.full((4, k), 1 / k)
    cases = [(0, float("nan"), "NaN"), (1, -0.2, "outside"), (2, 1.5, "outside"), (3, float("inf"), "NaN or inf")]
    for row, value, msg in cases:
        w = good.clone()
        w[row, 1] = value
        with pytest.raises(ValueError, match=msg) as info:
            fdiv_loss(z, w, "js", fused="c")
        assert f"row {row}" in str(info.value)
    w = good.clone()
    w[3, 0] += 0.1
    with pytest.raises(ValueError, match="row 3 sums to"):
        fdiv_loss(z, w, "js", fused="c")
    w = good.clone()
    w[2, 0], w[2, 1] = 0.0, 2 / k  # pearson: f'(∞) = ∞
    with pytest.raises(ValueError, match=r"weak_probs\[2, 0\] = 0.*smoothing"):
        fdiv_loss(z, w, "pearson", fused="c")
    assert math.isfinite(fdiv_loss(z, w, "pearson", fused="c", smoothing=1e-6).item())
    assert math.isfinite(fdiv_loss(z, w, "js", fused="c").item())  # js: f'(∞) = log 2, zeros are fine


@needs_c
@pytest.mark.parametrize("k", [2, 700])
def test_threads_give_the_same_bits_and_the_first_invalid_row(monkeypatch, k):
    """Rows split over threads: the same per-example values and gradient bit for bit as one
    thread, and the first invalid row over all threads."""
    n = 3 * ck.MIN_ELEMENTS_PER_THREAD // k + 7
    z, w = _batch(n, k, torch.float32, 3.0, seed=2)
    gen = get_generator("js")
    kernel = ck.fdiv_kernel_c(gen, 30.0, tail_slopes(gen, 30.0), math.log(2.0))
    runs = []
    for threads in (1, 3):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        x = z.clone().requires_grad_()
        kernel(x, w, 0.0, 1e-4).sum().backward()
        runs.append((kernel(z, w, 0.0, 1e-4), x.grad))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    bad = w.clone()
    bad[n - 3, 0] = float("nan")  # in the last thread's rows
    bad[n // 2, 1] = -1.0         # in the second thread's rows: the first one
    with pytest.raises(ck.InvalidWeakRow) as info:
        kernel(z, bad, 0.0, 1e-4)
    assert info.value.row == n // 2


@needs_c
def test_strided_inputs_equal_contiguous_ones():
    """Row strides other than k (column slices, a transposed weak tensor) take the per-row
    loop and give the values of the contiguous copies."""
    z, w = _batch(30, 10, torch.float64, 3.0, seed=5)
    big = torch.zeros(30, 20, dtype=torch.float64)
    big[:, ::2] = z  # every other column: last stride 2, made contiguous by the kernel
    wide = torch.zeros(30, 14, dtype=torch.float64)
    wide[:, :10] = w  # row stride 14
    for zz, ww in ((big[:, ::2], w), (z, wide[:, :10]), (z, w.t().contiguous().t())):
        for spec in ("js", "tv"):
            assert torch.allclose(fdiv_loss(zz, ww, spec, reduction="none", fused="c"),
                                  fdiv_loss(z, w, spec, reduction="none", fused="c"), rtol=0, atol=0)


@needs_c
def test_no_grad_and_binary_vector_inputs():
    z = torch.randn(33)
    w = torch.rand(33)
    with torch.no_grad():
        a = fdiv_loss(z, w, "hellinger", reduction="none", fused="c")
    b = fdiv_loss(z, w, "hellinger", reduction="none", fused=False)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    x = torch.randn(20, 12, dtype=torch.float64, requires_grad=True)
    ws = torch.softmax(torch.randn(20, 12, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(lambda t: fdiv_loss(t, ws, "js", fused="c"), (x,))


@needs_c
def test_a_tail_slope_beyond_float32_is_infinite_only_in_its_tail():
    """``|t−1|³``: g'(30) ≈ 1.1e39 is beyond float32; as in the reference path (torch rounds
    the slope to inf) the loss is exact inside the clamp and inf only where l > 30."""
    z = torch.tensor([[0.0, 0.3], [40.0, -40.0]])
    w = torch.tensor([[0.5, 0.5], [1e-14, 1.0]])  # row 1: l_0 = log 1 − log 1e-14 ≈ 32.2
    got = fdiv_loss(z, w, "abs(t-1)**3", reduction="none", fused="c")
    want = fdiv_loss(z, w, "abs(t-1)**3", reduction="none", fused=False)
    assert math.isinf(want[1]) and math.isinf(got[1])
    assert got[0].item() == pytest.approx(want[0].item(), rel=1e-6)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


_FALLBACK = """
import torch
from experiments.losses import fdiv_loss
from fdiv_torch import c_kernel as ck
z = torch.randn(6, 4, dtype=torch.float64)
w = torch.softmax(torch.randn(6, 4, dtype=torch.float64), -1)
print(ck.available())
print(ck.unavailable_reason())
assert torch.allclose(fdiv_loss(z, w, "js"), fdiv_loss(z, w, "js", fused=False))
try:
    fdiv_loss(z, w, "js", fused="c")
except ValueError as exc:
    print(exc)
"""


@pytest.mark.parametrize("cc, why", [("none", "no C compiler"), ("/bin/false", "could not compile")])
def test_without_a_working_compiler_the_torch_kernel_is_used(tmp_path, cc, why):
    """``W2SG_CC=none`` (or a compiler that fails): the C path reports why, in one line, the
    default falls back to the torch kernel, and ``fused="c"`` is a one-line error."""
    done = _run(_FALLBACK, W2SG_CC=cc, W2SG_KERNEL_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "False" and why in lines[1], lines
    assert lines[2].startswith("fused='c': C kernel unavailable") and len(lines) == 3


def test_a_built_kernel_is_reused_from_the_cache(tmp_path):
    """The second process finds the shared library by its hash (and its recorded SHA-256) and
    does not compile again."""
    if not ck.available():
        pytest.skip(str(ck.unavailable_reason()))
    code = "from fdiv_torch import c_kernel as ck; print(ck.available())"
    assert _run(code, W2SG_KERNEL_CACHE=str(tmp_path)).stdout.strip() == "True"
    libs = sorted((tmp_path / "c").glob("*.so"))
    assert len(libs) == 2  # kl in float32 and float64 (the availability probe)
    files = sorted((tmp_path / "c").iterdir())
    assert files == sorted(libs + [p.with_name(p.name + ".sha256") for p in libs])  # library + its hash
    stamps = [p.stat().st_mtime_ns for p in files]
    assert _run(code, W2SG_KERNEL_CACHE=str(tmp_path)).stdout.strip() == "True"
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert sorted((tmp_path / "c").iterdir()) == files  # no new file, no leftover build folder


@needs_c
def test_saved_gradients_are_recycled_only_once_their_graph_is_gone():
    """The saved gradient returns to ``GRADIENTS`` when its graph is freed, not at backward:
    a retained graph's second backward sees the same gradient though another step ran in
    between; a freed one's buffer is reused by the next step (no fresh memory)."""
    ck.GRADIENTS.clear()
    z = torch.randn(64, 30, dtype=torch.float64)
    w = torch.softmax(torch.randn(64, 30, dtype=torch.float64), -1)
    x = z.clone().requires_grad_()
    loss = fdiv_loss(x, w, "js", fused="c")
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    y = z.clone().requires_grad_()
    fdiv_loss(y, w.flip(0), "js", fused="c").backward()  # graph freed at once: its buffer pooled
    assert ck.GRADIENTS.nbytes() == 64 * 30 * 8
    x.grad = None
    loss.backward()  # the retained graph's buffer was not handed out
    assert torch.equal(x.grad, first)
    del loss
    assert ck.GRADIENTS.nbytes() == 2 * 64 * 30 * 8
    held = [ck.GRADIENTS.empty((64, 30), torch.float64, "cpu") for _ in range(2)]
    pooled = {t.data_ptr() for t in held}
    for t in held:
        ck.GRADIENTS.put(t)
    grad_fn = fdiv_loss(z.clone().requires_grad_(), w, "js", fused="c").grad_fn
    saved = grad_fn.next_functions[0][0].saved_tensors[0]  # mean ← the kernel's node
    assert saved.data_ptr() in pooled
    ck.GRADIENTS.clear()


@needs_c
def test_without_vector_math_the_default_is_the_torch_kernel(monkeypatch):
    """Scalar exp/log make the C kernel slower than the torch kernel on wide rows: the
    default path then takes the torch kernel; ``fused="c"`` still runs the C one."""
    calls = []
    real = ck.fdiv_kernel_c
    monkeypatch.setattr(ck, "fdiv_kernel_c", lambda *a, **k: calls.append(a) or real(*a, **k))
    z, w = _batch(16, 5, torch.float32, 2.0, seed=1)
    fdiv_loss(z, w, "js")
    assert len(calls) == int(ck.vector_math())
    monkeypatch.setattr(ck, "vector_math", lambda: False)
    calls.clear()
    assert torch.allclose(fdiv_loss(z, w, "js"), fdiv_loss(z, w, "js", fused="torch"))
    assert calls == []
    fdiv_loss(z, w, "js", fused="c")
    assert len(calls) == 1
