"""Comparisons: elementwise predicates that give bool tensors and carry no gradient.

They compare in the promoted dtype, as PyTorch does (:mod:`nnlite.ops.promotion`): a
float32 tensor with a 0-dim float64 one in float32, and a Python int in an integer
tensor's dtype (an int8 tensor's ``< 1000`` is ``< -24``,
:func:`~nnlite.ops.promotion.wrapped_int`). ``sign`` is here too: it compares with
zero. It is recorded, with a zero gradient, as PyTorch records it: a graph that uses it
keeps it (an ONNX export writes ``Sign``). Choosing elements by a comparison (``where``,
``maximum``, ``clamp``) is :mod:`nnlite.ops.elementwise_choice`.
"""
import numbers

import numpy as np

from ..autograd import Function
from ..tensor import Tensor, is_floating_dtype
from .promotion import one_dtype, promoted_operands


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _compare(op, name=None):
    """The comparison ``op``; with a ``name``, the operands are compared in their promoted dtype,
    as in PyTorch: a Python int in an integer tensor's dtype, a float32 tensor with a 0-dim
    float64 one in float32."""
    def f(input, other):
        if name is not None and not one_dtype(input, other) and _is_operand(input) and _is_operand(other):
            input, other = promoted_operands(name, input, other)
        return Tensor._make(np.asarray(op(_data(input), _data(other))), None)
    f.__name__ = op.__name__
    return f


def _is_operand(x):
    """A Tensor, an array or a real number: what promotes (``x == None`` is compared as NumPy compares it)."""
    return isinstance(x, (Tensor, np.ndarray, numbers.Real))


eq = _compare(np.equal, "eq")
ne = _compare(np.not_equal, "ne")
lt = _compare(np.less, "lt")
le = _compare(np.less_equal, "le")
gt = _compare(np.greater, "gt")
ge = _compare(np.greater_equal, "ge")
logical_and = _compare(np.logical_and)   # a number counts by its truth, not its bits
logical_or = _compare(np.logical_or)
logical_xor = _compare(np.logical_xor)


def logical_not(input):
    return Tensor._make(np.logical_not(_data(input)), None)


def isfinite(input):
    return Tensor._make(np.isfinite(_data(input)), None)


def isnan(input):
    return Tensor._make(np.isnan(_data(input)), None)


class SignFunction(Function):
    """-1, 0 or 1, and 0 for NaN (PyTorch's value); flat wherever it is defined, so its gradient is zero."""
    saves_inputs = False

    def forward(self, a):
        s = np.asarray(np.sign(a))   # a 0-dim input gives a NumPy scalar
        if s.dtype.kind == "f":
            s[s != s] = 0   # NaN -> 0, a masked store: nan_to_num costs four times the sign
        return s

    def backward(self, grad):
        return grad * 0.0


def sign(input):
    """-1, 0 or 1 by the sign of each element; 0 for NaN, and a bool tensor unchanged, as in PyTorch."""
    if not isinstance(input, Tensor) or not is_floating_dtype(input.dtype):
        data = np.asarray(_data(input))
        if data.dtype.kind == "b":
            return Tensor._make(data.copy(), None)
        return Tensor._make(np.sign(data), None)   # integers: nothing to differentiate
    return SignFunction.apply(input)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when ``|input - other| <= atol + rtol * |other|`` everywhere; NaNs count as equal with ``equal_nan``."""
    return bool(np.allclose(_data(input), _data(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input, other):
    return bool(np.array_equal(_data(input), _data(other)))
