"""Permuting dims: permute, transpose, t and movedim.

The elements stay where they are in memory and are read with the dims in
another order (a NumPy view with permuted strides), so none of these copies.
The backward applies the inverse permutation to the gradient.
"""
import numpy as np

from ..autograd import Function
from .dims import _dim
from .shape import _sizes


class Permute(Function):
    saves_inputs = False
    is_view = True

    def forward(self, a, dims):
        nd = a.ndim
        axes = tuple(d + nd if d < 0 else d for d in dims)
        if sorted(axes) != list(range(nd)):
            for d in dims:   # a dim out of range is an IndexError, as in PyTorch
                _dim("permute", d, nd)
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of {nd} dims")
        self.axes = axes
        return a.transpose(axes)

    def backward(self, grad):
        return permute(grad, tuple(np.argsort(self.axes))), None


def permute(input, *args, dims=None):
    return Permute.apply(input, _sizes("permute", args, dims, "dims"))


def transpose(input, dim0, dim1):
    nd = input.ndim
    dim0, dim1 = _dim("transpose", dim0, nd), _dim("transpose", dim1, nd)
    if nd < 2:
        return input
    dims = list(range(nd))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(input, tuple(dims))


def t(input):
    """Transpose of a 2-D tensor (1-D and 0-D are returned as they are)."""
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dims, got {input.ndim}")
    return input if input.ndim < 2 else transpose(input, 0, 1)


def movedim(input, source, destination):
    """Move dims ``source`` to positions ``destination`` (an int each, or sequences of the same length);
    the other dims keep their order."""
    nd = input.ndim
    src = [_dim("movedim", d, nd) for d in (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [_dim("movedim", d, nd) for d in (destination if isinstance(destination, (tuple, list)) else (destination,))]
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} must name as many dims")
    for name, dims, given in (("source", src, source), ("destination", dst, destination)):
        if len(set(dims)) != len(dims):
            raise ValueError(f"movedim: {name} {given} names the same dim more than once (for {nd} dims)")
    if nd == 0:
        return input
    order = [d for d in range(nd) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, tuple(order))
