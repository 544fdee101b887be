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


def _tolerance(dtype, scale=1.0):
    # the compiled loops may fuse multiply and add, and sum in another order
    eps = 2e-5 if dtype == np.float32 else 1e-12
    return dict(rtol=eps, atol=eps * scale)


def _arrays(dtype, x_shape, w_shape, out_shape):
    r = np.random.default_rng(sum(x_shape) + sum(w_shape))
    return (r.standard_normal(x_shape).astype(dtype), r.standard_normal(w_shape).astype(dtype),
            r.standard_normal(w_shape[0]).astype(dtype), r.standard_normal(out_shape).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, padding, dilation", [
    ((3, 6, 14, 14), (16, 6, 5, 5), (0, 0), (1, 1)),
    ((2, 4, 12, 12), (8, 4, 3, 3), (1, 1), (1, 1)),
    ((2, 4, 13, 11), (4, 4, 3, 2), (2, 1), (2, 1)),   # shifted with 256- and 512-bit tiles
])
def test_the_shifted_gradient_twins_equal_the_compiled_shifted_paths(dtype, x_shape, w_shape,
                                                                     padding, dilation):
    plan = _conv.conv_plan(x_shape, w_shape, (1, 1), padding, dilation, 1, dtype=dtype)
    y_shape = _conv.conv2d_forward(np.zeros(x_shape, dtype), np.zeros(w_shape, dtype), None,
                                   (1, 1), padding, dilation, 1).shape
    x, w, _, g = _arrays(dtype, x_shape, w_shape, y_shape)
    args = ((1, 1), padding, dilation, 1)
    scale = np.sqrt(y_shape[0] * y_shape[2] * y_shape[3] * w_shape[0])
    assert plan["input_grad"] == plan["weight_grad"] == "shifted"
    twin = _conv_shifted.conv2d_shifted_backward_input(g, w, x_shape, padding, dilation)
    np.testing.assert_allclose(_conv.conv2d_backward_input(g, w, x_shape, *args), twin,
                               **_tolerance(dtype, scale))
    np.testing.assert_allclose(twin, reference.conv2d_backward_input(g, w, x_shape, *args),
                               **_tolerance(dtype, scale))
    twin = _conv_shifted.conv2d_shifted_backward_weight(g, x, w_shape, padding, dilation)
    np.testing.assert_allclose(_conv.conv2d_backward_weight(g, x, w_shape, *args), twin,
                               **_tolerance(dtype, scale))
    np.testing.assert_allclose(twin, reference.conv2d_backward_weight(g, x, w_shape, *args),
                               **_tolerance(dtype, scale))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation", [
    ((4, 8, 10, 10), (8, 1, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 3, 9, 11), (6, 1, 3, 5), (1, 1), (2, 1), (2, 1)),    # multiplier 2, dilated
    ((4, 8, 10, 10), (8, 1, 3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 3, 11, 9), (6, 1, 3, 2), (2, 3), (1, 0), (1, 2)),
    ((2, 4, 8, 8), (4, 1, 3, 3), (1, 1), (3, 3), (1, 1)),     # padding past the reach
])
def test_the_depthwise_twins_equal_the_compiled_depthwise_paths(dtype, x_shape, w_shape, stride,
                                                                padding, dilation):
    from nnlite._kernels.reference import _conv_depthwise as dw
    C = x_shape[1]
    args = (stride, padding, dilation, C)
    plan = _conv.conv_plan(x_shape, w_shape, stride, padding, dilation, C, dtype=dtype)
    y_shape = _conv.conv2d_forward(np.zeros(x_shape, dtype), np.zeros(w_shape, dtype), None,
                                   *args).shape
    x, w, b, g = _arrays(dtype, x_shape, w_shape, y_shape)
    scale = np.sqrt(y_shape[0] * y_shape[2] * y_shape[3])
    twins = {
        "depthwise-shifted": (
            lambda: dw.depthwise_shifted_forward(x, w, b, padding, dilation),
            lambda: dw.depthwise_shifted_backward_input(g, w, x_shape, padding, dilation),
            lambda: dw.depthwise_shifted_backward_weight(g, x, w_shape, padding, dilation)),
        "depthwise-direct": (
            lambda: dw.depthwise_direct_forward(x, w, b, stride, padding, dilation),
            lambda: dw.depthwise_direct_backward_input(g, w, x_shape, stride, padding, dilation),
            lambda: dw.depthwise_direct_backward_weight(g, x, w_shape, stride, padding, dilation)),
    }
    compiled = (lambda: _conv.conv2d_forward(x, w, b, *args),
                lambda: _conv.conv2d_backward_input(g, w, x_shape, *args),
                lambda: _conv.conv2d_backward_weight(g, x, w_shape, *args))
    slow = (lambda: reference.conv2d_forward(x, w, b, *args),
            lambda: reference.conv2d_backward_input(g, w, x_shape, *args),
            lambda: reference.conv2d_backward_weight(g, x, w_shape, *args))
    for i, name in enumerate(("forward", "input_grad", "weight_grad")):
        assert plan[name] in twins            # every pass of a depthwise shape is one of these
        twin = twins[plan[name]][i]()
        tol = _tolerance(dtype, scale if name == "weight_grad" else 1.0)
        np.testing.assert_allclose(compiled[i](), twin, **tol, err_msg=name)
        np.testing.assert_allclose(twin, slow[i](), **tol, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, groups", [
    ((4, 8, 10, 10), (16, 8, 1, 1), 1),
    ((3, 6, 7, 5), (4, 3, 1, 1), 2),
])
def test_the_pointwise_twin_equals_the_compiled_pointwise_path(dtype, x_shape, w_shape, groups):
    from nnlite._kernels.reference import _conv_pointwise as pw
    args = ((1, 1), (0, 0), (1, 1), groups)
    plan = _conv.conv_plan(x_shape, w_shape, *args, dtype=dtype)
    assert set(plan.values()) == {"pointwise"}
    y_shape = (x_shape[0], w_shape[0]) + x_shape[2:]
    x, w, b, g = _arrays(dtype, x_shape, w_shape, y_shape)
    tol = _tolerance(dtype, np.sqrt(x_shape[0] * x_shape[2] * x_shape[3]))
    pairs = [(_conv.conv2d_forward(x, w, b, *args), pw.pointwise_forward(x, w, b, groups),
              reference.conv2d_forward(x, w, b, *args)),
             (_conv.conv2d_backward_input(g, w, x_shape, *args),
              pw.pointwise_backward_input(g, w, x_shape, groups),
              reference.conv2d_backward_input(g, w, x_shape, *args)),
             (_conv.conv2d_backward_weight(g, x, w_shape, *args),
              pw.pointwise_backward_weight(g, x, w_shape, groups),
              reference.conv2d_backward_weight(g, x, w_shape, *args))]
    for got, twin, slow in pairs:
        np.testing.assert_allclose(got, twin, **tol)
        np.testing.assert_allclose(twin, slow, **tol)


# ---------------------------------------------------------- a fused ReLU -----

FUSED_RELU_CASES = [   # one per algorithm, with and without a bias
    ((4, 8, 10, 10), (8, 1, 3, 3), (1, 1), (1, 1), 8, "depthwise-shifted"),
    ((4, 8, 10, 10), (8, 1, 3, 3), (2, 2), (1, 1), 8, "depthwise-direct"),
    ((4, 8, 10, 10), (16, 8, 1, 1), (1, 1), (0, 0), 1, "pointwise"),
    ((5, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), 1, "shifted"),
    ((5, 64, 4, 4), (128, 64, 3, 3), (1, 1), (1, 1), 1, "im2col"),
    ((3, 4, 16, 16), (8, 4, 3, 3), (2, 2), (1, 1), 1, "im2col"),
]


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups, algorithm", FUSED_RELU_CASES)
def test_a_fused_relu_gives_the_bytes_of_relu_after_the_convolution(x_shape, w_shape, stride, padding, groups,
                                                                     algorithm, dtype, with_bias):
    from helpers import same_bytes_across_threads
    from nnlite._kernels import _elementwise
    assert _conv.conv_plan(x_shape, w_shape, stride, padding, (1, 1), groups, dtype=dtype)["forward"] == algorithm
    x, w, b, _ = _arrays(dtype, x_shape, w_shape, (1,))
    b = b if with_bias else None
    x[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    args = (x, w, b, stride, padding, (1, 1), groups)
    fused = _conv.conv2d_forward(*args, "relu")
    assert fused.tobytes() == _elementwise.relu_forward(_conv.conv2d_forward(*args)).tobytes()
    assert (fused == 0).mean() > 0.3 and np.isnan(fused).any()
    twin = reference.conv2d_forward(*args, "relu")
    np.testing.assert_allclose(fused, twin, **_tolerance(dtype, np.abs(twin[~np.isnan(twin)]).max()))
    same_bytes_across_threads(_conv.conv2d_forward, *args, "relu")


@pytest.mark.parametrize("impl", [_conv, reference])
def test_conv2d_forward_refuses_an_activation_it_does_not_fuse(impl):
    x, w = np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="conv2d_forward: activation must be None or 'relu', got 'tanh'"):
        impl.conv2d_forward(x, w, None, (1, 1), (0, 0), (1, 1), 1, "tanh")
