"""The paper's LLM path: GPT-2-family weak/strong models on HH-RLHF / CAI-Harmless pairs.

For machines with a model hub (and ideally a GPU).  The same pipeline as the offline
default (:mod:`experiments.pipeline`): the frozen language model is the representation
``h_s`` (last non-padding token's final hidden state), a linear reward head scores each
text, and a preference pair's logit is ``r(chosen-or-rejected A) − r(B)`` (Bradley–Terry).

* Models: any causal/encoder LM loadable by ``transformers.AutoModel`` (``gpt2``,
  ``gpt2-medium``, ... or a local folder); ``device="cuda"`` uses bfloat16 when supported.
* Data: ``Anthropic/hh-rlhf`` (optionally ``data_dir="harmless-base"``) or
  ``HuggingFaceH4/cai-conversation-harmless`` through ``datasets`` (imported lazily; not a
  dependency of the offline default), or a local JSONL file with ``{"chosen", "rejected"}``.

Tested offline with a tiny GPT-2 built from a config, a locally trained tokenizer and a
JSONL fixture (``tests/experiments/test_llm.py``).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .device import resolve_device

__all__ = ["HUB_DATASETS", "load_pairs", "load_jsonl_pairs", "load_lm", "lm_features",
           "pair_task", "run_llm_sweep", "resolve_device"]

HUB_DATASETS = {
    "hh-rlhf": ("Anthropic/hh-rlhf", None),
    "hh-rlhf-harmless": ("Anthropic/hh-rlhf", "harmless-base"),
    "cai-harmless": ("HuggingFaceH4/cai-conversation-harmless", None),
}


def load_jsonl_pairs(path: str | os.PathLike, n: int | None = None) -> list[tuple[str, str]]:
    """``[(chosen, rejected)]`` from a JSONL file with those two string fields.

    Only a regular file is opened (:func:`w2sg.input_files.open_input`: a FIFO or a device
    is refused, never read); a line that is not a JSON object with both string fields raises
    ``ValueError`` naming the file and the line."""
    import io
    from w2sg.input_files import open_input
    pairs = []
    need = "a JSON object with string fields 'chosen' and 'rejected'"
    with open_input(path, "--llm-data") as raw, io.TextIOWrapper(raw, encoding="utf-8") as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not (isinstance(row, dict) and isinstance(row.get("chosen"), str)
                        and isinstance(row.get("rejected"), str)):
                    raise ValueError("a field is missing or not a string" if isinstance(row, dict)
                                     else f"a JSON {type(row).__name__}, not an object")
                pairs.append((row["chosen"], row["rejected"]))
                if n and len(pairs) >= n:
                    break
        except UnicodeDecodeError:
            after = f" after line {lineno}" if lineno else ""
            raise ValueError(f"{path}: not valid JSONL preference data (not UTF-8 text{after})") from None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, a nesting bomb, a bad row
            reason = getattr(exc, "msg", None) or str(exc).splitlines()[0] or type(exc).__name__
            raise ValueError(f"{path}:{lineno}: not valid JSONL preference data "
                             f"(each line {need}): {reason}") from None
    return pairs


def load_pairs(source: str, n: int | None = None, split: str = "train") -> list[tuple[str, str]]:
    """Preference pairs from a local ``.jsonl`` file or a hub dataset (:data:`HUB_DATASETS` key or id)."""
    if os.path.exists(source):
        return load_jsonl_pairs(source, n)
    try:
        import datasets
    except ModuleNotFoundError:
        raise ValueError(f"{source!r} is not a local file and the `datasets` library is not "
                         f"installed (pip install 'w2sg[llm]'); hub datasets: {', '.join(HUB_DATASETS)}") from None
    repo, data_dir = HUB_DATASETS.get(source, (source, None))
    ds = datasets.load_dataset(repo, data_dir=data_dir, split=split)
    cols = set(ds.column_names)
    if not {"chosen", "rejected"} <= cols:
        raise ValueError(f"dataset {repo!r} has columns {sorted(cols)}, not chosen/rejected")
    pairs = []
    for row in ds:
        c, r = row["chosen"], row["rejected"]
        if isinstance(c, list):  # chat format: join the messages
            c = "\n".join(m.get("content", "") for m in c)
            r = "\n".join(m.get("content", "") for m in r)
        pairs.append((c, r))
        if n and len(pairs) >= n:
            break
    return pairs


def load_lm(name_or_path: str, device: str = "cpu", bf16: bool | None = None):
    """``(model, tokenizer)`` in eval mode; pad token = eos if missing; bf16 on CUDA when supported."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(name_or_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if bf16 is None:
        bf16 = device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    try:
        model = AutoModel.from_pretrained(name_or_path, dtype=dtype)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        model = AutoModel.from_pretrained(name_or_path, torch_dtype=dtype)
    model = model.to(device).eval()
    return model, tok


def lm_features(model, tok, texts: list[str], max_length: int = 256, batch_size: int = 16,
                device: str = "cpu", quiet: bool = True) -> np.ndarray:
    """Final hidden state at each text's last non-padding token (float32, ``(n, d)``)."""
    import torch
    from tqdm.auto import tqdm
    tok.padding_side = "right"
    out = []
    with torch.inference_mode():
        for i in tqdm(range(0, len(texts), batch_size), disable=quiet, desc="LM features"):
            enc = tok(texts[i:i + batch_size], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt").to(device)
            hs = model(**enc).last_hidden_state
            last = enc["attention_mask"].sum(1) - 1
            out.append(hs[torch.arange(hs.shape[0], device=hs.device), last].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.hidden_size), np.float32)


def pair_task(pairs: list[tuple[str, str]], seed: int, n_weak: int, n_test: int,
              val_frac: float = 0.2, name: str = "llm-pairs"):
    """A pair :class:`experiments.data.Task` from ``(chosen, rejected)``: random order,
    label 1 when the first text is the chosen one; splits weak_gt / test / student."""
    from .data.tasks import Task
    rng = np.random.default_rng(seed + 1000)
    texts = [t for p in pairs for t in p]
    n = len(pairs)
    if n_weak + n_test >= n:
        raise ValueError(f"{n} pairs are too few for weak_gt={n_weak} + test={n_test}")
    swap = rng.random(n) < 0.5
    chosen, rejected = np.arange(n) * 2, np.arange(n) * 2 + 1
    items = np.stack([np.where(swap, rejected, chosen), np.where(swap, chosen, rejected)], 1)
    y = (~swap).astype(np.int64)
    perm = rng.permutation(n)
    parts = {"weak_gt": perm[:n_weak], "test": perm[n_weak:n_weak + n_test],
             "student": perm[n_weak + n_test:]}
    splits = {k: (items[v], y[v]) for k, v in parts.items()}
    info = {"pool": len(texts), "source": name, "val_frac": val_frac,
            "sizes": {k: int(len(v)) for k, v in parts.items()}}
    return Task(name, "pair", name, texts, splits, seed, info)


def run_llm_sweep(weak: str, strong: str, data: str, losses, noise, seeds: int = 1,
                  root=None, device: str | None = None, n: int | None = 2000, n_weak: int | None = None,
                  n_test: int | None = None, max_length: int = 256, quiet: bool = True,
                  train: dict | None = None) -> list:
    """The W2SG sweep with GPT-2-family models; one :class:`w2sg.records.LlmRunRecord` per run under
    ``<root>/runs/llm/<weak>__<strong>/<loss>/noise<P>-seed<S>-<hash>.json`` (resumes)."""
    from w2sg.pgr import pgr
    from w2sg.records import (LlmRunRecord, RecordError, RunTimings, config_hash, move_aside,
                              read_record, results_root, student_metrics, write_record)
    from .pipeline import STUDENT_TRAIN, TrainConfig, reference_outputs, train_student
    from .runner import baselines_from, slug
    device = resolve_device(device)
    pairs = load_pairs(data, n)
    n_weak = n_weak or max(2, len(pairs) // 5)
    n_test = n_test or max(2, len(pairs) // 4)
    cfg_train = {**STUDENT_TRAIN.as_config(), **(train or {})}
    feats = {}
    for name in dict.fromkeys([weak, strong]):
        model, tok = load_lm(name, device)
        texts = [t for p in pairs for t in p]
        feats[name] = lm_features(model, tok, texts, max_length, device=device, quiet=quiet)
        del model
    root = results_root(root)
    records = []
    for seed in range(seeds):
        task = pair_task(pairs, seed, n_weak, n_test, name=f"llm:{Path(data).name}")
        arrays, ref = reference_outputs(task, feats[strong], feats[weak], seed, TrainConfig(**cfg_train))
        for loss in losses:
            for p in noise:
                config = {"kind": "llm-run", "weak": weak, "strong": strong, "data": data, "n": len(pairs),
                          "loss": loss, "noise": float(p), "seed": seed, "device": device,
                          "max_length": max_length, "train": cfg_train}
                path = (root / "runs" / "llm" / f"{slug(Path(weak).name)}__{slug(Path(strong).name)}"
                        / slug(loss) / f"noise{float(p):g}-seed{seed}-{config_hash(config)}.json")
                if path.exists():
                    try:
                        old = read_record(path, LlmRunRecord)
                        if old.config_hash != config_hash(config):
                            raise RecordError(path, "config_hash", "is not this config's")
                        continue
                    except RecordError as exc:  # never trusted unchecked: set aside, redo
                        import sys
                        print(f"[w2sg run] invalid record, redoing it: {exc}; moved aside: "
                              f"{move_aside(path)}", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                m, info = train_student(task, feats[strong], arrays["weak_student"], arrays["weak_test"],
                                        loss, float(p), seed, TrainConfig(**cfg_train))
                base = baselines_from(ref)
                record = LlmRunRecord(
                    config=config, config_hash=config_hash(config), task=task.name, weak=weak,
                    strong=strong, data=data, loss=loss, noise=float(p), seed=seed,
                    metrics=student_metrics(m, pgr(m["acc"], base.weak.acc, base.ceiling.acc)),
                    reference=base, ceiling_split=ref["ceiling_split"], splits=task.info,
                    train_info={k: v for k, v in info.items() if k != "train_s"},
                    timings=RunTimings(train_s=info["train_s"], total_s=time.perf_counter() - t0))
                write_record(path, record)
                records.append(record)
    return records
