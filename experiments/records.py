"""Results are data: JSON records written atomically, with config, code version and seeds.

Layout under the results root (``--out``, else ``$W2SG_RESULTS``, else ``./results``)::

    checks/   numerics records (``w2sg check``)
    runs/     one record per W2SG training run (``w2sg run``)
    bench/    benchmark records (``w2sg bench``)
    figures/  PNG + PDF figures (``w2sg figs``)
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["results_root", "write_record", "read_record", "read_records", "config_hash",
           "code_version"]


def results_root(out: str | os.PathLike | None = None) -> Path:
    """The results root: ``out``, else ``$W2SG_RESULTS``, else ``./results``."""
    return Path(out or os.environ.get("W2SG_RESULTS") or "results")


def config_hash(config: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a JSON-able config (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_CODE_VERSION: str | None = None


def code_version() -> str:
    """``git describe`` of the toolkit checkout (``+dirty`` if modified), else the package version."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        here = Path(__file__).resolve().parent.parent
        try:
            out = subprocess.run(["git", "describe", "--always", "--dirty=+dirty"], cwd=here,
                                 capture_output=True, text=True, timeout=5)
            _CODE_VERSION = out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.SubprocessError):
            _CODE_VERSION = ""
        if not _CODE_VERSION:
            from w2sg import __version__
            _CODE_VERSION = f"w2sg-{__version__}"
    return _CODE_VERSION


def write_record(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON to ``path`` atomically (temp file + ``os.replace``).

    Adds ``code_version`` and ``written_at`` unless present.  A reader never sees a
    half-written file, and an interrupted write leaves no record at all.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(record)
    record.setdefault("code_version", code_version())
    record.setdefault("written_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=1, sort_keys=False, default=_jsonable)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _jsonable(value):
    import numpy as np
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def read_records(folder: str | os.PathLike, pattern: str = "*.json") -> list[dict[str, Any]]:
    """Every record under ``folder`` matching ``pattern`` (recursively), sorted by path."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return [read_record(p) for p in sorted(folder.rglob(pattern)) if not p.name.startswith(".")]
