"""Elementary functions: logarithms and exponentials (log1p, expm1, log2, log10, exp2,
logaddexp, logaddexp2, xlogy, logit).

Each Function states its derivative under its forward, written with
differentiable operations, so second derivatives come for free. Integer and
bool tensors are computed in the default float dtype (``log1p`` of an int64
tensor is float32) and the operands of the two-argument functions promote as in
PyTorch (:mod:`nnlite.ops.promotion`).

At the edges of their domains the functions give what PyTorch gives: ``log1p(-1)``
is -inf, without an error. Where a formula meets 0/0 at a point where PyTorch
defines a value (``xlogy(0, y) = 0``), that value is used, and NumPy's warning
about the planned 0/0 is silenced; warnings for arguments outside a domain are
NumPy's, as for ``nl.log``.

``exp``, ``log`` and ``sqrt`` are in :mod:`nnlite.ops.pointwise`; the trigonometric
functions, atan2, hypot and sinc in :mod:`nnlite.ops.trigonometric`, the hyperbolic
ones in :mod:`nnlite.ops.hyperbolic`.
"""
import math

import numpy as np

from .._kernels.checks import real_number
from ..autograd import Function, constant
from ..tensor import Tensor
from .arithmetic import _wants, _zero_where
from .elementwise_choice import where
from .pointwise import sigmoid
from .promotion import broadcast_shape, floating_dtype, floating_input, operand
from .broadcasting import sum_to

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
            # + 0.0 turns x(1 - x) = -0.0 (at x = -0.0) into +0.0: the slope at either zero is
            # the one from inside [0, 1], +inf (PyTorch's sign there depends on its vector width)
            slope = grad / (x * (1 - x) + 0.0)
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
