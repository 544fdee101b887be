"""Indexing: ``x[key]``, narrow, gather, index_select, one_hot.

The gradient of reading ``x[key]`` is a tensor of zeros with the incoming
gradient added at ``key``. Integer-array keys may repeat an index; each
occurrence contributes, so the backward uses a scatter-*add* (``np.add.at``),
never a plain assignment that would keep only one of them.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .dims import _dim, int_argument
from .index_keys import _convert_key, _is_basic, _region


class GetItem(Function):
    saves_inputs = False
    is_view = True   # for ints and slices; array keys give copies, which apply tells apart

    def forward(self, a, key):
        self.in_shape, self.key = a.shape, key
        try:
            region, rest = _region(a, key)
            out = region[rest]
        except IndexError as e:
            raise IndexError(f"index {key!r} is invalid for a tensor of shape {a.shape}: {e}") from None
        if not isinstance(out, np.ndarray):   # an int for every dim gives NumPy's scalar, a copy:
            out = a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]   # this is the 0-dim view
        return out

    def backward(self, grad):
        return IndexGrad.apply(grad, self.in_shape, self.key), None


class IndexGrad(Function):
    """Place ``grad`` at ``key`` inside zeros of ``shape`` (adding where the key repeats)."""
    saves_inputs = False

    def forward(self, grad, shape, key):
        self.key = key
        out = np.zeros(shape, dtype=grad.dtype)
        if _is_basic(key):
            out[key] = grad
        else:
            np.add.at(*_region(out, key), grad)
        return out

    def backward(self, gg):
        return GetItem.apply(gg, self.key), None, None


def _index_array(op, index, size=None):
    """``index`` as an int64 array; with ``size``, each entry checked to lie in [0, size), as in PyTorch."""
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers, got {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if size is not None and idx.size and (idx.min() < 0 or idx.max() >= size):
        raise IndexError(f"{op}: index values must be in [0, {size}), got values from {idx.min()} to {idx.max()}")
    return idx


def getitem(input, key):
    return GetItem.apply(input, _convert_key(key))


def narrow(input, dim, start, length):
    """Entries ``start`` to ``start + length`` of ``dim`` (a view); a negative ``start`` counts
    from the end of the dim, as in PyTorch."""
    if input.ndim == 0:
        raise ValueError("narrow: cannot be applied to a 0-dim tensor")
    dim = _dim("narrow", dim, input.ndim)
    size = input.shape[dim]
    start, length = int_argument("narrow", "start", start), int_argument("narrow", "length", length)
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for dim {dim} of size {size} "
                         f"(expected a start in [{-size}, {size}])")
    if start < 0:
        start += size
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    if start + length > size:
        raise ValueError(f"narrow: start ({start}) + length ({length}) exceeds the size {size} of dim {dim}")
    return GetItem.apply(input, (slice(None),) * dim + (slice(start, start + length),))


def index_select(input, dim, index):
    """The entries of ``input`` at positions ``index`` (1-D, or 0-dim as one position) along ``dim``."""
    dim = _dim("index_select", dim, input.ndim)
    idx = _index_array("index_select", index, input.shape[dim] if input.ndim else 1)
    if idx.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {idx.shape}")
    idx = idx.reshape(-1)
    if input.ndim == 0:   # as a one-element vector, as in PyTorch: the index must hold one position
        if idx.size != 1:
            raise ValueError(f"index_select: a 0-dim input takes an index of one value, got {idx.size}")
        return GetItem.apply(input.reshape(1), idx).reshape(())
    return GetItem.apply(input, (slice(None),) * dim + (idx,))


class Gather(Function):
    saves_inputs = False

    def forward(self, a, dim, index):
        if index.ndim != a.ndim:
            raise ValueError(f"gather: index has {index.ndim} dims but the input has {a.ndim}")
        if any(i > n for d, (i, n) in enumerate(zip(index.shape, a.shape)) if d != dim):
            raise ValueError(f"gather: index of shape {index.shape} must be no larger than the input "
                             f"{a.shape} outside dim {dim}")
        self.in_shape, self.dim, self.index = a.shape, dim, index
        # PyTorch lets the index be smaller than the input outside dim: read the leading block
        block = a[tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index.shape))]
        return np.take_along_axis(block, index, axis=dim)

    def backward(self, grad):
        return ScatterAdd.apply(grad, self.in_shape, self.dim, self.index), None, None


class ScatterAdd(Function):
    """zeros(shape) with ``src`` added at ``index`` along ``dim`` (the adjoint of gather)."""
    saves_inputs = False

    def forward(self, src, shape, dim, index):
        self.dim, self.index = dim, index
        out = np.zeros(shape, dtype=src.dtype)
        grid = list(np.indices(index.shape, sparse=True))
        grid[dim] = index
        np.add.at(out, tuple(grid), src)
        return out

    def backward(self, gg):
        return Gather.apply(gg, self.dim, self.index), None, None, None


def gather(input, dim, index):
    """The elements of ``input`` at ``index`` along ``dim``: ``out[i][j] = input[i][index[i][j]]`` for dim 1."""
    if not isinstance(input, Tensor):
        raise TypeError(f"gather: expected input to be a Tensor, got {type(input).__name__}")
    d = _dim("gather", dim, input.ndim)
    idx = _index_array("gather", index, input.shape[d] if input.ndim else 1)
    if input.ndim == 0:   # as a one-element vector
        return Gather.apply(input.reshape(1), 0, idx.reshape(1)).reshape(idx.shape)
    return Gather.apply(input, d, idx)


def one_hot(index, num_classes=-1):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype != np.int64:   # PyTorch takes class indices as int64 only
        raise TypeError(f"one_hot: expected an int64 index tensor, got dtype {idx.dtype}")
    if num_classes < 0 and idx.size == 0:
        raise ValueError("one_hot: cannot infer the number of classes from an empty tensor; give num_classes")
    num_classes = int_argument("one_hot", "num_classes", num_classes)
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"one_hot: class values must be in [0, {n}), got [{idx.min()}, {idx.max()}]")
    return Tensor._make((idx[..., None] == np.arange(n)).astype(np.int64), None)
