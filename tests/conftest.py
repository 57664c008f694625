import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Triton kernels (fdiv_torch.triton_kernel) run on CPU only in Triton's interpreter, which
# must be chosen before triton is first imported (by any test, or by torch.compile).
if "TRITON_INTERPRET" not in os.environ:
    try:
        import torch
        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    except ImportError:  # pragma: no cover
        pass
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:
    from hypothesis import settings
    settings.register_profile("ci", max_examples=40, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A fresh results root for a test (``$W2SG_RESULTS``)."""
    monkeypatch.setenv("W2SG_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"
