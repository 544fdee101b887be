"""Selections and scatters built on indexing: repeat_interleave, take_along_dim, masked_select,
nonzero, scatter_add, index_add.

Each is a ``gather``, an index read or a scatter-add of :mod:`nnlite.ops.indexing`
with its indices worked out first, so each gradient is the adjoint that op
already has. Indices must lie in [0, size), as in PyTorch (no counting from the end).
"""
import numpy as np

from ..tensor import Tensor
from .dims import _dim
from .indexing import GetItem, IndexGrad, ScatterAdd, _index_array, gather, index_select
from .promotion import tensor_input
from .shape import reshape


def _same_dtype(op, input, other, name):
    if other.dtype != input.dtype:
        raise TypeError(f"{op}: {name} must have the input's dtype {input.dtype}, got {other.dtype}")


def repeat_interleave(input, repeats=None, dim=None, output_size=None):
    """Repeat each element (or each slice along ``dim``) ``repeats`` times in place.

    ``repeats`` is an int or a 1-D tensor with one count per element of ``dim``;
    without ``dim`` the input is flattened first. It is an ``index_select`` with
    each index repeated, so its gradient sums the copies back.

    Given only a 1-D integer tensor of counts, it repeats each position that many
    times: ``repeat_interleave(nl.tensor([1, 0, 2]))`` is ``[0, 2, 2]``, as in PyTorch.
    """
    if repeats is None:
        counts = _index_array("repeat_interleave", input)
        if counts.ndim != 1:
            raise ValueError(f"repeat_interleave: a tensor of counts alone must be 1-D, got shape {counts.shape}")
        input, repeats = Tensor._make(np.arange(counts.size, dtype=np.int64), None), counts
    if dim is None:
        input, dim = tensor_input("repeat_interleave", input).reshape(-1), 0
    dim = _dim("repeat_interleave", dim, tensor_input("repeat_interleave", input).ndim)
    n = input.shape[dim] if input.ndim else 1
    counts = _index_array("repeat_interleave", repeats)
    if counts.ndim > 1 or counts.size not in (1, n) or (counts < 0).any():
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
        return gather(tensor_input("take_along_dim", input).reshape(-1), 0, idx.reshape(-1))
    if tensor_input("take_along_dim", input).ndim == 0:   # PyTorch refuses a dim here; without one it flattens
        raise IndexError(f"take_along_dim: a 0-dim tensor has no dim {dim} to take along; leave dim out")
    dim = _dim("take_along_dim", dim, input.ndim)
    if idx.ndim != input.ndim:
        raise ValueError(f"take_along_dim: indices must have as many dims as input ({input.ndim}), "
                         f"got shape {idx.shape}")
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
    op = "scatter_add"
    dim = _dim(op, dim, tensor_input(op, input).ndim)
    _same_dtype(op, input, tensor_input(op, src), "src")
    if input.ndim == 0:   # as one-element vectors
        return reshape(scatter_add(reshape(input, (1,)), 0, _index_array(op, index).reshape(-1),
                                   reshape(src, (-1,))), ())
    idx = _index_array(op, index, input.shape[dim])
    if idx.ndim != input.ndim or src.ndim != input.ndim:
        raise ValueError(f"scatter_add: input, index and src must have the same number of dims, got "
                         f"{input.shape}, {idx.shape} and {src.shape}")
    if any(i > n for i, n in zip(idx.shape, src.shape)) or \
            any(i > n for d, (i, n) in enumerate(zip(idx.shape, input.shape)) if d != dim):
        raise ValueError(f"scatter_add: index {idx.shape} must be no larger than src {src.shape}, nor "
                         f"than input {input.shape} outside dim {dim}")
    block = src if tuple(src.shape) == idx.shape else src[tuple(slice(0, n) for n in idx.shape)]
    return input + ScatterAdd.apply(block, tuple(input.shape), dim, idx)


def index_add(input, dim, index, source, alpha=1):
    """``input`` with ``alpha * source[..., k, ...]`` added at ``input[..., index[k], ...]`` along ``dim``."""
    op = "index_add"
    dim = _dim(op, dim, tensor_input(op, input).ndim)
    _same_dtype(op, input, tensor_input(op, source), "source")
    if input.ndim == 0:   # as one-element vectors
        return reshape(index_add(reshape(input, (1,)), 0, index, reshape(source, (-1,)), alpha), ())
    idx = _index_array(op, index, input.shape[dim])
    if idx.ndim != 1:
        raise ValueError(f"index_add: index must be 1-D, got shape {idx.shape}")
    expected = tuple(idx.size if d == dim else n for d, n in enumerate(input.shape))
    if tuple(source.shape) != expected:
        raise ValueError(f"index_add: source must have shape {expected} (input's, with {idx.size} "
                         f"along dim {dim}), got {tuple(source.shape)}")
    key = (slice(None),) * dim + (idx,)
    added = IndexGrad.apply(source, tuple(input.shape), key)
    return input + (added if alpha == 1 else added * alpha)
