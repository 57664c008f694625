"""``w2sg run`` ends with a short summary and writes the full per-cell table to
``<out>/runs/summary.txt`` (printed with ``--table``)."""
from __future__ import annotations

import json

from .test_pipeline import SMALL


def _config(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text('tasks = ["fortunes_pairs"]\nweak = ["minilm-l6-layer0"]\nlosses = ["ce", "tv"]\n'
                   'noise = [0.0, 0.2]\nseeds = 1\npool = 600\n'
                   f'[sizes]\nweak_gt = {SMALL["sizes"]["weak_gt"]}\ntest = {SMALL["sizes"]["test"]}\n'
                   '[train]\nsteps = 30\neval_every = 10\n')
    return cfg


def test_run_prints_a_short_summary_and_writes_the_table(tmp_path, fake_features, capsys):
    from w2sg.cli import main
    out = tmp_path / "res"
    argv = ["run", "--config", str(_config(tmp_path)), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    table = (out / "runs" / "summary.txt").read_text().splitlines()
    assert table[0].split()[:3] == ["task", "weak", "loss"] and len(table) == 1 + 2 * 2  # 2 losses × 2 noises
    lines = text.strip().splitlines()
    assert len(lines) <= 6 and not any(ln.split()[:2] == ["task", "weak"] for ln in lines)  # no table
    assert lines[0].startswith("w2sg run: 1 task(s) × 1 weak model(s) × 2 loss(es) × 2 noise level(s)")
    assert "5 executed, 0 skipped" in lines[0]
    assert str(out / "runs" / "summary.txt") in text
    # best / worst per noise level, from the same rows as the table
    cells = {(r.split()[2], float(r.split()[3])): float(r.split()[6]) for r in table[1:]}
    for noise in (0.0, 0.2):
        line = next(ln for ln in lines if ln.strip().startswith(f"noise {noise:g}:"))
        best = max(("ce", "tv"), key=lambda loss: cells[(loss, noise)])
        assert f"best {best} {cells[(best, noise)]:.3f}" in line
    # --table prints the same table; --json carries the table's path
    assert main(argv + ["--table"]) == 0
    assert "\n".join(table) in capsys.readouterr().out
    assert main(argv + ["--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["info"]["summary_table"] == str(out / "runs" / "summary.txt")
    assert payload["info"]["executed"] == 0 and len(payload["summary"]) == 4


def test_short_summary_names_the_best_and_worst_loss_per_noise():
    from experiments.cli import short_summary
    sweep = {"tasks": ["a", "b"], "weak": ["w"], "losses": ["ce", "tv"], "noise": [0.0, 0.4], "seeds": 2}
    info = {"executed": 8, "skipped": 0, "wall_s": 1.0, "root": "/r", "summary_table": "/r/runs/summary.txt"}
    rows = [{"loss": "ce", "noise": 0.0, "w2s_acc": 0.70}, {"loss": "ce", "noise": 0.0, "w2s_acc": 0.80},
            {"loss": "tv", "noise": 0.0, "w2s_acc": 0.74}, {"loss": "tv", "noise": 0.0, "w2s_acc": 0.74},
            {"loss": "ce", "noise": 0.4, "w2s_acc": 0.60}, {"loss": "tv", "noise": 0.4, "w2s_acc": 0.68}]
    text = short_summary(sweep, info, rows)
    assert "noise 0: best ce 0.750, worst tv 0.740" in text   # means over tasks: ce (0.70+0.80)/2
    assert "noise 0.4: best tv 0.680, worst ce 0.600" in text
    assert "full table (6 cells) in /r/runs/summary.txt" in text
