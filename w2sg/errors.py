"""Errors a user can fix (a leaf module: it imports nothing of the toolkit).

Raising :class:`UsageError` from a command's ``func(args)`` prints one line and exits
with status 2 (:func:`w2sg.cli.main`).
"""
from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A bad argument: one line that says what is wrong and how to fix it."""
