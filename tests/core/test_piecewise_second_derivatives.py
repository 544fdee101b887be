"""Second derivatives through ops whose gradient is chosen by a mask or an index.

ReLU's gradient is the incoming gradient where x > 0: the mask does not move with
x, so the derivative of that gradient in x is zero, and PyTorch returns zeros for
it. nnlite's backward functions mark such inputs with ``autograd.chosen_by`` so
the graph reaches them (see its docstring); these tests hold the results to
PyTorch's and show that a first-order backward records nothing for it.
"""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip

F = nl.nn.functional
X = np.array([[-1.3, 0.4, 2.2, -0.2, 0.9], [0.7, -2.5, 1.1, 3.1, -0.6]])
POOL_X = np.random.default_rng(0).standard_normal((1, 2, 4, 6))

# name -> (input, function of (library's functional module, tensor))
CASES = {
    "relu": (X, lambda f, x: f.relu(x)),
    "relu_inplace": (X, lambda f, x: f.relu(x * 1.0, inplace=True)),
    "leaky_relu": (X, lambda f, x: f.leaky_relu(x, 0.1)),
    "hardtanh": (X, lambda f, x: f.hardtanh(x, -1.0, 1.0)),
    "relu6": (X * 3, lambda f, x: f.relu6(x)),
    "max_pool1d": (X[None], lambda f, x: f.max_pool1d(x, 2)),
    "max_pool2d": (POOL_X, lambda f, x: f.max_pool2d(x, 2)),
    "abs": (X, lambda f, x: x.abs()),
    "l1_loss": (X, lambda f, x: f.l1_loss(x, x.detach() * 0 + 0.5, reduction="none")),
}


def _second(lib, x0, fn, v_seed=1):
    """d/dx of <v, dy/dx . 1>: the Hessian of sum(f(x)) applied to v, here all zeros."""
    x = lib.tensor(x0, requires_grad=True, dtype=lib.float64)
    y = fn(F if lib is nl else lib.nn.functional, x)
    (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
    v = np.random.default_rng(v_seed).standard_normal(g.shape)
    (h,) = lib.autograd.grad((g * lib.tensor(v, dtype=lib.float64)).sum(), x)
    return np.asarray(h.numpy(force=True) if lib is not nl else h.data)   # force: PyTorch may answer a ZeroTensor


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_is_zero_as_in_pytorch(name):
    x0, fn = CASES[name]
    ours = _second(nl, x0, fn)
    assert ours.shape == x0.shape and not ours.any()
    torch = torch_or_skip()
    theirs = _second(torch, x0, fn)
    np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_hardsigmoid_second_derivative_is_zero():
    # PyTorch has no second derivative for hardsigmoid; nnlite's is the zero its slope implies
    assert not _second(nl, X, lambda f, x: f.hardsigmoid(x)).any()


def test_linear_relu_second_derivatives_reach_input_weight_and_bias():
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    xa, wa, ba = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    v = rng.standard_normal((4, 3))

    def run(lib, fused):
        x, w, b = (lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in (xa, wa, ba))
        if fused:
            y = nl.ops.nn_ops.linear_relu(x, w, b)
        else:
            y = lib.nn.functional.relu(lib.nn.functional.linear(x, w, b))
        (gx,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        out = lib.autograd.grad((gx * lib.tensor(v, dtype=lib.float64)).sum(), (x, w, b))
        return [np.asarray(t.detach().numpy() if lib is torch else t.data) for t in out]

    theirs = run(torch, False)
    for fused in (True, False):
        ours = run(nl, fused)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert not theirs[0].any() and not theirs[2].any() and theirs[1].any()   # x, b zero; W not


def test_prelu_mixed_second_derivatives_match_torch():
    torch = torch_or_skip()
    slope = np.array([0.25])

    def run(lib):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        a = lib.tensor(slope, dtype=lib.float64, requires_grad=True)
        (gx,) = lib.autograd.grad(lib.nn.functional.prelu(x, a).sum(), x, create_graph=True)
        out = lib.autograd.grad((gx * gx).sum(), (x, a))
        return [np.asarray(t.detach().numpy() if lib is torch else t.data) for t in out]

    for ours, theirs in zip(run(nl), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_prelu_mixed_second_derivatives_at_zero_and_nan_match_torch():
    torch = torch_or_skip()
    values = [0.0, -1.0, 2.0, -0.0, np.nan]

    def run(lib):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        a = lib.tensor([0.25], dtype=lib.float64, requires_grad=True)
        gx, ga = lib.autograd.grad(lib.nn.functional.prelu(x, a).sum(), (x, a), create_graph=True)
        (d_ga_dx,) = lib.autograd.grad(ga.sum(), x, retain_graph=True)
        (d_gx_da,) = lib.autograd.grad(gx.sum(), a)
        return [np.asarray(t.detach().numpy() if lib is torch else t.data) for t in (gx, ga, d_ga_dx, d_gx_da)]

    for ours, theirs in zip(run(nl), run(torch)):
        np.testing.assert_array_equal(ours, theirs)


def test_prelu_mixed_second_derivatives_are_zero_at_zero():
    x = nl.tensor([0.0, -1.0, 2.0], dtype=nl.float64, requires_grad=True)
    a = nl.tensor([0.25], dtype=nl.float64, requires_grad=True)
    gx, ga = nl.autograd.grad(F.prelu(x, a).sum(), (x, a), create_graph=True)
    assert nl.autograd.grad(ga.sum(), x, retain_graph=True)[0].tolist() == [0.0, 1.0, 0.0]
    assert nl.autograd.grad(gx.sum(), a)[0].tolist() == [1.0]   # only x = -1 has slope a


def test_a_first_order_backward_records_no_extra_node():
    x = nl.tensor(X, requires_grad=True)
    y = F.relu(x)
    (g,) = nl.autograd.grad(y.sum(), x)
    assert g.grad_fn is None and not g.requires_grad
    np.testing.assert_array_equal(g.data, (X > 0).astype(np.float32))
    (g,) = nl.autograd.grad(F.relu(x).sum(), x, create_graph=True)
    assert g.requires_grad   # with a graph, it now depends on x (with derivative zero)


def test_third_order_through_relu_then_square_matches_torch():
    torch = torch_or_skip()

    def run(lib):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        y = (lib.nn.functional.relu(x) ** 3).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x, create_graph=True)
        (k,) = lib.autograd.grad(h.sum(), x)
        return np.asarray(k.detach().numpy() if lib is torch else k.data)

    np.testing.assert_allclose(run(nl), run(torch), rtol=1e-12)


@pytest.mark.parametrize("name", ["remainder", "fmod"])
def test_rounded_quotients_have_zero_second_derivatives_as_in_pytorch(name):
    torch = torch_or_skip()
    a0, b0 = np.array([5.3, -2.2, 7.9]), np.array([2.0, 1.5, -3.0])

    def run(lib):
        a = lib.tensor(a0, dtype=lib.float64, requires_grad=True)
        b = lib.tensor(b0, dtype=lib.float64, requires_grad=True)
        _, gb = lib.autograd.grad(getattr(lib, name)(a, b).sum(), [a, b], create_graph=True)
        return [np.asarray(t.numpy(force=True) if lib is torch else t.data)
                for t in lib.autograd.grad((gb * gb).sum(), [a, b])]

    for ours, theirs in zip(run(nl), run(torch)):
        np.testing.assert_array_equal(ours, theirs)
