"""Local backend: the jobs of a sweep on worker processes of this machine.

Each worker is one process with its own pipe; it takes one job at a time.  The owner
waits on every busy worker's pipe *and* its process sentinel, so a worker that dies
(``kill -9``, the out-of-memory killer) is seen at once: its job is run again on a fresh
worker, at most :data:`MAX_ATTEMPTS` times in all; a job still lost after that, or one that
raised, is reported in :class:`~experiments.backends.errors.SweepJobsFailed` once every
other job has finished.  Nothing ever waits on a dead worker.

Ctrl-C (``SIGINT`` to the process group, or to the owner alone) stops the sweep: no new
job starts, every worker gets ``SIGTERM`` (it exits through ``finally`` blocks, so an
atomic write leaves no temporary file), one still alive after :data:`STOP_GRACE_S` seconds
gets ``SIGKILL``, each is reaped, and :class:`KeyboardInterrupt` propagates.  Workers
ignore ``SIGINT`` themselves, and further Ctrl-Cs during that clean-up are ignored
(:mod:`experiments.backends.interrupts`).  Records of finished jobs are kept: rerunning
resumes.

The backend does not know what a job is: the caller passes ``run_job(job)`` and
``init_worker()`` (module-level functions, so they reach the workers by reference).
The start method is ``$W2SG_START_METHOD`` if set (validated: :func:`start_method`).
"""
from __future__ import annotations

import os
import pickle
import time
from collections import deque
from typing import Callable, Sequence

from .errors import SweepJobsFailed
from .interrupts import critical, interrupt_guard, sigint_blocked, worker_signals

__all__ = ["run_phases", "start_method", "MAX_ATTEMPTS", "STOP_GRACE_S", "StartMethodError"]

#: A job whose worker died is run at most this many times in all.
MAX_ATTEMPTS = 2
#: Seconds a stopping worker has between ``SIGTERM`` and ``SIGKILL``.
STOP_GRACE_S = 2.0
#: Seconds to wait for a worker to vanish after ``SIGKILL``.
KILL_WAIT_S = 5.0


class StartMethodError(ValueError):
    """``$W2SG_START_METHOD`` names no start method this platform has."""


def start_method() -> str:
    """``fork`` where the platform has it (workers inherit the imported modules: a spawned
    worker spends seconds importing torch, which dominated small sweeps), else ``spawn``.
    ``$W2SG_START_METHOD`` overrides; a value the platform lacks raises
    :class:`StartMethodError` (one line naming the valid ones)."""
    import multiprocessing as mp
    valid = mp.get_all_start_methods()
    wanted = os.environ.get("W2SG_START_METHOD", "").strip()
    if wanted:
        if wanted not in valid:
            raise StartMethodError(f"$W2SG_START_METHOD={wanted!r} is not a start method of this "
                                   f"platform; valid: {', '.join(valid)} (or unset it)")
        return wanted
    return "fork" if "fork" in valid else "spawn"


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError carrying its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _exit_with_parent() -> None:
    """Linux: this process gets ``SIGTERM`` when its parent dies (even by ``SIGKILL``)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except (OSError, AttributeError):
        pass


def _serve(conn, run_job: Callable, init_worker: Callable) -> None:  # runs in the worker
    worker_signals()
    _exit_with_parent()
    init_worker()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # the owner has gone
        if job is None:
            return
        try:
            run_job(job)
            reply = None
        except Exception as exc:  # noqa: BLE001 - sent to the owner, reported there
            reply = _portable(exc)
        conn.send(reply)


class _Worker:
    """One worker process, the pipe it takes jobs from and the job it runs (an index)."""

    def __init__(self, ctx, run_job: Callable, init_worker: Callable):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, run_job, init_worker),
                                name="w2sg-worker")
        with sigint_blocked():  # it starts with SIGINT blocked, then ignores it
            self.proc.start()
        child.close()
        self.job: int | None = None

    def give(self, index: int, job) -> None:
        """Send ``job`` (to a worker that has died meanwhile: its sentinel says so)."""
        self.job = index
        try:
            self.conn.send(job)
        except OSError:
            pass

    def outcome(self, ready) -> tuple[bool, BaseException | None] | None:
        """``(alive, error)`` once the job has ended (error None: done; alive False: the
        worker died), ``None`` while it runs."""
        if self.conn in ready or self.conn.poll():
            try:
                return True, self.conn.recv()
            except (EOFError, OSError):
                return False, None
            except Exception as exc:  # noqa: BLE001 - an unreadable reply is the job's error
                return True, RuntimeError(f"unreadable result: {exc}")
        if self.proc.sentinel in ready:
            return False, None
        return None


class _Pool:
    """Up to ``size`` workers, started on demand and replaced when one dies."""

    def __init__(self, ctx, size: int, run_job: Callable, init_worker: Callable):
        self.ctx, self.size, self.run_job, self.init_worker = ctx, size, run_job, init_worker
        self.workers: list[_Worker] = []

    def _idle(self) -> _Worker:
        for w in list(self.workers):
            if w.job is None:
                if w.proc.is_alive():
                    return w
                self._retire(w)  # died while idle (it ran no job)
        with critical():  # a Ctrl-C now waits until the new worker is in the list to stop
            w = _Worker(self.ctx, self.run_job, self.init_worker)
            self.workers.append(w)
        return w

    def _has_idle(self) -> bool:
        return len(self.workers) < self.size or any(w.job is None for w in self.workers)

    def _retire(self, w: _Worker) -> None:
        self.workers.remove(w)
        w.conn.close()
        w.proc.join(STOP_GRACE_S)
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(KILL_WAIT_S)

    def run_phase(self, phase: Sequence, progress) -> tuple[int, int, list]:
        """Run every job of ``phase``; ``(executed, retried, failures)``."""
        from multiprocessing.connection import wait
        queue, attempts = deque(range(len(phase))), [0] * len(phase)
        executed, retried, failures = 0, 0, []
        while queue or any(w.job is not None for w in self.workers):
            while queue and self._has_idle():
                i = queue.popleft()
                attempts[i] += 1
                self._idle().give(i, phase[i])  # a dead worker shows up in the wait below
            busy = [w for w in self.workers if w.job is not None]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for w in busy:
                result = w.outcome(ready)
                if result is None:
                    continue
                i, (alive, error) = w.job, result
                w.job = None
                if not alive:
                    self._retire(w)
                    if attempts[i] < MAX_ATTEMPTS:
                        queue.appendleft(i)
                        retried += 1
                        continue
                    error = RuntimeError(f"its worker process died {attempts[i]} times "
                                         "(killed, or out of memory)")
                if error is None:
                    executed += 1
                else:
                    failures.append((phase[i], error))
                if progress is not None:
                    progress(1)
        return executed, retried, failures

    def close(self) -> None:
        """Let the (idle) workers exit, and reap them."""
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        self.stop(grace=10.0, terminate=False)

    def stop(self, grace: float = STOP_GRACE_S, terminate: bool = True) -> None:
        """Every worker ends within ``grace`` seconds (after ``SIGTERM`` when ``terminate``),
        else gets ``SIGKILL``; each is reaped."""
        deadline = time.monotonic() + grace
        if terminate:
            for w in self.workers:
                if w.proc.is_alive():
                    w.proc.terminate()
        for w in self.workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(KILL_WAIT_S)  # only a process in uninterruptible sleep outlasts this
            w.conn.close()
        self.workers = []


def _inline(phases, run_job: Callable, init_worker: Callable, progress) -> tuple[int, list]:
    init_worker()
    executed, failures = 0, []
    for phase in phases:
        for job in phase:
            try:
                run_job(job)
                executed += 1
            except Exception as exc:  # noqa: BLE001 - reported together below
                failures.append((job, exc))
            if progress is not None:
                progress(1)
    return executed, failures


def run_phases(phases: Sequence[Sequence[tuple]], run_job: Callable, init_worker: Callable,
               workers: int = 2, progress: Callable[[int], object] | None = None) -> dict:
    """Run ``phases`` (lists of jobs) one after another, the jobs of a phase in parallel.

    ``workers <= 1`` runs every job in this process.  Returns ``{"executed", "retried"}``;
    raises :class:`SweepJobsFailed` naming every job that raised or was lost, and
    :class:`KeyboardInterrupt` after a Ctrl-C, once every worker is gone.
    """
    import multiprocessing as mp
    executed, retried = 0, 0
    with interrupt_guard():
        if workers <= 1 or sum(len(p) for p in phases) <= 1:
            executed, failures = _inline(phases, run_job, init_worker, progress)
        else:
            ctx = mp.get_context(start_method())
            pool, failures = _Pool(ctx, workers, run_job, init_worker), []
            try:
                for phase in phases:  # references first: runs read them
                    done, again, lost = pool.run_phase(phase, progress)
                    executed, retried, failures = executed + done, retried + again, failures + lost
                pool.close()
            except BaseException:  # Ctrl-C (or a bug here): stop every worker, then go on
                pool.stop()
                raise
    if failures:
        raise SweepJobsFailed(failures, "local")
    return {"executed": executed, "retried": retried}
