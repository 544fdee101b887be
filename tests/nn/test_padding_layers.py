"""Padding layers and F.pad (negative widths included) against PyTorch; derivatives; errors."""
import doctest

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.nn import padding as padding_module
from helpers import torch_or_skip

nn = nl.nn
F = nn.functional

# (layer name, constructor arguments, input shape)
LAYERS_1D = [("ZeroPad1d", (2,)), ("ZeroPad1d", ((1, 3),)), ("ZeroPad1d", ((-1, 2),)),
             ("ConstantPad1d", (2, 3.5)), ("ConstantPad1d", ((0, 1), -1.0)), ("ConstantPad1d", ((-2, -1), 2.0)),
             ("ReflectionPad1d", (2,)), ("ReflectionPad1d", ((4, 0),)), ("ReflectionPad1d", ((-1, 3),)),
             ("ReplicationPad1d", (3,)), ("ReplicationPad1d", ((0, 7),)), ("ReplicationPad1d", ((2, -3),)),
             ("CircularPad1d", (1,)), ("CircularPad1d", ((5, 2),)), ("CircularPad1d", ((-2, 1),))]
LAYERS_2D = [("ZeroPad2d", (1,)), ("ZeroPad2d", ((1, 2, 0, 3),)), ("ZeroPad2d", ((-1, 2, 1, -1),)),
             ("ConstantPad2d", ((2, 0, 1, 1), 0.5)), ("ConstantPad2d", (1, -2)),
             ("ReflectionPad2d", (1,)), ("ReflectionPad2d", ((2, 1, 0, 2),)), ("ReflectionPad2d", ((-1, 2, 2, -1),)),
             ("ReplicationPad2d", (2,)), ("ReplicationPad2d", ((3, 0, 1, 4),)), ("ReplicationPad2d", ((1, -1, 0, 2),)),
             ("CircularPad2d", (1,)), ("CircularPad2d", ((2, 3, 1, 0),)), ("CircularPad2d", ((-1, 1, 2, -1),))]
SHAPES_1D = [(2, 3, 5), (3, 6), (1, 1, 5)]
SHAPES_2D = [(2, 3, 4, 5), (3, 5, 6), (1, 1, 3, 5)]


def _ids(layers):
    return [f"{name}{args}" for name, args in layers]


def _compare(torch, make, data, transposed=False):
    leaf = np.ascontiguousarray(np.swapaxes(data, -1, -2)) if transposed else data
    x, xt = nl.tensor(leaf, requires_grad=True), torch.tensor(leaf, requires_grad=True)
    xi, xti = (x.transpose(-1, -2), xt.transpose(-1, -2)) if transposed else (x, xt)
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    y, yt = ours(xi), theirs(xti)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(nl.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES_1D, ids=str)
@pytest.mark.parametrize("name, args", LAYERS_1D, ids=_ids(LAYERS_1D))
def test_1d_layers_match_torch(name, args, shape):
    torch = torch_or_skip()
    data = np.random.default_rng(0).standard_normal(shape)
    _compare(torch, lambda m: getattr(m, name)(*args), data)
    if shape[-2] > 1:
        _compare(torch, lambda m: getattr(m, name)(*args), data, transposed=True)


@pytest.mark.parametrize("shape", SHAPES_2D, ids=str)
@pytest.mark.parametrize("name, args", LAYERS_2D, ids=_ids(LAYERS_2D))
def test_2d_layers_match_torch(name, args, shape):
    torch = torch_or_skip()
    data = np.random.default_rng(2).standard_normal(shape)
    _compare(torch, lambda m: getattr(m, name)(*args), data)
    _compare(torch, lambda m: getattr(m, name)(*args), data, transposed=True)


def test_zero_and_constant_layers_take_any_rank_with_enough_dims():
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    for name, args, shape in [("ZeroPad1d", (1,), (5,)), ("ConstantPad1d", (2, 1.0), (2, 2, 2, 3)),
                              ("ZeroPad2d", (1,), (4, 3)), ("ConstantPad2d", ((1, 0, 0, 2), 3.0), (1, 2, 1, 3, 4))]:
        _compare(torch, lambda m: getattr(m, name)(*args), rng.standard_normal(shape))


def _torch_pad_or_none(torch, data, widths, mode):
    try:
        return torch.nn.functional.pad(torch.tensor(data), widths, mode=mode).numpy()
    except (RuntimeError, ValueError, NotImplementedError):
        return None


def _circular_keeps_too_little(size, lo, hi):
    """Where PyTorch's circular padding reads memory it never wrote (or returns an empty tensor from
    a crop it should refuse): a positive width larger than what the crop keeps. nnlite refuses these."""
    kept = size - max(-lo, 0) - max(-hi, 0)
    return kept < 0 or max(lo, hi, 0) > kept


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_with_every_width_agrees_with_torch(mode):
    """Every pair of widths from cropping past the whole dim to padding past it, on dims of
    sizes 1, 2, 3 and 5: where PyTorch pads, nnlite gives the same numbers, where it refuses,
    nnlite refuses too (with a ValueError)."""
    torch = torch_or_skip()
    for size in (1, 2, 3, 5):
        data = np.arange(1.0, size + 1).reshape(1, 1, size)
        for lo in range(-size - 1, size + 2):
            for hi in range(-size - 1, size + 2):
                expected = _torch_pad_or_none(torch, data, (lo, hi), mode)
                if mode == "circular" and _circular_keeps_too_little(size, lo, hi):
                    expected = None
                if expected is None:
                    with pytest.raises(ValueError, match="pad: "):
                        F.pad(nl.tensor(data), (lo, hi), mode=mode)
                else:
                    np.testing.assert_array_equal(F.pad(nl.tensor(data), (lo, hi), mode=mode).data, expected,
                                                  err_msg=f"size {size}, widths {(lo, hi)}")


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_derivatives_against_finite_differences(mode):
    rng = np.random.default_rng(4)
    x = nl.tensor(rng.standard_normal((2, 3, 4, 5)), requires_grad=True)
    for widths in [(2, 1, 1, 3), (-1, 2, 2, -1), (0, 3)]:
        assert gradcheck(lambda t: F.pad(t, widths, mode=mode), [x])
        assert gradgradcheck(lambda t: F.pad(t, widths, mode=mode) ** 2, [x])


@pytest.mark.parametrize("name, args", LAYERS_1D[:1] + LAYERS_1D[3:4] + LAYERS_1D[6:7] + LAYERS_1D[9:10]
                         + LAYERS_1D[12:13] + LAYERS_2D[1:2] + LAYERS_2D[3:4] + LAYERS_2D[6:7]
                         + LAYERS_2D[9:10] + LAYERS_2D[12:13])
def test_reprs_are_torch(name, args):
    torch = torch_or_skip()
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))
    assert getattr(nn, name)(*args).padding == getattr(torch.nn, name)(*args).padding


def test_wrong_rank_names_expected_and_given():
    for name, arg, bad in [("ReflectionPad1d", 1, (5,)), ("ReflectionPad1d", 1, (1, 2, 3, 5)),
                           ("ReplicationPad1d", 1, (5,)), ("CircularPad1d", 1, (1, 1, 2, 5))]:
        with pytest.raises(ValueError, match=rf"{name}\(\(1, 1\)\): expected an input of 2-D or 3-D shape, got shape "
                                             + str(bad).replace("(", r"\(").replace(")", r"\)")):
            getattr(nn, name)(arg)(nl.randn(*bad))
    for name in ("ReflectionPad2d", "ReplicationPad2d", "CircularPad2d"):
        with pytest.raises(ValueError, match=rf"{name}\(\(1, 1, 1, 1\)\): expected an input of 3-D or 4-D shape, "
                                             r"got shape \(4, 5\)"):
            getattr(nn, name)(1)(nl.randn(4, 5))
        with pytest.raises(ValueError, match=r"expected an input of 3-D or 4-D shape, got shape \(1, 1, 1, 4, 5\)"):
            getattr(nn, name)(1)(nl.randn(1, 1, 1, 4, 5))
    with pytest.raises(ValueError, match=r"ZeroPad2d\(\(1, 1, 1, 1\)\): expected an input of at least 2-D shape, "
                                         r"got shape \(5,\)"):
        nn.ZeroPad2d(1)(nl.randn(5))


def test_bad_padding_arguments_name_expected_and_given():
    with pytest.raises(ValueError, match=r"ZeroPad1d: padding must be an int or 2 ints \(left, right\), "
                                         r"got \(1, 2, 3\)"):
        nn.ZeroPad1d((1, 2, 3))
    with pytest.raises(ValueError, match=r"ReflectionPad2d: padding must be an int or 4 ints "
                                         r"\(left, right, top, bottom\), got \(1, 2\)"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match=r"CircularPad1d: padding must be an int or 2 ints.*got 1.5"):
        nn.CircularPad1d(1.5)
    with pytest.raises(ValueError, match=r"ConstantPad2d: padding .*got True"):
        nn.ConstantPad2d(True, 0.0)
    with pytest.raises(ValueError, match=r"pad: reflect padding \(5, 0\) must be smaller than the dim size 5"):
        nn.ReflectionPad1d((5, 0))(nl.randn(1, 2, 5))
    with pytest.raises(ValueError, match=r"pad: circular padding \(6, 0\) wraps around more than once"):
        nn.CircularPad1d((6, 0))(nl.randn(1, 2, 5))
    with pytest.raises(ValueError, match=r"pad: negative widths \(-3, -3\) cut more than the 5 positions of dim 2"):
        nn.ZeroPad1d((-3, -3))(nl.randn(1, 2, 5))
    with pytest.raises(ValueError, match=r"pad: replicate padding \(-3, -2\) of a dim of size 5 leaves 0 positions"):
        nn.ReplicationPad1d((-3, -2))(nl.randn(1, 2, 5))
    with pytest.raises(TypeError, match=r"pad: widths must be ints, got float 1.5 in \(1.5, 1\)"):
        F.pad(nl.randn(2, 3), (1.5, 1))
    with pytest.raises(ValueError, match="pad: value is only used with mode='constant'"):
        F.pad(nl.randn(1, 2, 3), (1, 1), mode="reflect", value=2.0)


def test_doctests_run():
    failures, tried = doctest.testmod(padding_module, verbose=False)
    assert tried >= 5 and failures == 0
