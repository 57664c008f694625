"""``w2sg divergences``, ``w2sg derive`` and ``w2sg bound``: the symbolic core on the command line."""
from __future__ import annotations

import argparse
import math
import sys

from theory.generators import NAMED, GeneratorError, get_generator


def _usage(message: str):
    from w2sg.errors import UsageError
    return UsageError(message)


def _fmt(x) -> str:
    if x is None:
        return "∞/—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _typed_bounded(fn, spec: str, *args, what: str):
    """``bounded(fn, spec, *args)``; for a typed generator, an arithmetic failure inside the
    symbolic or numeric work (a number too large for numpy, an overflow) is one line, not a
    traceback.  For the named generators such a failure is a bug and is raised as it is."""
    from theory.limits import bounded
    try:
        return bounded(fn, spec, *args, what=what)
    except (TypeError, ArithmeticError, ValueError) as exc:
        key = spec.strip()
        if key in NAMED or key.startswith("alpha:") or isinstance(exc, GeneratorError):
            raise
        raise _usage(f"{what} failed on this generator ({type(exc).__name__}: {exc}); "
                     f"try smaller constants or a simpler expression") from None


def _divergence_rows(gamma: float) -> list[dict]:
    from theory.report import summary
    return [summary(get_generator(n), gamma=gamma) for n in NAMED]


def _cmd_divergences(args) -> int:
    from w2sg.output import emit
    from theory.limits import bounded
    _check_gamma(args.gamma)
    from theory.limits import symbolic_timeout
    # one child for the whole table (the rows share sympy's caches): the limit of 4 derivations
    rows = bounded(_divergence_rows, args.gamma, seconds=4 * symbolic_timeout(),
                   what="the table of divergences")
    cols = [("name", 11), ("f2_at_1", 8), ("symmetric", 9), ("bounded", 7), ("max_value", 9),
            ("disagreement_pull_text", 8), ("conjugate_domain", 18), ("B_f", 9), ("L_f_logit", 9)]
    heads = {"disagreement_pull_text": "C7 pull", "conjugate_domain": "dom f*",
             "L_f_logit": "L_f(z)", "f2_at_1": "f''(1)", "max_value": "max D_f"}
    lines = ["  ".join(heads.get(c, c).ljust(w) for c, w in cols)]
    for r in rows:
        cells = []
        for c, w in cols:
            v = r[c]
            if c == "conjugate_domain":
                v = f"(-∞, {_fmt(v[1]) if v[1] is not None else '∞'}{']' if r['conjugate_domain_hi_closed'] else ')'}"
            cells.append(_fmt(v).ljust(w))
        lines.append("  ".join(cells))
    lines.append(f"B_f, L_f(z): bound and logit-Lipschitz constant of the binary loss on "
                 f"[γ, 1−γ], γ = {args.gamma}")
    emit(rows, args.json, "\n".join(lines))
    return 0


def _invert_logs(expr):
    """``log(a) → −log(1/a)`` wherever ``1/a`` (expanded) is shorter: ``log(−1/(e−2))`` →
    ``−log(2 − e)``."""
    import sympy as sp

    def flip(e):
        inv = sp.expand(1 / e.args[0])
        return -sp.log(inv) if len(sp.sstr(inv)) < len(sp.sstr(e.args[0])) else e
    return expr.replace(lambda e: isinstance(e, sp.log), flip)


def _clumsiness(expr) -> int:
    """Length of the printed form, plus a penalty for each logarithm of a power with a
    symbolic exponent (``log(x**(−t/2))`` reads worse than ``−t/2·log(x)``)."""
    import sympy as sp
    logs = [e for e in expr.atoms(sp.log)
            if any(isinstance(p, sp.Pow) and not p.exp.is_number for p in sp.preorder_traversal(e.args[0]))]
    return len(sp.sstr(expr)) + 40 * len(logs)


def readable(text: str | None) -> str | None:
    """``text`` (a sympy expression in t, u, l or gamma) in its least clumsy equal form
    (:func:`_clumsiness`) among itself, ``simplify(expand_log(·))``, ``factor_terms(·)`` and
    :func:`_invert_logs` (t > 0, γ > 0), γ written as γ; a form that brings in ``I`` (a
    complex branch) is never chosen."""
    import sympy as sp
    if text is None:
        return None
    names = {"t": sp.Symbol("t", positive=True), "gamma": sp.Symbol("gamma", positive=True),
             "u": sp.Symbol("u", real=True), "l": sp.Symbol("l", real=True)}
    try:
        expr = sp.sympify(text, locals=names)
    except (sp.SympifyError, TypeError, SyntaxError):
        return text.replace("gamma", "γ")
    forms = [expr]
    for step in (lambda e: sp.simplify(sp.expand_log(e, force=True)), sp.factor_terms, _invert_logs):
        try:
            form = step(expr)
        except Exception:  # noqa: BLE001  (a failed rewrite leaves the exact form as it is)
            continue
        if not form.has(sp.I):
            forms.append(form)
    return sp.sstr(min(forms, key=_clumsiness)).replace("gamma", "γ")


#: Fields shown in a shorter equal form by ``w2sg derive`` (text and JSON).
READABLE_FIELDS = ("dual", "conjugate", "B_f_expr", "L_f_prob_expr")


def _derive_row(spec: str, gamma: float) -> dict:
    from theory.report import summary
    row = summary(get_generator(spec), gamma=gamma, with_inequalities=True)
    for key in READABLE_FIELDS:
        row[key] = readable(row.get(key))
    return row


def _endpoint(value, text: str | None, lo: bool) -> str:
    if value is None:
        return "−∞" if lo else "∞"
    return text if text is not None else _fmt(value)


def _interval(row: dict) -> str:
    """``dom f*`` as an interval: its upper end is f'(∞), written exactly when it is."""
    lo, hi = row["conjugate_domain"]
    hi_text = row.get("fprime_at_inf_text") if (hi is not None and row.get("fprime_at_inf") is not None
                                                and abs(hi - row["fprime_at_inf"]) < 1e-12) else None
    return (f"({_endpoint(lo, None, True)}, {_endpoint(hi, hi_text, False)}"
            f"{']' if row['conjugate_domain_hi_closed'] else ')'}")


#: What each line of ``w2sg derive`` means (printed under it unless --no-legend).
LEGEND = (
    ("generator", "f(t), convex on (0, ∞) with f(1) = 0; D_f(P‖Q) = Σ q f(p/q); the W2SG loss is "
                  "R_f(F_sw, F_w) = E_x D_f(F_sw(x) ‖ F_w(x)) (strong model first)"),
    ("convexity", "how convexity was established (named: by hand; else the symbolic check)"),
    ("f2_at_1", "f''(1): D_f ≈ f''(1)/2 · χ² for nearby P, Q (C2); None where f is not twice "
                "differentiable at 1 (tv: |t−1|/2 has a kink there)"),
    ("dual", "f◇(t) = t f(1/t): D_f◇(P‖Q) = D_f(Q‖P)"),
    ("symmetric", "f◇ = f, i.e. D_f(P‖Q) = D_f(Q‖P)"),
    ("f_at_0", "f(0+) = lim f(t) as t → 0+ (∞/— : infinite)"),
    ("fprime_at_inf", "f'(∞) = lim f(t)/t as t → ∞"),
    ("bounded / max_value", "sup D_f = f(0+) + f'(∞), reached by disjoint P and Q"),
    ("conjugate", "f*(u) = sup_t (u t − f(t)) (C1 variational form: D_f = sup_T E_P T − E_Q f*(T))"),
    ("conjugate_domain", "where f* is finite: the interval (−∞, f'(∞)), closed when f'(∞) is attained"),
    ("logratio_form", "f(e^l): the generator in the log-ratio l = log t"),
    ("disagreement_pull", "lim t f'(t) as t → 0+ (C7): ∂_z D_f(σ(z)‖w) → w · this as the student "
                          "confidently contradicts label w; < 0 pulls back, 0 stops pulling"),
    ("γ, B_f, L_f", "C6 constants of the binary loss with probabilities in [γ, 1−γ]: B_f bounds "
                    "the loss, L_f_prob is its Lipschitz constant in the probability s, "
                    "L_f_logit in the logit z (s = σ(z)); *_expr: as formulas in γ"),
    ("bound", "classical lower bounds on D_f in terms of δ = TV(P, Q): tight or loose, and "
              "whether they hold for this f"),
)


def _derive_text(row: dict, legend: bool) -> str:
    width = max(len(k) for k in row)
    text = []
    for k, v in row.items():
        if k == "classical_bounds":
            for b in v:
                text.append(f"{'bound':<{width}}  D_f ≥ {b['name']}: "
                            f"{'tight' if b['tight'] else 'loose'}, "
                            f"{'valid' if b['valid'] else 'INVALID'} ({b['source']})")
        elif k == "conjugate_domain":
            text.append(f"{k:<{width}}  {_interval(row)}")
        elif k == "conjugate" and v is None:
            text.append(f"{k:<{width}}  no closed form found (f* is computed numerically)")
        elif k != "conjugate_domain_hi_closed":
            text.append(f"{k:<{width}}  {_fmt(v)}")
    if legend:
        text += ["", "legend (*_text: the exact value of the field above it; ∞/—: infinite or undefined):"]
        text += [f"  {name:<20} {meaning}" for name, meaning in LEGEND]
    return "\n".join(text)


def _cmd_derive(args) -> int:
    from w2sg.output import emit
    _check_gamma(args.gamma)
    row = _typed_bounded(_derive_row, args.f, args.gamma, what=f"deriving {args.f!r}")
    emit(row, args.json, _derive_text(row, getattr(args, "legend", True)))
    return 0


def _check_not_tiny(name: str, value: float) -> None:
    """Refuse subnormal numbers (0 < |x| < 2.2e-308): no arithmetic on them is accurate."""
    if 0 < abs(value) < sys.float_info.min:
        raise _usage(f"{name} = {value} is below the smallest normal float "
                     f"({sys.float_info.min:.3g}); no result would be accurate: use a larger value")


def _check_range(name: str, value: float, lo: float, hi: float, lo_open=False, hi_open=True, hint=""):
    ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok or math.isnan(value):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise _usage(f"{name} = {value} is outside {lb}{lo}, {hi}{rb}{hint}")
    _check_not_tiny(name, value)


#: Smallest γ accepted: below it ``1 − γ`` carries a float64 rounding error over 10% of γ,
#: so the numeric constants on ``[γ, 1−γ]`` (the logit Lipschitz search) would be wrong.
GAMMA_MIN = 1e-15


def _check_gamma(gamma: float) -> None:
    _check_range("--gamma", gamma, 0, 0.5, lo_open=True, hint="; γ lies in (0, 1/2), e.g. --gamma 0.05")
    if gamma < GAMMA_MIN:
        raise _usage(f"--gamma = {gamma} is below {GAMMA_MIN:g}: 1 − γ cannot be represented "
                     f"accurately in float64 there, so the constants on [γ, 1−γ] would be wrong; "
                     f"use --gamma ≥ {GAMMA_MIN:g}")


def _check_nonnegative(name: str, value: float, what: str = "") -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise _usage(f"{name} = {value} must be a finite number ≥ 0{what}")
    _check_not_tiny(name, value)


def _check_bound_args(args) -> None:
    """Every numeric argument of ``w2sg bound KIND``, checked before any symbolic work."""
    if args.kind == "tv":
        _check_range("--delta", args.delta, 0, 1, hint="; total variation lies in [0, 1)")
    elif args.kind == "tv-inverse":
        _check_nonnegative("--divergence", args.divergence)
    elif args.kind == "error":
        _check_range("--weak-error", args.weak_error, 0, 1, hi_open=False)
        _check_nonnegative("--risk/--disagreement", args.risk, " (R_f is a divergence)")
    else:  # samples
        _check_gamma(args.gamma)
        if not (args.eps > 0 and math.isfinite(args.eps)):
            raise _usage(f"--eps = {args.eps} must be a finite number > 0")
        _check_not_tiny("--eps", args.eps)
        _check_range("--delta", args.delta, 0, 1, lo_open=True, hint="; δ lies in (0, 1)")
        if (args.class_size is None) == (args.radius is None):
            raise _usage("give exactly one of --class-size N or --radius R (R = Λρ)")
        if args.class_size is not None and args.class_size < 1:
            raise _usage(f"--class-size = {args.class_size} must be ≥ 1")
        if args.radius is not None and not (args.radius > 0 and math.isfinite(args.radius)):
            raise _usage(f"--radius = {args.radius} must be a finite number > 0")
        if args.radius is not None:
            _check_not_tiny("--radius", args.radius)


def _bound_result(spec: str, args) -> tuple[dict, str]:
    from theory import bounds, joint_range
    gen = get_generator(spec)
    if args.kind == "tv":
        out = {"f": gen.name, "delta": args.delta,
               "lower_bound": joint_range.lower_bound(gen, args.delta),
               "convex_envelope": joint_range.convex_envelope(gen, args.delta)}
        text = (f"D_f(P‖Q) ≥ {out['lower_bound']:.10g} whenever TV(P,Q) = {args.delta} "
                f"(two-point infimum L_f); convex envelope {out['convex_envelope']:.10g}")
    elif args.kind == "tv-inverse":
        out = {"f": gen.name, "divergence": args.divergence,
               "max_tv": joint_range.tv_inverse(gen, args.divergence)}
        text = f"D_f = {args.divergence} ⇒ TV ≤ {out['max_tv']:.10g}"
    elif args.kind == "error":
        lo, hi = bounds.error_interval(gen, args.weak_error, args.risk)
        radius = joint_range.tv_inverse(gen, args.risk)
        out = {"f": gen.name, "weak_error": args.weak_error, "risk": args.risk,
               "max_tv": radius, "lower": lo, "upper": hi}
        text = f"err(F_sw) ∈ [{lo:.6g}, {hi:.6g}]  (|err_sw − err_w| ≤ L̆_f⁻¹(R_f) = {radius:.6g})"
    else:  # samples
        try:
            sizes = bounds.sample_size(gen, args.gamma, args.eps, args.delta,
                                       args.class_size, args.radius)
        except bounds.SampleSizeError as exc:
            raise _usage(str(exc)) from None
        out = {"f": gen.name, **sizes}
        text = (f"n ≥ {out['n']} examples for excess risk ≤ {args.eps} with prob. ≥ {1 - args.delta}"
                f"  (B_f = {out['B_f']:.6g}, L_f = {out['L_f']:.6g})")
    return out, text


def _cmd_bound(args) -> int:
    from w2sg.output import emit
    _check_bound_args(args)
    out, text = _typed_bounded(_bound_result, args.f, args, what=f"the {args.kind} bound for {args.f!r}")
    emit(out, args.json, text)
    return 0


_F_HELP = ("the generator f: a name (kl, js, tv, alpha:0.5, ...; `w2sg divergences` lists them) "
           "or an expression in t, e.g. '(t-1)**2/(t+1)'")
_JSON_HELP = "print the result as JSON (machine-readable)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("divergences", help="table of every named generator and its derived quantities")
    p.add_argument("--gamma", type=float, default=0.05,
                   help="γ: the binary loss is taken on probabilities in [γ, 1−γ] for the C6 "
                        "constants B_f and L_f (default 0.05)")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)
    p.set_defaults(func=_cmd_divergences)

    p = sub.add_parser("derive", help="derive everything for one generator (a name or an expression in t)",
                       description="Every derived quantity of one generator f, with a legend of "
                                   "the symbols (omit it with --no-legend).")
    p.add_argument("--f", required=True, help=_F_HELP)
    p.add_argument("--gamma", type=float, default=0.05,
                   help="γ: the binary loss is taken on probabilities in [γ, 1−γ] for the C6 "
                        "constants B_f, L_f_prob, L_f_logit (default 0.05)")
    p.add_argument("--no-legend", dest="legend", action="store_false",
                   help="omit the legend of symbols under the table")
    p.add_argument("--json", action="store_true", help=_JSON_HELP + " (the raw field names and sympy strings)")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("bound", help="C3/C4/C6 bounds: tv, tv-inverse, error, samples")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True,
                             parser_class=type(p))
    k = kinds.add_parser("tv", help="L_f(δ): least D_f at total variation δ")
    k.add_argument("--f", required=True, help=_F_HELP)
    k.add_argument("--delta", type=float, required=True,
                   help="δ: the total variation TV(P, Q) in [0, 1)")
    k = kinds.add_parser("tv-inverse", help="largest TV compatible with divergence R")
    k.add_argument("--f", required=True, help=_F_HELP)
    k.add_argument("--divergence", type=float, required=True,
                   help="R ≥ 0: a value of D_f(P‖Q); prints the largest TV(P, Q) it allows, L̆_f⁻¹(R)")
    k = kinds.add_parser("error", help="C4: interval for the strong error",
                         description="C4: |err(F_sw) − err(F_w)| ≤ L̆_f⁻¹(R_f(F_sw, F_w)); prints "
                                     "the interval this allows for the student's error.")
    k.add_argument("--f", required=True, help=_F_HELP)
    k.add_argument("--weak-error", type=float, required=True,
                   help="err(F_w) in [0, 1]: the weak supervisor's error, E_x TV(F*(x), F_w(x))")
    k.add_argument("--risk", "--r-f", "--disagreement", dest="risk", type=float, required=True,
                   metavar="R_F",
                   help="R_f(F_sw, F_w) ≥ 0: the W2SG loss of the student against its weak "
                        "supervisor, E_x D_f(F_sw(x) ‖ F_w(x)) (--disagreement is the old name)")
    k = kinds.add_parser("samples", help="C6: sample size for excess risk ε")
    k.add_argument("--f", required=True, help=_F_HELP)
    k.add_argument("--gamma", type=float, required=True,
                   help="γ in (0, 1/2): probabilities are clipped to [γ, 1−γ] (gives B_f, L_f)")
    k.add_argument("--eps", type=float, required=True, help="ε > 0: the excess risk to guarantee")
    k.add_argument("--delta", type=float, required=True,
                   help="δ in (0, 1): the bound holds with probability ≥ 1 − δ")
    k.add_argument("--class-size", type=int,
                   help="|G|: a finite class of heads (give this or --radius)")
    k.add_argument("--radius", type=float,
                   help="R = Λρ: linear heads with ‖θ‖ ≤ Λ on features with ‖h(x)‖ ≤ ρ "
                        "(give this or --class-size)")
    for k in kinds.choices.values():
        k.add_argument("--json", action="store_true", help=_JSON_HELP)
    p.set_defaults(func=_cmd_bound)
