"""Safe parsing of a user-typed generator ``f(t)``.

The text is parsed with Python's :mod:`ast` (never ``eval``) and every node is
checked against a whitelist: numbers, the symbol ``t``, the constants ``pi`` and
``E``, arithmetic operators (``+ - * / **``; ``^`` is read as a power) and a fixed
set of functions.  The result is a sympy expression in the positive symbol ``t``.

Sizes are bounded *before* anything is evaluated, so no input can make the parser (or
the symbolic work after it) hang or exhaust memory: every number has at most
:data:`MAX_DIGITS` digits (numerator and denominator), a power of two numbers is refused
if its value would have more, and a numeric exponent of an expression in ``t`` is at most
:data:`MAX_EXPONENT` in absolute value (``t**1000`` is refused, ``t**50`` is fine).
"""
from __future__ import annotations

import ast
import math

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
#: Most digits of any number in a generator (a literal or the value of a power of numbers).
MAX_DIGITS = 100
#: Largest ``|a|`` of a numeric exponent ``a`` applied to an expression in ``t`` (and of ``alpha:a``).
MAX_EXPONENT = 100
_BINOPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a ** b, ast.BitXor: lambda a, b: a ** b,
}


class GeneratorError(ValueError):
    """A generator was refused; the message says what is wrong and how to fix it."""


def _digits(value: sp.Rational) -> int:
    """Decimal digits of the larger of numerator and denominator (no str(): no 4300-digit limit)."""
    return int(math.log10(max(abs(int(value.p)), abs(int(value.q)), 1))) + 1


def _check_size(value: sp.Expr, source: str) -> sp.Expr:
    if isinstance(value, sp.Rational) and _digits(value) > MAX_DIGITS:
        raise GeneratorError(
            f"generator {source!r} contains a number with more than {MAX_DIGITS} digits; "
            f"use smaller constants")
    return value


def _number(text: str, source: str) -> sp.Expr:
    # Rational keeps 0.5 exact (1/2), so derived formulas stay exact.
    return _check_size(sp.Rational(text), source)


def _power(base: sp.Expr, exponent: sp.Expr, source: str) -> sp.Expr:
    """``base ** exponent``, refused before evaluation when the result would be huge."""
    if isinstance(exponent, sp.Rational) and exponent != 0:
        if isinstance(base, sp.Rational):
            if base not in (0, 1, -1):
                # |p/q|·log10(max(|num|, |den|)) bounds the digits of the exact result
                size = abs(float(exponent)) * math.log10(max(abs(int(base.p)), abs(int(base.q))))
                if size > MAX_DIGITS:
                    raise GeneratorError(
                        f"generator {source!r} has the power {base}**{exponent}, a number of about "
                        f"{size:.3g} digits; numbers are limited to {MAX_DIGITS} digits")
        elif abs(exponent) > MAX_EXPONENT:  # t**1000, sqrt(2)**(10**50) (= 2**(5*10**49))
            what = "an expression in t" if base.free_symbols else f"the number {base}"
            raise GeneratorError(
                f"generator {source!r} raises {what} to the power {exponent}; "
                f"exponents are limited to |a| <= {MAX_EXPONENT}")
    return _check_size(base ** exponent, source)


def _build(node: ast.AST, source: str) -> sp.Expr:
    if isinstance(node, ast.Expression):
        return _build(node.body, source)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return _number(repr(node.value), source)
    if isinstance(node, ast.Name):
        if node.id == "t":
            return T
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise GeneratorError(
            f"generator {source!r} uses the symbol {node.id!r}; only 't' (and the "
            f"constants pi, E) may appear, e.g. '(t-1)**2/(t+1)'")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _build(node.left, source), _build(node.right, source)
        if isinstance(node.op, (ast.Pow, ast.BitXor)):
            return _power(left, right, source)
        return _check_size(_BINOPS[type(node.op)](left, right), source)
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
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError) as exc:
        if isinstance(exc, GeneratorError):
            raise
        raise GeneratorError(f"cannot build generator {text!r}: {exc}") from None
    expr = sp.sympify(expr)
    for number in expr.atoms(sp.Rational):
        _check_size(number, text)
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise GeneratorError(
            f"generator {text!r} is undefined (it divides by zero or contains an infinity: "
            f"{sp.sstr(expr)[:60]}); a generator must be finite on (0, inf)")
    return expr
