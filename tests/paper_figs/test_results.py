"""The results table (w2sg.results): each record file opened at most once per command (counted
with an audit hook on ``open``), problems in one place, and the run summary's statistics
(w2sg.aggregate: ddof 1, PGR of means) by hand."""
from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import sys

import pytest

from w2sg import results

from . import synthetic as syn

_OPENED: list | None = None  # the audit hook records while this is a list


def _hook(event, args):
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, os.PathLike)):
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        if not any(c in mode for c in "wax+"):
            _OPENED.append(os.path.realpath(os.fspath(args[0])))


sys.addaudithook(_hook)  # audit hooks cannot be removed: it records only inside _opens()


@contextlib.contextmanager
def _opens(root):
    """Counts of read-opens per record file (relative path) under ``root`` inside the block."""
    global _OPENED
    counts: collections.Counter = collections.Counter()
    _OPENED = []
    try:
        yield counts
    finally:
        seen, _OPENED = _OPENED, None
        base = os.path.realpath(root) + os.sep
        for p in seen:
            if p.startswith(base) and p.endswith(".json") and not p[len(base):].startswith("figures"):
                counts[p[len(base):]] += 1


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "results"
    syn.write_runs(r)
    syn.write_checks(r)
    syn.write_bench(r)
    return r


def _record_files(root):
    return sorted(str(p.relative_to(root)) for f in ("runs", "checks", "bench")
                  for p in (root / f).rglob("*.json"))


def test_figs_opens_each_record_once(root):
    """During one ``w2sg figs`` every record is read at most once (HEAD read each run record 4
    times, each check record 5 times, the bench record 3 times)."""
    from w2sg.cli import main
    results.clear_cache()
    with _opens(root) as counts, contextlib.redirect_stdout(io.StringIO()):
        assert main(["figs", "--out", str(root)]) == 0
    files = _record_files(root)
    assert len(files) >= 24 + 3 and set(counts) <= set(files)
    assert max(counts.values()) == 1, {p: n for p, n in counts.items() if n > 1}
    assert all(counts[f] == 1 for f in files if f.startswith("runs/"))
    with _opens(root) as again:  # a second command in this process: nothing changed, nothing read
        assert main(["compare", "--out", str(root), "--json"]) == 0
    assert sum(again.values()) == 0


def test_compare_opens_each_run_record_once(root, capsys):
    from w2sg.cli import main
    results.clear_cache()
    with _opens(root) as counts:
        assert main(["compare", "--out", str(root), "--json"]) == 0
    capsys.readouterr()
    runs = [f for f in _record_files(root) if f.startswith("runs/")]
    assert {f: counts[f] for f in runs} == {f: 1 for f in runs}


def test_a_rewritten_record_is_read_again_and_only_it(root):
    results.clear_cache()
    assert len(results.load(root).runs) == 24
    victim = next((root / "runs").rglob("noise0.4-seed2-*.json"))
    data = json.loads(victim.read_text())
    data["metrics"]["acc"] = 0.5
    tmp = victim.with_name(".tmp.json")
    tmp.write_text(json.dumps(data))
    tmp.replace(victim)  # as write_record does: a new inode
    with _opens(root) as counts:
        table = results.load(root)
        rows = {r.source: r for r in table.runs}
    assert dict(counts) == {str(victim.relative_to(root)): 1}
    assert rows[str(victim.relative_to(root))].acc == 0.5


def test_unusable_records_are_listed_in_one_place(root):
    (root / "runs" / "broken.json").write_text("{not json")
    (root / "checks" / "odd.json").write_text(json.dumps({"kind": "nope", "schema": 2}))
    (root / "bench" / "old.json").write_text(json.dumps({"kind": "bench"}))  # schema 1
    table = results.load(root)
    problems = table.problems()
    assert len(problems) == 2 and "runs/broken.json" in problems[0] and "checks/odd.json" in problems[1]
    assert table.problems("runs") == problems[:1]
    assert len(table.runs) == 24 and len(table.references) == 0
    (err,) = table.schema_errors()
    assert "bench/old.json" in str(err)
    from paper_figs import readers
    from w2sg.records import RecordSchemaError
    assert readers.read_runs(root).problems == problems[:1]  # the façade reads the same table
    with pytest.raises(RecordSchemaError):
        readers.audit(root)


def test_run_rows_carry_selection_and_noise_model_defaults(root):
    (run, *_) = results.load(root).runs
    assert (run.select, run.noise_model, run.mode) == ("none", "symmetric", "head")
    tuned = type(run.record)(**{**run.record.__dict__})
    object.__setattr__(tuned, "tuning", {"select": "oracle", "chosen": {"lr": 0.03}})
    assert results.run_of(tuned, "x").select == "oracle"
    # a tuned run's chosen learning rate is not part of its setting (it differs per loss)
    cfg = run.record.config
    fast = dict(cfg, train=dict(cfg["train"], lr=0.03))
    assert results.setting_of(fast, {"chosen": {"lr": 0.03}}) == \
        results.setting_of(cfg, {"chosen": {"lr": cfg["train"]["lr"]}})
    assert results.setting_of(fast) != results.setting_of(cfg) == run.setting


def test_run_summary_by_hand(root):
    """``w2sg run``'s summary: sample sd (ddof 1) and Burns et al.'s PGR of the means."""
    from experiments.runner import summarize
    rows = summarize(syn.sweep(), root)
    assert len(rows) == len(syn.LOSSES) * len(syn.NOISES)
    r = next(r for r in rows if r["loss"] == "pearson" and r["noise"] == 0.4)
    # accs .67, .68, .69: mean .68, sd (ddof 1) .01; weak .60, ceiling .80 (means)
    assert r["n_seeds"] == 3 and r["w2s_acc"] == pytest.approx(0.68)
    assert r["w2s_acc_sd"] == pytest.approx(0.01)
    assert (r["weak_acc"], r["ceiling_acc"]) == pytest.approx((0.60, 0.80))
    assert r["pgr"] == pytest.approx((0.68 - 0.60) / (0.80 - 0.60))
    assert (r["select"], r["noise_model"]) == ("none", "symmetric")
    first = [(r["loss"], r["noise"]) for r in rows][:2]
    assert first == [(syn.LOSSES[0], syn.NOISES[0]), (syn.LOSSES[0], syn.NOISES[1])] or len(set(first)) == 2
