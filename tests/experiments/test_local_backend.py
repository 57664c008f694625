"""The local backend never hangs on a dead worker: its jobs are retried once on a fresh pool,
and a job lost twice is named in the error (experiments.backends.local)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from experiments.backends.errors import SweepJobsFailed
from experiments.backends.local import run_phases


def _no_setup():
    pass


def _write(job):
    """Finish normally: write the job's marker file."""
    Path(job[2], f"{job[1]['seed']}.done").write_text(str(os.getpid()))
    return job[0]


def _killed_on_first_attempt(job):
    """The first attempt of seed 0 is killed like the out-of-memory killer does (SIGKILL)."""
    if job[1]["seed"] == 0 and not Path(job[2], "attempted").exists():
        Path(job[2], "attempted").write_text("")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return _write(job)


def _always_killed(job):
    if job[1]["seed"] == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return _write(job)


def _raises(job):
    if job[1]["seed"] == 1:
        raise ValueError("bad config")
    return _write(job)


def _jobs(tmp_path, n=4):
    return [("run", {"task": "t", "weak": "w", "loss": "ce", "noise": 0.0, "seed": s}, str(tmp_path))
            for s in range(n)]


def test_a_killed_worker_is_retried_and_every_job_finishes(tmp_path):
    done = []
    t0 = time.monotonic()
    info = run_phases([_jobs(tmp_path)], _killed_on_first_attempt, _no_setup, workers=2,
                      progress=done.append)
    assert time.monotonic() - t0 < 30
    assert sorted(p.name for p in tmp_path.glob("*.done")) == [f"{s}.done" for s in range(4)]
    assert info["executed"] == 4 and info["retried"] >= 1
    assert len(done) == 4  # one progress tick per job, the retried one counted once


def test_a_job_whose_worker_dies_twice_is_named_not_waited_for(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(SweepJobsFailed) as err:
        run_phases([_jobs(tmp_path)], _always_killed, _no_setup, workers=2)
    assert time.monotonic() - t0 < 30
    assert [job[1]["seed"] for job, _ in err.value.failures] == [0]
    assert "seed=0" in str(err.value) and "died 2 times" in str(err.value)
    assert {p.name for p in tmp_path.glob("*.done")} == {"1.done", "2.done", "3.done"}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_that_raises_is_reported_after_the_others_finish(tmp_path, workers):
    with pytest.raises(SweepJobsFailed, match="1 job.*seed=1.*bad config"):
        run_phases([_jobs(tmp_path)], _raises, _no_setup, workers=workers)
    assert {p.name for p in tmp_path.glob("*.done")} == {"0.done", "2.done", "3.done"}
