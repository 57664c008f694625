"""The fused f-divergence kernel (fdiv_torch.fused.fdiv_kernel_torch) equals the reference path."""
from __future__ import annotations

import pytest
import torch

from experiments.losses import fdiv_loss

GENS = ["kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "neyman", "tv", "alpha:0.5",
        "alpha:0.3", "(t-1)**2/(t+1)", "t*log(t)-log(t)"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 10.0, 100.0])  # 100: the linear tails are used
@pytest.mark.parametrize("k", [2, 40])
def test_fused_matches_reference(dtype, scale, k):
    g = torch.Generator().manual_seed(k)
    z = torch.randn(300, k, generator=g, dtype=dtype) * scale
    w = torch.softmax(torch.randn(300, k, generator=g, dtype=dtype) * 3, dim=-1)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    for spec in GENS:
        a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
        la, lb = fdiv_loss(a, w, spec), fdiv_loss(b, w, spec, fused=False)
        la.backward()
        lb.backward()
        assert torch.isfinite(a.grad).all(), spec
        assert la.item() == pytest.approx(lb.item(), rel=tol, abs=tol), spec
        err = (a.grad - b.grad).abs().max() / (b.grad.abs().max() + 1e-30)
        assert err < tol * 10, (spec, float(err))


def test_reductions_binary_and_no_grad():
    z = torch.randn(50, dtype=torch.float64)
    w = torch.rand(50, dtype=torch.float64)
    for red in ("mean", "sum", "none"):
        assert torch.allclose(fdiv_loss(z, w, "js", reduction=red),
                              fdiv_loss(z, w, "js", reduction=red, fused=False))
    x = z.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fdiv_loss(t, w, "hellinger"), (x,))
    with torch.no_grad():
        assert fdiv_loss(z, w, "tv").shape == ()


def test_weak_cache_sees_in_place_changes():
    z = torch.randn(20, 3, dtype=torch.float64)
    w = torch.softmax(torch.randn(20, 3, dtype=torch.float64), dim=-1)
    first = fdiv_loss(z, w, "pearson")
    w.copy_(torch.softmax(torch.randn(20, 3, dtype=torch.float64), dim=-1))  # same tensor, new values
    assert torch.allclose(fdiv_loss(z, w, "pearson"), fdiv_loss(z, w.clone(), "pearson", fused=False))
    assert not torch.allclose(first, fdiv_loss(z, w, "pearson"))
    bad = w.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fdiv_loss(z, bad, "pearson")


def test_weak_labels_that_require_grad_use_the_reference_path():
    z = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    w = torch.softmax(torch.randn(10, 2, dtype=torch.float64), -1).requires_grad_()
    fdiv_loss(z, w, "js").backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_compiled_kernel_matches_reference_when_torch_compile_works():
    z = torch.randn(64, 3, requires_grad=True)
    w = torch.softmax(torch.randn(64, 3), dim=-1)
    try:
        fdiv_loss(z, w, "hellinger", fused="compile").backward()
    except Exception as exc:  # noqa: BLE001 - no compiler on this machine: that is a finding, not a bug
        pytest.skip(f"torch.compile unavailable here: {type(exc).__name__}")
    got = z.grad.clone()
    z.grad = None
    fdiv_loss(z, w, "hellinger", fused=False).backward()
    assert torch.allclose(got, z.grad, atol=1e-6)
