"""Ordering: sort, argsort, topk, kthvalue, flip and roll.

Sorting does not change values, it only chooses where they go: the sorted
values are a ``gather`` of the input at the sorted indices, so their gradient
is the ``scatter-add`` that ``gather`` already has, and higher derivatives come
with it. The indices themselves are integers and carry no gradient.

nnlite sorts stably: equal values keep their order (ascending) or come out in
order of position as well (descending), so the indices are the same on every
run. NaN counts as larger than every number, as in PyTorch: last when sorting
ascending, first when descending, first among the ``topk`` largest.
"""
import numpy as np

from .._kernels.checks import is_int
from ..autograd import Function
from ..tensor import Tensor
from .copies import clone
from .indexing import gather
from .promotion import tensor_input
from .dims import _dim
from .extrema import values_indices


def _sorting_dim(op, input, dim):
    """The axis to sort along, or None for a 0-dim tensor (which is its own sorted order)."""
    d = _dim(op, dim, tensor_input(op, input).ndim)
    return None if input.ndim == 0 else d


def _stable_order(a, axis, descending):
    """Indices that sort ``a`` along ``axis``; equal values keep the order of their positions."""
    if not descending:
        return np.argsort(a, axis=axis, kind="stable")
    # Sort the reversed array ascending (NaN last) and read the result backwards: largest
    # first, NaN first, and equal values still in increasing position.
    n = a.shape[axis]
    order = np.argsort(np.flip(a, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - order, axis)


def _indices(array):
    return Tensor._make(np.array(array, dtype=np.int64), None)   # a C-order copy; 0-dim stays 0-dim


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``input`` sorted along ``dim`` (always stable; see the module)."""
    d = _sorting_dim("sort", input, dim)
    if d is None:
        return values_indices(clone(input), _indices(0))
    order = _stable_order(input.data, d, descending)
    return values_indices(gather(input, d, order), _indices(order))


def argsort(input, dim=-1, descending=False, stable=False):
    """The indices that sort ``input`` along ``dim``: ``sort(...).indices``."""
    return sort(input, dim, descending, stable).indices


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices.

    They come in sorted order whatever ``sorted`` says; among equal values the
    lower position comes first.
    """
    d = _sorting_dim("topk", input, dim)
    size = 1 if d is None else input.shape[d]
    if not is_int(k) or not 0 <= k <= size:
        raise ValueError(f"topk: k must be an integer in [0, {size}] (the size of dim {dim}), got {k!r}")
    if d is None:   # a 0-dim tensor is its own top element, for k = 0 as well (PyTorch's answer)
        return sort(input)
    order = np.take(_stable_order(input.data, d, largest), np.arange(k), axis=d)
    return values_indices(gather(input, d, order), _indices(order))


def kthvalue(input, k, dim=-1, keepdim=False):
    """The ``k``-th smallest element along ``dim`` (k counts from 1) and its index."""
    d = _sorting_dim("kthvalue", input, dim)
    size = 1 if d is None else input.shape[d]
    if not is_int(k) or not 1 <= k <= size:
        raise ValueError(f"kthvalue: k must be an integer in [1, {size}] (the size of dim {dim}), got {k!r}")
    if d is None:
        return values_indices(clone(input), _indices(0))
    order = np.take(_stable_order(input.data, d, False), [k - 1], axis=d)
    values = gather(input, d, order)
    if not keepdim:
        values, order = values.squeeze(d), np.squeeze(order, d)
    return values_indices(values, _indices(order))


# ------------------------------------------------------------- flip, roll ---

class Flip(Function):
    """Reverse the order along ``dims``; its own adjoint."""
    saves_inputs = False

    def forward(self, a, dims):
        self.dims = dims
        return np.flip(a, dims).copy()   # a copy, as PyTorch's: writing into it must not touch a

    def backward(self, grad):
        return Flip.apply(grad, self.dims), None


def flip(input, dims):
    """Reverse the order of elements along each dim in ``dims``."""
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    axes = [_dim("flip", d, tensor_input("flip", input).ndim) for d in dims]
    if len(set(axes)) != len(axes):
        raise ValueError(f"flip: dims must not repeat, got {dims}")
    return Flip.apply(input, tuple(axes) if input.ndim else ())


def fliplr(input):
    """Reverse dim 1 (left and right in a matrix); ``input`` needs at least 2 dims."""
    if input.ndim < 2:
        raise ValueError(f"fliplr: input must have at least 2 dims, got shape {input.shape}")
    return flip(input, (1,))


def flipud(input):
    """Reverse dim 0 (up and down in a matrix); ``input`` needs at least 1 dim."""
    if input.ndim < 1:
        raise ValueError("flipud: input must have at least 1 dim, got a 0-dim tensor")
    return flip(input, (0,))


class Roll(Function):
    """Shift elements cyclically; the gradient rolls back by the opposite shifts."""
    saves_inputs = False

    def forward(self, a, shifts, dims):
        self.shifts, self.dims = shifts, dims
        if dims is None:   # PyTorch: roll the flattened tensor, then restore the shape
            return np.roll(a.reshape(-1), shifts[0]).reshape(a.shape)
        return np.roll(a, shifts, dims)

    def backward(self, grad):
        return Roll.apply(grad, tuple(-s for s in self.shifts), self.dims), None, None


def roll(input, shifts, dims=None):
    """Shift by ``shifts`` along ``dims`` (each element that leaves one end enters at the other).

    Without ``dims`` the tensor is rolled as if flattened. ``shifts`` and ``dims``
    are ints or equal-length tuples.
    """
    tensor_input("roll", input)
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    if not all(is_int(s) for s in shifts):
        raise TypeError(f"roll: shifts must be an int or a tuple of ints, got {shifts!r}")
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}")
        return Roll.apply(input, (int(shifts[0]),), None)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts and dims must have the same length, got {shifts} and {dims}")
    if input.ndim == 0:   # PyTorch refuses a dim here, where most ops let a 0-dim tensor take 0 and -1
        raise IndexError(f"roll: a 0-dim tensor has no dim to roll along, got dims {dims}; "
                         f"leave dims out to roll it as if flattened")
    axes = tuple(_dim("roll", d, input.ndim) for d in dims)
    return Roll.apply(input, tuple(int(s) for s in shifts), axes)
