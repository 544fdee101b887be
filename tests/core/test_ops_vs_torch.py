"""Every op's value and gradient equal to PyTorch's (float64), and Hessian-vector products."""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from op_table import CASES, make_inputs



@pytest.mark.parametrize("name,fn,torch_fn,shapes,kind", CASES, ids=[c[0] for c in CASES])
def test_value_and_gradient_match_torch(name, fn, torch_fn, shapes, kind):
    torch = torch_or_skip()
    arrays = make_inputs(shapes, kind, seed=1)
    ours = [nl.tensor(a, dtype=nl.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    y, ty = fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-7, atol=1e-12)
    v = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(nl.tensor(v, dtype=nl.float64))
    ty.backward(torch.tensor(v, dtype=torch.float64))
    for a, ta in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", ["tanh_mlp", "softmax_ce", "gelu"])
def test_hessian_vector_product_matches_torch(name):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    xa, wa, va = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal((3, 5))

    def f(lib, x, w):
        if name == "tanh_mlp":
            return (lib.tanh(x @ w) ** 2).sum()
        if name == "softmax_ce":
            return -(lib.log_softmax(x @ w, dim=1)[:, 0]).sum()
        return (lib.nn.functional.gelu(x @ w) * (x @ w)).sum()

    x, w = nl.tensor(xa, dtype=nl.float64), nl.tensor(wa, dtype=nl.float64, requires_grad=True)
    (g,) = nl.grad(f(nl, x, w), w, create_graph=True)
    (hv,) = nl.grad((g * nl.tensor(va)).sum(), w)
    tx, tw = torch.tensor(xa), torch.tensor(wa, requires_grad=True)
    (tg,) = torch.autograd.grad(f(torch, tx, tw), tw, create_graph=True)
    (thv,) = torch.autograd.grad((tg * torch.tensor(va)).sum(), tw)
    np.testing.assert_allclose(hv.data, thv.numpy(), rtol=1e-7, atol=1e-12)
