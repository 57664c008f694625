"""Fine-tuning of the strong encoder: the student (and the ceiling) without frozen features.

Instead of a head on frozen features, the top ``layers`` transformer layers of the strong
encoder (MiniLM-L6; ``"all"``: the whole encoder, embeddings included) plus a linear head on
its attention-mask mean-pooled last layer, ``z = θ·mean_t h_t(x) (+ b)``, are trained with
AdamW in minibatches on the same targets with the same loss ``loss(z, w, progress)`` as the
linear heads (:mod:`experiments.pipeline`).  Pair tasks score each text and use
``z = r(A) − r(B)`` (Bradley–Terry: a bias-free head).

Top-K on cached activations (``layers = K``): the layers below ``L − K`` are frozen, so the
hidden states entering layer ``L − K`` do not depend on training; they are computed once per
(model files, texts, max length, layer, dtype) and read from the disk cache
(:func:`experiments.embed.hidden_states_cached`, checked when read), and only the top ``K``
layers run in each step.  ``tests/experiments/test_finetune.py`` proves that values and
gradients equal those of the whole encoder with its lower layers frozen (float64, 1e-10).

The recipe (:data:`FINETUNE_DEFAULTS`):

- ``epochs`` full passes (``max_steps`` caps the steps; 0: no cap) over the student split's
  train part, minibatches of ``batch_size`` texts drawn from length buckets
  (:func:`_bucketed_batches`), each padded only to its longest text (``max_length`` caps the
  tokens per text);
- learning rate ``schedule``: ``"linear"`` — linear warm-up from 0 over the first ``warmup``
  fraction of the steps, then linear decay to 0 at the last step — or ``"constant"``;
- ``dropout``: the probability set on every dropout of the encoder (0.0: off — one short pass
  over a few thousand texts does not overfit, and without dropout a run is a deterministic
  function of its seed and the top-K path equals the frozen-bottom encoder exactly);
- ``select``: ``"last"`` (default, as Burns et al.: no checkpoint selection; the validation
  slice is scored once, at the end, for the record and for tuning) or ``"best"`` (the slice is
  scored every ``eval_every`` steps, 0: once per epoch, the best checkpoint is kept, ties keep
  the later; ``patience`` evaluations without gain stop early, 0: never).  The validation
  labels are the weak labels for a student and ground truth for the ceiling; the test split is
  never used for a choice.

Device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).  On CUDA the encoder's forward pass
runs under bf16 autocast when the GPU supports it; the pooled features, the head and the loss
stay in float32.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np

from .device import autocast_dtype, resolve_device

__all__ = ["FINETUNE_DEFAULTS", "finetune_predict", "load_encoder", "encoder_identity",
           "train_settings", "StrongScorer", "top_layers", "lr_factor", "resolve_device",
           "autocast_dtype"]

#: Fine-tuning settings (``--finetune`` or a ``[finetune]`` table; module doc).  ``device`` is
#: the resolved device (``cpu``/``cuda``): it is part of the config because bf16 on CUDA changes
#: results.  ``tune``: ``None`` or the learning-rate tuning of :mod:`experiments.finetune_tune`
#: (not a training setting: :func:`train_settings` drops it).
FINETUNE_DEFAULTS = {"layers": "all", "epochs": 1, "lr": 3e-5, "schedule": "linear",
                     "warmup": 0.1, "dropout": 0.0, "batch_size": 16, "max_length": 64,
                     "max_steps": 0, "select": "last", "eval_every": 0, "patience": 0,
                     "device": "cpu", "tune": None}


def train_settings(ft: dict) -> dict:
    """The keyword arguments of :func:`finetune_predict` in a ``finetune`` config table."""
    return {k: v for k, v in ft.items() if k != "tune"}


def load_encoder(strong: str = "minilm-l6"):
    """The pretrained strong encoder (a ``transformers`` model with ``last_hidden_state``)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    from .embed import STRONG_MODELS, minilm_path
    if strong not in STRONG_MODELS:
        raise ValueError(f"unknown strong model {strong!r}; valid: {', '.join(STRONG_MODELS)}")
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per run drowns the progress lines
    return AutoModel.from_pretrained(minilm_path())


def encoder_identity() -> str:
    """Identity of the files :func:`load_encoder` reads (the hidden-state cache's key)."""
    from .embed import model_identity
    return model_identity()


def _set_dropout(model, p: float) -> None:
    import torch
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = float(p)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(model.config, key):
            setattr(model.config, key, float(p))


def top_layers(enc, k: int):
    """``enc`` cut to its top ``k`` transformer layers, reading the states that enter them as
    ``inputs_embeds`` (its embeddings replaced by the identity; no pooler).  In place."""
    import torch

    class Passthrough(torch.nn.Module):
        def forward(self, input_ids=None, token_type_ids=None, position_ids=None,
                    inputs_embeds=None, **_):
            return inputs_embeds
    n = len(enc.encoder.layer)
    if not 1 <= k <= n:
        raise ValueError(f"layers must be in 1..{n} or 'all', got {k!r}")
    enc.embeddings = Passthrough()
    enc.encoder.layer = enc.encoder.layer[n - k:]
    enc.pooler = None
    return enc


class StrongScorer:
    """The trainable part (encoder or its top K layers, plus the head) and ``score(rows)``:
    ``r(x)`` of the texts ``rows`` of ``task``, padded to their longest."""

    def __init__(self, task, layers, max_length: int, dropout: float = 0.0,
                 device: str = "cpu", dtype: str = "float32"):
        import torch
        from .embed import hidden_states_cached, tokenize_cached
        self.device, self.dtype = device, getattr(torch, dtype)
        self.amp = autocast_dtype(device)
        self.ids, self.lengths = tokenize_cached(task.texts, task.dataset, max_length)
        enc = load_encoder()
        _set_dropout(enc, dropout)
        self.states = None
        if layers != "all":
            below = len(enc.encoder.layer) - int(layers)
            hs = hidden_states_cached(task.texts, task.dataset, max_length, below, load_encoder,
                                      encoder_identity(), dtype)
            zero = np.zeros((1, hs.states.shape[1]), dtype=hs.states.dtype)
            self.states = torch.as_tensor(np.concatenate([hs.states, zero]), device=device)
            hs.states = None  # one copy in memory (the tensor above); lengths and offsets kept
            self.hidden = hs
            enc = top_layers(enc, int(layers))
        else:
            enc.pooler = None
        self.enc = enc.to(device=device, dtype=self.dtype).train()
        self.head = torch.nn.Linear(enc.config.hidden_size, 1, bias=task.kind == "cls").to(
            device=device, dtype=self.dtype)

    def parameters(self) -> list:
        return [p for p in list(self.enc.parameters()) + list(self.head.parameters())
                if p.requires_grad]

    def modules(self):
        return (self.enc, self.head)

    def score(self, rows):
        import torch
        ctx = (torch.autocast("cuda", dtype=self.amp) if self.amp is not None
               else contextlib.nullcontext())
        if self.states is not None:  # top K layers on the cached states entering them
            index, mask = self.hidden.padded_index(rows)
            m = torch.as_tensor(mask, device=self.device)
            with ctx:
                h = self.enc(inputs_embeds=self.states[torch.as_tensor(index, device=self.device)],
                             attention_mask=m).last_hidden_state
        else:
            L = max(1, int(self.lengths[rows].max()))
            x = torch.as_tensor(self.ids[rows, :L], dtype=torch.long, device=self.device)
            m = (torch.arange(L, device=self.device)[None, :]
                 < torch.as_tensor(self.lengths[rows], device=self.device)[:, None]).long()
            with ctx:
                h = self.enc(input_ids=x, attention_mask=m).last_hidden_state
        mf = m.unsqueeze(-1).to(self.dtype)
        pooled = (h.to(self.dtype) * mf).sum(1) / mf.sum(1).clamp(min=1e-9)
        return self.head(pooled).squeeze(-1)

    def logits(self, items, pair: bool):
        if pair:  # both texts of every pair in one forward pass
            s = self.score(np.concatenate([items[:, 0], items[:, 1]]))
            return s[:len(items)] - s[len(items):]
        return self.score(items)

    def predict(self, items, pair: bool, chunk: int = 128) -> np.ndarray:
        """``P(y=1)`` of ``items``; each distinct text scored once, length-sorted, no grad."""
        import torch
        self.enc.eval()
        u = np.unique(np.asarray(items).ravel())
        u = u[np.argsort(self.lengths[u], kind="stable")]
        r = np.zeros(len(self.lengths), dtype=np.float64)
        with torch.no_grad():
            for i in range(0, len(u), chunk):
                r[u[i:i + chunk]] = self.score(u[i:i + chunk]).double().cpu().numpy()
        self.enc.train()
        z = r[items[:, 0]] - r[items[:, 1]] if pair else r[items]
        from theory.binary import sigmoid
        return sigmoid(z)

    def snapshot(self):
        return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in self.modules()]

    def restore(self, snap) -> None:
        for m, s in zip(self.modules(), snap):
            m.load_state_dict(s)


def lr_factor(step: int, planned: int, schedule: str, warmup: float) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based) of ``planned``:
    ``constant`` 1; ``linear``: ``(step+1)/w`` for the first ``w = ceil(warmup·planned)``
    steps, then linear decay ``(planned − step)/(planned − w + 1)`` (the last step gets
    ``1/(planned − w + 1)``, not 0)."""
    if schedule == "constant":
        return 1.0
    if schedule != "linear":
        raise ValueError(f"schedule must be 'linear' or 'constant', got {schedule!r}")
    w = int(np.ceil(warmup * planned))
    if step < w:
        return (step + 1) / w
    return (planned - step) / max(1, planned - w + 1)


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
                     layers="all", epochs: int = 1, lr: float = 3e-5, schedule: str = "linear",
                     warmup: float = 0.1, dropout: float = 0.0, batch_size: int = 16,
                     max_length: int = 64, max_steps: int = 0, select: str = "last",
                     eval_every: int = 0, patience: int = 0, device: str = "cpu",
                     desc: str = "", log=None) -> tuple[np.ndarray, dict]:
    """Fine-tune (module doc) on the student split's train part; ``(test P(y=1), info)``.

    Args:
        task: an :class:`experiments.data.Task` (``cls``: one text per item; ``pair``: two).
        targets: ``P(y=1)`` per train item of the student split (``split_student`` order).
        val_labels: labels (soft or hard) of the validation slice, thresholded at 0.5.
        loss: ``loss(z, w, progress)`` on logits ``z`` and targets ``w`` (:func:`make_loss`).
        log: ``log(line)`` for progress lines (one per evaluation), or ``None``.

    ``info``: ``val_acc`` (agreement of the kept model with ``val_labels``), ``best_step``,
    ``steps`` (taken), ``steps_planned``, ``stopped_early``, ``evals``, ``device``,
    ``autocast``, ``train_s``, ``eval_s``, ``train_cpu_s`` (process CPU time of the run).
    """
    import torch
    from .data.tasks import split_student
    t_start, c_start = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    device = resolve_device(device)
    model = StrongScorer(task, layers, max_length, dropout, device)
    items_s, _ = task.splits["student"]
    tr, va = split_student(len(items_s), task.info["val_frac"])
    per_epoch = int(np.ceil(len(tr) / batch_size))
    planned = epochs * per_epoch if not max_steps else min(epochs * per_epoch, int(max_steps))
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(min(s, planned - 1), planned, schedule, warmup))
    run = _Run(model, task.kind == "pair", items_s, tr, va, np.asarray(val_labels) > 0.5,
               select, int(eval_every) or per_epoch, patience, desc, log, t_start)
    rng = np.random.default_rng(seed)
    item_len = model.lengths[items_s[tr]].reshape(len(tr), -1).max(1)  # a pair's longer text
    targets = np.asarray(targets, dtype=np.float64)
    while run.step < planned and not run.stopped:
        for sel in _bucketed_batches(rng, item_len, batch_size):
            z = model.logits(items_s[tr[sel]], run.pair)
            w = torch.as_tensor(targets[sel], dtype=z.dtype, device=device)
            obj = loss(z.float() if z.dtype == torch.float16 else z, w, run.step / max(1, planned))
            opt.zero_grad()
            obj.backward()
            opt.step()
            sched.step()
            run.after_step(planned)
            if run.step >= planned or run.stopped:
                break
    return run.finish(task, planned, device, c_start)


class _Run:
    """Evaluation, checkpoint selection and bookkeeping of one :func:`finetune_predict`."""

    def __init__(self, model, pair, items_s, tr, va, yv, select, every, patience, desc, log,
                 t_start):
        if select not in ("last", "best"):
            raise ValueError(f"select must be 'last' or 'best', got {select!r}")
        self.model, self.pair, self.items_s, self.va, self.yv = model, pair, items_s, va, yv
        self.select, self.every, self.patience = select, every, patience
        self.desc, self.log, self.t_start = desc, log, t_start
        self.step = self.evals = self.since_best = 0
        self.stopped, self.t_eval = False, 0.0
        self.best = {"acc": -1.0, "step": 0, "state": None}

    def evaluate(self, planned) -> float:
        te = time.perf_counter()
        acc = float(np.mean((self.model.predict(self.items_s[self.va], self.pair) > 0.5) == self.yv))
        self.t_eval += time.perf_counter() - te
        self.evals += 1
        self.since_best = 0 if acc > self.best["acc"] else self.since_best + 1
        if acc >= self.best["acc"]:  # ties: the later (more trained) checkpoint
            keep = self.select == "best" and self.step != planned
            self.best = {"acc": acc, "step": self.step,
                         "state": self.model.snapshot() if keep else None}
        if self.log is not None:
            self.log(f"{self.desc} step {self.step}/{planned} val_acc {acc:.3f} "
                     f"(best {self.best['acc']:.3f} @ {self.best['step']}) "
                     f"{time.perf_counter() - self.t_start:.0f} s")
        return acc

    def after_step(self, planned) -> None:
        self.step += 1
        if self.step == planned or (self.select == "best" and self.step % self.every == 0):
            acc = self.evaluate(planned)
            if self.select == "last":
                self.best = {"acc": acc, "step": self.step, "state": None}
            if (self.select == "best" and self.patience and self.since_best >= self.patience
                    and self.step < planned):
                self.stopped = True

    def finish(self, task, planned, device, c_start) -> tuple[np.ndarray, dict]:
        if self.best["state"] is not None and self.best["step"] != self.step:
            self.model.restore(self.best["state"])
        t_train = time.perf_counter() - self.t_start
        te = time.perf_counter()
        p = self.model.predict(task.splits["test"][0], self.pair)
        self.t_eval += time.perf_counter() - te
        amp = self.model.amp
        info = {"val_acc": self.best["acc"], "best_step": self.best["step"], "steps": self.step,
                "steps_planned": planned, "stopped_early": self.stopped, "evals": self.evals,
                "device": device, "autocast": str(amp).replace("torch.", "") if amp else "float32",
                "train_s": round(t_train, 3), "eval_s": round(self.t_eval, 3),
                "train_cpu_s": round(time.process_time() - c_start, 3)}
        return p, info
