"""Slow fake jobs for the interrupt tests of the local backend (test_interrupts.py).

``python3 -m tests.experiments.slow_jobs ROOT JOBS WORKERS`` runs one phase of ``JOBS``
jobs on ``WORKERS`` local workers.  Each job writes ``ROOT/started-<n>.pid`` (its worker's
pid: the test's signal that work is under way), then, unless its number is in
``$SLOW_JOBS_QUICK`` (comma-separated), sleeps ``$SLOW_JOBS_SLEEP`` seconds (default 60)
and writes ``ROOT/<n>.done`` atomically.  With ``$SLOW_JOBS_DEAF`` set a job ignores
``SIGTERM`` (as one stuck in C code would), so only ``SIGKILL`` stops it.  An interrupt ends the process like ``w2sg run``
does: one line on stderr, exit status 130.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def no_setup() -> None:
    pass


def slow_job(job) -> str:
    root, n = Path(job[2]), job[1]["seed"]
    marker = root / f"started-{n}.pid"
    marker.with_suffix(".tmp").write_text(str(os.getpid()))
    os.replace(marker.with_suffix(".tmp"), marker)  # the test never reads it half written
    if os.environ.get("SLOW_JOBS_DEAF"):  # like a job stuck in C code: SIGTERM does nothing
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    quick = os.environ.get("SLOW_JOBS_QUICK", "").split(",")
    if str(n) not in quick:
        time.sleep(float(os.environ.get("SLOW_JOBS_SLEEP", "60")))
    tmp = root / f".{n}.done.tmp"
    try:
        tmp.write_text("complete")
        os.replace(tmp, root / f"{n}.done")
    finally:
        if tmp.exists():
            tmp.unlink()
    return job[0]


def main(argv: list[str]) -> int:
    from experiments.backends.local import run_phases
    root, n, workers = Path(argv[0]), int(argv[1]), int(argv[2])
    jobs = [("run", {"seed": s}, str(root)) for s in range(n)]
    try:
        run_phases([jobs], slow_job, no_setup, workers=workers)
    except KeyboardInterrupt:
        print("slow_jobs: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
