"""``w2sg run``: sweeps of real weak-to-strong runs (flags and/or a TOML config)."""
from __future__ import annotations

from pathlib import Path

from .finetune import FINETUNE_DEFAULTS  # settings of --finetune / a [finetune] table
from .sweep_rules import TABLES as _TABLES, TOP as _TOP  # the rules every value obeys

__all__ = ["register", "resolve_sweep", "device_arg", "short_summary"]

#: Keys of a ``--config`` file: the top-level keys and tables of experiments.sweep_rules.
_CONFIG_KEYS = (*_TOP, *_TABLES)
#: Keys of a ``[tune]`` table (``seeds``: number of tuning seeds; ``grid``: a list of
#: ``{weight_decay, lr}`` tables, else the product of ``weight_decay`` × ``lr``).
_TUNE_KEYS = ("weight_decay", "lr", "grid", "select", "seeds")


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
    from .pipeline import NOISE_MODELS
    p.add_argument("--noise-model", nargs="+", choices=NOISE_MODELS, dest="noise_models",
                   help="label-noise models (one or more): symmetric (default; seeded random rows), "
                        "asymmetric (only rows whose weak label favours class 1 flip, each with "
                        "probability = noise), confident (the weak supervisor's most confident rows)")
    p.add_argument("--tune", action="store_true",
                   help="equal-budget tuning: every loss gets the same grid (L2 weight 0.25 1 4 16 × "
                        "lr 0.003 0.01 0.03; a [tune] table of --config changes it), chosen per "
                        "(task, weak, noise, noise model, loss) on tuning seeds 1000.. disjoint from "
                        "the evaluation seeds")
    p.add_argument("--select", choices=("weak", "oracle"),
                   help="with --tune: score a configuration by agreement with the noisy weak labels "
                        "of the validation slice (weak, default: no ground truth read) or by its "
                        "ground truth (oracle: a labelled upper bound)")
    p.add_argument("--tuning-seeds", type=int, help="with --tune: number of tuning seeds (default 2)")
    p.add_argument("--normalize", choices=("curvature",),
                   help="scale control: train on D_f / f''(1) (every smooth loss then has CE's local "
                        "scale; tv has no f''(1) and is refused)")
    p.add_argument("--pool", type=int, help="texts per task pool (default: per task)")
    p.add_argument("--quick", action="store_true", help="small sweep (< 3 min)")
    p.add_argument("--preset", choices=("finetune",),
                   help="a named sweep: finetune = fine-tuned students (top layer on cached "
                        "activations, lr tuned per loss) on vader_cls × both weak models, 7 losses × "
                        "noise 0/0.4 × 10 seeds (~40 min on 2 idle CPU cores; docs/finetune.md; "
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
    p.add_argument("--finetune-layers", default=None, metavar="K|all",
                   help="fine-tuning: train only the top K transformer layers (on cached hidden "
                        "states of the frozen ones) or all of the encoder (the GPU setting)")
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


#: A ``--config`` file larger than this is refused (a sweep config is a few hundred bytes).
MAX_CONFIG_BYTES = 1 << 20


def _load_toml(path: str) -> dict:
    """The ``--config`` file (or its ``[run]`` table) as a dict: a regular file (a FIFO or a
    device is refused, never opened blocking), valid UTF-8 TOML, not nested absurdly, and
    only known keys (:data:`_CONFIG_KEYS`).  Values are checked by :func:`_check_config`."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore
    from w2sg.input_files import read_input
    raw = read_input(path, "--config", MAX_CONFIG_BYTES)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _usage(f"config file {path!r} is not valid TOML: {exc}") from None
    except RecursionError:
        raise _usage(f"config file {path!r} is nested too deeply to be a sweep config") from None
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


def _check_config(cfg: dict, path: str) -> dict:
    """Every value of a loaded config checked against :mod:`experiments.sweep_rules`
    (tables key by key); lists come back with duplicates merged."""
    from .sweep_rules import TABLES, TOP, check_table, check_value
    where = f" (in {path})"
    return {k: (check_table(k, v, where) if k in TABLES
                else check_value(f"config key {k!r}", v, TOP[k], where)) for k, v in cfg.items()}


def _writable(folder: Path, what: str) -> None:
    from w2sg.paths import writable_dir
    writable_dir(folder, what, "--out" if what == "results folder" else "W2SG_CACHE")


def resolve_sweep(args) -> tuple[dict, dict]:
    """Merge defaults, ``--quick``, the TOML config and flags (flags win); validate every value
    (:mod:`experiments.sweep_rules`, then names and split sizes) before any work.

    Returns ``(sweep, options)`` with options ``out`` and ``workers``.
    """
    from .runner import DEFAULT_SWEEP, PRESETS, QUICK_SWEEP
    from .sweep_rules import FLAGS, check_value
    path = getattr(args, "config", None)
    cfg = _check_config(_load_toml(path), path) if path else {}
    quick = bool(args.quick or cfg.get("quick", False))
    preset = getattr(args, "preset", None)
    if preset and quick:
        raise _usage("--preset and --quick exclude each other")
    base = PRESETS[preset] if preset else (QUICK_SWEEP if quick else DEFAULT_SWEEP)
    sweep = {k: (dict(v) if isinstance(v, dict) else (list(v) if isinstance(v, list) else v))
             for k, v in base.items()}
    for key in sweep:
        if key in cfg and key not in ("finetune", "tune"):
            sweep[key] = {**sweep[key], **cfg[key]} if key in _TABLES else cfg[key]
    for key in ("tasks", "weak", "losses", "noise", "seeds", "pool", "noise_models", "normalize"):
        value = getattr(args, key, None)
        if value is not None:
            sweep[key] = check_value(f"--{key.replace('_', '-')}", value, _TOP[key])
    device = device_arg(getattr(args, "device", None))
    if getattr(args, "finetune", False) or cfg.get("finetune") or sweep.get("finetune"):
        ft = cfg.get("finetune", {})
        sweep["finetune"] = {**FINETUNE_DEFAULTS, **sweep.get("finetune", {}), **ft}
        # the resolved device is part of the config (bf16 on CUDA changes results)
        sweep["finetune"]["device"] = device or device_arg(ft.get("device", "auto"))
        if getattr(args, "finetune_layers", None) is not None:
            sweep["finetune"]["layers"] = _layers_arg(args.finetune_layers)
        _validate_finetune(sweep["finetune"])
    elif getattr(args, "finetune_layers", None) is not None:
        raise _usage("--finetune-layers needs --finetune or --preset finetune")
    sweep["tune"] = _resolve_tune(args, cfg.get("tune"), sweep)
    _validate(sweep)
    out = args.out if args.out is not None else cfg.get("out")
    from w2sg.paths import results_dir
    results_dir(out)  # refuses --out '' before anything else
    workers = args.workers if args.workers is not None else cfg.get("workers", 2)
    workers = check_value("--workers" if args.workers is not None else "config key 'workers'",
                          workers, _TOP["workers"])
    if getattr(args, "llm_n", None) is not None:
        check_value("--llm-n", args.llm_n, FLAGS["llm_n"])
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


def _layers_arg(value: str):
    """``--finetune-layers``: ``all`` or a positive integer (checked against the encoder's
    depth by :func:`_validate_finetune`)."""
    if str(value) == "all":
        return "all"
    try:
        return int(value)
    except ValueError:
        raise _usage(f"--finetune-layers must be 'all' or a number of layers, got {value!r}") from None


#: Transformer layers of the strong encoder (MiniLM-L6).
_ENCODER_LAYERS = 6


def _validate_recipe(ft: dict) -> None:
    """The keys of the fine-tuning recipe added for issue 20 (layers, schedule, dropout,
    selection, lr tuning)."""
    k = ft["layers"]
    if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= _ENCODER_LAYERS):
        raise _usage(f"[finetune] layers must be 'all' or an integer in 1..{_ENCODER_LAYERS}, got {k!r}")
    if ft["schedule"] not in ("linear", "constant"):
        raise _usage(f"[finetune] schedule must be 'linear' or 'constant', got {ft['schedule']!r}")
    if ft["select"] not in ("last", "best"):
        raise _usage(f"[finetune] select must be 'last' or 'best', got {ft['select']!r}")
    for key in ("warmup", "dropout"):
        if isinstance(ft[key], bool) or not isinstance(ft[key], (int, float)) or not 0 <= ft[key] < 1:
            raise _usage(f"[finetune] {key} must be a number in [0, 1), got {ft[key]!r}")
    if ft["tune"] is False:  # TOML has no null: `tune = false` switches tuning off
        ft["tune"] = None
    tune = ft["tune"]
    if tune is None:
        return
    from .finetune_tune import TUNE_DEFAULT
    if not isinstance(tune, dict) or set(tune) - set(TUNE_DEFAULT):
        raise _usage(f"[finetune.tune] must be a table with keys {', '.join(TUNE_DEFAULT)}")
    tune = ft["tune"] = {**TUNE_DEFAULT, **tune}
    lrs, seeds = tune["lr"], tune["seeds"]
    if (not isinstance(lrs, list) or not lrs
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x < 1 for x in lrs)):
        raise _usage(f"[finetune.tune] lr must be a list of numbers in (0, 1), got {lrs!r}")
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in seeds)):
        raise _usage(f"[finetune.tune] seeds must be a list of integers ≥ 0, got {seeds!r}")
    if tune["select"] not in ("weak", "oracle"):
        raise _usage(f"[finetune.tune] select must be 'weak' or 'oracle', got {tune['select']!r}")
    if tune["noise"] is not None and (isinstance(tune["noise"], bool)
                                      or not isinstance(tune["noise"], (int, float))):
        raise _usage(f"[finetune.tune] noise must be a number or absent, got {tune['noise']!r}")
def _number(x) -> bool:
    import math
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _resolve_tune(args, table, sweep: dict) -> dict | None:
    """The sweep's ``tune`` entry from ``--tune`` / ``--select`` / ``--tuning-seeds`` and a
    ``[tune]`` table (a table turns tuning on); ``None`` for the fixed recipe."""
    from .tuning import DEFAULT_LRS, DEFAULT_TUNING_SEEDS, DEFAULT_WEIGHT_DECAYS, SELECT_CHOICES, tune_spec
    if table is not None and not isinstance(table, dict):
        raise _usage("config key 'tune' must be a table ([tune])")
    base = sweep.get("tune")
    if not (getattr(args, "tune", False) or table is not None or base):
        for flag, dest in (("--select", "select"), ("--tuning-seeds", "tuning_seeds")):
            if getattr(args, dest, None) is not None:
                raise _usage(f"{flag} needs --tune (or a [tune] table in --config)")
        return None
    table = table or {}
    bad = sorted(set(table) - set(_TUNE_KEYS))
    if bad:
        raise _usage(f"unknown key(s) {bad} in [tune]; valid: {', '.join(_TUNE_KEYS)}")
    if "grid" in table and ("weight_decay" in table or "lr" in table):
        raise _usage("[tune] takes either grid or weight_decay/lr lists, not both")
    if "grid" in table:
        grid = table["grid"]
        if not isinstance(grid, list) or not grid or not all(
                isinstance(g, dict) and set(g) == {"weight_decay", "lr"} for g in grid):
            raise _usage("[tune] grid must be a non-empty list of {weight_decay = …, lr = …} tables")
    elif base and "weight_decay" not in table and "lr" not in table:
        grid = base["grid"]
    else:
        wds, lrs = table.get("weight_decay", DEFAULT_WEIGHT_DECAYS), table.get("lr", DEFAULT_LRS)
        wds, lrs = ([v] if _number(v) else v for v in (wds, lrs))
        if not (isinstance(wds, (list, tuple)) and wds and isinstance(lrs, (list, tuple)) and lrs):
            raise _usage("[tune] weight_decay and lr must be non-empty lists of numbers")
        grid = [{"weight_decay": wd, "lr": lr} for wd in wds for lr in lrs]
    for g in grid:
        if not (_number(g["weight_decay"]) and g["weight_decay"] >= 0):
            raise _usage(f"[tune] weight_decay values must be numbers ≥ 0, got {g['weight_decay']!r}")
        if not (_number(g["lr"]) and 0 < g["lr"] < 1):
            raise _usage(f"[tune] lr values must be numbers in (0, 1), got {g['lr']!r}")
    select = getattr(args, "select", None) or table.get("select") or (base or {}).get("select", "weak")
    if select not in SELECT_CHOICES:
        raise _usage(f"[tune] select must be one of {', '.join(SELECT_CHOICES)}, got {select!r}")
    n = getattr(args, "tuning_seeds", None)
    n = n if n is not None else table.get("seeds", len(base["tuning_seeds"]) if base else DEFAULT_TUNING_SEEDS)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:
        raise _usage(f"the number of tuning seeds must be an integer in [1, 100], got {n!r}")
    if sweep.get("finetune"):
        raise _usage("--tune tunes linear heads; it does not combine with --finetune")
    return tune_spec(grid, select, n)


def _validate_finetune(ft: dict) -> None:
    _validate_recipe(ft)
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
    """The names in a merged sweep (tasks, models, losses) and its split sizes against the
    pool; the types and ranges of its values were checked as they came in."""
    from .data.tasks import DEFAULT_POOL, parse_task
    from .embed import STRONG_MODELS, WEAK_MODELS
    from .sweep_rules import check_sizes
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
    if sweep.get("normalize") not in (None, "curvature"):
        raise _usage(f"normalize must be curvature (or absent), got {sweep['normalize']!r}")
    for loss in sweep["losses"]:
        try:
            make_loss(str(loss), normalize=sweep.get("normalize"))
        except ValueError as exc:
            raise _usage(str(exc)) from None
    from .pipeline import NOISE_MODELS
    models = sweep.get("noise_models") or ["symmetric"]
    for m in models:
        if m not in NOISE_MODELS:
            raise _usage(f"unknown noise model {m!r}; valid: {', '.join(NOISE_MODELS)}")
    sweep["noise_models"] = list(dict.fromkeys(models))  # each once, in the order given
    from .tuning import TUNING_SEED_BASE
    if sweep.get("tune") and isinstance(sweep["seeds"], int) and sweep["seeds"] > TUNING_SEED_BASE:
        raise _usage(f"with --tune the evaluation seeds (0..{sweep['seeds'] - 1}) must stay below the "
                     f"tuning seeds ({TUNING_SEED_BASE}..)")
    tune = (sweep.get("finetune") or {}).get("tune")
    if tune and set(tune["seeds"]) & set(range(sweep["seeds"])):
        raise _usage(f"[finetune.tune] seeds {tune['seeds']} overlap the evaluation seeds "
                     f"0..{sweep['seeds'] - 1}; tuning seeds must be disjoint from them")
    check_sizes(sweep["tasks"], sweep["sizes"], sweep["pool"], DEFAULT_POOL)


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
    else:
        from .backends.local import StartMethodError, start_method
        try:
            start_method()  # $W2SG_START_METHOD, checked before any work
        except StartMethodError as exc:
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
        if sweep["tune"] or sweep["normalize"] or sweep["noise_models"] != ["symmetric"]:
            raise _usage("--tune, --normalize and --noise-model apply to the linear-head sweep, not --llm")
        return _run_llm(args, sweep, root)
    if not args.dry_run:  # folders proven writable before anything is expanded or loaded
        backend, address = _backend(args)
        _writable(root / "runs", "results folder")
        _writable(data_cache() / "embeddings", "cache folder")
    refs, runs = expand(sweep)
    if args.dry_run:
        from .runner import expand_tuning
        cells = len(expand_tuning(sweep))
        emit({"sweep": sweep, "references": len(refs), "tuning_cells": cells, "runs": len(runs),
              "root": str(root)}, args.json,
             f"{len(refs)} reference runs + {cells} tuning cells + {len(runs)} W2S runs → {root}/runs/")
        return 0
    t0 = time.perf_counter()
    from .backends.interrupts import interrupt_guard
    try:
        with interrupt_guard(stay_ignored=True):  # Ctrl-C: one line, status 130, no worker left
            info = run_sweep(sweep, root, workers=opts["workers"], quiet=args.quiet or args.json,
                             backend=backend, address=address)
    except KeyboardInterrupt:
        import sys
        print(f"w2sg run: interrupted; finished records are kept under {root}/runs/ "
              "(run the same command again to resume)", file=sys.stderr)
        return 130
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
    from w2sg.aggregate import mean_std  # the one aggregation module
    by_noise: dict[float, dict[str, list[float]]] = {}
    for r in rows:
        by_noise.setdefault(r["noise"], {}).setdefault(r["loss"], []).append(r["w2s_acc"])
    for noise in sorted(by_noise):
        means = {loss: mean_std(v)[0] for loss, v in by_noise[noise].items()}
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
    from w2sg.results import run_of
    rows = [run_of(r, "").row(("loss", "noise", "seed", "acc", "pgr", "weak_acc", "ceiling_acc"))
            for r in records]
    emit(rows, args.json, "\n".join(f"{r['loss']:<11} noise {r['noise']:.2f} seed {r['seed']} "
                                    f"weak {r['weak_acc']:.3f} ceil {r['ceiling_acc']:.3f} "
                                    f"w2s {r['acc']:.3f} PGR "
                                    + ("undefined" if r["pgr"] is None else f"{r['pgr']:.2f}") for r in rows)
         + f"\n{len(rows)} LLM runs recorded under {root}/runs/llm/")
    return 0
