"""Reshaping: the same elements in the same order, under another shape.

reshape, view, flatten, unflatten, squeeze and unsqueeze all read the elements
in row-major order and lay them out again with other dims, so their backward
reshapes the gradient back to the input's shape; none of them reads the
input's values (``saves_inputs = False``). ``view`` insists on sharing the
input's memory, where ``reshape`` copies when the layout does not allow that.
"""
import operator

import numpy as np

from ..autograd import Function
from .dims import _dim


def _normalize_shape(shape):
    """``(2, 3)`` from ``2, 3`` or ``(2, 3)``; every size must be an int (or an integer tensor), as
    in PyTorch: int() would cut a size of 2.7 down to 2 without a word."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not hasattr(type(s), "__index__"):
            raise TypeError(f"size must be a tuple of ints, got {type(s).__name__} {s!r} in {tuple(shape)}")
    return tuple(operator.index(s) for s in shape)


def _sizes(op, args, keyword, name):
    """The sizes of ``x.op(2, 3)``, ``x.op((2, 3))`` or ``x.op(name=(2, 3))``: PyTorch takes each."""
    if keyword is not None:
        if args:
            raise TypeError(f"{op}: give {name} positionally or as {name}=, not both")
        args = (keyword,)
    return _normalize_shape(args)


class Reshape(Function):
    saves_inputs = False
    is_view = True   # when the memory layout allows; otherwise NumPy copies and apply sees it

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise RuntimeError(f"reshape: shape {tuple(shape)} is invalid for an input of shape "
                               f"{a.shape} ({a.size} elements)") from None

    def backward(self, grad):
        return grad.reshape(self.in_shape), None


def reshape(input, *args, shape=None):
    return Reshape.apply(input, _sizes("reshape", args, shape, "shape"))


def view(input, *args, size=None):
    """The same memory seen with another shape; like PyTorch, an error when the layout does not
    allow that without a copy (a transposed tensor flattened, say), where ``reshape`` copies."""
    out = Reshape.apply(input, _sizes("view", args, size, "size"))
    if out._base is None and out.data.size:   # NumPy had to copy (a view would know its base)
        strides = tuple(st // input.data.itemsize for st in input.data.strides)
        raise RuntimeError(f"view: a tensor of shape {input.shape} with strides {strides} cannot be seen "
                           f"as shape {out.shape} without a copy; use .reshape(...), which copies")
    return out


def flatten(input, start_dim=0, end_dim=-1):
    nd = input.ndim
    s, e = _dim("flatten", start_dim, nd), _dim("flatten", end_dim, nd)
    if nd == 0:
        return reshape(input, 1)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {nd} dims")
    shp = input.shape
    return reshape(input, shp[:s] + (int(np.prod(shp[s:e + 1])),) + shp[e + 1:])


def unflatten(input, dim, sizes):
    """Split dim ``dim`` into ``sizes``; one size may be -1, inferred from that dim alone.

    The -1 is resolved here against the one dim, not left to reshape: in a tensor with
    no elements reshape could not tell its size, where ``unflatten(0, (1, -1))`` of a
    (3, 0, 2) tensor means 3.
    """
    if input.ndim == 0:
        raise IndexError("unflatten: a 0-dim tensor has no dim to unflatten")
    dim = _dim("unflatten", dim, input.ndim)
    sizes, size = _normalize_shape(tuple(sizes)), input.shape[dim]
    if not sizes:
        raise ValueError("unflatten: sizes must be non-empty")
    if sizes.count(-1) > 1:
        raise ValueError(f"unflatten: sizes {list(sizes)} infer more than one dim (-1); only one can be inferred")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes and known != 0 and size % known == 0:
        sizes = tuple(size // known if s == -1 else s for s in sizes)
    if -1 in sizes or int(np.prod(sizes)) != size or any(s < 0 for s in sizes):
        raise ValueError(f"unflatten: sizes {list(sizes)} don't multiply up to the size of dim {dim} ({size}) "
                         f"of the input, of shape {input.shape}")
    return reshape(input, input.shape[:dim] + sizes + input.shape[dim + 1:])


def squeeze(input, dim=None):
    if dim is None:
        return reshape(input, tuple(s for s in input.shape if s != 1))
    given = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    dims = {_dim("squeeze", d, input.ndim) for d in given}
    if len(dims) != len(given):
        raise ValueError(f"squeeze: dims {given} name the same dim more than once (for {input.ndim} dims)")
    return reshape(input, tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1)))


def unsqueeze(input, dim):
    nd = input.ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"unsqueeze: dim {dim} out of range for a result with {nd} dims")
    dim = dim % nd
    return reshape(input, input.shape[:dim] + (1,) + input.shape[dim:])
