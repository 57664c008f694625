"""``w2sg``: the command line.  Each package registers its own subcommands.

A subcommand module exposes ``register(subparsers)``; it adds parsers whose
``func(args) -> int`` does the work.  Errors a user can fix raise :class:`UsageError`
(or ``theory.GeneratorError``): they print one line and exit with status 2.  A stored
record that cannot be used (:class:`w2sg.records.RecordError`) prints its one-line message
(file and field) and exits with status 2 too.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UsageError
from .output import emit
from .records import RecordError

__all__ = ["main", "build_parser", "emit", "UsageError", "typed_values"]

SUBCOMMAND_MODULES = (
    "w2sg.theory_cli",   # divergences, derive, bound (the symbolic core on the command line)
    "numerics.cli",      # check
    "experiments.cli",   # run
    "paper_figs.cli",    # figs, reproduce
    "paper_figs.compare_cli",  # compare
    "experiments.bench_cli",  # bench
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse errors: one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="w2sg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that part of the toolkit is not there
            raise
        module.register(sub)
    return parser


#: Options whose values are generators (or loss names) a user types, which may start with a
#: minus sign (``--f -log(t)``): one value for ``--f`` and ``--baseline`` (``w2sg compare``),
#: one or more for ``--losses``.
TYPED_OPTIONS = {"--f": 1, "--baseline": 1, "--losses": None}


def typed_values(argv: list[str]) -> list[str]:
    """``argv`` with the values of :data:`TYPED_OPTIONS` attached as ``--opt=VALUE``.

    argparse takes a value that starts with ``-`` (``-log(t)``) for an option and stops
    with "expected one argument"; attached values are never mistaken for options.
    ``--f VALUE`` → ``--f=VALUE``; ``--losses A B`` → ``--losses=A --losses=B`` (the
    option extends its list), its values running to the next ``--option``, ``-h`` or ``--``.
    A value starting with ``--`` is left alone (a missing value, reported by argparse).
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            return out + list(argv[i:])
        if tok in TYPED_OPTIONS:
            count = TYPED_OPTIONS[tok]
            values = []
            j = i + 1
            while j < len(argv) and (count is None or len(values) < count):
                nxt = argv[j]
                if nxt.startswith("--") or nxt in ("-h",):
                    break
                values.append(nxt)
                j += 1
            if values:
                out.extend(f"{tok}={v}" for v in values)
                i = j
                continue
        out.append(tok)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(typed_values(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from theory.parsing import GeneratorError
    try:
        return int(args.func(args) or 0)
    except (UsageError, GeneratorError, RecordError) as exc:
        one_line = " ".join(str(exc).splitlines())  # user text may hold newlines: still one line
        print(f"w2sg {args.command}: error: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
