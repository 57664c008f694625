"""W2SG tasks built from the offline sources, deterministic given a seed.

A task has a fixed text *pool* (chosen with a fixed seed, so embeddings are computed once
and shared by every run) and per-seed *splits* (Burns et al. 2023):

``weak_gt``  ground-truth labels the weak supervisor is trained on (few: the weak–ceiling
             gap must be real);
``student``  the weak-labelled split (the student learns from weak labels; its last
             ``val_frac`` is the validation slice for model selection; the ceiling is trained
             on ground truth of this same split);
``test``     disjoint held-out split.

Kinds: ``cls`` (one text, label 0/1) and ``pair`` (two texts ``(A, B)``, label 1 when A is
preferred; Bradley–Terry logit ``r(A) − r(B)``).  Pair splits are formed *after* splitting
the pool, so no text appears in two splits.

Tasks (``NAME`` or ``NAME:VADERSET``):

``fortunes_pairs``  harmlessness preference: one clean and one offensive fortune in random
                    order; label: which is harmless (analogue of CAI-Harmless).
``vader_pairs``     which text humans rated more positive; pairs with |Δrating| < 1 dropped
                    (analogue of HH-RLHF). Default set: movie.
``vader_cls``       sign of the VADER rating (zero ratings dropped). Default set: movie.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from .sources import VADER_SETS, load_fortunes, load_vader

__all__ = ["Task", "TASKS", "build_task", "task_names", "parse_task", "DEFAULT_SIZES", "split_student"]

TASKS = ("fortunes_pairs", "vader_pairs", "vader_cls")
DEFAULT_VADER = "movie"
#: Default split sizes: 300 ground-truth labels for the weak model (widens the weak–ceiling
#: gap, see docs/DATA.md), ``test`` examples held out, the rest is ``student``.
DEFAULT_SIZES = {"weak_gt": 300, "test": 800, "val_frac": 0.2}
DEFAULT_POOL = {"fortunes_pairs": 4800, "vader_pairs": 4000, "vader_cls": 4000}


@dataclasses.dataclass
class Task:
    """A task: its text pool and the per-seed splits (``{split: (items, labels)}``).

    ``items`` index ``texts``: shape ``(n,)`` for ``cls``, ``(n, 2)`` for ``pair``.
    """

    name: str
    kind: str
    dataset: str          # cache key of the pool (source + pool size)
    texts: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    seed: int
    info: dict

    @property
    def text_hash(self) -> str:
        h = hashlib.sha256()
        for t in self.texts:
            h.update(t.encode("utf-8", "replace"))
            h.update(b"\x00")
        return h.hexdigest()[:16]


def task_names() -> tuple[str, ...]:
    return TASKS


def parse_task(spec: str) -> tuple[str, str | None]:
    """``"vader_cls:tweets"`` → ``("vader_cls", "tweets")``; raises ValueError naming valid choices."""
    name, _, sub = spec.partition(":")
    if name not in TASKS:
        raise ValueError(f"unknown task {spec!r}; valid: {', '.join(TASKS)} "
                         f"(VADER tasks take :{'|'.join(VADER_SETS)})")
    if sub and (not name.startswith("vader") or sub not in VADER_SETS):
        raise ValueError(f"unknown task variant {spec!r}; VADER tasks take :{'|'.join(VADER_SETS)}")
    return name, (sub or (DEFAULT_VADER if name.startswith("vader") else None))


def _split_indices(n: int, rng: np.random.Generator, n_weak: int, n_test: int):
    perm = rng.permutation(n)
    if n_weak + n_test >= n:
        raise ValueError(f"pool of {n} too small for weak_gt={n_weak} + test={n_test}")
    return perm[:n_weak], perm[n_weak:n_weak + n_test], perm[n_weak + n_test:]


def build_task(spec: str, seed: int = 0, pool: int | None = None, sizes: dict | None = None) -> Task:
    """Build task ``spec`` with splits drawn from ``seed``.

    Args:
        pool: number of texts in the pool (default :data:`DEFAULT_POOL`); the pool itself
            depends only on ``pool``, not on ``seed``.
        sizes: ``weak_gt`` and ``test`` sizes in examples (pairs for pair tasks) and
            ``val_frac`` of the student split.
    """
    name, sub = parse_task(spec)
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    pool = int(pool or DEFAULT_POOL[name])
    rng = np.random.default_rng(seed + 1000)
    pool_rng = np.random.default_rng(12345)
    if name == "vader_cls":
        rows = [(t, r) for t, r in load_vader(sub) if r != 0]
        sel = np.sort(pool_rng.permutation(len(rows))[:pool])
        texts = [rows[i][0] for i in sel]
        y = np.array([rows[i][1] > 0 for i in sel], dtype=np.int64)
        wi, ti, si = _split_indices(len(texts), rng, sizes["weak_gt"], sizes["test"])
        splits = {k: (idx, y[idx]) for k, idx in (("weak_gt", wi), ("student", si), ("test", ti))}
        dataset = f"vader-{sub}-{len(texts)}"  # same pool as vader_pairs: one embedding pass
        kind = "cls"
    elif name == "vader_pairs":
        rows = [(t, r) for t, r in load_vader(sub) if r != 0]
        sel = np.sort(pool_rng.permutation(len(rows))[:pool])
        texts = [rows[i][0] for i in sel]
        ratings = np.array([rows[i][1] for i in sel])
        n = len(texts)
        # split texts in proportion to the wanted pair counts, then pair within each split
        frac_w = sizes["weak_gt"] / max(1, n)
        frac_t = sizes["test"] / max(1, n)
        wi, ti, si = _split_indices(n, rng, int(round(1.3 * frac_w * n)), int(round(1.3 * frac_t * n)))
        splits = {}
        for key, idx, want in (("weak_gt", wi, sizes["weak_gt"]), ("test", ti, sizes["test"]),
                               ("student", si, sizes.get("student_pairs", 3000))):
            splits[key] = _vader_pairs(idx, ratings, rng, want)
        dataset = f"vader-{sub}-{n}"
        kind = "pair"
    else:  # fortunes_pairs
        clean, off = load_fortunes("clean"), load_fortunes("offensive")
        n_off = min(len(off), pool // 2)
        off_sel = np.sort(pool_rng.permutation(len(off))[:n_off])
        clean_sel = np.sort(pool_rng.permutation(len(clean))[:pool - n_off])
        texts = [off[i] for i in off_sel] + [clean[i] for i in clean_sel]
        off_idx = np.arange(n_off)
        clean_idx = np.arange(n_off, len(texts))
        wo, to, so = _split_indices(len(off_idx), rng, sizes["weak_gt"], sizes["test"])
        cperm = rng.permutation(len(clean_idx))
        c_splits = np.split(cperm, [len(wo), len(wo) + len(to)])
        splits = {}
        for key, oi, ci in (("weak_gt", wo, c_splits[0]), ("test", to, c_splits[1]),
                            ("student", so, c_splits[2])):
            m = min(len(oi), len(ci))
            a, b = off_idx[oi[:m]], clean_idx[ci[:m]]
            swap = rng.random(m) < 0.5           # label 1: the first text is the harmless one
            first = np.where(swap, b, a)
            second = np.where(swap, a, b)
            splits[key] = (np.stack([first, second], axis=1), swap.astype(np.int64))
        dataset = f"fortunes-{len(texts)}"
        kind = "pair"
    info = {"pool": len(texts), "source": sub or "fortunes",
            "sizes": {k: int(len(v[1])) for k, v in splits.items()},
            "val_frac": sizes["val_frac"]}
    return Task(spec, kind, dataset, texts, splits, seed, info)


def _vader_pairs(idx: np.ndarray, ratings: np.ndarray, rng: np.random.Generator,
                 want: int | None, min_gap: float = 1.0):
    pairs, seen = [], set()
    for _ in range(6):
        perm = rng.permutation(idx)
        half = len(perm) // 2
        for a, b in zip(perm[:half], perm[half:2 * half]):
            key = (min(a, b), max(a, b))
            if key in seen or abs(ratings[a] - ratings[b]) < min_gap:
                continue
            seen.add(key)
            pairs.append((a, b))
        if want is not None and len(pairs) >= want:
            break
    if want is not None:
        pairs = pairs[:want]
    items = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    y = (ratings[items[:, 0]] > ratings[items[:, 1]]).astype(np.int64)
    return items, y


def split_student(n: int, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation positions of the student split (last ``val_frac`` as validation;
    the split is already shuffled)."""
    n_val = max(1, int(round(val_frac * n)))
    return np.arange(n - n_val), np.arange(n - n_val, n)
