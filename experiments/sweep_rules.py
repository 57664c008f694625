"""The rules every value of a ``w2sg run`` sweep obeys: one declarative table, checked up front.

:data:`TOP` holds the top-level keys of a sweep (``--config`` file or flags), :data:`TABLES`
the keys of each ``[table]``, :data:`FLAGS` the flags no config key sets; each value is a :class:`Rule` (type and range).  A new key is
one line here; ``w2sg run`` derives its list of valid config keys from these tables and
checks every value through :func:`check_value` before any work starts, refusing a bad one
with one line (:class:`w2sg.errors.UsageError`: exit status 2) that names the key, where it
came from, the rule and the value.

Lists (``tasks``, ``losses``, ``noise`` …) accept one value or a list; their duplicates are
merged, first occurrence kept (``--losses ce ce --noise 0 0`` is one run, not four).

Ranges are sanity bounds, not tuning advice: they refuse typos (``steps = -5``, ``test =
1e8``) and values that cannot work (``weak_gt = 0``, ``val_frac = 1.5``); where a bound
comes from the model or the maths it says so below.  Checks that need more than one key
(split sizes against the pool) are :func:`check_sizes`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from w2sg.errors import UsageError

__all__ = ["Rule", "TOP", "TABLES", "FLAGS", "TRAIN", "check_value", "check_table", "check_sizes",
           "texts_needed", "show"]


@dataclass(frozen=True)
class Rule:
    """One key's type and range.

    ``kind``: ``int``, ``number`` (finite int or float), ``bool``, ``str``, ``choice`` (one of
    ``choices``), ``strs`` / ``numbers`` (one value or a list of them, duplicates merged),
    ``any`` (a structured value checked where it is used).
    ``lo``/``hi`` bound numbers (``open_lo``/``open_hi``: strict); ``none_ok``: ``None``
    (leaving the key out of a TOML file is the only way to get it) means the default.
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False
    choices: tuple = ()
    none_ok: bool = False

    def describe(self) -> str:
        """``an integer in [1, 1000]``, ``one of float32, float64``, …"""
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        what = {"any": "a valid value", "int": "an integer", "number": "a number", "bool": "true or false",
                "str": "a string", "strs": "a string or a list of strings",
                "numbers": "a number or a list of numbers"}[self.kind]
        if self.lo is not None or self.hi is not None:
            lo = "-inf" if self.lo is None else _num(self.lo)
            hi = "inf" if self.hi is None else _num(self.hi)
            what += f" in {'(' if self.open_lo else '['}{lo}, {hi}{')' if self.open_hi else ']'}"
        return what

    def in_range(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.lo is not None and (x <= self.lo if self.open_lo else x < self.lo):
            return False
        return self.hi is None or (x < self.hi if self.open_hi else x <= self.hi)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def Int(lo, hi, none_ok=False) -> Rule:  # noqa: N802 - reads as a type in the tables
    return Rule("int", lo, hi, none_ok=none_ok)


def Num(lo, hi, open_lo=False, open_hi=False) -> Rule:  # noqa: N802
    return Rule("number", lo, hi, open_lo, open_hi)


def Choice(*values) -> Rule:  # noqa: N802
    return Rule("choice", choices=values)


#: Head training (``[train]`` for the student and ceiling, ``[weak_train]`` for the weak head;
#: :class:`experiments.pipeline.TrainConfig`).
TRAIN = {
    "steps": Int(1, 100_000),                 # full-batch Adam steps (0 would train nothing)
    "lr": Num(0, 1, open_lo=True),
    "weight_decay": Num(0, 10_000),
    "eval_every": Int(0, 100_000),            # 0: no model selection
    "dtype": Choice("float32", "float64"),    # the head's dtype (its weights go back to numpy)
    "smoothing": Num(0, 0.5, open_hi=True),   # weak-label ε < 1/k, k = 2 classes
    "normalize": Rule("choice", choices=("curvature",), none_ok=True),  # D_f / f''(1)
}

#: The ``[table]`` keys of a sweep.
TABLES: dict[str, dict[str, Rule]] = {
    "train": TRAIN,
    "weak_train": TRAIN,
    "sizes": {
        "weak_gt": Int(10, 100_000),          # ground-truth examples of the weak head
        "test": Int(10, 100_000),
        "val_frac": Num(0, 0.5, open_lo=True),  # share of the student split for selection
    },
    "finetune": {  # experiments.finetune.FINETUNE_DEFAULTS
        "layers": Rule("any"),                # 'all' or 1..6: experiments/cli.py _validate_recipe
        "schedule": Choice("linear", "constant"),
        "warmup": Num(0, 1, open_hi=True),
        "dropout": Num(0, 1, open_hi=True),
        "select": Choice("last", "best"),
        "tune": Rule("any"),                  # a [finetune.tune] table or false: _validate_recipe
        "epochs": Int(1, 100),
        "lr": Num(0, 1, open_lo=True, open_hi=True),
        "batch_size": Int(1, 4096),
        "max_length": Int(4, 512),            # MiniLM has 512 positions
        "max_steps": Int(0, 1_000_000),       # 0: no limit
        "eval_every": Int(0, 1_000_000),      # 0: no evaluation during training
        "patience": Int(0, 1000),             # 0: no early stopping
        "device": Rule("str"),                # cpu, cuda, cuda:N or auto (experiments.device)
    },
}

#: The top-level keys of a sweep (a ``--config`` file and the flags of the same name).
TOP: dict[str, Rule] = {
    "tasks": Rule("strs"),
    "weak": Rule("strs"),
    "strong": Rule("str"),
    "losses": Rule("strs"),
    "noise": Rule("numbers", 0, 0.5),         # share of weak labels flipped
    "seeds": Int(1, 100_000),                # above the tuning seeds (10000) of the finetune preset
    "quick": Rule("bool"),
    "out": Rule("str"),
    "workers": Int(1, 256),
    "pool": Int(50, 1_000_000, none_ok=True),
    "max_length": Int(8, 512),                # tokens per text for the encoders (512 positions)
    "tune": Rule("any"),                      # a [tune] table: experiments/cli.py _resolve_tune
    "normalize": Rule("choice", choices=("curvature",), none_ok=True),  # loss scale control
    "noise_models": Rule("strs"),             # experiments.pipeline.NOISE_MODELS (checked by name)
}
#: Flags of ``w2sg run`` that no config key sets.
FLAGS: dict[str, Rule] = {
    "llm_n": Int(1, 10_000_000),              # --llm-n: preference pairs of the LLM path
}


def show(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a config value may be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def check_value(label: str, value, rule: Rule, where: str = ""):
    """``value`` if it obeys ``rule`` (lists: as a list, duplicates merged, numbers as floats;
    an integral float is refused where an integer is due); else :class:`UsageError` naming
    ``label`` (and ``where``: `` (in sweep.toml)``)."""
    def bad(extra: str = ""):
        return UsageError(f"{label} must be {rule.describe()}, got {show(value)}{extra}{where}")
    if (value is None and rule.none_ok) or rule.kind == "any":
        return value  # "any": a structured value checked where it is used
    kind = rule.kind
    if kind == "int":
        if not _is_int(value) or not rule.in_range(value):
            raise bad(" (write integers without a decimal point or exponent)"
                      if isinstance(value, float) and value.is_integer() else "")
        return value
    if kind == "number":
        if not _is_num(value) or not rule.in_range(float(value)):
            raise bad()
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind in ("str", "choice"):
        if not isinstance(value, str) or (kind == "choice" and value not in rule.choices):
            raise bad()
        return value
    items = value if isinstance(value, list) else [value]
    if kind == "strs":
        if not items or not all(isinstance(v, str) and v.strip() for v in items):
            raise bad()
        return _unique(items)
    if not items or not all(_is_num(v) and rule.in_range(float(v)) for v in items):
        raise bad()
    return _unique(float(v) for v in items)


def check_table(name: str, table, where: str = "") -> dict:
    """The ``[name]`` table checked key by key against :data:`TABLES`; unknown keys refused."""
    rules = TABLES[name]
    if not isinstance(table, dict):
        raise UsageError(f"config key {name!r} must be a table, got {show(table)}{where}")
    unknown = sorted(set(table) - set(rules))
    if unknown:
        raise UsageError(f"unknown key(s) {unknown} in [{name}]{where}; valid: {', '.join(rules)}")
    return {k: check_value(f"[{name}] {k}", v, rules[k], where) for k, v in table.items()}


def texts_needed(task: str, examples: int) -> float:
    """Pool texts the ``weak_gt`` + ``test`` examples of ``task`` take (``fortunes_pairs``
    pairs one offensive text, from half the pool, with a clean one; ``vader_pairs`` splits
    1.3 texts per wanted pair; ``vader_cls`` one text each), as a multiple of the pool."""
    name = task.partition(":")[0]
    return {"fortunes_pairs": 2.0, "vader_pairs": 1.3}.get(name, 1.0) * examples


def check_sizes(tasks, sizes: dict, pool: int | None, default_pool: dict) -> None:
    """Refuse split sizes that leave a task no student split: ``weak_gt + test`` examples must
    take less than the pool (``pool``, else the task's default) minus 10 texts."""
    n = sizes["weak_gt"] + sizes["test"]
    for task in tasks:
        size = pool or default_pool.get(task.partition(":")[0])
        if size is not None and texts_needed(task, n) > size - 10:
            raise UsageError(
                f"[sizes] weak_gt + test = {n} examples of {task} need {texts_needed(task, n):.0f} "
                f"of its {size} pool texts, leaving no student split; lower them or raise pool")
