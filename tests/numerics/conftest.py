import functools

import pytest


@functools.lru_cache(maxsize=None)
def quick_result(claim: str):
    from numerics.checks import get_check
    return get_check(claim)(quick=True, seed=0)


@pytest.fixture
def quick():
    """``quick(claim)``: the ``--quick`` result of a claim, computed once per session."""
    return quick_result
