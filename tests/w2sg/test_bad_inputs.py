"""Bad input: every command answers with exactly one line on stderr and exit status 2.

Two kinds of cases:

* in-process (``w2sg.cli.main([...])`` with ``capsys``): cheap refusals.  The long work of
  each command (the sweep, the checks, the benchmarks, the figures) is replaced by a
  function that fails the test, so a refusal that comes *after* the long work starts is a
  failure too ("checked before any long work").
* subprocess (``python3 -m w2sg ...``) with a time limit: inputs that used to hang or
  exhaust memory (huge powers, ``alpha:1000``), and the real time limit of symbolic work.
  They are started together and awaited once, to keep the file fast on two cores.
"""
from __future__ import annotations

import re
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from w2sg.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _no_long_work(*_a, **_k):
    raise AssertionError("long work started before the input was refused")


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """Isolated results/cache folders; any long work fails the test."""
    monkeypatch.setenv("W2SG_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path / "cache"))
    import experiments.bench
    import experiments.runner
    import numerics.cli
    import paper_figs.build
    monkeypatch.setattr(experiments.runner, "run_sweep", _no_long_work)
    monkeypatch.setattr(experiments.bench, "run_bench", _no_long_work)
    monkeypatch.setattr(numerics.cli, "run_checks", _no_long_work)
    monkeypatch.setattr(paper_figs.build, "build_all", _no_long_work)
    import paper_figs.compare
    monkeypatch.setattr(paper_figs.compare, "compare", _no_long_work)
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "bad.toml").write_text("seeds = [\n")
    (tmp_path / "unknown.toml").write_text("seedz = 3\n")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "outint.toml").write_text("out = 3\n")
    (tmp_path / "boolseeds.toml").write_text("seeds = true\n")
    return tmp_path


def _placeholders(argv, tmp):
    return [a.replace("{tmp}", str(tmp)) for a in argv]


def _run_inprocess(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _assert_one_line(rc, err, needle=""):
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]


S = ["bound", "samples", "--f", "kl", "--gamma", "0.1", "--eps", "0.1", "--delta", "0.1"]
SR = S + ["--radius", "1"]


def _samples(**kw):
    args = {"--gamma": "0.1", "--eps": "0.1", "--delta": "0.1", "--radius": "1"}
    args.update({f"--{k.replace('_', '-')}": v for k, v in kw.items()})
    out = ["bound", "samples", "--f", "kl"]
    for k, v in args.items():
        if v is not None:
            out += [k, v]
    return out


# (argv, a piece of the one line)
INPROCESS = [
    # --gamma of divergences/derive, and its kind
    (["derive", "--f", "kl", "--gamma", "0"], "--gamma"),
    (["derive", "--f", "kl", "--gamma", "nan"], "--gamma"),
    (["derive", "--f", "kl", "--gamma", "inf"], "--gamma"),
    (["derive", "--f", "kl", "--gamma", "-0.1"], "--gamma"),
    (["derive", "--f", "kl", "--gamma", "0.5"], "--gamma"),
    (["derive", "--f", "kl", "--gamma", "1e-320"], "smallest normal"),
    (["divergences", "--gamma", "nan"], "--gamma"),
    (["divergences", "--gamma", "0"], "--gamma"),
    (["divergences", "--gamma", "-inf"], "--gamma"),
    (["divergences", "--gamma", "0.7"], "--gamma"),
    (["divergences", "--gamma", "1e-300"], "below 1e-15"),  # 1 - γ rounds to 1 in float64
    (["derive", "--f", "kl", "--gamma", "1e-16"], "below 1e-15"),
    (_samples(gamma="1e-300"), "below 1e-15"),
    # convexity on the whole of (0, inf), not only where a grid looks
    (["derive", "--f", "log(t)**30"], "f''(t) < 0 for t in (3.931e+12, inf)"),
    (["bound", "tv", "--f", "(t-1)**2 - 1e-30*t**3 + 1e-30", "--delta", "0.1"], "not convex"),
    (["derive", "--f", "kl", "--gamma", "abc"], "invalid float"),
    # bound samples: every float argument
    (_samples(radius="inf"), "--radius"),
    (_samples(radius="nan"), "--radius"),
    (_samples(radius="0"), "--radius"),
    (_samples(radius="-1"), "--radius"),
    (_samples(radius="1e-320"), "smallest normal"),
    (_samples(delta="1e-320"), "smallest normal"),
    (_samples(delta="0"), "--delta"),
    (_samples(delta="1"), "--delta"),
    (_samples(delta="nan"), "--delta"),
    (_samples(delta="-inf"), "--delta"),
    (_samples(eps="1e-300"), "exceeds"),
    (_samples(eps="1e-320"), "smallest normal"),
    (_samples(eps="inf"), "--eps"),
    (_samples(eps="nan"), "--eps"),
    (_samples(eps="0"), "--eps"),
    (_samples(eps="-1"), "--eps"),
    (_samples(gamma="0"), "--gamma"),
    (_samples(gamma="nan"), "--gamma"),
    (_samples(gamma="0.5"), "--gamma"),
    (_samples(radius=None, class_size="0"), "--class-size"),
    (_samples(radius=None, class_size="-3"), "--class-size"),
    (_samples(radius=None, class_size="1.5"), "invalid int"),
    (_samples(class_size="10"), "exactly one"),
    (S, "exactly one"),
    # bound tv / tv-inverse / error
    (["bound", "tv", "--f", "kl", "--delta", "nan"], "--delta"),
    (["bound", "tv", "--f", "kl", "--delta", "-0.1"], "--delta"),
    (["bound", "tv", "--f", "kl", "--delta", "1"], "--delta"),
    (["bound", "tv", "--f", "kl", "--delta", "inf"], "--delta"),
    (["bound", "tv", "--f", "kl", "--delta", "1e-320"], "smallest normal"),
    (["bound", "tv-inverse", "--f", "kl", "--divergence", "nan"], "--divergence"),
    (["bound", "tv-inverse", "--f", "kl", "--divergence", "inf"], "--divergence"),
    (["bound", "tv-inverse", "--f", "kl", "--divergence", "-1"], "--divergence"),
    (["bound", "tv-inverse", "--f", "kl", "--divergence", "1e-320"], "smallest normal"),
    (["bound", "error", "--f", "kl", "--weak-error", "nan", "--disagreement", "0.1"], "--weak-error"),
    (["bound", "error", "--f", "kl", "--weak-error", "1.5", "--disagreement", "0.1"], "--weak-error"),
    (["bound", "error", "--f", "kl", "--weak-error", "-0.1", "--disagreement", "0.1"], "--weak-error"),
    (["bound", "error", "--f", "kl", "--weak-error", "0.1", "--disagreement", "inf"], "--disagreement"),
    (["bound", "error", "--f", "kl", "--weak-error", "0.1", "--disagreement", "nan"], "--disagreement"),
    (["bound", "error", "--f", "kl", "--weak-error", "0.1", "--disagreement", "-2"], "--disagreement"),
    (["bound", "--f", "kl"], "error"),
    (["bound", "nope", "--f", "kl"], "invalid choice"),
    (["derive"], "--f"),
    (["nope"], "invalid choice"),
    # generators that are refused (cheap ones; the expensive ones run in a subprocess)
    (["derive", "--f", "(t-1)**2/0"], "undefined"),
    (["derive", "--f", "1/(t-1)"], "undefined"),
    (["derive", "--f", "t**2"], "subtract it: '(t**2) - (1)'"),
    (["derive", "--f", ""], "empty generator"),
    (["derive", "--f", "   "], "empty generator"),
    (["derive", "--f", "x+t"], "'x'"),
    (["derive", "--f", "__import__('os').system('true')"], "only numbers"),
    (["derive", "--f", "t.real"], "only numbers"),
    (["derive", "--f", "log(t)"], "not convex"),
    (["derive", "--f", "t+" * 300 + "t"], "longer than 500"),
    (["derive", "--f", "(t-1"], "cannot parse"),
    (["derive", "--f", "alpha:nan"], "alpha"),
    (["derive", "--f", "alpha:inf"], "alpha"),
    (["derive", "--f", "alpha:-1000"], "too extreme"),
    (["derive", "--f", "alpha:1/0"], "alpha"),
    (["derive", "--f", "alpha:" + "1" * 60], "alpha"),
    (["derive", "--f", "nope"], "unknown generator"),
    (["derive", "--f", "1e308*(t-1)**2"], "100 digits"),
    (["derive", "--f", "(t-1)**2*10**400"], "digits"),
    (["derive", "--f", "10**99*10**99*(t-1)**2"], "100 digits"),
    (["derive", "--f", "t**0.5**-1000"], "digits"),
    (["derive", "--f", "sqrt(2)**(10**50)*(t-1)**2"], "exponents are limited"),
    (["derive", "--f", "(t-1)**2*E**(10**50)"], "exponents are limited"),
    (["derive", "--f", "exp(10**50)*(t-1)**2"], "failed on this generator"),
    (["bound", "tv", "--f", "exp(10**50)*(t-1)**2", "--delta", "0.1"], "failed on this generator"),
    (["bound", "tv", "--f", "t**2", "--delta", "0.1"], "subtract it"),
    # output folders: a file in the way, /proc, empty, an unreadable config
    (["figs", "--out", "{tmp}/afile"], "is a file"),
    (["figs", "--out", "{tmp}/afile/sub"], "is a file"),
    (["figs", "--out", "/proc/1/x"], "not writable"),
    (["figs", "--out", ""], "--out is empty"),
    (["figs", "--only", "nope"], "unknown figure"),
    (["check", "--quick", "--claims", "C1", "--out", "{tmp}/afile"], "is a file"),
    (["check", "--quick", "--claims", "C1", "--out", "/proc/1/x"], "not writable"),
    (["check", "--quick", "--claims", "C1", "--out", ""], "--out is empty"),
    (["check", "--claims", "C99"], "unknown claim"),
    (["check", "--claims", ","], "empty"),
    (["check", "--seed", "-1"], "--seed"),
    (["run", "--config", "{tmp}/adir"], "is a folder"),
    (["run", "--config", "{tmp}/missing.toml"], "not found"),
    (["run", "--config", "{tmp}/bad.toml"], "not valid TOML"),
    (["run", "--config", "{tmp}/binary.toml"], "not valid TOML"),
    (["run", "--config", "{tmp}/unknown.toml"], "unknown key"),
    (["run", "--config", "{tmp}/outint.toml"], "'out'"),
    (["run", "--config", "{tmp}/boolseeds.toml"], "seeds"),
    (["run", "--quick", "--out", "{tmp}/afile"], "is a file"),
    (["run", "--quick", "--out", "/proc/1/x"], "not writable"),
    (["run", "--quick", "--out", ""], "--out is empty"),
    (["run", "--quick", "--out", "", "--dry-run"], "--out is empty"),
    (["run", "--quick", "--workers", "0"], "--workers"),
    (["run", "--quick", "--seeds", "0"], "seeds"),
    (["run", "--quick", "--noise", "nan"], "noise"),
    (["run", "--quick", "--noise", "0.7"], "noise"),
    (["run", "--quick", "--pool", "3"], "pool"),
    (["run", "--quick", "--losses", "t**1000-1"], "exponents are limited"),
    (["run", "--quick", "--losses", "nope"], "nope"),
    (["run", "--quick", "--address", "auto"], "--backend ray"),
    (["reproduce", "--quick", "--out", "{tmp}/afile"], "is a file"),
    (["reproduce", "--quick", "--out", "/proc/1/x"], "not writable"),
    (["reproduce", "--quick", "--out", ""], "--out is empty"),
    (["compare", "--out", "{tmp}/afile"], "is a file"),
    (["compare", "--out", "/proc/1/x"], "not writable"),
    (["compare", "--out", ""], "--out is empty"),
    (["compare", "--out", "{tmp}/adir"], "no run records"),
    (["compare", "--metric", "nope"], "invalid choice"),
    (["bench", "--quick", "--out", "{tmp}/afile"], "is a file"),
    (["bench", "--quick", "--out", "/proc/1/x"], "not writable"),
    (["bench", "--quick", "--out", ""], "--out is empty"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--reps", "1"], "--reps"),
    (["bench", "--what", "nope"], "--what"),
    (["bench", "--what", ","], "--what"),
    (["bench", "--what", "a\nb"], "--what"),
    (["derive", "--f", "t\n-1"], "cannot parse"),
    (["figs", "--out", "{tmp}/afile/x\ny"], "is a file"),
    (["bench", "--compile", "t**1000-1"], "exponents are limited"),
]


@pytest.mark.parametrize("argv,needle", INPROCESS, ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else None)
def test_refused_with_one_line(argv, needle, guarded, capsys):
    rc, _, err = _run_inprocess(_placeholders(argv, guarded), capsys)
    _assert_one_line(rc, err, needle)


def test_reproduce_stops_when_a_step_refuses(guarded, capsys):
    root = guarded / "r"
    root.mkdir()
    (root / "runs").write_text("a file where the runs folder goes\n")
    rc, out, err = _run_inprocess(["reproduce", "--quick", "--out", str(root)], capsys)
    _assert_one_line(rc, err, "is a file")
    assert "w2sg run: error" in err
    assert re.search(r"check +not run", out) and re.search(r"bench +not run", out)  # nothing after the refusal


# ---------------------------------------------------------------------- subprocess cases
#: (argv, needle, extra environment); expected: exit 2 and one line, well within the limit.
SUBPROCESS = [
    (["derive", "--f", "t**1000-1"], "exponents are limited", {}),
    (["derive", "--f", "alpha:1000"], "too extreme", {}),
    (["derive", "--f", "alpha:1e308"], "too extreme", {}),
    (["derive", "--f", "(t+1)**200-2**200"], "exponents are limited", {}),
    (["derive", "--f", "9**9**9*(t-1)**2"], "digits", {}),
    (["derive", "--f", "2**2**2**2**2*(t-1)**2"], "digits", {}),
    (["derive", "--f", "t**(10**10)-1"], "exponents are limited", {}),
    (["bound", "samples", "--f", "alpha:1000", "--gamma", "0.1", "--eps", "0.1", "--delta", "0.1",
      "--radius", "1"], "too extreme", {}),
    # the real time limit: symbolic work that takes far longer than 2 s of CPU time
    (["derive", "--f", "exp(exp(exp(exp(t))))-exp(exp(exp(E)))"], "too expensive",
     {"W2SG_SYMBOLIC_TIMEOUT": "2"}),
]
#: Commands that must succeed with nothing at all on stderr (no numpy RuntimeWarning).
CLEAN = [["derive", "--f", "alpha:0"], ["derive", "--f", "alpha:1"]]
LIMIT_S = 60


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-inputs")
    base = {**os.environ, "W2SG_RESULTS": str(tmp / "results"), "W2SG_CACHE": str(tmp / "cache"),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = {}
    for argv, _, env in SUBPROCESS:
        procs[tuple(argv)] = subprocess.Popen([sys.executable, "-m", "w2sg", *argv], cwd=ROOT,
                                              env={**base, **env}, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True)
    for argv in CLEAN:
        procs[tuple(argv)] = subprocess.Popen([sys.executable, "-m", "w2sg", *argv], cwd=ROOT, env=base,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + LIMIT_S
    results = {}
    for key, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            results[key] = (proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results[key] = ("timeout", "", "")
    return results


@pytest.mark.parametrize("argv,needle,env", SUBPROCESS, ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else "")
def test_expensive_input_ends_quickly_with_one_line(argv, needle, env, subprocess_results):
    rc, _, err = subprocess_results[tuple(argv)]
    assert rc != "timeout", f"w2sg {' '.join(argv)} ran past {LIMIT_S} s"
    _assert_one_line(rc, err, needle)


@pytest.mark.parametrize("argv", CLEAN, ids=" ".join)
def test_alpha_limits_print_no_warnings(argv, subprocess_results):
    rc, out, err = subprocess_results[tuple(argv)]
    assert rc == 0 and err == "", err
    assert json.dumps(out)  # it printed the derivation
    assert "symmetric" in out


# ------------------------------------------------------------------------- strict JSON
def _strict(text):
    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name} in output")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("argv", [
    ["bound", "tv", "--f", "kl", "--delta", "0.9999999999999999"],
    ["bound", "tv", "--f", "tv", "--delta", "0.5"],
    ["bound", "tv-inverse", "--f", "kl", "--divergence", "1e300"],
    ["bound", "tv-inverse", "--f", "tv", "--divergence", "5"],
    ["bound", "error", "--f", "js", "--weak-error", "0.5", "--disagreement", "1e300"],
    ["bound", "samples", "--f", "kl", "--gamma", "0.1", "--eps", "0.1", "--delta", "0.1",
     "--class-size", "99999999999999999999999999"],
], ids=lambda v: " ".join(v)[:60])
def test_bound_json_is_strict(argv, capsys):
    rc, out, err = _run_inprocess([*argv, "--json"], capsys)
    assert rc == 0, err
    data = _strict(out)
    assert data["f"] == argv[3]
