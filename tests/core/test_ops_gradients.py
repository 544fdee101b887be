"""Every op's gradient against central differences (float64), and second order where it matters."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from op_table import CASES, SECOND_ORDER, make_inputs


def _leaves(arrays):
    return [nl.tensor(a, dtype=nl.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name,fn,torch_fn,shapes,kind", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, fn, torch_fn, shapes, kind):
    assert gradcheck(fn, _leaves(make_inputs(shapes, kind)), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name,fn,torch_fn,shapes,kind",
                         [c for c in CASES if c[0] in SECOND_ORDER],
                         ids=[c[0] for c in CASES if c[0] in SECOND_ORDER])
def test_gradgradcheck(name, fn, torch_fn, shapes, kind):
    assert gradgradcheck(fn, _leaves(make_inputs(shapes, kind)), atol=1e-5, rtol=1e-4)


def test_third_derivative_of_a_cubic():
    x = nl.tensor([0.5, -1.5, 2.0], dtype=nl.float64, requires_grad=True)
    (g1,) = nl.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = nl.grad(g1.sum(), x, create_graph=True)
    (g3,) = nl.grad(g2.sum(), x)
    np.testing.assert_allclose(g1.data, 4 * x.data ** 3)
    np.testing.assert_allclose(g2.data, 12 * x.data ** 2)
    np.testing.assert_allclose(g3.data, 24 * x.data)


def test_gradcheck_detects_a_wrong_gradient():
    class Wrong(nl.autograd.Function):
        def forward(self, a):
            return a * a

        def backward(self, grad):
            return grad * self.inputs[0] * 3.0  # should be 2x

    x = nl.tensor([1.0, 2.0], dtype=nl.float64, requires_grad=True)
    with pytest.raises(nl.autograd.GradcheckError, match="analytic"):
        gradcheck(lambda a: Wrong.apply(a), [x])
