"""``w2sg bench``: its statistics are the stated ones and its rows are consistent with each
other (benchmarks are measurements: nothing here checks speed)."""
from __future__ import annotations

import json
import math

import pytest

from w2sg.cli import main


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_stats_are_numpy_percentiles_in_milliseconds():
    from experiments.bench import stats
    got = stats([0.004, 0.001, 0.003, 0.002, 0.010])  # seconds
    # sorted ms: 1 2 3 4 10; linear-interpolated quartiles at positions 1 and 3
    assert got == {"median_ms": pytest.approx(3.0), "q1_ms": pytest.approx(2.0), "q3_ms": pytest.approx(4.0),
                   "iqr_ms": pytest.approx(2.0), "min_ms": pytest.approx(1.0), "n": 5}


def test_kernel_bench_rows_are_well_formed():
    from experiments.bench import bench_kernels, format_tables
    from fdiv_torch import c_kernel
    out = bench_kernels(shapes=((256, 2), (32, 50)), generators=("kl", "js"), typed=("(t-1)**2/(t+1)",), reps=3)
    assert [(s["n"], s["k"]) for s in out["shapes"]] == [(256, 2), (32, 50)]
    default_c = c_kernel.available() and c_kernel.vector_math()
    assert out["default_path"] == ("c" if default_c else "torch")
    assert out["c_kernel"]["available"] == c_kernel.available()
    variants = ("fused", "reference") + (("torch",) if default_c else ())
    for sh in out["shapes"]:
        names = {(r["loss"], r["variant"]) for r in sh["rows"]}
        assert names == {("ce", "eager")} | {(g, v) for g in ("kl", "js", "(t-1)**2/(t+1)") for v in variants}
        for r in sh["rows"]:
            for kind in ("cpu", "wall"):
                s = r[kind]
                assert s["n"] == 3 and s["iqr_ms"] == pytest.approx(s["q3_ms"] - s["q1_ms"])
                assert 0 < s["min_ms"] <= s["median_ms"]
            # each ratio is that row's median CPU time over CE's, from the same sample
            ce_median = next(r for r in sh["rows"] if r["loss"] == "ce")["cpu"]["median_ms"]
            assert r["ratio_cpu"] == pytest.approx(r["cpu"]["median_ms"] / ce_median)
            ce_wall = next(r for r in sh["rows"] if r["loss"] == "ce")["wall"]["median_ms"]
            assert r["ratio_wall"] == pytest.approx(r["wall"]["median_ms"] / ce_wall)
            assert r["peak_mib"] is None or r["peak_mib"] >= 0
    text = format_tables({"machine": {"torch": "x", "torch_threads": 1, "cpus": 2}, "kernels": out})
    assert "256×2" in text and "js" in text and "reference ×CE" in text
    assert "CPU goal, every named generator ≤ 1.5× CE at 32×50" in text


def test_cpu_goal_reads_the_default_path_of_the_named_generators():
    from experiments.bench import cpu_goal

    def row(loss, variant, ratio, typed=False):
        return {"loss": loss, "variant": variant, "ratio_cpu": ratio, "typed": typed}
    kernels = {"shapes": [
        {"n": 8, "k": 2, "rows": [row("ce", "eager", 1.0), row("kl", "fused", 1.2), row("js", "fused", 1.4),
                                  row("js", "reference", 9.0), row("(t-1)**2/(t+1)", "fused", 3.0, True)]},
        {"n": 4, "k": 9, "rows": [row("kl", "fused", 1.6), row("js", "fused", 0.9)]}]}
    assert cpu_goal(kernels) == [
        {"shape": "8×2", "worst": "js", "worst_ratio": 1.4, "target": 1.5, "met": True},
        {"shape": "4×9", "worst": "kl", "worst_ratio": 1.6, "target": 1.5, "met": False}]


def test_training_scaling_curve_sections():
    from experiments.bench import bench_curve, bench_scaling, bench_training, format_tables
    tr = bench_training(n=200, d=16, d_weak=4, steps=3, reps=3, losses=["ce", "tv", "aux_conf"], members=2)
    assert [r["loss"] for r in tr["rows"]] == ["ce", "tv", "aux_conf", "ensemble2"]
    assert all(_finite(r["epoch_ms_cpu"]) and r["epoch_ms_cpu"] >= 0 for r in tr["rows"])
    sc = bench_scaling(ns=(100, 200, 400), d=16, steps=3, reps=3, losses=("ce",))
    s = sc["losses"]["ce"]
    assert s["n"] == [100, 200, 400] and len(s["seconds_cpu"]) == 3 and _finite(s["us_per_example"])
    cv = bench_curve(generators=("kl",), typed=("(t-1)**2/(t+1)",), points=5, reps=2)
    assert [r["generator"] for r in cv["rows"]] == ["kl", "(t-1)**2/(t+1)"]
    assert all(r["points_per_s"] > 0 for r in cv["rows"])
    text = format_tables({"machine": {"torch": "x", "torch_threads": 1, "cpus": 2},
                          "training": tr, "scaling": sc, "curve": cv})
    assert "ensemble2" in text and "µs/example" in text and "tight TV curve" in text


def test_cli_bench_writes_a_record(tmp_path, capsys):
    assert main(["bench", "--quick", "--what", "curve", "--out", str(tmp_path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["kind"] == "bench" and rec["what"] == ["curve"] and "curve" in rec
    files = list((tmp_path / "bench").glob("bench-*-quick.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["curve"]["rows"] and "code_version" in stored and "method" in stored


@pytest.mark.parametrize("argv, needle", [
    (["bench", "--what", "kernels,bogus"], "unknown part"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--threads", "100000"], "--threads must be between 1 and"),  # segfaulted in OpenMP
    (["bench", "--reps", "1"], "--reps"),
    (["bench", "--compile", "not_a_generator(("], "error"),
    (["run", "--address", "auto"], "--address needs --backend ray"),
])
def test_cli_usage_errors(argv, needle, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)] if argv[0] == "bench" else argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_cuda_kernel_bench_procedure_runs_on_cpu():
    """The GPU benchmark's procedure (fresh weak pool, CE and every generator, ratios), run
    on CPU with wall-clock timing: the GPU run itself is ``scripts/gpu_check.sh``."""
    from experiments.bench_cuda import POOL, bench_kernels_cuda, format_cuda_tables
    out = bench_kernels_cuda(shapes=((32, 2), (8, 20)), dtypes=("float32",), generators=("kl", "tv"),
                             typed=("(t-1)**2/(t+1)",), reps=3, warmup=1, liger=False, device="cpu")
    assert out["pool"] == POOL > 8  # more distinct weak tensors than the weak-label cache holds
    assert [(s["n"], s["k"], s["dtype"]) for s in out["shapes"]] == [(32, 2, "float32"), (8, 20, "float32")]
    for sh in out["shapes"]:
        assert sh["errors"] is None
        assert {(r["loss"], r["variant"]) for r in sh["rows"]} == {("ce", "eager")} | {
            (g, "fused") for g in ("kl", "tv", "(t-1)**2/(t+1)")}
        for r in sh["rows"]:
            assert r["gpu"]["n"] == 3 and r["gpu"]["q1_ms"] <= r["gpu"]["median_ms"] <= r["gpu"]["q3_ms"]
            assert _finite(r["ratio"]) and r["ratio"] > 0
    assert "32×2 float32" in format_cuda_tables(out)


def test_cli_bench_cuda_without_a_gpu_is_a_usage_error(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["bench", "--device", "cuda", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _timing(wall_ms, cpu_ms):
    return {"wall": {"median_ms": wall_ms, "iqr_ms": 0.1 * wall_ms},
            "cpu": {"median_ms": cpu_ms, "iqr_ms": 0.1 * cpu_ms}}


def test_training_ratios_use_one_clock():
    """A fabricated record where CE's CPU time is twice its wall time (idle-spinning pool
    threads) and TV's is not: ×CE must be wall ÷ wall (0.98, as the cost figure shows) and
    CPU ÷ CPU (0.49) — never CE's CPU against TV's wall."""
    from experiments.bench import format_tables, ratios_to_ce, training_rows
    timings = {"ce": _timing(wall_ms=150.0, cpu_ms=300.0), "tv": _timing(wall_ms=147.0, cpu_ms=147.0)}
    assert ratios_to_ce(timings)["tv"] == {"wall": pytest.approx(0.98), "cpu": pytest.approx(0.49)}
    assert ratios_to_ce(timings)["ce"] == {"wall": 1.0, "cpu": 1.0}
    rows = training_rows(timings, steps=30, peaks={"ce": 1.0, "tv": 2.0})
    tv = rows[1]
    assert tv["epoch_ms_wall"] == pytest.approx(4.9) and tv["epoch_ms_cpu"] == pytest.approx(4.9)
    assert tv["ratio_wall"] == pytest.approx(tv["epoch_ms_wall"] / rows[0]["epoch_ms_wall"])
    assert tv["ratio_cpu"] == pytest.approx(tv["epoch_ms_cpu"] / rows[0]["epoch_ms_cpu"])
    text = format_tables({"machine": {"torch": "x", "torch_threads": 1, "cpus": 2},
                          "training": {"n": 1, "d": 1, "steps": 30, "reps": 3, "rows": rows, "note": ""}})
    line = next(ln for ln in text.splitlines() if ln.startswith("tv "))
    assert line.split()[1:6] == ["4.90", "0.49", "0.98", "4.90", "0.49"]  # ms, IQR, ×CE wall, ms, ×CE CPU
    assert "×CE wall" in text and "×CE CPU" in text


def test_kernel_ratios_use_one_clock():
    from experiments.bench import ratios_to_ce
    timings = {"ce": _timing(2.0, 5.0), "kl|fused": _timing(3.0, 2.5)}
    assert ratios_to_ce(timings)["kl|fused"] == {"wall": pytest.approx(1.5), "cpu": pytest.approx(0.5)}
