"""The generated Triton kernel (fdiv_torch.triton_kernel) equals the reference path.

Runs on a CUDA GPU when there is one (marker ``cuda``: ``scripts/gpu_check.sh``), else on
CPU under Triton's interpreter (``TRITON_INTERPRET=1``, tiny shapes); skipped with the
reason when Triton does not import.  The printer test needs no Triton at all.
"""
from __future__ import annotations

import math
import os
import types

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():  # (when this file runs without tests/conftest.py)
    os.environ.setdefault("TRITON_INTERPRET", "1")
from fdiv_torch import triton_kernel as tk  # noqa: E402
from tests.fdiv_torch.paths import float32_semantics_in_float64  # noqa: E402
from theory import get_generator
from theory.codegen import logratio_expr, logratio_grad_expr, numpy_function
from theory.parsing import L

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
# Without CUDA, Triton kernels run in the interpreter on CPU tensors; it must be chosen before
# triton is first imported (tests/conftest.py sets it for the whole session).
_READY = tk.available() and (CUDA or tk.interpreting())
needs_triton = pytest.mark.skipif(not _READY, reason=f"Triton kernel cannot run here: "
                                  f"{tk.unavailable_reason() or 'no CUDA, and TRITON_INTERPRET was not 1 when triton was imported'}")
pytestmark = ([pytest.mark.cuda] if CUDA else []) + [
    # the interpreter evaluates both branches of tl.where in numpy (e.g. 0·inf in a masked lane)
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")]

GENS = ["kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "neyman", "tv", "alpha:0.5",
        "(t-1)**2/(t+1)", "t*log(t)-log(t)"]


# ----------------------------------------------------------------------------- printer (no Triton)
_NP_TL = types.SimpleNamespace(exp=np.exp, log=np.log, sqrt=np.sqrt, abs=np.abs, where=np.where,
                               maximum=np.maximum, minimum=np.minimum)


@pytest.mark.parametrize("spec", GENS + ["alpha:0.3", "alpha:2", "abs(t-1)**3", "t*log(t)+(1-t)*log(1-t+1e-9)*0",
                                         "cosh(log(t))-1", "Max(t,1)-1-log(Max(t,1))"])
def test_printed_body_equals_the_symbolic_g_and_gprime(spec):
    """The Triton statements, run with numpy standing in for ``tl``, give sympy's g and g'."""
    gen = get_generator(spec)
    try:
        lines = tk.body_statements(gen)
    except tk.Unsupported as exc:
        pytest.skip(f"not printable: {exc}")
    grid = np.linspace(-30.0, 30.0, 241)
    env = {"tl": _NP_TL, "l": grid}
    with np.errstate(all="ignore"):
        exec("\n".join(lines), env)  # noqa: S102 - the generated source under test
        for name, expr in (("g", logratio_expr(gen)), ("dg", logratio_grad_expr(gen))):
            want = np.broadcast_to(np.asarray(numpy_function(expr, L)(grid), float), grid.shape)
            got = np.asarray(env[name], float)
            ok = np.isfinite(want)
            assert np.array_equal(ok, np.isfinite(got)), (spec, name)
            assert np.allclose(got[ok], want[ok], rtol=1e-9, atol=1e-12), (spec, name)


def test_launch_config_covers_every_column():
    for n, k in [(1, 1), (3, 2), (65536, 2), (4096, 1000), (8192, 32000), (7, 5000)]:
        c = tk.launch_config(n, k)
        assert c["BLOCK"] >= 1 and c["ROWS"] >= 1 and c["ROWS"] * c["BLOCK"] <= 4096
        assert (c["BLOCK"] >= k) == c["ONE_BLOCK"]


@pytest.mark.skipif(not tk.available(), reason=f"{tk.unavailable_reason()}")
def test_kernel_compiles_to_sm90_cubin_without_a_gpu():
    """The generated source is valid device Triton (the interpreter is more lenient):
    compiled ahead of time for Hopper (sm_90) down to a cubin by Triton's ptxas, for a named
    generator (float32 logits, rows in one block) and a typed one (bf16, column blocks).
    In a subprocess: the interpreter, on in this session, must be off when triton imports."""
    import subprocess
    import sys
    from pathlib import Path
    code = (
        "import warnings; warnings.filterwarnings('ignore')\n"
        "from fdiv_torch import triton_kernel as tk\n"
        "from theory import get_generator\n"
        "for spec, logits, one in [('js', 'fp32', True), ('(t-1)**2/(t+1)', 'bf16', False)]:\n"
        "    try:\n"
        "        k = tk.compile_ahead(get_generator(spec), arch=90, logits=logits, one_block=one)\n"
        "    except ImportError as exc:\n"
        "        print('SKIP', exc); break\n"
        "    ptx = k.asm['ptx']\n"
        "    assert '.target sm_90' in ptx and 'fdiv_fwd' in ptx and k.asm.get('cubin'), spec\n"
        "    print('OK', spec)\n")
    env = {key: v for key, v in os.environ.items() if key != "TRITON_INTERPRET"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in sys.path if p])
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.stdout.startswith("SKIP"):
        pytest.skip(f"triton ahead-of-time API unavailable: {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["OK", "js", "OK", "(t-1)**2/(t+1)"]


# ----------------------------------------------------------------------------- kernel
def _data(n, k, scale, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, k, generator=g) * scale).to(dtype)
    w = torch.softmax(torch.randn(n, k, generator=g) * 3, dim=-1)
    return z.to(DEVICE), w.to(DEVICE)


def _value_and_grad(z, w, spec, **kw):
    from experiments.losses import fdiv_loss
    x = z.clone().requires_grad_()
    loss = fdiv_loss(x, w, spec, **kw)
    loss.backward()
    return loss.detach(), x.grad


@needs_triton
@pytest.mark.parametrize("scale", [1.0, 100.0])  # 100: logits ±100, the linear tails are used
@pytest.mark.parametrize("k", [2, 7])
def test_triton_matches_reference_float32(k, scale):
    z, w = _data(6, k, scale, seed=k)
    for spec in GENS:
        va, ga = _value_and_grad(z, w, spec, fused="triton")
        vb, gb = _value_and_grad(z, w, spec, fused=False)
        assert torch.isfinite(ga).all() and ga.dtype == z.dtype, spec
        assert va.item() == pytest.approx(vb.item(), rel=1e-5, abs=1e-6), spec
        err = (ga - gb).abs().max() / (gb.abs().max() + 1e-30)
        assert err < 1e-3, (spec, float(err))  # as tests/fdiv_torch/test_fused.py (float32)


@needs_triton
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("spec", ["js", "kl", "(t-1)**2/(t+1)", "pearson", "neyman"])
def test_triton_half_precision_accumulates_in_float32(spec, dtype):
    """bf16/fp16 logits up to ±100 are read as they are and computed in float32: the loss
    (float32) equals the reference path's, the gradient comes back in the logits' dtype
    (float16 saturating at ±65504, as the reference path), equal up to its rounding."""
    z, w = _data(5, 7, 100.0, seed=3, dtype=dtype)
    va, ga = _value_and_grad(z, w, spec, fused="triton")
    vb, gb = _value_and_grad(z, w, spec, fused=False)
    assert va.dtype == vb.dtype == torch.float32 and ga.dtype == gb.dtype == dtype
    assert torch.isfinite(ga).all() and torch.isfinite(va)
    assert va.item() == pytest.approx(vb.item(), rel=1e-4)
    # (entries far below the row's terms a_j, s_j Σa are float32 cancellation noise: atol 1e-6)
    assert torch.allclose(ga.float(), gb.float(), rtol=1e-2, atol=1e-6 + 1e-2 * gb.float().abs().max().item())


@needs_triton
def test_triton_multi_block_rows(monkeypatch):
    """Rows wider than one block: online max/sum-exp over blocks, then value, then gradient."""
    monkeypatch.setattr(tk, "MAX_BLOCK", 4)
    z, w = _data(3, 11, 20.0, seed=5)
    for spec in ("js", "(t-1)**2/(t+1)", "reverse_kl"):
        va, ga = _value_and_grad(z, w, spec, fused="triton")
        vb, gb = _value_and_grad(z, w, spec, fused=False)
        assert va.item() == pytest.approx(vb.item(), rel=1e-5, abs=1e-6), spec
        assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-6), spec


@needs_triton
@pytest.mark.parametrize("max_block", [4096, 2])  # 2: the top class in the second block of three
def test_triton_top_class_gradient_has_no_cancellation(monkeypatch, max_block):
    """pearson, s_1 ≈ 1 − 6.7e−7 (as in test_c_kernel): ∂/∂z_1 = a_1 (1 − s_1) − s_1 Σ_{c≠1} a_c
    is 0.0224370 in float64; the float32 reference path's a_1 − s_1 Σa is 7% off, the kernel
    (one block, or the running max over blocks) within 1e-5."""
    monkeypatch.setattr(tk, "MAX_BLOCK", max_block)
    z = torch.tensor([[-90.0, -58.33470153808594, -44.06867980957031]])
    w = torch.tensor([[1e-12, 0.9999431371688843, 5.680803587893024e-05]])
    w = w / w.sum()
    _, ga = _value_and_grad(z.to(DEVICE), w.to(DEVICE), "pearson", fused="triton")
    _, gb = _value_and_grad(z, w, "pearson", fused=False)
    _, g64 = _value_and_grad(z.double(), w.double(), "pearson", fused=False)
    assert g64[0, 2].item() == pytest.approx(0.0224370046, rel=1e-6)
    assert ga[0, 2].item() == pytest.approx(g64[0, 2].item(), rel=1e-5)
    assert abs(gb[0, 2].item() / g64[0, 2].item() - 1) > 0.05


@needs_triton
@pytest.mark.parametrize("spec", ["kl", "js", "tv", "hellinger", "neyman", "(t-1)**2/(t+1)"])
def test_triton_zero_weights_contribute_s_times_fprime_at_inf(spec):
    z, w = _data(6, 5, 10.0, seed=7)
    w = w.cpu().clone()
    w[:, 0] = 0.0
    w[2, 3] = 0.0
    w = (w / w.sum(-1, keepdim=True)).to(DEVICE)
    va, ga = _value_and_grad(z, w, spec, fused="triton", smoothing=0.0)
    per, grad_sum = float32_semantics_in_float64(z, w, spec)  # Σ_{w>0} w ĝ(l) + Σ_{w=0} s f'(∞)
    vb, gb = per.mean(), grad_sum / z.shape[0]
    vc, gc = _value_and_grad(z, w, spec, fused=False, smoothing=0.0)  # the reference path
    assert math.isfinite(va.item())
    assert va.item() == pytest.approx(vb.item(), rel=1e-5, abs=1e-6), spec
    assert va.item() == pytest.approx(vc.item(), rel=1e-5, abs=1e-6), spec
    assert torch.allclose(ga.double().cpu(), gb, rtol=1e-4, atol=1e-6), spec
    assert torch.allclose(ga, gc, rtol=1e-4, atol=1e-6), spec


@needs_triton
def test_triton_rejects_bad_weak_labels():
    from experiments.losses import fdiv_loss
    z, w = _data(4, 3, 1.0, seed=1)
    zeros = w.cpu().clone()
    zeros[1] = torch.tensor([0.0, 0.5, 0.5])
    for spec in ("reverse_kl", "pearson"):  # f'(∞) = ∞: a zero weight is an error
        with pytest.raises((ValueError, RuntimeError)):
            fdiv_loss(z, zeros.to(DEVICE), spec, fused="triton", smoothing=0.0)
    nan = w.cpu().clone()
    nan[2, 1] = float("nan")
    with pytest.raises((ValueError, RuntimeError)):
        fdiv_loss(z, nan.to(DEVICE), "js", fused="triton")
    off = w.cpu().clone() * 1.1
    with pytest.raises((ValueError, RuntimeError)):
        fdiv_loss(z, off.to(DEVICE), "js", fused="triton")
    # smoothing > 0 makes zero weights positive: the loss is then finite
    assert math.isfinite(fdiv_loss(z, zeros.to(DEVICE), "pearson", fused="triton", smoothing=1e-6).item())


@needs_triton
def test_triton_reductions_binary_and_no_grad():
    from experiments.losses import fdiv_loss
    g = torch.Generator().manual_seed(2)
    z = torch.randn(9, generator=g).to(DEVICE)
    p = torch.rand(9, generator=g).to(DEVICE)
    for red in ("mean", "sum", "none"):
        a = fdiv_loss(z, p, "hellinger", reduction=red, fused="triton")
        b = fdiv_loss(z, p, "hellinger", reduction=red, fused=False)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), red
    with torch.no_grad():
        assert fdiv_loss(z, p, "tv", fused="triton").shape == ()


@pytest.mark.skipif(CUDA, reason="checks the CPU default")
def test_cpu_never_takes_the_triton_path_unless_interpreting(monkeypatch):
    """On CPU ``fused=True`` is a CPU kernel (C or torch) even with Triton installed, and forcing
    ``fused="triton"`` without the interpreter is a clear error."""
    from experiments.losses import fdiv_loss
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    z = torch.randn(4, 3)
    w = torch.softmax(torch.randn(4, 3), -1)
    with pytest.raises(ValueError, match="CUDA"):
        fdiv_loss(z, w, "js", fused="triton")
    with pytest.raises(ValueError, match="float32/bfloat16/float16"):
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        fdiv_loss(z.double(), w.double(), "js", fused="triton")


# ----------------------------------------------------------------------------- GPU only
cuda_only = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (scripts/gpu_check.sh)")


@cuda_only
@needs_triton
def test_cuda_default_path_is_triton_without_host_synchronisation():
    """On CUDA ``fused=True`` takes the Triton kernel (same values as ``fused="triton"``), and a
    training step — forward, backward, fresh weak tensor — never synchronises with the host."""
    from experiments.losses import fdiv_loss
    z, w = _data(512, 1000, 3.0, seed=11)
    va, ga = _value_and_grad(z, w, "js")
    vb, gb = _value_and_grad(z, w, "js", fused="triton")
    assert torch.equal(va, vb) and torch.equal(ga, gb)
    x = z.clone().requires_grad_()
    fdiv_loss(x, w.clone(), "(t-1)**2/(t+1)").backward()  # compile outside the checked region
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            x.grad = None
            fdiv_loss(x, w.clone(), "(t-1)**2/(t+1)").backward()
            fdiv_loss(x, w.clone(), "(t-1)**2/(t+1)").backward()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@cuda_only
@needs_triton
@pytest.mark.parametrize("shape", [(65536, 2), (4096, 1000), (64, 32000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_benchmark_shapes_match_reference(shape, dtype):
    n, k = shape
    z, w = _data(n, k, 3.0, seed=n % 97)
    z = z.to(dtype)
    for spec in GENS:
        va, ga = _value_and_grad(z, w, spec)
        vb, gb = _value_and_grad(z, w, spec, fused=False)
        assert torch.isfinite(ga).all() and ga.dtype == dtype, spec
        tol = 1e-4 if dtype == torch.float32 else 1e-2
        assert va.float().item() == pytest.approx(vb.item(), rel=tol, abs=tol), spec
        err = (ga.float() - gb.float()).abs().max() / (gb.float().abs().max() + 1e-30)
        assert err < (1e-3 if dtype == torch.float32 else 1e-2), (spec, float(err))
