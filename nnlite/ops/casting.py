"""Casting: ``cast`` converts a tensor to another dtype (``x.to(dtype)``, ``x.float()``...).

Between floating dtypes the cast is recorded and its backward casts the
gradient back to the input's dtype, so a float32 tensor used in float64 still
gets a float32 gradient. A cast to or from an integer or bool dtype records
nothing: integers carry no gradient.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor, is_floating_dtype


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""
    saves_inputs = False

    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return cast(grad, self.in_dtype), None


def cast(input, dtype):
    dtype = np.dtype(dtype)
    if input.dtype == dtype:
        return input
    if not (is_floating_dtype(dtype) and is_floating_dtype(input.dtype)):
        return Tensor._make(input.data.astype(dtype), None)
    return Cast.apply(input, dtype)
