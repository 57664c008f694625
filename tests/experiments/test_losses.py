"""f-divergence training losses against the symbolic theory."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from experiments import fdiv_loss
from experiments.losses import (LOSS_NAMES, aux_conf_alpha, aux_conf_loss, ce_loss, make_loss,
                                product_loss)
from theory import NAMED, get_generator
from theory.codegen import f_numpy, fprime_numpy

#: f'(∞) = lim f(t)/t in closed form (the ½-normalised js: ½ log 2); inf: D_f is infinite at a
#: zero weak entry.  Typed generators: (t-1)²/(t+1) → 1, -log(t) (kl typed) → 0.
FPRIME_INF = {"kl": 0.0, "hellinger": 1.0, "js": 0.5 * math.log(2), "tv": 0.5, "neyman": 1.0,
              "alpha:0.5": 2.0, "(t-1)**2/(t+1)": 1.0, "-log(t)": 0.0,
              "pearson": math.inf, "jeffreys": math.inf, "reverse_kl": math.inf, "alpha:2": math.inf,
              "t*log(t)-log(t)": math.inf}

SMOOTH = ["kl", "reverse_kl", "pearson", "neyman", "hellinger", "js", "jeffreys", "alpha:0.5",
          "(t-1)**2/(t+1)"]


def reference_df(spec, s, w):
    f = f_numpy(get_generator(spec))
    return np.mean(np.sum(w * f(s / w), axis=-1))


@pytest.mark.parametrize("spec", list(NAMED) + ["alpha:0.5", "alpha:2", "(t-1)**2/(t+1)"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_value_equals_symbolic_divergence(spec, k):
    rng = np.random.default_rng(k)
    z = rng.normal(size=(16, k)) * 2
    w = rng.dirichlet(np.ones(k), size=16) * 0.9 + 0.1 / k
    s = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    got = fdiv_loss(torch.tensor(z), torch.tensor(w), spec).item()  # exact by default
    assert got == pytest.approx(reference_df(spec, s, w), rel=1e-9, abs=1e-12)


def test_kl_matches_torch_kl_div_and_ce():
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(size=(32, 4)))
    w = torch.tensor(rng.dirichlet(np.ones(4), size=32))
    kl = fdiv_loss(z, w, "kl", smoothing=0)
    ref = F.kl_div(F.log_softmax(z, -1), w, reduction="batchmean")
    assert kl.item() == pytest.approx(ref.item(), rel=1e-12)
    entropy = -(w * torch.log(w)).sum(-1).mean()
    assert ce_loss(z, w, smoothing=0).item() == pytest.approx((kl + entropy).item(), rel=1e-12)
    assert ce_loss(z, w, smoothing=0).item() == pytest.approx(F.cross_entropy(z, w).item(), rel=1e-12)
    rkl = fdiv_loss(z, w, "reverse_kl", smoothing=0)
    ref_r = F.kl_div(torch.log(w), F.log_softmax(z, -1), reduction="batchmean", log_target=True)
    assert rkl.item() == pytest.approx(ref_r.item(), rel=1e-10)


def test_binary_vector_inputs_equal_two_class_rows():
    z = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    p = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    z2 = torch.stack([torch.zeros_like(z), z], -1)
    p2 = torch.stack([1 - p, p], -1)
    for spec in ("js", "pearson", "tv"):
        assert fdiv_loss(z, p, spec).item() == pytest.approx(fdiv_loss(z2, p2, spec).item(), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(z=st.floats(-4, 4), w=st.floats(0.05, 0.95), spec=st.sampled_from(SMOOTH))
def test_gradient_equals_c7(z, w, spec):
    """∂_z D_f(σ(z)‖w) = s(1−s)[f'(s/w) − f'((1−s)/(1−w))] (claim C7)."""
    zt = torch.tensor([z], dtype=torch.float64, requires_grad=True)
    fdiv_loss(zt, torch.tensor([w], dtype=torch.float64), spec, smoothing=0).backward()
    s = 1 / (1 + np.exp(-z))
    fp = fprime_numpy(get_generator(spec))
    expected = s * (1 - s) * (fp(s / w) - fp((1 - s) / (1 - w)))
    assert zt.grad.item() == pytest.approx(float(expected), rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("spec", list(NAMED) + ["alpha:0.5", "(t-1)**2/(t+1)"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fused", [True, False])
def test_finite_at_extreme_logits(spec, dtype, fused):
    """Logits ±100 with one-hot weak labels: finite value and gradient, exact where f'(∞) is
    finite, with the smoothing the error message suggests where it is not."""
    eps = 0.0 if math.isfinite(FPRIME_INF.get(spec, 0.0)) else 1e-6
    z = torch.tensor([[100.0, -100.0], [-100.0, 100.0], [100.0, -100.0], [0.0, 0.0]], dtype=dtype,
                     requires_grad=True)
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
    loss = fdiv_loss(z, w, spec, smoothing=eps, fused=fused)
    loss.backward()
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert z.grad.dtype == dtype
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    zb = torch.tensor([100.0, -100.0, 37.0], dtype=dtype, requires_grad=True)
    fdiv_loss(zb, torch.tensor([0.0, 1.0, 0.3]), spec, smoothing=eps, fused=fused).backward()
    assert torch.isfinite(zb.grad).all()


def test_kl_pull_is_exact_in_the_tail():
    """kl's g is linear, so the clamp extension keeps the exact CE gradient at ±100."""
    z = torch.tensor([[100.0, -100.0]], dtype=torch.float32, requires_grad=True)
    w = torch.tensor([[0.0, 1.0]])
    fdiv_loss(z, w, "kl", smoothing=1e-6).backward()
    z2 = z.detach().clone().requires_grad_()
    ce_loss(z2, w, smoothing=1e-6).backward()
    assert torch.allclose(z.grad, z2.grad, atol=1e-6)
    assert z.grad[0, 0].item() == pytest.approx(1.0, abs=1e-5)


def test_ce_and_kl_train_identically():
    from experiments.pipeline import TrainConfig, train_head
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 10)).astype(np.float32)
    w = 1 / (1 + np.exp(-(X[:, 0] + 0.5 * rng.normal(size=200))))
    cfg = TrainConfig(steps=80, lr=0.05, weight_decay=0.01, eval_every=0, dtype="float64")
    th_ce, b_ce, _ = train_head(X, w, make_loss("ce"), cfg)
    th_kl, b_kl, _ = train_head(X, w, make_loss("kl"), cfg)
    np.testing.assert_allclose(th_ce, th_kl, rtol=1e-9, atol=1e-12)
    assert b_ce == pytest.approx(b_kl, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bad, msg", [
    ([[0.5, 0.6]], "sums to"),
    ([[-0.1, 1.1]], "outside"),
    ([[float("nan"), 1.0]], "NaN"),
    ([0.2, 1.5], "outside"),
])
def test_invalid_weak_probs_raise(bad, msg):
    w = torch.tensor(bad)
    z = torch.zeros(w.shape[0], 2) if w.dim() == 2 else torch.zeros(w.shape[0])
    with pytest.raises(ValueError, match=msg):
        fdiv_loss(z, w, "js")
    with pytest.raises(ValueError, match=msg):
        ce_loss(z, w)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        fdiv_loss(torch.zeros(3, 3), torch.tensor([0.2, 0.3, 0.4]), "kl")


def test_make_loss_registry():
    for name in LOSS_NAMES:
        loss = make_loss(name)
        z = torch.randn(8, requires_grad=True)
        loss(z, torch.rand(8), 0.5).backward()
        assert torch.isfinite(z.grad).all()
    assert make_loss("(t-1)**2/(t+1)").name == "(t-1)**2/(t+1)"
    with pytest.raises(ValueError, match="valid names"):
        make_loss("nope")
    with pytest.raises(ValueError):
        make_loss("-t")  # f(1) != 0


def test_burns_baselines():
    assert aux_conf_alpha(0.0) == 0 and aux_conf_alpha(0.1) == pytest.approx(0.375)
    assert aux_conf_alpha(1.0) == pytest.approx(0.75)
    z = torch.tensor([2.0, -1.0])
    w = torch.tensor([0.3, 0.6])
    assert aux_conf_loss(z, w, alpha=0.0).item() == pytest.approx(ce_loss(z, w).item())
    hard = torch.tensor([1.0, 0.0])
    assert aux_conf_loss(z, w, alpha=1.0, harden="argmax").item() == pytest.approx(
        ce_loss(z, hard).item(), rel=1e-5)
    # product loss: target ∝ w·s, so confident agreement gives a small loss
    assert product_loss(torch.tensor([5.0]), torch.tensor([0.99])).item() < \
        product_loss(torch.tensor([-5.0]), torch.tensor([0.99])).item() + 1e-9


def test_import_experiments_is_cheap():
    code = "import sys, experiments; assert 'torch' not in sys.modules; print(experiments.fdiv_loss.__name__)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fdiv_loss"


@pytest.mark.parametrize("spec", list(NAMED) + ["alpha:0.5", "(t-1)**2/(t+1)"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_kernel_matches_reference_path(spec, dtype):
    """The default fused kernel and the autograd path through the generated g agree."""
    rng = np.random.default_rng(7)
    z = np.concatenate([rng.normal(size=(20, 3)) * 3, [[100.0, -100.0, 0.0], [-100.0, 100.0, 5.0]]])
    w = rng.dirichlet(np.ones(3), size=22)
    w[0] = [0.0, 1.0, 0.0]
    eps = 0.0 if math.isfinite(FPRIME_INF.get(spec, 0.0)) else 1e-6
    out = []
    for fused in (True, False):
        zt = torch.tensor(z, dtype=dtype, requires_grad=True)
        loss = fdiv_loss(zt, torch.tensor(w, dtype=dtype), spec, smoothing=eps, fused=fused)
        loss.backward()
        out.append((loss.detach(), zt.grad))
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    assert torch.allclose(out[0][0], out[1][0], rtol=rtol, atol=1e-6 if dtype == torch.float32 else 1e-12)
    assert torch.allclose(out[0][1], out[1][1], rtol=rtol * 10, atol=1e-6 if dtype == torch.float32 else 1e-12)
