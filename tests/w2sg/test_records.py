"""w2sg.records: round trips of every kind, strict JSON, one-line errors naming file and field."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import stat

import pytest

from w2sg import records as R


def _reject(name):
    raise ValueError(f"non-strict JSON constant {name}")


def _strict_load(path):
    return json.loads(open(path).read(), parse_constant=_reject)


def _baselines(weak=0.6, ceil=0.8):
    return R.Baselines(weak=R.WeakMetrics(acc=weak, auroc=None, ece=0.1, acc_student_split=0.61),
                       ceiling=R.CeilingMetrics(acc=ceil, auroc=0.9, ece=0.05, agreement_weak=0.7),
                       gap=ceil - weak)


def _metrics(pgr=0.5):
    m = {"acc": 0.7, "auroc": float("nan"), "ece": 0.02, "agreement_weak": 0.8,
         "agreement_weak_labels_train": 0.85, "acc_on_flipped_train": None,
         "noisy_label_acc_train": 0.75}
    return R.student_metrics(m, pgr)


def _examples():
    cfg = {"kind": "run", "task": "t", "weak": "w", "strong": "s", "seed": 0, "loss": "ce",
           "noise": 0.0, "train": {"steps": 3}}
    common = dict(config=cfg, config_hash=R.config_hash(cfg), task="t", weak="w", strong="s")
    run = R.RunRecord(**common, loss="ce", noise=0.0, seed=0, smoothing=1e-6, metrics=_metrics(),
                      reference=_baselines(), reference_record="runs/reference/x.json",
                      ceiling_split="student", splits={"pool": 10},
                      train_info={"val_acc": 0.7, "best_step": 3}, timings=R.RunTimings(1.0, 2.0))
    ref = R.ReferenceRecord(**common, seed=0, smoothing=1e-6, baselines=_baselines(), ceiling_split="student",
                            splits={"pool": 10}, train_info={"weak": {"val_acc": None}},
                            timings=R.ReferenceTimings(0.1, 0.2, 0.3, 0.6),
                            arrays="x.npz", arrays_sha256="ab" * 32)
    llm = R.LlmRunRecord(**common, data="pairs.jsonl", loss="js", noise=0.2, seed=1,
                         metrics=_metrics(None), reference=_baselines(), ceiling_split="student",
                         splits={}, train_info={}, timings=R.RunTimings(1.0, 2.0))
    meta = dict(mode="quick", seed=0)
    row = dict(claim="C4", instances=3, worst_slack=0.1, worst_slack_nonfinite=None,
               status="pass", seconds=0.5)
    check = R.CheckRecord(**meta, **row, details={"instances": [{"err_w": 0.3}]})
    summary = R.CheckSummaryRecord(**meta, rows=[R.CheckRow(**row)])
    data = R.CheckDataRecord(**meta, claim="C6", name="coverage", data={"cells": []})
    cex = R.CounterexampleRecord(**meta, claim="C5", generator="pearson", variant="kl",
                                 search_seed=5, index=0, instance={"pi": [0.5, 0.5]}, gain=0.01,
                                 misfit=0.03, search={"origin": "random"})
    bench = R.BenchRecord(quick=True, what=["training"], machine={"cpus": 2}, method="m",
                          elapsed_s=1.5, training={"rows": [{"loss": "ce", "epoch_ms_wall": 1.0}]})
    cuda = R.CudaBenchRecord(quick=True, what=["kernels"], machine={"cpus": 16}, method="m",
                             elapsed_s=2.0, kernels_cuda={"device": {"name": "gpu"}, "shapes": []})
    comp = R.CompareRecord(baseline="ce", metric="acc", unit="points", pairing="p", confidence=0.95,
                           ci="bca", test="wilcoxon", correction="holm", alpha=0.05, n_runs=4,
                           unreadable=[], rows=[{"loss": "tv", "mean_diff": None}],
                           sources=["runs/a.json"])
    return [run, ref, llm, check, summary, data, cex, bench, comp, cuda]


@pytest.mark.parametrize("index", range(10))
def test_round_trip_every_kind(tmp_path, index):
    rec = _examples()[index]
    path = R.write_record(tmp_path / "sub" / "rec.json", rec)
    back = R.read_record(path, type(rec))
    assert back == rec and type(back) is type(rec)
    data = _strict_load(path)
    assert data["kind"] == rec.kind and data["schema"] == R.SCHEMA == 2
    assert list(data)[:2] == ["kind", "schema"]
    assert data["code_version"] and data["written_at"].endswith("Z")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_kinds_cover_every_dataclass():
    assert set(R.KINDS) == {"run", "reference", "llm-run", "check", "check-summary",
                            "check-data", "counterexample", "bench", "bench-cuda", "compare"}
    assert {type(r).__name__ for r in _examples()} == {c.__name__ for c in R.KINDS.values()}


def test_non_finite_values_become_null_with_reason(tmp_path):
    m = _metrics(float("nan"))
    assert m.pgr is None and m.pgr_undefined == R.PGR_UNDEFINED and m.auroc is None
    assert _metrics(0.25).pgr == 0.25 and _metrics(0.25).pgr_undefined is None
    assert R.worst_slack_fields(float("inf")) == {"worst_slack": None, "worst_slack_nonfinite": "inf"}
    assert R.worst_slack_fields(-math.inf)["worst_slack_nonfinite"] == "-inf"
    assert R.worst_slack_fields(float("nan"))["worst_slack_nonfinite"] == "nan"
    assert R.worst_slack_fields(-0.5) == {"worst_slack": -0.5, "worst_slack_nonfinite": None}
    run = _examples()[0]
    run.metrics = m
    run.train_info = {"val_acc": float("nan"), "curve": [1.0, float("inf"), -float("inf")]}
    path = R.write_record(tmp_path / "r.json", run)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = _strict_load(path)  # parses with NaN/Infinity rejected
    assert data["metrics"]["pgr"] is None and data["metrics"]["pgr_undefined"]
    assert data["train_info"] == {"val_acc": None, "curve": [1.0, None, None]}


def test_write_takes_only_record_dataclasses(tmp_path):
    with pytest.raises(TypeError):
        R.write_record(tmp_path / "x.json", {"kind": "run"})


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def _errmsg(path, kind=None):
    with pytest.raises(R.RecordError) as info:
        R.read_record(path, kind)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return info.value, msg


def test_errors_name_the_file_and_the_field(tmp_path):
    good = dataclasses.asdict(_examples()[0])
    p = tmp_path / "run.json"

    err, msg = _errmsg(_write_json(p, {**good, "schema": 99}))
    assert isinstance(err, R.RecordSchemaError) and "'schema'" in msg and "99" in msg
    assert "w2sg run" in msg  # says how to regenerate

    legacy = {k: v for k, v in good.items() if k != "schema"}
    err, msg = _errmsg(_write_json(p, legacy))
    assert isinstance(err, R.RecordSchemaError) and "older" in msg and "w2sg run" in msg

    missing = json.loads(json.dumps(good))
    del missing["metrics"]["acc"]
    err, msg = _errmsg(_write_json(p, missing))
    assert not isinstance(err, R.RecordSchemaError)
    assert err.field == "metrics.acc" and "'metrics.acc'" in msg and "missing" in msg

    wrong = json.loads(json.dumps(good))
    wrong["reference"]["weak"]["acc"] = "high"
    _, msg = _errmsg(_write_json(p, wrong))
    assert "'reference.weak.acc'" in msg and "expected a number" in msg

    wrong = {**good, "seed": 1.5}
    _, msg = _errmsg(_write_json(p, wrong))
    assert "'seed'" in msg and "integer" in msg

    extra = {**good, "weak_model": "w"}  # the old duplicated name is not read
    _, msg = _errmsg(_write_json(p, extra))
    assert "'weak_model'" in msg and "unexpected" in msg

    _, msg = _errmsg(_write_json(p, {**good, "kind": "nonsense"}))
    assert "'kind'" in msg and "nonsense" in msg
    _, msg = _errmsg(_write_json(p, good), R.BenchRecord)
    assert "'kind'" in msg and "bench" in msg


def test_garbled_files(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"kind": "run", "schema": 2, "metr')
    _, msg = _errmsg(p)
    assert "not valid JSON" in msg
    p.write_text('{"kind": "run", "schema": 2, "x": NaN}')
    _, msg = _errmsg(p)
    assert "not valid JSON" in msg and "NaN" in msg
    p.write_text("[1, 2]")
    _, msg = _errmsg(p)
    assert "object" in msg
    _, msg = _errmsg(tmp_path / "absent.json")
    assert "cannot read" in msg


def _dead_pid() -> int:
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temp_files_and_move_aside(tmp_path):
    keep = R.write_record(tmp_path / "a" / "r.json", _examples()[7])
    dead = _dead_pid()
    stale = [tmp_path / "a" / f".r.json.{dead}.x1abcdef.tmp", tmp_path / f".seed0-abc.npz.{dead}.0_zz99yy.tmp"]
    fd, made = R.temp_path(tmp_path / "a" / "s.json")  # the writers' own name
    os.close(fd)
    assert R.is_temp_file(made.name) and made.name.startswith(f".s.json.{os.getpid()}.")
    stale.append(made)  # this process writes nothing while it cleans
    foreign = [tmp_path / ".notes.tmp", tmp_path / "a" / ".r.json.x1.tmp", tmp_path / ".seed0-abc.123.tmp.npz",
               tmp_path / f".r.json.{os.getppid()}.x1abcdef.tmp",  # a live writer's
               tmp_path / f".r.txt.{dead}.x1abcdef.tmp"]
    for s in stale + foreign:
        s.write_text("half")
    (tmp_path / f".d.json.{dead}.abcdefgh.tmp").mkdir()  # a folder, not a file
    assert sorted(R.clean_temp_files(tmp_path)) == sorted(stale)
    assert keep.exists() and not any(s.exists() for s in stale)
    assert all(s.read_text() == "half" for s in foreign)
    moved = R.move_aside(keep)
    assert not keep.exists() and moved.name.startswith("r.json.corrupt-") and moved.exists()
    R.write_record(keep, _examples()[7])
    again = R.move_aside(keep)
    assert again != moved and again.exists()


def test_pgr_is_one_function():
    from w2sg.pgr import pgr
    import experiments.pipeline as P
    import paper_figs.aggregate as A
    assert P.pgr is pgr and A.pgr is pgr
    assert pgr(0.7, 0.6, 0.8) == pytest.approx(0.5) and math.isnan(pgr(0.7, 0.6, 0.6))


def test_records_module_is_a_leaf():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(R))
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | \
        {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    project = {"theory", "numerics", "experiments", "paper_figs", "fdiv_torch", "numpy", "torch"}
    assert not {m.split(".")[0] for m in mods if m} & project
    assert {m for m in mods if m and m.startswith("strict")} <= {"strict_json"}


def test_docs_list_every_field_of_every_kind():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "RECORDS.md").read_text()
    nested = (R.Baselines, R.WeakMetrics, R.CeilingMetrics, R.StudentMetrics, R.RunTimings,
              R.ReferenceTimings, R.CheckRow)
    for cls in (*R.KINDS.values(), *nested):
        head = f"`{cls.__name__}`"
        assert head in text, head
        section = text[text.index(head):].split("\n### ")[0]
        for f in dataclasses.fields(cls):
            assert f"- `{f.name}`:" in section, (cls.__name__, f.name)
            line = section.split(f"- `{f.name}`:")[1].split("\n")[0]
            rule = R.range_text(f)  # the range declared on the field, and only it, is documented
            if rule:
                assert line.endswith(f", {rule}"), (cls.__name__, f.name, line)
            else:
                assert "in [" not in line and ">=" not in line, (cls.__name__, f.name, line)


def test_every_field_is_required(tmp_path):
    path = R.write_record(tmp_path / "b.json", _examples()[7])
    data = json.loads(path.read_text())
    assert data["kernels"] is None  # written as null, not left out
    del data["kernels"]
    path.write_text(json.dumps(data))
    _, msg = _errmsg(path)
    assert "'kernels'" in msg and "missing" in msg
