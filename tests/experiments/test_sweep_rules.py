"""The rules of experiments/sweep_rules.py: every default obeys them, they name exactly the keys
the code has, and each bound refuses what it should (the CLI cases are in
tests/w2sg/test_bad_inputs.py)."""
from __future__ import annotations

import dataclasses
import math
import re

import pytest

from experiments.sweep_rules import (FLAGS, TABLES, TOP, Rule, check_sizes, check_table, check_value,
                                     texts_needed)
from w2sg.errors import UsageError


def _sweeps():
    from experiments.runner import DEFAULT_SWEEP, PRESETS, QUICK_SWEEP
    return {"default": DEFAULT_SWEEP, "quick": QUICK_SWEEP, **PRESETS}


def test_the_tables_name_exactly_the_keys_of_the_code():
    from experiments.data.tasks import DEFAULT_SIZES
    from experiments.finetune import FINETUNE_DEFAULTS
    from experiments.pipeline import TrainConfig
    from experiments.runner import DEFAULT_SWEEP
    assert set(TABLES["train"]) == set(TABLES["weak_train"]) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(TABLES["sizes"]) == set(DEFAULT_SIZES)
    assert set(TABLES["finetune"]) == set(FINETUNE_DEFAULTS)
    assert set(TOP) | set(TABLES) == set(DEFAULT_SWEEP) | {"quick", "out", "workers", "finetune"}
    assert not set(FLAGS) & (set(TOP) | set(TABLES))


@pytest.mark.parametrize("name", list(_sweeps()))
def test_every_default_and_preset_obeys_the_rules(name):
    from experiments.finetune import FINETUNE_DEFAULTS
    from experiments.data.tasks import DEFAULT_POOL
    sweep = _sweeps()[name]
    for key, value in sweep.items():
        if key in TABLES:
            assert check_table(key, value) == value
        else:
            assert check_value(key, value, TOP[key]) == value, key
    assert check_table("finetune", FINETUNE_DEFAULTS) == FINETUNE_DEFAULTS
    check_sizes(sweep["tasks"], sweep["sizes"], sweep["pool"], DEFAULT_POOL)


def _all_rules():
    yield from TOP.items()
    yield from FLAGS.items()
    for table, rules in TABLES.items():
        for key, rule in rules.items():
            yield f"[{table}] {key}", rule


@pytest.mark.parametrize("label,rule", [(k, r) for k, r in _all_rules() if r.kind in ("int", "number")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_each_bound_is_where_the_table_says(label, rule):
    step = 1 if rule.kind == "int" else 1e-9
    for edge, is_open, outside in ((rule.lo, rule.open_lo, -step), (rule.hi, rule.open_hi, step)):
        if edge is None:
            continue
        edge = int(edge) if rule.kind == "int" else float(edge)
        if is_open:
            with pytest.raises(UsageError, match="^" + re.escape(label)):
                check_value(label, edge, rule)
        else:
            assert check_value(label, edge, rule) == edge
        with pytest.raises(UsageError, match=r"must be (an integer|a number) in [\[(]"):
            check_value(label, edge + outside, rule)
    inside = (rule.lo or 0) + (step if rule.open_lo else 0)
    for bad in (True, "3", None, [inside], math.nan, math.inf):
        if bad is None and rule.none_ok:
            continue
        with pytest.raises(UsageError, match="^" + re.escape(label) + " must be"):
            check_value(label, bad, rule)


def test_integers_are_integers_and_numbers_are_finite():
    steps = TABLES["train"]["steps"]
    with pytest.raises(UsageError, match="without a decimal point or exponent"):
        check_value("[sizes] test", 1e8, TABLES["sizes"]["test"])
    with pytest.raises(UsageError, match=r"\[train\] steps must be an integer in \[1, 100000\], got -5$"):
        check_value("[train] steps", -5, steps)
    assert check_value("[train] lr", 1, TABLES["train"]["lr"]) == 1  # an int is a number
    with pytest.raises(UsageError, match=r"lr must be a number in \(0, 1\], got 0"):
        check_value("[train] lr", 0, TABLES["train"]["lr"])
    assert check_value("[train] smoothing", 0.4999, TABLES["train"]["smoothing"]) == 0.4999
    with pytest.raises(UsageError, match=r"\[0, 0.5\)"):
        check_value("[train] smoothing", 0.5, TABLES["train"]["smoothing"])
    assert check_value("pool", None, TOP["pool"]) is None  # none_ok: the task's default pool


def test_lists_take_one_value_or_many_and_merge_duplicates_in_order():
    assert check_value("losses", "ce", TOP["losses"]) == ["ce"]
    assert check_value("losses", ["tv", "ce", "tv", "kl", "ce"], TOP["losses"]) == ["tv", "ce", "kl"]
    assert check_value("noise", [0.2, 0, 0.0, 0.2, 0.1], TOP["noise"]) == [0.2, 0.0, 0.1]
    assert check_value("noise", 0, TOP["noise"]) == [0.0]
    for bad in ([], [""], ["ce", 3], [["ce"]]):
        with pytest.raises(UsageError, match="losses must be a string or a list of strings"):
            check_value("losses", bad, TOP["losses"])
    with pytest.raises(UsageError, match=r"in \[0, 0.5\], got \[0.1, 0.6\]"):
        check_value("noise", [0.1, 0.6], TOP["noise"])


def test_a_huge_value_is_shown_cut_short_and_where_it_came_from():
    with pytest.raises(UsageError) as err:
        check_value("config key 'seeds'", list(range(10_000)), TOP["seeds"], " (in sweep.toml)")
    assert len(str(err.value)) < 160 and str(err.value).endswith("… (in sweep.toml)")


def test_split_sizes_must_leave_a_student_split():
    sizes = {"weak_gt": 145, "test": 150, "val_frac": 0.2}
    assert texts_needed("fortunes_pairs", 295) == 590  # one offensive + one clean text a pair
    check_sizes(["fortunes_pairs"], sizes, 600, {})  # 590 ≤ 600 − 10
    with pytest.raises(UsageError, match="592 of its 600 pool texts"):
        check_sizes(["fortunes_pairs"], {**sizes, "test": 151}, 600, {})
    check_sizes(["vader_cls:tweets"], {**sizes, "test": 445}, 600, {})  # one text per example
    with pytest.raises(UsageError, match="vader_cls"):
        check_sizes(["vader_cls"], {**sizes, "test": 446}, None, {"vader_cls": 600})


def test_a_new_key_is_one_line():
    """What helper code relies on: a rule is plain data, and a table of them checks a table."""
    rules = {"k": Rule("int", 1, 3)}
    TABLES["_probe"] = rules
    try:
        assert check_table("_probe", {"k": 2}) == {"k": 2}
        with pytest.raises(UsageError, match=r"^\[_probe\] k must be an integer in \[1, 3\], got 4"):
            check_table("_probe", {"k": 4})
    finally:
        del TABLES["_probe"]
