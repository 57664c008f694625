"""paper_figs: readers, aggregation (values by hand), figure files, captions, legend order."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paper_figs import aggregate, readers, style
from paper_figs.build import build_all, figure_names

from . import synthetic as syn


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "results"
    syn.write_runs(r)
    syn.write_checks(r)
    syn.write_bench(r)
    return r


def test_legend_order_is_the_papers():
    assert style.order_losses(["tv", "reverse_kl", "ce", "js", "kl", "zzz", "pearson",
                               "hellinger", "jeffreys"]) == \
        ["ce", "kl", "pearson", "hellinger", "js", "jeffreys", "reverse_kl", "tv", "zzz"]
    kl = style.line_kw("kl")
    assert kl["ls"] != "-" and kl["markerfacecolor"] == "none"  # visible over CE
    assert style.COLORS["kl"] != style.COLORS["ce"]


def test_reader_rows(root):
    rows = readers.read_runs(root)
    assert len(rows) == len(syn.LOSSES) * len(syn.NOISES) * len(syn.SEEDS)
    r = next(r for r in rows if r["loss"] == "pearson" and r["noise"] == 0.4 and r["seed"] == 2)
    assert r["task"] == "toy_task" and r["pair"] == "weakling→strongling"
    assert r["acc"] == pytest.approx(syn.acc_of("pearson", 0.4, 2))
    assert r["weak_acc"] == 0.58 and r["ceiling_acc"] == 0.78
    assert all(s.startswith("runs/") for s in rows.sources)


def test_reader_names_bad_records(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    (tmp_path / "runs" / "other.json").write_text(json.dumps({"kind": "run", "schema": 2}))
    rows = readers.read_runs(tmp_path)
    assert len(rows) == 0 and rows.skipped == 2
    broken, other = rows.problems
    assert "runs/broken.json" in broken and "not valid JSON" in broken
    assert "runs/other.json" in other and "field 'code_version': missing" in other


def test_stored_pgr_is_the_formula(root):
    rows = readers.read_runs(root)
    for r in rows:  # the writer's PGR, read back, equals (acc − weak)/(ceiling − weak)
        assert r["pgr"] == pytest.approx((r["acc"] - r["weak_acc"]) / (r["ceiling_acc"] - r["weak_acc"]))


def test_mean_std_and_pgr_by_hand(root):
    rows = readers.read_runs(root)
    acc = aggregate.summarize(rows, "acc")
    key = ("toy_task", "weakling→strongling", "ce", 0.0)
    vals = [syn.acc_of("ce", 0.0, s) for s in syn.SEEDS]  # 0.69, 0.70, 0.71
    m, s, n = acc[key]
    assert n == 3 and m == pytest.approx(0.70) and s == pytest.approx(0.01)
    assert s == pytest.approx(np.std(vals, ddof=1))
    pgr = aggregate.summarize(rows, "pgr")
    by_hand = [(syn.acc_of("ce", 0.0, s) - syn.WEAK[s]) / (syn.CEIL[s] - syn.WEAK[s]) for s in syn.SEEDS]
    # (0.69−0.60)/0.20 = 0.45, (0.70−0.62)/0.20 = 0.40, (0.71−0.58)/0.20 = 0.65
    assert by_hand == pytest.approx([0.45, 0.40, 0.65])
    assert pgr[key][0] == pytest.approx(0.5)
    refs = aggregate.references(rows)[("toy_task", "weakling→strongling")]
    assert refs["weak"][0] == pytest.approx(0.60) and refs["ceiling"][0] == pytest.approx(0.80)


def test_noise_drop_by_hand(root):
    drops = aggregate.noise_drop(readers.read_runs(root))
    d, se, hi = drops[("toy_task", "weakling→strongling", "pearson")]
    assert d == pytest.approx(0.04) and hi == 0.4
    assert se == pytest.approx(math.sqrt(2 * 0.01 ** 2 / 3))


def test_aggregate_pgr_helper():
    assert aggregate.pgr(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert math.isnan(aggregate.pgr(0.7, 0.6, 0.6))
    assert aggregate.mean_std([]) [2] == 0


def test_check_readers(root):
    checks = readers.read_checks(root)
    assert set(checks) == {"C4", "C5", "C6"}
    assert len(readers.c4_points(checks["C4"])) == 4
    assert len(readers.c6_points(checks["C6"])) == 3
    cex = readers.read_counterexamples(root)
    assert len(cex) == 1 and cex[0]["counterexample"] and cex[0]["generator"] == "pearson"
    bench = readers.read_bench(root)
    assert {r["loss"] for r in bench} == {"ce", "pearson", "aux_conf"}
    assert [r["step_ms"] for r in bench] == [1.0, 1.5, 1.2]
    kernels = readers.read_kernel_ratios(root)
    assert [(r["loss"], r["shape"], r["ratio"]) for r in kernels] == [
        ("ce", "64×2", 1.0), ("pearson", "64×2", 1.3), ("js", "64×2", 1.7)]


def test_build_all_writes_every_figure_with_captions(root):
    from paper_figs import fig_main
    results = {r.name: r for r in build_all(root)}
    assert set(results) == set(figure_names())
    for name, r in results.items():
        assert r.status == "made", (name, r.message)
        for ext in ("png", "pdf", "txt"):
            assert (root / "figures" / f"{name}.{ext}").stat().st_size > 0
    cap = (root / "figures" / "main_accuracy_vs_noise.txt").read_text()
    from experiments.runner import run_path
    ce0 = next(c for c in syn.expand(syn.sweep())[1] if (c["loss"], c["noise"], c["seed"]) == ("ce", 0.0, 0))
    # the caption summarises the records; the sidecar lists every one
    side = lambda n: json.loads((root / "figures" / f"{n}.records.json").read_text())["sources"]  # noqa: E731
    n_runs = len(syn.LOSSES) * len(syn.NOISES) * len(syn.SEEDS)
    assert f"Made from: {n_runs} records: {n_runs} in runs/toy_task/" in cap and len(cap.splitlines()) == 3
    assert str(run_path(ce0, root).relative_to(root)) in side("main_accuracy_vs_noise")
    assert "checks/C4.json" in side("c4_c5_bounds_vs_measured")
    assert "checks/counterexamples/c5_pearson_kl_s7_0.json" in side("c4_c5_bounds_vs_measured")
    assert f"bench/{syn.BENCH_NAME}" in side("cost_per_step")
    assert "theory/" in (root / "figures" / "c3_joint_range.txt").read_text()
    # the main figure plots the losses in the paper's legend order
    assert fig_main.compute(readers.read_runs(root))["losses"] == ["ce", "kl", "pearson", "reverse_kl"]
    assert results["c4_c5_bounds_vs_measured"].summary["C5"]["counterexamples_by_generator"]["pearson"]["stored_counterexamples"] == 1
    assert results["c4_c5_bounds_vs_measured"].summary["C4"]["inside_interval"] == 4
    index = json.loads((root / "figures" / "index.json").read_text())
    assert [i["name"] for i in index] == figure_names()
    import re
    for name in figure_names():  # rounded numbers, no Python dict syntax, a short caption
        text = (root / "figures" / f"{name}.txt").read_text()
        assert not re.search(r"\d\.\d{6,}", text) and "{'" not in text, (name, text)
        assert len(text.splitlines()) == 3, name


def test_missing_records_skip_with_message(tmp_path):
    results = {r.name: r for r in build_all(tmp_path)}
    assert results["main_accuracy_vs_noise"].status == "skipped"
    assert "w2sg run" in results["main_accuracy_vs_noise"].message
    assert results["c6_sample_complexity"].status == "skipped"
    assert results["cost_per_step"].status == "skipped"
    assert results["c3_joint_range"].status == "made"  # theory figures need no records
    assert not (tmp_path / "figures" / "main_accuracy_vs_noise.png").exists()


def test_cli_figs_json_and_errors(root, capsys):
    from w2sg.cli import main
    assert main(["figs", "--out", str(root), "--json", "--only", "c2_local_equivalence"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in out["figures"]] == ["c2_local_equivalence"]
    assert main(["figs", "--out", str(root), "--only", "nope"]) == 2
    assert "unknown figure" in capsys.readouterr().err


def _record_steps(monkeypatch):
    from paper_figs import reproduce
    calls = []
    for name in list(reproduce.STEPS):
        monkeypatch.setitem(reproduce.STEPS, name,
                            lambda root, log=None, _n=name, **kw: calls.append((_n, kw)) or 0)
    return calls


def test_reproduce_plans_run_check_figs_and_reuses_checks(root, tmp_path, monkeypatch):
    from paper_figs import cli
    calls = _record_steps(monkeypatch)
    out = cli.reproduce(root, quick=True, log=lambda *_: None)
    assert calls == [("run", {"quick": True, "tune": None}),  # checks and bench exist: reused
                     ("compare", {})]
    assert [s["step"] for s in out["steps"]] == ["run", "check", "bench", "compare", "figs"]
    assert out["steps"][1]["status"] == "reused" and out["steps"][2]["status"] == "reused"
    calls.clear()
    empty = tmp_path / "empty"
    out = cli.reproduce(empty, quick=False, log=lambda *_: None, tune={"lr": [0.1]})
    # with a tuning spec: the fixed recipe first, then the same sweep tuned
    assert calls == [("run", {"quick": False, "tune": None}),
                     ("run-tuned", {"quick": False, "tune": {"lr": [0.1]}}), ("check", {"quick": False}),
                     ("bench", {}), ("compare", {})]
    assert {r.name: r.status for r in out["figures"]}["c3_joint_range"] == "made"


def test_reproduce_stops_after_a_refused_step(tmp_path, monkeypatch, capsys):
    from paper_figs import reproduce
    from w2sg.errors import UsageError
    calls = _record_steps(monkeypatch)

    def refuse(root, log=None, **kw):
        raise UsageError("no data")
    monkeypatch.setitem(reproduce.STEPS, "run", refuse)
    lines = []
    out = reproduce.reproduce(tmp_path, quick=True, log=lines.append)
    assert out["refused"] == 2 and calls == [] and out["figures"] == []
    assert [s["status"] for s in out["steps"]] == ["exit 2", "not run", "not run", "not run"]
    assert capsys.readouterr().err == "w2sg run: error: no data\n"


def test_the_sweep_of_reproduce_is_the_run_commands(monkeypatch):
    from experiments.runner import QUICK_SWEEP
    from paper_figs.reproduce import sweep_for
    assert sweep_for(True) == QUICK_SWEEP
    assert sweep_for(True, tune={"lr": [1]})["tune"] == {"lr": [1]}


def test_reproduce_cli_skip_runs(root, capsys):
    from w2sg.cli import main
    assert main(["reproduce", "--out", str(root), "--skip-runs", "--quick"]) == 0
    text = capsys.readouterr().out
    assert "reused" in text and f"{len(figure_names())} made" in text


def test_figs_names_a_garbled_record_and_exits_nonzero(root, capsys):
    from w2sg.cli import main
    victim = syn.write_runs(root)[3]
    victim.write_text(victim.read_text()[:100])
    rc = main(["figs", "--out", str(root), "--only", "main_accuracy_vs_noise"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert str(victim) in err and "not valid JSON" in err
    assert "1 unusable records" in out
    index = json.loads((root / "figures" / "index.json").read_text())
    assert index[0]["status"] == "made"  # the other records still make the figure


def test_figs_refuses_an_unknown_schema_in_one_line(root, capsys):
    from w2sg.cli import main
    victim = syn.write_runs(root)[0]
    victim.write_text(victim.read_text().replace('"schema": 2', '"schema": 7'))
    assert main(["figs", "--out", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(victim) in err and "schema" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- print size
def _display_points(line, densify: int = 30) -> np.ndarray:
    """The display coordinates a line is drawn through (segments sampled when it has a
    line style; only its vertices when it is markers only)."""
    xy = np.asarray(line.get_xydata(), float)
    if xy.size == 0:
        return np.zeros((0, 2))
    disp = line.get_transform().transform(xy)
    disp = disp[np.isfinite(disp).all(axis=1)]
    if line.get_linestyle() in ("None", "none", "", " ") or len(disp) < 2:
        return disp
    t = np.linspace(0, 1, densify)[:, None, None]
    segs = disp[:-1][None] * (1 - t) + disp[1:][None] * t
    return segs.reshape(-1, 2)


def _inside(box, pts, pad: float = 1.0) -> np.ndarray:
    return ((pts[:, 0] > box.x0 + pad) & (pts[:, 0] < box.x1 - pad)
            & (pts[:, 1] > box.y0 + pad) & (pts[:, 1] < box.y1 - pad))


def legend_overlaps(fig) -> list[str]:
    """Every legend box of ``fig`` that covers a drawn point of a line or collection inside
    an axes (what is outside an axes is clipped, not drawn)."""
    if not hasattr(fig.canvas, "get_renderer"):  # a closed pyplot figure: draw it with Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    bad = []
    for leg in legends:
        box = leg.get_window_extent(r)
        for i, ax in enumerate(fig.axes):
            if not ax.get_visible():
                continue
            axbox = ax.get_window_extent(r)
            for line in ax.get_lines():
                if not line.get_visible():
                    continue
                pts = _display_points(line)
                pts = pts[_inside(axbox, pts, 0)]
                if _inside(box, pts).any():
                    bad.append(f"axes {i}: legend over line {line.get_label()!r}")
            for coll in ax.collections:
                offs = np.asarray(coll.get_offsets(), float)
                pts = coll.get_offset_transform().transform(offs) if offs.size else np.zeros((0, 2))
                for path in coll.get_paths():
                    v = path.vertices
                    if len(v):
                        pts = np.vstack([pts, coll.get_transform().transform(v)])
                pts = pts[np.isfinite(pts).all(axis=1)]
                pts = pts[_inside(axbox, pts, 0)]
                if _inside(box, pts).any():
                    bad.append(f"axes {i}: legend over collection {coll.get_label()!r}")
    return bad


def test_legend_overlap_check_can_fail():
    fig, axes = style.new_figure()
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.legend(loc="center")
    assert legend_overlaps(fig) == ["axes 0: legend over line 'diagonal'"]
    ax.get_legend().remove()
    style.legend_below(ax)
    assert legend_overlaps(fig) == []


def test_every_figure_prints_at_page_width_without_legends_over_data(root, monkeypatch):
    made = {}
    original = style.save_figure

    def keep(fig, figures_dir, name, caption, sources):
        paths = original(fig, figures_dir, name, caption, sources)
        made[name] = fig
        return paths
    monkeypatch.setattr(style, "save_figure", keep)
    results = build_all(root)
    assert all(r.status == "made" for r in results), [(r.name, r.message) for r in results]
    assert set(made) == set(figure_names())
    for name, fig in made.items():
        w, h = fig.get_size_inches()
        assert w <= 7.2 and h <= 9.5, (name, w, h)
        assert legend_overlaps(fig) == [], name
        # the saved PNG (tight bounding box) is no wider than the page either
        from PIL import Image
        px_w = Image.open(root / "figures" / f"{name}.png").size[0]
        assert px_w / 200 <= 7.6, (name, px_w)


def test_every_loss_of_the_table_has_its_own_style():
    from theory.loss_table import LOSS_ORDER
    assert set(style.STYLE) == set(LOSS_ORDER)
    assert len({style.STYLE[n] for n in LOSS_ORDER}) == len(LOSS_ORDER)
    assert style.COLORS["js"] != "#F0E442"  # the faint Okabe–Ito yellow is not used for markers
    a, b = style.line_kw("(t-1)**4"), style.line_kw("t**3-1")
    assert (a["marker"], a["color"]) != (b["marker"], b["color"])


def test_captions_round_numbers():
    assert style.round_sig({"a": [0.123456789, 12345.678], "b": 1e-7 / 3}) == \
        {"a": [0.123, 12300.0], "b": 3.33e-08}


def test_reproduce_command_tunes_on_weak_labels_by_default(tmp_path, monkeypatch):
    """``w2sg reproduce`` runs the fixed recipe and then the tuned sweep with weak selection
    (the default grid); ``--select oracle`` selects on ground truth; ``--select none`` runs the
    fixed recipe only."""
    from paper_figs import reproduce
    from experiments.tuning import DEFAULT_GRID
    from w2sg.cli import main
    calls = _record_steps(monkeypatch)
    monkeypatch.setattr("paper_figs.build.build_all", lambda root, only=None: [])
    main(["reproduce", "--quick", "--out", str(tmp_path), "--json"])
    runs = [(n, kw) for n, kw in calls if n.startswith("run")]
    assert [n for n, _ in runs] == ["run", "run-tuned"] and runs[0][1]["tune"] is None
    tune = runs[1][1]["tune"]
    assert tune["select"] == "weak" and len(tune["grid"]) == len(DEFAULT_GRID) == 12
    assert min(tune["tuning_seeds"]) >= 1000
    for select, names in (("oracle", ["run", "run-tuned"]), ("none", ["run"])):
        calls.clear()
        main(["reproduce", "--quick", "--out", str(tmp_path), "--json", "--select", select])
        assert [n for n, _ in calls if n.startswith("run")] == names
        if select == "oracle":
            assert calls[1][1]["tune"]["select"] == "oracle"
    assert reproduce.STEPS  # the table the command runs through
