"""Safe parsing of a user-typed generator ``f(t)``.

The text is parsed with Python's :mod:`ast` (never ``eval``) and every node is
checked against a whitelist: numbers, the symbol ``t``, the constants ``pi`` and
``E``, arithmetic operators (``+ - * / **``; ``^`` is read as a power) and a fixed
set of functions.  The result is a sympy expression in the positive symbol ``t``.
"""
from __future__ import annotations

import ast

import sympy as sp

#: The variable of every generator: ``t = p/q`` on ``(0, inf)``.
T = sp.Symbol("t", positive=True)
#: The variable of convex conjugates ``f*(u)``.
U = sp.Symbol("u", real=True)
#: The log-ratio variable ``l = log t``.
L = sp.Symbol("l", real=True)

_FUNCTIONS = {
    "log": sp.log, "ln": sp.log, "exp": sp.exp, "sqrt": sp.sqrt, "cbrt": sp.cbrt,
    "abs": sp.Abs, "Abs": sp.Abs, "Max": sp.Max, "Min": sp.Min, "max": sp.Max,
    "min": sp.Min, "atan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh,
    "tanh": sp.tanh, "log1p": lambda x: sp.log(1 + x),
}
_CONSTANTS = {"pi": sp.pi, "E": sp.E}
_BINOPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a ** b, ast.BitXor: lambda a, b: a ** b,
}


class GeneratorError(ValueError):
    """A generator was refused; the message says what is wrong and how to fix it."""


def _number(text: str) -> sp.Expr:
    # Rational keeps 0.5 exact (1/2), so derived formulas stay exact.
    return sp.Rational(text)


def _build(node: ast.AST, source: str) -> sp.Expr:
    if isinstance(node, ast.Expression):
        return _build(node.body, source)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return _number(repr(node.value))
    if isinstance(node, ast.Name):
        if node.id == "t":
            return T
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise GeneratorError(
            f"generator {source!r} uses the symbol {node.id!r}; only 't' (and the "
            f"constants pi, E) may appear, e.g. '(t-1)**2/(t+1)'")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_build(node.left, source), _build(node.right, source))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _build(node.operand, source)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name = node.func.id
        if name not in _FUNCTIONS:
            raise GeneratorError(
                f"generator {source!r} calls unknown function {name!r}; allowed: "
                + ", ".join(sorted(_FUNCTIONS)))
        return _FUNCTIONS[name](*[_build(a, source) for a in node.args])
    raise GeneratorError(
        f"generator {source!r} contains {ast.dump(node)[:40]}...; only numbers, t, "
        f"+ - * / ** and the functions {', '.join(sorted(_FUNCTIONS))} are allowed")


def parse_generator(text: str) -> sp.Expr:
    """Parse ``text`` (an expression in ``t``) into a sympy expression.

    >>> parse_generator("(t-1)**2/(t+1)")
    (t - 1)**2/(t + 1)
    """
    if not isinstance(text, str) or not text.strip():
        raise GeneratorError("empty generator: type an expression in t, e.g. '(t-1)**2'")
    if len(text) > 500:
        raise GeneratorError("generator text longer than 500 characters")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise GeneratorError(
            f"cannot parse generator {text!r}: {exc.msg} at column {exc.offset}; "
            f"write an expression in t such as '(t-1)**2/(t+1)'") from None
    try:
        expr = _build(tree, text)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, GeneratorError):
            raise
        raise GeneratorError(f"cannot build generator {text!r}: {exc}") from None
    return sp.sympify(expr)
