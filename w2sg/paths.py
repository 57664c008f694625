"""Output folders proven writable before any long work (a leaf module).

Every command that writes files (``check``, ``run``, ``figs``, ``reproduce``, ``bench``)
calls :func:`results_dir` on its ``--out`` and :func:`writable_dir` on each folder it
will write, *before* it trains, checks or plots anything: a file in place of the folder,
a read-only directory, ``/proc/1/x`` or ``--out ''`` is refused with one line
(:class:`w2sg.errors.UsageError`, exit status 2) instead of a traceback at the end.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError
from .records import results_root

__all__ = ["results_dir", "writable_dir"]


def results_dir(out: str | os.PathLike | None, flag: str = "--out") -> Path:
    """The results root: ``out``, else ``$W2SG_RESULTS``, else ``./results``.

    Refuses an empty or blank ``out`` (``--out ''`` would otherwise silently mean
    ``./results``) and a path containing a NUL byte.  Does not touch the file system.
    """
    if out is not None:
        text = os.fspath(out)
        if not str(text).strip():
            raise UsageError(f"{flag} is empty; give a folder, e.g. {flag} results")
        if "\0" in str(text):
            raise UsageError(f"{flag} {text!r} contains a NUL byte")
    return results_root(out)


def writable_dir(folder: str | os.PathLike, what: str = "output folder",
                 flag: str = "--out") -> Path:
    """Create ``folder`` (with parents) and prove a file can be created in it; return it.

    Raises :class:`UsageError` naming the folder and the reason (a file is in the way,
    permission denied, read-only file system, …) and the flag that chooses another.
    """
    folder = Path(folder)
    blocker = next((p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"{what} {str(folder)!r} is not writable: {str(blocker)!r} is a file, "
                         f"not a folder; choose another with {flag}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".w2sg-probe-")
        os.close(fd)
        os.unlink(probe)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"{what} {str(folder)!r} is not writable ({reason}); "
                         f"choose another with {flag}") from None
    return folder
