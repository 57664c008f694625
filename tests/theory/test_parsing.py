import pytest
import sympy as sp

from theory.parsing import GeneratorError, T, parse_generator


def test_parses_arithmetic_and_functions():
    assert sp.simplify(parse_generator("(t-1)**2/(t+1)") - (T - 1) ** 2 / (T + 1)) == 0
    assert parse_generator("t^2") == T ** 2
    assert parse_generator("0.5*log(t)") == sp.log(T) / 2  # 0.5 kept exact
    assert parse_generator("abs(t-1)") == sp.Abs(T - 1)


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "t.__class__", "(lambda: 1)()", "[t]", "t if t else 1",
    "open('x')", "t; t", "",
])
def test_refuses_anything_but_arithmetic(text):
    with pytest.raises(GeneratorError):
        parse_generator(text)


def test_error_names_the_bad_symbol():
    with pytest.raises(GeneratorError, match="'x'"):
        parse_generator("x*t")
    with pytest.raises(GeneratorError, match="unknown function 'sin'"):
        parse_generator("sin(t)")
