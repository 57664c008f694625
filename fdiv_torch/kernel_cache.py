"""Where generated kernels (Triton modules, compiled C libraries) are cached on disk."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["kernel_cache_dir"]


def kernel_cache_dir(kind: str) -> Path:
    """``$W2SG_KERNEL_CACHE/<kind>``, else ``$XDG_CACHE_HOME/w2sg/<kind>`` (default
    ``~/.cache/w2sg/<kind>``), created if needed; a per-user folder under the system's
    temporary directory when that one is not writable.  Files in it are named by the hash
    of what they were generated from, so a stale file is never picked up."""
    base = os.environ.get("W2SG_KERNEL_CACHE")
    root = Path(base) / kind if base else Path(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")) / "w2sg" / kind
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"w2sg-{kind}-{uid}"
    path.mkdir(parents=True, exist_ok=True)
    return path
