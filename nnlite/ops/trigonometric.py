"""Trigonometric functions and their inverses, atan2, hypot, sinc and the degree conversions.

Each Function states its derivative under its forward, written with
differentiable operations, so second derivatives come for free. Integer and bool
tensors are computed in the default float dtype, and atan2's and hypot's operands
promote as in PyTorch (:mod:`nnlite.ops.promotion`). At the edges of their domains
the functions give what PyTorch gives (``asin(2)`` is NaN, without an error);
where a formula meets 0/0 at a point where PyTorch defines a value (``sinc(0) = 1``,
the slope of ``atan2`` at the origin), that value is used.

``sin``, ``cos`` and ``tanh`` are in :mod:`nnlite.ops.pointwise`; the other hyperbolic
functions in :mod:`nnlite.ops.hyperbolic`; the logarithms and exponentials in
:mod:`nnlite.ops.elementary`.
"""
import math

import numpy as np

from ..autograd import Function, constant
from .arithmetic import _wants, _zero_where
from .elementwise_choice import where
from .elementary import _binary
from .pointwise import cos, rsqrt
from .promotion import floating_input
from .broadcasting import sum_to


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


# ------------------------------------------------------------- two arguments --

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


# ------------------------------------------------------------------ the rest --

class Sinc(Function):
    """sin(pi x) / (pi x), 1 at x = 0; d/dx = (cos(pi x) - sinc x) / x, 0 at x = 0.

    Near 0 the slope is -(pi^2 / 3) x + O(x^3), so at x = 0 the backward uses that
    line: its value there is 0 and its own slope the true second derivative -pi^2 / 3.
    """
    save_output = True

    def forward(self, a):
        angle = np.pi * a
        with np.errstate(invalid="ignore"):   # 0/0 at x = 0, replaced by the limit 1
            return np.where(a == 0, 1, np.sin(angle) / angle)

    def backward(self, grad):
        x = self.inputs[0]
        zero = x.data == 0
        if not np.any(zero):
            return grad * ((cos(x * math.pi) - self.out) / x)
        zero = constant(zero)
        safe = where(zero, 1.0, x)   # any nonzero value: its slope is replaced by the line at 0
        line = (0.0 - x) * (math.pi ** 2 / 3)   # 0.0 - x rather than -x: +0, not -0, at x = 0
        return grad * where(zero, line, (cos(safe * math.pi) - self.out) / safe)


def sinc(input):
    """The normalized sinc, :math:`\\sin(\\pi x) / (\\pi x)`, with sinc(0) = 1 and slope 0 there.

    ±inf gives NaN, as in PyTorch. The second derivative at 0 is the true
    :math:`-\\pi^2 / 3`, where PyTorch gives NaN.
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
