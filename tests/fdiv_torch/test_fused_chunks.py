"""The fused torch kernel on row blocks (fdiv_torch.fused.CHUNK_ELEMENTS) equals the reference path."""
from __future__ import annotations

import pytest
import torch

import fdiv_torch.fused as fused
from experiments.losses import fdiv_loss
from tests.fdiv_torch.paths import fused_and_reference


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_row_blocks_match_reference(monkeypatch, dtype):
    """Blocks of 3 rows (the last one short); only some blocks need the linear tails."""
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 3 * 20)
    g = torch.Generator().manual_seed(4)
    z = torch.randn(11, 20, generator=g, dtype=dtype)
    z[4] *= 100  # logits ±100 in the second block only: its l leaves the clamp
    w = torch.softmax(torch.randn(11, 20, generator=g, dtype=dtype) * 3, dim=-1)
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    for spec in ("js", "kl", "pearson", "tv", "(t-1)**2/(t+1)"):
        fused.WORKSPACE.clear()
        la, lb, ga, gb = fused_and_reference(z, w, spec, reduction="none", fused="torch")
        assert torch.allclose(la, lb, rtol=tol, atol=tol), spec
        err = (ga - gb).abs().max() / (gb.abs().max() + 1e-30)
        assert err < tol * 10, (spec, float(err))
    with torch.no_grad():  # no gradient requested: blocks write only the loss
        assert torch.allclose(fdiv_loss(z, w, "js", reduction="none", fused="torch"),
                              fdiv_loss(z, w, "js", reduction="none", fused=False), rtol=tol, atol=tol)


def test_row_blocks_with_zero_weak_entries(monkeypatch):
    """Exact zeros in some blocks only (contributing s·f'(∞)): blocks equal the reference."""
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", 2 * 6)
    g = torch.Generator().manual_seed(5)
    z = torch.randn(9, 6, generator=g, dtype=torch.float64) * 4
    w = torch.softmax(torch.randn(9, 6, generator=g, dtype=torch.float64) * 3, dim=-1)
    w[1, 2] = 0.0
    w[6, :2] = 0.0
    w = w / w.sum(-1, keepdim=True)
    for spec in ("js", "tv", "hellinger", "kl"):  # finite f'(∞)
        fused.WORKSPACE.clear()
        la, lb, ga, gb = fused_and_reference(z, w, spec, reduction="none", fused="torch")
        assert torch.allclose(la, lb, rtol=1e-9, atol=1e-12), spec
        assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-12), spec
