"""``w2sg reproduce`` as functions: sweep, checks, benchmark, paired comparison, figures.

Each step is a plain function ``step(root, **options) -> int`` (exit status: 0 ok, 1 the step
ran but something failed, 2 it refused its input) calling the packages' public functions
(:func:`experiments.runner.run_sweep`, :func:`numerics.cli.run_checks`,
:func:`experiments.bench.run_bench`, :func:`paper_figs.compare_cli.run_compare`,
:func:`paper_figs.build.build_all`); nothing here goes through the command-line parser, and
nothing below ``w2sg/cli.py`` imports it.  :data:`STEPS` names them (tests replace entries).
"""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

__all__ = ["STEPS", "reproduce", "sweep_for", "run_step", "check_step", "bench_step",
           "compare_step", "plan"]


def sweep_for(quick: bool, finetune: bool = False, device: str | None = None,
              tune: dict | None = None) -> dict:
    """The sweep ``w2sg run`` would run with ``--quick`` or ``--preset finetune`` (validated
    by :func:`experiments.cli.resolve_sweep`); ``tune``, when given, is set as the sweep's
    ``tune`` entry (the hook for hyper-parameter tuning)."""
    from experiments.cli import resolve_sweep
    args = SimpleNamespace(config=None, quick=quick and not finetune,
                           preset="finetune" if finetune else None, device=device,
                           out=None, workers=None)
    sweep, _ = resolve_sweep(args)
    if tune is not None:
        sweep["tune"] = tune
    return sweep


def run_step(root: Path, quick: bool, finetune: bool = False, device: str | None = None,
             tune: dict | None = None, workers: int = 2, log=print) -> int:
    """``w2sg run [--quick | --preset finetune]``: the sweep, resuming finished runs."""
    from w2sg.errors import UsageError
    from w2sg.paths import writable_dir
    from experiments.backends.errors import SweepJobsFailed, describe_job
    from experiments.data.sources import DataUnavailable, data_cache
    from experiments.runner import run_sweep
    sweep = sweep_for(quick, finetune, device, tune)
    writable_dir(root / "runs", "results folder")
    writable_dir(data_cache() / "embeddings", "cache folder")
    try:
        info = run_sweep(sweep, root, workers=workers, quiet=False)
    except DataUnavailable as exc:
        raise UsageError(str(exc)) from None
    except SweepJobsFailed as exc:  # every other record is kept: a rerun resumes
        for job, reason in exc.failures:
            log(f"[reproduce] lost {describe_job(job)}: {str(reason).strip()[-200:]}")
        return 1
    log(f"[reproduce] run: {info['executed']} executed, {info['skipped']} already recorded")
    return 0


def check_step(root: Path, quick: bool, seed: int = 0, log=print) -> int:
    """``w2sg check [--quick]``: every claim, records under ``root/checks``."""
    from w2sg.paths import writable_dir
    from numerics.cli import CLAIMS, run_checks, write_records
    writable_dir(root / "checks", "results folder")
    results = run_checks(list(CLAIMS), quick, seed,
                         progress=lambda r: log(f"[check] {r.claim} {r.status} ({r.seconds:.1f}s)"))
    write_records(results, root, quick, seed)
    return 0 if all(r.status != "FAIL" for r in results) else 1


def bench_step(root: Path, log=print) -> int:
    """``w2sg bench --quick --what training,kernels --compile none``: one bench record."""
    from experiments.bench import run_bench
    from experiments.bench_cli import write_bench
    record = run_bench(["training", "kernels"], quick=True, threads=1, reps=None,
                       compile_generators=(), progress=lambda m: log(f"[bench] {m} …"), device="cpu")
    write_bench(root, record, quick=True, device="cpu")
    return 0


def compare_step(root: Path, log=print) -> int:
    """``w2sg compare``: every loss against CE, paired, to ``root/compare/acc-vs-ce.json``."""
    from w2sg.paths import writable_dir
    from .compare_cli import run_compare, write_compare
    writable_dir(root / "compare", "results folder")
    path = write_compare(root, run_compare(root))
    log(f"[reproduce] compare: {path}")
    return 0


#: the steps by name; :func:`reproduce` looks each up here when it runs it
STEPS = {"run": run_step, "run-tuned": run_step, "run-finetune": run_step, "check": check_step, "bench": bench_step,
         "compare": compare_step}


def _has_checks(root: Path, quick: bool) -> bool:
    from .readers import read_checks
    checks = read_checks(root)
    return bool(checks) and (quick or any(not c.get("quick") for c in checks.values()))


def plan(root: Path, quick: bool, redo_checks: bool = False, skip_runs: bool = False,
         finetune: bool = False, device: str | None = None, tune: dict | None = None) -> list:
    """``[(step name, keyword options or None = reuse the records)]`` in order."""
    from .readers import read_bench
    steps = []
    if not skip_runs:
        steps.append(("run", {"quick": quick, "tune": None}))  # the fixed recipe
        if tune is not None:  # the same sweep, each cell at its own tuned configuration
            steps.append(("run-tuned", {"quick": quick, "tune": tune}))
        if finetune:
            steps.append(("run-finetune", {"quick": False, "finetune": True, "device": device}))
    steps.append(("check", {"quick": quick} if redo_checks or not _has_checks(root, quick) else None))
    # the cost figure needs one benchmark record (training cost and loss kernels vs CE)
    steps.append(("bench", None if read_bench(root) else {}))
    if not skip_runs:  # the paired comparison table of the runs (its figure is made by figs)
        steps.append(("compare", {}))
    return steps


def _run_one(name: str, root: Path, options: dict, log) -> int:
    """One step; a usage error (bad input, unwritable folder) is status 2, with its one line
    on stderr as the subcommand prints it (``w2sg run: error: …``)."""
    import sys
    from theory.parsing import GeneratorError
    from w2sg.errors import UsageError
    from w2sg.records import RecordError
    try:
        return int(STEPS[name](root, log=log, **options) or 0)
    except (UsageError, GeneratorError, RecordError) as exc:
        print(f"w2sg {name.split('-')[0]}: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def reproduce(root: Path, quick: bool, redo_checks: bool = False, skip_runs: bool = False,
              log=print, finetune: bool = False, device: str | None = None,
              tune: dict | None = None) -> dict:
    """Sweep, checks, benchmark, comparison, figures under ``root``; returns
    ``{"steps": [...], "figures": [...], "refused": None or a status}``.

    ``finetune``: after the sweep, also the fine-tune preset (on ``device``).  ``tune`` (a
    :func:`experiments.tuning.tune_spec`): after the fixed-recipe sweep, the same sweep again
    with every (task, weak model, loss, noise) cell at its own tuned configuration
    (:func:`sweep_for`); ``None`` runs the fixed recipe only.  A step that refuses its input (status 2) or is
    interrupted (130) stops the rest."""
    from . import build
    steps, refused = [], None
    for name, options in plan(root, quick, redo_checks, skip_runs, finetune, device, tune):
        if refused is not None:
            steps.append({"step": name, "status": "not run", "seconds": 0.0})
            continue
        if options is None:
            steps.append({"step": name, "status": "reused", "seconds": 0.0})
            hint = " (--redo-checks to rerun)" if name == "check" else ""
            log(f"[reproduce] {name}: reusing records under "
                f"{root / ('checks' if name == 'check' else 'bench')}{hint}")
            continue
        log(f"[reproduce] {name} {options}")
        t0 = time.perf_counter()
        rc = _run_one(name, root, options, log)
        steps.append({"step": name, "status": "ok" if rc == 0 else f"exit {rc}",
                      "seconds": round(time.perf_counter() - t0, 1)})
        if rc in (2, 130):
            refused = rc
            log(f"[reproduce] stopping: {name} exited with status {rc}")
    if refused is not None:
        return {"steps": steps, "figures": [], "refused": refused}
    log("[reproduce] figs")
    t0 = time.perf_counter()
    from .readers import audit
    problems = audit(root)
    for line in problems:
        log(f"[reproduce] unusable record (left out of the figures): {line}")
    if problems:
        steps.append({"step": "records", "status": f"{len(problems)} unusable", "seconds": 0.0})
    results = build.build_all(root)
    steps.append({"step": "figs", "status": "ok", "seconds": round(time.perf_counter() - t0, 1)})
    return {"steps": steps, "figures": results, "refused": None}
