"""Adaptive max pooling against PyTorch: values, indices, gradients, bin edges, errors."""
import doctest

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.ops import adaptive_pool
from helpers import torch_or_skip

F = nl.nn.functional

SHAPES_2D = [(2, 3, 9, 8), (1, 1, 5, 5), (3, 7, 4), (2, 1, 1, 1), (1, 2, 13, 6), (0, 2, 4, 5)]
SIZES_2D = [1, 2, 3, 5, (3, None), (None, 2), (7, 3), (10, 10), 0, (4, 1)]
SHAPES_1D = [(2, 3, 9), (4, 7), (1, 1, 1), (2, 2, 13)]
SIZES_1D = [1, 2, 3, 5, 9, (4,), 16]


def _data(rng, shape, ties):
    x = rng.standard_normal(shape)
    return np.round(x) if ties else x     # rounding makes many equal values: ties go to the first


def _check_against_torch(torch, fn, torch_fn, data, size, transposed=False):
    leaf = np.ascontiguousarray(np.swapaxes(data, -1, -2)) if transposed else data
    x, xt = nl.tensor(leaf, requires_grad=True), torch.tensor(leaf, requires_grad=True)
    xi, xti = (x.transpose(-1, -2), xt.transpose(-1, -2)) if transposed else (x, xt)
    y, idx = fn(xi, size, return_indices=True)
    yt, idxt = torch_fn(xti, size, return_indices=True)
    assert y.shape == tuple(yt.shape) and idx.dtype == np.int64
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    np.testing.assert_array_equal(idx.data, idxt.numpy())
    if y.data.size:
        g = np.random.default_rng(1).standard_normal(y.shape)
        y.backward(nl.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("size", SIZES_2D, ids=str)
@pytest.mark.parametrize("shape", SHAPES_2D, ids=str)
def test_2d_values_indices_and_gradients_match_torch(shape, size, ties):
    torch = torch_or_skip()
    data = _data(np.random.default_rng(0), shape, ties)
    _check_against_torch(torch, F.adaptive_max_pool2d, torch.nn.functional.adaptive_max_pool2d, data, size)
    if min(shape[-2:]) > 1:
        _check_against_torch(torch, F.adaptive_max_pool2d, torch.nn.functional.adaptive_max_pool2d, data, size,
                             transposed=True)


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("size", SIZES_1D, ids=str)
@pytest.mark.parametrize("shape", SHAPES_1D, ids=str)
def test_1d_values_indices_and_gradients_match_torch(shape, size, ties):
    torch = torch_or_skip()
    data = _data(np.random.default_rng(2), shape, ties)
    _check_against_torch(torch, F.adaptive_max_pool1d, torch.nn.functional.adaptive_max_pool1d, data, size)


def test_bins_follow_the_floor_and_ceil_edges():
    """Each output is the maximum of x[floor(i L / out) : ceil((i + 1) L / out)], written out here."""
    rng = np.random.default_rng(3)
    for length, out in [(10, 3), (7, 7), (5, 8), (13, 4), (1, 3)]:
        x = rng.standard_normal((1, 1, length))
        y = F.adaptive_max_pool1d(nl.tensor(x), out).data.ravel()
        expected = [x[0, 0, (i * length) // out: -(-((i + 1) * length) // out)].max() for i in range(out)]
        np.testing.assert_array_equal(y, expected)


def test_nan_propagates_like_torch():
    torch = torch_or_skip()
    data = np.array([[[[1.0, np.nan, 3.0], [np.nan, 0.0, 5.0]]]])
    for size in (1, (1, 2), (2, 2)):
        y, idx = F.adaptive_max_pool2d(nl.tensor(data), size, return_indices=True)
        yt, idxt = torch.nn.functional.adaptive_max_pool2d(torch.tensor(data), size, return_indices=True)
        np.testing.assert_array_equal(y.data, yt.numpy())
        np.testing.assert_array_equal(idx.data, idxt.numpy())


def test_modules_match_torch_and_reprs():
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    for make, shape in [(lambda m: m.AdaptiveMaxPool2d((2, None)), (2, 3, 7, 5)),
                        (lambda m: m.AdaptiveMaxPool2d(3, return_indices=True), (3, 8, 8)),
                        (lambda m: m.AdaptiveMaxPool1d(4), (2, 3, 10)),
                        (lambda m: m.AdaptiveMaxPool1d(2, True), (3, 5))]:
        ours, theirs = make(nl.nn), make(torch.nn)
        assert repr(ours) == repr(theirs)
        x = rng.standard_normal(shape)
        y, yt = ours(nl.tensor(x)), theirs(torch.tensor(x))
        if isinstance(yt, tuple):
            np.testing.assert_array_equal(y[1].data, yt[1].numpy())
            y, yt = y[0], yt[0]
        np.testing.assert_array_equal(y.data, yt.numpy())


def test_derivatives_against_finite_differences():
    rng = np.random.default_rng(5)
    x = nl.tensor(rng.standard_normal((2, 2, 5, 7)), requires_grad=True)    # distinct values: no ties
    assert gradcheck(lambda t: F.adaptive_max_pool2d(t, (2, 3)), [x])
    assert gradcheck(lambda t: F.adaptive_max_pool2d(t, (4, None)), [x])
    assert gradgradcheck(lambda t: F.adaptive_max_pool2d(t, 3) ** 2, [x])
    x1 = nl.tensor(rng.standard_normal((2, 3, 7)), requires_grad=True)
    assert gradcheck(lambda t: F.adaptive_max_pool1d(t, 3), [x1])
    assert gradgradcheck(lambda t: F.adaptive_max_pool1d(t, 5) ** 3, [x1])


def test_second_derivative_is_zero_as_in_torch():
    torch = torch_or_skip()
    data = np.random.default_rng(6).standard_normal((1, 2, 5, 6))
    x, xt = nl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    (g,) = nl.grad(F.adaptive_max_pool2d(x, 2).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad(torch.nn.functional.adaptive_max_pool2d(xt, 2).sum(), xt, create_graph=True)
    w = np.random.default_rng(7).standard_normal(data.shape)
    (gg,) = nl.grad((g * nl.tensor(w)).sum(), x)
    (ggt,) = torch.autograd.grad((gt * torch.tensor(w)).sum(), xt)
    np.testing.assert_array_equal(gg.data, ggt.numpy())
    assert not gg.data.any()


def test_bad_input_names_expected_and_given():
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d: expected a 3-D \(unbatched\) or 4-D input, "
                                         r"got shape \(5, 5\)"):
        F.adaptive_max_pool2d(nl.randn(5, 5), 2)
    with pytest.raises(ValueError, match=r"adaptive_max_pool1d: expected a 2-D \(unbatched\) or 3-D input, "
                                         r"got shape \(1, 1, 5, 5\)"):
        F.adaptive_max_pool1d(nl.randn(1, 1, 5, 5), 2)
    with pytest.raises(ValueError, match=r"AdaptiveMaxPool2d\(output_size=2\): expected a 3 or 4-D input"):
        nl.nn.AdaptiveMaxPool2d(2)(nl.randn(1, 1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"output_size entries must be >= 0, got -1"):
        F.adaptive_max_pool2d(nl.randn(1, 2, 5, 5), -1)
    with pytest.raises(ValueError, match=r"output_size must be an int or 2 of them, got \(1, 2, 3\)"):
        F.adaptive_max_pool2d(nl.randn(1, 2, 5, 5), (1, 2, 3))
    with pytest.raises(TypeError, match=r"output_size must be an int or a tuple of one int, got float 2.5"):
        F.adaptive_max_pool1d(nl.randn(1, 2, 5), 2.5)
    with pytest.raises(ValueError, match=r"non-empty in every dim but the batch one, got shape \(1, 2, 0, 5\)"):
        F.adaptive_max_pool2d(nl.randn(1, 2, 0, 5), 2)


def test_doctests_run():
    failures, tried = doctest.testmod(adaptive_pool, verbose=False)
    assert tried >= 2 and failures == 0
