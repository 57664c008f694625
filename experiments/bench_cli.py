"""``w2sg bench``: benchmarks (loss kernels vs CE, training cost, scaling, curve speed)."""
from __future__ import annotations

import os
import sys
import time

from .bench import WHAT

__all__ = ["register", "write_bench"]


def _usage(msg: str):
    from w2sg.errors import UsageError
    return UsageError(msg)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmarks: loss kernels vs CE, training cost, scaling, tight-curve speed",
        description="Benchmarks (measurements, never pass/fail). Prints tables and writes a JSON "
                    "record under <results root>/bench/.")
    p.add_argument("--what", default=None,
                   help=f"comma-separated subset of {','.join(WHAT)} (default: all; kernels with --device cuda)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where the loss kernels run (default cpu); cuda: CUDA-event timings, torch.cuda "
                        "peak memory, CE and Liger-Kernel (if installed) side by side")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and sizes (about a minute or two)")
    p.add_argument("--out", metavar="DIR", help="results root (default $W2SG_RESULTS or ./results); the record goes to DIR/bench/")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads, 1 to 4 × the CPUs (default 1, as a sweep worker)")
    p.add_argument("--reps", type=int, metavar="N", help="repetitions (default: 21 kernels / 5 training; quick: 7 / 3)")
    p.add_argument("--compile", default=None,
                   help="comma-separated generators to also measure under torch.compile "
                        "(default: all named and typed; none with --quick; 'none' to skip)")
    p.set_defaults(func=_bench)


def write_bench(root, record: dict, quick: bool, device: str = "cpu"):
    """Write ``record`` (from :func:`experiments.bench.run_bench`) as
    ``<root>/bench/bench-<UTC stamp>[-cuda][-quick].json``; returns the path."""
    from pathlib import Path
    from w2sg.records import BenchRecord, CudaBenchRecord, write_record
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"bench-{stamp}{'-cuda' if device == 'cuda' else ''}{'-quick' if quick else ''}.json"
    kind = CudaBenchRecord if device == "cuda" else BenchRecord
    return write_record(Path(root) / "bench" / name,
                        kind(**{k: v for k, v in record.items() if k != "kind"}))


def _bench(args) -> int:
    from w2sg.output import emit
    from .bench import format_tables, run_bench
    spec = args.what if args.what is not None else ("kernels" if args.device == "cuda" else ",".join(WHAT))
    what = [w.strip() for w in spec.split(",") if w.strip()]
    bad = [w for w in what if w not in WHAT]
    if bad or not what:
        raise _usage(f"--what: unknown part(s) {', '.join(bad) or '(empty)'}; valid: {', '.join(WHAT)}")
    from .bench import max_threads
    if not 1 <= args.threads <= max_threads():
        raise _usage(f"--threads must be between 1 and {max_threads()} (4 × this machine's "
                     f"{os.cpu_count() or 1} CPUs), got {args.threads}")
    if args.reps is not None and args.reps < 3:
        raise _usage(f"--reps must be at least 3 (median and IQR), got {args.reps}")
    if args.device == "cuda" and what != ["kernels"]:
        raise _usage(f"--device cuda measures the loss kernels only (--what kernels), not {', '.join(what)}")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise _usage("--device cuda: no CUDA device is available to torch "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
    comp = None
    if args.compile is not None:
        comp = () if args.compile.strip().lower() in ("", "none") else tuple(
            s.strip() for s in args.compile.split(",") if s.strip())
        from theory import get_generator
        for spec in comp:
            get_generator(spec)  # GeneratorError → one-line usage error
    from w2sg.paths import results_dir, writable_dir
    folder = writable_dir(results_dir(args.out) / "bench", "benchmark folder")
    progress = None if args.json else (lambda msg: print(f"[bench] {msg} …", file=sys.stderr, flush=True))
    record = run_bench(what, quick=args.quick, threads=args.threads, reps=args.reps,
                       compile_generators=comp, progress=progress, device=args.device)
    path = write_bench(folder.parent, record, args.quick, args.device)
    record["record"] = str(path)
    emit(record, args.json, format_tables(record) + f"\n\nrecord: {path}")
    return 0


