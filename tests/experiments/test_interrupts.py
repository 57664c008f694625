"""Ctrl-C stops a sweep within seconds, leaves no process and no partial file behind, and a
second Ctrl-C never hangs it (experiments.backends.local, experiments.backends.interrupts).

Each test starts a real process in its own session (so it can be signalled like a terminal
signals its foreground job), waits for the event "jobs are running" (marker files written
by the jobs), signals, and then checks: the exit status is 130 with one line on stderr,
every process of the session is gone, and every result file is complete.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Seconds the process may take to exit after the (first) signal; the workers stop within
#: local.STOP_GRACE_S, the rest is slack for a loaded CI machine.
EXIT_WITHIN_S = 8.0

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg") or not Path("/proc").is_dir(),
                                reason="needs POSIX process groups and /proc")


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _start(argv: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=_env(**env),
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(folder: Path, pattern: str, count: int, proc: subprocess.Popen,
              timeout: float = 120.0) -> list[Path]:
    """The files matching ``pattern`` once there are ``count`` of them (the event the test
    waits for); fails if the process ends first or nothing comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.rglob(pattern))
        if len(found) >= count:
            return found
        if proc.poll() is not None:
            pytest.fail(f"process ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {count} × {pattern} within {timeout} s")


def _session(sid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of session ``sid``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def _interrupt(proc: subprocess.Popen, how: str) -> tuple[int, str, float]:
    """Send Ctrl-C ``how`` (``main``/``group``, ``+`` a second one 0.3 s later); returns
    ``(status, stderr, seconds to exit after the first signal)``."""
    t0 = time.monotonic()
    for i, target in enumerate(how.split("+")):
        if i:
            time.sleep(0.3)
        (os.kill if target == "main" else os.killpg)(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running 30 s after Ctrl-C ({how})")
    return proc.returncode, err, time.monotonic() - t0


@pytest.mark.parametrize("how", ["main", "group", "group+group", "main+main", "group+main"])
def test_ctrl_c_stops_every_worker_within_seconds(tmp_path, how):
    # 6 jobs on 3 workers: jobs 0 and 1 finish at once, the others sleep 60 s each
    proc = _start(["-m", "tests.experiments.slow_jobs", str(tmp_path), "6", "3"],
                  SLOW_JOBS_QUICK="0,1")
    _wait_for(tmp_path, "*.done", 2, proc)
    markers = _wait_for(tmp_path, "started-*.pid", 5, proc)  # 3 workers busy with jobs 2-4
    workers = {int(m.read_text()) for m in markers}
    assert len(workers) == 3 and proc.pid not in workers  # the jobs ran in 3 worker processes
    status, err, took = _interrupt(proc, how)
    assert status == 130, err
    assert err.strip().splitlines() == ["slow_jobs: interrupted"]
    assert took < EXIT_WITHIN_S, f"took {took:.1f} s to stop"
    assert _session(proc.pid) == [], "a process of the sweep is still running"
    # finished jobs complete, interrupted ones absent, no temporary file
    assert sorted(p.name for p in tmp_path.glob("*.done")) == ["0.done", "1.done"]
    assert all(p.read_text() == "complete" for p in tmp_path.glob("*.done"))
    assert not list(tmp_path.glob(".*"))


def test_ctrl_c_with_spawned_workers(tmp_path):
    """The same with ``W2SG_START_METHOD=spawn`` (fresh interpreters: a signal that comes
    while a worker is still starting must not reach it)."""
    proc = _start(["-m", "tests.experiments.slow_jobs", str(tmp_path), "4", "2"],
                  W2SG_START_METHOD="spawn")
    _wait_for(tmp_path, "started-*.pid", 2, proc)
    status, err, took = _interrupt(proc, "group+group")
    assert status == 130 and took < EXIT_WITHIN_S, (status, err, took)
    assert _session(proc.pid) == []
    assert not list(tmp_path.glob("*.done")) and not list(tmp_path.glob(".*"))
