"""Execution backends for sweeps: ``local`` (processes, in :mod:`experiments.runner`) and
``ray`` (:mod:`experiments.backends.ray_backend`, optional extra ``w2sg[ray]``)."""

BACKENDS = ("local", "ray")

__all__ = ["BACKENDS"]
