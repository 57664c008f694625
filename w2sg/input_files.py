"""Input files a user names (``--config``, ``--llm-data``): regular files only, opened
without ever blocking (a leaf module).

A FIFO named as an input would block ``open`` until some writer appears, a device may
never end; so the file is opened with ``O_NONBLOCK`` (harmless on a regular file) and
refused unless ``fstat`` of the opened descriptor says it is a regular file (no race
between a check and the open).  Every refusal is one line
(:class:`w2sg.errors.UsageError`, exit status 2) naming the file and the flag.
"""
from __future__ import annotations

import io
import os
import stat

from .errors import UsageError

__all__ = ["open_input", "read_input"]


def open_input(path: str | os.PathLike, flag: str, limit: int | None = None) -> io.BufferedReader:
    """``path`` opened for binary reading; refused (one line naming ``flag``) when it is
    missing, a folder, not a regular file, unreadable, or larger than ``limit`` bytes."""
    text = os.fspath(path)
    if "\0" in str(text):
        raise UsageError(f"{flag} {text!r} contains a NUL byte")
    try:
        fd = os.open(text, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UsageError(f"{flag} {text!r}: file not found") from None
    except IsADirectoryError:
        raise UsageError(f"{flag} {text!r} is a folder; give a file") from None
    except OSError as exc:
        raise UsageError(f"{flag} {text!r} cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{flag} {text!r} is a folder; give a file")
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{flag} {text!r} is not a regular file (a FIFO, device or socket); "
                             "give a file")
        if limit is not None and info.st_size > limit:
            raise UsageError(f"{flag} {text!r} is {info.st_size} bytes, more than the {limit} "
                             "an input of this kind can be")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: str | os.PathLike, flag: str, limit: int) -> bytes:
    """The bytes of ``path`` (:func:`open_input`; at most ``limit`` bytes)."""
    with open_input(path, flag, limit) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # it grew after the check
        raise UsageError(f"{flag} {os.fspath(path)!r} is more than the {limit} bytes an input "
                         "of this kind can be")
    return data
