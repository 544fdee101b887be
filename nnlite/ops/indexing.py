"""Indexing: ``x[key]``, narrow, gather, index_select, one_hot, and the selections and
scatters built on them (repeat_interleave, take_along_dim, masked_select, nonzero,
scatter_add, index_add).

The gradient of reading ``x[key]`` is a tensor of zeros with the incoming
gradient added at ``key``. Integer-array keys may repeat an index; each
occurrence contributes, so the backward uses a scatter-*add* (``np.add.at``),
never a plain assignment that would keep only one of them.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor


def _is_basic(key):
    """True when ``key`` uses only ints, slices, None and Ellipsis (a view, no repeats)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in items)


def _convert_key(key):
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Tensor) else k for k in key)
    if isinstance(key, list):
        return np.asarray(key)
    return key


class GetItem(Function):
    saves_inputs = False
    is_view = True   # for ints and slices; array keys give copies, which apply tells apart

    def forward(self, a, key):
        self.in_shape, self.key = a.shape, key
        try:
            return a[key]
        except IndexError as e:
            raise IndexError(f"index {key!r} is invalid for a tensor of shape {a.shape}: {e}") from None

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
            np.add.at(out, key, grad)
        return out

    def backward(self, gg):
        return GetItem.apply(gg, self.key), None, None


def getitem(input, key):
    return GetItem.apply(input, _convert_key(key))


def narrow(input, dim, start, length):
    dim = dim % input.ndim
    return GetItem.apply(input, (slice(None),) * dim + (slice(start, start + length),))


def index_select(input, dim, index):
    dim = dim % input.ndim
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.ndim != 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {idx.shape}")
    return GetItem.apply(input, (slice(None),) * dim + (idx.astype(np.int64),))


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
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    return Gather.apply(input, dim % input.ndim, idx.astype(np.int64, copy=False))


def one_hot(index, num_classes=-1):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    n = int(idx.max()) + 1 if num_classes < 0 else num_classes
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"one_hot: class values must be in [0, {n}), got [{idx.min()}, {idx.max()}]")
    return Tensor._make((idx[..., None] == np.arange(n)).astype(np.int64), None)


def _index_array(op, index):
    idx = index.data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers, got {idx.dtype}")
    return idx.astype(np.int64, copy=False)


def repeat_interleave(input, repeats, dim=None, output_size=None):
    """Repeat each element (or each slice along ``dim``) ``repeats`` times in place.

    ``repeats`` is an int or a 1-D tensor with one count per element of ``dim``;
    without ``dim`` the input is flattened first. It is an ``index_select`` with
    each index repeated, so its gradient sums the copies back.
    """
    if dim is None:
        input, dim = input.reshape(-1), 0
    dim = dim % max(input.ndim, 1)
    n = input.shape[dim] if input.ndim else 1
    counts = _index_array("repeat_interleave", repeats).reshape(-1)
    if counts.size not in (1, n) or (counts < 0).any():
        raise ValueError(f"repeat_interleave: repeats must be one count >= 0 or {n} of them (the size "
                         f"of dim {dim}), got {counts.tolist()}")
    idx = np.repeat(np.arange(n), np.broadcast_to(counts, (n,)))
    if output_size is not None and output_size != idx.size:
        raise ValueError(f"repeat_interleave: output_size is {output_size} but the repeats give {idx.size}")
    return index_select(input.reshape(1) if input.ndim == 0 else input, dim, idx)


def take_along_dim(input, indices, dim=None):
    """``gather`` with broadcasting: the elements of ``input`` at ``indices`` along ``dim``.

    Without ``dim`` both are flattened. Otherwise all dims but ``dim`` broadcast
    against each other, as in PyTorch (and ``numpy.take_along_axis``).
    """
    idx = _index_array("take_along_dim", indices)
    if dim is None:
        return gather(input.reshape(-1), 0, idx.reshape(-1))
    if idx.ndim != input.ndim:
        raise ValueError(f"take_along_dim: indices must have as many dims as input ({input.ndim}), "
                         f"got shape {idx.shape}")
    dim = dim % input.ndim
    rest = np.broadcast_shapes(tuple(1 if d == dim else n for d, n in enumerate(input.shape)),
                               tuple(1 if d == dim else n for d, n in enumerate(idx.shape)))
    x_shape = tuple(input.shape[d] if d == dim else n for d, n in enumerate(rest))
    i_shape = tuple(idx.shape[d] if d == dim else n for d, n in enumerate(rest))
    x = input if tuple(input.shape) == x_shape else input.expand(*x_shape)
    return gather(x, dim, np.broadcast_to(idx, i_shape))


def masked_select(input, mask):
    """The elements of ``input`` where ``mask`` (broadcast against it) is True, as a 1-D tensor."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_select: mask must be a bool tensor, got {m.dtype}")
    shape = np.broadcast_shapes(tuple(input.shape), m.shape)
    x = input if tuple(input.shape) == shape else input.expand(*shape)
    return GetItem.apply(x, np.broadcast_to(m, shape))


def nonzero(input, as_tuple=False):
    """Indices of the non-zero elements: an (n, ndim) int64 tensor, or one 1-D tensor per dim."""
    a = input.data if isinstance(input, Tensor) else np.asarray(input)
    if as_tuple:
        return tuple(Tensor._make(i.astype(np.int64), None) for i in np.nonzero(np.atleast_1d(a)))
    return Tensor._make(np.argwhere(a).astype(np.int64), None)


def scatter_add(input, dim, index, src):
    """``input`` with ``src[i][j]...`` added at position ``index[i][j]...`` along ``dim``.

    Repeated indices add up. ``src`` may be larger than ``index``; only its
    leading ``index.shape`` block is used, as in PyTorch.
    """
    idx = _index_array("scatter_add", index)
    dim = dim % max(input.ndim, 1)
    if idx.ndim != input.ndim or src.ndim != input.ndim:
        raise ValueError(f"scatter_add: input, index and src must have the same number of dims, got "
                         f"{input.shape}, {idx.shape} and {src.shape}")
    if any(i > n for i, n in zip(idx.shape, src.shape)) or \
            any(i > n for d, (i, n) in enumerate(zip(idx.shape, input.shape)) if d != dim):
        raise ValueError(f"scatter_add: index {idx.shape} must be no larger than src {src.shape}, nor "
                         f"than input {input.shape} outside dim {dim}")
    if idx.size and (idx.min() < -input.shape[dim] or idx.max() >= input.shape[dim]):
        raise IndexError(f"scatter_add: index values must be in [0, {input.shape[dim]}) for dim {dim}, "
                         f"got [{idx.min()}, {idx.max()}]")
    block = src if tuple(src.shape) == idx.shape else src[tuple(slice(0, n) for n in idx.shape)]
    return input + ScatterAdd.apply(block, tuple(input.shape), dim, idx % input.shape[dim])


def index_add(input, dim, index, source, alpha=1):
    """``input`` with ``alpha * source[..., k, ...]`` added at ``input[..., index[k], ...]`` along ``dim``."""
    idx = _index_array("index_add", index).reshape(-1)
    dim = dim % max(input.ndim, 1)
    expected = tuple(idx.size if d == dim else n for d, n in enumerate(input.shape))
    if tuple(source.shape) != expected:
        raise ValueError(f"index_add: source must have shape {expected} (input's, with {idx.size} "
                         f"along dim {dim}), got {tuple(source.shape)}")
    if idx.size and (idx.min() < -input.shape[dim] or idx.max() >= input.shape[dim]):
        raise IndexError(f"index_add: index values must be in [0, {input.shape[dim]}) for dim {dim}, "
                         f"got [{idx.min()}, {idx.max()}]")
    key = (slice(None),) * dim + (idx % input.shape[dim],)
    added = IndexGrad.apply(source, tuple(input.shape), key)
    return input + (added if alpha == 1 else added * alpha)
