"""Where generated kernels (Triton modules, compiled C libraries) are cached on disk, and how
the cache is trusted: like a compiler cache, never more than the user's own private files.

* **Folders.**  :func:`kernel_cache_dir` returns a folder that only the user can write: it and
  every folder above it are owned by the user or by root and not writable by group or others
  (a sticky folder such as ``/tmp`` excepted: others cannot rename what is in it).  The
  preferred folder (``$W2SG_KERNEL_CACHE/<kind>``, else ``$XDG_CACHE_HOME/w2sg/<kind>``,
  default ``~/.cache/w2sg/<kind>``) is used when it is trusted and writable; else
  ``$TMPDIR/w2sg-<kind>-<uid>``, created with mode 0700 and used only if it is a real folder
  owned by the user with mode 0700; else a fresh private folder (``mkdtemp``) for this
  process, removed at exit.
* **Files.**  :func:`trusted_file` refuses a file that is not a regular file owned by the user
  or that group or others can write.  :func:`store_verified` records a built file's SHA-256 in
  a sidecar (``<name>.sha256``, written atomically) and :func:`verified` checks file and
  sidecar before the file is loaded: a damaged (truncated, zeroed, replaced) library is
  rebuilt, never loaded.
* **Failures.**  :func:`remember_failure` writes a marker (``<name>.failed``: the reason and
  when it stops counting) so that no later process waits for a build that failed or timed
  out; :func:`remembered_failure` reads it and ignores (and removes) an expired one, so a
  transient fault (a full disk) never blocks a kernel forever.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

__all__ = ["kernel_cache_dir", "untrusted_dir_reason", "trusted_file", "write_atomic", "sha256_file",
           "store_verified", "verified", "remember_failure", "remembered_failure"]

_PRIVATE_TMP: dict[str, Path] = {}


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def untrusted_dir_reason(path: Path) -> str | None:
    """Why files under folder ``path`` could be written by another user (``None``: they cannot).

    ``path`` (symbolic links resolved) must be a folder owned by the user, not writable by
    group or others; each folder above it owned by the user or root and not writable by
    group or others unless sticky."""
    real = Path(os.path.realpath(path))
    uid = _uid()
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"{real}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{real} is not a folder"
    if st.st_uid != uid:
        return f"{real} is owned by uid {st.st_uid}, not by this user (uid {uid})"
    if st.st_mode & 0o022:
        return f"{real} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    for parent in real.parents:
        try:
            pst = os.stat(parent)
        except OSError as exc:
            return f"{parent}: {exc.strerror or exc}"
        if pst.st_uid not in (uid, 0):
            return f"{parent} (above {real}) is owned by uid {pst.st_uid}"
        if pst.st_mode & 0o022 and not pst.st_mode & stat.S_ISVTX:
            return f"{parent} (above {real}) is writable by group or others and not sticky"
    return None


def _preferred(kind: str) -> Path:
    base = os.environ.get("W2SG_KERNEL_CACHE")
    if base:
        return Path(base) / kind
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "w2sg" / kind


def _private_tmp(kind: str) -> Path:
    """``$TMPDIR/w2sg-<kind>-<uid>`` if it is (or can be made) this user's mode-0700 folder,
    else a fresh ``mkdtemp`` folder for this process (removed at exit)."""
    path = Path(tempfile.gettempdir()) / f"w2sg-{kind}-{_uid()}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        path = None
    if path is not None:
        try:
            st = os.lstat(path)
            if (stat.S_ISDIR(st.st_mode) and st.st_uid == _uid() and not st.st_mode & 0o077
                    and untrusted_dir_reason(path) is None):
                return path
        except OSError:
            pass
    if kind not in _PRIVATE_TMP:  # someone else's, or not private: never used
        fresh = Path(tempfile.mkdtemp(prefix=f"w2sg-{kind}-"))
        atexit.register(shutil.rmtree, fresh, True)
        _PRIVATE_TMP[kind] = fresh
    return _PRIVATE_TMP[kind]


def kernel_cache_dir(kind: str) -> Path:
    """A folder for generated kernels of ``kind`` that only this user can write (see the
    module's docstring for which one).  Files in it are named by the hash of what they were
    generated from, so a stale file is never picked up.

    Raises:
        OSError: not even a private temporary folder can be created.
    """
    root = _preferred(kind)
    try:
        if not root.is_dir():
            root.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(root, 0o700)
        if os.access(root, os.W_OK | os.X_OK) and untrusted_dir_reason(root) is None:
            return root
    except OSError:
        pass
    return _private_tmp(kind)


def trusted_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (not a link) owned by this user that group and
    others cannot write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == _uid() and not st.st_mode & 0o022


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename
    (a reader sees the old file or the whole new one).  Raises ``OSError`` (a full disk)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def store_verified(built: Path, path: Path) -> None:
    """Move the freshly built file ``built`` to ``path`` (atomically), after writing its
    SHA-256 to ``path``'s sidecar.  Raises ``OSError``."""
    write_atomic(_sidecar(path), (sha256_file(built) + "\n").encode())
    os.replace(built, path)


def verified(path: Path) -> bool:
    """Whether ``path`` and its sidecar are trusted files (:func:`trusted_file`) and the
    file's SHA-256 is the one recorded when it was built."""
    side = _sidecar(path)
    if not (trusted_file(path) and trusted_file(side)):
        return False
    try:
        return side.read_text().strip() == sha256_file(path)
    except (OSError, UnicodeDecodeError):
        return False


def remember_failure(marker: Path, reason: str, ttl_s: float) -> None:
    """Write ``marker``: ``reason`` (one line), valid for ``ttl_s`` seconds.  Never raises
    (a full disk leaves nothing remembered: the build is then tried again)."""
    data = json.dumps({"reason": reason.replace("\n", " ")[:500], "until": time.time() + ttl_s})
    try:
        write_atomic(marker, data.encode())
    except OSError:
        pass


def remembered_failure(marker: Path, legacy_ttl_s: float = 86400.0) -> str | None:
    """The reason recorded in ``marker`` while it is valid, else ``None`` (an expired or
    untrusted marker is removed).  A marker of an older version (plain text) counts for
    ``legacy_ttl_s`` seconds after it was written."""
    if not marker.exists():
        return None
    try:
        if trusted_file(marker):
            text = marker.read_text(errors="replace")
            try:
                data = json.loads(text)
                reason, until = str(data["reason"]), float(data["until"])
            except (ValueError, KeyError, TypeError):
                reason, until = text.strip() or "?", marker.stat().st_mtime + legacy_ttl_s
            if time.time() < until:
                return reason
        marker.unlink()
    except OSError:
        pass
    return None
