"""Symbolic f-divergence theory for weak-to-strong generalization (W2SG).

One sympy expression per generator is the single source of every formula; numpy and
torch functions are generated from it (:mod:`theory.codegen`, :mod:`fdiv_torch.codegen`).  Conventions follow
``docs/THEORY.md``: ``D_f(P‖Q) = Σ q f(p/q)`` with the strong model first.
"""
from .parsing import GeneratorError, L, T, U, parse_generator
from .generators import NAMED, PAPER_LOSSES, Generator, get_generator, named_generators

__all__ = ["GeneratorError", "Generator", "get_generator", "named_generators", "NAMED",
           "PAPER_LOSSES", "parse_generator", "T", "U", "L"]
