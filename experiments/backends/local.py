"""Local backend: the jobs of a sweep on a pool of worker processes on this machine.

A worker that dies (``kill -9``, the out-of-memory killer) breaks the pool
(:class:`concurrent.futures.process.BrokenProcessPool`): every job that had not finished
is retried once on a fresh pool; a job that is still lost after that, or that raised, is
reported in :class:`~experiments.backends.errors.SweepJobsFailed` once every other job
has finished.  Nothing ever waits on a dead worker.

The backend does not know what a job is: the caller passes ``run_job(job)`` and
``init_worker()`` (module-level functions, so they reach the workers by reference).
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from .errors import SweepJobsFailed

__all__ = ["run_phases", "start_method", "MAX_ATTEMPTS"]

#: A job whose worker died is run at most this many times in all.
MAX_ATTEMPTS = 2


def start_method() -> str:
    """``fork`` where the platform has it (workers inherit the imported modules: a spawned
    worker spends seconds importing torch, which dominated small sweeps), else ``spawn``.
    ``$W2SG_START_METHOD`` overrides."""
    import multiprocessing as mp
    wanted = os.environ.get("W2SG_START_METHOD")
    if wanted:
        return wanted
    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def run_phases(phases: Sequence[Sequence[tuple]], run_job: Callable, init_worker: Callable,
               workers: int = 2, progress: Callable[[int], object] | None = None) -> dict:
    """Run ``phases`` (lists of jobs) one after another, the jobs of a phase in parallel.

    ``workers <= 1`` runs every job in this process.  Returns ``{"executed", "retried"}``;
    raises :class:`SweepJobsFailed` naming every job that raised or was lost.
    """
    import multiprocessing as mp
    failures, executed, retried = [], 0, 0
    if workers <= 1 or sum(len(p) for p in phases) <= 1:
        init_worker()
        for phase in phases:
            for job in phase:
                try:
                    run_job(job)
                    executed += 1
                except Exception as exc:  # noqa: BLE001 - reported together below
                    failures.append((job, exc))
                if progress is not None:
                    progress(1)
    else:
        ctx = mp.get_context(start_method())
        for phase in phases:  # references first: runs read them
            attempts = {i: 0 for i in range(len(phase))}
            todo = list(range(len(phase)))
            while todo:
                retry = []
                with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker) as pool:
                    futures = {}
                    for i in todo:
                        attempts[i] += 1
                        futures[pool.submit(run_job, phase[i])] = i
                    pending = set(futures)
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            i = futures[fut]
                            try:
                                fut.result()
                            except BrokenProcessPool:
                                if attempts[i] < MAX_ATTEMPTS:
                                    retry.append(i)
                                    continue
                                failures.append((phase[i], RuntimeError(
                                    f"its worker process died {attempts[i]} times (killed, or out of memory)")))
                            except Exception as exc:  # noqa: BLE001 - reported together below
                                failures.append((phase[i], exc))
                            else:
                                executed += 1
                            if progress is not None:
                                progress(1)
                retried += len(retry)
                todo = sorted(retry)
    if failures:
        raise SweepJobsFailed(failures, "local")
    return {"executed": executed, "retried": retried}
