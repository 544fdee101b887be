"""Hyperbolic functions and their inverses: sinh, cosh, asinh, acosh, atanh.

Each Function states its derivative under its forward, written with
differentiable operations, so second derivatives come for free. Integer and bool
tensors are computed in the default float dtype. Outside their domains they give
what PyTorch gives (``acosh(0.5)`` is NaN, ``atanh(1)`` is inf), without an error.
``tanh`` is in :mod:`nnlite.ops.pointwise`, with the other activations.
"""
import numpy as np

from ..autograd import Function
from .pointwise import rsqrt
from .promotion import floating_input


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


# NumPy's names, which PyTorch also accepts.
arcsinh, arccosh, arctanh = asinh, acosh, atanh
