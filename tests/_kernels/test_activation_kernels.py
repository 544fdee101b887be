"""Activation kernels with a parameter or a corner (``_activations``): against the twins,
PyTorch, finite differences and float64, on 1, 2 and 4 threads, and with bad input."""
import numpy as np
import pytest
from helpers import same_bytes_across_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlite._kernels import _activations, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-6, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name -> (arguments built from x, g, positive mask; equal to the twin bit for bit)
CASES = {
    "leaky_relu_forward/save": (lambda x, g, m: (x, 0.2, True), True),
    "leaky_relu_forward/negative slope": (lambda x, g, m: (x, -1.5), True),
    "hardtanh_forward/save": (lambda x, g, m: (x, -1.0, 2.5, True), True),
    "hardtanh_forward/relu6": (lambda x, g, m: (x, 0.0, 6.0), True),
    "hardsigmoid_forward/save": (lambda x, g, m: (x, True), True),
    "hardsigmoid_forward": (lambda x, g, m: (x,), True),
    "masked_slope_backward": (lambda x, g, m: (g, m, 1.0, 0.01), True),
    "masked_slope_backward/sixth": (lambda x, g, m: (g, m, 1 / 6, 0.0), True),
    "masked_slope_backward/flat": (lambda x, g, m: (g, m, 1 / 6, None), True),
    "hardswish_forward": (lambda x, g, m: (x,), True),
    "hardswish_backward": (lambda x, g, m: (g, x), True),
    "elu_forward/save": (lambda x, g, m: (x, 1.0, 1.0, True), False),
    "elu_forward": (lambda x, g, m: (x, 0.5, 1.0), False),
    "elu_forward/selu": (lambda x, g, m: (x, SELU_ALPHA, SELU_SCALE, True), False),
    "softplus_forward": (lambda x, g, m: (x, 1.0, 20.0), False),
    "softplus_forward/beta 2, threshold 3": (lambda x, g, m: (x, 2.0, 3.0), False),
    "softplus_backward": (lambda x, g, m: (g, x, 1.0, 20.0), False),
    "softplus_backward/beta 2, threshold 3": (lambda x, g, m: (g, x, 2.0, 3.0), False),
    "mish_forward": (lambda x, g, m: (x,), False),
    "mish_backward": (lambda x, g, m: (g, x), False),
    "logsigmoid_forward": (lambda x, g, m: (x,), False),
    "logsigmoid_backward": (lambda x, g, m: (g, x), False),
}

shapes = st.sampled_from([(), (0,), (1,), (7,), (0, 3), (1, 1), (3, 5), (4, 7), (2, 3, 5), (65, 9)])


def make(rng, shape, dtype, layout):
    """Random values of ``shape`` (with exact corners -3, 0, 3 among them): C-contiguous, a
    transpose, or every other element."""
    def draw(s):
        v = rng.standard_normal(s) * 4
        v.reshape(-1)[::5] = rng.choice([-3.0, 0.0, 3.0, -1.0, 6.0], v.size)[::5] if v.size else []
        return v
    if layout == "t" and len(shape) >= 2:
        return draw(shape[::-1]).astype(dtype).T
    if layout == "s" and len(shape) >= 1:
        return draw(shape[:-1] + (2 * shape[-1],)).astype(dtype)[..., ::2]
    return np.asarray(draw(shape), dtype=dtype)


def kernel(name):
    return name.split("/")[0]


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, layout=st.sampled_from(["c", "t", "s"]), dtype=st.sampled_from(DTYPES))
def test_kernels_match_twins(shape, layout, dtype):
    rng = np.random.default_rng(len(shape))
    x, g = make(rng, shape, dtype, layout), make(rng, shape, dtype, layout)
    mask = np.asarray(make(rng, shape, dtype, layout) > 0)
    for name, (build, bitwise) in CASES.items():
        args = build(x, g, mask)
        outs = as_tuple(getattr(_activations, kernel(name))(*args))
        wants = as_tuple(getattr(reference, kernel(name))(*args))
        assert len(outs) == len(wants), name
        for out, want in zip(outs, wants):
            assert out.shape == shape and out.dtype == want.dtype and out.flags.c_contiguous, name
            if bitwise or want.dtype == np.bool_:
                assert out.tobytes() == want.tobytes(), name
            else:
                np.testing.assert_allclose(out, want, **TOL[dtype], err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bytes_for_1_2_4_threads(rng, dtype):
    x = (rng.standard_normal((301, 67)) * 4).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    for name, (build, _) in CASES.items():
        same_bytes_across_threads(getattr(_activations, kernel(name)), *build(x, g, x > 0))


def test_masks_and_saved_slopes(rng):
    x = np.array([-4.0, -3.0, -1.0, -0.0, 0.0, 0.5, 3.0, 7.0, np.nan])
    _, positive = _activations.leaky_relu_forward(x, 0.1, True)
    np.testing.assert_array_equal(positive, x > 0)
    _, inside = _activations.hardtanh_forward(x, -1.0, 3.0, True)
    np.testing.assert_array_equal(inside, (x > -1) & (x < 3) | np.isnan(x))   # bounds out, NaN in
    _, inside = _activations.hardsigmoid_forward(x, True)
    np.testing.assert_array_equal(inside, (x > -3) & (x < 3))
    y, slope, negative = _activations.elu_forward(x[:-1], 2.0, 1.5, True)
    np.testing.assert_allclose(slope, np.where(x[:-1] > 0, 1.5, 3.0 * np.exp(x[:-1])), rtol=1e-15)
    np.testing.assert_array_equal(negative, x[:-1] < 0)
    np.testing.assert_allclose(y, np.where(x[:-1] > 0, 1.5 * x[:-1], 3.0 * np.expm1(x[:-1])), rtol=1e-15)
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(_activations.masked_slope_backward(g, x > 0, 2.0, -0.5),
                                  np.where(x > 0, 2 * g, -0.5 * g))
    # a slope of 0 is a plain product (-0.0 for a negative grad, NaN for an infinite or NaN one);
    # a flat piece (slope_false=None) gives 0 itself
    odd = np.array([-1.0, np.inf, np.nan, 2.0])
    product = _activations.masked_slope_backward(odd, np.zeros(4, bool), 1.0, 0.0)
    assert np.signbit(product[0]) and np.isnan(product[1:3]).all() and product[3] == 0
    flat = _activations.masked_slope_backward(odd, np.array([False, False, False, True]), 1.0, None)
    assert flat.tolist() == [0.0, 0.0, 0.0, 2.0] and not np.signbit(flat).any()


# -------------------------------------------------------------------- torch -----

def test_values_and_gradients_match_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((20, 30)) * 4
    x.reshape(-1)[::7] = rng.choice([-3.0, 0.0, 3.0, -1.0, 6.0, 1.0], x.size)[::7]   # the corners
    g = rng.standard_normal(x.shape)
    A = _activations
    cases = {   # torch function; our forward; our gradient from x, y and g
        "leaky_relu": (lambda t: F.leaky_relu(t, 0.2), lambda: A.leaky_relu_forward(x, 0.2, True),
                       lambda out: A.masked_slope_backward(g, out[1], 1.0, 0.2)),
        "hardtanh": (lambda t: F.hardtanh(t, -1.0, 3.0), lambda: A.hardtanh_forward(x, -1.0, 3.0, True),
                     lambda out: A.masked_slope_backward(g, out[1], 1.0, 0.0)),
        "relu6": (F.relu6, lambda: A.hardtanh_forward(x, 0.0, 6.0, True),
                  lambda out: A.masked_slope_backward(g, out[1], 1.0, 0.0)),
        "hardswish": (F.hardswish, lambda: (A.hardswish_forward(x),), lambda out: A.hardswish_backward(g, x)),
        "elu": (lambda t: F.elu(t, 0.7), lambda: A.elu_forward(x, 0.7, 1.0, True), lambda out: g * out[1]),
        "selu": (F.selu, lambda: A.elu_forward(x, SELU_ALPHA, SELU_SCALE, True), lambda out: g * out[1]),
        "softplus": (F.softplus, lambda: (A.softplus_forward(x, 1.0, 20.0),),
                     lambda out: A.softplus_backward(g, x, 1.0, 20.0)),
        "softplus/2,3": (lambda t: F.softplus(t, 2.0, 3.0), lambda: (A.softplus_forward(x, 2.0, 3.0),),
                         lambda out: A.softplus_backward(g, x, 2.0, 3.0)),
        "mish": (F.mish, lambda: (A.mish_forward(x),), lambda out: A.mish_backward(g, x)),
        "logsigmoid": (F.logsigmoid, lambda: (A.logsigmoid_forward(x),), lambda out: A.logsigmoid_backward(g, x)),
    }
    for name, (torch_fn, forward, backward) in cases.items():
        xt = torch.tensor(x, requires_grad=True)
        yt = torch_fn(xt)
        yt.backward(torch.tensor(g))
        out = as_tuple(forward())
        np.testing.assert_allclose(out[0], yt.detach().numpy(), rtol=1e-13, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(backward(out), xt.grad.numpy(), rtol=1e-13, atol=1e-15, err_msg=name)
    # hardsigmoid: PyTorch's float64 slope is 1/6 rounded to float32 (nnlite keeps 1/6 in float64)
    xt = torch.tensor(x, requires_grad=True)
    F.hardsigmoid(xt).backward(torch.tensor(g))
    y, inside = A.hardsigmoid_forward(x, True)
    np.testing.assert_allclose(y, F.hardsigmoid(torch.tensor(x)).numpy(), rtol=1e-15, atol=0)
    np.testing.assert_allclose(A.masked_slope_backward(g, inside, 1 / 6, 0.0), xt.grad.numpy(), rtol=1e-7)


def test_float32_matches_torch_bit_for_bit_where_it_is_piecewise(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = (rng.standard_normal(4000) * 4).astype(np.float32)
    x[::9] = rng.choice(np.float32([-3.0, 0.0, 3.0, -1.0, 6.0]), x[::9].size)
    g = rng.standard_normal(x.shape).astype(np.float32)
    A = _activations
    for name, fwd, torch_fn in (("leaky", lambda: A.leaky_relu_forward(x, 0.01), F.leaky_relu),
                                ("hardtanh", lambda: A.hardtanh_forward(x, -1.0, 1.0), F.hardtanh),
                                ("relu6", lambda: A.hardtanh_forward(x, 0.0, 6.0), F.relu6),
                                ("hardsigmoid", lambda: A.hardsigmoid_forward(x), F.hardsigmoid),
                                ("hardswish", lambda: A.hardswish_forward(x), F.hardswish)):
        assert fwd().tobytes() == torch_fn(torch.tensor(x)).numpy().tobytes(), name
    xt = torch.tensor(x, requires_grad=True)
    F.hardswish(xt).backward(torch.tensor(g))
    assert A.hardswish_backward(g, x).tobytes() == xt.grad.numpy().tobytes()
    for forward, slope, torch_fn in ((lambda: A.hardtanh_forward(x, -1.0, 1.0, True), 1.0, F.hardtanh),
                                     (lambda: A.hardsigmoid_forward(x, True), 1 / 6, F.hardsigmoid)):
        xt = torch.tensor(x, requires_grad=True)
        torch_fn(xt).backward(torch.tensor(g))
        assert A.masked_slope_backward(g, forward()[1], slope, None).tobytes() == xt.grad.numpy().tobytes()


# ------------------------------------------------------- finite differences -----

def test_backward_kernels_match_central_differences(rng):
    x = rng.uniform(-5, 5, size=(6, 7))
    for corner in (-3.0, 0.0, 3.0, -1.0, 2.0, 1.5):   # keep the stencil off every kink
        x[np.abs(x - corner) < 1e-3] += 0.01
    g = rng.standard_normal(x.shape)
    h = 1e-6
    central = lambda f: (f(x + h) - f(x - h)) / (2 * h)
    A = _activations
    checks = {
        "leaky_relu": (A.masked_slope_backward(g, A.leaky_relu_forward(x, 0.3, True)[1], 1.0, 0.3),
                       central(lambda v: A.leaky_relu_forward(v, 0.3))),
        "hardtanh": (A.masked_slope_backward(g, A.hardtanh_forward(x, -1.0, 2.0, True)[1], 1.0, 0.0),
                     central(lambda v: A.hardtanh_forward(v, -1.0, 2.0))),
        "hardsigmoid": (A.masked_slope_backward(g, A.hardsigmoid_forward(x, True)[1], 1 / 6, 0.0),
                        central(A.hardsigmoid_forward)),
        "hardswish": (A.hardswish_backward(g, x), central(A.hardswish_forward)),
        "elu": (g * A.elu_forward(x, 1.3, 1.0, True)[1], central(lambda v: A.elu_forward(v, 1.3, 1.0))),
        "selu": (g * A.elu_forward(x, SELU_ALPHA, SELU_SCALE, True)[1],
                 central(lambda v: A.elu_forward(v, SELU_ALPHA, SELU_SCALE))),
        "softplus": (A.softplus_backward(g, x, 1.0, 20.0), central(lambda v: A.softplus_forward(v, 1.0, 20.0))),
        "softplus/beta 2": (A.softplus_backward(g, x, 2.0, 3.0), central(lambda v: A.softplus_forward(v, 2.0, 3.0))),
        "mish": (A.mish_backward(g, x), central(A.mish_forward)),
        "logsigmoid": (A.logsigmoid_backward(g, x), central(A.logsigmoid_forward)),
    }
    for name, (analytic, derivative) in checks.items():
        np.testing.assert_allclose(analytic, g * derivative, rtol=1e-6, atol=1e-8, err_msg=name)


# --------------------------------------------------- float32 accuracy, edges -----

def test_float32_smooth_kernels_within_a_few_ulp_of_float64():
    """The float32 loops take exp and tanh from _fastmath.h and e^x - 1 as 2t / (1 - t):
    hold them to float64 over a wide range."""
    x = np.concatenate([np.linspace(-30, 30, 60001), np.logspace(-20, 1.5, 2001),
                        -np.logspace(-20, 1.5, 2001)]).astype(np.float32)
    x64 = x.astype(np.float64)
    A = _activations
    exact = {"elu": (A.elu_forward(x, 1.0, 1.0), np.where(x64 > 0, x64, np.expm1(x64))),
             "softplus": (A.softplus_forward(x, 1.0, 20.0), np.where(x64 > 20, x64, np.logaddexp(0, x64))),
             "mish": (A.mish_forward(x), x64 * np.tanh(np.logaddexp(0, x64))),
             "logsigmoid": (A.logsigmoid_forward(x), -np.logaddexp(0, -x64))}
    for name, (ours, want) in exact.items():
        ulp = np.abs(ours.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
        assert ulp.max() <= 8, (name, ulp.max(), x[np.argmax(ulp)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_stay_finite_and_nan_passes(dtype):
    big = np.array([-1e30, -1e4, -100.0, -0.0, 0.0, 100.0, 1e4, 1e30], dtype)
    A = _activations
    with np.errstate(all="raise"):
        outs = {"elu": A.elu_forward(big, 1.0, 1.0, True), "softplus": A.softplus_forward(big, 1.0, 20.0),
                "softplus_b": A.softplus_backward(np.ones_like(big), big, 1.0, 20.0),
                "mish": A.mish_forward(big), "mish_b": A.mish_backward(np.ones_like(big), big),
                "logsigmoid": A.logsigmoid_forward(big),
                "logsigmoid_b": A.logsigmoid_backward(np.ones_like(big), big)}
    for name, out in outs.items():
        for o in as_tuple(out):
            assert np.isfinite(o.astype(np.float64)).all(), name
    np.testing.assert_array_equal(outs["elu"][0][:2], [-1.0, -1.0])
    np.testing.assert_array_equal(outs["logsigmoid"][-2:], [0.0, 0.0])
    np.testing.assert_array_equal(outs["logsigmoid"][:2], big[:2])
    assert np.signbit(A.elu_forward(big[3:4], 1.0, 1.0)[0])            # -0.0 stays -0.0 (alpha > 0)
    nan = np.array([np.nan], dtype)
    for fn in (lambda v: A.leaky_relu_forward(v, 0.1), lambda v: A.hardtanh_forward(v, -1.0, 1.0),
               A.hardsigmoid_forward, A.hardswish_forward, lambda v: A.elu_forward(v, 1.0, 1.0),
               lambda v: A.softplus_forward(v, 1.0, 20.0), A.mish_forward, A.logsigmoid_forward):
        assert np.isnan(fn(nan)[0])


# --------------------------------------------------------------- bad input -----

@pytest.mark.parametrize("module", [_activations, reference], ids=["compiled", "twin"])
def test_bad_inputs_raise_clear_errors(module):
    A = module
    x32, x64 = np.ones((2, 3), np.float32), np.ones((2, 3))
    with pytest.raises(TypeError, match="x must be float32 or float64, got int32"):
        A.leaky_relu_forward(np.ones(3, np.int32), 0.1)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
        A.mish_forward([1.0, 2.0])
    with pytest.raises(TypeError, match="negative_slope must be a real number.*str"):
        A.leaky_relu_forward(x64, "0.1")
    with pytest.raises(ValueError, match=r"min_val \(2.0\) cannot be greater than max_val \(1.0\)"):
        A.hardtanh_forward(x64, 2.0, 1.0)
    with pytest.raises(TypeError, match="mask must be a bool numpy.ndarray, got float64"):
        A.masked_slope_backward(x64, x64, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"mask must have the shape of grad \(2, 3\), got \(3, 2\)"):
        A.masked_slope_backward(x64, np.ones((3, 2), bool), 1.0, 0.0)
    with pytest.raises(TypeError, match=r"share one dtype, got float32 \(grad\) and float64 \(x\)$"):
        A.hardswish_backward(x32, x64)
    with pytest.raises(ValueError, match=r"x must have the shape of grad \(2, 3\), got \(3, 2\)"):
        A.softplus_backward(x64, x64.T.copy(), 1.0, 20.0)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        A.elu_forward(x64, None, 1.0)
    with pytest.raises(TypeError, match="byte order"):
        A.logsigmoid_backward(x64, x64.astype(">f8"))
