"""Record readers: the only place that knows the schemas of the stored records.

Every reader returns flat rows (plain dicts with fixed keys) and the relative paths of
the records it used, so the figures can say what they were made from.  Readers are
defensive: a record that lacks what a figure needs is skipped (and counted), never fatal.

Layout under the results root (see :mod:`experiments.records`)::

    runs/    one JSON record per W2S training run   (``w2sg run``)
    checks/  numerics records, one per claim + counterexamples   (``w2sg check``)
    bench/   cost per training step                 (``w2sg bench``)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

__all__ = ["RunRow", "FINETUNED_SUFFIX", "read_runs", "read_checks", "read_counterexamples", "read_bench", "read_kernel_ratios",
           "ReadResult"]

RunRow = dict  # keys: task, pair, loss, noise, seed, acc, weak_acc, ceiling_acc, pgr, finetune, source

#: Appended to the weak→strong pair name of fine-tuned runs (records with a ``finetune``
#: config key), so every figure groups them apart from the frozen-encoder heads.
FINETUNED_SUFFIX = "(fine-tuned)"


class ReadResult(list):
    """A list of rows with ``.sources`` (relative record paths) and ``.skipped`` (count)."""

    def __init__(self, rows=(), sources=(), skipped=0, folder=None):
        super().__init__(rows)
        self.sources = list(sources)
        self.skipped = skipped
        self.folder = folder


# ----------------------------------------------------------------------------- helpers
def _json_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return [p for p in sorted(folder.rglob("*.json"))
            if not p.name.startswith(".") and not any(part.startswith(".") for part in p.relative_to(folder).parts)]


def _load(path: Path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _get(rec: Any, *paths: str, default=None):
    """First present value among dotted ``paths`` (``"metrics.w2s.acc"``)."""
    for path in paths:
        cur = rec
        ok = True
        for key in path.split("."):
            if isinstance(cur, dict) and key in cur:
                cur = cur[key]
            else:
                ok = False
                break
        if ok and cur is not None:
            return cur
    return default


def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- runs
_CFG = ("config", "cfg", "spec", "run")


def _cfg(rec, key, *alts):
    paths = [key, *alts]
    out = []
    for p in paths:
        out.append(p)
        out.extend(f"{c}.{p}" for c in _CFG)
    return _get(rec, *out)


def _model_name(x) -> str | None:
    if x is None:
        return None
    if isinstance(x, dict):
        return str(_get(x, "name", "model", "id", default=json.dumps(x, sort_keys=True)))
    return str(x)


def _run_row(rec: dict, source: str) -> RunRow | None:
    if not isinstance(rec, dict):
        return None
    if _get(rec, "kind") == "reference":
        return "reference"
    if _get(rec, "status", default="ok") not in ("ok", "done", "finished", "complete", "completed"):
        return None
    loss = _cfg(rec, "loss", "loss_name")
    if isinstance(loss, dict):
        loss = _get(loss, "name")
    task = _cfg(rec, "task", "dataset", "task_name")
    if isinstance(task, dict):
        task = _get(task, "name")
    acc = _num(_get(rec, "metrics.w2s.acc", "metrics.student.acc", "metrics.strong.acc",
                    "w2s.acc", "student.acc", "metrics.acc", "metrics.test_acc",
                    "metrics.w2s_acc", "acc_w2s", "test_acc", "acc"))
    if loss is None or task is None or acc is None:
        return None
    weak_model = _model_name(_cfg(rec, "weak_model", "weak", "pair.weak", "models.weak"))
    strong_model = _model_name(_cfg(rec, "strong_model", "strong", "pair.strong", "models.strong"))
    pair = _cfg(rec, "pair_name")
    if pair is None:
        pair = _cfg(rec, "pair")
        if not isinstance(pair, str):
            pair = None
    if pair is None:
        pair = f"{weak_model or 'weak'}→{strong_model or 'strong'}"
    finetuned = bool(_cfg(rec, "finetune"))
    if finetuned:  # a fine-tuned student is another experiment: its own panel / group
        pair = f"{pair} {FINETUNED_SUFFIX}"
    weak_acc = _num(_get(rec, "metrics.weak.acc", "reference.weak.acc", "weak.acc",
                         "metrics.weak_acc", "weak_acc", "acc_weak"))
    ceil_acc = _num(_get(rec, "metrics.ceiling.acc", "reference.ceiling.acc", "ceiling.acc",
                         "metrics.ceiling_acc", "ceiling_acc", "acc_ceiling", "metrics.strong_ceiling.acc"))
    pgr = _num(_get(rec, "metrics.pgr", "metrics.w2s.pgr", "metrics.student.pgr", "pgr",
                    "w2s.pgr"))
    if pgr is None and weak_acc is not None and ceil_acc is not None and abs(ceil_acc - weak_acc) > 1e-12:
        pgr = (acc - weak_acc) / (ceil_acc - weak_acc)
    noise = _num(_cfg(rec, "noise", "label_noise", "noise_level"))
    seed = _cfg(rec, "seed")
    return {"task": str(task), "pair": str(pair), "loss": str(loss),
            "noise": 0.0 if noise is None else noise, "seed": seed, "acc": acc,
            "weak_acc": weak_acc, "ceiling_acc": ceil_acc, "pgr": pgr,
            "train_s": _num(_get(rec, "timings.train_s", "metrics.train_s", "train_info.train_s",
                                 "timings.student_s")),
            "steps": _num(_cfg(rec, "train.steps", "steps")),
            "finetune": finetuned,
            "source": source}


def read_runs(root: str | Path) -> ReadResult:
    """One row per finished W2S training run under ``<root>/runs``."""
    root = Path(root)
    folder = root / "runs"
    rows, sources, skipped = [], [], 0
    for p in _json_files(folder):
        rec = _load(p)
        recs = rec if isinstance(rec, list) else [rec]
        for r in recs:
            row = _run_row(r, _rel(p, root)) if isinstance(r, dict) else None
            if row == "reference":  # weak/ceiling record: its numbers are copied into each run
                continue
            if row is None:
                skipped += 1
                continue
            rows.append(row)
            sources.append(row["source"])
    return ReadResult(rows, dict.fromkeys(sources), skipped, folder)


# ----------------------------------------------------------------------------- checks
def _claim_rows(rec) -> Iterable[dict]:
    if isinstance(rec, list):
        for r in rec:
            yield from _claim_rows(r)
    elif isinstance(rec, dict):
        if "claim" in rec and isinstance(rec.get("claim"), str) and ("details" in rec or "status" in rec):
            yield rec
        for key in ("rows", "results", "checks", "claims"):
            if isinstance(rec.get(key), (list, dict)):
                val = rec[key]
                yield from _claim_rows(list(val.values()) if isinstance(val, dict) else val)


def read_checks(root: str | Path) -> dict[str, dict]:
    """The newest check row per claim under ``<root>/checks``:
    ``{"C4": {"claim", "status", "worst_slack", "instances", "details", "source", "quick"}}``.

    Full runs are preferred over quick ones when both exist.
    """
    root = Path(root)
    folder = root / "checks"
    best: dict[str, tuple] = {}
    for p in _json_files(folder):
        if "counterexample" in str(p.relative_to(folder)).lower():
            continue
        rec = _load(p)
        quick_rec = (bool(_get(rec, "quick", "config.quick", default=False))
                     or _get(rec, "mode") == "quick") if isinstance(rec, dict) else False
        written = str(_get(rec, "written_at", default="")) if isinstance(rec, dict) else ""
        for row in _claim_rows(rec):
            claim = row["claim"].upper()
            quick = bool(row.get("quick", quick_rec))
            key = (bool(row.get("details")), not quick, str(row.get("written_at", written)), str(p))
            if claim not in best or key > best[claim][0]:
                best[claim] = (key, dict(row, claim=claim, quick=quick, source=_rel(p, root),
                                         details=row.get("details") or {}))
    return {c: v[1] for c, v in sorted(best.items())}


def read_counterexamples(root: str | Path) -> ReadResult:
    """Stored C5 counterexamples: rows ``{generator, gain, misfit, seed, source}`` where
    ``gain = E KL(F*‖F_w) − E KL(F*‖F̂_sw)`` and ``misfit = E KL(F̂_sw‖F_w)`` (the
    inequality says gain ≥ misfit)."""
    root = Path(root)
    folder = root / "checks"
    rows, sources = [], []
    for p in _json_files(folder):
        if "counterexample" not in str(p.relative_to(folder)).lower():
            continue
        rec = _load(p)
        for r in (rec if isinstance(rec, list) else [rec]):
            row = _c5_point(r)
            if row is not None:
                row["counterexample"] = True  # stored because the search found it failing
                row["source"] = _rel(p, root)
                rows.append(row)
                sources.append(row["source"])
    return ReadResult(rows, dict.fromkeys(sources), 0, folder)


def _c5_point(r) -> dict | None:
    if not isinstance(r, dict):
        return None
    gen = _get(r, "generator", "gen", "loss", "f", "name")
    if isinstance(gen, dict):
        gen = _get(gen, "name", "text")
    gain = _num(_get(r, "gain", "values.gain", "lhs_gain"))
    misfit = _num(_get(r, "misfit", "values.misfit", "disagreement"))
    if gain is None and misfit is None:
        lhs = _num(_get(r, "kl_star_sw", "err_sw_kl", "values.kl_star_sw", "kl_truth_strong"))
        w = _num(_get(r, "kl_star_w", "values.kl_star_w", "kl_truth_weak"))
        m = _num(_get(r, "kl_sw_w", "values.kl_sw_w", "kl_strong_weak"))
        if None not in (lhs, w, m):
            gain, misfit = w - lhs, m
    variant = _get(r, "variant", default="kl")
    if (gain is None or misfit is None) and isinstance(r.get("instance"), dict) and gen is not None:
        g = _c5_gaps(str(gen), r["instance"], variant)
        if g is not None:
            gain, misfit = g
    if gen is None or gain is None or misfit is None:
        return None
    return {"variant": str(variant), "generator": str(gen), "gain": gain, "misfit": misfit,
            "seed": _get(r, "seed", "search_seed"), "counterexample": bool(_get(r, "counterexample", default=gain < misfit))}


def _c5_gaps(gen: str, inst: dict, variant: str):
    """``(gain, misfit)`` of a stored C5 instance (``w2sg check`` schema: ``pi, P, lam_star, w``),
    recomputed with :func:`numerics.checks.c5.gaps` (an exact projection; milliseconds)."""
    try:
        from numerics.checks.c5 import gaps
        from theory import get_generator
        g = gaps(get_generator(gen), inst["pi"], inst["P"], inst["lam_star"], inst["w"])[variant]
    except Exception:  # noqa: BLE001 — an unreadable record is skipped, not fatal
        return None
    # the claim: lhs ≤ rhs, lhs = D(F*‖F̂), rhs = D(F*‖F_w) − D(F̂‖F_w)
    # gain in divergence to the truth = D(F*‖F_w) − D(F*‖F̂) = rhs + misfit − lhs
    return g["rhs"] + g["misfit"] - g["lhs"], g["misfit"]


def _flatten_by_generator(items):
    """``{generator: [row, ...]}`` → ``[row + {generator}, ...]``; lists pass through."""
    if not isinstance(items, dict):
        return items
    return [dict(it, generator=it.get("generator", gname))
            for gname, lst in items.items()
            for it in (lst if isinstance(lst, list) else [lst]) if isinstance(it, dict)]


def c4_points(check: dict) -> list[dict]:
    """C4 instances from a check row: ``{generator, err_w, err_sw, radius, setting}``
    (``radius = L̆_f⁻¹(R_f)``; the claim is ``|err_sw − err_w| ≤ radius``)."""
    d = check.get("details") or {}
    pts = []
    items = _get(d, "instances", "points", "fits", "rows", default=None)
    items = _flatten_by_generator(items)
    if isinstance(items, list):
        for it in items:
            if not isinstance(it, dict):
                continue
            ew = _num(_get(it, "err_w", "err_weak", "weak_err"))
            es = _num(_get(it, "err_sw", "err_strong", "strong_err"))
            rad = _num(_get(it, "radius", "bound", "tv_bound", "tv_inverse", "interval_half_width"))
            gen = _get(it, "generator", "gen", "f", "loss")
            if None in (ew, es, rad):
                continue
            pts.append({"generator": str(gen), "err_w": ew, "err_sw": es, "radius": rad,
                        "setting": str(_get(it, "setting", "world", "kind", default="synthetic"))})
    return pts


def c5_points(check: dict) -> list[dict]:
    """C5 instances (not only counterexamples) from a check row, as in
    :func:`read_counterexamples`."""
    d = check.get("details") or {}
    items = _get(d, "instances", "points", "scatter", default=None)
    out = []
    items = _flatten_by_generator(items)
    for it in items or []:
        row = _c5_point(it)
        if row is not None:
            out.append(row)
    return out


def c6_points(check: dict) -> list[dict]:
    """C6 per ``(generator, n)``: ``{generator, n, excess_mean, excess_q, bound, coverage, delta}``."""
    d = check.get("details") or {}
    items = _get(d, "per_n", "coverage", "curves", "rows", "instances", "points", default=None)
    out = []
    items = _flatten_by_generator(items)
    delta = _num(_get(d, "delta", default=None))
    for it in items or []:
        if not isinstance(it, dict):
            continue
        n = _num(_get(it, "n"))
        ex = _num(_get(it, "excess_mean", "mean_excess", "excess_median", "excess", "excess_risk"))
        bound = _num(_get(it, "bound", "bound_value", "excess_bound"))
        cov = _num(_get(it, "coverage", "fraction_held", "holds_fraction"))
        if n is None or ex is None:
            continue
        out.append({"generator": str(_get(it, "generator", "gen", "f", default="?")), "n": n,
                    "excess_mean": ex,
                    "excess_q": _num(_get(it, "excess_quantile", "excess_q", "excess_q95",
                                          "quantile", "excess_max")),
                    "bound": bound, "coverage": cov,
                    "delta": _num(_get(it, "delta", default=delta))})
    return out


# ----------------------------------------------------------------------------- bench
def read_bench(root: str | Path) -> ReadResult:
    """Training-cost rows ``{loss, step_ms, peak_mb, device, source}`` from ``<root>/bench``.

    Schema of a ``w2sg bench`` record (:mod:`experiments.bench`): ``training.rows`` holds one
    row per loss with ``epoch_ms_wall`` / ``epoch_ms_cpu`` (one epoch = one full-batch step of
    the head trainer) and ``peak_mib``.  Wall time is used: the losses are timed interleaved,
    so load affects them alike, while process CPU time also counts idle-spinning pool threads
    (seen here: CE's first epochs charged twice their wall time).  The newest record wins.
    """
    root = Path(root)
    folder = root / "bench"
    for p in sorted(_json_files(folder), key=lambda q: q.name, reverse=True):
        rec = _load(p)
        rows = (rec.get("training") or {}).get("rows") if isinstance(rec, dict) else None
        if not rows:
            continue
        device = str((rec.get("machine") or {}).get("device", "cpu"))
        out = [{"loss": str(r["loss"]), "step_ms": float(r["epoch_ms_wall"]),
                "peak_mb": _num(r.get("peak_mib")), "device": device, "source": _rel(p, root)}
               for r in rows if "loss" in r and _num(r.get("epoch_ms_wall")) is not None]
        return ReadResult(out, {_rel(p, root): None}, len(rows) - len(out), folder)
    return ReadResult([], {}, 0, folder)


def read_kernel_ratios(root: str | Path) -> ReadResult:
    """Loss-kernel rows ``{loss, shape, variant, ratio, ms, source}`` (time ÷ CE, forward +
    backward, median CPU time) from the newest ``w2sg bench`` record with ``kernels.shapes``."""
    root = Path(root)
    folder = root / "bench"
    for p in sorted(_json_files(folder), key=lambda q: q.name, reverse=True):
        rec = _load(p)
        shapes = (rec.get("kernels") or {}).get("shapes") if isinstance(rec, dict) else None
        if not shapes:
            continue
        out = [{"loss": str(r["loss"]), "shape": f"{sh['n']}×{sh['k']}", "variant": r.get("variant", ""),
                "ratio": float(r["ratio_cpu"]), "ms": float(r["cpu"]["median_ms"]), "source": _rel(p, root)}
               for sh in shapes for r in sh.get("rows", []) if "ratio_cpu" in r]
        return ReadResult(out, {_rel(p, root): None}, 0, folder)
    return ReadResult([], {}, 0, folder)


def finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)
