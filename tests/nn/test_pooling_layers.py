"""Max, average and adaptive pooling against PyTorch; their ops' derivatives."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare, f64, torch_or_skip

F = nl.nn.functional

MAX = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
       dict(kernel_size=2, dilation=2), dict(kernel_size=(2, 3), stride=(1, 2))]
AVG = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=2, ceil_mode=True),
       dict(kernel_size=3, stride=1, padding=1, count_include_pad=False), dict(kernel_size=(3, 2), stride=(2, 1))]


def _one(kw):
    return {k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()}


@pytest.mark.parametrize("kwargs", MAX)
def test_max_pool_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    compare(nl.nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), rng.standard_normal((2, 3, 9, 8)))
    compare(nl.nn.MaxPool1d(**_one(kwargs)), torch.nn.MaxPool1d(**_one(kwargs)), rng.standard_normal((2, 3, 9)))


@pytest.mark.parametrize("kwargs", AVG)
def test_avg_pool_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    compare(nl.nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), rng.standard_normal((2, 3, 9, 8)))
    compare(nl.nn.AvgPool1d(**_one(kwargs)), torch.nn.AvgPool1d(**_one(kwargs)), rng.standard_normal((2, 3, 9)))
    compare(nl.nn.AvgPool2d(2, divisor_override=3), torch.nn.AvgPool2d(2, divisor_override=3),
            rng.standard_normal((1, 2, 4, 4)))


def test_unbatched_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((3, 6, 6))
    compare(nl.nn.MaxPool2d(2), torch.nn.MaxPool2d(2), x)
    compare(nl.nn.AvgPool1d(2), torch.nn.AvgPool1d(2), x)


@pytest.mark.parametrize("size", [1, 2, 4, (3, None), (5, 7), (9, 8)])
def test_adaptive_avg_pool_matches_torch(size):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    compare(nl.nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), rng.standard_normal((2, 3, 9, 8)))
    n = size if isinstance(size, int) else size[0]
    compare(nl.nn.AdaptiveAvgPool1d(n), torch.nn.AdaptiveAvgPool1d(n), rng.standard_normal((2, 3, 9)))


def test_adaptive_avg_pool_keeps_an_infinity_in_its_own_bins():
    x = nl.tensor([[[float("inf"), 1.0, 2.0, 3.0]]], requires_grad=True)
    y = F.adaptive_avg_pool1d(x, 2)
    assert y.tolist() == [[[float("inf"), 2.5]]]
    y.backward(nl.ones(1, 1, 2))
    assert x.grad.tolist() == [[[0.5, 0.5, 0.5, 0.5]]]   # the averaging's slope, whatever the values
    grid = np.arange(20.0).reshape(1, 4, 5)
    grid[0, 0, 0], grid[0, 3, 4] = np.inf, -np.inf
    pooled = F.adaptive_avg_pool2d(nl.tensor(grid), (2, 3)).data
    np.testing.assert_array_equal(np.isinf(pooled), [[[True, False, False], [False, False, True]]])
    assert np.isfinite(pooled).sum() == 4


@pytest.mark.parametrize("fn,shape,size", [("adaptive_avg_pool1d", (2, 3, 7), 3),
                                           ("adaptive_avg_pool2d", (2, 3, 5, 6), (3, 4)),
                                           ("adaptive_avg_pool2d", (3, 7, 5), 2)])
def test_adaptive_avg_pool_with_infinities_and_nan_matches_torch(fn, shape, size):
    torch = torch_or_skip()
    x = np.random.default_rng(4).standard_normal(shape)
    x.reshape(-1)[[0, 7, 20]] = [np.inf, -np.inf, np.nan]
    g = None
    for lib, functional in ((nl, F), (torch, torch.nn.functional)):
        t = lib.tensor(x, requires_grad=True)
        with np.errstate(invalid="ignore"):
            y = getattr(functional, fn)(t, size)
        g = np.random.default_rng(5).standard_normal(tuple(y.shape)) if g is None else g
        y.backward(lib.tensor(g))
        if lib is nl:
            ours = (y.data, t.grad.data)
    np.testing.assert_allclose(ours[0], y.detach().numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ours[1], t.grad.numpy(), rtol=1e-12)


def test_pooling_ops_derivatives():
    rng = np.random.default_rng(4)
    x = f64(rng, 2, 2, 5, 6)
    assert gradcheck(lambda x: F.max_pool2d(x, 2, 1), [x])
    assert gradgradcheck(lambda x: F.max_pool2d(x, 3, 2, 1) ** 2, [x])
    assert gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [x])
    assert gradgradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1) ** 2, [x])
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, (2, 4)), [x])
    x1 = f64(rng, 2, 3, 7)
    assert gradcheck(lambda x: F.max_pool1d(x, 3, 2, 1), [x1])
    assert gradcheck(lambda x: F.avg_pool1d(x, 2), [x1])
    assert gradcheck(lambda x: F.adaptive_avg_pool1d(x, 3), [x1])


def test_pooling_errors():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2.*expected a 3 or 4-D input, got shape \(5, 5\)"):
        nl.nn.MaxPool2d(2)(nl.zeros(5, 5))
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool1d\(output_size=2\): expected a 2 or 3-D input"):
        nl.nn.AdaptiveAvgPool1d(2)(nl.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="output size"):
        nl.nn.AvgPool2d(5)(nl.zeros(1, 1, 3, 3))
    assert nl.nn.AdaptiveAvgPool2d(1)(nl.ones(2, 3, 5, 5)).shape == (2, 3, 1, 1)


def test_max_pool_return_indices_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x4, x3 = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((2, 3, 9))
    for name, args, x in [("MaxPool2d", (3, 2, 1), x4), ("MaxPool2d", (2,), x4[0]), ("MaxPool1d", (3, 2), x3)]:
        y, idx = getattr(nl.nn, name)(*args, return_indices=True)(nl.tensor(x, requires_grad=True))
        yt, idxt = getattr(torch.nn, name)(*args, return_indices=True)(torch.tensor(x))
        np.testing.assert_array_equal(y.data, yt.numpy())
        np.testing.assert_array_equal(idx.data, idxt.numpy())
        assert idx.dtype == np.int64 and y.requires_grad


@pytest.mark.parametrize("args", [(3,), (3, 1, 1), ((2,), None, (1,))])
def test_avg_pool1d_keeps_and_prints_one_tuples_as_torch_does(args):
    torch = pytest.importorskip("torch")
    ours, theirs = nl.nn.AvgPool1d(*args), torch.nn.AvgPool1d(*args)
    assert (ours.kernel_size, ours.stride, ours.padding) == (theirs.kernel_size, theirs.stride, theirs.padding)
    assert repr(ours) == repr(theirs)
    compare(ours, theirs, np.random.default_rng(0).standard_normal((2, 3, 9)))


# PyTorch lets padding reach half the kernel size, not half the dilated window.
PADDING_PAST_HALF_THE_KERNEL = [
    (F.max_pool2d, (1, 1, 6, 6), dict(kernel_size=3, stride=2, padding=2, dilation=2)),
    (F.max_pool1d, (1, 6, 6), dict(kernel_size=3, stride=2, padding=2, dilation=2)),
    (F.max_pool2d, (1, 1, 6, 6), dict(kernel_size=1, padding=1, dilation=3)),
    (F.max_pool2d, (1, 1, 6, 6), dict(kernel_size=(3, 2), padding=(1, 2), dilation=2)),
    (F.avg_pool2d, (1, 1, 6, 6), dict(kernel_size=3, padding=2)),
    (F.avg_pool1d, (1, 6, 6), dict(kernel_size=5, stride=1, padding=3)),
]


@pytest.mark.parametrize("fn,shape,kwargs", PADDING_PAST_HALF_THE_KERNEL)
def test_pooling_refuses_padding_past_half_the_kernel(fn, shape, kwargs):
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size, got padding=.*"
                                         r"kernel_size="):
        fn(nl.zeros(*shape), **kwargs)


@pytest.mark.parametrize("fn", [F.max_pool1d, F.avg_pool1d])
def test_1d_pooling_names_its_own_arguments(fn):
    # the 1-D poolings run on the 2-D kernels; their mistakes are named as the caller wrote them
    x = nl.zeros(1, 2, 6)
    op = fn.__name__
    with pytest.raises(ValueError, match=fr"^{op}: padding must be at most half the kernel size, "
                                         r"got padding=2 and kernel_size=3$"):
        fn(x, 3, padding=2)
    with pytest.raises(ValueError, match=fr"^{op}: kernel_size must be an int >= 1, got 0$"):
        fn(x, 0)
    with pytest.raises(ValueError, match=fr"^{op}: stride must be an int >= 1, got 0$"):
        fn(x, 3, stride=0)
    with pytest.raises(ValueError, match=fr"^{op}: padding must be an int >= 0, got -1$"):
        fn(x, 3, padding=-1)


@pytest.mark.parametrize("fn,shape,kwargs", PADDING_PAST_HALF_THE_KERNEL)
def test_pooling_padding_limit_is_torchs(fn, shape, kwargs):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="pad(ding)? should be"):
        getattr(torch.nn.functional, fn.__name__)(torch.zeros(*shape), **kwargs)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, padding=1, dilation=2),
                                    dict(kernel_size=4, stride=2, padding=2, dilation=2),
                                    dict(kernel_size=2, padding=1, dilation=2)])
def test_dilated_max_pool_at_the_padding_limit_matches_torch(kwargs):
    torch = torch_or_skip()
    x = np.random.default_rng(6).standard_normal((1, 2, 7, 6))
    compare(nl.nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), x)
    compare(nl.nn.MaxPool1d(**kwargs), torch.nn.MaxPool1d(**kwargs), x[0])


ADAPTIVE = [(F.adaptive_avg_pool1d, (1, 6, 5)), (F.adaptive_max_pool1d, (1, 6, 5)),
            (F.adaptive_avg_pool2d, (1, 6, 5, 4)), (F.adaptive_max_pool2d, (1, 6, 5, 4))]


@pytest.mark.parametrize("fn,shape", ADAPTIVE)
@pytest.mark.parametrize("output_size", [None, 2.0, True, "2"])
def test_adaptive_pooling_takes_output_size_as_ints(fn, shape, output_size):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: output_size must be an int or a "):
        fn(nl.zeros(*shape), output_size)


@pytest.mark.parametrize("fn,shape", ADAPTIVE)
def test_adaptive_pooling_refuses_a_non_int_size_inside_a_tuple(fn, shape):
    sizes = (2.0,) * (len(shape) - 2)
    with pytest.raises(TypeError, match=rf"{fn.__name__}: output_size entries must be ints.*got float"):
        fn(nl.zeros(*shape), sizes)
    if len(shape) == 3:   # None keeps a size only where there are two to give
        with pytest.raises(TypeError, match=r"output_size entries must be ints, got NoneType in \(None,\)"):
            fn(nl.zeros(*shape), (None,))


# (None,) is a type error only for 1-D pooling; for 2-D it is one entry too few.
@pytest.mark.parametrize("fn,shape,output_size", [(fn, shape, size) for fn, shape in ADAPTIVE
                                                  for size in [None, 2.0, True] + [(None,)] * (len(shape) == 3)])
def test_adaptive_pooling_output_size_types_are_torchs(fn, shape, output_size):
    torch = torch_or_skip()
    with pytest.raises(TypeError):
        getattr(torch.nn.functional, fn.__name__)(torch.zeros(shape), output_size)


@pytest.mark.parametrize("fn,shape", ADAPTIVE)
@pytest.mark.parametrize("zero", ["all", "first"])
def test_adaptive_pooling_to_size_zero_is_empty(fn, shape, zero):
    spatial = len(shape) - 2
    output_size = 0 if zero == "all" else (0,) + (3,) * (spatial - 1)
    want = shape[:2] + ((0,) * spatial if zero == "all" else (0,) + (3,) * (spatial - 1))
    x = nl.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)
    y = fn(x, output_size)
    assert y.shape == want
    y.sum().backward()   # nothing was pooled, so nothing flows back
    assert x.grad.shape == shape and not x.grad.data.any()
    torch = torch_or_skip()
    assert tuple(getattr(torch.nn.functional, fn.__name__)(torch.zeros(shape), output_size).shape) == want


def test_one_d_windows_that_give_no_output_are_named_in_one_d_terms():
    # They run as height-1 2-D windows; the error names the 1-D call, its length and arguments.
    x = nl.randn(1, 2, 3)
    for call, name in ((lambda: F.max_pool1d(x, 5), "max_pool1d"), (lambda: F.avg_pool1d(x, 4, stride=2), "avg_pool1d"),
                       (lambda: F.conv1d(x, nl.randn(4, 2, 5)), "conv1d"),
                       (lambda: F.conv1d_relu(x, nl.randn(4, 2, 2), dilation=3), "conv1d_relu")):
        with pytest.raises(ValueError, match=rf"^{name}: output length would be -?\d+, expected at least 1; "
                                             r"input shape \(1, 2, 3\)"):
            call()


@pytest.mark.parametrize("length,kernel,stride,padding", [(3, 5, 5, 0), (5, 2, 2, 1), (7, 3, 2, 1), (4, 4, 3, 2)])
def test_one_d_ceil_mode_lengths_are_pytorchs(length, kernel, stride, padding):
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((1, 2, length)).astype(np.float32)
    for name in ("max_pool1d", "avg_pool1d"):
        ours = getattr(F, name)(nl.tensor(x), kernel, stride, padding, ceil_mode=True)
        theirs = getattr(torch.nn.functional, name)(torch.tensor(x), kernel, stride, padding, ceil_mode=True)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)
