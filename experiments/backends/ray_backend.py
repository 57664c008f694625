"""Ray backend: ``w2sg run --backend ray [--address ADDR]``.

Each pending job of a sweep (a reference, then the W2S runs) becomes one Ray task that
calls the same job function as the local backend (:func:`experiments.runner.run_job`,
passed in by the caller, after :func:`experiments.runner.init_worker`), so
records, paths and resume semantics are unchanged: the driver decides what is still to
do from the records on disk, and every task writes its own record atomically
(:func:`w2sg.records.write_record`), so a task that dies mid-run leaves no
record.  A task whose *worker process* dies (killed, out of memory, node lost) is
retried by Ray (``max_retries``, default 3); a task that raises is not retried, and all
failures are reported together at the end (the other runs' records are kept: rerunning
the sweep resumes with just the failed ones).  Ctrl-C cancels (force) every task of the
sweep still pending and, for a Ray started here, shuts it down; later Ctrl-Cs are ignored
until that is done.

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

from .errors import SweepJobsFailed
from .interrupts import interrupt_guard

__all__ = ["require_ray", "run_phases", "RayRunError"]

_ROOT = Path(__file__).resolve().parent.parent.parent


class RayRunError(SweepJobsFailed):
    """Some runs failed on Ray (after retries); ``failures`` lists ``(job, error)``."""

    def __init__(self, failures):
        super().__init__(failures, "Ray")


def require_ray():
    """``import ray`` or raise ``ImportError`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray backend needs the optional dependency ray: "
                          "pip install 'w2sg[ray]' (or pip install 'ray>=2.9')") from exc
    return ray


def _ray_task(run_job: Callable, init_worker: Callable, job):
    """Body of one Ray task: the caller's job function after its worker set-up."""
    init_worker()
    return run_job(job)


def _cancel(ray, refs) -> None:
    """Cancel (force: kill the worker) every task of ``refs`` that has not finished."""
    for ref in list(refs):
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - finished meanwhile, or the cluster is gone
            pass


def _local_runtime_env() -> dict:
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path}
    for key in ("W2SG_CACHE", "W2SG_RESULTS", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return {"env_vars": env}


def run_phases(phases: Sequence[Iterable[tuple]], run_job: Callable, init_worker: Callable,
               address: str | None = None,
               workers: int | None = None, progress: Callable[[int], object] | None = None,
               max_retries: int = 3, runtime_env: dict | None = None) -> dict:
    """Run ``phases`` (lists of jobs) on Ray, one phase after another: each job is one task
    calling ``init_worker()`` then ``run_job(job)`` (module-level functions).

    Returns ``{"executed", "address"}``; raises :class:`RayRunError`
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
    task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(_ray_task)
    failures, executed, pending = [], 0, {}
    with interrupt_guard():
        try:
            for phase in phases:  # references first: runs read them
                pending = {task.remote(run_job, init_worker, job): job for job in phase}
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
        except BaseException:  # Ctrl-C: no task of this sweep goes on running
            _cancel(ray, pending)
            raise
        finally:
            if started:
                ray.shutdown()
    if failures:
        raise RayRunError(failures)
    return info
