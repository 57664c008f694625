"""The Ray backend runs the same executor as the local backend and writes the same records.

Skipped only when ray cannot be imported (``pip install 'w2sg[ray]'``).  Starts a local
Ray with 2 CPUs; both tests together stay well under 90 s on a 2-core machine.
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


@pytest.fixture
def ray_local(tmp_path, monkeypatch):
    """A local Ray (2 CPUs) whose workers use the fake encoders of :mod:`tests.experiments.fake_env`."""
    from tests.experiments import fake_env
    import experiments.embed as E
    # the driver computes features too (prepare_features); undone after the test, so
    # later tests in this process see the real encoders again
    monkeypatch.setattr(E, "features", fake_env.fake_features)
    hang = tmp_path / "hang"
    hang.mkdir()
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "W2SG_TEST_HANG_DIR": str(hang), "W2SG_TEST_HANG_LOSS": "hellinger"}
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


def test_ray_records_equal_local_and_survive_a_killed_worker(tmp_path, ray_local, monkeypatch):
    from experiments.runner import expand, run_path, run_sweep
    from tests.experiments import fake_env
    import experiments.embed as E
    monkeypatch.setattr(E, "features", fake_env.fake_features)
    sweep = _sweep()

    # local backend, one process (features faked in this process)
    local_root = tmp_path / "local"
    info_local = run_sweep(sweep, local_root, workers=1, quiet=True, backend="local")
    assert info_local["executed"] == 7

    # ray backend; the first attempt of each hellinger run hangs and its worker is killed
    killed = []

    def killer():
        deadline = time.time() + 240  # generous: CI machines may be loaded
        while time.time() < deadline and len(killed) < 2:
            for marker in ray_local.glob("*.pid"):
                pid = int(marker.read_text() or 0)
                if pid and pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    ray_root = tmp_path / "ray"
    info_ray = run_sweep(sweep, ray_root, workers=2, quiet=True, backend="ray")
    thread.join(timeout=5)
    assert info_ray["backend"] == "ray" and info_ray["executed"] == 7
    assert len(killed) == 2, "the hanging runs were not reached"

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


def test_failed_run_is_reported_not_lost(tmp_path, ray_local, monkeypatch):
    from experiments.backends.ray_backend import RayRunError, run_phases
    from experiments.runner import init_worker, run_job
    bad = ("run", {"kind": "run", "task": "no-such-task", "seed": 0, "loss": "ce"}, str(tmp_path))
    with pytest.raises(RayRunError, match="1 job"):
        run_phases([[bad]], run_job, init_worker, workers=2)
