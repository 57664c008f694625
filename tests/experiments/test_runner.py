"""Resume never trusts a record unchecked: invalid run records and reference artefacts are
moved aside, named on the console and redone (with the same metrics); stale temp files go."""
from __future__ import annotations

import contextlib
import json
import signal

import numpy as np
import pytest

from w2sg.records import ReferenceRecord, RunRecord, file_sha256, read_record

from .test_pipeline import _sweep


@pytest.fixture
def swept(tmp_path, fake_features):
    from experiments.runner import expand, run_sweep
    sweep = _sweep()
    info = run_sweep(sweep, tmp_path, workers=1, quiet=True)
    assert info["executed"] == 5
    refs, runs = expand(sweep)
    return sweep, tmp_path, refs, runs


def _aside(path):
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


@pytest.mark.parametrize("damage", ["truncate", "garble", "other_config", "old_schema"])
def test_invalid_run_record_is_moved_aside_and_redone(swept, capsys, damage):
    from experiments.runner import run_path, run_sweep
    sweep, root, _, runs = swept
    victim = run_path(runs[2], root)
    before = read_record(victim, RunRecord)
    text = victim.read_text()
    if damage == "truncate":
        victim.write_text(text[: len(text) // 2])
    elif damage == "garble":
        data = json.loads(text)
        del data["metrics"]["acc"]
        victim.write_text(json.dumps(data))
    elif damage == "other_config":
        data = json.loads(text)
        data["config_hash"] = "0" * 16
        victim.write_text(json.dumps(data))
    else:
        data = json.loads(text)
        del data["schema"]
        victim.write_text(json.dumps(data))
    capsys.readouterr()
    second = run_sweep(sweep, root, workers=1, quiet=True)
    assert second["executed"] == 1 and second["skipped"] == 4
    err = capsys.readouterr().err
    assert str(victim) in err and "redoing" in err  # named even with quiet=True
    (moved,) = _aside(victim)
    assert moved.read_text() != victim.read_text()
    after = read_record(victim, RunRecord)
    assert after.metrics == before.metrics and after.reference == before.reference  # same numbers


def test_corrupt_reference_npz_is_detected_and_redone(swept, capsys):
    from experiments.runner import check_reference_record, reference_path, run_sweep
    sweep, root, refs, runs = swept
    path = reference_path(refs[0], root)
    npz = path.with_suffix(".npz")
    rec = read_record(path, ReferenceRecord)
    assert rec.arrays == npz.name and rec.arrays_sha256 == file_sha256(npz)
    with np.load(npz) as z:
        good = {k: z[k] for k in z.files}
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: np.load may still succeed
    npz.write_bytes(bytes(data))
    capsys.readouterr()
    second = run_sweep(sweep, root, workers=1, quiet=True)
    assert second["executed"] == 1  # the reference; its runs hold their own baselines
    err = capsys.readouterr().err
    assert str(path) in err and "arrays_sha256" in err
    assert len(_aside(npz)) == 1 and len(_aside(path)) == 1
    again = check_reference_record(refs[0], root)
    assert again.baselines == rec.baselines and again.arrays_sha256 == rec.arrays_sha256
    with np.load(npz) as z:
        for k, v in good.items():
            np.testing.assert_array_equal(z[k], v)


def test_missing_npz_is_redone(swept, capsys):
    from experiments.runner import reference_path, run_sweep
    sweep, root, refs, _ = swept
    reference_path(refs[0], root).with_suffix(".npz").unlink()
    assert run_sweep(sweep, root, workers=1, quiet=True)["executed"] == 1
    assert "is missing" in capsys.readouterr().err


def _dead_pid() -> int:
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_leftover_temp_files_are_cleaned_at_start(swept, capsys):
    """Exactly the writers' temporary files of dead processes go, each named; a user's own
    hidden files and those of a live writer stay."""
    import os
    from experiments.runner import reference_path, run_path, run_sweep
    sweep, root, refs, runs = swept
    run, ref = run_path(runs[0], root), reference_path(refs[0], root)
    dead = _dead_pid()
    stale = [run.with_name(f".{run.name}.{dead}.ab12cd34.tmp"),
             ref.with_name(f".{ref.with_suffix('.npz').name}.{dead}.k9_x0y1z.tmp")]
    mine = [run.with_name(".notes.tmp"), run.with_name(f".{run.name}.backup.tmp"),
            ref.with_name(".seed0-abc.999.tmp.npz"), run.with_name(".x.tmp.json"),
            run.with_name(f".{run.name}.{os.getppid()}.ab12cd34.tmp")]  # a live writer's
    for s in stale + mine:
        s.write_text("{half")
    capsys.readouterr()
    assert run_sweep(sweep, root, workers=1, quiet=True)["executed"] == 0
    assert not any(s.exists() for s in stale)
    assert all(s.read_text() == "{half" for s in mine)
    err = capsys.readouterr().err
    assert all(f"removed a leftover temporary file {s}" in err for s in stale)  # even quiet
    assert not any(str(s) in err for s in mine)


def test_summarize_refuses_a_bad_record_by_name(swept):
    from experiments.runner import run_path, summarize
    from w2sg.records import RecordError
    sweep, root, _, runs = swept
    victim = run_path(runs[0], root)
    victim.write_text("{")
    with pytest.raises(RecordError, match=str(victim)):
        summarize(sweep, root)


@contextlib.contextmanager
def _deadline(seconds: int):
    """Fail instead of hanging the suite if the block blocks (e.g. opening a FIFO)."""
    def expired(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_fifo_and_impossible_run_records_are_moved_aside_and_redone(swept, capsys):
    """A FIFO at a run record's path (it would block a reader) and a record with acc 7.3
    are named, moved aside and redone with the numbers of the original run."""
    import os
    from experiments.runner import run_path, run_sweep
    sweep, root, _, runs = swept
    fifo, bad = run_path(runs[0], root), run_path(runs[1], root)
    want = read_record(bad, RunRecord)
    fifo.unlink()
    os.mkfifo(fifo)
    data = json.loads(bad.read_text())
    data["metrics"]["acc"] = 7.3
    bad.write_text(json.dumps(data))
    capsys.readouterr()
    with _deadline(60):
        second = run_sweep(sweep, root, workers=1, quiet=True)
    assert second["executed"] == 2
    err = capsys.readouterr().err
    assert f"{fifo}: is a FIFO" in err and f"{bad}: field 'metrics.acc'" in err
    assert len(_aside(fifo)) == 1 and len(_aside(bad)) == 1
    assert read_record(bad, RunRecord).metrics == want.metrics
    assert read_record(fifo, RunRecord).metrics.acc <= 1


@pytest.mark.parametrize("arrays", ["../x.npz", "..", "/etc/passwd"])
def test_planted_arrays_path_is_refused_and_redone(swept, capsys, arrays):
    """A reference whose ``arrays`` points out of its folder is never followed: one line
    naming the field, moved aside, recomputed (no file outside the root is read)."""
    from experiments.runner import check_reference_record, reference_path, run_sweep
    from w2sg.records import RecordError
    sweep, root, refs, _ = swept
    path = reference_path(refs[0], root)
    good = read_record(path, ReferenceRecord)
    data = json.loads(path.read_text())
    data["arrays"] = arrays
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="'arrays'.*not a plain file name") as info:
        check_reference_record(refs[0], root)
    assert "\n" not in str(info.value)
    capsys.readouterr()
    assert run_sweep(sweep, root, workers=1, quiet=True)["executed"] == 1
    assert "field 'arrays'" in capsys.readouterr().err
    assert check_reference_record(refs[0], root).arrays == good.arrays


def test_fifo_in_place_of_the_npz_is_redone(swept, capsys):
    import os
    from experiments.runner import check_reference_record, reference_path, run_sweep
    sweep, root, refs, _ = swept
    npz = reference_path(refs[0], root).with_suffix(".npz")
    npz.unlink()
    os.mkfifo(npz)
    capsys.readouterr()
    with _deadline(60):
        assert run_sweep(sweep, root, workers=1, quiet=True)["executed"] == 1
    assert "is a FIFO" in capsys.readouterr().err
    assert check_reference_record(refs[0], root).arrays == npz.name
