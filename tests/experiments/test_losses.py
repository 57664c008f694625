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
@pytest.mark.parametrize("fused", [True, "torch", False])
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
    """Both fused kernels (the default, C where a compiler builds it, and the torch kernel) agree
    with the autograd path through the generated g."""
    rng = np.random.default_rng(7)
    z = np.concatenate([rng.normal(size=(20, 3)) * 3, [[100.0, -100.0, 0.0], [-100.0, 100.0, 5.0]]])
    w = rng.dirichlet(np.ones(3), size=22)
    w[0] = [0.0, 1.0, 0.0]
    eps = 0.0 if math.isfinite(FPRIME_INF.get(spec, 0.0)) else 1e-6
    out = []
    for fused in (True, "torch", False):
        zt = torch.tensor(z, dtype=dtype, requires_grad=True)
        loss = fdiv_loss(zt, torch.tensor(w, dtype=dtype), spec, smoothing=eps, fused=fused)
        loss.backward()
        out.append((loss.detach(), zt.grad))
    rtol = 1e-5 if dtype == torch.float32 else 1e-10
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    for value, grad in out[:2]:  # both kernels against the reference path
        assert torch.allclose(value, out[2][0], rtol=rtol, atol=atol)
        assert torch.allclose(grad, out[2][1], rtol=rtol * 10, atol=atol)


# ----------------------------------------------------------------------------- exact by default
EXACT_SPECS = list(NAMED) + ["alpha:0.5", "alpha:2", "(t-1)**2/(t+1)", "-log(t)", "t*log(t)-log(t)"]


def independent_df(spec, z, w):
    """Float64 D_f(softmax(z)‖w) per row from probabilities (not log ratios): Σ_{w>0} w f(s/w)
    with the numpy generator, plus Σ_{w=0} s·f'(∞) with f'(∞) from the closed-form table;
    kl through scipy's rel_entr (KL(W‖S) = Σ w log(w/s))."""
    from scipy.special import rel_entr, softmax
    s = softmax(np.asarray(z, dtype=np.float64), axis=-1)
    w = np.asarray(w, dtype=np.float64)
    if spec in ("kl", "-log(t)"):
        return rel_entr(w, s).sum(-1)
    f = f_numpy(get_generator(spec))
    pos = w > 0
    with np.errstate(all="ignore"):
        terms = np.where(pos, w * np.asarray(f(np.where(pos, s / np.where(pos, w, 1), 1.0)), dtype=float),
                         s * FPRIME_INF[spec] if math.isfinite(FPRIME_INF[spec]) else 0.0)
    return terms.sum(-1)


def _batch_with_zeros(k, seed=0, n=12):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 2.5
    w = rng.dirichlet(np.ones(k), size=n)
    w[: n // 2, 0] = 0.0                    # zeros in w ...
    w[0] = np.eye(k)[k - 1]                 # ... and one-hot rows
    w[1] = np.eye(k)[0]
    w /= w.sum(1, keepdims=True)
    return z, w


def test_fprime_at_infinity_table_matches_the_symbolic_derivation():
    from theory.derived import fprime_at_inf, to_float
    for spec, want in FPRIME_INF.items():
        assert to_float(fprime_at_inf(get_generator(spec))) == pytest.approx(want, rel=1e-12), spec


@pytest.mark.parametrize("spec", [s for s in EXACT_SPECS if math.isfinite(FPRIME_INF.get(s, math.inf))])
@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("fused", [True, "torch", False])
def test_zero_weak_entries_follow_the_fprime_infinity_convention(spec, k, fused):
    """Value and gradient equal an independent float64 D_f with zeros in w (0·f(s/0) = s·f'(∞)):
    the gradient against central differences of the independent value."""
    z, w = _batch_with_zeros(k, seed=k)
    zt = torch.tensor(z, requires_grad=True)
    got = fdiv_loss(zt, torch.tensor(w), spec, reduction="sum", fused=fused)
    got.backward()
    want = independent_df(spec, z, w).sum()
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)
    h = 1e-6
    fd = np.zeros_like(z)
    for i in range(z.shape[0]):
        for j in range(k):
            zp, zm = z.copy(), z.copy()
            zp[i, j] += h
            zm[i, j] -= h
            fd[i, j] = (independent_df(spec, zp, w)[i] - independent_df(spec, zm, w)[i]) / (2 * h)
    np.testing.assert_allclose(zt.grad.numpy(), fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("spec", [s for s in EXACT_SPECS if not math.isfinite(FPRIME_INF.get(s, 0.0))])
@pytest.mark.parametrize("fused", [True, "torch", False])
def test_infinite_fprime_with_a_zero_weak_entry_raises_and_suggests_smoothing(spec, fused):
    z = torch.tensor([[0.3, -0.2], [1.0, 2.0]], dtype=torch.float64)
    w = torch.tensor([[0.4, 0.6], [0.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"(?s)f'\(∞\).*= ∞.*smoothing") as info:
        fdiv_loss(z, w, spec, fused=fused)
    assert repr(spec) in str(info.value) and "weak_probs[1, 0] = 0" in str(info.value)
    smoothed = fdiv_loss(z, w, spec, smoothing=1e-6, fused=fused)
    ws = (w + 1e-6) / (1 + 2e-6)
    assert smoothed.item() == pytest.approx(independent_df(spec, z.numpy(), ws.numpy()).mean(), rel=1e-10)
    # without zeros the same generator is exact by default
    assert fdiv_loss(z[:1], w[:1], spec).item() == pytest.approx(
        independent_df(spec, z[:1].numpy(), w[:1].numpy()).mean(), rel=1e-12)


def test_default_is_exact_and_smoothing_is_opt_in():
    """kl, 5 classes: the default is exact; smoothing=1e-6 moves the value by ~1e-6 relative."""
    rng = np.random.default_rng(11)
    z = rng.normal(size=(64, 5)) * 2
    w = rng.dirichlet(np.ones(5) * 0.3, size=64)
    exact = independent_df("kl", z, w).mean()
    assert fdiv_loss(torch.tensor(z), torch.tensor(w), "kl").item() == pytest.approx(exact, rel=1e-14)
    assert ce_loss(torch.tensor(z), torch.tensor(w)).item() == pytest.approx(
        F.cross_entropy(torch.tensor(z), torch.tensor(w)).item(), rel=1e-14)
    smoothed = fdiv_loss(torch.tensor(z), torch.tensor(w), "kl", smoothing=1e-6).item()
    assert 1e-8 < abs(smoothed - exact) / exact < 1e-4


# ----------------------------------------------------------------------------- mixed precision
LOW = [torch.float16, torch.bfloat16]
ALL_LOSSES = list(NAMED) + ["(t-1)**2/(t+1)", "ce", "aux_conf", "product"]


def _loss_by_name(name, z, w, eps=0.0):
    if name == "ce":
        return ce_loss(z, w, smoothing=eps)
    if name == "aux_conf":
        return aux_conf_loss(z, w, alpha=0.5, smoothing=eps)
    if name == "product":
        return product_loss(z, w)
    return fdiv_loss(z, w, name, smoothing=eps)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_half_precision_logits_compute_in_float32(name, dtype):
    """fp16/bf16 logits with float32 weak labels (one row sums to 1 in float32 only):
    finite value within 2e-2 of float64 on the same logits, gradient finite, in the
    logits' dtype and close to the float64 gradient."""
    rng = np.random.default_rng(5)
    z = torch.tensor(rng.normal(size=(64, 3)) * 3).to(dtype)
    w = torch.tensor(rng.dirichlet(np.ones(3), size=64), dtype=torch.float32)
    w[7] = torch.tensor([0.0021, 0.4991, 0.4988])  # not a probability row once rounded to bf16
    assert abs(float(w[7].to(torch.bfloat16).float().sum()) - 1) > 1e-4
    zl = z.clone().requires_grad_()
    got = _loss_by_name(name, zl, w)
    got.backward()
    z64 = z.double().requires_grad_()
    want = _loss_by_name(name, z64, w.double())
    want.backward()
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert got.item() == pytest.approx(want.item(), abs=2e-2, rel=2e-2)
    assert zl.grad.dtype == dtype and torch.isfinite(zl.grad).all()
    err = (zl.grad.double() - z64.grad).abs().max() / (z64.grad.abs().max() + 1e-12)
    assert err < 2e-2, float(err)


@pytest.mark.parametrize("dtype", LOW)
def test_half_precision_weak_labels_are_validated_at_their_own_precision(dtype):
    w = torch.tensor([[0.0021, 0.4991, 0.4988], [0.2, 0.3, 0.5]]).to(dtype)  # bf16 sums off by ~4e-3
    z = torch.zeros(2, 3, dtype=dtype)
    assert torch.isfinite(fdiv_loss(z, w, "js"))
    with pytest.raises(ValueError, match="sums to"):
        fdiv_loss(z, torch.tensor([[0.5, 0.6, 0.0]], dtype=dtype), "js")


# ----------------------------------------------------------------------------- Burns et al. baselines
def burns_logconf(z, w, alpha):
    """Direct transcription of Burns et al.'s auxiliary confidence loss (binary, numpy):
    q = mean weak P(class 1); threshold = q-quantile (linear) of strong P(class 0); rows below
    the threshold are hardened to class 1; CE((1−α)W + α·Ŝ, S), batch mean."""
    z = np.asarray(z, dtype=np.float64)
    s = np.exp(z - z.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    q = w[:, 1].mean()
    threshold = np.quantile(s[:, 0], q)
    hard = np.stack([s[:, 0] >= threshold, s[:, 0] < threshold], 1).astype(float)
    target = (1 - alpha) * w + alpha * hard
    return -(target * np.log(s)).sum(1).mean(), hard


def burns_product(z, w, a=1.0, b=1.0):
    """Direct transcription of the product loss: T = s^β w^α / Σ, CE(T, S), batch mean."""
    z = np.asarray(z, dtype=np.float64)
    log_s = z - z.max(1, keepdims=True)
    log_s -= np.log(np.exp(log_s).sum(1, keepdims=True))
    t = np.exp(log_s) ** b * w ** a
    t /= t.sum(1, keepdims=True)
    return -(t * log_s).sum(1).mean()


def _burns_batches():
    rng = np.random.default_rng(4)
    n = 40
    balanced = (rng.normal(size=(n, 2)) + [0, 1.5], np.tile([0.5, 0.5], (n, 1)))  # all lean to class 1
    p = 1 / (1 + np.exp(-rng.normal(-1.5, 1.0, size=n)))
    skewed = (rng.normal(size=(n, 2)) * 2, np.stack([1 - p, p], 1))
    y = (rng.random(n) < 0.3).astype(float)
    onehot = (rng.normal(size=(n, 2)) * 3, np.stack([1 - y, y], 1))
    return {"balanced": balanced, "skewed": skewed, "onehot": onehot}


@pytest.mark.parametrize("batch", ["balanced", "skewed", "onehot"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.75, 1.0])
def test_aux_conf_is_burns_et_al_class_balance_rule(batch, alpha):
    z, w = _burns_batches()[batch]
    want, hard = burns_logconf(z, w, alpha)
    got = aux_conf_loss(torch.tensor(z), torch.tensor(w), alpha=alpha)
    assert got.item() == pytest.approx(want, rel=1e-12)
    from experiments.losses import harden_class_balance
    s = torch.softmax(torch.tensor(z), -1)
    np.testing.assert_array_equal(harden_class_balance(s, torch.tensor(w).mean(0)).numpy(), hard)


def test_aux_conf_hardens_half_of_a_balanced_batch_that_leans_to_one_class():
    z, w = _burns_batches()["balanced"]
    assert (z[:, 1] > z[:, 0]).mean() > 0.8
    from experiments.losses import harden_class_balance
    hard = harden_class_balance(torch.softmax(torch.tensor(z), -1), torch.tensor(w).mean(0))
    assert hard[:, 0].sum().item() == pytest.approx(len(z) / 2, abs=1)
    argmax = aux_conf_loss(torch.tensor(z), torch.tensor(w), alpha=1.0, harden="argmax").item()
    assert argmax == pytest.approx(F.cross_entropy(torch.tensor(z), torch.tensor(z).argmax(1)).item())
    assert argmax != pytest.approx(aux_conf_loss(torch.tensor(z), torch.tensor(w), alpha=1.0).item())


def test_class_balance_hardening_for_more_classes_meets_the_quotas():
    """k > 2: quotas n·mean(w) by largest remainders, rows assigned greedily by strong
    probability (hand-worked example), and k = 2 gives the top-m rows by P(class 1)."""
    from experiments.losses import harden_class_balance
    s = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.1, 0.8, 0.1], [0.4, 0.35, 0.25]],
                     dtype=torch.float64)
    mean = torch.tensor([0.2, 0.4, 0.4], dtype=torch.float64)  # quotas 1, 2, 2
    hard = harden_class_balance(s, mean)
    # pairs by prob: (3,1)=.8 → 1; (0,0)=.7 → 0 (quota 0 used); (1,0)=.6 full; (2,0)=.5 full;
    # (2,2)=.4 → 2; (4,0)=.4 full; (4,1)=.35 → 1 (quota 1 used); (1,1)=.3 full; (4,2) row done;
    # (0,1)=.2 row done; (1,2)=.1 → 2
    assert hard.argmax(1).tolist() == [0, 2, 2, 1, 1]
    assert hard.sum(0).tolist() == [1, 2, 2]
    rng = np.random.default_rng(0)
    p1 = torch.tensor(rng.random(30))
    two = torch.stack([1 - p1, p1], 1)
    # the binary rule picks the rows below the q-quantile of P(class 0): the top rows by P(class 1)
    hard2 = harden_class_balance(two, torch.tensor([0.7, 0.3], dtype=torch.float64))
    top = set(torch.argsort(p1, descending=True)[: int(hard2[:, 1].sum())].tolist())
    assert set(hard2[:, 1].nonzero().flatten().tolist()) == top


def test_aux_conf_alpha_warm_up():
    """Burns et al.: α rises linearly to 0.75 over the first 20% of training."""
    assert [aux_conf_alpha(p) for p in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)] == pytest.approx(
        [0.0, 0.1875, 0.375, 0.75, 0.75, 0.75])


@pytest.mark.parametrize("batch", ["balanced", "skewed", "onehot"])
@pytest.mark.parametrize("ab", [(1.0, 1.0), (0.5, 2.0)])
def test_product_is_burns_et_al_formula(batch, ab):
    z, w = _burns_batches()[batch]
    got = product_loss(torch.tensor(z), torch.tensor(w), alpha=ab[0], beta=ab[1])
    assert got.item() == pytest.approx(burns_product(z, w, *ab), rel=1e-12)


def test_product_keeps_one_hot_targets_one_hot():
    """Weak [0, 1], strong logits [20, 0]: the target stays [0, 1] (loss log(1 + e^20)),
    also through the pipeline's smoothed Loss (smoothing used to flip it to the strong side)."""
    z = torch.tensor([[20.0, 0.0]], dtype=torch.float64)
    w = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    want = math.log1p(math.exp(20.0))
    assert product_loss(z, w).item() == pytest.approx(want, rel=1e-14)
    assert make_loss("product", smoothing=1e-6)(z, w).item() == pytest.approx(want, rel=1e-14)


# ----------------------------------------------------------------------------- registry, pipeline, CLI
def test_one_registry_of_loss_names():
    from experiments.losses import BASELINE_LOSSES, DEFAULT_LOSSES, QUICK_LOSSES
    from experiments.runner import DEFAULT_SWEEP, QUICK_SWEEP
    assert DEFAULT_SWEEP["losses"] == list(DEFAULT_LOSSES)
    assert QUICK_SWEEP["losses"] == list(QUICK_LOSSES)
    assert set(BASELINE_LOSSES) == {"aux_conf", "product"} <= set(DEFAULT_LOSSES)
    assert set(DEFAULT_LOSSES) <= set(LOSS_NAMES)


def test_make_loss_smoothing_and_the_pipeline_default():
    from experiments.pipeline import PIPELINE_SMOOTHING, TrainConfig
    from experiments.runner import DEFAULT_SWEEP
    assert TrainConfig().smoothing == PIPELINE_SMOOTHING == DEFAULT_SWEEP["train"]["smoothing"] == 1e-6
    z = torch.tensor([0.5, -1.0], dtype=torch.float64)
    w = torch.tensor([0.0, 1.0], dtype=torch.float64)  # P(class 1): a one-hot row first
    with pytest.raises(ValueError, match="smoothing"):
        make_loss("reverse_kl")(z, w)
    loss = make_loss("reverse_kl", smoothing=PIPELINE_SMOOTHING)
    assert loss.smoothing == 1e-6
    assert loss(z, w).item() == pytest.approx(fdiv_loss(z, w, "reverse_kl", smoothing=1e-6).item())
    assert make_loss("kl")(z, w).item() == pytest.approx(independent_df(
        "kl", torch.stack([torch.zeros(2, dtype=torch.float64), z], 1).numpy(),
        np.array([[1.0, 0.0], [0.0, 1.0]])).mean(), rel=1e-12)
    with pytest.raises(ValueError, match="smoothing"):
        make_loss("kl", smoothing=-1)


@pytest.mark.parametrize("argv, want", [
    (["derive", "--f", "-log(t)"], ["derive", "--f=-log(t)"]),
    (["bound", "tv", "--f", "-log(t)", "--delta", "0.1"], ["bound", "tv", "--f=-log(t)", "--delta", "0.1"]),
    (["run", "--losses", "kl", "-log(t)", "--quick"], ["run", "--losses=kl", "--losses=-log(t)", "--quick"]),
    (["derive", "--f", "--json"], ["derive", "--f", "--json"]),  # missing value: left to argparse
    (["derive", "--f=kl"], ["derive", "--f=kl"]),
    (["compare", "--baseline", "-log(t)", "--json"], ["compare", "--baseline=-log(t)", "--json"]),
])
def test_typed_generators_may_start_with_a_minus_sign(argv, want):
    from w2sg.cli import build_parser, typed_values
    assert typed_values(argv) == want
    if argv[0] == "run":
        args = build_parser().parse_args(typed_values(argv))
        assert args.losses == ["kl", "-log(t)"]


def test_derive_accepts_a_generator_starting_with_minus(capsys):
    import json
    from w2sg.cli import main
    assert main(["derive", "--f", "-log(t)", "--json"]) == 0
    typed = json.loads(capsys.readouterr().out)
    assert main(["derive", "--f", "kl", "--json"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert typed["f2_at_1"] == named["f2_at_1"] == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["ce", "aux_conf", "product"])
def test_baselines_finite_and_exact_at_extreme_logits(name, dtype):
    """One-hot weak labels against logits ±100: CE rows are 200, 200, 0 and log 2 (the
    product target stays one-hot, so it equals CE; aux_conf with α = 0.5 mixes in Ŝ)."""
    z = torch.tensor([[100.0, -100.0], [-100.0, 100.0], [100.0, -100.0], [0.0, 0.0]], dtype=dtype,
                     requires_grad=True)
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
    loss = _loss_by_name(name, z, w)
    loss.backward()
    assert torch.isfinite(loss) and z.grad.dtype == dtype and torch.isfinite(z.grad).all()
    if name != "aux_conf":
        assert loss.item() == pytest.approx((400 + math.log(2)) / 4, rel=1e-6)


def test_fdiv_kernel_for_names_the_path_fdiv_loss_takes(monkeypatch):
    """``fdiv_kernel_for`` answers as ``fdiv_loss`` dispatches: the C kernel on CPU where it
    builds (else the torch kernel), nothing for the baselines."""
    from experiments.losses import fdiv_kernel_for
    from fdiv_torch import c_kernel
    assert fdiv_kernel_for("ce") is None and fdiv_kernel_for("product") is None
    assert fdiv_kernel_for("js") == ("c" if c_kernel.available() and c_kernel.vector_math() else "torch")
    assert fdiv_kernel_for("(t-1)**2/(t+1)", "float64") == fdiv_kernel_for("js")
    monkeypatch.setattr(c_kernel, "available", lambda: False)
    assert fdiv_kernel_for("js") == "torch"
    z = torch.randn(5, 3)
    w = torch.softmax(torch.randn(5, 3), -1)
    with pytest.raises(ValueError, match="fused='c'"):  # the dispatch reads the same answer
        monkeypatch.setattr(c_kernel, "unavailable_reason", lambda: "C kernel unavailable: test")
        fdiv_loss(z, w, "js", fused="c")
    assert torch.allclose(fdiv_loss(z, w, "js"), fdiv_loss(z, w, "js", fused="torch"))
