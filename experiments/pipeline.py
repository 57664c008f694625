"""The weak-to-strong pipeline (Burns et al. 2023 splits) on frozen features.

1. Weak supervisor: a logistic head on the *weak* features, trained on ground truth of the
   ``weak_gt`` split (few labels, so the weak–ceiling gap is real).
2. Weak labels: its soft predictions ``P(y=1)`` on the ``student`` split; a seeded fraction
   ``noise`` of them is flipped ``p → 1 − p``.
3. Student (W2S): a head on the frozen *strong* features ``h_s`` trained on the weak labels
   with the chosen loss; the checkpoint is selected on the student split's validation slice
   (agreement with its weak labels), never on the test split.
4. Ceiling: the same strong head trained on ground truth of the same student split
   (``ceiling_split = "student"``), selected on the validation slice's ground truth.

Pair tasks: the head scores each text, ``r(x) = θ·h(x)``, and the logit is ``r(A) − r(B)``
(Bradley–Terry), i.e. a bias-free linear head on feature differences.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from w2sg.pgr import pgr  # the one implementation (re-exported here)
from .data.tasks import split_student

__all__ = ["TrainConfig", "PIPELINE_SMOOTHING", "flip_labels", "split_student", "design", "train_head", "predict",
           "metrics", "accuracy", "auroc", "ece", "pgr", "weak_supervisor", "reference_outputs",
           "train_student"]


#: Weak-label smoothing of the pipeline's losses (``w ← (w + ε)/(1 + kε)``, see
#: :mod:`experiments.losses`).  The loss functions are exact by default (``ε = 0``); the
#: pipeline smooths on purpose: its weak labels are soft predictions that are exactly 0 or 1
#: in float32 once a weak logit exceeds about 17, and there ``reverse_kl``, ``pearson`` and
#: ``jeffreys`` (``f'(∞) = ∞``) are infinite.  Every loss of a sweep (and the weak head and
#: the ceiling, trained with ``ce``) sees the same smoothed labels, so losses are compared on
#: equal terms; ``product`` ignores it (its target keeps one-hot labels one-hot).
PIPELINE_SMOOTHING = 1e-6


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Head training: full-batch Adam, ``steps`` steps, L2 ``weight_decay``, evaluated on the
    validation slice every ``eval_every`` steps (best checkpoint kept); the losses are built
    with weak-label ``smoothing`` (default :data:`PIPELINE_SMOOTHING`)."""

    steps: int = 200
    lr: float = 1e-2
    weight_decay: float = 1.0
    eval_every: int = 20
    dtype: str = "float32"
    smoothing: float = PIPELINE_SMOOTHING


    def as_config(self) -> dict:
        """The fields as a JSON-able dict (what sweep configs and records hold)."""
        return dataclasses.asdict(self)


#: The student and ceiling heads: the defaults above (the one source of training defaults).
STUDENT_TRAIN = TrainConfig()
#: The weak head: 300 steps, L2 0.1, no selection (it has no validation data).
WEAK_TRAIN = TrainConfig(steps=300, lr=1e-2, weight_decay=0.1, eval_every=0)


# ----------------------------------------------------------------------------- metrics
def accuracy(p1: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(p1) > 0.5) == (np.asarray(y) == 1)))


def auroc(p1: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half); NaN with one class only."""
    from scipy.stats import rankdata
    y = np.asarray(y) == 1
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(p1)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def ece(p1: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the predicted class's confidence (equal-width bins)."""
    p1 = np.asarray(p1, dtype=float)
    pred = p1 > 0.5
    conf = np.where(pred, p1, 1 - p1)
    correct = pred == (np.asarray(y) == 1)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def metrics(p1: np.ndarray, y: np.ndarray) -> dict:
    return {"acc": accuracy(p1, y), "auroc": auroc(p1, y), "ece": ece(p1, y)}


# ----------------------------------------------------------------------------- data
def flip_labels(w: np.ndarray, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``p → 1 − p`` on ``round(noise · n)`` examples chosen by ``seed``; returns (labels, mask)."""
    if not 0 <= noise <= 1:
        raise ValueError(f"noise must be in [0, 1], got {noise}")
    w = np.asarray(w, dtype=float).copy()
    n = len(w)
    rng = np.random.default_rng([seed, 7919])
    idx = rng.permutation(n)[:int(round(noise * n))]
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    w[mask] = 1 - w[mask]
    return w, mask


def standardize(X: np.ndarray) -> np.ndarray:
    mu = X.mean(0, keepdims=True)
    sd = X.std(0, keepdims=True) + 1e-6
    return ((X - mu) / sd).astype(np.float32)


def design(feats: np.ndarray, items: np.ndarray, kind: str) -> np.ndarray:
    """Rows the head sees: text features (``cls``) or ``h(A) − h(B)`` (``pair``)."""
    if kind == "pair":
        return feats[items[:, 0]] - feats[items[:, 1]]
    return feats[items]


# ----------------------------------------------------------------------------- training
def train_head(X, targets, loss, cfg: TrainConfig = TrainConfig(), bias: bool = True,
               val: tuple | None = None, seed: int = 0, init=None):
    """Train a linear logit head ``z = X θ (+ b)`` on soft ``targets`` (P(y=1)) with ``loss``.

    ``loss`` is an :class:`experiments.losses.Loss` (or any ``loss(z, w, progress)``), built
    by the caller with its smoothing (``cfg.smoothing`` in this module).
    ``val = (X_val, y_val)``: the step with the best validation accuracy against ``y_val``
    (soft labels thresholded at 0.5) is kept.  Returns ``(theta, b, info)``.
    """
    import torch
    if torch.get_num_threads() > 1:
        torch.set_num_threads(1)  # small matrices: threads only add contention
    dtype = getattr(torch, cfg.dtype)
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=dtype)
    wt = torch.as_tensor(np.asarray(targets, dtype=float), dtype=dtype)
    d = Xt.shape[1]
    theta = torch.zeros(d, dtype=dtype, requires_grad=True)
    b = torch.zeros((), dtype=dtype, requires_grad=bias)
    if init is not None:
        with torch.no_grad():
            theta.copy_(torch.as_tensor(init[0], dtype=dtype))
            b.copy_(torch.as_tensor(init[1], dtype=dtype))
    params = [theta] + ([b] if bias else [])
    opt = torch.optim.Adam(params, lr=cfg.lr)
    best = (-1.0, theta.detach().clone(), b.detach().clone(), 0)
    Xv = yv = None
    if val is not None:
        Xv = torch.as_tensor(val[0], dtype=dtype)
        yv = np.asarray(val[1]) > 0.5
    for step in range(cfg.steps):
        opt.zero_grad()
        z = Xt @ theta + b
        obj = loss(z, wt, step / max(1, cfg.steps)) + cfg.weight_decay * 0.5 * (theta * theta).sum()
        obj.backward()
        opt.step()
        if Xv is not None and cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            with torch.no_grad():
                acc = float(((Xv @ theta + b).numpy() > 0).__eq__(yv).mean())
            if acc >= best[0]:
                best = (acc, theta.detach().clone(), b.detach().clone(), step + 1)
    if Xv is None or not cfg.eval_every:
        best = (float("nan"), theta.detach().clone(), b.detach().clone(), cfg.steps)
    info = {"val_acc": best[0], "best_step": best[3], "final_loss": float(obj.detach())}
    return best[1].numpy(), float(best[2]), info


def predict(X, theta, b) -> np.ndarray:
    """``P(y=1) = σ(Xθ + b)``."""
    z = np.asarray(X, dtype=np.float64) @ np.asarray(theta, dtype=np.float64) + b
    from theory.binary import sigmoid
    return sigmoid(z)


def weak_supervisor(task, weak_feats: np.ndarray, seed: int, cfg: TrainConfig | None = None):
    """Train the weak head on ``weak_gt`` ground truth; return soft labels and test metrics."""
    from .losses import make_loss
    cfg = cfg or WEAK_TRAIN
    F = standardize(weak_feats)
    items, y = task.splits["weak_gt"]
    bias = task.kind == "cls"
    theta, b, info = train_head(design(F, items, task.kind), y.astype(float),
                                make_loss("ce", smoothing=cfg.smoothing), cfg, bias=bias, seed=seed)
    out = {}
    for split in ("student", "test"):
        it, _ = task.splits[split]
        out[split] = predict(design(F, it, task.kind), theta, b)
    return out, info


def reference_outputs(task, strong_feats, weak_feats, seed: int, cfg: TrainConfig = STUDENT_TRAIN,
                      finetune: dict | None = None, weak_cfg: TrainConfig = WEAK_TRAIN,
                      log=None):
    """Weak supervisor (trained with ``weak_cfg``) + strong ceiling (``cfg``) for one
    (task, weak model, seed).

    Returns ``(arrays, record_part)``: ``arrays`` holds the weak soft labels on the student
    and test splits; ``record_part`` the weak / ceiling metrics and timings.  With
    ``finetune`` (settings of :func:`experiments.finetune.finetune_predict`) the ceiling is the
    fine-tuned encoder instead of the frozen-feature head (``strong_feats`` is then unused).
    """
    from .losses import make_loss
    t0 = time.perf_counter()
    weak, weak_info = weak_supervisor(task, weak_feats, seed, weak_cfg)
    t1 = time.perf_counter()
    it_s, y_s = task.splits["student"]
    it_t, y_t = task.splits["test"]
    tr, va = split_student(len(y_s), task.info["val_frac"])
    ce = make_loss("ce", smoothing=cfg.smoothing)
    if finetune is not None:  # the ceiling is fine-tuned too, so W2S and ceiling match
        from .finetune import finetune_predict, train_settings
        p_ceil, c_info = finetune_predict(task, y_s[tr].astype(float), y_s[va], ce, seed,
                                          **train_settings(finetune), desc=f"[finetune] {task.name} ceiling seed {seed}",
                                          log=log)
    else:
        S = standardize(strong_feats)
        Xs = design(S, it_s, task.kind)
        Xt = design(S, it_t, task.kind)
        theta, b, c_info = train_head(Xs[tr], y_s[tr].astype(float), ce, cfg,
                                      bias=task.kind == "cls", val=(Xs[va], y_s[va]), seed=seed)
        p_ceil = predict(Xt, theta, b)
    t2 = time.perf_counter()
    weak_m = metrics(weak["test"], y_t)
    weak_m["acc_student_split"] = accuracy(weak["student"], y_s)
    ceil_m = metrics(p_ceil, y_t)
    ceil_m["agreement_weak"] = float(np.mean((p_ceil > 0.5) == (weak["test"] > 0.5)))
    part = {
        "weak": weak_m, "ceiling": ceil_m,
        "gap": ceil_m["acc"] - weak_m["acc"],
        "ceiling_split": "student (ground truth of the split the student learns from; "
                         "selected on its validation slice's ground truth)",
        "train_info": {"weak": weak_info, "ceiling": c_info},
        "timings": {"weak_s": t1 - t0, "ceiling_s": t2 - t1},
    }
    return {"weak_student": weak["student"], "weak_test": weak["test"]}, part


def train_student(task, strong_feats, weak_student: np.ndarray, weak_test: np.ndarray,
                  loss_name: str, noise: float, seed: int, cfg: TrainConfig = TrainConfig(),
                  finetune: dict | None = None, log=None):
    """Train the W2S student with ``loss_name`` on (noisy) weak labels; test metrics.

    With ``finetune`` the strong encoder (or its top layers) is trained
    (:func:`experiments.finetune.finetune_predict`, with ``finetune["lr"]`` — the tuned one
    for a tuned run, set by the runner; ``strong_feats`` is then unused) and the
    train-split metrics ``agreement_weak_labels_train`` / ``acc_on_flipped_train`` are ``None``
    (they would cost a pass over the train split).
    """
    from .losses import make_loss
    loss = make_loss(loss_name, smoothing=cfg.smoothing)
    it_s, y_s = task.splits["student"]
    it_t, y_t = task.splits["test"]
    labels, flipped = flip_labels(weak_student, noise, seed)
    tr, va = split_student(len(y_s), task.info["val_frac"])
    t0 = time.perf_counter()
    if finetune is not None:  # whole encoder trained instead of the frozen-feature head
        from .finetune import finetune_predict, train_settings
        p, info = finetune_predict(task, labels[tr], labels[va], loss, seed,
                                   **train_settings(finetune),
                                   desc=f"[finetune] {task.name} {loss_name} noise {noise:g} seed {seed}",
                                   log=log)
        p_tr = None
    else:
        S = standardize(strong_feats)
        Xs = design(S, it_s, task.kind)
        Xt = design(S, it_t, task.kind)
        theta, b, info = train_head(Xs[tr], labels[tr], loss, cfg, bias=task.kind == "cls",
                                    val=(Xs[va], labels[va]), seed=seed)
        p = predict(Xt, theta, b)
        p_tr = predict(Xs[tr], theta, b)
    t1 = time.perf_counter()
    m = metrics(p, y_t)
    m["agreement_weak"] = float(np.mean((p > 0.5) == (weak_test > 0.5)))
    if p_tr is None:
        m["agreement_weak_labels_train"] = m["acc_on_flipped_train"] = None
    else:
        m["agreement_weak_labels_train"] = float(np.mean((p_tr > 0.5) == (labels[tr] > 0.5)))
        m["acc_on_flipped_train"] = (float(np.mean((p_tr[flipped[tr]] > 0.5) == (y_s[tr][flipped[tr]] == 1)))
                                     if flipped[tr].any() else None)
    m["noisy_label_acc_train"] = accuracy(labels[tr], y_s[tr])
    return m, {**info, "train_s": t1 - t0, "n_flipped": int(flipped.sum())}
