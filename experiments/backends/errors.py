"""The error every sweep backend raises when jobs could not be finished (a leaf module)."""
from __future__ import annotations

__all__ = ["SweepJobsFailed", "describe_job"]


def describe_job(job) -> str:
    """``reference task=… weak=… seed=…`` or ``run task=… weak=… loss=… noise=… seed=…``."""
    kind, config = job[0], job[1]
    keys = {"run": ("task", "weak", "loss", "noise", "seed"),
            "tuning": ("task", "weak", "loss", "noise", "noise_model")}.get(kind, ("task", "weak", "seed"))
    return kind + " " + " ".join(f"{k}={config.get(k)}" for k in keys)


class SweepJobsFailed(RuntimeError):
    """Some jobs of a sweep failed or were lost; ``failures`` lists ``(job, reason)``.

    The records of every other job are kept: rerunning the sweep resumes with just these.
    """

    def __init__(self, failures, backend: str):
        self.failures = list(failures)
        job, reason = self.failures[0]
        reason = str(reason).strip().splitlines()[-1] if str(reason).strip() else repr(reason)
        super().__init__(f"{len(self.failures)} job(s) failed on the {backend} backend (records of "
                         f"the others are kept; rerun to resume); first: {describe_job(job)}: {reason}")
