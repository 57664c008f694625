"""Every claim row of ``w2sg check --quick`` passes (the same functions the CLI runs)."""
import pytest

from numerics.checks import CLAIMS


@pytest.mark.parametrize("claim", CLAIMS)
def test_quick_check_passes(claim, quick):
    res = quick(claim)
    assert res.claim == claim
    assert res.instances > 0
    assert res.status == "pass", (res.worst_slack, {k: v for k, v in res.details.items()
                                                    if k not in ("curves", "instances")})
    assert res.worst_slack >= 0
