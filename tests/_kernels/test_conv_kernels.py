"""Convolution and pooling kernels: compiled == twin, both == torch.nn.functional, finite
differences, byte-identical results across thread counts, and clear errors."""
import sys

import numpy as np
import pytest
from helpers import run_fresh, same_bytes_across_threads, threads
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlite._kernels import _conv, _pool, reference

IMPLS = [pytest.param(_conv, id="compiled"), pytest.param(reference, id="twin")]
POOL_IMPLS = [pytest.param(_pool, id="compiled"), pytest.param(reference, id="twin")]
DTYPES = [np.float32, np.float64]
FEW = settings(max_examples=25, deadline=None)


def assert_close(got, expected, dtype):
    """Equal to rounding: BLAS, NumPy and the direct loops sum in different orders."""
    assert got.dtype == dtype and got.shape == expected.shape
    assert got.flags.c_contiguous
    tol = 2e-5 if dtype == np.float32 else 1e-11
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


def strided(a):
    """The same values as ``a`` in a non-contiguous view (every other element of a wider array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
    wide[..., 1::2] = a
    return wide[..., 1::2]


@st.composite
def conv_cases(draw):
    """Random convolution geometry; a third of the draws are depthwise, a sixth are 1x1."""
    kind = draw(st.sampled_from(["general", "general", "general", "depthwise", "depthwise", "pointwise"]))
    groups = draw(st.integers(1, 3))
    cg = 1 if kind == "depthwise" else draw(st.integers(1, 3))
    og = draw(st.integers(1, 3))
    if kind == "pointwise":
        k, s, p, d = (1, 1), (1, 1), (0, 0), (draw(st.integers(1, 2)),) * 2
    else:
        k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # the smallest input that still gives one output pixel, plus a few odd extras
    hw = tuple(max(1, dd * (kk - 1) + 1 - 2 * pp) + draw(st.integers(0, 6))
               for kk, pp, dd in zip(k, p, d))
    n = draw(st.integers(0, 3))
    return dict(x_shape=(n, cg * groups) + hw, w_shape=(og * groups, cg) + k,
                stride=s, padding=p, dilation=d, groups=groups)


def conv_arrays(case, dtype, seed, non_contiguous):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x_shape"]).astype(dtype)
    w = rng.standard_normal(case["w_shape"]).astype(dtype)
    b = rng.standard_normal(case["w_shape"][0]).astype(dtype)
    if non_contiguous:
        x, w = strided(x), strided(w)
    return x, w, b


def geometry(case):
    return case["stride"], case["padding"], case["dilation"], case["groups"]


# ------------------------------------------------------ compiled == twin -----

@FEW
@given(case=conv_cases(), dtype=st.sampled_from(DTYPES), with_bias=st.booleans(),
       non_contiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_compiled_equals_twin(case, dtype, with_bias, non_contiguous, seed):
    x, w, b = conv_arrays(case, dtype, seed, non_contiguous)
    b = b if with_bias else None
    geo = geometry(case)
    y = _conv.conv2d_forward(x, w, b, *geo)
    assert_close(y, reference.conv2d_forward(x, w, b, *geo), dtype)
    grad = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    if non_contiguous:
        grad = strided(grad)
    assert_close(_conv.conv2d_backward_input(grad, w, x.shape, *geo),
                 reference.conv2d_backward_input(grad, w, x.shape, *geo), dtype)
    assert_close(_conv.conv2d_backward_weight(grad, x, w.shape, *geo),
                 reference.conv2d_backward_weight(grad, x, w.shape, *geo), dtype)
    assert_close(_conv.conv2d_backward_bias(grad), reference.conv2d_backward_bias(grad), dtype)


@st.composite
def pool_cases(draw, dilated=True):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    hw = tuple(dd * (kk - 1) + 1 + draw(st.integers(0, 6)) for kk, dd in zip(k, d))
    return dict(x_shape=(draw(st.integers(0, 3)), draw(st.integers(1, 3))) + hw, kernel_size=k,
                stride=s, padding=p, dilation=d, ceil_mode=draw(st.booleans()))


@FEW
@given(case=pool_cases(), dtype=st.sampled_from(DTYPES), ties=st.booleans(),
       non_contiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_max_pool2d_compiled_equals_twin_exactly(case, dtype, ties, non_contiguous, seed):
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, case["x_shape"]) if ties else rng.standard_normal(case["x_shape"]))
    x = x.astype(dtype)
    if non_contiguous:
        x = strided(x)
    args = (case["kernel_size"], case["stride"], case["padding"], case["dilation"], case["ceil_mode"])
    try:
        reference.max_pool2d_forward(x, *args)
    except ValueError as twin_error:  # a dilated window that sees only padding: both refuse alike
        with pytest.raises(ValueError) as info:
            _pool.max_pool2d_forward(x, *args)
        assert str(info.value) == str(twin_error)
        return
    y, indices = _pool.max_pool2d_forward(x, *args)
    y_ref, indices_ref = reference.max_pool2d_forward(x, *args)
    assert y.dtype == dtype and indices.dtype == np.int64 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, indices_ref)
    grad = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(_pool.max_pool2d_backward(grad, indices, x.shape),
                                  reference.max_pool2d_backward(grad, indices, x.shape))


@pytest.mark.parametrize("width", list(range(2, 42)))
def test_max_pool2d_2x2_rows_of_any_length_equal_the_twin_bytes(width):
    """Float 2 x 2 pooling runs eight windows at a time (_max_pool_rows.h): rows of fewer
    than eight windows read past the row, or, at the input's end, from a padded copy;
    longer rows end with an overlapping block. Ties, NaNs of both signs and payloads,
    infinities: values (to the bit) and indices as the twin's plain loop."""
    rng = np.random.default_rng(width)
    for height in (2, 3, 5):
        x = rng.integers(-2, 3, (2, 3, height, width)).astype(np.float32)
        flat = x.reshape(-1)
        spots = rng.choice(flat.size, size=max(1, flat.size // 6), replace=False)
        flat[spots[0::4]] = np.nan
        flat[spots[1::4]] = -np.inf
        flat[spots[2::4]] = np.float32(np.inf)
        flat.view(np.uint32)[spots[3::4]] = 0xFFC00001   # a negative NaN with a payload
        y, indices = _pool.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
        y_ref, indices_ref = reference.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
        np.testing.assert_array_equal(y.view(np.uint32), y_ref.view(np.uint32))
        np.testing.assert_array_equal(indices, indices_ref)


_GUARD_PAGE_PROGRAM = """
import ctypes, mmap, sys
import numpy as np
from nnlite._kernels import _pool, reference
page = mmap.PAGESIZE
buf = mmap.mmap(-1, 2 * page)
libc = ctypes.CDLL(None, use_errno=True)
base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
assert libc.mprotect(ctypes.c_void_p(base + page), page, 0) == 0   # the second page: no access
for width in (4, 5, 8, 9, 14, 17):
    n = 3 * 4 * width
    x = np.frombuffer(buf, dtype=np.float32, count=n, offset=page - 4 * n).reshape(1, 3, 4, width)
    x[...] = np.random.default_rng(width).standard_normal(x.shape)
    y, i = _pool.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    y_ref, i_ref = reference.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert (y == y_ref).all() and (i == i_ref).all()
print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes: Linux")
def test_max_pool2d_2x2_reads_nothing_past_the_input(tmp_path):
    """An input that ends just before an inaccessible page: the short rows' blocks must not
    read past its last element (a crash, in a child process, would show it)."""
    done = run_fresh(["-c", _GUARD_PAGE_PROGRAM], cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize("hw", [(2, 3), (3, 2), (3, 3), (5, 7)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_2x2_with_ceil_mode_keeps_to_the_input(hw, dtype):
    """ceil_mode adds windows hanging over an odd edge; only their in-input taps count."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    y, indices = _pool.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), True)
    y_ref, indices_ref = reference.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(indices, indices_ref)
    # each output is the maximum of its window's in-input part, and its index points there
    H, W = hw
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            window = x[:, :, 2 * i:min(2 * i + 2, H), 2 * j:min(2 * j + 2, W)]
            np.testing.assert_array_equal(y[:, :, i, j], window.max(axis=(2, 3)))
    assert (indices >= 0).all() and (indices < H * W).all()


@FEW
@given(case=pool_cases(dilated=False), dtype=st.sampled_from(DTYPES), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, None, 1, 3]), non_contiguous=st.booleans(),
       seed=st.integers(0, 2**16))
def test_avg_pool2d_compiled_equals_twin(case, dtype, count_include_pad, divisor_override,
                                         non_contiguous, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x_shape"]).astype(dtype)
    if non_contiguous:
        x = strided(x)
    args = (case["kernel_size"], case["stride"], case["padding"], case["ceil_mode"],
            count_include_pad, divisor_override)
    y = _pool.avg_pool2d_forward(x, *args)
    assert_close(y, reference.avg_pool2d_forward(x, *args), dtype)
    grad = rng.standard_normal(y.shape).astype(dtype)
    assert_close(_pool.avg_pool2d_backward(grad, x.shape, *args),
                 reference.avg_pool2d_backward(grad, x.shape, *args), dtype)


# Stride 1 with output rows as wide as input rows ("same" padding): im2col and col2im copy
# each tap's valid rows as one run of the plane and zero (or skip) the entries that fall
# outside the image. Kernels wider than the image, dilation, uneven padding, one-pixel-wide
# images, several samples per chunk and groups.
SAME_WIDTH_CASES = [
    ((3, 4, 5, 5), (5, 4, 3, 3), (1, 1), (1, 1), 1),
    ((2, 3, 7, 6), (4, 3, 5, 3), (2, 1), (1, 1), 1),
    ((2, 2, 5, 8), (3, 2, 3, 3), (0, 2), (1, 2), 1),    # rows: valid padding; columns: dilated
    ((2, 3, 3, 3), (2, 3, 5, 5), (2, 2), (1, 1), 1),    # kernel wider than the image
    ((3, 2, 6, 1), (2, 2, 3, 3), (1, 1), (1, 1), 1),    # one pixel wide: some taps see nothing
    ((4, 4, 6, 6), (6, 2, 3, 3), (2, 2), (2, 2), 2),    # dilated and grouped
    ((16, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), 1),   # several samples per chunk
]


# Stride 1, one group, maps wide enough: these run as shifted products (no im2col; see
# _shifted_gemm.h), forward, input gradient and weight gradient alike. Channels that fill
# no whole tile (O or C % 4 = 1, 2, 3; taps % 6), float64's narrower tiles, rectangular
# kernels and maps, dilation, "valid" padding, an input gradient padded by more than one,
# a batch that splits unevenly into weight-gradient tasks, one sample.
SHIFTED_CASES = [
    ((3, 3, 20, 20), (6, 3, 3, 3), (1, 1), (1, 1)),
    ((2, 3, 20, 20), (5, 3, 3, 3), (1, 1), (1, 1)),
    ((2, 2, 18, 21), (7, 2, 5, 2), (2, 1), (1, 1)),
    ((2, 2, 14, 15), (7, 2, 3, 2), (2, 1), (2, 1)),
    ((2, 4, 20, 20), (8, 4, 3, 3), (2, 2), (2, 2)),
    ((35, 4, 12, 12), (4, 4, 3, 3), (1, 1), (1, 1)),    # 3 samples a task, the last one short
    ((2, 2, 20, 20), (4, 2, 5, 5), (0, 0), (1, 1)),
    ((2, 8, 20, 20), (8, 8, 5, 5), (1, 1), (1, 1)),
    ((1, 8, 20, 20), (8, 8, 3, 3), (1, 1), (1, 1)),
    ((17, 16, 40, 40), (8, 16, 3, 3), (1, 1), (1, 1)),  # 2 samples a task, 1 a call
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,padding,dilation", SHIFTED_CASES)
def test_conv2d_shifted_products_equal_twin(dtype, x_shape, w_shape, padding, dilation):
    geo = ((1, 1), padding, dilation, 1)
    assert _conv.shifted_paths(x_shape, w_shape, *geo, dtype=dtype) == (True, True, True)
    assert_three_loops_equal_twin(x_shape, w_shape, geo, dtype, with_bias=True)


def assert_three_loops_equal_twin(x_shape, w_shape, geo, dtype, with_bias):
    """Forward, input gradient and weight gradient of random arrays, compiled == twin."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if with_bias else None
    y = _conv.conv2d_forward(x, w, b, *geo)
    assert_close(y, reference.conv2d_forward(x, w, b, *geo), dtype)
    grad = rng.standard_normal(y.shape).astype(dtype)
    assert_close(_conv.conv2d_backward_input(grad, w, x.shape, *geo),
                 reference.conv2d_backward_input(grad, w, x.shape, *geo), dtype)
    assert_close(_conv.conv2d_backward_weight(grad, x, w.shape, *geo),
                 reference.conv2d_backward_weight(grad, x, w.shape, *geo), dtype)
    return y


# Depthwise convolutions: stride 1 runs the per-plane shifted product (input gradient too
# when the padding is within the kernel's reach), other strides the direct loops. Channel
# multipliers of 1 and 2, dilation, rectangular kernels, padding beyond the reach, maps
# narrower than a vector, float64.
DEPTHWISE_CASES = [
    ((3, 4, 9, 11), (4, 1, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 3, 10, 10), (6, 1, 3, 5), (1, 1), (1, 2), (1, 1)),
    ((2, 4, 12, 9), (8, 1, 3, 3), (1, 1), (2, 2), (2, 2)),
    ((2, 3, 7, 7), (3, 1, 3, 3), (1, 1), (3, 2), (1, 1)),     # padding beyond the reach
    ((2, 5, 3, 2), (5, 1, 3, 3), (1, 1), (1, 1), (1, 1)),     # rows shorter than a vector
    ((2, 4, 11, 12), (8, 1, 3, 3), (2, 1), (1, 1), (1, 1)),   # strided: direct loops
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation", DEPTHWISE_CASES)
def test_depthwise_compiled_equals_twin(dtype, x_shape, w_shape, stride, padding, dilation):
    assert_three_loops_equal_twin(x_shape, w_shape, (stride, padding, dilation, x_shape[1]),
                                  dtype, with_bias=True)


def test_shifted_paths_follow_the_measured_rule():
    """LeNet's conv2 runs as shifted products, its conv1's input gradient (to one channel)
    through BLAS; 4x4 maps, large images and strided or grouped convolutions never. (The
    cases hold for the tiles of builds with and without FMA.)"""
    geo = ((1, 1), (0, 0), (1, 1), 1)
    assert _conv.shifted_paths((64, 6, 14, 14), (16, 6, 5, 5), *geo) == (True, True, True)
    same = ((1, 1), (1, 1), (1, 1), 1)
    assert _conv.shifted_paths((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2), (1, 1), 1) \
        == (True, False, True)
    assert _conv.shifted_paths((64, 64, 4, 4), (128, 64, 3, 3), *same) == (False, False, False)
    assert _conv.shifted_paths((2, 64, 128, 128), (64, 64, 3, 3), *same) == (False, False, False)
    assert _conv.shifted_paths((8, 4, 16, 16), (8, 4, 3, 3), (2, 2), (1, 1), (1, 1), 1) \
        == (False, False, False)
    assert _conv.shifted_paths((8, 4, 16, 16), (8, 2, 3, 3), *same[:3], 2) == (False, False, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,padding,dilation,groups", SAME_WIDTH_CASES)
def test_conv2d_same_width_rows_compiled_equals_twin(dtype, x_shape, w_shape, padding, dilation,
                                                     groups):
    geo = ((1, 1), padding, dilation, groups)
    assert not all(_conv.shifted_paths(x_shape, w_shape, *geo, dtype=dtype))  # columns are made
    y = assert_three_loops_equal_twin(x_shape, w_shape, geo, dtype, with_bias=False)
    assert y.shape[3] == x_shape[3]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("x_shape,w_shape,groups", [
    ((2, 0, 5, 5), (3, 0, 3, 3), 1),    # no input channels: the output is the bias
    ((2, 3, 5, 5), (0, 3, 3, 3), 1),    # no output channels
    ((2, 4, 5, 5), (0, 2, 3, 3), 2),
])
def test_conv2d_zero_channels(impl, x_shape, w_shape, groups):
    x, w, b = np.ones(x_shape), np.ones(w_shape), np.arange(w_shape[0], dtype=np.float64)
    geo = ((1, 1), (1, 1), (1, 1), groups)
    y = impl.conv2d_forward(x, w, b, *geo)
    assert y.shape == (2, w_shape[0], 5, 5)
    np.testing.assert_array_equal(y, np.broadcast_to(b[:, None, None], y.shape))
    grad = np.ones(y.shape)
    np.testing.assert_array_equal(impl.conv2d_backward_input(grad, w, x_shape, *geo), np.zeros(x_shape))
    np.testing.assert_array_equal(impl.conv2d_backward_weight(grad, x, w_shape, *geo), np.zeros(w_shape))
    np.testing.assert_array_equal(impl.conv2d_backward_bias(grad), np.full(w_shape[0], 50.0))


# ----------------------------------------------------------- against torch -----

CONV_TORCH_CASES = [
    # (x shape, weight shape, stride, padding, dilation, groups)
    ((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 9, 7), (6, 2, 3, 2), (2, 1), (1, 0), (2, 1), 2),
    ((1, 4, 6, 5), (8, 1, 3, 3), (1, 2), (1, 1), (1, 1), 4),     # depthwise, multiplier 2
    ((3, 1, 12, 12), (6, 1, 5, 5), (1, 1), (2, 2), (1, 1), 1),   # LeNet's first layer
    ((2, 4, 5, 6), (6, 2, 1, 1), (1, 1), (0, 0), (1, 1), 2),     # 1x1, grouped
    ((2, 3, 1, 11), (5, 3, 1, 4), (1, 2), (0, 1), (1, 2), 1),    # conv1d as H == 1
    ((0, 3, 6, 6), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),     # empty batch
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups", CONV_TORCH_CASES)
def test_conv2d_matches_torch(impl, x_shape, w_shape, stride, padding, dilation, groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    grad = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(grad))
    geo = (stride, padding, dilation, groups)
    np.testing.assert_allclose(impl.conv2d_forward(x, w, b, *geo), yt.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(impl.conv2d_backward_input(grad, w, x_shape, *geo), xt.grad.numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(impl.conv2d_backward_weight(grad, x, w_shape, *geo), wt.grad.numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(impl.conv2d_backward_bias(grad), bt.grad.numpy(), rtol=1e-12, atol=1e-12)


NON_FINITE_CASES = [
    # (x shape, weight shape, padding, groups): shifted and depthwise-shifted weight gradients
    ((2, 3, 7, 9), (4, 3, 3, 3), (1, 1), 1),
    ((2, 3, 8, 8), (5, 3, 3, 3), (0, 0), 1),
    ((2, 3, 7, 9), (3, 1, 3, 3), (1, 1), 3),
    ((2, 2, 6, 10), (4, 1, 3, 3), (0, 1), 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,padding,groups", NON_FINITE_CASES)
def test_conv2d_weight_grad_of_an_input_with_infinities_and_nans(x_shape, w_shape, padding, groups,
                                                                 dtype):
    """The shifted products sum over a grid wider than the output, whose extra columns hold
    a zero gradient; 0 * inf there once put a NaN in the weight gradient where the true
    sum (and PyTorch) has an infinity. Such an input now takes the loops over real pixels."""
    geo = ((1, 1), padding, (1, 1), groups)
    assert "shifted" in _conv.conv_plan(x_shape, w_shape, *geo, dtype=dtype)["weight_grad"]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(dtype)
    x[0, 0, 3, -1] = np.inf          # the last column: beside the grid's extra columns
    x[1, -1, 2, 0] = -np.inf
    x[1, 0, -1, -1] = np.nan
    w = rng.standard_normal(w_shape).astype(dtype)
    grad = rng.standard_normal(_conv.conv2d_forward(x, w, None, *geo).shape).astype(dtype)
    got = _conv.conv2d_backward_weight(grad, x, w_shape, *geo)
    twin = reference.conv2d_backward_weight(grad, x, w_shape, *geo)
    assert np.isinf(twin).any() and not np.isnan(twin).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(twin))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(twin) * np.sign(twin))
    finite = np.isfinite(twin)
    assert_close(got[finite], twin[finite], dtype)
    try:
        import torch
    except ImportError:
        return
    xt, wt = torch.tensor(x), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(xt, wt, None, *geo).backward(torch.tensor(grad))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(wt.grad.numpy()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,padding,groups",
                         NON_FINITE_CASES[2:] + [((2, 8, 16, 16), (16, 8, 3, 3), (0, 0), 1),
                                                 ((2, 8, 16, 16), (16, 8, 5, 5), (2, 2), 1)])
def test_conv2d_input_grad_of_a_weight_with_infinities(x_shape, w_shape, padding, groups, dtype):
    """The input gradient's shifted product multiplies the zero gradient between the grid's
    rows by weights: an infinite weight once made NaNs there that the twin's sum over
    real output pixels does not have."""
    geo = ((1, 1), padding, (1, 1), groups)
    assert "shifted" in _conv.conv_plan(x_shape, w_shape, *geo, dtype=dtype)["input_grad"]
    rng = np.random.default_rng(8)
    w = rng.standard_normal(w_shape).astype(dtype)
    w[0, 0, 0, 0], w[-1, -1, -1, -1] = np.inf, -np.inf
    grad_shape = _conv.conv2d_forward(np.zeros(x_shape, dtype), w, None, *geo).shape
    grad = rng.standard_normal(grad_shape).astype(dtype)
    got = _conv.conv2d_backward_input(grad, w, x_shape, *geo)
    twin = reference.conv2d_backward_input(grad, w, x_shape, *geo)
    assert np.isinf(twin).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(twin))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(twin) * np.sign(twin))
    finite = np.isfinite(twin)
    assert_close(got[finite], twin[finite], dtype)


MAX_POOL_TORCH_CASES = [
    # (x shape, kernel_size, stride, padding, dilation, ceil_mode)
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 9, 8), (3, 2), (2, 3), (1, 1), (2, 1), True),
    ((2, 2, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1), True),   # ceil_mode drops the window in the padding
    ((1, 3, 1, 10), (1, 3), (1, 2), (0, 1), (1, 1), False),
]


@pytest.mark.parametrize("impl", POOL_IMPLS)
@pytest.mark.parametrize("x_shape,kernel_size,stride,padding,dilation,ceil_mode", MAX_POOL_TORCH_CASES)
def test_max_pool2d_matches_torch(impl, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, x_shape).astype(np.float64)    # many ties: the first one must win
    x.flat[::7] = -np.inf
    x.flat[5] = np.nan
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, kernel_size, stride, padding, dilation, ceil_mode,
                                            return_indices=True)
    grad = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(grad))
    y, indices = impl.max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    np.testing.assert_allclose(impl.max_pool2d_backward(grad, indices, x_shape), xt.grad.numpy(),
                               rtol=1e-14, atol=0)


AVG_POOL_TORCH_CASES = [
    # (x shape, kernel_size, stride, padding, ceil_mode)
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), False),
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), True),
    ((1, 2, 6, 5), (3, 2), (2, 2), (1, 1), True),
    ((2, 2, 5, 5), (2, 2), (2, 2), (1, 1), True),
    ((1, 3, 1, 10), (1, 3), (1, 2), (0, 1), True),
]


@pytest.mark.parametrize("impl", POOL_IMPLS)
@pytest.mark.parametrize("count_include_pad,divisor_override", [(True, None), (False, None), (True, 2)])
@pytest.mark.parametrize("x_shape,kernel_size,stride,padding,ceil_mode", AVG_POOL_TORCH_CASES)
def test_avg_pool2d_matches_torch(impl, x_shape, kernel_size, stride, padding, ceil_mode,
                                  count_include_pad, divisor_override):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, kernel_size, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override)
    grad = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(grad))
    args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    np.testing.assert_allclose(impl.avg_pool2d_forward(x, *args), yt.detach().numpy(),
                               rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(impl.avg_pool2d_backward(grad, x_shape, *args), xt.grad.numpy(),
                               rtol=1e-13, atol=1e-13)


# ------------------------------------------------------ finite differences -----

def numeric_gradient(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of a (in place)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        up = f()
        a[i] = old - eps
        down = f()
        a[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups", [
    ((2, 2, 5, 4), (3, 2, 2, 3), (2, 1), (1, 1), (1, 2), 1),
    ((1, 2, 4, 4), (4, 1, 3, 3), (1, 1), (1, 1), (1, 1), 2),     # depthwise
    ((2, 4, 3, 3), (2, 2, 1, 1), (1, 1), (0, 0), (1, 1), 2),     # 1x1
])
def test_conv2d_backward_matches_finite_differences(impl, x_shape, w_shape, stride, padding,
                                                    dilation, groups):
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    geo = (stride, padding, dilation, groups)
    grad = rng.standard_normal(impl.conv2d_forward(x, w, b, *geo).shape)
    loss = lambda: float(np.sum(impl.conv2d_forward(x, w, b, *geo) * grad))
    np.testing.assert_allclose(impl.conv2d_backward_input(grad, w, x_shape, *geo),
                               numeric_gradient(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(impl.conv2d_backward_weight(grad, x, w_shape, *geo),
                               numeric_gradient(loss, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(impl.conv2d_backward_bias(grad), numeric_gradient(loss, b),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("impl", POOL_IMPLS)
def test_pool_backward_matches_finite_differences(impl):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 6))
    max_args = ((3, 2), (2, 2), (1, 1), (1, 2), True)
    y, indices = impl.max_pool2d_forward(x, *max_args)
    grad = rng.standard_normal(y.shape)
    loss = lambda: float(np.sum(impl.max_pool2d_forward(x, *max_args)[0] * grad))
    np.testing.assert_allclose(impl.max_pool2d_backward(grad, indices, x.shape),
                               numeric_gradient(loss, x), rtol=1e-6, atol=1e-8)
    for avg_args in [((3, 2), (2, 2), (1, 1), True, False, None), ((2, 3), (1, 2), (1, 1), False, True, 5)]:
        grad = rng.standard_normal(impl.avg_pool2d_forward(x, *avg_args).shape)
        loss = lambda: float(np.sum(impl.avg_pool2d_forward(x, *avg_args) * grad))
        np.testing.assert_allclose(impl.avg_pool2d_backward(grad, x.shape, *avg_args),
                                   numeric_gradient(loss, x), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------- thread determinism -----

# Big enough that a threaded BLAS would split these GEMMs (its 1-thread cut-off is
# M*N*K <= 262144) and the direct loops pass the serial threshold.
DETERMINISM_CASES = [
    ((4, 16, 12, 12), (32, 16, 3, 3), (1, 1), (1, 1), (1, 1), 1),   # shifted products
    ((40, 8, 12, 12), (12, 8, 3, 3), (1, 1), (1, 1), (1, 1), 1),    # shifted, 3 samples a task
    ((4, 16, 12, 12), (32, 16, 3, 3), (1, 2), (1, 1), (1, 1), 1),   # im2col + GEMM
    ((4, 16, 12, 12), (32, 8, 3, 3), (2, 1), (1, 2), (1, 2), 2),    # grouped, strided, dilated
    ((4, 64, 12, 12), (64, 64, 1, 1), (1, 1), (0, 0), (1, 1), 1),   # 1x1 straight GEMM
    ((4, 16, 12, 12), (32, 1, 3, 3), (1, 1), (1, 1), (1, 1), 16),   # depthwise
    ((3, 5, 1, 19), (7, 5, 1, 3), (1, 2), (0, 1), (1, 1), 1),       # 1-D, stride 2; 21 bias planes
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups", DETERMINISM_CASES)
def test_conv2d_same_bytes_for_1_2_4_threads(dtype, x_shape, w_shape, stride, padding, dilation, groups):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    geo = (stride, padding, dilation, groups)
    grad = rng.standard_normal(_conv.conv2d_forward(x, w, b, *geo).shape).astype(dtype)
    same_bytes_across_threads(_conv.conv2d_forward, x, w, b, *geo)
    same_bytes_across_threads(_conv.conv2d_backward_input, grad, w, x_shape, *geo)
    same_bytes_across_threads(_conv.conv2d_backward_weight, grad, x, w_shape, *geo)
    same_bytes_across_threads(_conv.conv2d_backward_bias, grad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 7, 1, 19), (2, 5, 6, 7), (8, 4, 9, 9)])
def test_conv2d_backward_bias_sums_each_plane_in_order(dtype, shape):
    """Each (n, o) plane summed pixel after pixel in float64, then the planes over n in order:
    a running sum (cumsum) gives the same bits, for any number of planes and threads."""
    grad = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    N, O = shape[:2]
    planes = np.cumsum(grad.reshape(N * O, -1).astype(np.float64), axis=1)[:, -1].reshape(N, O)
    expected = np.cumsum(planes, axis=0)[-1].astype(dtype)
    for n in (1, 2, 4):
        with threads(n):
            assert _conv.conv2d_backward_bias(grad).tobytes() == expected.tobytes()


def test_gemms_pin_openblas_to_one_thread_and_restore_it():
    # OpenBLAS's threaded GEMM rounds differently for different thread counts, so the
    # determinism above rests on the kernels running their GEMMs on one BLAS thread.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert _conv.blas_threads_pinned()
    x, w = np.ones((2, 4, 6, 6)), np.ones((3, 4, 3, 3))
    with threads(2):
        before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        _conv.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1)
        after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert 2 in before and after == before


@pytest.mark.parametrize("dtype", DTYPES)
def test_pool_same_bytes_for_1_2_4_threads(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 8, 13, 11)).astype(dtype)
    y, indices = _pool.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    grad = rng.standard_normal(y.shape).astype(dtype)
    same_bytes_across_threads(_pool.max_pool2d_forward, x, (3, 3), (2, 2), (1, 1), (1, 1), True)
    same_bytes_across_threads(_pool.max_pool2d_backward, grad, indices, x.shape)
    avg_args = ((3, 3), (2, 2), (1, 1), True, False, None)
    same_bytes_across_threads(_pool.avg_pool2d_forward, x, *avg_args)
    same_bytes_across_threads(_pool.avg_pool2d_backward, grad, x.shape, *avg_args)


# -------------------------------------------------------------- bad input -----

def _conv_call(**changes):
    rng = np.random.default_rng(8)
    args = dict(x=rng.standard_normal((2, 3, 8, 8)), weight=rng.standard_normal((4, 3, 3, 3)),
                bias=np.zeros(4), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    args.update(changes)
    return args


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("changes,error,message", [
    (dict(x=np.zeros((2, 5, 8, 8))), ValueError,
     "conv2d: input has 5 channels but weight expects 3 (groups=1); input shape (2, 5, 8, 8), "
     "weight shape (4, 3, 3, 3)"),
    (dict(x=np.zeros((3, 8, 8))), ValueError, "expected a 4-D input (N, C, H, W), got shape (3, 8, 8)"),
    (dict(weight=np.zeros((4, 3, 3))), ValueError, "expected a 4-D weight"),
    (dict(groups=2, x=np.zeros((2, 4, 8, 8)), weight=np.zeros((3, 2, 3, 3)), bias=None), ValueError,
     "weight has 3 output channels, not divisible by groups=2"),
    (dict(groups=2), ValueError, "input has 3 channels, not divisible by groups=2"),
    (dict(groups=0), ValueError, "groups must be a positive int, got 0"),
    (dict(stride=(0, 1)), ValueError, "stride must be a pair of ints >= 1, got (0, 1)"),
    (dict(padding=(-1, 0)), ValueError, "padding must be a pair of ints >= 0, got (-1, 0)"),
    (dict(dilation=(1, 0)), ValueError, "dilation must be a pair of ints >= 1, got (1, 0)"),
    (dict(stride=2), ValueError, "stride must be a pair of ints >= 1, got 2"),
    (dict(padding=(0, 0), weight=np.zeros((4, 3, 9, 3))), ValueError, "output size would be (0, 6)"),
    (dict(bias=np.zeros(5)), ValueError, "bias must have shape (4,), got (5,)"),
    (dict(weight=np.zeros((4, 3, 3, 3), np.float32)), TypeError, "float64 and weight float32"),
    (dict(x=np.zeros((2, 3, 8, 8), np.int64)), TypeError, "got input of dtype int64"),
    (dict(x=[[1.0]]), TypeError, "input must be a NumPy array, got list"),
])
def test_conv2d_forward_rejects_bad_input(impl, changes, error, message):
    with pytest.raises(error) as info:
        impl.conv2d_forward(**_conv_call(**changes))
    assert message in str(info.value)


@pytest.mark.parametrize("impl", IMPLS)
def test_conv2d_backward_rejects_bad_input(impl):
    geo = ((1, 1), (1, 1), (1, 1), 1)
    w, x = np.zeros((4, 3, 3, 3)), np.zeros((2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"conv2d_backward_input: grad has shape \(2, 4, 7, 8\) but "
                                         r"the convolution's output shape is \(2, 4, 8, 8\)"):
        impl.conv2d_backward_input(np.zeros((2, 4, 7, 8)), w, x.shape, *geo)
    with pytest.raises(ValueError, match="input_shape must be a 4-D shape"):
        impl.conv2d_backward_input(np.zeros((2, 4, 8, 8)), w, (2, 3, 8), *geo)
    with pytest.raises(ValueError, match=r"conv2d_backward_weight: grad has shape \(2, 5, 8, 8\)"):
        impl.conv2d_backward_weight(np.zeros((2, 5, 8, 8)), x, w.shape, *geo)
    with pytest.raises(ValueError, match="input has 3 channels but weight expects 6"):
        impl.conv2d_backward_weight(np.zeros((2, 4, 8, 8)), x, (4, 6, 3, 3), *geo)
    with pytest.raises(TypeError, match="grad float32 and input float64"):
        impl.conv2d_backward_weight(np.zeros((2, 4, 8, 8), np.float32), x, w.shape, *geo)
    with pytest.raises(ValueError, match="expected a 4-D grad"):
        impl.conv2d_backward_bias(np.zeros((2, 4)))


@pytest.mark.parametrize("impl", POOL_IMPLS)
def test_pooling_rejects_bad_input(impl):
    x = np.zeros((2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"max_pool2d: padding must be at most half the kernel size, "
                                         r"got padding=\(2, 0\) and kernel_size=\(3, 3\)"):
        impl.max_pool2d_forward(x, (3, 3), (1, 1), (2, 0), (1, 1), False)
    # Dilation widens the window but not the limit (PyTorch's rule).
    with pytest.raises(ValueError, match=r"padding=\(2, 2\) and kernel_size=\(3, 3\)"):
        impl.max_pool2d_forward(x, (3, 3), (2, 2), (2, 2), (2, 2), False)
    with pytest.raises(ValueError, match="max_pool2d: window 0 along H covers only padding"):
        impl.max_pool2d_forward(np.zeros((1, 1, 1, 4)), (2, 2), (1, 1), (1, 1), (2, 1), False)
    with pytest.raises(ValueError, match=r"max_pool2d: output size would be \(0, 2\)"):
        impl.max_pool2d_forward(np.zeros((1, 1, 2, 6)), (3, 3), (3, 3), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="kernel_size must be a pair of ints >= 1"):
        impl.max_pool2d_forward(x, (0, 2), (1, 1), (0, 0), (1, 1), False)
    with pytest.raises(TypeError, match="expected float32 or float64"):
        impl.max_pool2d_forward(x.astype(np.int32), (2, 2), (2, 2), (0, 0), (1, 1), False)
    y, indices = impl.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    bad = indices.copy()
    bad[0, 0, 0, 0] = 36
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 36\)"):
        impl.max_pool2d_backward(y, bad, x.shape)
    with pytest.raises(TypeError, match="indices must be an int64 array"):
        impl.max_pool2d_backward(y, indices.astype(np.int32), x.shape)
    with pytest.raises(ValueError, match="grad and indices must have one shape"):
        impl.max_pool2d_backward(y[:, :2], indices, x.shape)
    with pytest.raises(ValueError, match="divisor_override must be None or a non-zero int, got 0"):
        impl.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding must be at most half the kernel size, "
                                         r"got padding=\(0, 2\)"):
        impl.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 2), False, True, None)
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: grad has shape \(2, 3, 2, 3\)"):
        impl.avg_pool2d_backward(np.zeros((2, 3, 2, 3)), x.shape, (2, 2), (2, 2), (0, 0), False, True, None)


@pytest.mark.parametrize("impl", IMPLS)
def test_bias_gradient_of_empty_planes_is_zero_however_many_planes(impl):
    # 2**40 planes of no elements hold no bytes; the compiled kernel asked for a float64
    # partial sum for each (16 TiB)
    grad = np.empty((2 ** 40, 2, 3, 0), np.float32)
    bias_grad = impl.conv2d_backward_bias(grad)
    assert bias_grad.dtype == np.float32 and (bias_grad == np.zeros(2)).all()


@pytest.mark.parametrize("impl", POOL_IMPLS)
def test_avg_pool_backward_checks_grad_before_making_the_divisors(impl):
    # an input_shape of 2**34 rows: the twin made its 2**33 window divisors (64 GiB) before it
    # compared grad's shape with the pooling's output
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: grad has shape \(1, 2, 4, 4\) but the "
                                         r"pooling's output shape is \(1, 2, 8589934592, 4\)"):
        impl.avg_pool2d_backward(np.ones((1, 2, 4, 4)), (1, 2, 2 ** 34, 8), (2, 2), (2, 2), (0, 0), False,
                                 True, None)


@pytest.mark.parametrize("impl", POOL_IMPLS)
def test_max_pool_backward_refuses_an_input_shape_numpy_cannot_make(impl):
    # input_shape's plane is the one size of the result no array carries
    grad, shape = np.ones((1, 2, 1, 1)), (1, 2, 2 ** 61, 2)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: the input gradient would be an array of "
                                         r"shape \(1, 2, 2305843009213693952, 2\) with 8-byte elements"):
        impl.max_pool2d_backward(grad, np.zeros(grad.shape, np.int64), shape)


@pytest.mark.parametrize("impl", POOL_IMPLS)
def test_max_pool_backward_of_empty_planes_returns_at_once_however_many_planes(impl):
    # 2**40 planes of no elements hold no bytes; a loop over the planes would run for hours
    shape = (2 ** 20, 2 ** 20, 0, 3)
    grad = np.empty(shape, np.float32)
    grad_x = impl.max_pool2d_backward(grad, np.empty(shape, np.int64), shape)
    assert grad_x.shape == shape and grad_x.dtype == np.float32


@pytest.mark.parametrize("impl", POOL_IMPLS)
@pytest.mark.parametrize("shape, axis", [((1, 2, 0, 6), "H"), ((1, 2, 6, 0), "W")])
def test_pooling_refuses_an_empty_plane_with_padding(impl, shape, axis):
    # Padding gives an input with no rows (or columns) windows to pool, but every one of them
    # covers only padding: there is no maximum to return, nor an index of one in the plane.
    x, geometry = np.zeros(shape, np.float32), ((2, 2), (2, 2), (1, 1))
    message = f"window 0 along {axis} covers only padding"
    with pytest.raises(ValueError, match=f"max_pool2d: {message}"):
        impl.max_pool2d_forward(x, *geometry, (1, 1), False)
    with pytest.raises(ValueError, match=f"avg_pool2d: {message}"):
        impl.avg_pool2d_forward(x, *geometry, False, True, None)
    grad = np.zeros((1, 2, 4, 1) if axis == "W" else (1, 2, 1, 4), np.float32)
    with pytest.raises(ValueError, match=f"avg_pool2d_backward: {message}"):
        impl.avg_pool2d_backward(grad, shape, *geometry, False, True, None)
