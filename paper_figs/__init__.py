"""Paper figures from stored records (rliable style: readers/aggregators apart from plotting).

* :mod:`paper_figs.readers` turns the records of ``w2sg run`` (``<root>/runs/``),
  ``w2sg check`` (``<root>/checks/``) and ``w2sg bench`` (``<root>/bench/``) into flat rows,
  through the one results loader :func:`w2sg.results.load` (each record read once per
  command); :mod:`paper_figs.compare_data` does the same for ``w2sg compare``.
* :mod:`paper_figs.aggregate` re-exports :mod:`w2sg.aggregate`, pure numpy on those rows
  (mean ± sample std over seeds, PGR, accuracy drop under noise).
* ``fig_*`` modules plot one figure each; :mod:`paper_figs.style` fixes the look
  (colour-blind-safe palette, the paper's legend order) and writes PNG + PDF + caption.
* :func:`paper_figs.build.build_all` makes every figure whose records exist and says why
  the others were skipped.  Figures never train models.
"""
from __future__ import annotations

__all__ = ["build_all"]


def build_all(*args, **kwargs):
    from .build import build_all as _build_all
    return _build_all(*args, **kwargs)
