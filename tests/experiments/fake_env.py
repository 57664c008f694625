"""Worker-side test doubles for the Ray backend tests (installed in every Ray worker by
``runtime_env={"worker_process_setup_hook": "tests.experiments.fake_env.install"}``).

* Encoders are replaced by deterministic random features (stable across processes:
  seeded by CRC32, not by Python's salted ``hash``).
* With ``$W2SG_TEST_HANG_DIR`` set, the first attempt of each W2S run whose loss is
  ``$W2SG_TEST_HANG_LOSS`` writes ``<dir>/<config hash>.pid`` and sleeps
  ``$W2SG_TEST_HANG_S`` seconds (default 30; mid-run, before any record is written) so the
  test can kill that worker process.
"""
from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import numpy as np


def fake_features(task, model, max_length=128, quiet=True):
    d = 48 if model == "minilm-l6" else 8
    seed = zlib.crc32(f"{model}|{len(task.texts)}".encode())
    return np.random.default_rng(seed).normal(size=(len(task.texts), d)).astype(np.float32)


def install() -> None:
    import experiments.embed as E
    import experiments.runner as R
    E.features = fake_features
    hang_dir = os.environ.get("W2SG_TEST_HANG_DIR")
    if not hang_dir or getattr(R, "_hang_installed", False):
        return
    original = R.execute_run

    def execute_run(config, root=None, write=True):
        from w2sg.records import config_hash
        if config.get("loss") == os.environ.get("W2SG_TEST_HANG_LOSS"):
            marker = Path(hang_dir) / f"{config_hash(config)}.pid"
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass  # a retry: run normally
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                time.sleep(float(os.environ.get("W2SG_TEST_HANG_S", "30")))  # killed here by the test
        return original(config, root, write)

    R.execute_run = execute_run
    R._hang_installed = True
