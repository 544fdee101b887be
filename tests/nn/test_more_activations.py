"""Threshold, Hardshrink, Softshrink, Tanhshrink, CELU, Softmin, Softmax2d and RReLU against PyTorch."""
import doctest

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.ops import composed_activations
from helpers import torch_or_skip

nn = nl.nn
F = nn.functional

# (id, function of (functional module, tensor)): the same call on nnlite's F and on torch's
CASES = [
    ("threshold", lambda f, x: f.threshold(x, 0.5, 2.0)),
    ("threshold_at_0", lambda f, x: f.threshold(x, 0.0, -1.5)),
    ("hardshrink", lambda f, x: f.hardshrink(x)),
    ("hardshrink_1", lambda f, x: f.hardshrink(x, 1.0)),
    ("hardshrink_negative", lambda f, x: f.hardshrink(x, -1.0)),
    ("softshrink", lambda f, x: f.softshrink(x)),
    ("softshrink_1", lambda f, x: f.softshrink(x, 1.0)),
    ("softshrink_0", lambda f, x: f.softshrink(x, 0.0)),
    ("tanhshrink", lambda f, x: f.tanhshrink(x)),
    ("celu", lambda f, x: f.celu(x)),
    ("celu_2", lambda f, x: f.celu(x, 2.0)),
    ("celu_0.5", lambda f, x: f.celu(x, 0.5)),
    ("celu_-1.5", lambda f, x: f.celu(x, -1.5)),
    ("softmin_last", lambda f, x: f.softmin(x, -1)),
    ("softmin_0", lambda f, x: f.softmin(x, 0)),
    ("rrelu_eval", lambda f, x: f.rrelu(x)),
    ("rrelu_eval_bounds", lambda f, x: f.rrelu(x, 0.2, 0.6, training=False)),
]
IDS = [c[0] for c in CASES]
SHAPES = [(4, 6), (3, 1, 5), (1, 7), (2, 3, 3, 5)]
CORNERS = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 40.0, -40.0]   # every case's corners, and far values


def _with_corners(rng, shape):
    x = rng.standard_normal(shape) * 2
    x.flat[:min(len(CORNERS), x.size)] = CORNERS[:x.size]
    return x


def _pair(torch, data, transposed):
    """(nnlite leaf, nnlite input, torch leaf, torch input); transposed: the input is a
    non-contiguous view (the leaf's last two dims swapped)."""
    if not transposed:
        x, xt = nl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        return x, x, xt, xt
    base = np.ascontiguousarray(np.swapaxes(data, -1, -2))
    x, xt = nl.tensor(base, requires_grad=True), torch.tensor(base, requires_grad=True)
    return x, x.transpose(-1, -2), xt, xt.transpose(-1, -2)


def _first_and_second(lib, fn, leaf, x, v, w):
    y = fn(lib, x)
    (g,) = (nl.grad if lib is F else _torch_grad)((y * v).sum(), leaf, create_graph=True)
    (gg,) = (nl.grad if lib is F else _torch_grad)((g * w).sum(), leaf)
    return y, g, gg


def _torch_grad(out, inp, create_graph=False):
    import torch
    return torch.autograd.grad(out, inp, create_graph=create_graph)


@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, fn", CASES, ids=IDS)
def test_value_gradient_and_second_derivative_match_torch(name, fn, shape, transposed):
    """float64 with the corners themselves among the inputs: PyTorch's slope there, and its zero
    second derivative for the piecewise-linear ones."""
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    data = _with_corners(rng, shape)
    leaf, x, leaf_t, xt = _pair(torch, data, transposed)
    v, w = rng.standard_normal(shape), rng.standard_normal(leaf.shape)   # w weighs the leaf's gradient
    y, g, gg = _first_and_second(F, fn, leaf, x, nl.tensor(v), nl.tensor(w))
    yt, gt, ggt = _first_and_second(torch.nn.functional, fn, leaf_t, xt, torch.tensor(v), torch.tensor(w))
    assert y.dtype == nl.float64 and y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gg.data, ggt.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, fn", CASES, ids=IDS)
def test_nan_value_and_gradient_match_torch(name, fn):
    torch = torch_or_skip()
    data = np.array([np.nan, 0.5, -0.5, 0.0, 2.0])
    x, xt = nl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    y, yt = fn(F, x), fn(torch.nn.functional, xt)
    (g,), (gt,) = nl.grad(y.sum(), x), torch.autograd.grad(yt.sum(), xt)
    np.testing.assert_array_equal(np.isnan(y.data), np.isnan(yt.detach().numpy()))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(g.data, gt.numpy(), rtol=1e-14)


def _away_from_corners(rng, shape, corners=(0.0, 0.5, 1.0)):
    x = rng.uniform(-3.0, 3.0, shape)
    for c in corners:   # push every value at least 0.1 away from +-c
        for s in (c, -c):
            near = np.abs(x - s) < 0.1
            x[near] = s + 0.1 * np.sign(x[near] - s + 1e-300)
    return x


@pytest.mark.parametrize("name, fn", CASES, ids=IDS)
def test_gradients_against_finite_differences(name, fn):
    x = nl.tensor(_away_from_corners(np.random.default_rng(1), (3, 5)), requires_grad=True)
    assert gradcheck(lambda t: fn(F, t), [x], atol=1e-7, rtol=1e-6)
    assert gradgradcheck(lambda t: fn(F, t) * t, [x], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("fn", [lambda t: F.tanhshrink(t), lambda t: F.celu(t, 0.7), lambda t: F.softmin(t, 1)],
                         ids=["tanhshrink", "celu", "softmin"])
def test_smooth_ones_have_third_derivatives(fn):
    x = nl.tensor(_away_from_corners(np.random.default_rng(2), (2, 4)), requires_grad=True)
    assert gradgradcheck(lambda t: nl.grad(fn(t).sum(), t, create_graph=True)[0] * t, [x], atol=1e-6, rtol=1e-5)


def test_softmax2d_matches_torch_on_3d_and_4d():
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    for shape in [(2, 3, 4, 5), (3, 1, 7), (1, 1, 2, 2)]:
        data = rng.standard_normal(shape)
        x, xt = nl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        y, yt = nn.Softmax2d()(x), torch.nn.Softmax2d()(xt)
        np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-14, atol=1e-16)
        g = rng.standard_normal(shape)
        y.backward(nl.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert gradgradcheck(nn.Softmax2d(), [nl.tensor(rng.standard_normal((1, 3, 2, 2)), requires_grad=True)])


def test_modules_call_their_functions():
    rng = np.random.default_rng(4)
    x = nl.tensor(_with_corners(rng, (3, 4, 5)))
    pairs = [(nn.Threshold(0.5, 2.0), F.threshold(x, 0.5, 2.0)), (nn.Hardshrink(1.0), F.hardshrink(x, 1.0)),
             (nn.Softshrink(), F.softshrink(x)), (nn.Tanhshrink(), F.tanhshrink(x)),
             (nn.CELU(2.0), F.celu(x, 2.0)), (nn.Softmin(1), F.softmin(x, 1)),
             (nn.RReLU(0.1, 0.3).eval(), F.leaky_relu(x, 0.2))]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x).data, expected.data, err_msg=repr(module))


@pytest.mark.parametrize("make", [lambda m: m.Threshold(0.1, 20), lambda m: m.Threshold(0.1, 20.0, True),
                                  lambda m: m.Threshold(-1, 0.5, inplace=False),
                                  lambda m: m.Hardshrink(), lambda m: m.Hardshrink(1),
                                  lambda m: m.Softshrink(0.3), lambda m: m.Tanhshrink(), lambda m: m.CELU(),
                                  lambda m: m.CELU(2.0, True), lambda m: m.CELU(alpha=3),
                                  lambda m: m.Softmin(1), lambda m: m.Softmin(), lambda m: m.Softmax2d(),
                                  lambda m: m.RReLU(), lambda m: m.RReLU(0.1, 0.3, True),
                                  lambda m: m.RReLU(lower=0.2)])
def test_reprs_are_torch(make):
    torch = torch_or_skip()
    assert repr(make(nn)) == repr(make(torch.nn))


@pytest.mark.parametrize("op, kwargs", [("threshold", {"threshold": 0.5, "value": -2.0}), ("celu", {"alpha": 0.5}),
                                        ("rrelu", {})])
def test_inplace_overwrites_and_keeps_the_gradient(op, kwargs):
    rng = np.random.default_rng(5)
    data = _with_corners(rng, (4, 5))
    fn = getattr(F, op)
    expected = fn(nl.tensor(data), **kwargs).data
    plain = nl.tensor(data.copy())
    assert fn(plain, **kwargs, inplace=True) is plain
    np.testing.assert_array_equal(plain.data, expected)
    leaf = nl.tensor(data.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        fn(leaf, **kwargs, inplace=True)
    x = nl.tensor(data, requires_grad=True)
    v = nl.tensor(rng.standard_normal(data.shape))
    h = x * 1.0
    assert fn(h, **kwargs, inplace=True) is h
    (g_inplace,) = nl.grad((h * v).sum(), x)
    (g_out_of_place,) = nl.grad((fn(x * 1.0, **kwargs) * v).sum(), x)
    np.testing.assert_array_equal(g_inplace.data, g_out_of_place.data)
    for module in (nn.Threshold(0.5, -2.0, True), nn.CELU(0.5, True), nn.RReLU(inplace=True).eval()):
        y = nl.tensor(data.copy())
        assert module(y) is y


def test_rrelu_training_draws_a_slope_per_element():
    lower, upper = 0.1, 0.4
    rng = np.random.default_rng(6)
    data = -np.abs(rng.standard_normal((50, 40))) - 0.01     # all negative: every element gets a slope
    data[0, :5] = [0.0, 1.0, 2.5, 1e-300, 7.0]
    x = nl.tensor(data, requires_grad=True)
    nl.manual_seed(11)
    y = F.rrelu(x, lower, upper, training=True)
    (g,) = nl.grad(y.sum(), x)
    slope = g.data
    positive = data > 0
    assert np.all(slope[positive] == 1.0) and np.all(y.data[positive] == data[positive])
    drawn = slope[~positive]
    assert drawn.min() >= lower and drawn.max() <= upper
    np.testing.assert_allclose(y.data[~positive], drawn * data[~positive], rtol=1e-15)
    # uniform on [lower, upper]: mean and spread within loose bounds for 2000 draws
    assert abs(drawn.mean() - (lower + upper) / 2) < 6 * (upper - lower) / np.sqrt(12 * drawn.size)
    assert np.std(drawn) == pytest.approx((upper - lower) / np.sqrt(12), rel=0.1)
    # same seed, same slopes; a Generator of its own, too
    nl.manual_seed(11)
    np.testing.assert_array_equal(F.rrelu(nl.tensor(data), lower, upper, training=True).data, y.data)
    a = F.rrelu(nl.tensor(data), lower, upper, True, generator=nl.Generator(3)).data
    b = F.rrelu(nl.tensor(data), lower, upper, True, generator=nl.Generator(3)).data
    np.testing.assert_array_equal(a, b)
    # the module draws in training and is a leaky ReLU with the mean slope in eval
    layer = nn.RReLU(lower, upper)
    nl.manual_seed(11)
    np.testing.assert_array_equal(layer(nl.tensor(data)).data, y.data)
    np.testing.assert_array_equal(layer.eval()(nl.tensor(data)).data,
                                  F.leaky_relu(nl.tensor(data), (lower + upper) / 2).data)


def test_rrelu_training_second_derivative_is_zero_as_in_torch():
    torch = torch_or_skip()
    data = np.random.default_rng(7).standard_normal((3, 4))
    x = nl.tensor(data, requires_grad=True)
    (g,) = nl.grad(F.rrelu(x, training=True).sum(), x, create_graph=True)
    (gg,) = nl.grad((g * g).sum(), x)
    xt = torch.tensor(data, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.nn.functional.rrelu(xt, training=True).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad((gt * gt).sum(), xt)
    np.testing.assert_array_equal(gg.data, ggt.numpy())
    assert not gg.data.any()


def test_float32_stays_float32():
    data = _with_corners(np.random.default_rng(8), (3, 4)).astype(np.float32)
    for name, fn in CASES:
        x = nl.tensor(data, requires_grad=True)
        y = fn(F, x)
        (g,) = nl.grad(y.sum(), x)
        assert y.dtype == nl.float32 and g.dtype == nl.float32, name
    assert F.rrelu(nl.tensor(data), training=True).dtype == nl.float32


def test_bad_arguments_name_what_was_expected():
    x = nl.randn(2, 3)
    with pytest.raises(ValueError, match=r"softshrink: lambd must be >= 0, got -1.0"):
        F.softshrink(x, -1.0)
    with pytest.raises(ValueError, match=r"Softshrink: lambd must be >= 0"):
        nn.Softshrink(-0.5)
    with pytest.raises(ValueError, match="celu: alpha must not be 0"):
        F.celu(x, 0.0)
    with pytest.raises(ValueError, match="CELU: alpha must not be 0"):
        nn.CELU(0)
    with pytest.raises(ValueError, match=r"rrelu: lower must be <= upper, got lower=0.5, upper=0.1"):
        F.rrelu(x, 0.5, 0.1, training=True)
    with pytest.raises(ValueError, match=r"RReLU: lower must be <= upper"):
        nn.RReLU(0.5, 0.1)
    with pytest.raises(TypeError, match="threshold: threshold must be a real number.*got str"):
        F.threshold(x, "0.5", 1.0)
    with pytest.raises(TypeError, match="Threshold: value must be a real number"):
        nn.Threshold(0.5, None)
    with pytest.raises(TypeError, match="hardshrink: input must be a floating-point tensor, got int64"):
        F.hardshrink(nl.tensor(np.arange(3)))
    with pytest.raises(TypeError, match="celu: inplace must be True or False, got float 1.0"):
        F.celu(x, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"Softmax2d: expected a 3-D \(C, H, W\) or 4-D \(N, C, H, W\) input, "
                                         r"got shape \(3, 3\)"):
        nn.Softmax2d()(nl.randn(3, 3))
    with pytest.raises(ValueError, match="Softmax2d.*got shape \\(1, 1, 2, 2, 2\\)"):
        nn.Softmax2d()(nl.randn(1, 1, 2, 2, 2))
    with pytest.raises(TypeError, match="pass dim explicitly"):
        nn.Softmin()(x)


def test_doctests_run():
    failures, tried = doctest.testmod(composed_activations, verbose=False)
    assert tried >= 5 and failures == 0


def test_in_place_functional_forms_overwrite_their_input():
    for name, args in (("threshold_", (0.5, 9.0)), ("celu_", (1.0,)), ("rrelu_", ())):
        x = nl.tensor([-1.0, 0.2, 3.0])
        expected = getattr(F, name[:-1])(x * 1.0, *args).data
        y = getattr(F, name)(x, *args)
        assert y is x
        np.testing.assert_array_equal(x.data, expected)
