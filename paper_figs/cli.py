"""``w2sg figs`` (figures from stored records) and ``w2sg reproduce`` (runs, checks, figures):
the command line only; the steps of ``reproduce`` are functions in :mod:`paper_figs.reproduce`."""
from __future__ import annotations

import time
from pathlib import Path

__all__ = ["register", "cmd_figs", "cmd_reproduce", "reproduce"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "figs", help="make the paper's figures from stored records (never trains)",
        description="Make every figure whose records exist under the results root "
                    "(PNG + PDF + caption under <root>/figures); say why the others were skipped.")
    p.add_argument("--out", metavar="DIR", help="results root (default $W2SG_RESULTS or ./results)")
    p.add_argument("--only", metavar="NAME", action="append",
                   help="make only this figure (repeatable)")
    p.add_argument("--json", action="store_true", help="print the figure list as JSON")
    p.set_defaults(func=cmd_figs)

    r = subparsers.add_parser(
        "reproduce", help="run the default sweep and the checks, then make the figures",
        description="`w2sg run` with the fixed recipe and again with every loss tuned "
                    "(`--tune`; resumes: finished runs are reused), `w2sg check` (reused when "
                    "records exist), a quick `w2sg bench` if none exists, `w2sg compare`, then "
                    "`w2sg figs`, all under one results root.")
    r.add_argument("--quick", action="store_true", help="the small version (< 5 min)")
    r.add_argument("--out", metavar="DIR", help="results root (default $W2SG_RESULTS or ./results)")
    r.add_argument("--redo-checks", action="store_true", help="rerun `w2sg check` even if records exist")
    r.add_argument("--skip-runs", action="store_true", help="do not run the training sweep")
    r.add_argument("--finetune", action="store_true",
                   help="also run `w2sg run --preset finetune` (fine-tuned students, ~40 min on "
                        "2 idle CPU cores; their own figure panels)")
    r.add_argument("--device", default=None,
                   help="cpu, cuda or auto (default): where the fine-tuned runs train")
    r.add_argument("--select", choices=("weak", "oracle", "none"), default="weak",
                   help="after the fixed-recipe sweep, run it again with every loss at its own "
                        "tuned L2 weight and learning rate (`w2sg run --tune`), chosen on the weak "
                        "labels (weak, default: no ground truth) or on ground truth (oracle, an "
                        "upper bound); none: the fixed recipe only")
    r.add_argument("--json", action="store_true", help="print the figure list as JSON")
    r.set_defaults(func=cmd_reproduce)


def _root(out, *folders: str) -> Path:
    """The results root (``--out``), with ``root/<folder>`` proven writable for each folder."""
    from w2sg.paths import results_dir, writable_dir
    root = results_dir(out)
    for folder in folders:
        writable_dir(root / folder if folder else root, "results folder")
    return root


def _check_only(only):
    from w2sg.errors import UsageError
    from .build import figure_names
    names = figure_names()
    for o in only or []:
        if o not in names:
            raise UsageError(f"unknown figure {o!r}; choose from: {', '.join(names)}")


def _audit(root: Path, as_json: bool) -> list[str]:
    """Every record under ``root`` the figures cannot use, each named on stderr; a record
    of an unknown schema raises :class:`w2sg.records.RecordSchemaError` (one line, exit 2)."""
    import sys
    from .readers import audit
    problems = audit(root)
    for line in problems:
        print(f"w2sg figs: unusable record (left out of the figures): {line}", file=sys.stderr)
    return problems


def _report(results, root: Path, seconds: float, as_json: bool, problems=()) -> int:
    """Print the figure list; status 1 if a figure failed or a record was unusable."""
    from w2sg.output import emit
    lines = []
    for r in results:
        mark = {"made": "made   ", "skipped": "skipped", "error": "ERROR  "}.get(r.status, r.status)
        where = f"{root / 'figures' / r.name}.png" if r.status == "made" else r.message
        lines.append(f"{mark} {r.name:28s} {where}")
        if r.status == "made" and r.message:
            lines.append(f"        {'':28s} note: {r.message}")
    lines.append(f"{sum(r.status == 'made' for r in results)} made, "
                 f"{sum(r.status == 'skipped' for r in results)} skipped, "
                 f"{sum(r.status == 'error' for r in results)} errors, "
                 f"{len(problems)} unusable records in {seconds:.1f} s "
                 f"(captions: {root / 'figures'}/*.txt)")
    payload = {"root": str(root), "seconds": round(seconds, 2), "unusable_records": list(problems),
               "figures": [{k: v for k, v in r.to_dict().items() if k != "sources"} | {"n_sources": len(r.sources)}
                           for r in results]}
    emit(payload, as_json, "\n".join(lines))
    return 1 if problems or any(r.status == "error" for r in results) else 0


def cmd_figs(args) -> int:
    from .build import build_all
    _check_only(args.only)
    root = _root(args.out, "figures")
    t0 = time.perf_counter()
    problems = _audit(root, args.json)
    results = build_all(root, only=args.only)
    return _report(results, root, time.perf_counter() - t0, args.json, problems)


# ----------------------------------------------------------------------------- reproduce
def reproduce(root: Path, quick: bool, redo_checks: bool = False, skip_runs: bool = False,
              log=print, finetune: bool = False, device: str | None = None,
              tune: dict | None = None) -> dict:
    """:func:`paper_figs.reproduce.reproduce` (the steps as functions)."""
    from .reproduce import reproduce as _reproduce
    return _reproduce(root, quick, redo_checks, skip_runs, log=log, finetune=finetune,
                      device=device, tune=tune)


def cmd_reproduce(args) -> int:
    root = _root(args.out, "", "figures")  # each step proves its own folder too
    t0 = time.perf_counter()
    if getattr(args, "device", None):
        from experiments.cli import device_arg
        device_arg(args.device)  # cuda without CUDA: one line, exit 2, before any work
    select = getattr(args, "select", "weak") or "weak"
    tune = None
    if select != "none":
        from experiments.tuning import tune_spec
        tune = tune_spec(select=select)
    out = reproduce(root, args.quick, args.redo_checks, args.skip_runs,
                    log=(lambda *_: None) if args.json else print,
                    finetune=getattr(args, "finetune", False), device=getattr(args, "device", None),
                    tune=tune)
    if not args.json:
        for s in out["steps"]:
            print(f"[reproduce] {s['step']:12s} {s['status']:8s} {s['seconds']:7.1f} s")
    if out.get("refused") is not None:
        return out["refused"]  # the step already printed its one-line reason
    rc = _report(out["figures"], root, time.perf_counter() - t0, args.json)
    bad = [s for s in out["steps"] if s["status"] not in ("ok", "reused")]
    return rc or (1 if bad else 0)
