"""Generated torch functions (fdiv_torch.codegen) equal the symbolic value; autograd equals g'."""
import numpy as np
import pytest
import sympy as sp
import torch

from fdiv_torch.codegen import logratio_grad_torch, logratio_torch
from theory import NAMED, get_generator
from theory.parsing import T

GENS = list(NAMED) + ["alpha:0.5", "alpha:-1", "(t-1)**2/(t+1)", "Max(0, t-1) + (t-1)**2"]


@pytest.mark.parametrize("name", GENS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generated_torch_equals_symbolic_and_autograd_matches(name, dtype):
    gen = get_generator(name)
    ls = torch.tensor([-4.0, -0.5, 0.2, 3.0], dtype=dtype, requires_grad=True)
    out = logratio_torch(gen)(ls)
    assert out.dtype == dtype
    exact = np.array([float(gen.expr.subs(T, sp.exp(sp.Rational(str(v)))).evalf(30)) for v in [-4.0, -0.5, 0.2, 3.0]])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(out.detach().numpy(), exact, rtol=tol, atol=tol)
    out.sum().backward()
    if not gen.expr.has(sp.Max, sp.Abs):
        np.testing.assert_allclose(ls.grad.numpy(), logratio_grad_torch(gen)(ls.detach()).numpy(), rtol=tol, atol=tol)
