"""GPU loss-kernel benchmark (``w2sg bench --device cuda``): ``fdiv_loss`` against
cross-entropy (and Liger-Kernel's JSD/KL/TVD when installed) on a CUDA device.

Method
------
* **Time.**  Forward + backward with respect to the logits, one call at a time, each
  bracketed by CUDA events (``torch.cuda.Event(enable_timing=True)``); ``warmup`` calls
  first (Triton compiles on the first), then ``reps`` timed calls; reported: median,
  quartiles and IQR of the event times, and the ratio of medians to
  ``torch.nn.functional.cross_entropy`` with the same soft labels.
* **Fresh weak labels.**  Every call takes the next of ``POOL`` distinct weak-label
  tensors (more than :func:`experiments.losses`' per-tensor cache holds), so no loss can
  reuse weak-label preparation across steps, as in minibatch training.  They are float32
  probability rows; CE and Liger take the same rows in the logits' dtype (converted
  beforehand: their APIs need matching dtypes).
* **Peak memory.**  ``torch.cuda.max_memory_allocated`` during one call minus the memory
  allocated before it (activations, saved tensors, gradient).
* **Variants.**  ``ce``: ``F.cross_entropy(z, w)``; ``<f>|fused``: ``fdiv_loss(z, w, f)``, the
  default path (on CUDA the generated Triton kernel when Triton is installed); with
  ``reference=True`` also ``fused=False`` (autograd through the generated ``g``);
  ``liger-jsd|kl|tvd``: ``LigerJSD()(log_softmax(z), log w)``,
  ``LigerKLDIVLoss("batchmean")(log_softmax(z), w)``, ``LigerTVDLoss()(softmax(z), w)``
  (their inputs are (log-)probabilities, so the softmax of the logits is part of the call;
  ``log w`` is precomputed), when ``liger_kernel`` imports.
"""
from __future__ import annotations

import os
import subprocess
from typing import Any, Callable

import numpy as np

__all__ = ["CUDA_SHAPES", "CUDA_DTYPES", "POOL", "gpu_info", "bench_kernels_cuda", "format_cuda_tables"]

CUDA_SHAPES: tuple[tuple[int, int], ...] = ((65536, 2), (4096, 1000), (8192, 32000))
CUDA_DTYPES: tuple[str, ...] = ("float32", "bfloat16")
#: Distinct weak-label tensors cycled through (the weak-label cache holds 8).
POOL = 9


def gpu_info() -> dict:
    """GPU model, memory, SM count, driver and CUDA runtime, torch and Triton versions."""
    import torch
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    driver = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            driver = out.stdout.strip().splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import triton
        triton_version = triton.__version__
    except Exception:  # noqa: BLE001 - optional
        triton_version = None
    try:
        import liger_kernel  # noqa: F401
        from importlib.metadata import version
        liger = version("liger-kernel")
    except Exception:  # noqa: BLE001 - optional
        liger = None
    return {"name": props.name, "total_memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}", "driver": driver,
            "cuda_runtime": torch.version.cuda, "torch": torch.__version__,
            "triton": triton_version, "liger_kernel": liger,
            "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _stats(ms: list[float]) -> dict:
    v = np.asarray(ms, dtype=float)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median_ms": float(med), "q1_ms": float(q1), "q3_ms": float(q3), "iqr_ms": float(q3 - q1),
            "min_ms": float(v.min()), "n": int(v.size)}


def _time(fn: Callable[[int], Any], reps: int, warmup: int, cuda: bool = True) -> dict:
    import time

    import torch
    for i in range(warmup):
        fn(i)
    if not cuda:  # (CPU: only for testing this module without a GPU)
        ms = []
        for i in range(reps):
            t0 = time.perf_counter()
            fn(i)
            ms.append((time.perf_counter() - t0) * 1e3)
        return _stats(ms)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    torch.cuda.synchronize()
    for i in range(reps):
        starts[i].record()
        fn(i)
        ends[i].record()
    torch.cuda.synchronize()
    return _stats([s.elapsed_time(e) for s, e in zip(starts, ends)])


def _peak_mib(fn: Callable[[int], Any], cuda: bool = True) -> float | None:
    import torch
    if not cuda:
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(0)
    torch.cuda.synchronize()
    return max(0, torch.cuda.max_memory_allocated() - base) / 2**20


def _liger_variants(x, ws, log_ws) -> tuple[dict, str | None]:
    try:
        from liger_kernel.transformers import LigerJSD, LigerKLDIVLoss, LigerTVDLoss
    except Exception as exc:  # noqa: BLE001 - optional comparison
        return {}, f"liger_kernel not available: {type(exc).__name__}: {exc}"[:200]
    import torch
    jsd, kld, tvd = LigerJSD(), LigerKLDIVLoss(reduction="batchmean"), LigerTVDLoss()

    def run(loss_fn):
        def call(i):
            x.grad = None
            loss_fn(i).backward()
        return call

    return {
        "liger-jsd": run(lambda i: jsd(torch.log_softmax(x, -1), log_ws[i % POOL])),
        "liger-kl": run(lambda i: kld(torch.log_softmax(x, -1), ws[i % POOL])),
        "liger-tvd": run(lambda i: tvd(torch.softmax(x, -1), ws[i % POOL])),
    }, None


def bench_kernels_cuda(*, generators, typed, shapes=CUDA_SHAPES, dtypes=CUDA_DTYPES,
                       reps: int = 40, warmup: int = 3, reference: bool = False, liger: bool = True,
                       seed: int = 0, progress: Callable[[str], None] | None = None,
                       device: str = "cuda") -> dict:
    """Forward + backward per loss on the current CUDA device (module doc): named
    ``generators`` and ``typed`` ones (expressions in ``t``), each against CE.

    ``device="cpu"`` runs the same procedure with wall-clock timing and no memory figures:
    only so that this module is tested on machines without a GPU."""
    import torch
    import torch.nn.functional as F
    from .losses import fdiv_loss
    say = progress or (lambda msg: None)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    out: dict[str, Any] = {"device": gpu_info() if cuda else {"name": f"{device} (test run)"},
                           "pool": POOL, "shapes": [], "method": __doc__.split("Method\n------\n")[1]}
    for n, k in shapes:
        for dname in dtypes:
            dtype = getattr(torch, dname)
            say(f"cuda {n}×{k} {dname}")
            g = torch.Generator(device=dev).manual_seed(seed)
            z = (torch.randn(n, k, generator=g, device=dev) * 3).to(dtype)
            x = z.clone().requires_grad_()
            # weak labels in float32 (probabilities as stored); CE and Liger need them in the
            # logits' dtype, so they get a copy in that dtype (not timed)
            ws = [torch.softmax(torch.randn(n, k, generator=g, device=dev) * 2, dim=-1)
                  for _ in range(POOL)]
            ws_d = [w.to(dtype) for w in ws]

            def ce(i):
                x.grad = None
                F.cross_entropy(x, ws_d[i % POOL]).backward()

            fns: dict[str, Callable] = {"ce": ce}
            for spec in list(generators) + list(typed):
                def fused(i, spec=spec):
                    x.grad = None
                    fdiv_loss(x, ws[i % POOL], spec).backward()
                fns[f"{spec}|fused"] = fused
                if reference:
                    def ref(i, spec=spec):
                        x.grad = None
                        fdiv_loss(x, ws[i % POOL], spec, fused=False).backward()
                    fns[f"{spec}|reference"] = ref
            liger_note = "not requested"
            if liger:
                log_ws = [torch.log(w).to(dtype) for w in ws]
                extra, liger_note = _liger_variants(x, ws_d, log_ws)
                fns.update(extra)
            rows = []
            errors = {}
            for name, fn in fns.items():
                try:
                    t = _time(fn, reps, warmup, cuda)
                    peak = _peak_mib(fn, cuda)
                except Exception as exc:  # noqa: BLE001 - recorded, not raised
                    errors[name] = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                    continue
                spec, _, variant = name.partition("|")
                rows.append({"loss": spec, "variant": variant or "eager", "typed": spec in typed,
                             "gpu": t, "peak_mib": peak})
            ce_row = next((r for r in rows if r["loss"] == "ce"), None)
            for r in rows:
                r["ratio"] = r["gpu"]["median_ms"] / ce_row["gpu"]["median_ms"] if ce_row else None
                r["peak_ratio"] = (r["peak_mib"] / ce_row["peak_mib"] if ce_row and r["peak_mib"] is not None
                                   and ce_row["peak_mib"] else None)
            out["shapes"].append({"n": n, "k": k, "dtype": dname, "reps": reps, "warmup": warmup,
                                  "rows": rows, "errors": errors or None, "liger_note": liger_note})
            del x, z, ws, ws_d, fns
            if cuda:
                torch.cuda.empty_cache()
    return out


def format_cuda_tables(cuda: dict) -> str:
    """The GPU kernel record as text tables (ratios = median GPU time / CE's)."""
    dev = cuda["device"]
    lines = [f"GPU loss kernels on {dev['name']} (driver {dev.get('driver') or '?'}, CUDA {dev.get('cuda_runtime')}, "
             f"torch {dev.get('torch')}, triton {dev.get('triton') or '—'}, liger {dev.get('liger_kernel') or '—'}); "
             f"forward+backward, CUDA events, fresh weak labels each call"]
    for sh in cuda["shapes"]:
        ce = next((r for r in sh["rows"] if r["loss"] == "ce"), None)
        lines.append("")
        lines.append(f"{sh['n']}×{sh['k']} {sh['dtype']} ({sh['reps']} calls): CE "
                     + (f"{ce['gpu']['median_ms']:.3f} ms, peak {ce['peak_mib'] or 0:.1f} MiB" if ce else "failed"))
        lines.append(f"{'loss':<18}{'variant':<11}{'ms':>9}{'IQR':>8}{'×CE':>7}{'MiB':>9}{'mem ×CE':>9}")
        for r in sh["rows"]:
            if r["loss"] == "ce":
                continue
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
            pr = "—" if r["peak_ratio"] is None else f"{r['peak_ratio']:.2f}"
            lines.append(f"{r['loss'][:18]:<18}{r['variant']:<11}{r['gpu']['median_ms']:>9.3f}"
                         f"{r['gpu']['iqr_ms']:>8.3f}{ratio:>7}"
                         f"{'—' if r['peak_mib'] is None else format(r['peak_mib'], '.1f'):>9}{pr:>9}")
        for name, err in (sh.get("errors") or {}).items():
            lines.append(f"  {name}: failed ({err})")
        if sh.get("liger_note"):
            lines.append(f"  liger: {sh['liger_note']}")
    return "\n".join(lines)
