"""Shape operations: same numbers, different arrangement.

Their backward moves the gradient back into the input's arrangement; none of
them reads the input's values (``saves_inputs = False``).
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor, is_floating_dtype
from .creation import as_tensor
from .dims import _dim
from .indexing import narrow


def _normalize_shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


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


def reshape(input, *shape):
    return Reshape.apply(input, _normalize_shape(shape))


def view(input, *shape):
    """The same memory seen with another shape; like PyTorch, an error when the layout does not
    allow that without a copy (a transposed tensor flattened, say), where ``reshape`` copies."""
    out = Reshape.apply(input, _normalize_shape(shape))
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
    dim = _dim("unflatten", dim, input.ndim)
    return reshape(input, input.shape[:dim] + tuple(sizes) + input.shape[dim + 1:])


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


def permute(input, *dims):
    return Permute.apply(input, _normalize_shape(dims))


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


def sum_to(input, shape):
    shape = tuple(shape)
    return input if input.shape == shape else SumTo.apply(input, shape)


def expand(input, *shape):
    shape = _normalize_shape(shape)
    if len(shape) < input.ndim:
        raise RuntimeError(f"expand: the target shape {shape} has fewer dims than the input {input.shape}")
    lead = len(shape) - input.ndim
    shape = tuple(input.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return input if input.shape == shape else Expand.apply(input, shape)


def broadcast_to(input, shape):
    return expand(input, tuple(shape))


def expand_as(input, other):
    return expand(input, other.shape)


class Contiguous(Function):
    saves_inputs = False

    def forward(self, a):
        return np.ascontiguousarray(a)

    def backward(self, grad):
        return grad


def contiguous(input):
    return input if input.data.flags.c_contiguous else Contiguous.apply(input)


class Clone(Function):
    saves_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return grad


def clone(input):
    return Clone.apply(input)


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
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return Cat.apply(*[as_tensor(x) for x in tensors], dim=dim)


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


def _split_dim(op, input, dim):
    if input.ndim == 0:
        raise ValueError(f"{op}: expected a tensor with at least 1 dim, got a 0-dim tensor")
    return _dim(op, dim, input.ndim)


def split(input, split_size_or_sections, dim=0):
    dim = _split_dim("split", input, dim)
    n = input.shape[dim]
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
        out.append(narrow(input, dim, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: expected a positive number of chunks, got {chunks}")
    dim = _split_dim("chunk", input, dim)
    n = input.shape[dim]
    if n == 0:   # PyTorch: as many empty chunks as asked for
        return split(input, [0] * chunks, dim)
    return split(input, -(-n // chunks), dim)


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
