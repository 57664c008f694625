"""theory.limits.bounded: symbolic work in a forked child with a real (CPU-time) limit."""
import os
import time

import pytest
import sympy as sp

from theory.limits import (DEFAULT_SECONDS, BadTimeout, TooExpensive, WALL_FACTOR, bounded,
                           symbolic_timeout)
from theory.parsing import GeneratorError, T


def _spin():
    while True:
        pass


def _die():
    os._exit(3)


def _refuse():
    raise GeneratorError("refused in the child")


def test_returns_the_value_computed_in_the_child():
    expr = bounded(sp.diff, sp.log(T) * T, T, seconds=30)
    assert sp.simplify(expr - (sp.log(T) + 1)) == 0
    assert bounded(lambda n: list(range(n)), 200_000, seconds=30) == list(range(200_000))  # > pipe buffer


def test_exceptions_come_back_unchanged():
    with pytest.raises(GeneratorError, match="refused in the child"):
        bounded(_refuse, seconds=30)


def test_a_spinning_child_is_stopped():
    t0 = time.monotonic()
    with pytest.raises(TooExpensive, match="too expensive"):
        bounded(_spin, seconds=1, what="spinning")
    assert time.monotonic() - t0 < WALL_FACTOR * 1 + 5


def test_a_child_that_dies_is_reported():
    with pytest.raises(TooExpensive, match="died"):
        bounded(_die, seconds=30)


def test_timeout_from_environment(monkeypatch):
    monkeypatch.setenv("W2SG_SYMBOLIC_TIMEOUT", "3.5")
    assert symbolic_timeout() == 3.5
    for blank in ("", "  "):  # blank: as if unset
        monkeypatch.setenv("W2SG_SYMBOLIC_TIMEOUT", blank)
        assert symbolic_timeout() == DEFAULT_SECONDS
    # anything else that is not a time limit is refused, naming the variable (issue 22)
    for bad in ("nan", "-1", "inf", "x", "0", "1e9", "junk" * 30):
        monkeypatch.setenv("W2SG_SYMBOLIC_TIMEOUT", bad)
        with pytest.raises(BadTimeout, match=r"^\$W2SG_SYMBOLIC_TIMEOUT=.* is not a number of seconds"):
            symbolic_timeout()


def test_soft_time_limit_interrupts_code_that_swallows_the_exception():
    """sympy code may catch the exception (``except Exception``) and go on: the limit fires
    again until the block is left, so the block ends soon after its time."""
    import time
    from theory.limits import SoftTimeout, soft_time_limit
    t0 = time.process_time()
    swallowed = 0
    with pytest.raises(SoftTimeout):
        with soft_time_limit(0.2, cpu=True):
            while time.process_time() - t0 < 20:
                if swallowed:  # after one swallowed timeout: plain work
                    sum(range(10_000))
                    continue
                try:
                    sum(range(10_000))
                except Exception:  # noqa: BLE001 - what a library might do
                    swallowed += 1
    # without re-arming, the first swallowed exception would leave the loop to run 20 s
    assert swallowed >= 1 and time.process_time() - t0 < 10
