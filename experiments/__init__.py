"""Real weak-to-strong experiments: f-divergence losses, data, embeddings, the pipeline.

``import experiments`` is cheap (no torch); :func:`fdiv_loss` and :func:`make_loss` are
imported lazily from :mod:`experiments.losses` on first access.
"""
from __future__ import annotations

__all__ = ["fdiv_loss", "make_loss", "ce_loss", "LOSS_NAMES"]

_LAZY = {"fdiv_loss": "losses", "make_loss": "losses", "ce_loss": "losses",
         "LOSS_NAMES": "losses"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
