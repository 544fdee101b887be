"""Bitwise operations on integer and bool tensors: ``&``, ``|``, ``^`` and ``~``, as in PyTorch.

On bool tensors they are the logical and, or, xor and not; on integer tensors they
work bit by bit (``6 & 3`` is 2, ``~0`` is -1), which is where they differ from
``logical_and`` and its kin (``logical_and(6, 3)`` is True). Floating-point
tensors are refused, as PyTorch refuses them. Nothing here has a gradient. A
Python int is read in the tensor's dtype, as PyTorch reads it: int8 ``& 1000`` is
``& -24`` (:func:`~nnlite.ops.promotion.wrapped_int`), and the operands promote as in
PyTorch (:mod:`nnlite.ops.promotion`): uint8 ``&`` a 0-dim int64 tensor is uint8.
"""
import numpy as np

from ..tensor import Tensor
from .promotion import one_dtype, promoted_operands

__all__ = ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"]


def _integer_data(op, x, name):
    if isinstance(x, (bool, int)):
        return x   # a Python number stays one, so it takes the tensor's dtype (t & 3 keeps int32)
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if data.dtype.kind not in "biu":
        raise TypeError(f"{op}: expected integer or bool operands, got {data.dtype} ({name})")
    return data


def _bitwise(op, ufunc):
    def f(input, other):
        a, b = _integer_data(op, input, "input"), _integer_data(op, other, "other")
        if not one_dtype(a, b):   # in the promoted dtype: uint8 & a 0-dim int64 tensor is uint8
            a, b = promoted_operands(op, a, b)
        return Tensor._make(np.asarray(ufunc(a, b)), None)
    f.__name__ = op
    f.__doc__ = f"``input {dict(bitwise_and='&', bitwise_or='|', bitwise_xor='^')[op]} other`` bit by bit " \
                "(logically for bools); integer or bool operands only."
    return f


bitwise_and = _bitwise("bitwise_and", np.bitwise_and)
bitwise_or = _bitwise("bitwise_or", np.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor", np.bitwise_xor)


def bitwise_not(input):
    """``~input``: every bit flipped (logical not for bools); integer or bool tensors only."""
    return Tensor._make(np.asarray(np.invert(_integer_data("bitwise_not", input, "input"))), None)
