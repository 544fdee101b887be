"""NumPy twins of the kernels in ``nnlite/_kernels/_activations.pyx``.

Leaky ReLU, hardtanh, hardsigmoid, hardswish, ELU, softplus, mish and log-sigmoid,
and the gradient of a piecewise-linear activation from the mask its forward kept.
The piecewise-linear twins are equal to the kernels bit for bit; the smooth ones,
which call exp, tanh and log1p, to rounding (NumPy's and the kernels' float32 exp,
tanh and log1p differ in the last bit).

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks
from ._elementwise import _elementwise_c_order as _out, _elementwise_floats, _sigmoid

__all__ = ["elu_forward", "hardsigmoid_forward", "hardswish_backward", "hardswish_forward",
           "hardtanh_forward", "leaky_relu_forward", "logsigmoid_backward", "logsigmoid_forward",
           "masked_slope_backward", "mish_backward", "mish_forward", "softplus_backward",
           "softplus_forward"]


def _clamp_0_6(v):
    """min(max(v, 0), 6) with NaN passing through, as the kernels' comparisons let it."""
    return np.where(v > 6, v.dtype.type(6), np.where(v < 0, v.dtype.type(0), v))


def _expm1_nonpositive(v):
    """e^v - 1 for v <= 0: float32 as the kernel forms it, 2t / (1 - t) with t = tanh(v/2)."""
    if v.dtype == np.float32:
        t = np.tanh(v * np.float32(0.5))
        return 2 * t / (1 - t)
    return np.expm1(v)


def _softplus_stable(z):
    """log(1 + e^z) as max(z, 0) + log1p(e^-|z|)."""
    return np.where(z > 0, z, z.dtype.type(0)) + np.log1p(np.exp(-np.abs(z)))


def leaky_relu_forward(x, negative_slope, save=False):
    """x where x > 0, ``negative_slope * x`` elsewhere; with ``save``, ``(y, x > 0)``."""
    op = "leaky_relu_forward"
    _elementwise_floats(op, (x,), ("x",))
    slope = x.dtype.type(checks.real_number(op, "negative_slope", negative_slope))
    save = checks.flag(op, "save", save)
    positive = x > 0
    with np.errstate(invalid="ignore"):   # -inf * 0 is NaN in the unused branch
        y = _out(np.where(positive, x, x * slope))
    return (y, _out(positive)) if save else y


def hardtanh_forward(x, min_val, max_val, save=False):
    """x clamped to [min_val, max_val]; with ``save``, ``(y, inside)``: min_val < x < max_val,
    or x is NaN."""
    op = "hardtanh_forward"
    _elementwise_floats(op, (x,), ("x",))
    low = checks.real_number(op, "min_val", min_val)
    high = checks.real_number(op, "max_val", max_val)
    if low > high:
        raise ValueError(f"{op}: min_val ({low}) cannot be greater than max_val ({high})")
    save = checks.flag(op, "save", save)
    low, high = x.dtype.type(low), x.dtype.type(high)
    y = _out(np.where(x < low, low, np.where(x > high, high, x)))
    return (y, _out(~((x <= low) | (x >= high)))) if save else y


def hardsigmoid_forward(x, save=False):
    """``min(max(x + 3, 0), 6) / 6``; with ``save``, ``(y, -3 < x < 3)``."""
    _elementwise_floats("hardsigmoid_forward", (x,), ("x",))
    save = checks.flag("hardsigmoid_forward", "save", save)
    y = _out(_clamp_0_6(x + x.dtype.type(3)) / x.dtype.type(6))
    return (y, _out((x > -3) & (x < 3))) if save else y


def masked_slope_backward(grad, mask, slope_true, slope_false):
    """``grad * (slope_true if mask else slope_false)``, the slopes rounded to grad's dtype;
    ``slope_false=None``: 0 itself where the mask is False."""
    op = "masked_slope_backward"
    _elementwise_floats(op, (grad,), ("grad",))
    a = grad.dtype.type(checks.real_number(op, "slope_true", slope_true))
    flat = slope_false is None
    b = grad.dtype.type(0 if flat else checks.real_number(op, "slope_false", slope_false))
    checks.bool_mask(op, "mask", mask)
    if mask.shape != grad.shape:
        raise ValueError(f"{op}: mask must have the shape of grad {grad.shape}, got {mask.shape}")
    with np.errstate(invalid="ignore"):   # inf * 0 is NaN, as in the kernel, without a warning
        product = grad * np.where(mask, a, b)
    return _out(np.where(mask, product, grad.dtype.type(0)) if flat else product)


def hardswish_forward(x):
    """``x * min(max(x + 3, 0), 6) / 6``."""
    _elementwise_floats("hardswish_forward", (x,), ("x",))
    with np.errstate(invalid="ignore"):   # -inf * 0 is NaN, as in the kernel, without a warning
        return _out(x * _clamp_0_6(x + x.dtype.type(3)) / x.dtype.type(6))


def hardswish_backward(grad, x):
    """0 for x <= -3, ``grad * (x/3 + 1/2)`` for -3 < x < 3, grad for x >= 3 (and NaN)."""
    _elementwise_floats("hardswish_backward", (grad, x), ("grad", "x"))
    t = x.dtype.type
    middle = grad * (x / t(3) + t(0.5))
    return _out(np.where(x <= -3, t(0), np.where(x < 3, middle, grad)))


def elu_forward(x, alpha, scale, save=False):
    """``scale * x`` for x > 0, ``scale * alpha * (e^x - 1)`` otherwise; with ``save``,
    ``(y, slope, x < 0)`` where slope is ``scale`` or ``scale * alpha * e^x``."""
    op = "elu_forward"
    _elementwise_floats(op, (x,), ("x",))
    a, s = checks.real_number(op, "alpha", alpha), checks.real_number(op, "scale", scale)
    save = checks.flag(op, "save", save)
    t = x.dtype.type
    alpha_scale, s = t(a * s), t(s)
    positive = x > 0
    left = np.where(positive, t(0), x)   # e^x of the right side is never used, and may overflow
    y = _out(np.where(positive, x * s, _expm1_nonpositive(left) * alpha_scale))
    if not save:
        return y
    return y, _out(np.where(x <= 0, np.exp(left) * alpha_scale, s)), _out(x < 0)


def softplus_forward(x, beta, threshold):
    """``log(1 + e^(beta x)) / beta``, and x itself where ``beta * x > threshold``."""
    op = "softplus_forward"
    _elementwise_floats(op, (x,), ("x",))
    t = x.dtype.type
    beta = t(checks.real_number(op, "beta", beta))
    threshold = t(checks.real_number(op, "threshold", threshold))
    z = x * beta
    with np.errstate(divide="ignore", invalid="ignore"):   # beta = 0 gives inf, as in PyTorch
        return _out(np.where(z > threshold, x, _softplus_stable(z) / beta))


def softplus_backward(grad, x, beta, threshold):
    """grad times ``sigmoid(beta x)``, and grad itself where ``beta * x > threshold``."""
    op = "softplus_backward"
    _elementwise_floats(op, (grad, x), ("grad", "x"))
    t = x.dtype.type
    beta = t(checks.real_number(op, "beta", beta))
    threshold = t(checks.real_number(op, "threshold", threshold))
    with np.errstate(invalid="ignore"):   # inf * 0 for beta = 0, as in the kernel
        z = x * beta
        return _out(grad * np.where(z > threshold, t(1), _sigmoid(z)))


def mish_forward(x):
    """``x * tanh(softplus(x))``."""
    _elementwise_floats("mish_forward", (x,), ("x",))
    with np.errstate(invalid="ignore"):   # -inf * 0 is NaN, as in the kernel, without a warning
        return _out(x * np.tanh(_softplus_stable(x)))


def mish_backward(grad, x):
    """grad times ``t + x sigmoid(x) (1 - t^2)`` with t = tanh(softplus(x))."""
    _elementwise_floats("mish_backward", (grad, x), ("grad", "x"))
    t = np.tanh(_softplus_stable(x))
    return _out(grad * (t + x * _sigmoid(x) * (1 - t * t)))


def logsigmoid_forward(x):
    """``min(x, 0) - log1p(e^-|x|)``."""
    _elementwise_floats("logsigmoid_forward", (x,), ("x",))
    return _out(np.where(x < 0, x, x.dtype.type(0)) - np.log1p(np.exp(-np.abs(x))))


def logsigmoid_backward(grad, x):
    """grad times ``sigmoid(-x)``: ``1 - q`` for x < 0 and ``q`` otherwise,
    ``q = e^-|x| / (1 + e^-|x|)``."""
    _elementwise_floats("logsigmoid_backward", (grad, x), ("grad", "x"))
    e = np.exp(-np.abs(x))
    q = e / (1 + e)
    return _out(grad * np.where(x < 0, 1 - q, q))
