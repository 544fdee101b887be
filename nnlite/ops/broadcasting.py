"""Broadcasting: expand, broadcast_to and expand_as, and sum_to, their adjoint.

``expand`` lets a dim of size 1 (or a missing leading dim) stand for many
copies of it without copying: a read-only NumPy view with stride 0. Each copy
passes on a gradient, so the backward of expanding sums those gradients back
down to the input's shape (``sum_to``), and the backward of ``sum_to`` is
``expand``. An operation that broadcasts its operands, such as ``x + b``, calls
``sum_to`` in its backward for the same reason.
"""
import numpy as np

from ..autograd import Function
from .shape import _sizes


class SumTo(Function):
    """Sum a broadcast gradient back down to ``shape``: the adjoint of broadcasting."""
    saves_inputs = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                          if s == 1 and a.shape[lead + i] != 1)
        out = a.sum(axis=axes, keepdims=True) if axes else a
        return out.reshape(shape)

    def backward(self, grad):
        return expand(grad, self.in_shape), None


class Expand(Function):
    """Broadcast to a larger shape (a read-only view in NumPy, no copy)."""
    saves_inputs = False
    is_view = True   # it reads the input's memory, so an in-place change of the input reaches it

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise RuntimeError(f"expand: the shape {a.shape} cannot be expanded to {tuple(shape)}") from None

    def backward(self, grad):
        return sum_to(grad, self.in_shape), None


def sum_to(input, shape):
    shape = tuple(shape)
    return input if input.shape == shape else SumTo.apply(input, shape)


def expand(input, *args, size=None):
    shape = _sizes("expand", args, size, "size")
    if len(shape) < input.ndim:
        raise RuntimeError(f"expand: the target shape {shape} has fewer dims than the input {input.shape}")
    lead = len(shape) - input.ndim
    if -1 in shape[:lead]:
        # -1 keeps a dim's size, and a new leading dim has none to keep
        raise RuntimeError(f"expand: -1 in the target shape {shape} stands for a new leading dim "
                           f"(the input has shape {input.shape}); give its size")
    shape = tuple(input.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return input if input.shape == shape else Expand.apply(input, shape)


def broadcast_to(input, size):
    return expand(input, tuple(size))


def expand_as(input, other):
    return expand(input, other.shape)
