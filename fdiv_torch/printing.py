"""Print a sympy expression DAG as straight-line statements in a kernel language.

The generated kernels (Triton: :mod:`fdiv_torch.triton_kernel`; C for CPUs:
:mod:`fdiv_torch.c_kernel`) evaluate ``g`` and ``g'`` of a generator elementwise.  Both are
printed here, from the sympy expressions, by one printer whose only per-language part is a
:class:`Dialect` (function names, literals, select, min/max): every distinct subtree
becomes one temporary, evaluated once, so ``g`` and ``g'`` share their common work.

Nodes printed: ``+``, ``*``, integer powers (square-and-multiply, up to 16), square roots
and their inverses, ``b**x = exp(x log b)``, ``exp``, ``log``, ``Abs``, ``sign``,
``Heaviside``, ``sinh``/``cosh``/``tanh`` (through ``exp``), ``Max``/``Min`` and
``Piecewise`` (selects; no otherwise-branch gives NaN, as ``sympy.lambdify``).  Anything
else raises :class:`Unsupported`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

__all__ = ["Unsupported", "Dialect", "DagPrinter", "TRITON", "C_FLOAT", "C_DOUBLE"]


class Unsupported(Exception):
    """The expression contains a node the printer cannot print."""


@dataclass(frozen=True)
class Dialect:
    """What differs between kernel languages (format strings take the printed operands)."""
    exp: str
    log: str
    abs: str
    sqrt: str
    where: str                   # (condition, if true, otherwise)
    maximum: str
    minimum: str
    nan: str
    assign: str                  # (name, value)
    copy: str                    # a value as a new temporary (Triton: broadcast to the tile)
    number_suffix: str = ""
    logic: dict = field(default_factory=dict)  # "and", "or", "not" formats
    sign: str | None = None      # (operand); None: two nested selects

    def num(self, x) -> str:
        v = float(x)
        if not math.isfinite(v):
            raise Unsupported(f"non-finite constant {x}")
        return repr(v) + self.number_suffix


#: Triton (``triton.language`` as ``tl``).
TRITON = Dialect(exp="tl.exp({})", log="tl.log({})", abs="tl.abs({})", sqrt="tl.sqrt({})",
                 where="tl.where({}, {}, {})", maximum="tl.maximum({}, {})",
                 minimum="tl.minimum({}, {})", nan="float('nan')", assign="{} = {}",
                 copy="{} + 0.0", logic={"and": " & ", "or": " | ", "not": "(~{})"})

#: C99 in single precision (``expf``, ``logf``, ``f``-suffixed literals; max/min as selects,
#: which vectorise, where ``fmaxf``/``fminf`` are library calls).
C_FLOAT = Dialect(exp="expf({})", log="logf({})", abs="fabsf({})", sqrt="sqrtf({})",
                  where="(({}) ? ({}) : ({}))", maximum="(({0}) > ({1}) ? ({0}) : ({1}))",
                  minimum="(({0}) < ({1}) ? ({0}) : ({1}))",
                  nan="NAN", assign="const float {} = {};", copy="{}", number_suffix="f",
                  logic={"and": " && ", "or": " || ", "not": "(!{})"},
                  # one select (nested ones made gcc's vector code 1.5x slower for tv); NaN stays NaN
                  sign="((({0}) == 0.0f) | (({0}) != ({0})) ? 0.0f * ({0}) : copysignf(1.0f, {0}))")

#: C99 in double precision.
C_DOUBLE = Dialect(exp="exp({})", log="log({})", abs="fabs({})", sqrt="sqrt({})", where=C_FLOAT.where,
                   maximum=C_FLOAT.maximum, minimum=C_FLOAT.minimum, nan="NAN",
                   assign="const double {} = {};", copy="{}", logic=C_FLOAT.logic,
                   sign="((({0}) == 0.0) | (({0}) != ({0})) ? 0.0 * ({0}) : copysign(1.0, {0}))")


class DagPrinter:
    """Statements ``tK = …`` for the DAG of the expressions printed through it (each
    distinct subtree once).  ``names`` maps symbols (and any subexpression) to the names
    they already have in the kernel; ``printer(e)`` returns the name holding ``e``."""

    def __init__(self, dialect: Dialect, names: dict):
        self.d = dialect
        self.names = dict(names)
        self.lines: list[str] = []
        self._count = 0

    def tmp(self, text: str) -> str:
        name = f"t{self._count}"
        self._count += 1
        self.lines.append(self.d.assign.format(name, text))
        return name

    def __call__(self, e) -> str:
        if e in self.names:
            return self.names[e]
        if e.is_Symbol:
            raise Unsupported(f"free symbol {e}")
        if e.is_Number:
            return self.d.num(e)
        if e in (sp.S.true, sp.S.false):
            raise Unsupported("boolean constant")
        name = self.tmp(self._node(e))
        self.names[e] = name
        return name

    def _node(self, e) -> str:  # noqa: C901 - one branch per node type
        p, d = self, self.d
        if isinstance(e, sp.Add):
            return " + ".join(p(a) for a in e.args)
        if isinstance(e, sp.Mul):
            return " * ".join(p(a) for a in e.args)
        if isinstance(e, sp.Pow):
            b, x = e.args
            one = d.num(1)
            if x.is_Integer and abs(int(x)) <= 16:
                n = abs(int(x))
                base = p(b)
                acc, sq = None, base
                while n:  # square-and-multiply, each partial product a temporary
                    if n & 1:
                        acc = sq if acc is None else self.tmp(f"{acc} * {sq}")
                    n >>= 1
                    if n:
                        sq = self.tmp(f"{sq} * {sq}")
                return f"{one} / {acc}" if int(x) < 0 else d.copy.format(acc)
            if x == sp.Rational(1, 2):
                return d.sqrt.format(p(b))
            if x == sp.Rational(-1, 2):
                return f"{one} / {d.sqrt.format(p(b))}"
            if not x.free_symbols and b.is_Number and float(b) > 0:  # c**x → exp(x log c)
                return d.exp.format(f"{p(x)} * {d.num(sp.log(b))}")
            # b**x = exp(x log b): NaN for b < 0 (as torch.pow), 0/inf at b = 0
            return d.exp.format(f"{p(x)} * {d.log.format(p(b))}")
        simple = {sp.exp: d.exp, sp.log: d.log, sp.Abs: d.abs}.get(type(e))
        if simple is not None:
            return simple.format(p(e.args[0]))
        zero, one, half = d.num(0), d.num(1), d.num(0.5)
        if isinstance(e, sp.sign):
            a = p(e.args[0])
            if d.sign is not None:
                return d.sign.format(a)
            inner = d.where.format(f"{a} < {zero}", f"-{one}", f"{zero} * {a}")
            return d.where.format(f"{a} > {zero}", one, inner)
        if isinstance(e, sp.Heaviside):
            a = p(e.args[0])
            h0 = d.num(e.args[1]) if len(e.args) > 1 else half
            inner = d.where.format(f"{a} < {zero}", zero, f"{h0} + {zero} * {a}")
            return d.where.format(f"{a} > {zero}", one, inner)
        if isinstance(e, (sp.sinh, sp.cosh)):
            a = p(e.args[0])
            sign = "-" if isinstance(e, sp.sinh) else "+"
            return f"{half} * ({d.exp.format(a)} {sign} {d.exp.format(f'-({a})')})"
        if isinstance(e, sp.tanh):
            a = p(e.args[0])
            return f"{one} - {d.num(2)} / ({d.exp.format(d.num(2) + ' * ' + a)} + {one})"
        if isinstance(e, (sp.Max, sp.Min)):
            op = d.maximum if isinstance(e, sp.Max) else d.minimum
            out = p(e.args[0])
            for a in e.args[1:]:
                out = self.tmp(op.format(out, p(a)))
            return d.copy.format(out)
        if isinstance(e, sp.Piecewise):
            out = None
            for val, cond in reversed(e.args):
                v = p(val)
                if cond == sp.S.true:
                    out = v
                    continue
                if out is None:  # no otherwise-branch: NaN, as lambdify's select
                    out = d.nan
                out = self.tmp(d.where.format(self.cond(cond), v, out))
            return d.copy.format(out)
        raise Unsupported(type(e).__name__)

    def cond(self, c) -> str:
        ops = {sp.StrictLessThan: "<", sp.LessThan: "<=", sp.StrictGreaterThan: ">",
               sp.GreaterThan: ">=", sp.Equality: "==", sp.Unequality: "!="}
        if type(c) in ops:
            return f"({self(c.lhs)} {ops[type(c)]} {self(c.rhs)})"
        if isinstance(c, (sp.And, sp.Or)):
            sep = self.d.logic["and" if isinstance(c, sp.And) else "or"]
            return "(" + sep.join(self.cond(a) for a in c.args) + ")"
        if isinstance(c, sp.Not):
            return self.d.logic["not"].format(self.cond(c.args[0]))
        raise Unsupported(f"condition {type(c).__name__}")
