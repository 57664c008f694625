import numpy as np
import pytest
import sympy as sp

from theory import NAMED, GeneratorError, get_generator
from theory.parsing import T


@pytest.mark.parametrize("name", NAMED)
def test_named_generators_vanish_at_one(name):
    assert sp.simplify(get_generator(name).expr.subs(T, 1)) == 0


def test_alpha_family_special_cases():
    # alpha = 2 is χ²/2 and alpha = 1/2 is 4·(1 − Σ√pq) = 2·hellinger
    assert sp.simplify(get_generator("alpha:2").expr - (T - 1) ** 2 / 2) == 0
    assert sp.simplify(get_generator("alpha:0.5").expr - 2 * (sp.sqrt(T) - 1) ** 2) == 0
    # the limits a -> 1 and a -> 0 are KL-type
    a = sp.Symbol("a")
    family = (T ** a - a * T - (1 - a)) / (a * (a - 1))
    assert sp.simplify(sp.limit(family, a, 1) - get_generator("alpha:1").expr) == 0
    assert sp.simplify(sp.limit(family, a, 0) - get_generator("alpha:0").expr) == 0


def test_typed_generator_is_accepted_and_proved_convex():
    gen = get_generator("(t-1)**2/(t+1)")
    assert gen.convexity == "proved symbolically"
    assert get_generator("Max(0, t-1)").convexity == "checked on grid"


def test_f_at_one_nonzero_says_value_and_fix():
    with pytest.raises(GeneratorError, match=r"f\(1\) = 3.*subtract it: '\(t\*\*2\+2\) - \(3\)'"):
        get_generator("t**2+2")


@pytest.mark.parametrize("text", ["log(t)", "sqrt(t)-1", "(t-1)**3", "1-t**2"])
def test_nonconvex_refused_with_point(text):
    with pytest.raises(GeneratorError, match=r"not convex on \(0, inf\).*t="):
        get_generator(text)


def test_unknown_name_lists_valid_names():
    with pytest.raises(GeneratorError, match="kl, pearson"):
        get_generator("klx")


def test_grid_check_catches_concavity_somewhere_in_the_middle():
    # convex near 0 and near infinity but concave around t = 10
    with pytest.raises(GeneratorError, match="not convex"):
        get_generator("(t-1)**2 - 30*log(1+exp(-(t-10)**2))+30*log(1+exp(-81))")


def test_bad_alpha():
    with pytest.raises(GeneratorError, match="alpha:0.5"):
        get_generator("alpha:x")
    assert np.isfinite(float(get_generator("alpha:-1").expr.subs(T, 2)))


def test_convex_generator_with_cancelling_terms_is_accepted():
    """Found by hypothesis: ``(t-1)**2/t - 2*(t-1)`` cancels large terms near t = 1e6, where
    float64 chord slopes seemed to decrease; the drop is confirmed in 50-digit arithmetic."""
    gen = get_generator("2*(abs(t-1)/2) + 1*((t-1)**2/t) - 2*(t-1)")
    assert gen.expr.subs(T, 1) == 0
    with pytest.raises(GeneratorError, match="not convex"):
        get_generator("sqrt(t) - 1 - 0*(t-1)**2/t")  # a real concave one is still refused


@pytest.mark.parametrize("text,where", [
    ("log(t)**30", "for t in (3.931e+12, inf)"),            # f'' < 0 for t > e^29
    ("(t-1)**2 - 1e-30*t**3 + 1e-30", "for t in (3.333e+29, inf)"),
    ("t**0.5 - 1 + (t-1)**2/1000000", "for t in (0, 2500)"),
    ("abs(t-1) + log(t)**30", "for all large t"),           # not smooth: the sign at infinity
])
def test_concave_beyond_any_grid_is_refused(text, where):
    """Convexity is decided on the whole of (0, inf): these look convex on [1e-6, 1e6]."""
    with pytest.raises(GeneratorError, match="not convex on") as info:
        get_generator(text)
    assert where in str(info.value)


def test_solved_concave_range_is_right():
    """The reported range of log(t)**30 is exactly where f'' = 30 log(t)^28 (29 - log t)/t^2 < 0."""
    from theory.convexity import _negative_at
    expr = sp.log(T) ** 30
    second = sp.diff(expr, T, 2)
    assert _negative_at(second, sp.exp(29) * 2) and not _negative_at(second, sp.exp(29) / 2)
    assert sp.simplify(second - 30 * sp.log(T) ** 28 * (29 - sp.log(T)) / T ** 2) == 0


@pytest.mark.parametrize("text", ["cosh(log(t))-1", "t**100 - 1 - 100*(t-1)",
                                  "t*atan(t)-pi/4 - (t-1)*(1/2 + pi/4)", "exp(t) - E"])
def test_convex_typed_generators_are_proved(text):
    assert get_generator(text).convexity == "proved symbolically"
