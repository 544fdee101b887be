"""Sums and means over any dims: ``sum`` and ``mean``.

Each element adds into a sum with slope 1, so the gradient of a sum is the
incoming gradient copied back to every element that was added; a mean is a sum
scaled by 1/n, so each element gets 1/n of it. Integer and bool tensors are
summed in int64, as in PyTorch (NumPy sums uint8 in uint64), without recording a
graph (an integer has no gradient), and ``mean`` refuses them unless given a float
``dtype``.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor, is_floating_dtype
from .casting import cast
from .opmath import is_half
from .reduction import _grad_back, _reduced_dims, _refuse_bfloat16_sums


class Sum(Function):
    saves_inputs = False

    def forward(self, a, dims, keepdim):
        if a.dtype.kind == "V":   # not float16/32/64: perhaps bfloat16
            _refuse_bfloat16_sums(a, "sum")
        self.in_shape, self.dims = a.shape, dims
        return np.sum(a, axis=dims, keepdims=keepdim)

    def backward(self, grad):
        return _grad_back(grad, self.in_shape, self.dims), None, None


def sum(input, dim=None, keepdim=False, dtype=None):  # noqa: A001
    if dtype is not None:
        input = cast(input, dtype)
    if input.dtype == np.bool_ or input.dtype.kind in "iu":   # in int64, as in PyTorch (NumPy: uint64 for uint8)
        return Tensor._make(np.asarray(np.sum(input.data, axis=_reduced_dims(dim, input.ndim), keepdims=keepdim,
                                              dtype=np.int64)), None)
    return Sum.apply(input, _reduced_dims(dim, input.ndim), keepdim)


def in_float32(op, input, *args, **kwargs):
    """``op(input, ...)`` for a float16 or bfloat16 ``input``, computed in float32 and rounded
    once, as PyTorch reduces them: a float16 sum overflows at 65504 long before a mean, a
    variance or a norm of the same numbers would."""
    return cast(op(cast(input, np.float32), *args, **kwargs), input.dtype)


def mean(input, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        input = cast(input, dtype)
    if is_half(input.dtype):
        return in_float32(mean, input, dim, keepdim)
    dims = _reduced_dims(dim, input.ndim)
    if not is_floating_dtype(input.dtype):
        raise TypeError(f"mean: expected a floating point tensor, got {input.dtype}")
    n = int(np.prod([input.shape[d] for d in dims])) if dims else 1
    return Sum.apply(input, dims, keepdim) * (1.0 / n if n else np.nan)
