"""Every option of every command explains itself: a non-empty help text on each argparse
action (walked from ``w2sg.cli``'s parser), and a help line for each subcommand."""
from __future__ import annotations

import argparse

from w2sg.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    """``(command path, action)`` of every action under ``parser``, subcommands included."""
    for action in parser._actions:
        yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))


def _missing_help(parser) -> list[str]:
    missing = []
    for path, action in _walk(parser, ("w2sg",)):
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helped = {c.dest for c in action._choices_actions if (c.help or "").strip()}
            missing += [" ".join(path + (name,)) + " (subcommand)"  # its one-line help
                        for name in action.choices if name not in helped]
            continue
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            missing.append(" ".join(path) + " " + "/".join(action.option_strings or [action.dest]))
    return missing


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    assert _missing_help(parser) == []
    # the walk reaches nested commands (bound KIND) and the options of each
    seen = {(" ".join(p), o) for p, a in _walk(parser, ("w2sg",)) for o in a.option_strings}
    assert ("w2sg bound error", "--risk") in seen and ("w2sg run", "--table") in seen


def test_the_walk_finds_a_missing_help():
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers()
    cmd = sub.add_parser("cmd", help="a command")
    cmd.add_argument("--documented", help="says what it is")
    cmd.add_argument("--silent")
    sub.add_parser("bare")
    assert sorted(_missing_help(parser)) == ["w2sg bare (subcommand)", "w2sg cmd --silent"]
