"""Hostile and impossible record files: refused by name (file and field), never opened when
not a regular file, never a hang, a RecursionError or a value out of its range; paths stored
in records and names used in file names never leave the results root."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from w2sg import records as R
from w2sg.paths import slug

from .test_records import _examples

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def deadline(seconds: int = 20):
    """Fail (instead of hanging the suite) if the block blocks, e.g. opening a FIFO."""
    def expired(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run_record(tmp_path, name="run.json"):
    return R.write_record(tmp_path / name, _examples()[0])


def _refused(path, field=None, match="", **kw):
    with pytest.raises(R.RecordError) as info:
        R.read_record(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and match in msg, msg
    if field:
        assert info.value.field == field and f"'{field}'" in msg, msg
    return msg


# ----------------------------------------------------------------------------- files
def test_fifo_device_and_folder_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with deadline():
        _refused(fifo, match="FIFO")
        _refused(Path("/dev/null"), match="character device")
        _refused(folder, match="folder")
    link = tmp_path / "to_fifo.json"
    link.symlink_to(fifo)  # a link inside the root to a FIFO: still refused, still no hang
    with deadline():
        _refused(link, match="FIFO", root=tmp_path)


def test_links_out_of_the_root_are_refused(tmp_path):
    root = tmp_path / "root"
    good = _run_record(root, "good.json")
    (root / "inside.json").symlink_to(good)
    outside = _run_record(tmp_path, "outside.json")
    (root / "out.json").symlink_to(outside)
    (root / "passwd.json").symlink_to("/etc/passwd")
    assert R.read_record(root / "inside.json", root=root) == R.read_record(good)
    _refused(root / "out.json", match="outside the results root", root=root)
    _refused(root / "passwd.json", match="/etc/passwd", root=root)


def test_size_is_bounded(tmp_path):
    path = _run_record(tmp_path)
    size = path.stat().st_size
    assert R.MAX_RECORD_BYTES == 64 << 20
    assert R.read_regular(path, size) == path.read_bytes()
    with pytest.raises(R.RecordError, match=f"{size} bytes, over the limit of {size - 1}"):
        R.read_regular(path, size - 1)


def test_100k_deep_record_is_refused_by_name(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _refused(deep, match="nested deeper than 64")
    nested = {"kind": "run"}
    data = json.loads(_run_record(tmp_path).read_text())
    for _ in range(70):
        nested = {"x": nested}
    data["train_info"] = nested
    too_deep = tmp_path / "free.json"
    too_deep.write_text(json.dumps(data))
    _refused(too_deep, match="nested deeper than 64")
    with pytest.raises(R.RecordError, match="nested deeper"):  # in memory too: no recursion
        node = []
        top = node
        for _ in range(100_000):
            node.append([])
            node = node[0]
        R.parse_record({**data, "train_info": {"x": top}})
    data["train_info"] = {"a": {"b": [[1.0, {"c": 2}]]}}  # a few levels: fine
    assert R.parse_record(data).train_info == data["train_info"]


# ----------------------------------------------------------------------------- values
def _set(data, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        data = data[k]
    data[keys[-1]] = value


@pytest.mark.parametrize("field,value,match", [
    ("metrics.acc", 7.3, "in [0, 1]"),
    ("metrics.acc", -0.5, "in [0, 1]"),
    ("metrics.acc", "1e999", "not a finite number"),
    ("timings.train_s", -5, ">= 0"),
    ("reference.weak.acc", 3.0, "in [0, 1]"),
    ("reference.ceiling.auroc", 1.5, "in [0, 1]"),
    ("metrics.ece", -1e-3, "in [0, 1]"),
    ("metrics.agreement_weak", 2, "in [0, 1]"),
    ("metrics.pgr", "1e999", "not a finite number"),
    ("metrics.pgr", "-1e999", "not a finite number"),
    ("noise", 1.5, "in [0, 1]"),
    ("seed", -1, ">= 0"),
    ("reference.gap", 1.2, "in [-1, 1]"),
    ("train_info.val_acc", "1e999", "not a finite number"),  # free-form objects too
    ("reference_record", "../../etc/passwd", "inside the results root"),
])
def test_impossible_values_are_refused_by_field(tmp_path, field, value, match):
    path = _run_record(tmp_path)
    data = json.loads(path.read_text())
    _set(data, field, "@@" if value in ("1e999", "-1e999") else value)
    text = json.dumps(data).replace('"@@"', str(value))  # 1e999: JSON text Python reads as inf
    path.write_text(text)
    _refused(path, field, match)


def test_values_at_the_edges_are_kept(tmp_path):
    path = _run_record(tmp_path)
    data = json.loads(path.read_text())
    for field, value in [("metrics.acc", 1.0), ("metrics.ece", 0.0), ("metrics.pgr", -12.5),
                         ("metrics.pgr", None), ("timings.train_s", 0), ("noise", 0.0),
                         ("reference.gap", -1.0), ("seed", 10 ** 6)]:
        _set(data, field, value)
        path.write_text(json.dumps(data))
        rec = R.read_record(path)
        assert R.to_plain(rec)[field.split(".")[0]] == data[field.split(".")[0]]


def test_huge_integer_in_a_float_field_is_not_finite(tmp_path):
    path = _run_record(tmp_path)
    text = path.read_text().replace('"train_s": 1.0', '"train_s": 1' + "0" * 400)
    path.write_text(text)
    _refused(path, "timings.train_s", "not a finite number")


def test_every_range_is_declared_on_the_fields():
    """The ranges the issue asks for, read from the dataclasses (one declaration)."""
    def rule(cls, name):
        return R.range_text(next(f for f in dataclasses.fields(cls) if f.name == name))
    for cls in (R.WeakMetrics, R.CeilingMetrics, R.StudentMetrics):
        assert rule(cls, "acc") == rule(cls, "ece") == rule(cls, "auroc") == "in [0, 1]"
    assert rule(R.StudentMetrics, "pgr") == ""  # any finite number, or null
    for cls in (R.RunTimings, R.ReferenceTimings):
        assert all(R.range_text(f) == ">= 0" for f in dataclasses.fields(cls))
    for cls in (R.RunRecord, R.LlmRunRecord):
        assert rule(cls, "noise") == "in [0, 1]" and rule(cls, "seed") == ">= 0"
    assert rule(R.ReferenceRecord, "arrays") == "file name in the record's folder"


@pytest.mark.parametrize("arrays", ["../x.npz", "..", ".", "/etc/passwd", "a/b.npz", "",
                                    ".hidden.npz", "x\\..\\y.npz", "x\0.npz"])
def test_reference_arrays_must_be_a_plain_file_name(tmp_path, arrays):
    path = R.write_record(tmp_path / "ref.json", _examples()[1])
    data = json.loads(path.read_text())
    data["arrays"] = arrays
    path.write_text(json.dumps(data))
    _refused(path, "arrays", "not a plain file name")


# ----------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b", "(t-1)**2/(t+1)", ".hidden",
                                  "x" * 300, "/etc/passwd", "a\\b", "ce\0", "ü"])
def test_slug_never_leaves_the_folder(tmp_path, name):
    s = slug(name)
    assert "/" not in s and "\\" not in s and not s.startswith(".") and 0 < len(s) <= 100
    assert (tmp_path / s).resolve().parent == tmp_path.resolve()
    assert s.startswith("expr-") and s == slug(name)  # stable


def test_slug_keeps_plain_names_and_the_old_hashes():
    assert [slug(x) for x in ("ce", "reverse_kl", "alpha:0.5", "vader_cls", "x.y")] == \
        ["ce", "reverse_kl", "alpha-0.5", "vader_cls", "x.y"]
    assert slug("(t-1)**2/(t+1)") == "expr-" + R.config_hash({"x": "(t-1)**2/(t+1)"})[:8]
    import experiments.runner as runner
    assert runner.slug is slug  # one encoder


def test_too_long_out_path_is_one_line(tmp_path):
    from w2sg.errors import UsageError
    from w2sg.paths import writable_dir
    with pytest.raises(UsageError, match="File name too long") as info:
        writable_dir(tmp_path / ("a" * 300) / "compare", "results folder")
    assert "\n" not in str(info.value) and "--out" in str(info.value)


# ----------------------------------------------------------------------------- readers
def _runs_with_hostile_files(root):
    from tests.paper_figs import synthetic as S
    paths = S.write_runs(root)
    os.mkfifo(root / "runs" / "fifo.json")
    (root / "runs" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "runs" / "passwd.json").symlink_to("/etc/passwd")
    bad = json.loads(paths[0].read_text())
    bad["metrics"]["acc"] = 7.3
    paths[0].write_text(json.dumps(bad))
    return paths


def test_readers_name_and_skip_hostile_files(tmp_path):
    from paper_figs.readers import audit, read_runs
    paths = _runs_with_hostile_files(tmp_path)
    with deadline():
        runs = read_runs(tmp_path)
        problems = audit(tmp_path)
    assert len(runs) == len(paths) - 1 and runs.skipped == 4 == len(problems)
    assert all(r["acc"] <= 1 for r in runs)
    text = "\n".join(problems)
    assert "fifo.json: is a FIFO" in text and "deep.json: nested deeper" in text
    assert "outside the results root" in text and f"{paths[0]}: field 'metrics.acc'" in text


def test_compare_cli_skips_hostile_files_and_writes_inside_out(tmp_path):
    """A FIFO does not hang ``w2sg compare``; acc 7.3 is not compared; a loss and a baseline
    named ``../../evil`` write ``compare/acc-vs-expr-<hash>.json``, nothing outside ``--out``."""
    root = tmp_path / "out"
    paths = _runs_with_hostile_files(root)
    evil = "../../evil"
    for p in paths:
        data = json.loads(p.read_text())
        if data["loss"] == "pearson":
            data["loss"] = data["config"]["loss"] = evil
            p.write_text(json.dumps(data))
    before = sorted(tmp_path.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "w2sg", "compare", "--out", str(root),
                           "--baseline", evil, "--json"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    record = Path(out["record"])
    assert record == root / "compare" / f"acc-vs-{slug(evil)}.json" and record.exists()
    new = sorted(set(tmp_path.rglob("*")) - set(before))
    assert new == [root / "compare", record]
    assert len(out["unreadable"]) == 4 and out["n_runs"] == len(paths) - 1
    assert all(abs(r["mean_diff"]) <= 100 for r in out["rows"] if r["mean_diff"] is not None)
