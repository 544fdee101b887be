"""Elementary functions: logarithms, exponentials, trigonometric and hyperbolic functions.

Each Function states its derivative under its forward, written with
differentiable operations, so second derivatives come for free. Integer and
bool tensors are computed in the default float dtype (``log1p`` of an int64
tensor is float32) and the operands of the two-argument functions promote as in
PyTorch (:mod:`nnlite.ops.promotion`).

At the edges of their domains the functions give what PyTorch gives: ``log1p(-1)``
is -inf and ``asin(2)`` NaN, without an error. Where a formula meets 0/0 at a
point where PyTorch defines a value (``sinc(0) = 1``, ``xlogy(0, y) = 0``, the
slope of ``atan2`` at the origin), that value is used, and NumPy's warning
about the planned 0/0 is silenced; warnings for arguments outside a domain are
NumPy's, as for ``nl.log``.

``exp``, ``log``, ``sqrt``, ``sin``, ``cos`` and ``tanh`` are in :mod:`nnlite.ops.pointwise`.
"""
import math

import numpy as np

from .._kernels.checks import real_number
from ..autograd import Function, constant
from ..tensor import Tensor
from .arithmetic import _wants, _zero_where
from .compare import where
from .pointwise import cos, rsqrt, sigmoid
from .promotion import broadcast_shape, floating_dtype, floating_input, operand
from .shape import sum_to

LN2, LN10 = math.log(2.0), math.log(10.0)


# ---------------------------------------------------- logarithms, exponentials --

class Log1p(Function):
    """log(1 + x); d/dx = 1 / (1 + x)."""

    def forward(self, a):
        return np.log1p(a)

    def backward(self, grad):
        return grad / (self.inputs[0] + 1)


class Expm1(Function):
    """e^x - 1; d/dx = e^x = out + 1."""
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return np.expm1(a)

    def backward(self, grad):
        return grad * (self.out + 1)


class Log2(Function):
    """log2(x); d/dx = 1 / (x ln 2)."""

    def forward(self, a):
        return np.log2(a)

    def backward(self, grad):
        return grad / (self.inputs[0] * LN2)


class Log10(Function):
    """log10(x); d/dx = 1 / (x ln 10)."""

    def forward(self, a):
        return np.log10(a)

    def backward(self, grad):
        return grad / (self.inputs[0] * LN10)


class Exp2(Function):
    """2^x; d/dx = 2^x ln 2 = out ln 2."""
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return np.exp2(a)

    def backward(self, grad):
        return grad * self.out * LN2


def log1p(input):
    """:math:`\\log(1 + x)`, exact where x is tiny (``log(1 + 1e-20)`` would round to 0).

    -1 gives -inf and x < -1 gives NaN, as in PyTorch.
    """
    return Log1p.apply(floating_input("log1p", input))


def expm1(input):
    """:math:`e^x - 1`, exact where x is tiny. -inf gives -1 and large x overflows to inf."""
    return Expm1.apply(floating_input("expm1", input))


def log2(input):
    """:math:`\\log_2 x`. 0 gives -inf and x < 0 gives NaN, as in PyTorch."""
    return Log2.apply(floating_input("log2", input))


def log10(input):
    """:math:`\\log_{10} x`. 0 gives -inf and x < 0 gives NaN, as in PyTorch."""
    return Log10.apply(floating_input("log10", input))


def exp2(input):
    """:math:`2^x`. -inf gives 0 and large x overflows to inf."""
    return Exp2.apply(floating_input("exp2", input))


# ------------------------------------------------------------- trigonometric --

class Tan(Function):
    """tan x; d/dx = 1 + tan^2 x = 1 + out^2."""
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return np.tan(a)

    def backward(self, grad):
        out = self.out
        return grad * (out * out + 1)


class Asin(Function):
    """arcsin x; d/dx = 1 / sqrt(1 - x^2)."""

    def forward(self, a):
        return np.arcsin(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad * rsqrt(1 - x * x)


class Acos(Function):
    """arccos x; d/dx = -1 / sqrt(1 - x^2)."""

    def forward(self, a):
        return np.arccos(a)

    def backward(self, grad):
        x = self.inputs[0]
        return -grad * rsqrt(1 - x * x)


class Atan(Function):
    """arctan x; d/dx = 1 / (1 + x^2)."""

    def forward(self, a):
        return np.arctan(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad / (x * x + 1)


def tan(input):
    """:math:`\\tan x`. Near the poles (pi/2 + k pi) the value is large, not inf: pi/2 is not exact."""
    return Tan.apply(floating_input("tan", input))


def asin(input):
    """:math:`\\arcsin x` in [-pi/2, pi/2].

    :math:`|x| > 1` gives NaN; the slope at ±1 is inf, as in PyTorch.
    """
    return Asin.apply(floating_input("asin", input))


def acos(input):
    """:math:`\\arccos x` in [0, pi].

    :math:`|x| > 1` gives NaN; the slope at ±1 is -inf, as in PyTorch.
    """
    return Acos.apply(floating_input("acos", input))


def atan(input):
    """:math:`\\arctan x` in (-pi/2, pi/2); ±inf gives ±pi/2."""
    return Atan.apply(floating_input("atan", input))


# ---------------------------------------------------------------- hyperbolic --

class Sinh(Function):
    """sinh x; d/dx = cosh x."""

    def forward(self, a):
        return np.sinh(a)

    def backward(self, grad):
        return grad * cosh(self.inputs[0])


class Cosh(Function):
    """cosh x; d/dx = sinh x."""

    def forward(self, a):
        return np.cosh(a)

    def backward(self, grad):
        return grad * sinh(self.inputs[0])


class Asinh(Function):
    """arsinh x; d/dx = 1 / sqrt(x^2 + 1)."""

    def forward(self, a):
        return np.arcsinh(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad * rsqrt(x * x + 1)


class Acosh(Function):
    """arcosh x; d/dx = 1 / sqrt(x^2 - 1)."""

    def forward(self, a):
        return np.arccosh(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad * rsqrt(x * x - 1)


class Atanh(Function):
    """artanh x; d/dx = 1 / (1 - x^2)."""

    def forward(self, a):
        return np.arctanh(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad / (1 - x * x)


def sinh(input):
    """:math:`\\sinh x = (e^x - e^{-x}) / 2`.

    Overflows to ±inf beyond :math:`|x|` of about 710 (89 in float32).
    """
    return Sinh.apply(floating_input("sinh", input))


def cosh(input):
    """:math:`\\cosh x = (e^x + e^{-x}) / 2`.

    Overflows to inf beyond :math:`|x|` of about 710 (89 in float32).
    """
    return Cosh.apply(floating_input("cosh", input))


def asinh(input):
    """:math:`\\operatorname{arsinh} x = \\log(x + \\sqrt{x^2 + 1})`, defined for every x."""
    return Asinh.apply(floating_input("asinh", input))


def acosh(input):
    """:math:`\\operatorname{arcosh} x = \\log(x + \\sqrt{x^2 - 1})`. x < 1 gives NaN; the slope at 1 is inf."""
    return Acosh.apply(floating_input("acosh", input))


def atanh(input):
    """:math:`\\operatorname{artanh} x = \\frac12 \\log\\frac{1 + x}{1 - x}`.

    ±1 gives ±inf and :math:`|x| > 1` gives NaN, as in PyTorch.
    """
    return Atanh.apply(floating_input("atanh", input))


# ------------------------------------------------------------- two arguments --

def _binary(op, cls, input, other):
    """``cls`` applied to the operands promoted to one float dtype, after checking they broadcast."""
    if type(input) is Tensor and type(other) is Tensor and input.dtype == other.dtype and input.dtype.kind == "f":
        a, b = input, other   # the common case, without the promotion rules' cost
    else:
        dtype = floating_dtype(op, input, other)
        a, b = operand(op, "input", input, dtype), operand(op, "other", other, dtype)
    if a.shape != b.shape:
        broadcast_shape(op, a, b)
    return cls.apply(a, b)


class Atan2(Function):
    """The angle of the point (other, input); d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2).

    At the origin the slope is undefined; PyTorch takes it as 0 for both, and so does this op.
    """

    def forward(self, a, b):
        return np.arctan2(a, b)

    def backward(self, grad):
        a, b = self.inputs
        r2 = a * a + b * b
        origin = r2.data == 0
        if np.any(origin):
            r2 = where(constant(origin), 1.0, r2)
        return (sum_to(_zero_where(origin, grad * b / r2), a.shape) if _wants(a) else None,
                sum_to(_zero_where(origin, -grad * a / r2), b.shape) if _wants(b) else None)


class Hypot(Function):
    """sqrt(a^2 + b^2) without overflow; d/da = a / out, d/db = b / out (NaN at the origin, as PyTorch)."""
    save_output = True

    def forward(self, a, b):
        return np.hypot(a, b)

    def backward(self, grad):
        a, b = self.inputs
        out = self.out
        return (sum_to(grad * a / out, a.shape) if _wants(a) else None,
                sum_to(grad * b / out, b.shape) if _wants(b) else None)


class LogAddExp(Function):
    """log(e^a + e^b); d/da = sigmoid(a - b), d/db = sigmoid(b - a)."""

    def forward(self, a, b):
        return np.logaddexp(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad * sigmoid(a - b), a.shape) if _wants(a) else None,
                sum_to(grad * sigmoid(b - a), b.shape) if _wants(b) else None)


class LogAddExp2(Function):
    """log2(2^a + 2^b); d/da = 1 / (1 + 2^(b - a)) = sigmoid((a - b) ln 2)."""

    def forward(self, a, b):
        return np.logaddexp2(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad * sigmoid((a - b) * LN2), a.shape) if _wants(a) else None,
                sum_to(grad * sigmoid((b - a) * LN2), b.shape) if _wants(b) else None)


class XLogY(Function):
    """x log y, 0 where x = 0 (unless y is NaN); d/dx = log y, d/dy = x / y.

    PyTorch's slopes at the edges: d/dx is 0 where x = 0 and y <= 0 (where log y is
    -inf or NaN but x log y is held at 0), and 0 wherever the incoming gradient is 0.
    """

    def forward(self, x, y):
        with np.errstate(divide="ignore", invalid="ignore"):   # 0 * log 0 is replaced by 0
            out = x * np.log(y)
        held = x == 0
        return np.where(held & ~np.isnan(y), 0, out) if held.any() else out

    def backward(self, grad):
        x, y = self.inputs
        gx = gy = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if _wants(x):
                held = (x.data == 0) & (y.data <= 0)
                gx = sum_to(_zero_where(held, XLogY.apply(grad, y)), x.shape)
            if _wants(y):
                gy = sum_to(grad * x / y, y.shape)
        return gx, gy


def atan2(input, other):
    """:math:`\\operatorname{atan2}(y, x)`, the angle in (-pi, pi] of the point (x = other, y = input).

    The signs of zeros pick the quadrant (atan2(0, -0) = pi, atan2(-0, -1) = -pi), and
    the slope at the origin is 0, as in PyTorch.
    """
    return _binary("atan2", Atan2, input, other)


arctan2 = atan2


def hypot(input, other):
    """:math:`\\sqrt{a^2 + b^2}` without overflow or underflow on the way; inf wins over NaN.

    Integer operands are computed in the default float dtype (PyTorch has no integer hypot).
    """
    return _binary("hypot", Hypot, input, other)


def logaddexp(input, other):
    """:math:`\\log(e^a + e^b)` without overflow: (-inf, -inf) gives -inf, (inf, inf) gives inf.

    The slopes are NaN where a and b are the same infinity, as in PyTorch.
    """
    return _binary("logaddexp", LogAddExp, input, other)


def logaddexp2(input, other):
    """:math:`\\log_2(2^a + 2^b)` without overflow; the same conventions as :func:`logaddexp`."""
    return _binary("logaddexp2", LogAddExp2, input, other)


def xlogy(input, other):
    """:math:`x \\log y`, with 0 where x = 0, even for y = 0 or inf; NaN wherever y is NaN.

    Either operand may be a number (``xlogy(0, y)``), as in PyTorch.

    >>> import nnlite as nl
    >>> nl.xlogy(nl.tensor([0.0, 0.0, 3.0]), nl.tensor([0.0, float("inf"), 1.0])).tolist()
    [0.0, 0.0, 0.0]
    """
    return _binary("xlogy", XLogY, input, other)


# ----------------------------------------------------------------- the rest --

class Logit(Function):
    """log(z / (1 - z)) with z = x clamped to [eps, 1 - eps]; d/dx = 1 / (x (1 - x)).

    Outside the clamp interval the slope is 0 (x does not change the output); without
    eps it is NaN outside [0, 1], where the logit has no value. Both are PyTorch's.
    """

    def forward(self, a, eps):
        self.eps = eps
        if eps is not None:   # not np.clip: for eps > 0.5 PyTorch maps x < eps to eps, x > 1 - eps to 1 - eps
            a = np.where(a < eps, eps, np.where(a > 1 - eps, 1 - eps, a))
        with np.errstate(divide="ignore", invalid="ignore"):   # logit(0) = -inf, logit(1) = inf
            return np.log(a / (1 - a))

    def backward(self, grad):
        x, eps = self.inputs[0], self.eps
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = grad / (x * (1 - x))
        if eps is None:
            return where(constant((x.data < 0) | (x.data > 1)), np.nan, slope), None
        return _zero_where((x.data < eps) | (x.data > 1 - eps), slope), None


def logit(input, eps=None):
    """:math:`\\log\\frac{z}{1 - z}`, the inverse of the sigmoid, with z = x clamped to [eps, 1 - eps].

    Without ``eps`` (or with eps < 0): 0 gives -inf, 1 gives inf and x outside [0, 1] gives
    NaN, where the slope is NaN too, as in PyTorch.
    """
    if eps is not None:
        eps = real_number("logit", "eps", eps)
        eps = eps if eps >= 0 else None
    return Logit.apply(floating_input("logit", input), eps)


class Sinc(Function):
    """sin(pi x) / (pi x), 1 at x = 0; d/dx = (cos(pi x) - sinc x) / x, 0 at x = 0."""
    save_output = True

    def forward(self, a):
        angle = np.pi * a
        with np.errstate(invalid="ignore"):   # 0/0 at x = 0, replaced by the limit 1
            return np.where(a == 0, 1, np.sin(angle) / angle)

    def backward(self, grad):
        x = self.inputs[0]
        zero = x.data == 0
        if np.any(zero):
            x = where(constant(zero), 1.0, x)   # any nonzero value: its slope is replaced by 0
        return grad * _zero_where(zero, (cos(x * math.pi) - self.out) / x)


def sinc(input):
    """The normalized sinc, :math:`\\sin(\\pi x) / (\\pi x)`, with sinc(0) = 1 and slope 0 there.

    ±inf gives NaN, as in PyTorch.
    """
    return Sinc.apply(floating_input("sinc", input))


def deg2rad(input):
    """:math:`x \\pi / 180`: degrees to radians (integer tensors give the default float dtype)."""
    return floating_input("deg2rad", input) * (math.pi / 180.0)


def rad2deg(input):
    """:math:`x \\cdot 180 / \\pi`: radians to degrees (integer tensors give the default float dtype)."""
    return floating_input("rad2deg", input) * (180.0 / math.pi)


# NumPy's names, which PyTorch also accepts.
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh
