"""Ray backend: ``w2sg run --backend ray [--address ADDR]``.

Each pending job of a sweep (a reference, then the W2S runs) becomes one Ray task that
calls the same executor as the local backend (:func:`experiments.runner._dispatch`), so
records, paths and resume semantics are unchanged: the driver decides what is still to
do from the records on disk, and every task writes its own record atomically
(:func:`w2sg.records.write_record`), so a task that dies mid-run leaves no
record.  A task whose *worker process* dies (killed, out of memory, node lost) is
retried by Ray (``max_retries``, default 3); a task that raises is not retried, and all
failures are reported together at the end (the other runs' records are kept: rerunning
the sweep resumes with just the failed ones).

Cluster use (``--address``, e.g. ``ray://head:10001`` or ``auto``): every node needs the
toolkit importable (installed, or pass ``runtime_env``) and the results root and the data
cache (``$W2SG_CACHE``) on a shared filesystem, as the driver and the tasks read and write
the same paths.  Without an address a local Ray instance is started with ``workers`` CPUs
(and shut down afterwards); an already initialised Ray (``ray.init`` by the caller) is used
as it is.

Ray is optional: it is imported only here, on use, with a clear error when missing.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

__all__ = ["require_ray", "run_phases", "RayRunError"]

_ROOT = Path(__file__).resolve().parent.parent.parent


class RayRunError(RuntimeError):
    """Some runs failed on Ray (after retries); ``failures`` lists ``(job, error)``."""

    def __init__(self, failures):
        self.failures = failures
        first_job, first_err = failures[0]
        super().__init__(f"{len(failures)} job(s) failed on Ray (records of the others are kept; "
                         f"rerun to resume); first: {first_job[0]} {first_job[1].get('task')} "
                         f"{first_job[1].get('loss', '')} seed {first_job[1].get('seed')}: "
                         f"{str(first_err).strip().splitlines()[-1] if str(first_err).strip() else first_err!r}")


def require_ray():
    """``import ray`` or raise ``ImportError`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray backend needs the optional dependency ray: "
                          "pip install 'w2sg[ray]' (or pip install 'ray>=2.9')") from exc
    return ray


def _run_job(job):
    """Body of one Ray task: the local backend's executor, single-threaded torch."""
    from experiments import runner
    runner._worker_init()
    return runner._dispatch(job)


def _local_runtime_env() -> dict:
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path}
    for key in ("W2SG_CACHE", "W2SG_RESULTS", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return {"env_vars": env}


def run_phases(phases: Sequence[Iterable[tuple]], address: str | None = None,
               workers: int | None = None, progress: Callable[[int], object] | None = None,
               max_retries: int = 3, runtime_env: dict | None = None) -> dict:
    """Run ``phases`` (lists of ``(kind, config, root)`` jobs) on Ray, one phase after another.

    Returns ``{"executed", "retried_workers", "address"}``; raises :class:`RayRunError`
    listing the jobs that failed (after every other job has finished).
    """
    ray = require_ray()
    phases = [list(p) for p in phases]
    if not any(phases):
        return {"executed": 0, "address": None}
    started = False
    if not ray.is_initialized():
        kw = {"include_dashboard": False, "log_to_driver": False,
              "runtime_env": runtime_env if runtime_env is not None else _local_runtime_env()}
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=max(1, int(workers or os.cpu_count() or 1)), **kw)
        started = True
    task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(_run_job)
    failures, executed = [], 0
    try:
        for phase in phases:  # references first: runs read them
            pending = {task.remote(job): job for job in phase}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        ray.get(ref)
                        executed += 1
                    except Exception as exc:  # noqa: BLE001 - RayError or the task's own: reported below
                        failures.append((job, exc))
                    if progress is not None:
                        progress(1)
        info = {"executed": executed,
                "address": address or ("local" if started else "existing")}
    finally:
        if started:
            ray.shutdown()
    if failures:
        raise RayRunError(failures)
    return info
