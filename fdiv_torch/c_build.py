"""Compiling the generated C kernels (:mod:`fdiv_torch.c_kernel`) into cached shared libraries.

* **Compiler.**  ``$W2SG_CC`` — a command line, split like a shell would (``shlex``) but never
  run through one (``W2SG_CC='gcc -O0'``: its arguments follow the kernel's flags, so they
  win); ``W2SG_CC=none`` turns the C kernel off; else ``cc``, ``gcc`` or ``clang`` on
  ``PATH``.  :func:`compiler` says in one line what is wrong with it.
* **Cache.**  Libraries live in :func:`fdiv_torch.kernel_cache.kernel_cache_dir` ``("c")`` (a
  folder only the user can write), named by the hash of the source, the flags, the compiler
  (its command line and the identity of its executable: path, size, time) and the CPU.  A
  library is stored with its SHA-256 and loaded only when it still matches
  (:func:`fdiv_torch.kernel_cache.verified`); a damaged one is rebuilt.
* **One deadline.**  The compiler runs in its own process group, killed when it overruns;
  a process waits for compilers that fail or time out at most ``$W2SG_CC_TIMEOUT`` seconds
  in total (default :data:`DEFAULT_TIMEOUT_S` = 60; successful builds, about a second each,
  do not count).
* **Failures remembered.**  A compiler that timed out is remembered for all builds
  (:data:`TIMEOUT_TTL_S`); a flag set the compiler rejects, for that flag set
  (:data:`FAILED_TTL_S`); faults that pass (a full disk, no memory, an ``OSError``, a
  compiler killed by a signal) for :data:`TRANSIENT_TTL_S` only.  No later process waits for
  them again until they expire.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .kernel_cache import kernel_cache_dir, remember_failure, remembered_failure, store_verified, verified
from .printing import Unsupported

__all__ = ["compiler", "compile_flags", "library", "forget", "BuildFailed", "FLAG_SETS", "DEFAULT_TIMEOUT_S",
           "TIMEOUT_TTL_S", "FAILED_TTL_S", "TRANSIENT_TTL_S"]

#: Seconds a process waits, in total, for compilers that fail or time out (``$W2SG_CC_TIMEOUT``).
DEFAULT_TIMEOUT_S = 60.0
#: How long a timed-out compiler, a rejected flag set and a transient fault are remembered.
TIMEOUT_TTL_S = 86400.0
FAILED_TTL_S = 86400.0
TRANSIENT_TTL_S = 300.0
#: Compiler messages of faults that pass (the build is retried once the marker expires).
_TRANSIENT = ("No space left on device", "Disk quota exceeded", "Cannot allocate memory",
              "Read-only file system", "Too many open files", "Input/output error", "out of memory")

_BASE = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-pthread", "-fopenmp-simd", "-fno-math-errno",
         "-fno-trapping-math"]
#: Tried in order: vector math and this CPU's instructions, then without libmvec, then plain.
FLAG_SETS = (["-march=native", "-DW2SG_MVEC"], ["-march=native"], [])

#: Seconds this process has waited for compilers that failed or timed out.
_WAITED = [0.0]


class BuildFailed(Exception):
    """A library could not be had (one line); ``final``: no other flag set is worth trying
    (the compiler timed out, the time budget is spent, no cache folder)."""

    def __init__(self, reason: str, final: bool = False):
        super().__init__(reason)
        self.final = final


def compiler() -> list[str]:
    """The compiler's command line (executable resolved on ``PATH``).  Raises
    :class:`~fdiv_torch.printing.Unsupported` saying what is wrong (off, not found,
    not a command line)."""
    raw = os.environ.get("W2SG_CC", "")
    if raw.strip().lower() in ("none", "0", "off", "false"):
        raise Unsupported(f"no C compiler (W2SG_CC={raw.strip()} turns the C kernel off)")
    if not raw.strip():
        exe = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if exe is None:
            raise Unsupported("no C compiler (no cc, gcc or clang on PATH; set $W2SG_CC)")
        return [exe]
    try:
        argv = shlex.split(raw)
    except ValueError as exc:
        raise Unsupported(f"W2SG_CC={raw!r} is not a command line ({exc})") from None
    exe = shutil.which(argv[0])
    if exe is None:
        raise Unsupported(f"W2SG_CC={raw!r}: {argv[0]!r} is not an executable file or a command on PATH")
    return [exe, *argv[1:]]


def _budget_s() -> float:
    raw = os.environ.get("W2SG_CC_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (0 < value <= 3600):
        raise Unsupported(f"W2SG_CC_TIMEOUT must be a number of seconds in (0, 3600], got {raw!r}")
    return value


def _compiler_key(cc: list[str]) -> str:
    """Names the compiler (command line, its executable's path, size and time) and this CPU
    (``-march=native``) without running anything."""
    real = os.path.realpath(cc[0])
    try:
        st = os.stat(real)
        ident = f"{real} {st.st_size} {st.st_mtime_ns} {st.st_ino}"
    except OSError:
        ident = real
    cpu = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu += next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return hashlib.sha256("\n".join([*cc, ident, cpu]).encode()).hexdigest()


def compile_flags(extra: list[str]) -> list[str]:
    """The compiler's command-line flags for one of :data:`FLAG_SETS` (``-lmvec`` with
    ``-DW2SG_MVEC``)."""
    return _BASE + extra + ["-lm"] + (["-lmvec"] if "-DW2SG_MVEC" in extra else [])


def library(source: str, flags: list[str]) -> Path:
    """The shared library of ``source`` built with ``flags``: the cached one if its SHA-256
    still matches, else built now (and cached).  Raises :class:`BuildFailed` (also when the
    failure is remembered from an earlier process) or
    :class:`~fdiv_torch.printing.Unsupported` (no usable compiler)."""
    cc = compiler()
    budget = _budget_s()
    try:
        cache = kernel_cache_dir("c")
    except OSError as exc:
        raise BuildFailed(f"no private folder for the compiled kernel: {exc}", final=True) from None
    key = _compiler_key(cc)
    cc_marker = cache / f"cc_{key[:20]}.failed"
    why = remembered_failure(cc_marker)
    if why is not None:
        raise BuildFailed(f"{why} (remembered in {cc_marker})", final=True)
    digest = hashlib.sha256("\n".join([source, " ".join(flags), key]).encode()).hexdigest()[:20]
    out = cache / f"w2sg_fdiv_{digest}.so"
    if verified(out):
        return out
    marker = out.with_suffix(".failed")
    why = remembered_failure(marker)
    if why is not None:
        raise BuildFailed(why)
    return _compile(cc, source, flags, out, marker, cc_marker, budget)


def forget(lib: Path, reason: str) -> None:
    """Remember that ``lib`` (built) does not load, and remove it."""
    remember_failure(lib.with_suffix(".failed"), reason, FAILED_TTL_S)
    for path in (lib, lib.with_name(lib.name + ".sha256")):
        try:
            path.unlink()
        except OSError:
            pass


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``argv`` in its own process group; on timeout the whole group is killed (a shell
    script's children would otherwise keep the pipes open) and ``TimeoutExpired`` raised."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def _compile(cc, source, flags, out: Path, marker: Path, cc_marker: Path, budget: float) -> Path:
    left = budget - _WAITED[0]
    if left <= 0:
        raise BuildFailed(f"this process already waited {budget:g} s for the C compiler ($W2SG_CC_TIMEOUT)",
                          final=True)
    t0 = time.monotonic()
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".build-"))
        try:
            (tmp / "kernel.c").write_text(source)
            done = _run([*cc[:1], str(tmp / "kernel.c"), "-o", str(tmp / "kernel.so"), *flags, *cc[1:]], left)
            if done.returncode == 0 and (tmp / "kernel.so").is_file() and (tmp / "kernel.so").stat().st_size:
                store_verified(tmp / "kernel.so", out)
                return out
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except subprocess.TimeoutExpired:
        _WAITED[0] += time.monotonic() - t0
        why = f"{shlex.join(cc)} did not finish within {left:.0f} s"
        remember_failure(cc_marker, why, TIMEOUT_TTL_S)
        raise BuildFailed(why, final=True) from None
    except OSError as exc:  # a full disk, a compiler that cannot be started, ...
        _WAITED[0] += time.monotonic() - t0
        why = f"{type(exc).__name__}: {exc}"
        remember_failure(marker, why, TRANSIENT_TTL_S)
        raise BuildFailed(why) from None
    _WAITED[0] += time.monotonic() - t0
    text = done.stdout or ""
    why = (text.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    if done.returncode == 0:
        why = "the compiler exited 0 but wrote no library"
    transient = done.returncode < 0 or any(s in text for s in _TRANSIENT)
    remember_failure(marker, why, TRANSIENT_TTL_S if transient else FAILED_TTL_S)
    raise BuildFailed(why)
