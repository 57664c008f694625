"""``w2sg check``: run the numerical checks of every claim and write JSON records.

Records (under ``<results root>/checks/``, written atomically by
:func:`w2sg.records.write_record`)::

    summary.json                 every row (claim, instances, worst_slack, status, seconds)
    C1.json … C8.json            one per claim: the row plus its details
    c3_curves.json               δ grid, L_f(δ), L̆_f(δ) per generator
    c4_slacks.json               one entry per fitted instance (errors, R_f, radius, slacks)
    c6_coverage.json             coverage / bound / excess / looseness per generator and n
    counterexamples/c5_<gen>_<variant>_s<search seed>_<i>.json
                                 one C5 counterexample each (instance + seed), re-check with
                                 ``numerics.checks.c5.recheck(record)``
"""
from __future__ import annotations

import math
import time

from .checks import CLAIMS

__all__ = ["register", "run_checks", "write_records", "format_table"]


def _usage(message: str):
    from w2sg.errors import UsageError
    return UsageError(message)


def _parse_claims(text: str | None) -> list[str]:
    if not text:
        return list(CLAIMS)
    out = []
    for part in text.split(","):
        c = part.strip().upper()
        if not c:
            continue
        if c not in CLAIMS:
            raise _usage(f"unknown claim {part.strip()!r}; choose from {','.join(CLAIMS)} "
                         f"(e.g. --claims C1,C4)")
        if c not in out:
            out.append(c)
    if not out:
        raise _usage("--claims is empty; give e.g. --claims C1,C4")
    return out


def run_checks(claims, quick: bool, seed: int, progress=None):
    from .checks import get_check
    results = []
    for c in claims:
        t0 = time.time()
        try:
            res = get_check(c)(quick=quick, seed=seed)
        except Exception as exc:  # a crash is a failed row, never a hidden one
            from .result import CheckResult
            res = CheckResult(c, 0, -math.inf, "FAIL", time.time() - t0,
                              {"error": f"{type(exc).__name__}: {exc}"})
        results.append(res)
        if progress:
            progress(res)
    return results


def _fmt_slack(x) -> str:
    if isinstance(x, str):
        return x
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}"


def format_table(results) -> str:
    lines = [f"{'claim':<6}{'instances':>10}  {'worst slack':>12}  {'status':<7}{'time':>8}"]
    for r in results:
        lines.append(f"{r.claim:<6}{r.instances:>10}  {_fmt_slack(r.worst_slack):>12}  "
                     f"{r.status:<7}{r.seconds:>7.1f}s")
    return "\n".join(lines)


def _c5_notes(res) -> list[str]:
    out = []
    for key, s in res.details.get("search", {}).items():
        out.append(f"  C5 search {key}: {s['random_hits']}/{s['random_draws']} random draws fail, "
                   f"max violation {s['max_violation']:.3g}")
    return out


def _row(r) -> dict:
    from w2sg.records import worst_slack_fields
    return {"claim": r.claim, "instances": int(r.instances), **worst_slack_fields(r.worst_slack),
            "status": r.status, "seconds": float(r.seconds)}


def write_records(results, root, quick: bool, seed: int) -> list[str]:
    """One typed record per claim (``checks/C<k>.json``), the summary, the bulky data of
    C3/C4/C6 and each C5 counterexample (:mod:`w2sg.records` kinds ``check``,
    ``check-summary``, ``check-data``, ``counterexample``)."""
    from w2sg.records import (CheckDataRecord, CheckRecord, CheckRow, CheckSummaryRecord,
                              CounterexampleRecord, results_root, write_record)
    base = results_root(root) / "checks"
    meta = {"mode": "quick" if quick else "full", "seed": seed}
    paths = []
    rows = [CheckRow(**_row(r)) for r in results]
    paths.append(write_record(base / "summary.json", CheckSummaryRecord(**meta, rows=rows)))
    for r in results:
        details = dict(r.details)
        if r.claim == "C5":
            details.pop("counterexamples", None)
            details["counterexample_files"] = []
            for ce in r.details.get("counterexamples", []):
                name = f"c5_{ce['generator']}_{ce['variant']}_s{ce['search_seed']}_{ce['index']}.json"
                fixed = ("claim", "generator", "variant", "search_seed", "index", "instance",
                         "gain", "misfit")
                rec = CounterexampleRecord(**meta, **{k: ce[k] for k in fixed},
                                           search={k: v for k, v in ce.items() if k not in fixed})
                p = write_record(base / "counterexamples" / name, rec)
                details["counterexample_files"].append(str(p))
                paths.append(p)
        if r.claim == "C3" and "curves" in details:
            paths.append(write_record(base / "c3_curves.json", CheckDataRecord(
                **meta, claim="C3", name="curves", data={"curves": details.pop("curves")})))
        if r.claim == "C4":
            paths.append(write_record(base / "c4_slacks.json", CheckDataRecord(
                **meta, claim="C4", name="slacks",
                data={"instances": details.get("instances", []),
                      "refused_unconverged": details.get("refused_unconverged", [])})))
        if r.claim == "C6":
            paths.append(write_record(base / "c6_coverage.json", CheckDataRecord(
                **meta, claim="C6", name="coverage",
                data={"cells": details.get("coverage", []), "constants": details.get("constants", {})})))
        paths.append(write_record(base / f"{r.claim}.json",
                                  CheckRecord(**meta, **_row(r), details=details)))
    return [str(p) for p in paths]


def _cmd_check(args) -> int:
    from w2sg.output import emit
    claims = _parse_claims(args.claims)
    if args.seed < 0:
        raise _usage(f"--seed must be ≥ 0, got {args.seed}")
    start = time.time()
    import sys

    def progress(res):
        print(f"[check] {res.claim} {res.status} ({res.seconds:.1f}s)", file=sys.stderr, flush=True)
    results = run_checks(claims, args.quick, args.seed, progress=None if args.json else progress)
    paths = write_records(results, args.out, args.quick, args.seed)
    total = time.time() - start
    ok = all(r.status != "FAIL" for r in results)
    if args.json:
        emit({"mode": "quick" if args.quick else "full", "seed": args.seed, "seconds": total,
              "rows": [_row(r) for r in results],
              "records": paths}, True, "")
    else:
        text = [format_table(results)]
        for r in results:
            if r.claim == "C5":
                text += _c5_notes(r)
            if "error" in r.details:
                text.append(f"  {r.claim} crashed: {r.details['error']}")
        text.append(f"{'all theorem rows pass' if ok else 'SOME ROWS FAIL'}; {total:.1f}s; "
                    f"records in {paths[0].rsplit('/', 1)[0] if paths else '-'}")
        print("\n".join(text))
    return 0 if ok else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="numerically check every claim (C1–C8) of docs/THEORY.md",
                              description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer instances (CI; < 60 s)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="results root (default $W2SG_RESULTS or ./results); records go to DIR/checks/")
    p.add_argument("--claims", metavar="C1,C4,...", default=None,
                   help=f"only these claims (default all: {','.join(CLAIMS)})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_cmd_check)
