"""Ctrl-C during a sweep: the first one stops it, later ones cannot disturb the clean-up.

* :func:`interrupt_guard` (in the process that owns the workers): the first ``SIGINT``
  raises :class:`KeyboardInterrupt` as usual; every later one is ignored until the guard
  exits, so the clean-up that follows (stopping the workers, with bounded waits) runs to
  its end: a second Ctrl-C 0.3 s after the first never leaves workers behind or the
  process stuck in a half-finished shutdown.
* Workers ignore ``SIGINT`` (:func:`worker_signals`): Ctrl-C in a terminal reaches the
  whole process group, and only the owner decides what stops; an interrupt sent to the
  owner alone stops the workers just the same.  ``SIGINT`` stays blocked from before a
  worker is started (:func:`sigint_blocked`) until it ignores it, so no signal falls into
  the gap.  ``SIGTERM`` (sent by the owner when it stops) raises :class:`SystemExit` in the
  worker, so ``finally`` blocks (the temporary file of an atomic write) run before it exits.
* :func:`critical`: a Ctrl-C that comes while a worker is being started waits until the
  worker is recorded (so that it is stopped with the others), then raises.

Signals are POSIX; where a call is missing (Windows, a thread other than the main one)
the helpers do nothing.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["interrupt_guard", "critical", "sigint_blocked", "worker_signals"]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interrupt_guard(stay_ignored: bool = False):
    """Within the block the first ``SIGINT`` raises :class:`KeyboardInterrupt`, later ones
    are ignored; on exit the previous handler is restored, or, with ``stay_ignored`` and
    after an interrupt, ``SIGINT`` stays ignored (for a command that is ending: a late
    Ctrl-C cannot turn its exit into a traceback).  Inside another guard this one changes
    nothing (the outer one rules).  A process that ignores ``SIGINT`` already (started
    with ``nohup`` or in the background) keeps ignoring it; a handler set outside Python is
    left alone."""
    current = signal.getsignal(signal.SIGINT) if _main_thread() else signal.SIG_IGN
    if current in (signal.SIG_IGN, None) or getattr(current, "w2sg_guard", False):
        yield
        return
    hit = []

    def handler(signum, frame):
        if hit:
            return  # a later Ctrl-C: the workers are being stopped already (bounded)
        hit.append(signum)
        if _CRITICAL["depth"]:
            _CRITICAL["pending"] = True  # raised when the critical section ends
            return
        raise KeyboardInterrupt

    handler.w2sg_guard = True
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if hit and stay_ignored else current)


_CRITICAL = {"depth": 0, "pending": False}


@contextmanager
def critical():
    """A block that a guarded Ctrl-C does not cut in two (starting a worker and recording
    it): the interrupt is raised as soon as the block ends."""
    _CRITICAL["depth"] += 1
    try:
        yield
    finally:
        _CRITICAL["depth"] -= 1
        if not _CRITICAL["depth"] and _CRITICAL["pending"]:
            _CRITICAL["pending"] = False
            raise KeyboardInterrupt


@contextmanager
def sigint_blocked():
    """Block ``SIGINT`` in this thread for the block (a child forked or spawned inside it
    starts with it blocked; :func:`worker_signals` then ignores and unblocks it)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def worker_signals() -> None:
    """In a worker process, first thing: ignore ``SIGINT`` (a pending one is dropped), then
    unblock it; ``SIGTERM`` raises :class:`SystemExit`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _terminated)
