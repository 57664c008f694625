"""A real time limit around symbolic work: run it in a forked child, kill it when late.

sympy cannot be interrupted reliably from inside (a ``SIGALRM`` handler only runs
between bytecodes, not inside a long big-integer multiplication or a C-level loop), so
:func:`bounded` runs ``fn(*args)`` in a child process made with ``os.fork`` (cheap: the
child shares the parent's loaded modules copy-on-write) and reads the pickled result back
through a pipe.  The limit is on the child's *CPU time* (``RLIMIT_CPU``: the kernel stops
it), so a busy machine does not turn normal work into a refusal; a wall-clock backstop
of :data:`WALL_FACTOR` times the limit ``SIGKILL``s a child that sleeps or waits.  The result must
be picklable (plain data or sympy expressions).  Exceptions raised by ``fn`` are re-raised
in the parent; a child that dies (out of memory, a crash) or runs past the limit ends in
:class:`TooExpensive`, a :class:`theory.parsing.GeneratorError` (one line, exit 2 on the CLI).

Where ``os.fork`` is missing (Windows) ``fn`` runs in-process without a limit.
The limit in seconds is ``$W2SG_SYMBOLIC_TIMEOUT`` (default :data:`DEFAULT_SECONDS`; a value
that is not a number of seconds is refused: :class:`BadTimeout`).
"""
from __future__ import annotations

import math
import os
import pickle
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable

from .parsing import GeneratorError

__all__ = ["TooExpensive", "BadTimeout", "bounded", "symbolic_timeout", "DEFAULT_SECONDS",
           "MAX_SECONDS", "SoftTimeout", "soft_time_limit"]

#: Default CPU-time limit of one :func:`bounded` call (``derive --f js``: about 1.5 s).
DEFAULT_SECONDS = 10.0
#: The wall-clock backstop is this many times the CPU limit.
WALL_FACTOR = 4.0


class TooExpensive(GeneratorError):
    """Symbolic work ran past its time limit or exhausted the child's resources."""


#: The largest ``$W2SG_SYMBOLIC_TIMEOUT`` accepted (one day).
MAX_SECONDS = 86400.0


class BadTimeout(GeneratorError):
    """``$W2SG_SYMBOLIC_TIMEOUT`` is set to something that is not a time limit."""


def symbolic_timeout() -> float:
    """``$W2SG_SYMBOLIC_TIMEOUT`` in seconds, the default :data:`DEFAULT_SECONDS` when unset
    or blank; any other value than a number in ``(0, MAX_SECONDS]`` raises
    :class:`BadTimeout` (one line on the command line, exit status 2)."""
    text = os.environ.get("W2SG_SYMBOLIC_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_SECONDS:  # NaN fails too
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise BadTimeout(f"$W2SG_SYMBOLIC_TIMEOUT={shown!r} is not a number of seconds in "
                         f"(0, {MAX_SECONDS:.0f}]; unset it for the default {DEFAULT_SECONDS:g} s")
    return value


def _child(fn: Callable, args: tuple, write_fd: int, seconds: float) -> None:  # pragma: no cover
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            import resource
            used = resource.getrusage(resource.RUSAGE_SELF)
            spent = used.ru_utime + used.ru_stime  # inherited from the parent by fork
            soft = int(math.ceil(spent + seconds))
            resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))  # SIGXCPU, then SIGKILL
        except (ImportError, ValueError, OSError):
            pass
        try:
            payload = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            payload = (False, exc)
        try:
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable result or exception
            err = payload[1] if not payload[0] else exc
            data = pickle.dumps((False, RuntimeError(f"{type(err).__name__}: {err}")))
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        for stream in (sys.stdout, sys.stderr):  # os._exit skips Python's own flushing
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)


def bounded(fn: Callable[..., Any], *args, seconds: float | None = None,
            what: str = "this symbolic computation") -> Any:
    """``fn(*args)`` computed in a child process that is killed after ``seconds``.

    Raises:
        TooExpensive: the child ran past ``seconds`` or died without answering
            (message: ``"<what> is too expensive (...)"``).
        Exception: whatever ``fn`` raised, re-raised in the parent.
    """
    seconds = symbolic_timeout() if seconds is None else seconds
    if not hasattr(os, "fork"):
        return fn(*args)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        os.close(read_fd)
        _child(fn, args, write_fd, seconds)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + WALL_FACTOR * seconds
    late = False
    answered = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                late = True
                break
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                answered = True
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if not answered:  # late, or interrupted (Ctrl-C): never leave the child running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
    cpu_out = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (
        getattr(signal, "SIGXCPU", -1), signal.SIGKILL) and not chunks
    if late or cpu_out:
        spent = f"{WALL_FACTOR * seconds:g} s" if late else f"{seconds:g} s of CPU time"
        raise TooExpensive(f"{what} is too expensive: stopped after {spent} "
                           f"(W2SG_SYMBOLIC_TIMEOUT sets the limit in seconds)")
    try:
        ok, value = pickle.loads(b"".join(chunks))
    except Exception:
        how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"status {os.WEXITSTATUS(status)}")
        raise TooExpensive(f"{what} is too expensive: its worker died ({how}; out of memory?)") from None
    if ok:
        return value
    if isinstance(value, (RecursionError, MemoryError)):
        raise TooExpensive(f"{what} is too expensive ({type(value).__name__})")
    raise value


class SoftTimeout(Exception):
    """Raised inside :func:`soft_time_limit` when its time is up."""


@contextmanager
def soft_time_limit(seconds: float, cpu: bool = False):
    """Best effort: interrupt slow sympy work after ``seconds`` with :class:`SoftTimeout`.

    A ``SIGALRM`` handler, so main thread only (no limit elsewhere), and it fires only
    between Python bytecodes: used to give up on an optional ``simplify`` and move on.
    The handler re-arms itself every 50 ms until the block is left, so sympy code that
    catches the exception (``except Exception``) is interrupted again.
    ``cpu``: count this process's CPU time instead (``SIGPROF``), so the outcome does not
    depend on how busy the machine is, and an outer ``SIGALRM`` is left alone.
    The hard limit of a whole command is :func:`bounded`.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    sig, timer = (signal.SIGPROF, signal.ITIMER_PROF) if cpu else (signal.SIGALRM, signal.ITIMER_REAL)

    def handler(signum, frame):
        # re-armed: sympy code that swallows the exception (``except Exception``) is
        # interrupted again 50 ms later, until the block is left
        signal.setitimer(timer, 0.05)
        raise SoftTimeout()
    old = signal.signal(sig, handler)
    signal.setitimer(timer, seconds)
    try:
        yield
    finally:
        signal.setitimer(timer, 0)
        signal.signal(sig, old)
