"""Concatenation: cat (also called concat) and stack.

``cat`` joins tensors along a dim they have; ``stack`` joins them along a new
one (an ``unsqueeze`` of each, then ``cat``). Tensors of several dtypes are joined in
the dtype they promote to, as in PyTorch. The backward of ``cat`` cuts the
gradient into the pieces the inputs contributed, each a ``narrow`` of it.
"""
import functools

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .casting import cast
from .creation import as_tensor
from .dims import _dim
from .indexing import narrow
from .promotion import promote_types
from .shape import unsqueeze


class Cat(Function):
    saves_inputs = False

    def forward(self, *arrays, dim=0):
        self.skipped = None
        nd = arrays[0].ndim
        if type(dim) is int and -nd <= dim < nd:
            try:
                out = np.concatenate(arrays, axis=dim)
            except ValueError:
                pass   # the slow path below says why, or skips legacy empty tensors
            else:
                self.dim = dim % nd
                self.sizes = [a.shape[self.dim] for a in arrays]
                return out
        return self._checked(arrays, dim)

    def _checked(self, arrays, dim):
        """Concatenate after the checks, leaving out 1-D empty tensors among tensors of other
        ranks (PyTorch's legacy rule)."""
        if len({a.ndim for a in arrays}) > 1:
            self.skipped = [a.ndim == 1 and a.shape[0] == 0 for a in arrays]
            arrays = [a for a, skip in zip(arrays, self.skipped) if not skip]
        nd = arrays[0].ndim
        if nd == 0:
            raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
        self.dim = _dim("cat", dim, nd)
        self.sizes = [a.shape[self.dim] for a in arrays]
        try:
            return np.concatenate(arrays, axis=self.dim)
        except ValueError:
            raise ValueError(f"cat: tensors must match except in dim {dim}; got shapes "
                             f"{[a.shape for a in arrays]}") from None

    def backward(self, grad):
        out, start = [], 0
        for size in self.sizes:
            out.append(narrow(grad, self.dim, start, size))
            start += size
        if self.skipped is not None:   # each skipped (0,) input gets an empty gradient
            pieces = iter(out)
            out = [Tensor._make(np.zeros(0, grad.dtype), None) if skip else next(pieces) for skip in self.skipped]
        return tuple(out)


def cat(tensors, dim=0):
    """The tensors joined along ``dim``, in the dtype they promote to (an int64 tensor with a
    float32 one gives float32, as in PyTorch); each gradient comes back in its tensor's dtype."""
    tensors = [as_tensor(x) for x in tensors]
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    dtype = tensors[0].dtype
    if any(t.dtype != dtype for t in tensors):
        dtype = functools.reduce(promote_types, [t.dtype for t in tensors])
        tensors = [cast(t, dtype) for t in tensors]
    return Cat.apply(*tensors, dim=dim)


concat = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(x.shape) for x in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    dim = _dim("stack", dim, tensors[0].ndim + 1)
    return cat([unsqueeze(x, dim) for x in tensors], dim)
