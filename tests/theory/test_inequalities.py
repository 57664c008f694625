import pytest

from theory import NAMED, get_generator
from theory.inequalities import classical_bounds, compare

EXPECTED_TIGHT = {("pearson", "Gilardoni"), ("neyman", "Gilardoni"), ("hellinger", "Le Cam 2"),
                  ("js", "((1+δ)/2)"), ("jeffreys", "2δ log"), ("tv", "δ")}


@pytest.mark.parametrize("name", NAMED)
def test_every_classical_bound_is_valid_and_marked(name):
    gen = get_generator(name)
    bounds = classical_bounds(gen)
    assert bounds, f"no closed form listed for {name}"
    for b in bounds:
        row = compare(gen, b)
        assert row["valid"], row
        expected = any(name == n and b.name.startswith(prefix) for n, prefix in EXPECTED_TIGHT)
        assert row["tight"] == expected, row


def test_pinsker_is_loose_by_a_measured_margin():
    row = compare(get_generator("kl"), classical_bounds(get_generator("kl"))[0])
    assert 0.5 < row["max_relative_gap"] < 0.8  # near δ → 1 KL blows up, 2δ² stays at 2
