"""Indexing: ``x[key]``, narrow, gather, index_select, one_hot.

The gradient of reading ``x[key]`` is a tensor of zeros with the incoming
gradient added at ``key``. Integer-array keys may repeat an index; each
occurrence contributes, so the backward uses a scatter-*add* (``np.add.at``),
never a plain assignment that would keep only one of them.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .dims import _dim


def _is_basic(key):
    """True when ``key`` uses only ints, slices, None and Ellipsis (a view, no repeats)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in items)


def _convert_key(key):
    """``key`` with Tensors replaced by their arrays, ready for NumPy, in PyTorch's axis order.

    A 0-dim integer Tensor is an int, as in PyTorch (so ``x[i]`` is a view). A tuple
    mixing ints with index arrays becomes a :class:`SelectThenIndex`.
    """
    if isinstance(key, Tensor):
        key = key.data
        return int(key) if key.ndim == 0 and key.dtype.kind in "iu" else key
    if isinstance(key, tuple):
        for k in key:   # ints, slices, None and Ellipsis (the common keys) go to NumPy as they are
            if not (type(k) is int or type(k) is slice or k is None or k is Ellipsis):
                break
        else:
            return key
        key = tuple(_as_index(k.data if isinstance(k, Tensor) else k) if isinstance(k, (Tensor, np.ndarray))
                    else k for k in key)
        return SelectThenIndex.split(key)
    if isinstance(key, list):
        return np.asarray(key)
    return key


def _as_index(array):
    return int(array) if array.ndim == 0 and array.dtype.kind in "iu" else array


def _is_int(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def _is_advanced(k):
    return isinstance(k, (np.ndarray, list, bool, np.bool_))


class SelectThenIndex:
    """A key that mixes ints with index arrays, applied in PyTorch's order.

    NumPy counts an int among index arrays as one more index array: when they
    are separated by a slice (``x[0, :, idx]``), the indexed dims go first in
    the result. PyTorch first applies the ints, slices, None and Ellipsis (basic
    indexing, a view), then the index arrays to what remains, so ``x[0, :, idx]``
    is ``x[0][:, idx]``. ``basic`` is that first step (each index array replaced
    by full slices over the dims it covers), ``advanced`` the second.
    """
    __slots__ = ("basic", "advanced", "key")

    def __init__(self, basic, advanced, key):
        self.basic, self.advanced, self.key = basic, advanced, key

    @classmethod
    def split(cls, key):
        """``key`` itself unless it holds both an int and an index array."""
        if not (any(_is_int(k) for k in key) and any(_is_advanced(k) for k in key)):
            return key
        basic, advanced = [], []
        for k in key:
            if _is_int(k):
                basic.append(k)
            elif _is_advanced(k):
                k = np.asarray(k)
                if k.ndim == 0:   # a scalar bool: a new dim of size 1, masked (PyTorch's way)
                    basic.append(None)
                    k = k.reshape(1)
                else:
                    if k.size == 0 and k.dtype != bool:   # an empty list is float to NumPy
                        k = k.astype(np.intp)
                    basic.extend([slice(None)] * (k.ndim if k.dtype == bool else 1))
                advanced.append(k)
            elif k is None:
                basic.append(None)
                advanced.append(slice(None))
            else:   # a slice or Ellipsis
                basic.append(k)
                advanced.append(k if k is Ellipsis else slice(None))
        return cls(tuple(basic), tuple(advanced), key)

    def region(self, array):
        """The view of ``array`` that ``basic`` selects, and the key to apply to it."""
        return array[self.basic], self.advanced

    def __repr__(self):
        return repr(self.key)


def _region(array, key):
    """(array, key), with a :class:`SelectThenIndex`'s basic step already applied (a view)."""
    return key.region(array) if type(key) is SelectThenIndex else (array, key)


class GetItem(Function):
    saves_inputs = False
    is_view = True   # for ints and slices; array keys give copies, which apply tells apart

    def forward(self, a, key):
        self.in_shape, self.key = a.shape, key
        try:
            out = a[key] if type(key) is not SelectThenIndex else a[key.basic][key.advanced]
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
    size, start, length = input.shape[dim], int(start), int(length)
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
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"one_hot: class values must be in [0, {n}), got [{idx.min()}, {idx.max()}]")
    return Tensor._make((idx[..., None] == np.arange(n)).astype(np.int64), None)
