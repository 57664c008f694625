"""The Ray backend runs the same executor as the local backend and writes the same records.

Skipped only when ray cannot be imported (``pip install 'w2sg[ray]'``).  Starts one local
Ray with 2 CPUs for the module; the worker-death test is event-driven (a run that hangs
writes its worker's pid file, the test kills that worker at once; no run sleeps more than
HANG_S = 30 s).  Both tests together: ~80 s on a loaded 2-core machine.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'w2sg[ray]')")

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a hanging run sleeps unless the test kills its worker first (it is killed
#: within milliseconds of writing its pid file; a sweep that took this long waited for it).
HANG_S = 30

SMALL = {"tasks": ["fortunes_pairs"], "weak": ["minilm-l6-layer0"], "losses": ["ce", "tv", "hellinger"],
         "noise": [0.0, 0.2], "seeds": 1, "pool": 600,
         "sizes": {"weak_gt": 60, "test": 100, "val_frac": 0.2},
         "train": {"steps": 30, "lr": 0.01, "weight_decay": 1.0, "eval_every": 10}}


def _sweep():
    from experiments.runner import DEFAULT_SWEEP
    return {**DEFAULT_SWEEP, **SMALL}


def _records(root: Path) -> dict:
    out = {}
    for p in sorted((root / "runs").rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = p
    return out


def _comparable(path: Path):
    if path.suffix == ".npz":
        import numpy as np
        with np.load(path) as z:
            return {k: z[k].tolist() for k in z.files}
    rec = json.loads(path.read_text())
    keep = ("kind", "config", "config_hash", "task", "weak", "loss", "noise", "seed", "metrics",
            "reference", "weak", "ceiling", "gap", "splits")
    return {k: rec[k] for k in keep if k in rec}


def _gone(pid: int, within: float) -> bool:
    """True once process ``pid`` has ended (no /proc entry, or a zombie) within ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in "ZX":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """A local Ray (2 CPUs, started once for this module: ~15 s on a loaded 2-core machine)
    whose workers use the fake encoders of :mod:`tests.experiments.fake_env`; yields the
    folder where hanging runs write their pid files."""
    hang = tmp_path_factory.mktemp("hang")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "W2SG_TEST_HANG_DIR": str(hang), "W2SG_TEST_HANG_LOSS": "hellinger",
           "W2SG_TEST_HANG_S": str(HANG_S)}
    for key in ("W2SG_CACHE",):
        if key in os.environ:
            env[key] = os.environ[key]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": env,
                          "worker_process_setup_hook": "tests.experiments.fake_env.install"})
    try:
        yield hang
    finally:
        ray.shutdown()


@pytest.fixture(autouse=True)
def _fake_driver_features(monkeypatch):
    """The driver computes features too (prepare_features); undone after each test, so later
    tests in this process see the real encoders again."""
    from tests.experiments import fake_env
    import experiments.embed as E
    monkeypatch.setattr(E, "features", fake_env.fake_features)


def test_ray_records_equal_local_and_survive_a_killed_worker(tmp_path, ray_local):
    from experiments.runner import expand, run_path, run_sweep
    sweep = _sweep()

    # local backend, one process (features faked in this process)
    local_root = tmp_path / "local"
    info_local = run_sweep(sweep, local_root, workers=1, quiet=True, backend="local")
    assert info_local["executed"] == 7

    # ray backend; the first attempt of each hellinger run writes its worker's pid file and
    # then hangs (HANG_S at most): the test kills that worker the moment the file appears
    killed, finished = [], threading.Event()

    def killer():
        while not finished.is_set() and len(killed) < 2:
            for marker in ray_local.glob("*.pid"):
                pid = int(marker.read_text() or 0)
                if pid and pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            finished.wait(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    ray_root = tmp_path / "ray"
    try:
        info_ray = run_sweep(sweep, ray_root, workers=2, quiet=True, backend="ray")
    finally:
        finished.set()
        thread.join(timeout=5)
    assert info_ray["backend"] == "ray" and info_ray["executed"] == 7
    assert len(killed) == 2, "the hanging runs were not reached"
    assert all(_gone(pid, within=0) for pid in killed)  # Ray retried those runs elsewhere

    # nothing lost, nothing duplicated, no half records; same content as the local backend
    local, remote = _records(local_root), _records(ray_root)
    assert sorted(local) == sorted(remote)
    assert not [p for p in remote if Path(p).name.startswith(".")]
    _, runs = expand(sweep)
    assert sum(1 for p in remote if p.endswith(".json") and "/reference/" not in p) == len(runs)
    for r in runs:
        assert run_path(r, ray_root).exists()
    for rel in local:
        assert _comparable(local[rel]) == _comparable(remote[rel]), rel

    # resume: a second Ray sweep finds everything done
    again = run_sweep(sweep, ray_root, workers=2, quiet=True, backend="ray")
    assert again["executed"] == 0 and again["skipped"] == 7


def test_failed_run_is_reported_not_lost(tmp_path, ray_local):
    from experiments.backends.ray_backend import RayRunError, run_phases
    from experiments.runner import init_worker, run_job
    bad = ("run", {"kind": "run", "task": "no-such-task", "seed": 0, "loss": "ce"}, str(tmp_path))
    with pytest.raises(RayRunError, match="1 job"):
        run_phases([[bad]], run_job, init_worker, workers=2)


def test_ctrl_c_cancels_the_pending_tasks(tmp_path, ray_local):
    """Ctrl-C in the driver (SIGINT, simulated the moment the task is under way): run_phases
    raises KeyboardInterrupt at once, and the task's worker is killed (force cancel)."""
    import _thread
    from experiments.backends.ray_backend import run_phases
    from experiments.runner import init_worker, run_job
    hanging = ("run", {"kind": "run", "loss": "hellinger", "seed": 99, "root": str(tmp_path)},
               str(tmp_path))
    before, started = set(ray_local.glob("*.pid")), []

    def interrupt_when_started():
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline and not started:
            started.extend(int(m.read_text() or 0) for m in set(ray_local.glob("*.pid")) - before)
            time.sleep(0.02)
        _thread.interrupt_main(signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_phases([[hanging]], run_job, init_worker, workers=2)
    assert started and started[0], "the task never started"
    assert time.monotonic() - t0 < HANG_S - 5, "it waited for the hanging task"
    assert _gone(started[0], within=10), "the cancelled task's worker still runs"
