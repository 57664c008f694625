"""Full fine-tuning of the strong encoder: the student (and the ceiling) without frozen features.

Instead of a head on frozen features, the whole strong encoder (MiniLM-L6) plus a linear head
on its attention-mask mean-pooled last layer, ``z = θ·mean_t h_t(x) (+ b)``, is trained with
AdamW in minibatches on the same targets with the same loss ``loss(z, w, progress)`` as the
linear heads (:mod:`experiments.pipeline`).  Pair tasks score each text and use
``z = r(A) − r(B)`` (Bradley–Terry: a bias-free head).  Selection: the validation slice of the
student split is scored every ``eval_every`` optimiser steps (and at the end); the checkpoint
with the best accuracy against the validation labels (weak labels for the student, ground truth
for the ceiling) is kept — never the test split.

What keeps a run cheap (issue 12; ``w2sg bench`` does not time it, the run records do):

- the pool is tokenised once per (model, max length) and cached on disk
  (:func:`experiments.embed.tokenize_cached`); a batch is padded only to its longest text;
- minibatches are drawn from length buckets (:func:`_bucketed_batches`), so a batch of short
  texts is not padded to a long one;
- ``max_length`` caps the tokens per text (VADER's pool: median 26, 95th percentile 45
  MiniLM tokens, so 48 keeps ~95 % of the texts whole);
- ``max_steps`` caps the optimiser steps (0: ``epochs`` full passes); ``patience`` stops after
  that many evaluations without a better validation accuracy (0: never);
- evaluation scores each distinct text once (pairs share texts), length-sorted, without
  gradients; the test split is scored once, with the selected checkpoint.

Device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).  On CUDA the encoder's forward pass
runs under bf16 autocast when the GPU supports it; the pooled features, the head and the loss
stay in float32.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from .device import autocast_dtype, resolve_device

__all__ = ["FINETUNE_DEFAULTS", "finetune_predict", "load_encoder", "resolve_device",
           "autocast_dtype"]

#: Fine-tuning settings (``--finetune`` or a ``[finetune]`` table).  ``device`` is the resolved
#: device (``cpu``/``cuda``): it is part of the config because bf16 on CUDA changes results.
FINETUNE_DEFAULTS = {"epochs": 1, "lr": 3e-5, "batch_size": 16, "max_length": 64,
                     "max_steps": 0, "eval_every": 0, "patience": 0, "device": "cpu"}


def load_encoder(strong: str = "minilm-l6"):
    """The pretrained strong encoder (a ``transformers`` model with ``last_hidden_state``)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    from .embed import STRONG_MODELS, minilm_path
    if strong not in STRONG_MODELS:
        raise ValueError(f"unknown strong model {strong!r}; valid: {', '.join(STRONG_MODELS)}")
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per run drowns the progress lines
    return AutoModel.from_pretrained(minilm_path())


def _bucketed_batches(rng, item_len: np.ndarray, batch_size: int, bucket: int = 8):
    """Minibatches (positions into ``item_len``) of one epoch with little padding: a random
    permutation is cut into chunks of ``bucket`` batches, each chunk sorted by length and cut
    into batches, and the batches are shuffled.  Every item appears exactly once."""
    order = rng.permutation(len(item_len))
    batches = []
    for i in range(0, len(order), bucket * batch_size):
        chunk = order[i:i + bucket * batch_size]
        chunk = chunk[np.argsort(item_len[chunk], kind="stable")]
        batches.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
    return [batches[k] for k in rng.permutation(len(batches))]


def finetune_predict(task, targets: np.ndarray, val_labels: np.ndarray, loss, seed: int,
                     epochs: int = 1, lr: float = 3e-5, batch_size: int = 16, max_length: int = 64,
                     max_steps: int = 0, eval_every: int = 0, patience: int = 0,
                     device: str = "cpu", desc: str = "", log=None) -> tuple[np.ndarray, dict]:
    """Fine-tune on the student split's train part and return ``(test P(y=1), info)``.

    Args:
        task: an :class:`experiments.data.Task` (``cls``: one text per item; ``pair``: two).
        targets: ``P(y=1)`` per train item of the student split (``split_student`` order).
        val_labels: labels (soft or hard) of the validation slice, thresholded at 0.5.
        loss: ``loss(z, w, progress)`` on logits ``z`` and targets ``w`` (:func:`make_loss`).
        eval_every: optimiser steps between validation evaluations (0: once per epoch).
        log: ``log(line)`` for progress lines (one per evaluation), or ``None``.

    ``info``: ``val_acc`` (selected checkpoint), ``best_step``, ``steps`` (taken),
    ``steps_planned``, ``stopped_early``, ``evals``, ``device``, ``autocast``, ``train_s``,
    ``eval_s``.
    """
    import torch
    from .embed import tokenize_cached
    from .data.tasks import split_student
    t_start = time.perf_counter()
    torch.manual_seed(seed)
    device = resolve_device(device)
    amp = autocast_dtype(device)
    ids, lengths = tokenize_cached(task.texts, task.dataset, max_length)
    enc = load_encoder().to(device).train()
    head = torch.nn.Linear(enc.config.hidden_size, 1, bias=task.kind == "cls").to(device)
    opt = torch.optim.AdamW(list(enc.parameters()) + list(head.parameters()), lr=lr)
    items_s, _ = task.splits["student"]
    tr, va = split_student(len(items_s), task.info["val_frac"])
    pair = task.kind == "pair"

    def score(rows):
        """``r(x)`` for the texts ``rows`` (one forward pass, padded to the longest)."""
        L = max(1, int(lengths[rows].max()))
        x = torch.as_tensor(ids[rows, :L], dtype=torch.long, device=device)
        m = (torch.arange(L, device=device)[None, :]
             < torch.as_tensor(lengths[rows], device=device)[:, None]).long()
        ctx = torch.autocast("cuda", dtype=amp) if amp is not None else contextlib.nullcontext()
        with ctx:
            h = enc(input_ids=x, attention_mask=m).last_hidden_state
        mf = m.unsqueeze(-1).to(torch.float32)
        pooled = (h.to(torch.float32) * mf).sum(1) / mf.sum(1).clamp(min=1e-9)
        return head(pooled).squeeze(-1)

    def logits(items):
        if pair:  # both texts of every pair in one forward pass
            s = score(np.concatenate([items[:, 0], items[:, 1]]))
            return s[:len(items)] - s[len(items):]
        return score(items)

    def predict(items, chunk=128):
        """``P(y=1)`` of ``items``; each distinct text scored once, length-sorted."""
        enc.eval()
        u = np.unique(np.asarray(items).ravel())
        u = u[np.argsort(lengths[u], kind="stable")]
        r = np.zeros(len(task.texts), dtype=np.float64)
        with torch.no_grad():
            for i in range(0, len(u), chunk):
                r[u[i:i + chunk]] = score(u[i:i + chunk]).float().cpu().numpy()
        enc.train()
        z = r[items[:, 0]] - r[items[:, 1]] if pair else r[items]
        from theory.binary import sigmoid
        return sigmoid(z)

    rng = np.random.default_rng(seed)
    item_len = lengths[items_s[tr]].reshape(len(tr), -1).max(1)  # the longer text of a pair
    targets = np.asarray(targets, dtype=np.float32)
    yv = np.asarray(val_labels) > 0.5
    per_epoch = int(np.ceil(len(tr) / batch_size))
    planned = epochs * per_epoch if not max_steps else min(epochs * per_epoch, int(max_steps))
    every = int(eval_every) or per_epoch
    step, evals, since_best, stopped = 0, 0, 0, False
    best = {"acc": -1.0, "step": 0, "state": None}
    t_eval = 0.0
    while step < planned and not stopped:
        for sel in _bucketed_batches(rng, item_len, batch_size):
            z = logits(items_s[tr[sel]])
            obj = loss(z, torch.as_tensor(targets[sel], device=device), step / max(1, planned))
            opt.zero_grad()
            obj.backward()
            opt.step()
            step += 1
            if step % every == 0 or step == planned:
                te = time.perf_counter()
                acc = float(np.mean((predict(items_s[va]) > 0.5) == yv))
                t_eval += time.perf_counter() - te
                evals += 1
                since_best = 0 if acc > best["acc"] else since_best + 1
                if acc >= best["acc"]:  # ties: the later (more trained) checkpoint
                    best = {"acc": acc, "step": step, "state": (
                        {k: v.detach().clone() for k, v in enc.state_dict().items()},
                        {k: v.detach().clone() for k, v in head.state_dict().items()})}
                if log is not None:
                    dt = time.perf_counter() - t_start
                    log(f"{desc} step {step}/{planned} val_acc {acc:.3f} "
                        f"(best {best['acc']:.3f} @ {best['step']}) {dt:.0f} s")
                if patience and since_best >= patience and step < planned:
                    stopped = True
            if step >= planned or stopped:
                break
    if best["state"] is not None and best["step"] != step:
        enc.load_state_dict(best["state"][0])
        head.load_state_dict(best["state"][1])
    t_train = time.perf_counter() - t_start
    te = time.perf_counter()
    p = predict(task.splits["test"][0])
    t_eval += time.perf_counter() - te
    info = {"val_acc": best["acc"], "best_step": best["step"], "steps": step,
            "steps_planned": planned, "stopped_early": stopped, "evals": evals,
            "device": device, "autocast": str(amp).replace("torch.", "") if amp else "float32",
            "train_s": round(t_train, 3), "eval_s": round(t_eval, 3)}
    return p, info
