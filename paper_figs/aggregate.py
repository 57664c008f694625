"""Aggregation for the figures: :mod:`w2sg.aggregate`, the one module that computes every mean,
spread (sample standard deviation, ``ddof = 1``) and PGR, re-exported here for figure code."""
from __future__ import annotations

from w2sg.aggregate import (DDOF, group, mean_std, noise_drop, pgr, pgr_of_means, references,
                            run_summary, summarize)

__all__ = ["DDOF", "mean_std", "group", "summarize", "references", "noise_drop", "pgr",
           "pgr_of_means", "run_summary"]
