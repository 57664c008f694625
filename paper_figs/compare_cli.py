"""``w2sg compare``: every loss against a baseline loss, paired over matched runs, with
bootstrap intervals, Wilcoxon p-values and Holm's correction (:mod:`paper_figs.compare`)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["register", "cmd_compare", "run_compare", "write_compare"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="paired differences of each loss to a baseline, with 95%% intervals and p-values",
        description="For every loss and noise level (and student mode: linear head / fine-tuned): "
                    "the difference to the baseline over runs matched on (task, weak model, seed), "
                    "its 95% paired bootstrap interval, the Wilcoxon signed-rank p-value and the "
                    "Holm-adjusted one. Reads <root>/runs, writes <root>/compare/<metric>-vs-<baseline>.json.")
    p.add_argument("--baseline", default="ce", help="loss to compare against (default ce)")
    p.add_argument("--metric", default="acc", choices=("acc", "pgr"),
                   help="test accuracy (differences in points) or PGR (default acc)")
    p.add_argument("--out", metavar="DIR", help="results root (default $W2SG_RESULTS or ./results)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_compare)


def run_compare(root, baseline: str = "ce", metric: str = "acc") -> dict:
    """The comparison payload for the records under ``root`` (raises UsageError on bad input)."""
    from w2sg.errors import UsageError
    from . import compare, style
    from .compare import ALPHA, CONFIDENCE, N_RESAMPLES, SEED
    from .compare_data import tidy_runs
    if metric not in compare.METRICS:
        raise UsageError(f"unknown metric {metric!r}; choose from: {', '.join(compare.METRICS)}")
    root = Path(root)
    runs = tidy_runs(root)
    if not runs.rows:
        extra = f" ({len(runs.unreadable)} unreadable)" if runs.unreadable else ""
        raise UsageError(f"no run records under {root / 'runs'}{extra}; make some with `w2sg run --out {root}`")
    losses = style.order_losses(r["loss"] for r in runs.rows)
    if baseline not in losses:
        raise UsageError(f"unknown baseline {baseline!r}: no runs of it under {root / 'runs'}; "
                         f"losses there: {', '.join(losses)}")
    try:
        table = compare.compare(runs.rows, baseline, metric, CONFIDENCE, N_RESAMPLES, SEED, ALPHA)
    except ValueError as exc:  # duplicated runs (e.g. a copied folder): ambiguous pairs
        raise UsageError(f"{exc}; remove one of them") from None
    order = {n: i for i, n in enumerate(losses)}
    table.sort(key=lambda r: (r["mode"], r["noise"], order[r["loss"]]))
    return {
        "kind": "compare", "baseline": baseline, "metric": metric,
        "unit": "accuracy points (x100)" if metric == "acc" else "PGR",
        "pairing": "runs with equal (task, weak, seed, rest of the run config) within (mode, noise)",
        "confidence": CONFIDENCE,
        "ci": f"scipy.stats.bootstrap BCa, {N_RESAMPLES} resamples of the pairs, seed {SEED}",
        "test": "scipy.stats.wilcoxon two-sided (zeros dropped); all-zero differences: p = 1",
        "correction": f"Holm over all {len(table)} rows", "alpha": ALPHA,
        "n_runs": len(runs.rows), "unreadable": runs.unreadable,
        "rows": table, "sources": runs.sources,
    }


def write_compare(root, payload: dict) -> Path:
    """Write ``payload`` atomically as strict JSON to ``<root>/compare/<metric>-vs-<baseline>.json``,
    the names encoded by :func:`w2sg.paths.slug` (a baseline ``../../x`` or ``(t-1)**2/(t+1)``
    becomes ``expr-<hash>``: the file is always directly in ``compare/``)."""
    from w2sg.paths import slug
    from w2sg.records import CompareRecord, write_record
    path = Path(root) / "compare" / f"{slug(payload['metric'])}-vs-{slug(payload['baseline'])}.json"
    write_record(path, CompareRecord(**{k: v for k, v in payload.items() if k not in ("kind", "record")}))
    return path


def cmd_compare(args) -> int:
    from w2sg.errors import UsageError
    from w2sg.output import emit
    from w2sg.paths import results_dir, writable_dir
    from . import compare, style
    root = results_dir(args.out)
    writable_dir(root / "compare", "results folder")  # before the bootstrap, not after
    payload = run_compare(root, args.baseline, args.metric)
    try:
        path = write_compare(root, payload)
    except OSError as exc:
        raise UsageError(f"cannot write under {root / 'compare'}: {exc.strerror or exc}") from None
    out = dict(payload, record=str(path))
    lines = [compare.format_table(payload["rows"], style.order_losses(r["loss"] for r in payload["rows"]))]
    missing = sum(r["n_missing"] for r in payload["rows"])
    lines.append(f"{payload['n_runs']} run records; {missing} missing pair member(s)"
                 + (" (listed under 'missing' with --json)" if missing else ""))
    if payload["unreadable"]:
        lines.append(f"{len(payload['unreadable'])} unusable record(s), not used (`w2sg run` "
                     f"moves them aside and redoes them): " + "; ".join(payload["unreadable"]))
    lines.append(f"interval: {payload['ci']}; p: Wilcoxon signed-rank, Holm-adjusted over the table")
    n_max = max((r["n_pairs"] for r in payload["rows"]), default=0)
    if n_max < 6:
        lines.append(f"note: at most {n_max} pairs per row: a two-sided Wilcoxon test cannot reach "
                     "p < 0.05 with fewer than 6, and bootstrap intervals from so few pairs are too "
                     "narrow; run more seeds (`w2sg run --seeds N`) or tasks")
    lines.append(f"record: {path}")
    emit(out, args.json, "\n".join(lines))
    return 0
