import json
import subprocess
import sys

import pytest

from theory import NAMED
from w2sg.cli import main


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_divergences_table_has_every_named_generator(capsys):
    rows = run_json(capsys, "divergences")
    assert [r["name"] for r in rows] == list(NAMED)
    kl = rows[0]
    assert kl["f2_at_1"] == 1 and kl["conjugate_domain"] == [None, 0.0] and kl["disagreement_pull"] == -1


def test_derive_typed_generator_fields(capsys):
    out = run_json(capsys, "derive", "--f", "(t-1)**2/(t+1)")
    for key in ["name", "generator", "f2_at_1", "dual", "symmetric", "bounded", "max_value", "conjugate",
                "conjugate_domain", "logratio_form", "disagreement_pull"]:
        assert key in out
    assert out["f2_at_1"] == 1 and out["symmetric"] and out["max_value"] == 2
    assert out["conjugate_domain"] == [None, 1.0]


def test_bound_commands(capsys):
    out = run_json(capsys, "bound", "tv", "--f", "pearson", "--delta", "0.25")
    assert out["lower_bound"] == pytest.approx(0.25) and out["convex_envelope"] == pytest.approx(0.25)
    out = run_json(capsys, "bound", "tv-inverse", "--f", "pearson", "--divergence", "0.25")
    assert out["max_tv"] == pytest.approx(0.25, abs=1e-9)
    out = run_json(capsys, "bound", "error", "--f", "tv", "--weak-error", "0.1", "--disagreement", "0.3")
    assert out["lower"] == 0.0 and out["upper"] == pytest.approx(0.4)
    out = run_json(capsys, "bound", "samples", "--f", "kl", "--gamma", "0.1", "--eps", "0.1",
                   "--delta", "0.05", "--class-size", "10")
    assert out["n"] > 0 and out["B_f"] > 0 and out["L_f"] > 0


@pytest.mark.parametrize("argv,needle", [
    (["derive", "--f", "t**2"], "subtract it"),
    (["derive", "--f", "nope"], "named generators"),
    (["derive", "--f", "log(t)"], "not convex"),
    (["bound", "tv", "--f", "kl", "--delta", "1.0"], "outside [0, 1)"),
    (["bound", "samples", "--f", "kl", "--gamma", "0.6", "--eps", "0.1", "--delta", "0.1", "--radius", "1"], "γ"),
    (["bound", "tv-inverse", "--f", "kl", "--divergence", "-0.1"], "≥ 0"),
    (["bound", "samples", "--f", "kl", "--gamma", "0.1", "--eps", "0.1", "--delta", "0.1"], "exactly one"),
])
def test_bad_input_exits_2_with_one_line(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "w2sg", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert needle in proc.stderr


def test_bound_error_takes_r_f_as_risk_with_the_old_name_kept(capsys):
    new = run_json(capsys, "bound", "error", "--f", "tv", "--weak-error", "0.1", "--risk", "0.3")
    old = run_json(capsys, "bound", "error", "--f", "tv", "--weak-error", "0.1", "--disagreement", "0.3")
    short = run_json(capsys, "bound", "error", "--f", "tv", "--weak-error", "0.1", "--r-f", "0.3")
    assert new == old == short and new["risk"] == 0.3
    assert (new["lower"], new["upper"]) == (0.0, pytest.approx(0.4))  # TV: L̆⁻¹(r) = r
    assert main(["bound", "error", "--f", "tv", "--weak-error", "0.1", "--risk", "0.3"]) == 0
    assert "L̆_f⁻¹(R_f) = 0.3" in capsys.readouterr().out


def test_derive_text_is_readable_and_explains_its_symbols(capsys):
    assert main(["derive", "--f", "js"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip() and not ln.startswith(" ")}
    assert lines["conjugate_domain"].split(None, 1)[1] == "(−∞, log(2)/2)"  # f'(∞) = log 2 / 2, open
    assert "**(" not in lines["dual"]          # no log of a symbolic power
    assert "gamma" not in lines["B_f_expr"] and "γ" in lines["B_f_expr"]
    legend = out[out.index("legend"):]
    for symbol in ("f2_at_1", "dual", "conjugate_domain", "disagreement_pull", "γ, B_f, L_f", "L_f_logit",
                   "L_f_prob", "kink"):
        assert symbol in legend
    assert main(["derive", "--f", "js", "--no-legend"]) == 0
    assert "legend" not in capsys.readouterr().out


@pytest.mark.parametrize("text", [
    "log(((t + 1)/(2*t))**(-t/2 - 1/2)/sqrt(t))",      # js's dual as sympy leaves it
    "log(-1/(exp(2*u) - 2))/2",                        # js's conjugate
    "gamma*log(-gamma/(gamma - 1))/2 - (gamma - 1)*log(-(gamma - 1)/gamma)/2 "
    "- log(1/(2*gamma))/2 - log(-1/(2*(gamma - 1)))/2",  # js's B_f(γ)
])
def test_readable_forms_are_equal_to_the_exact_ones(text):
    import sympy as sp
    from w2sg.theory_cli import readable
    nice = readable(text)
    assert "**(" not in nice and "I" not in nice
    names = {"gamma": sp.Symbol("gamma")}  # not sympy's Γ function
    for x in (0.05, 0.2, 0.3, 0.45):   # in every variable's domain (t > 0, u < log 2 / 2, γ < 1/2)
        subs = {"t": x, "u": x - 0.5, "gamma": x}
        a = complex(sp.sympify(text, locals=names).subs(subs).evalf())
        b = complex(sp.sympify(nice.replace("γ", "gamma"), locals=names).subs(subs).evalf())
        assert a.imag == 0 and b == pytest.approx(a, rel=1e-12)
