"""Copy the made figures, shrunk, into ``docs/figures/`` for the README gallery.

``python3 -m paper_figs.gallery [--out RESULTS_ROOT] [--dest docs/figures]``: every PNG
under ``<root>/figures`` (from ``w2sg figs``) is resized to at most 1000 px wide and saved
under 200 KB, with its caption file and its list of records (``.records.json``) next to it.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

LIMIT = 200 * 1024


def shrink(src: Path, dest: Path, width: int = 1000) -> int:
    from PIL import Image
    img = Image.open(src).convert("RGB")
    while True:
        im = img.copy()
        im.thumbnail((width, 10 * width))
        im = im.quantize(colors=128)
        im.save(dest, optimize=True)
        if dest.stat().st_size <= LIMIT or width < 400:
            return dest.stat().st_size
        width = int(width * 0.8)


def main(argv=None) -> int:
    from w2sg.records import results_root
    ap = argparse.ArgumentParser(prog="python3 -m paper_figs.gallery", description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="results root (default $W2SG_RESULTS or ./results)")
    ap.add_argument("--dest", default=str(Path(__file__).resolve().parent.parent / "docs" / "figures"))
    args = ap.parse_args(argv)
    src = results_root(args.out) / "figures"
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for png in sorted(src.glob("*.png")):
        size = shrink(png, dest / png.name)
        for side in (png.with_suffix(".txt"), png.with_suffix(".records.json")):
            if side.exists():
                shutil.copyfile(side, dest / side.name)
        print(f"{dest / png.name}  {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
