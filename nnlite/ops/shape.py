"""Shape operations: same numbers, different arrangement.

Their backward moves the gradient back into the input's arrangement; none of
them reads the input's values (``saves_inputs = False``).
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor


def _normalize_shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


class Reshape(Function):
    saves_inputs = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise RuntimeError(f"reshape: shape {tuple(shape)} is invalid for an input of shape "
                               f"{a.shape} ({a.size} elements)") from None

    def backward(self, grad):
        return grad.reshape(self.in_shape), None


def reshape(x, *shape):
    return Reshape.apply(x, _normalize_shape(shape))


def view(x, *shape):
    """Like reshape; a view in NumPy whenever the memory layout allows."""
    return Reshape.apply(x, _normalize_shape(shape))


def flatten(x, start_dim=0, end_dim=-1):
    nd = x.ndim
    if nd == 0:
        return reshape(x, 1)
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {nd} dims")
    shp = x.shape
    return reshape(x, shp[:s] + (int(np.prod(shp[s:e + 1])),) + shp[e + 1:])


def unflatten(x, dim, sizes):
    dim = dim % x.ndim
    return reshape(x, x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = {d % max(x.ndim, 1) for d in dims}
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def unsqueeze(x, dim):
    nd = x.ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"unsqueeze: dim {dim} out of range for a result with {nd} dims")
    dim = dim % nd
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class Permute(Function):
    saves_inputs = False

    def forward(self, a, dims):
        if sorted(d % max(a.ndim, 1) for d in dims) != list(range(a.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of {a.ndim} dims")
        self.dims = dims
        return a.transpose(dims)

    def backward(self, grad):
        return permute(grad, tuple(np.argsort([d % grad.ndim for d in self.dims]))), None


def permute(x, *dims):
    return Permute.apply(x, _normalize_shape(dims))


def transpose(x, dim0, dim1):
    nd = x.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    dims = list(range(nd))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, tuple(dims))


def t(x):
    """Transpose of a 2-D tensor (1-D and 0-D are returned as they are)."""
    if x.ndim > 2:
        raise ValueError(f"t() expects a tensor with <= 2 dims, got {x.ndim}")
    return x if x.ndim < 2 else transpose(x, 0, 1)


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

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise RuntimeError(f"expand: the shape {a.shape} cannot be expanded to {tuple(shape)}") from None

    def backward(self, grad):
        return sum_to(grad, self.in_shape), None


def sum_to(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else SumTo.apply(x, shape)


def expand(x, *shape):
    shape = _normalize_shape(shape)
    if len(shape) < x.ndim:
        raise RuntimeError(f"expand: the target shape {shape} has fewer dims than the input {x.shape}")
    lead = len(shape) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return x if x.shape == shape else Expand.apply(x, shape)


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def expand_as(x, other):
    return expand(x, other.shape)


class Contiguous(Function):
    saves_inputs = False

    def forward(self, a):
        return np.ascontiguousarray(a)

    def backward(self, grad):
        return grad


def contiguous(x):
    return x if x.data.flags.c_contiguous else Contiguous.apply(x)


class Clone(Function):
    saves_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return grad


def clone(x):
    return Clone.apply(x)


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""
    saves_inputs = False

    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return cast(grad, self.in_dtype), None


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype.kind != "f" or x.dtype.kind != "f":
        return Tensor._make(x.data.astype(dtype), None)
    return Cast.apply(x, dtype)


class Cat(Function):
    saves_inputs = False

    def forward(self, *arrays, dim=0):
        nd = arrays[0].ndim
        if nd == 0:
            raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
        self.dim = dim % nd
        self.sizes = [a.shape[self.dim] for a in arrays]
        try:
            return np.concatenate(arrays, axis=self.dim)
        except ValueError:
            raise ValueError(f"cat: tensors must match except in dim {dim}; got shapes "
                             f"{[a.shape for a in arrays]}") from None

    def backward(self, grad):
        from .indexing import narrow
        out, start = [], 0
        for size in self.sizes:
            out.append(narrow(grad, self.dim, start, size))
            start += size
        return tuple(out)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    from . import as_tensor
    return Cat.apply(*[as_tensor(x) for x in tensors], dim=dim)


concat = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {tuple(x.shape) for x in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return cat([unsqueeze(x, dim) for x in tensors], dim)


def split(x, split_size_or_sections, dim=0):
    from .indexing import narrow
    n = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, but dim {dim} has size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, dim, start, s))
        start += s
    return tuple(out)


def chunk(x, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: expected a positive number of chunks, got {chunks}")
    n = x.shape[dim]
    size = -(-n // chunks) if n else 1
    return split(x, max(size, 1), dim)


def movedim(x, source, destination):
    dims = list(range(x.ndim))
    src = source % x.ndim
    dims.pop(src)
    dims.insert(destination % x.ndim, src)
    return permute(x, tuple(dims))
