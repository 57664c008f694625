"""Numerics lab: a synthetic W2SG world and numerical checks of every claim (C1–C8).

Public API
----------
* :mod:`numerics.world` — :func:`make_world`, :class:`World` (logistic teacher with label
  noise, weak supervisor of controllable quality, strong representation of controllable
  richness, exact discrete populations), :class:`Population`.
* :mod:`numerics.fit` — :func:`fit_head` (minimise the empirical ``R_f(g∘h_s, F_w)`` for
  ``"ce"`` or any generator, in log space; L-BFGS or plain GD), :class:`FitResult`
  (``converged``, ``grad_norm``, ``require_converged()``), :class:`UnconvergedFit`.
* :mod:`numerics.checks` — ``check_c1`` … ``check_c8`` (``quick: bool, seed: int`` →
  :class:`numerics.result.CheckResult`), :func:`numerics.checks.get_check`;
  :func:`numerics.checks.c5.recheck` re-checks a stored counterexample.
* :mod:`numerics.strategies` — hypothesis strategies.
* :mod:`numerics.reference` — independent brute-force oracles (divergence, two-point
  curve, envelope inverse, loss constants).
* :mod:`numerics.cli` — ``w2sg check``.
"""
