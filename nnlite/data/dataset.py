"""Datasets: anything with a length that returns the i-th example, or a stream of examples.

A :class:`Dataset` is the map-style protocol PyTorch uses: ``len(ds)`` and
``ds[i]``. An :class:`IterableDataset` is the other one: ``iter(ds)`` gives
the examples in the dataset's own order (lines of a file, a generator), and
:class:`ChainDataset` runs several streams one after another. :class:`TensorDataset` wraps arrays that share their first
dimension; :class:`Subset` and :func:`random_split` pick parts of a dataset
without copying it.
"""
import math
import numbers
from collections.abc import Iterable

import numpy as np

from .._kernels.checks import is_int
from ..random import _gen
from ..tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset",
           "random_split"]


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__(index)``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset, Iterable):
    """Base class of streams: subclasses define ``__iter__``, yielding examples.

    A :class:`DataLoader` over one takes the examples in the stream's order and
    cuts them into batches of ``batch_size`` (dropping a last short batch if
    ``drop_last``); it has no indices, so ``shuffle``, ``sampler`` and
    ``batch_sampler`` are refused, as in PyTorch. ``len()`` exists only if the
    subclass defines ``__len__``.

    >>> import nnlite as nl
    >>> class Squares(nl.data.IterableDataset):
    ...     def __iter__(self):
    ...         return iter([k * k for k in range(5)])
    >>> [b.tolist() for b in nl.data.DataLoader(Squares(), batch_size=2)]
    [[0, 1], [4, 9], [16]]
    """

    def __len__(self):
        # A stream has no length unless its subclass gives one (Dataset's __len__ would
        # suggest that every subclass must define one).
        raise TypeError(f"object of type '{type(self).__name__}' has no len()")

    def __add__(self, other):
        return ChainDataset([self, other])


def _as_array(t, i):
    if isinstance(t, Tensor):
        return t.data
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"TensorDataset: argument {i} must be a Tensor or a numpy.ndarray, "
                    f"got {type(t).__name__}")


class TensorDataset(Dataset):
    """Examples made of matching rows of several arrays: ``ds[i] == (x[i], y[i])``.

    >>> import numpy as np, nnlite as nl
    >>> ds = nl.data.TensorDataset(np.zeros((5, 3), np.float32), np.arange(5))
    >>> len(ds), ds[2][1].item()
    (5, 2)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        arrays = [_as_array(t, i) for i, t in enumerate(tensors)]
        sizes = [a.shape[0] if a.ndim else None for a in arrays]
        if None in sizes or len(set(sizes)) != 1:
            shapes = [a.shape for a in arrays]
            raise ValueError(f"TensorDataset: every tensor needs the same first dimension, got shapes {shapes}")
        self.arrays = arrays

    @property
    def tensors(self):
        return tuple(Tensor._make(a, None) for a in self.arrays)

    def __getitem__(self, index):
        return tuple(Tensor._make(np.asarray(a[index]), None) for a in self.arrays)

    def __len__(self):
        return self.arrays[0].shape[0]

    def _gather(self, indices):
        """A whole batch at once: one fancy-index per array (the DataLoader's fast path)."""
        return tuple(Tensor._make(a[indices], None) for a in self.arrays)


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order.

    A list of positions is one request to ``dataset`` for the list of their indices, as in
    PyTorch, so a dataset that fetches a whole batch at once (a TensorDataset) still does.
    """

    def __init__(self, dataset, indices):
        given = np.asarray(indices)
        if given.size and given.dtype.kind not in "iu":   # a cast would cut 1.5 to 1 unnoticed
            raise TypeError(f"Subset: indices must be ints, got dtype {given.dtype}")
        indices = given.astype(np.int64).reshape(-1)
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of length {n}, "
                             f"got min {indices.min()}, max {indices.max()}")
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return self.dataset[[int(self.indices[i]) for i in index]]
        return self.dataset[int(self.indices[index])]

    def __len__(self):
        return len(self.indices)

    def _gather(self, indices):
        inner = getattr(self.dataset, "_gather", None)
        if inner is None:
            raise AttributeError("_gather")
        return inner(self.indices[indices])


class ConcatDataset(Dataset):
    """Several datasets one after another.

    An index outside ``[-len, len)`` raises IndexError, as for a Python list
    (PyTorch raises ValueError for one below ``-len``).
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} out of range for length {n}")
        index %= n
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


class ChainDataset(IterableDataset):
    """Several :class:`IterableDataset` s, each stream to its end before the next.

    Its length, when every part has one, is the sum of theirs. A part that is
    not an IterableDataset is refused here with a TypeError (PyTorch finds it
    only while iterating, with an AssertionError).

    >>> import nnlite as nl
    >>> class Count(nl.data.IterableDataset):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(self.n))
    >>> list(Count(2) + Count(3))
    [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    ``lengths`` are counts that add up to ``len(dataset)``, or fractions that
    add up to 1 (remainders go to the first parts one by one, as in PyTorch).
    The permutation is drawn from ``generator`` (or the global generator), so
    ``nl.manual_seed`` fixes the split.
    """
    n = len(dataset)
    lengths = list(lengths)
    fractions = lengths and all(isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral)
                                for x in lengths)   # Python or NumPy floats
    # Each fraction times n in the fraction's own type (float32 too), as PyTorch computes it.
    if fractions and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1 + 1e-9:
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not is_int(x) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing to 1, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, "
                         f"but the dataset has {n} examples")
    perm = _gen(generator).permutation(n)
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start:start + length]))
        start += length
    return out
