"""Rounding and remainders: floor, ceil, round, trunc, frac, remainder, fmod.

The rounding functions are step functions: flat between their jumps, where
they have no derivative. PyTorch gives them a zero gradient everywhere rather
than an error, so that a graph using them (a quantizer's ``round``) still runs
backward; so does nnlite. ``frac = x - trunc(x)`` has slope 1.

An integer tensor is already whole: floor, ceil, round and trunc return a copy
of it, with its integer dtype, as PyTorch does. ``remainder`` and ``fmod`` of
integers stay integers (and refuse a zero divisor); with a float operand they
promote as in PyTorch (:mod:`nnlite.ops.promotion`).
"""
import numbers

import numpy as np

from .._kernels.checks import is_int
from ..autograd import Function, chosen_by, constant
from ..tensor import Tensor
from .arithmetic import _wants
from .opmath import floor_divide_half, is_half, with_number
from .promotion import broadcast_shape, operand, promoted_dtype, python_int_operands, tensor_input
from .broadcasting import sum_to


class _Step(Function):
    """A piecewise-constant function: its gradient is 0 (PyTorch's choice, not an error)."""
    saves_inputs = False

    def backward(self, grad):
        zeros = constant(np.zeros(grad.shape, grad.dtype))
        return (zeros,) + (None,) * (len(self.inputs) - 1)


class Floor(_Step):
    def forward(self, a):
        return np.floor(a)


class Ceil(_Step):
    def forward(self, a):
        return np.ceil(a)


class Trunc(_Step):
    def forward(self, a):
        return np.trunc(a)


class Round(_Step):
    """Round half to even at ``decimals`` digits: x * 10^d is rounded and divided back (d < 0: the reverse)."""

    def forward(self, a, decimals):
        if decimals == 0:
            return np.rint(a)
        # 10^|d| in the input's own dtype, as PyTorch forms it: beyond its range it is inf,
        # and the result NaN (inf / inf), not a Python OverflowError
        with np.errstate(over="ignore"):
            scale = np.asarray(10.0, a.dtype) ** abs(decimals)
        if decimals > 0:
            return np.rint(a * scale) / scale
        return np.rint(a / scale) * scale


def _rounded(op, cls, input, *args):
    """``cls`` on a float tensor; a copy of an integer one (already whole); bool refused."""
    kind = tensor_input(op, input).dtype.kind
    if kind == "b":
        raise TypeError(f"{op}: expected a number tensor, got bool")
    if kind in "iu":
        return Tensor._make(input.data.copy(), None)
    return cls.apply(input, *args)


def floor(input):
    """:math:`\\lfloor x \\rfloor`, the largest integer <= x; ±inf and NaN stay. Gradient 0."""
    return _rounded("floor", Floor, input)


def ceil(input):
    """:math:`\\lceil x \\rceil`, the smallest integer >= x; ±inf and NaN stay. Gradient 0."""
    return _rounded("ceil", Ceil, input)


def trunc(input):
    """x rounded toward zero (-1.5 gives -1, -0.5 gives -0.0). Gradient 0."""
    return _rounded("trunc", Trunc, input)


fix = trunc


def round(input, decimals=0):  # noqa: A001 - PyTorch's name
    """x rounded to ``decimals`` digits, halves to even: 0.5 gives 0, 1.5 and 2.5 give 2.

    ``decimals`` < 0 rounds to tens, hundreds...: ``round(25, decimals=-1)`` is 20. As in
    PyTorch, a decimal rounding is not exact in binary (``round(0.125, 2)`` is 0.12
    because 12.5 is a tie, and ``round(1.005, 2)`` is 1.0 because 1.005 is stored
    just below 1.005), and integer tensors
    take ``decimals=0`` only. Gradient 0.

    >>> import nnlite as nl
    >>> nl.round(nl.tensor([0.5, 1.5, 2.5, -0.5])).tolist()
    [0.0, 2.0, 2.0, -0.0]
    """
    if not is_int(decimals):
        raise TypeError(f"round: decimals must be an int, got {type(decimals).__name__}")
    if decimals != 0 and tensor_input("round", input).dtype.kind in "iub":
        raise TypeError(f"round: decimals={decimals} needs a floating-point tensor, got {input.dtype}; "
                        "convert it first (x.double())")
    return _rounded("round", Round, input, int(decimals))


class Frac(Function):
    """x - trunc(x), with the sign of x; d/dx = 1."""
    saves_inputs = False

    def forward(self, a):
        return a - np.trunc(a)

    def backward(self, grad):
        return grad


def frac(input):
    """:math:`x - \\operatorname{trunc}(x)`, the fractional part with the sign of x; ±inf gives NaN.

    Only for floating-point tensors, as in PyTorch.
    """
    if not tensor_input("frac", input).is_floating_point():
        raise TypeError(f"frac: expected a floating-point tensor, got {input.dtype}")
    return Frac.apply(input)


def _chosen_quotient(grad, quotient, a, b):
    """``grad * quotient``, where the rounded quotient is a step function of a and b: its
    derivative in either is zero, and the graph says so (``chosen_by``) for second derivatives."""
    return chosen_by(chosen_by(grad * constant(quotient), a), b)


class Remainder(Function):
    """a - b floor(a / b), with the sign of b; d/da = 1, d/db = -floor(a / b).

    A remainder of exactly 0 keeps the sign of a, as PyTorch's does (it starts from
    C's fmod and adds b to a nonzero remainder of the wrong sign): ``-4.0 % 2`` is
    -0.0, where NumPy (and Python) give 0.0, the sign of b.
    """
    saves_inputs = False

    def forward(self, a, b):
        if self.recording:   # the slope in b is a step function: keep it, not the operands
            with np.errstate(divide="ignore", invalid="ignore"):
                self.quotient = np.floor_divide(a, b)
        out = np.remainder(a, b)
        if out.dtype.kind == "f":
            zero = out == 0
            if np.any(zero):
                out = np.where(zero, np.copysign(out, a), out)
        return out

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad, a.shape) if _wants(a) else None,
                sum_to(_chosen_quotient(-grad, self.quotient, a, b), b.shape) if _wants(b) else None)


class Fmod(Function):
    """a - b trunc(a / b), with the sign of a (C's fmod); d/da = 1, d/db = -trunc(a / b)."""
    saves_inputs = False

    def forward(self, a, b):
        if self.recording:
            with np.errstate(divide="ignore", invalid="ignore"):
                self.quotient = np.trunc(a / b)
        return np.fmod(a, b)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad, a.shape) if _wants(a) else None,
                sum_to(_chosen_quotient(-grad, self.quotient, a, b), b.shape) if _wants(b) else None)


class FloorDivide(Function):
    """floor(a / b), Python's ``//``. A step function of both operands; like PyTorch, nnlite
    does not define its derivative (almost everywhere zero, undefined at every step)."""
    saves_inputs = False

    def forward(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.floor_divide(a, b)
            if is_half(out.dtype):
                out = floor_divide_half(a, b)
            return with_number(np.floor_divide, a, b, out)   # float16 // 0.1: PyTorch's

    def backward(self, grad):
        raise RuntimeError("floor_divide: the derivative of a // b is not defined (as in PyTorch); "
                           "detach() the operands, or use remainder, whose derivative is")


def _division(op, cls, input, other):
    """``cls`` on the promoted operands; integer division by zero is an error, as in PyTorch."""
    if type(input) is Tensor and type(other) is Tensor and input.dtype == other.dtype:
        a, b, dtype = input, other, input.dtype   # the common case, without the promotion rules' cost
    else:
        input, other = python_int_operands(op, input, other)   # int8 % 1000 is int8 % -24, as in PyTorch
        dtype = promoted_dtype(op, input, other)
        a, b = operand(op, "input", input, dtype), operand(op, "other", other, dtype)
    if dtype.kind == "b":
        raise TypeError(f"{op}: expected number tensors, got bool operands")
    if a.shape != b.shape:
        broadcast_shape(op, a, b)
    if dtype.kind in "iu" and not np.all(b.data):
        zeros = b.data.size - np.count_nonzero(b.data)
        raise ZeroDivisionError(f"{op}: integer division by zero (other has {zeros} zero elements)")
    return cls.apply(a, b)


def remainder(input, other):
    """Python's ``%``: :math:`a - b \\lfloor a / b \\rfloor`, with the sign of the divisor b.

    A float divisor 0 gives NaN; a divisor ±inf gives a itself when a has b's sign
    (or is 0), else ±inf, as Python and PyTorch do.

    >>> import nnlite as nl
    >>> nl.remainder(nl.tensor([-5, 5]), 3).tolist(), nl.remainder(nl.tensor([-5, 5]), -3).tolist()
    ([1, 2], [-2, -1])
    """
    return _division("remainder", Remainder, input, other)


def fmod(input, other):
    """C's ``fmod``: :math:`a - b \\operatorname{trunc}(a / b)`, with the sign of the dividend a.

    A float divisor 0 or a dividend ±inf gives NaN; a divisor ±inf gives a.

    >>> import nnlite as nl
    >>> nl.fmod(nl.tensor([-5, 5]), 3).tolist(), nl.fmod(nl.tensor([-5, 5]), -3).tolist()
    ([-2, 2], [-2, 2])
    """
    return _division("fmod", Fmod, input, other)


def floor_divide(input, other):
    """``input // other``: the quotient rounded toward -inf, as Python's ``//`` (and PyTorch's
    ``floor_divide`` since 1.13). A float divisor 0 gives ±inf (NaN for 0 / 0); no derivative.

    >>> import nnlite as nl
    >>> nl.floor_divide(nl.tensor([-5, 5]), 3).tolist(), (nl.tensor([7.5]) // 2).tolist()
    ([-2, 1], [3.0])
    """
    value = other.data if isinstance(other, Tensor) else other
    if isinstance(input, Tensor) and is_half(input.dtype) and isinstance(value, (numbers.Real, np.ndarray)) \
            and np.ndim(value) == 0:
        # one number (a Python number or a 0-dim tensor) is kept in float32, as PyTorch keeps it
        return FloorDivide.apply(input, float(np.float32(value)))
    return _division("floor_divide", FloorDivide, input, other)
