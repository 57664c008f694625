import numpy as np
import pytest
import sympy as sp

from theory import NAMED, get_generator
from theory.codegen import f_numpy, fprime_numpy, logratio_expr, logratio_numpy
from theory.parsing import L, T

GENS = list(NAMED) + ["alpha:0.5", "alpha:-1", "(t-1)**2/(t+1)", "Max(0, t-1) + (t-1)**2"]
POINTS = [0.01, 0.3, 0.9, 1.7, 25.0]


@pytest.mark.parametrize("name", GENS)
def test_generated_numpy_equals_symbolic(name):
    gen = get_generator(name)
    for t in POINTS:
        exact = float(gen.expr.subs(T, sp.Rational(str(t))).evalf(30))
        assert f_numpy(gen)(np.array([t]))[0] == pytest.approx(exact, rel=1e-12, abs=1e-14)
        dexact = float(sp.diff(gen.expr, T).subs(T, sp.Rational(str(t))).evalf(30))
        assert fprime_numpy(gen)(np.array([t]))[0] == pytest.approx(dexact, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", GENS)
def test_logratio_form_is_f_of_exp(name):
    gen = get_generator(name)
    for l in [-4.0, -0.5, 0.2, 3.0]:
        exact = float(gen.expr.subs(T, sp.exp(sp.Rational(str(l)))).evalf(30))
        assert float(logratio_expr(gen).subs(L, sp.Rational(str(l))).evalf(30)) == pytest.approx(exact, rel=1e-12, abs=1e-14)
        assert logratio_numpy(gen)(np.array([l]))[0] == pytest.approx(exact, rel=1e-12, abs=1e-14)
