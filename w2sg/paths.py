"""Output folders proven writable before any long work (a leaf module).

It also holds :func:`slug`, the one encoder of names (losses, tasks, baselines, typed
generators) used in file and folder names, so no name can leave its folder.

Every command that writes files (``check``, ``run``, ``figs``, ``reproduce``, ``bench``)
calls :func:`results_dir` on its ``--out`` and :func:`writable_dir` on each folder it
will write, *before* it trains, checks or plots anything: a file in place of the folder,
a read-only directory, ``/proc/1/x`` or ``--out ''`` is refused with one line
(:class:`w2sg.errors.UsageError`, exit status 2) instead of a traceback at the end.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from .errors import UsageError
from .records import results_root

__all__ = ["results_dir", "writable_dir", "slug"]

#: Longest name :func:`slug` keeps readable (file systems allow 255 bytes per name; the
#: writers add a prefix/suffix to it).
SLUG_MAX = 100


def slug(text: str) -> str:
    """``text`` as one safe file or folder name: itself when it is made of letters, digits,
    ``_ . : -`` (``:`` becomes ``-``; ``alpha:0.5`` → ``alpha-0.5``), does not start with
    ``.`` (no ``.``, ``..`` or hidden name) and has at most :data:`SLUG_MAX` characters;
    otherwise ``expr-<8 hex digits of its hash>``.  The result never contains ``/`` and
    never names a parent folder, so a name (``../../x``, ``(t-1)**2/(t+1)``) cannot make a
    writer leave its folder or create a subfolder.
    """
    text = str(text)
    if re.fullmatch(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]*", text) and len(text) <= SLUG_MAX:
        return text.replace(":", "-")
    # the same digest as records.config_hash({"x": text}) (unchanged names of older sweeps)
    digest = hashlib.sha256(json.dumps({"x": text}, sort_keys=True, default=str,
                                       separators=(",", ":")).encode()).hexdigest()
    return "expr-" + digest[:8]


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
    try:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), None)
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EACCES on a parent, ...
        raise UsageError(_unwritable(what, folder, exc, flag)) from None
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"{what} {str(folder)!r} is not writable: {str(blocker)!r} is a file, "
                         f"not a folder; choose another with {flag}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".w2sg-probe-")
        os.close(fd)
        os.unlink(probe)
    except (OSError, ValueError) as exc:
        raise UsageError(_unwritable(what, folder, exc, flag)) from None
    return folder


def _unwritable(what: str, folder: Path, exc: Exception, flag: str) -> str:
    reason = getattr(exc, "strerror", None) or str(exc)
    if getattr(exc, "errno", None) == errno.ENAMETOOLONG:
        reason += " (the file system limits a name to 255 bytes and a path to 4096)"
    shown = str(folder) if len(str(folder)) <= 120 else str(folder)[:60] + "…" + str(folder)[-40:]
    return f"{what} {shown!r} is not writable ({reason}); choose another with {flag}"
