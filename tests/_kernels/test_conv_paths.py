"""Each convolution algorithm on its own: the plan that picks it, and its step-by-step twin."""
import numpy as np
import pytest

from nnlite._kernels import _conv, reference
from nnlite._kernels.reference import _conv_shifted


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups, expected", [
    ((4, 8, 10, 10), (8, 1, 3, 3), (1, 1), (1, 1), 8, ("depthwise-shifted",) * 3),
    ((4, 8, 10, 10), (8, 1, 3, 3), (2, 2), (1, 1), 8, ("depthwise-direct",) * 3),
    ((4, 8, 10, 10), (16, 8, 1, 1), (1, 1), (0, 0), 1, ("pointwise",) * 3),
    ((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), 1, ("shifted",) * 3),
    ((64, 64, 4, 4), (128, 64, 3, 3), (1, 1), (1, 1), 1, ("im2col",) * 3),
    ((8, 4, 16, 16), (8, 4, 3, 3), (2, 2), (1, 1), 1, ("im2col",) * 3),
])
def test_the_plan_names_one_algorithm_per_pass(x_shape, w_shape, stride, padding, groups, expected):
    plan = _conv.conv_plan(x_shape, w_shape, stride, padding, (1, 1), groups)
    assert (plan["forward"], plan["input_grad"], plan["weight_grad"]) == expected
    assert set(plan.values()) <= set(_conv.ALGORITHMS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, padding, dilation", [
    ((3, 6, 14, 14), (16, 6, 5, 5), (0, 0), (1, 1)),
    ((2, 4, 12, 12), (8, 4, 3, 3), (1, 1), (1, 1)),
    ((2, 3, 13, 11), (4, 3, 3, 2), (2, 1), (2, 1)),
])
def test_the_shifted_twin_equals_the_compiled_shifted_path(dtype, x_shape, w_shape, padding, dilation):
    plan = _conv.conv_plan(x_shape, w_shape, (1, 1), padding, dilation, 1, dtype=dtype)
    assert plan["forward"] == "shifted"      # the compiled kernel really takes this path
    r = np.random.default_rng(sum(x_shape))
    x = r.standard_normal(x_shape).astype(dtype)
    w = r.standard_normal(w_shape).astype(dtype)
    b = r.standard_normal(w_shape[0]).astype(dtype)
    got = _conv.conv2d_forward(x, w, b, (1, 1), padding, dilation, 1)
    twin = _conv_shifted.conv2d_shifted_forward(x, w, b, padding, dilation)
    # the compiled loop may fuse multiply and add (one rounding instead of two)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, twin, **tol)
    np.testing.assert_allclose(twin, reference.conv2d_forward(x, w, b, (1, 1), padding, dilation, 1),
                               **tol)


def test_tap_offsets_walk_planes_rows_and_columns():
    # 2 channels, 2x3 taps, dilation (2, 1), planes 100 apart, padded rows 10 wide
    off = _conv_shifted.shifted_offsets(2, (2, 3), (2, 1), 100, 10)
    assert off.tolist() == [0, 1, 2, 20, 21, 22, 100, 101, 102, 120, 121, 122]
