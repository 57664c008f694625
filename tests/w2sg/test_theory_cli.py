import json
import subprocess
import sys

import pytest

from theory import NAMED
from w2sg.cli import main


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_divergences_table_has_every_named_generator(capsys):
    rows = run_json(capsys, "divergences")
    assert [r["name"] for r in rows] == list(NAMED)
    kl = rows[0]
    assert kl["f2_at_1"] == 1 and kl["conjugate_domain"] == [None, 0.0] and kl["disagreement_pull"] == -1


def test_derive_typed_generator_fields(capsys):
    out = run_json(capsys, "derive", "--f", "(t-1)**2/(t+1)")
    for key in ["name", "generator", "f2_at_1", "dual", "symmetric", "bounded", "max_value", "conjugate",
                "conjugate_domain", "logratio_form", "disagreement_pull"]:
        assert key in out
    assert out["f2_at_1"] == 1 and out["symmetric"] and out["max_value"] == 2
    assert out["conjugate_domain"] == [None, 1.0]


def test_bound_commands(capsys):
    out = run_json(capsys, "bound", "tv", "--f", "pearson", "--delta", "0.25")
    assert out["lower_bound"] == pytest.approx(0.25) and out["convex_envelope"] == pytest.approx(0.25)
    out = run_json(capsys, "bound", "tv-inverse", "--f", "pearson", "--divergence", "0.25")
    assert out["max_tv"] == pytest.approx(0.25, abs=1e-9)
    out = run_json(capsys, "bound", "error", "--f", "tv", "--weak-error", "0.1", "--disagreement", "0.3")
    assert out["lower"] == 0.0 and out["upper"] == pytest.approx(0.4)
    out = run_json(capsys, "bound", "samples", "--f", "kl", "--gamma", "0.1", "--eps", "0.1",
                   "--delta", "0.05", "--class-size", "10")
    assert out["n"] > 0 and out["B_f"] > 0 and out["L_f"] > 0


@pytest.mark.parametrize("argv,needle", [
    (["derive", "--f", "t**2"], "subtract it"),
    (["derive", "--f", "nope"], "named generators"),
    (["derive", "--f", "log(t)"], "not convex"),
    (["bound", "tv", "--f", "kl", "--delta", "1.0"], "outside [0, 1)"),
    (["bound", "samples", "--f", "kl", "--gamma", "0.6", "--eps", "0.1", "--delta", "0.1", "--radius", "1"], "γ"),
    (["bound", "tv-inverse", "--f", "kl", "--divergence", "-0.1"], "≥ 0"),
    (["bound", "samples", "--f", "kl", "--gamma", "0.1", "--eps", "0.1", "--delta", "0.1"], "exactly one"),
])
def test_bad_input_exits_2_with_one_line(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "w2sg", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert needle in proc.stderr
