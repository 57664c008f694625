import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "w2sg", "check", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_bad_claim_is_one_line_status_2():
    r = _run("--claims", "C1,C42")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "C42" in r.stderr


def test_json_and_records(tmp_path):
    r = _run("--quick", "--claims", "C7,C8", "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [row["claim"] for row in out["rows"]] == ["C7", "C8"]
    assert all(row["status"] == "pass" for row in out["rows"])
    summary = json.loads((tmp_path / "checks" / "summary.json").read_text())
    assert summary["mode"] == "quick" and len(summary["rows"]) == 2
    assert (tmp_path / "checks" / "C7.json").exists()


def test_records_for_figures(tmp_path, quick):
    from numerics.cli import write_records
    from numerics.checks.c5 import recheck
    res = [quick("C5"), quick("C3"), quick("C4"), quick("C6")]
    write_records(res, tmp_path, True, 0)
    files = sorted((tmp_path / "checks" / "counterexamples").glob("c5_*.json"))
    assert files
    rec = json.loads(files[0].read_text())
    assert "search_seed" in rec and "instance" in rec
    assert recheck(rec)["fails"]
    from w2sg.records import CheckDataRecord, CheckRecord, read_record
    data = lambda name: read_record(tmp_path / "checks" / name, CheckDataRecord).data
    curves = data("c3_curves.json")["curves"]
    assert len(curves["kl"]["delta"]) == len(curves["kl"]["L"])
    assert data("c4_slacks.json")["instances"]
    cells = data("c6_coverage.json")["cells"]
    assert all(c["coverage"] >= 1 - c["delta"] for c in cells)
    # every file the real checks wrote is a valid typed record in strict JSON
    from paper_figs.readers import audit
    assert audit(tmp_path) == []
    for p in (tmp_path / "checks").rglob("*.json"):
        json.loads(p.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    c4 = read_record(tmp_path / "checks" / "C4.json", CheckRecord)
    assert c4.claim == "C4" and c4.mode == "quick" and c4.instances == res[2].instances
