"""pixel_shuffle, pixel_unshuffle and their layers against PyTorch; the two are inverses."""
import doctest

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.nn import pixel_shuffle as pixel_shuffle_module
from nnlite.ops import pixel_shuffle as pixel_shuffle_ops
from helpers import torch_or_skip

nn = nl.nn
F = nn.functional

# (shape, factor): leading batch dims from none to two, odd sizes, size-1 dims, factor 1
SHUFFLE = [((2, 8, 3, 5), 2), ((18, 1, 1), 3), ((1, 4, 1, 1), 2), ((2, 3, 9, 2, 3), 3), ((3, 5, 4), 1),
           ((2, 1, 16, 3, 1), 4)]
UNSHUFFLE = [((2, 2, 6, 10), 2), ((1, 3, 3), 3), ((1, 1, 2, 2), 2), ((2, 3, 1, 6, 9), 3), ((4, 5, 7), 1),
             ((1, 2, 4, 8, 4), 4)]


def _compare(torch, fn, torch_fn, data, factor, transposed):
    """transposed: the input is a non-contiguous (..., W, H) view of a (..., H, W) leaf."""
    leaf = np.ascontiguousarray(np.swapaxes(data, -1, -2)) if transposed else data
    x, xt = nl.tensor(leaf, requires_grad=True), torch.tensor(leaf, requires_grad=True)
    xi, xti = (x.transpose(-1, -2), xt.transpose(-1, -2)) if transposed else (x, xt)
    y, yt = fn(xi, factor), torch_fn(xti, factor)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(nl.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())


@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed"])
@pytest.mark.parametrize("shape, factor", SHUFFLE, ids=str)
def test_pixel_shuffle_matches_torch(shape, factor, transposed):
    torch = torch_or_skip()
    data = np.random.default_rng(0).standard_normal(shape)
    _compare(torch, F.pixel_shuffle, torch.nn.functional.pixel_shuffle, data, factor, transposed)


@pytest.mark.parametrize("transposed", [False, True], ids=["contiguous", "transposed"])
@pytest.mark.parametrize("shape, factor", UNSHUFFLE, ids=str)
def test_pixel_unshuffle_matches_torch(shape, factor, transposed):
    torch = torch_or_skip()
    data = np.random.default_rng(2).standard_normal(shape)
    _compare(torch, F.pixel_unshuffle, torch.nn.functional.pixel_unshuffle, data, factor, transposed)


@pytest.mark.parametrize("shape, factor", SHUFFLE, ids=str)
def test_unshuffle_undoes_shuffle(shape, factor):
    x = nl.randn(*shape)
    y = F.pixel_shuffle(x, factor)
    np.testing.assert_array_equal(F.pixel_unshuffle(y, factor).data, x.data)
    np.testing.assert_array_equal(F.pixel_shuffle(F.pixel_unshuffle(y, factor), factor).data, y.data)


def test_sub_pixels_land_where_the_formula_says():
    """out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w], element by element."""
    r, channels, height, width = 2, 3, 2, 3
    x = np.random.default_rng(3).standard_normal((channels * r * r, height, width))
    y = F.pixel_shuffle(nl.tensor(x), r).data
    for c in range(channels):
        for i in range(r):
            for j in range(r):
                np.testing.assert_array_equal(y[c, i::r, j::r], x[c * r * r + i * r + j])


def test_derivatives_against_finite_differences():
    rng = np.random.default_rng(4)
    x = nl.tensor(rng.standard_normal((2, 8, 2, 3)), requires_grad=True)
    assert gradcheck(lambda t: F.pixel_shuffle(t, 2), [x])
    assert gradgradcheck(lambda t: F.pixel_shuffle(t, 2) ** 2, [x])
    assert gradcheck(lambda t: F.pixel_unshuffle(t, 2), [nl.tensor(rng.standard_normal((1, 2, 4, 2)),
                                                                   requires_grad=True)])


def test_layers_and_reprs_match_torch():
    torch = torch_or_skip()
    data = np.random.default_rng(5).standard_normal((2, 18, 4, 5))
    for make in (lambda m: m.PixelShuffle(3), lambda m: m.PixelUnshuffle(1)):
        ours, theirs = make(nn), make(torch.nn)
        assert repr(ours) == repr(theirs)
        np.testing.assert_array_equal(ours(nl.tensor(data)).data, theirs(torch.tensor(data)).numpy())
    assert repr(nn.PixelUnshuffle(2)) == repr(torch.nn.PixelUnshuffle(2))
    y = nn.PixelUnshuffle(2)(nl.tensor(data[:, :, :4, :4]))
    np.testing.assert_array_equal(y.data, torch.nn.PixelUnshuffle(2)(torch.tensor(data[:, :, :4, :4])).numpy())


def test_bad_input_names_expected_and_given():
    with pytest.raises(ValueError, match=r"pixel_shuffle: the channel dim \(-3\) must be divisible by "
                                         r"upscale_factor\^2 = 9, got 8 channels \(shape \(2, 8, 3, 3\)\)"):
        F.pixel_shuffle(nl.randn(2, 8, 3, 3), 3)
    with pytest.raises(ValueError, match=r"pixel_shuffle: expected an input of shape \(\*, C, H, W\), at least "
                                         r"3 dims, got shape \(4, 3\)"):
        F.pixel_shuffle(nl.randn(4, 3), 2)
    with pytest.raises(ValueError, match="pixel_shuffle: upscale_factor must be positive, got 0"):
        F.pixel_shuffle(nl.randn(4, 3, 3), 0)
    with pytest.raises(TypeError, match="pixel_shuffle: upscale_factor must be an int, got float 2.0"):
        F.pixel_shuffle(nl.randn(4, 3, 3), 2.0)
    with pytest.raises(ValueError, match=r"pixel_unshuffle: height and width \(dims -2 and -1\) must be divisible "
                                         r"by downscale_factor = 3, got shape \(1, 4, 6, 4\)"):
        F.pixel_unshuffle(nl.randn(1, 4, 6, 4), 3)
    with pytest.raises(ValueError, match="pixel_unshuffle: downscale_factor must be positive, got -1"):
        F.pixel_unshuffle(nl.randn(1, 4, 6, 4), -1)
    with pytest.raises(ValueError, match="PixelShuffle: upscale_factor must be positive, got 0"):
        nn.PixelShuffle(0)
    with pytest.raises(TypeError, match="PixelUnshuffle: downscale_factor must be an int, got str"):
        nn.PixelUnshuffle("2")


def test_doctests_run():
    for module in (pixel_shuffle_module, pixel_shuffle_ops):
        failures, tried = doctest.testmod(module, verbose=False)
        assert tried >= 2 and failures == 0
