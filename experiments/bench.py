"""Benchmarks (``w2sg bench``): loss kernels against cross-entropy, training cost, scaling,
tight-curve throughput.  Benchmarks measure; they never pass or fail.

Method
------
* **Time.**  Every measured call is repeated ``reps`` times, *interleaved* (one call of
  every variant per repetition, the order rotated each repetition), so slow phases of a
  shared machine hit all variants alike.  Each call records wall time
  (``time.perf_counter``) and process CPU time (``time.process_time``, all threads of this
  process, page faults included).  Reported: median and inter-quartile range (IQR) of
  both, and the ratio of medians to cross-entropy, always on **one clock**
  (:func:`ratios_to_ce`: wall ÷ CE's wall, CPU ÷ CE's CPU; never mixed).  The kernel tables'
  headline ratio uses CPU time, which other processes on the machine do not inflate; the
  training table leads with wall time, which the cost figure shows (process CPU time also
  counts idle-spinning pool threads: seen charging CE's epochs twice their wall time);
  both ratios are recorded for every row.
  torch runs single-threaded by default (``threads``), as a sweep worker does.
* **Peak memory (CPU).**  One extra call under ``torch.profiler`` with
  ``profile_memory=True``: the ``[memory]`` events of its trace carry the allocator's
  running total, and the peak is ``max(total) − total before the call`` (bytes allocated
  by torch's CPU allocator during the call: activations, saved tensors, gradients).  The
  torch kernel's reusable workspace (:data:`fdiv_torch.fused.WORKSPACE`) and the C kernel's
  saved-gradient buffers (:data:`fdiv_torch.c_kernel.GRADIENTS`) live across calls and are
  reported separately (``workspace_mib``, ``c_gradients_mib``).
* **Allocator.**  :func:`steady_allocator` keeps freed memory in the process (glibc), so
  that page faults of freshly mapped memory do not land on some calls at random; the
  record's ``machine.allocator`` says what was set.
* **Kernels.**  ``fdiv_loss`` forward + backward (gradient w.r.t. the logits) for every
  named generator and a typed one, against ``torch.nn.functional.cross_entropy`` with the
  same soft labels and logits: the default path (``fused``: the generated C kernel
  :mod:`fdiv_torch.c_kernel` where a C compiler builds it, else the generated torch
  kernel), the generated torch kernel (``torch``, ``fused="torch"``, measured when the
  default is C), the reference path (``fused=False``: autograd through the generated
  ``g``, weak labels validated every call) and optionally ``torch.compile`` of the torch
  kernel (``fused="compile"``) and of cross-entropy.  Every call takes the next of 9
  distinct weak-label tensors (``fresh_weak``; more than the weak-label cache of
  :mod:`experiments.losses` holds), as minibatch training does.  The CPU goal (every named
  generator ≤ 1.5× CE on the default path, :func:`cpu_goal`) is stated under the tables.
* **GPU** (``--device cuda``): :mod:`experiments.bench_cuda` (CUDA events,
  ``torch.cuda`` peak memory, CE and Liger-Kernel side by side).
* **Training.**  ``experiments.pipeline.train_head`` (full-batch Adam: one step is one
  epoch over the training set) on random features; per-epoch time and peak memory for
  each loss, the auxiliary-confidence baseline and an ensemble of weak supervisors.
* **Scaling.**  Head-training time against the number of examples (least-squares line,
  R²), and a quick sweep's wall time with 1 and 2 local workers.
* **Curve.**  ``theory.joint_range.tight_curve`` points per second (cold: first call,
  including code generation; warm: later calls).
"""
from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from theory import NAMED

__all__ = ["GENERATORS", "TYPED", "SHAPES", "WHAT", "stats", "peak_memory_mib", "bench_kernels", "cpu_goal",
           "bench_training", "training_rows", "ratios_to_ce",
           "bench_scaling", "bench_sweep_workers", "bench_curve", "run_bench", "steady_allocator",
           "format_tables"]

#: Every named generator (:data:`theory.NAMED`).
GENERATORS: tuple[str, ...] = tuple(NAMED)
#: Typed generators (expressions in ``t``) measured alongside the named ones.
TYPED: tuple[str, ...] = ("(t-1)**2/(t+1)",)
SHAPES: tuple[tuple[int, int], ...] = ((65536, 2), (4096, 1000))
WHAT: tuple[str, ...] = ("kernels", "training", "scaling", "curve")


# ----------------------------------------------------------------------------- measuring
def stats(values) -> dict[str, float]:
    """Median, quartiles, IQR and min of a sample (seconds → milliseconds)."""
    v = np.asarray(values, dtype=float) * 1e3
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median_ms": float(med), "q1_ms": float(q1), "q3_ms": float(q3),
            "iqr_ms": float(q3 - q1), "min_ms": float(v.min()), "n": int(v.size)}


def _interleaved(fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1) -> dict[str, dict]:
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            c0, w0 = time.process_time(), time.perf_counter()
            fns[name]()
            w1, c1 = time.perf_counter(), time.process_time()
            wall[name].append(w1 - w0)
            cpu[name].append(c1 - c0)
    return {n: {"wall": stats(wall[n]), "cpu": stats(cpu[n])} for n in names}


def ratios_to_ce(timings: dict[str, dict], ce: str = "ce") -> dict[str, dict[str, float]]:
    """Per variant, its median time over ``ce``'s on the **same clock**:
    ``{"wall": wall / CE wall, "cpu": CPU / CE CPU}`` (``timings`` as :func:`_interleaved`
    returns them).  Wall time and process CPU time are never mixed: CPU time also counts
    idle-spinning pool threads, so it can be twice the wall time of the same call."""
    base = timings[ce]
    return {name: {clock: t[clock]["median_ms"] / base[clock]["median_ms"] for clock in ("wall", "cpu")}
            for name, t in timings.items()}


@contextlib.contextmanager
def _quiet_native_stderr():
    """File descriptor 2 to /dev/null for the duration: the profiler's C++ side (kineto)
    prints a ``USDT: … profiler_start/stop`` line per use, two per measured variant."""
    import sys
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mib(fn: Callable[[], Any]) -> float | None:
    """Peak bytes (MiB) torch's CPU allocator holds during one call of ``fn`` beyond what it
    held before (``torch.profiler`` memory events; see the module doc).  None if unavailable."""
    import torch
    try:
        with _quiet_native_stderr(), torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            prof.export_chrome_trace(path)
            with open(path) as fh:
                trace = json.load(fh)
        finally:
            os.unlink(path)
    except Exception:  # noqa: BLE001 - the profiler is optional here
        return None
    mem = sorted((e for e in trace.get("traceEvents", []) if e.get("name") == "[memory]"),
                 key=lambda e: e["ts"])
    if not mem:
        return 0.0
    totals = [e["args"]["Total Allocated"] for e in mem]
    base = totals[0] - mem[0]["args"]["Bytes"]
    return float(max(0, max(totals) - base)) / 2**20


def steady_allocator() -> str:
    """Keep freed memory in the process for the rest of the benchmark (glibc ``mallopt``:
    mmap threshold at its maximum, 32 MiB, trim threshold 1 GiB), and say what was set.

    With glibc's defaults a freed ``n × k`` tensor is often returned to the OS and the next
    one is mapped afresh; its first write then costs a page fault per 4 KiB, about 5 ms for
    16 MiB on this kind of machine, which lands on CE and the f-divergence kernels at
    random and made their ratios swing between 1× and 2× from one run to the next.  A
    training loop that allocates the same shapes every step mostly reuses memory."""
    import ctypes
    import ctypes.util
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return "default (no glibc mallopt)"
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, 32 << 20) == 1 and mallopt(m_trim_threshold, 1 << 30) == 1
    return ("glibc mallopt: mmap threshold 32 MiB, trim threshold 1 GiB (freed memory is reused)"
            if ok else "default (mallopt refused)")


def _machine(threads: int) -> dict:
    import platform
    import torch
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "torch": torch.__version__, "torch_threads": threads,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": load}


# ----------------------------------------------------------------------------- kernels
def _compile_variant(spec: str, x, w) -> tuple[Callable | None, dict]:
    """``fdiv_loss(..., fused="compile")``: the fused kernel's forward (value and analytic
    gradient) through ``torch.compile``; reports success, compile seconds or the error."""
    from .losses import fdiv_loss
    info: dict[str, Any] = {}
    t0 = time.perf_counter()

    def call():
        x.grad = None
        fdiv_loss(x, w, spec, fused="compile").backward()
    try:
        call()
        info.update(ok=True, compile_s=time.perf_counter() - t0)
        return call, info
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        info.update(ok=False, compile_s=time.perf_counter() - t0, error=f"{type(exc).__name__}: {msg}")
        return None, info


def _c_kernel_info() -> dict:
    """Whether the generated C kernel builds here, and with which compiler flags."""
    from fdiv_torch import c_kernel
    if not c_kernel.available():
        return {"available": False, "reason": c_kernel.unavailable_reason(), "vector_math": False}
    return {"available": True, "flags": list(c_kernel.probe_flags()), "vector_math": c_kernel.vector_math()}


def cpu_goal(kernels: dict, target: float = 1.5) -> list[dict]:
    """Per shape: the slowest named generator on the default path (CPU-time ratio to CE)
    and whether every named generator is within ``target`` × CE (issue goal: 1.5)."""
    out = []
    for sh in kernels["shapes"]:
        rows = [r for r in sh["rows"] if r["variant"] == "fused" and not r["typed"] and r["loss"] != "ce"]
        if not rows:
            continue
        worst = max(rows, key=lambda r: r["ratio_cpu"])
        out.append({"shape": f"{sh['n']}×{sh['k']}", "worst": worst["loss"], "worst_ratio": worst["ratio_cpu"],
                    "target": target, "met": all(r["ratio_cpu"] <= target for r in rows)})
    return out


def _cycling(ws: list) -> Callable[[], Any]:
    """A function returning the next tensor of ``ws`` at every call (round robin)."""
    state = {"i": -1}

    def nxt():
        state["i"] = (state["i"] + 1) % len(ws)
        return ws[state["i"]]
    return nxt


def _kernel_fns(x, pool, specs, default: str, reference: bool, torch_kernel: bool) -> dict[str, Callable]:
    """The timed calls of one shape: CE, then per generator the default path (``fused``),
    the torch kernel (when the default is C) and the reference path."""
    import torch.nn.functional as F
    from .losses import fdiv_loss

    def ce(weak=_cycling(pool)):
        x.grad = None
        F.cross_entropy(x, weak()).backward()

    fns: dict[str, Callable] = {"ce": ce}
    for spec in specs:
        def fused(spec=spec, weak=_cycling(pool)):
            x.grad = None
            fdiv_loss(x, weak(), spec).backward()

        fns[f"{spec}|fused"] = fused
        if torch_kernel and default == "c":
            def eager(spec=spec, weak=_cycling(pool)):
                x.grad = None
                fdiv_loss(x, weak(), spec, fused="torch").backward()
            fns[f"{spec}|torch"] = eager
        if reference:
            def ref(spec=spec, weak=_cycling(pool)):
                x.grad = None
                fdiv_loss(x, weak(), spec, fused=False).backward()
            fns[f"{spec}|reference"] = ref
    return fns


def _compiled_fns(x, w, pool, compile_generators, fns: dict) -> dict:
    """Add ``torch.compile`` variants (CE and ``compile_generators``) to ``fns``; returns
    per variant whether it compiled (and how long it took, or why not)."""
    import torch
    import torch.nn.functional as F
    info = {}
    cce = torch.compile(lambda a, b: F.cross_entropy(a, b), dynamic=False)

    def ce_compiled(weak=_cycling(pool)):
        x.grad = None
        cce(x, weak()).backward()
    try:
        t0 = time.perf_counter()
        ce_compiled()
        info["ce"] = {"ok": True, "compile_s": time.perf_counter() - t0}
        fns["ce|compiled"] = ce_compiled
    except Exception as exc:  # noqa: BLE001
        info["ce"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    for spec in compile_generators:
        call, one = _compile_variant(spec, x, w)
        info[spec] = one
        if call is not None:
            fns[f"{spec}|compiled"] = call
    return info


def bench_kernels(shapes=SHAPES, generators=GENERATORS, typed=TYPED, reps: int = 15,
                  compile_generators=(), seed: int = 0, reference: bool = True,
                  fresh_weak: bool = True, torch_kernel: bool = True) -> dict:
    """Forward + backward of ``fdiv_loss`` per generator vs ``F.cross_entropy`` (module doc).

    Variants: ``fused`` (the default path: the generated C kernel where it builds, else the
    torch kernel; ``default_path`` in the result says which), ``torch`` (the generated torch
    kernel, ``fused="torch"``, when the default is C and ``torch_kernel``), ``reference``.
    ``fresh_weak``: each call of each variant gets the next of 9 distinct weak-label
    tensors (no weak-label preparation is reused); ``False``: one tensor for all calls.
    Each row's ``ratio_cpu`` / ``ratio_wall`` is on one clock (:func:`ratios_to_ce`)."""
    import torch
    from fdiv_torch import c_kernel
    from fdiv_torch.fused import WORKSPACE
    from .losses import fdiv_kernel_for
    default = fdiv_kernel_for("kl")
    out = {"shapes": [], "default_path": default, "c_kernel": _c_kernel_info()}
    for n, k in shapes:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, k, generator=g) * 3
        w = torch.softmax(torch.randn(n, k, generator=g) * 2, dim=-1)
        x = z.clone().requires_grad_()
        pool = [w] + ([torch.softmax(torch.randn(n, k, generator=g) * 2, dim=-1) for _ in range(8)]
                      if fresh_weak else [])
        fns = _kernel_fns(x, pool, list(generators) + list(typed), default, reference, torch_kernel)
        compile_info = _compiled_fns(x, w, pool, compile_generators, fns) if compile_generators else {}
        WORKSPACE.clear()
        c_kernel.GRADIENTS.clear()
        timings = _interleaved(fns, reps)
        peaks = {name: peak_memory_mib(fn) for name, fn in fns.items()}
        ratios = ratios_to_ce(timings)
        rows = []
        for name, t in timings.items():
            spec, _, variant = name.partition("|")
            rows.append({"loss": spec, "variant": variant or "eager", "typed": spec in typed,
                         "cpu": t["cpu"], "wall": t["wall"],
                         "ratio_cpu": ratios[name]["cpu"], "ratio_wall": ratios[name]["wall"],
                         "peak_mib": peaks[name]})
        out["shapes"].append({"n": n, "k": k, "reps": reps, "rows": rows, "fresh_weak": fresh_weak,
                              "workspace_mib": WORKSPACE.nbytes() / 2**20,
                              "c_gradients_mib": c_kernel.GRADIENTS.nbytes() / 2**20,
                              "compile": compile_info or None})
        WORKSPACE.clear()
        c_kernel.GRADIENTS.clear()
    return out


# ----------------------------------------------------------------------------- training
def _features(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    theta = rng.normal(size=d) / np.sqrt(d)
    from theory.binary import sigmoid
    p = sigmoid((X @ theta) * 2)
    return X, np.clip(p + rng.normal(scale=0.1, size=n), 0.01, 0.99)


def _train_once(X, y, loss_name: str, steps: int, seed: int = 0):
    from .losses import make_loss
    from .pipeline import TrainConfig, train_head
    cfg = TrainConfig(steps=steps, eval_every=0)
    return train_head(X, y, make_loss(loss_name, smoothing=cfg.smoothing), cfg, bias=True, seed=seed)


def _ensemble_once(X, Xw, y, steps: int, members: int):
    """Ensemble-of-weak-supervisors baseline: ``members`` weak heads (weak features,
    bootstrap resamples) + the student trained with CE on their mean prediction."""
    from .pipeline import predict
    rng = np.random.default_rng(0)
    preds = []
    for m in range(members):
        idx = rng.integers(0, len(y), len(y))
        th, b, _ = _train_once(Xw[idx], y[idx], "ce", steps, seed=m)
        preds.append(predict(Xw, th, b))
    return _train_once(X, np.mean(preds, axis=0), "ce", steps)


def bench_training(n: int = 8000, d: int = 2304, d_weak: int = 384, steps: int = 30,
                   reps: int = 3, losses=None, members: int = 4) -> dict:
    """Per-epoch time (one full-batch step) and peak memory of head training per loss."""
    from .losses import DEFAULT_LOSSES
    losses = list(losses or dict.fromkeys(list(DEFAULT_LOSSES) + ["neyman"]))
    X, y = _features(n, d, 0)
    Xw = X[:, :d_weak].copy()
    fns = {name: (lambda name=name: _train_once(X, y, name, steps)) for name in losses}
    fns[f"ensemble{members}"] = lambda: _ensemble_once(X, Xw, y, steps, members)
    timings = _interleaved(fns, reps, warmup=1)
    few = max(2, steps // 10)
    peaks = {name: peak_memory_mib(lambda name=name: _train_once(X, y, name, few)) for name in losses}
    peaks[f"ensemble{members}"] = peak_memory_mib(lambda: _ensemble_once(X, Xw, y, few, members))
    rows = training_rows(timings, steps, peaks)
    return {"n": n, "d": d, "d_weak": d_weak, "steps": steps, "reps": reps,
            "ensemble_members": members, "rows": rows,
            "note": "one epoch = one full-batch Adam step of experiments.pipeline.train_head; "
                    f"ensemble{members} = {members} weak heads ({d_weak}-d, bootstrap) + CE student"}


def training_rows(timings: dict[str, dict], steps: int, peaks: dict[str, float | None]) -> list[dict]:
    """One row per loss: ms per epoch on each clock, and its ratio to CE on the **same**
    clock (``ratio_wall``: wall ÷ CE wall, what the cost figure shows; ``ratio_cpu``: CPU ÷
    CE CPU; :func:`ratios_to_ce`)."""
    ratios = ratios_to_ce(timings)
    return [{"loss": name, "epoch_ms_cpu": t["cpu"]["median_ms"] / steps,
             "epoch_ms_wall": t["wall"]["median_ms"] / steps,
             "iqr_ms_cpu": t["cpu"]["iqr_ms"] / steps, "iqr_ms_wall": t["wall"]["iqr_ms"] / steps,
             "ratio_wall": ratios[name]["wall"], "ratio_cpu": ratios[name]["cpu"],
             "peak_mib": peaks[name]}
            for name, t in timings.items()]


# ----------------------------------------------------------------------------- scaling
def bench_scaling(ns=(1000, 2000, 4000, 8000, 16000), d: int = 2304, steps: int = 20,
                  reps: int = 3, losses=("ce", "reverse_kl")) -> dict:
    """Head-training time against the number of examples (expect linear)."""
    out = {"d": d, "steps": steps, "reps": reps, "losses": {}}
    X, y = _features(max(ns), d, 1)
    for loss in losses:
        fns = {str(n): (lambda n=n: _train_once(X[:n], y[:n], loss, steps)) for n in ns}
        t = _interleaved(fns, reps, warmup=1)
        secs = np.array([t[str(n)]["cpu"]["median_ms"] / 1e3 for n in ns])
        A = np.vstack([np.ones(len(ns)), np.asarray(ns, float)]).T
        coef, *_ = np.linalg.lstsq(A, secs, rcond=None)
        fit = A @ coef
        ss = float(((secs - secs.mean()) ** 2).sum())
        r2 = 1 - float(((secs - fit) ** 2).sum()) / ss if ss > 0 else float("nan")
        out["losses"][loss] = {"n": list(ns), "seconds_cpu": secs.tolist(),
                               "seconds_wall": [t[str(n)]["wall"]["median_ms"] / 1e3 for n in ns],
                               "intercept_s": float(coef[0]), "us_per_example": float(coef[1] * 1e6),
                               "r2": r2}
    return out


def bench_sweep_workers(workers=(1, 2), quick: bool = True, sweep: dict | None = None) -> dict:
    """Wall time of the same sweep from scratch with each worker count (local backend).

    Features are computed once beforehand (cached on disk), so the times are the runs.
    """
    from .runner import QUICK_SWEEP, prepare_features, expand, run_sweep
    sweep = dict(sweep or QUICK_SWEEP)
    try:
        refs, runs = expand(sweep)
        for ref in refs:
            prepare_features(ref, quiet=True)
    except Exception as exc:  # noqa: BLE001 - e.g. no encoder / data offline
        return {"skipped": f"features unavailable: {type(exc).__name__}: {exc}"[:300]}
    rows = []
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as fh:
            autogroup = fh.read().strip() == "1"
    except OSError:
        autogroup = None
    for nw in workers:
        with tempfile.TemporaryDirectory() as root:
            t0 = time.perf_counter()
            info = run_sweep(sweep, root, workers=nw, quiet=True, backend="local")
            rows.append({"workers": nw, "wall_s": time.perf_counter() - t0,
                         "runs_s": info["total_s"] - info["features_s"],
                         "executed": info["executed"]})
    base = rows[0]["runs_s"]
    for r in rows:
        r["speedup"] = base / r["runs_s"] if r["runs_s"] > 0 else float("nan")
    return {"sweep": {k: sweep[k] for k in ("tasks", "weak", "losses", "noise", "seeds")},
            "references": len(refs), "runs": len(runs), "rows": rows,
            "load_average_before": load, "sched_autogroup": autogroup,
            "note": "wall time needs idle cores: with the kernel's autogroup scheduling, all "
                    "workers of one session share that session's CPU share, so on a machine "
                    "busy with other sessions more workers do not get more CPU",
            "target": "2 workers >= 1.6x faster than 1"}


# ----------------------------------------------------------------------------- curve
def bench_curve(generators=GENERATORS, typed=("(t-1)**2/(t+1)", "(sqrt(t)-1)**2", "t*log(t)-log(t)"),
                points: int = 200, reps: int = 3) -> dict:
    """Points per second of ``tight_curve`` on an evenly spaced ``δ`` grid in (0, 1)."""
    from theory import get_generator
    from theory.joint_range import tight_curve
    deltas = np.linspace(0.005, 0.995, points)
    rows = []
    for spec in list(generators) + list(typed):
        gen = get_generator(spec)
        t0 = time.perf_counter()
        tight_curve(gen, deltas)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(reps):
            t0 = time.perf_counter()
            tight_curve(gen, deltas)
            warm.append(time.perf_counter() - t0)
        med = statistics.median(warm)
        rows.append({"generator": spec, "typed": spec in typed, "points": points,
                     "cold_s": cold, "warm_s": med,
                     "points_per_s_cold": points / cold, "points_per_s": points / med,
                     "derive_s": _derive_seconds(spec) if spec in typed else None})
    return {"points": points, "reps": reps, "rows": rows}


def _derive_seconds(spec: str) -> float | None:
    """Wall time of ``w2sg derive --f SPEC --json`` in a fresh interpreter (cold caches,
    imports included: what a user waits for)."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "w2sg", "derive", "--f", spec, "--json"],
                          cwd=root, capture_output=True, text=True)
    return time.perf_counter() - t0 if proc.returncode == 0 else None


# ----------------------------------------------------------------------------- driver
def max_threads() -> int:
    """The most torch threads a benchmark may ask for: 4 × this machine's CPUs (OpenMP's
    runtime crashes when asked for 100,000)."""
    return 4 * (os.cpu_count() or 1)


def run_bench(what=WHAT, quick: bool = False, threads: int = 1, reps: int | None = None,
              compile_generators=None, progress: Callable[[str], None] | None = None,
              device: str = "cpu") -> dict:
    """Run the selected benchmarks; returns the record (not written).

    ``device="cuda"``: the loss kernels on the GPU (:func:`experiments.bench_cuda.bench_kernels_cuda`,
    record kind ``bench-cuda``, key ``kernels_cuda``) instead of the CPU ones."""
    import torch
    if not 1 <= threads <= max_threads():
        raise ValueError(f"threads must be between 1 and {max_threads()}, got {threads}")
    say = progress or (lambda msg: None)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    allocator = steady_allocator() if device == "cpu" else "default"
    record: dict[str, Any] = {"kind": "bench-cuda" if device == "cuda" else "bench", "quick": quick,
                              "what": list(what),
                              "machine": dict(_machine(threads), device=device, allocator=allocator),
                              "method": __doc__.split("Method\n------\n")[1]}
    t_start = time.perf_counter()
    try:
        if "kernels" in what and device == "cuda":
            from .bench_cuda import bench_kernels_cuda
            say("kernels (cuda)")
            record["kernels_cuda"] = bench_kernels_cuda(generators=GENERATORS, typed=TYPED,
                                                        reps=reps or (20 if quick else 40),
                                                        reference=not quick, progress=say)
        elif "kernels" in what:
            say("kernels")
            comp = (compile_generators if compile_generators is not None
                    else (() if quick else tuple(GENERATORS) + tuple(TYPED)))
            record["kernels"] = bench_kernels(reps=reps or (9 if quick else 21), compile_generators=comp)
            if quick and not comp:
                record["kernels"]["compile_note"] = "torch.compile not measured in --quick"
        if "training" in what:
            say("training")
            record["training"] = (bench_training(n=2000, steps=10, reps=reps or 3) if quick
                                  else bench_training(reps=reps or 5))
        if "scaling" in what:
            say("scaling: examples")
            record["scaling"] = (bench_scaling(ns=(1000, 2000, 4000), steps=10, reps=3) if quick
                                 else bench_scaling())
            say("scaling: sweep workers")
            record["scaling"]["sweep_workers"] = bench_sweep_workers()
        if "curve" in what:
            say("curve")
            record["curve"] = bench_curve(points=50 if quick else 200, reps=2 if quick else 3)
    finally:
        torch.set_num_threads(old_threads)
    record["elapsed_s"] = time.perf_counter() - t_start
    return record


def _fmt(x, spec=".2f"):
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def format_tables(record: dict) -> str:
    """The benchmark record as text tables (each ratio to CE on one clock, named in its header)."""
    lines = [f"w2sg bench ({'quick' if record.get('quick') else 'full'}; torch "
             f"{record['machine']['torch']}, {record['machine']['torch_threads']} thread(s), "
             f"{record['machine']['cpus']} CPUs)"]
    for key, fmt in (("kernels", _format_kernels), ("training", _format_training),
                     ("scaling", _format_scaling)):
        if record.get(key):
            lines += fmt(record[key], record)
    if record.get("kernels_cuda"):
        from .bench_cuda import format_cuda_tables
        lines += ["", format_cuda_tables(record["kernels_cuda"])]
    if record.get("curve"):
        lines += _format_curve(record["curve"])
    return "\n".join(lines)


def _format_kernels(kern: dict, record: dict) -> list[str]:
    lines = []
    for sh in kern["shapes"]:
        rows = sh["rows"]
        ce = next(r for r in rows if r["loss"] == "ce" and r["variant"] == "eager")
        lines += ["", f"loss kernels, forward+backward, logits {sh['n']}×{sh['k']} ({sh['reps']} interleaved "
                      f"reps; ×CE = median CPU time ÷ CE's median CPU time); "
                      f"CE {ce['cpu']['median_ms']:.2f} ms CPU, {ce['wall']['median_ms']:.2f} ms wall, "
                      f"peak {_fmt(ce['peak_mib'], '.1f')} MiB"]
        variants = sorted({r["variant"] for r in rows if r["loss"] != "ce"})
        lines.append(f"{'generator':<16}" + "".join(f"{v + ' ×CE':>16}{'IQR ms':>9}{'MiB':>8}" for v in variants))
        for spec in dict.fromkeys(r["loss"] for r in rows if r["loss"] != "ce"):
            cells = []
            for v in variants:
                r = next((r for r in rows if r["loss"] == spec and r["variant"] == v), None)
                cells.append(f"{_fmt(r['ratio_cpu']) if r else '—':>16}{_fmt(r['cpu']['iqr_ms']) if r else '—':>9}"
                             f"{_fmt(r['peak_mib'], '.1f') if r else '—':>8}")
            lines.append(f"{spec[:16]:<16}" + "".join(cells))
        comp = next((r for r in rows if r["loss"] == "ce" and r["variant"] == "compiled"), None)
        if comp:
            lines.append(f"{'ce (compiled)':<16}{_fmt(comp['ratio_cpu']):>16}")
        lines.append(f"kept between calls: torch-kernel workspace {sh['workspace_mib']:.1f} MiB, "
                     f"C-kernel saved gradients {sh.get('c_gradients_mib', 0.0):.1f} MiB")
        for spec, info in (sh.get("compile") or {}).items():
            lines.append(f"torch.compile {spec}: " + (f"ok, compiled in {info['compile_s']:.1f} s"
                                                      if info.get("ok") else f"failed ({info.get('error')})"))
    if kern.get("compile_note"):
        lines.append(kern["compile_note"])
    if kern.get("default_path"):
        info = kern.get("c_kernel") or {}
        lines += ["", "fused = fdiv_loss's default CPU path: " + (
            f"the generated C kernel ({'vectorised exp/log' if info.get('vector_math') else 'scalar exp/log'})"
            if kern["default_path"] == "c" else "the generated torch kernel (" + (
                info.get("reason") or "the C kernel builds without vector math") + ")")
            + ("; torch = the generated torch kernel" if kern["default_path"] == "c" else "")]
        for g in cpu_goal(kern):
            lines.append(f"CPU goal, every named generator ≤ {g['target']}× CE at {g['shape']}: "
                         f"{'met' if g['met'] else 'NOT met'} (slowest: {g['worst']} {g['worst_ratio']:.2f}×)")
    return lines


def _format_training(tr: dict, record: dict) -> list[str]:
    """Wall time first (what the cost figure shows), each ×CE on its own clock."""
    lines = ["", f"training cost per strong-model epoch (linear head, n={tr['n']}, d={tr['d']}, "
                 f"{tr['steps']} epochs, {tr['reps']} reps; ×CE on the same clock: wall ÷ CE wall, "
                 f"CPU ÷ CE CPU)",
             f"{'loss':<14}{'ms wall':>9}{'IQR':>7}{'×CE wall':>10}{'ms CPU':>9}{'×CE CPU':>9}{'peak MiB':>10}"]
    for r in tr["rows"]:
        ratio_wall = r.get("ratio_wall")  # records before the clocks were split have CPU only
        lines.append(f"{r['loss']:<14}{r['epoch_ms_wall']:>9.2f}{_fmt(r.get('iqr_ms_wall')):>7}"
                     f"{_fmt(ratio_wall):>10}{r['epoch_ms_cpu']:>9.2f}{r['ratio_cpu']:>9.2f}"
                     f"{_fmt(r['peak_mib'], '.1f'):>10}")
    lines.append(tr["note"])
    return lines


def _format_scaling(sc: dict, record: dict) -> list[str]:
    lines = ["", f"head training vs number of examples (d={sc['d']}, {sc['steps']} epochs, CPU time)"]
    for loss, s in sc["losses"].items():
        pts = ", ".join(f"{n}: {t:.3f}s" for n, t in zip(s["n"], s["seconds_cpu"]))
        lines.append(f"  {loss:<11} {pts}  → {s['us_per_example']:.2f} µs/example + {s['intercept_s']:.3f} s "
                     f"(R² {_fmt(s['r2'], '.3f')})")
    sw = sc.get("sweep_workers")
    if sw and "skipped" in sw:
        lines.append(f"sweep vs workers: skipped ({sw['skipped']})")
    elif sw:
        lines.append(f"quick sweep ({sw['references']} reference(s), {sw['runs']} runs) vs local workers "
                     f"({sw['target']}):")
        for r in sw["rows"]:
            lines.append(f"  {r['workers']} worker(s): {r['runs_s']:.1f} s  speedup {r['speedup']:.2f}×")
        load = sw.get("load_average_before")
        lines.append(f"  (load average before: {_fmt(load[0]) if load else '—'} on "
                     f"{record['machine']['cpus']} CPUs; autogroup scheduling: {sw.get('sched_autogroup')})")
    return lines


def _format_curve(cv: dict) -> list[str]:
    lines = ["", f"tight TV curve L_f(δ), {cv['points']} points",
             f"{'generator':<18}{'points/s':>10}{'cold pts/s':>12}{'derive s':>10}"]
    for r in cv["rows"]:
        derive = r.get("derive_s")
        lines.append(f"{r['generator'][:18]:<18}{r['points_per_s']:>10.0f}{r['points_per_s_cold']:>12.0f}"
                     f"{(f'{derive:.2f}' if derive is not None else '—'):>10}")
    lines.append("derive s: `w2sg derive --f GEN --json` in a fresh interpreter (typed generators)")
    return lines
