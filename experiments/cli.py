"""``w2sg run``: sweeps of real weak-to-strong runs (flags and/or a TOML config)."""
from __future__ import annotations

from pathlib import Path

from .finetune import FINETUNE_DEFAULTS  # settings of --finetune / a [finetune] table

__all__ = ["register", "resolve_sweep", "device_arg", "short_summary"]

_CONFIG_KEYS = ("tasks", "weak", "strong", "losses", "noise", "seeds", "quick", "out", "workers",
                "pool", "sizes", "max_length", "train", "weak_train", "finetune")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="run weak-to-strong training sweeps (one JSON record per run)",
        description="Weak supervisor → weak labels (+ label noise) → strong student per loss; "
                    "records under <out>/runs/. Finished runs are skipped (resume).")
    p.add_argument("--config", help="TOML file with any of: " + ", ".join(_CONFIG_KEYS))
    p.add_argument("--tasks", nargs="+", help="tasks (fortunes_pairs vader_pairs vader_cls[:SET])")
    p.add_argument("--weak", nargs="+", help="weak models (minilm-l6-layer0 minilm-l3)")
    from .losses import DEFAULT_LOSSES
    p.add_argument("--losses", nargs="+", action="extend",
                   help="losses: ce, aux_conf, product, a generator name, alpha:a or an expression "
                        f"in t, e.g. '-log(t)' (default: {' '.join(DEFAULT_LOSSES)})")
    p.add_argument("--noise", nargs="+", type=float, help="label-noise levels (default 0 0.1 0.2 0.3 0.4)")
    p.add_argument("--seeds", type=int, help="number of seeds (default 5; --quick: 1)")
    p.add_argument("--pool", type=int, help="texts per task pool (default: per task)")
    p.add_argument("--quick", action="store_true", help="small sweep (< 3 min)")
    p.add_argument("--preset", choices=("finetune",),
                   help="a named sweep: finetune = fine-tuned students on vader_cls, 6 losses × "
                        "noise 0/0.2/0.4 × 3 seeds (~25 min on 2 idle CPU cores; docs/finetune.md; "
                        "flags override it)")
    p.add_argument("--out", help="results root (default $W2SG_RESULTS or ./results)")
    p.add_argument("--workers", type=int, help="parallel local processes (default 2)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="where runs execute: local processes (default) or Ray tasks "
                        "(optional extra: pip install 'w2sg[ray]')")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (ray://host:10001, host:6379 or auto); "
                        "default: start a local Ray with --workers CPUs")
    p.add_argument("--finetune", action="store_true",
                   help="fine-tune the whole strong encoder (student and ceiling; slow: small runs "
                        "only, or --preset finetune)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or auto (default): where fine-tuned and LLM runs train "
                        "(bf16 autocast on CUDA when supported); linear heads always use the CPU")
    p.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    p.add_argument("--json", action="store_true",
                   help="print the sweep info and the per-cell summary rows as JSON")
    p.add_argument("--table", action="store_true",
                   help="also print the full per-cell table (task × weak × loss × noise); it is "
                        "always written to <out>/runs/summary.txt")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("LLM path (GPT-2 family, HH-RLHF / CAI-Harmless; needs a hub or local files)")
    g.add_argument("--llm", nargs=2, metavar=("WEAK", "STRONG"),
                   help="weak and strong LMs (hub ids such as gpt2 gpt2-medium, or local folders)")
    g.add_argument("--llm-data", default="hh-rlhf-harmless",
                   help="hh-rlhf, hh-rlhf-harmless, cai-harmless, a hub id, or a local JSONL {chosen, rejected}")
    g.add_argument("--llm-n", type=int, default=2000, help="number of pairs (default 2000)")
    p.set_defaults(func=_run)


def _usage(msg: str):
    from w2sg.errors import UsageError
    return UsageError(msg)


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise _usage(f"config file {path!r} not found") from None
    except IsADirectoryError:
        raise _usage(f"config {path!r} is a folder; give a TOML file, e.g. --config sweep.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _usage(f"config file {path!r} is not valid TOML: {exc}") from None
    except (OSError, ValueError) as exc:
        raise _usage(f"cannot read config file {path!r}: {getattr(exc, 'strerror', None) or exc}") from None
    data = data.get("run", data)
    if not isinstance(data, dict):
        raise _usage(f"[run] in config file {path!r} must be a table")
    bad = sorted(set(data) - set(_CONFIG_KEYS))
    if bad:
        import difflib
        hint = "; ".join(f"{b!r}: did you mean {difflib.get_close_matches(b, _CONFIG_KEYS, 1)[0]!r}?"
                         for b in bad if difflib.get_close_matches(b, _CONFIG_KEYS, 1))
        raise _usage(f"unknown key(s) {bad} in {path}; valid keys: {', '.join(_CONFIG_KEYS)}"
                     + (f" ({hint})" if hint else ""))
    return data


def _writable(folder: Path, what: str) -> None:
    from w2sg.paths import writable_dir
    writable_dir(folder, what, "--out" if what == "results folder" else "W2SG_CACHE")


def resolve_sweep(args) -> tuple[dict, dict]:
    """Merge defaults, ``--quick``, the TOML config and flags (flags win); validate.

    Returns ``(sweep, options)`` with options ``out`` and ``workers``.
    """
    from .runner import DEFAULT_SWEEP, PRESETS, QUICK_SWEEP
    cfg = _load_toml(args.config) if getattr(args, "config", None) else {}
    quick = bool(args.quick or cfg.get("quick", False))
    preset = getattr(args, "preset", None)
    if preset and quick:
        raise _usage("--preset and --quick exclude each other")
    base = PRESETS[preset] if preset else (QUICK_SWEEP if quick else DEFAULT_SWEEP)
    sweep = {k: (dict(v) if isinstance(v, dict) else (list(v) if isinstance(v, list) else v))
             for k, v in base.items()}
    for key in sweep:
        if key in cfg and key != "finetune":
            if isinstance(sweep[key], dict):
                if not isinstance(cfg[key], dict):
                    raise _usage(f"config key {key!r} must be a table")
                bad = sorted(set(cfg[key]) - set(sweep[key]))
                if bad:
                    raise _usage(f"unknown key(s) {bad} in [{key}]; valid: {', '.join(sweep[key])}")
                sweep[key].update(cfg[key])
            else:
                sweep[key] = cfg[key]
    for key in ("tasks", "weak", "losses", "noise", "seeds", "pool"):
        value = getattr(args, key, None)
        if value is not None:
            sweep[key] = value
    for key in ("tasks", "weak", "losses", "noise"):
        if isinstance(sweep[key], (str, int, float)):
            sweep[key] = [sweep[key]]
    ft = cfg.get("finetune")
    device = device_arg(getattr(args, "device", None))
    if getattr(args, "finetune", False) or ft or sweep.get("finetune"):
        ft = ft if isinstance(ft, dict) else {}
        bad = sorted(set(ft) - set(FINETUNE_DEFAULTS))
        if bad:
            raise _usage(f"unknown key(s) {bad} in [finetune]; valid: {', '.join(FINETUNE_DEFAULTS)}")
        sweep["finetune"] = {**FINETUNE_DEFAULTS, **sweep.get("finetune", {}), **ft}
        # the resolved device is part of the config (bf16 on CUDA changes results)
        sweep["finetune"]["device"] = device or device_arg(ft.get("device", "auto"))
        _validate_finetune(sweep["finetune"])
    _validate(sweep)
    out = args.out if args.out is not None else cfg.get("out")
    if out is not None and not isinstance(out, str):
        raise _usage(f"config key 'out' must be a folder name (a string), got {out!r}")
    from w2sg.paths import results_dir
    results_dir(out)  # refuses --out '' before anything else
    workers = args.workers if args.workers is not None else cfg.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise _usage(f"--workers must be an integer ≥ 1, got {workers!r}")
    if getattr(args, "llm_n", None) is not None and args.llm_n < 1:
        raise _usage(f"--llm-n must be at least 1, got {args.llm_n}")
    return sweep, {"out": out, "workers": workers}


def device_arg(device: str | None) -> str | None:
    """The resolved ``--device`` (``auto`` → cuda or cpu); cuda without CUDA is a usage error."""
    if device is None:
        return None
    from .device import resolve_device
    try:
        return resolve_device(str(device))
    except ValueError as exc:
        raise _usage(str(exc)) from None


def _validate_finetune(ft: dict) -> None:
    for key in ("epochs", "batch_size", "max_length"):
        if not isinstance(ft[key], int) or isinstance(ft[key], bool) or ft[key] < 1:
            raise _usage(f"[finetune] {key} must be a positive integer, got {ft[key]!r}")
    for key in ("max_steps", "eval_every", "patience"):
        if not isinstance(ft[key], int) or isinstance(ft[key], bool) or ft[key] < 0:
            raise _usage(f"[finetune] {key} must be an integer ≥ 0, got {ft[key]!r}")
    if not isinstance(ft["lr"], (int, float)) or not 0 < ft["lr"] < 1:
        raise _usage(f"[finetune] lr must be a number in (0, 1), got {ft['lr']!r}")
    if ft["max_length"] < 4 or ft["max_length"] > 512:
        raise _usage(f"[finetune] max_length must be in [4, 512], got {ft['max_length']!r}")


def _validate(sweep: dict) -> None:
    from .data.tasks import parse_task
    from .embed import STRONG_MODELS, WEAK_MODELS
    for t in sweep["tasks"]:
        try:
            parse_task(str(t))
        except ValueError as exc:
            raise _usage(str(exc)) from None
    for w in sweep["weak"]:
        if w not in WEAK_MODELS:
            raise _usage(f"unknown weak model {w!r}; valid: {', '.join(WEAK_MODELS)}")
    if sweep["strong"] not in STRONG_MODELS:
        raise _usage(f"unknown strong model {sweep['strong']!r}; valid: {', '.join(STRONG_MODELS)}")
    from .losses import make_loss
    for loss in sweep["losses"]:
        try:
            make_loss(str(loss))
        except ValueError as exc:
            raise _usage(str(exc)) from None
    for p in sweep["noise"]:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 0.5:
            raise _usage(f"noise levels must be numbers in [0, 0.5], got {p!r}")
    if isinstance(sweep["seeds"], bool) or not isinstance(sweep["seeds"], int) or sweep["seeds"] < 1:
        raise _usage(f"seeds must be a positive integer, got {sweep['seeds']!r}")
    if sweep["pool"] is not None and (isinstance(sweep["pool"], bool) or not isinstance(sweep["pool"], int)
                                      or sweep["pool"] < 50):
        raise _usage(f"pool must be an integer ≥ 50, got {sweep['pool']!r}")


def _backend(args) -> tuple[str, str | None]:
    """``(backend, address)`` from ``--backend`` / ``--address``; Ray must be importable."""
    backend = getattr(args, "backend", None) or "local"
    address = getattr(args, "address", None)
    if address and backend != "ray":
        raise _usage("--address needs --backend ray")
    if backend == "ray":
        try:
            from .backends.ray_backend import require_ray
            require_ray()
        except ImportError as exc:
            raise _usage(str(exc)) from None
    return backend, address


def _run(args) -> int:
    import time
    from w2sg.output import emit
    from .data.sources import DataUnavailable, data_cache
    from .backends.errors import SweepJobsFailed, describe_job
    from .runner import expand, format_summary, run_sweep, summarize
    from w2sg.paths import results_dir
    sweep, opts = resolve_sweep(args)
    root = results_dir(opts["out"])
    if getattr(args, "llm", None):
        return _run_llm(args, sweep, root)
    if not args.dry_run:  # folders proven writable before anything is expanded or loaded
        backend, address = _backend(args)
        _writable(root / "runs", "results folder")
        _writable(data_cache() / "embeddings", "cache folder")
    refs, runs = expand(sweep)
    if args.dry_run:
        emit({"sweep": sweep, "references": len(refs), "runs": len(runs), "root": str(root)},
             args.json, f"{len(refs)} reference runs + {len(runs)} W2S runs → {root}/runs/")
        return 0
    t0 = time.perf_counter()
    try:
        info = run_sweep(sweep, root, workers=opts["workers"], quiet=args.quiet or args.json,
                         backend=backend, address=address)
    except DataUnavailable as exc:
        raise _usage(str(exc)) from None
    except SweepJobsFailed as exc:  # every other record is kept: a rerun resumes
        import sys
        for job, reason in exc.failures:
            last = str(reason).strip().splitlines()[-1] if str(reason).strip() else repr(reason)
            print(f"w2sg run: lost {describe_job(job)}: {last}", file=sys.stderr)
        print(f"w2sg run: error: {exc}", file=sys.stderr)
        return 1
    rows = summarize(sweep, root)
    info["wall_s"] = time.perf_counter() - t0
    table = format_summary(rows)
    info["summary_table"] = str(_write_table(root, table))
    text = (table + "\n" if getattr(args, "table", False) else "") + short_summary(sweep, info, rows)
    emit({"info": info, "summary": rows}, args.json, text)
    return 0


def _write_table(root: Path, table: str) -> Path:
    """The full per-cell table as ``<root>/runs/summary.txt`` (written atomically)."""
    import os
    path = Path(root) / "runs" / "summary.txt"
    tmp = path.with_name(f".summary.{os.getpid()}.tmp")
    tmp.write_text(table + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def short_summary(sweep: dict, info: dict, rows: list[dict]) -> str:
    """A few lines after ``w2sg run``: what ran, where the records and the full table are,
    and per noise level the losses with the highest and lowest mean accuracy (over the
    tasks, weak models and seeds of the sweep)."""
    lines = [f"w2sg run: {len(sweep['tasks'])} task(s) × {len(sweep['weak'])} weak model(s) × "
             f"{len(sweep['losses'])} loss(es) × {len(sweep['noise'])} noise level(s) × "
             f"{sweep['seeds']} seed(s): {info['executed']} executed, {info['skipped']} skipped "
             f"(already recorded); {info['wall_s']:.1f} s",
             f"records in {info['root']}/runs/; full table ({len(rows)} cells) in "
             f"{info['summary_table']} (or --table)"]
    by_noise: dict[float, dict[str, list[float]]] = {}
    for r in rows:
        by_noise.setdefault(r["noise"], {}).setdefault(r["loss"], []).append(r["w2s_acc"])
    for noise in sorted(by_noise):
        means = {loss: sum(v) / len(v) for loss, v in by_noise[noise].items()}
        best, worst = max(means, key=means.get), min(means, key=means.get)
        lines.append(f"  noise {noise:g}: best {best} {means[best]:.3f}, worst {worst} "
                     f"{means[worst]:.3f} (mean test accuracy)")
    return "\n".join(lines)


def _run_llm(args, sweep, root) -> int:
    from w2sg.output import emit
    from .llm import run_llm_sweep
    _writable(root / "runs", "results folder")
    try:
        records = run_llm_sweep(args.llm[0], args.llm[1], args.llm_data, sweep["losses"], sweep["noise"],
                                sweep["seeds"], root, device=args.device, n=args.llm_n,
                                quiet=args.quiet or args.json)
    except (ValueError, OSError) as exc:
        raise _usage(str(exc).splitlines()[0]) from None
    rows = [{"loss": r.loss, "noise": r.noise, "seed": r.seed, "acc": r.metrics.acc,
             "pgr": r.metrics.pgr, "weak_acc": r.reference.weak.acc,
             "ceiling_acc": r.reference.ceiling.acc} for r in records]
    emit(rows, args.json, "\n".join(f"{r['loss']:<11} noise {r['noise']:.2f} seed {r['seed']} "
                                    f"weak {r['weak_acc']:.3f} ceil {r['ceiling_acc']:.3f} "
                                    f"w2s {r['acc']:.3f} PGR "
                                    + ("undefined" if r["pgr"] is None else f"{r['pgr']:.2f}") for r in rows)
         + f"\n{len(rows)} LLM runs recorded under {root}/runs/llm/")
    return 0
