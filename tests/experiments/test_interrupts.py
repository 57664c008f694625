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


def test_a_second_ctrl_c_while_stuck_workers_are_stopped_changes_nothing(tmp_path):
    """Workers that ignore SIGTERM: the second Ctrl-C (0.3 s later) comes while the owner
    waits out STOP_GRACE_S before SIGKILL; it is ignored, and the process still ends at once
    after that, with one line and no worker left."""
    from experiments.backends.local import STOP_GRACE_S
    proc = _start(["-m", "tests.experiments.slow_jobs", str(tmp_path), "4", "2"],
                  SLOW_JOBS_DEAF="1")
    _wait_for(tmp_path, "started-*.pid", 2, proc)
    status, err, took = _interrupt(proc, "group+group")
    assert status == 130 and err.strip().splitlines() == ["slow_jobs: interrupted"], err
    assert STOP_GRACE_S <= took < STOP_GRACE_S + EXIT_WITHIN_S
    assert _session(proc.pid) == []
    assert not list(tmp_path.glob("*.done")) and not list(tmp_path.glob(".*"))


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


_CONFIG = """
tasks = ["fortunes_pairs"]
weak = ["minilm-l6-layer0"]
losses = ["ce", "tv", "hellinger"]
noise = [0.0, 0.2]
seeds = 1
pool = 600
[sizes]
weak_gt = 60
test = 100
[train]
steps = 30
lr = 0.01
eval_every = 10
"""
_FAKE_RUN = ("import sys; from tests.experiments.fake_env import install; install(); "
             "from w2sg.cli import main; sys.exit(main(sys.argv[1:]))")


def _records(root: Path) -> dict:
    """Every file under ``root/runs`` → its content (JSON records without the time stamps)."""
    import json
    out = {}
    for p in sorted((root / "runs").rglob("*")):
        if p.is_file() and p.suffix == ".json":
            rec = json.loads(p.read_text())
            out[str(p.relative_to(root))] = {k: v for k, v in rec.items()
                                             if k not in ("timings", "written_at")}
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def test_w2sg_run_interrupted_then_resumed_equals_an_uninterrupted_run(tmp_path, fake_features):
    """``w2sg run`` (fake encoders) with both hellinger runs hanging: Ctrl-C twice to the
    group → status 130, one line, no process left, the 5 finished records complete; the
    resumed sweep runs just the 2 missing runs, and every record equals a clean sweep's."""
    from w2sg.cli import main
    from w2sg.records import RunRecord, ReferenceRecord, read_record
    config = tmp_path / "sweep.toml"
    config.write_text(_CONFIG)
    hang, cut, clean = tmp_path / "hang", tmp_path / "cut", tmp_path / "clean"
    hang.mkdir()
    proc = _start(["-c", _FAKE_RUN, "run", "--config", str(config), "--out", str(cut),
                   "--workers", "2", "--quiet"],
                  W2SG_TEST_HANG_DIR=str(hang), W2SG_TEST_HANG_LOSS="hellinger",
                  W2SG_TEST_HANG_S="60")
    _wait_for(hang, "*.pid", 2, proc)  # both workers are inside a hellinger run
    status, err, took = _interrupt(proc, "group+group")
    assert status == 130 and took < EXIT_WITHIN_S, (status, err, took)
    (line,) = err.strip().splitlines()
    assert line.startswith("w2sg run: interrupted") and "resume" in line
    assert _session(proc.pid) == []
    assert not [p for p in (cut / "runs").rglob(".*")], "a temporary file was left"
    done = sorted((cut / "runs").rglob("*.json"))
    assert len(done) == 5 and not [p for p in done if "hellinger" in str(p)]
    for p in done:
        read_record(p, ReferenceRecord if "/reference/" in str(p) else RunRecord)
    stamps = {p: p.stat().st_mtime_ns for p in done}

    for root in (cut, clean):  # resume in this process; a clean sweep for comparison
        assert main(["run", "--config", str(config), "--out", str(root), "--workers", "1",
                     "--quiet", "--json"]) == 0
    assert {p: p.stat().st_mtime_ns for p in done} == stamps  # finished records not redone
    assert _records(cut) == _records(clean)


def test_the_guard_raises_once_defers_inside_critical_and_restores_the_handler():
    """In this process: the first SIGINT raises, later ones (the clean-up) are ignored, one
    inside critical() waits for its end; the previous handler is back afterwards."""
    from experiments.backends.interrupts import critical, interrupt_guard
    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt_guard():
            try:
                signal.raise_signal(signal.SIGINT)
                steps.append("not reached")
            except KeyboardInterrupt:
                signal.raise_signal(signal.SIGINT)  # a second Ctrl-C during the clean-up
                steps.append("cleaned up")
                raise
    assert steps == ["cleaned up"] and signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        with interrupt_guard(), critical():
            signal.raise_signal(signal.SIGINT)
            steps.append("critical block finished")
    assert steps[-1] == "critical block finished" and signal.getsignal(signal.SIGINT) is before
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupt_guard(stay_ignored=True):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a command that is ending
    finally:
        signal.signal(signal.SIGINT, before)
