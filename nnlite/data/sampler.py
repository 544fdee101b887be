"""Samplers: which example indices an epoch visits, and in what order.

A sampler is any object whose iteration gives indices into a dataset; a
:class:`~nnlite.data.DataLoader` takes one as ``sampler=`` (indices, which the
loader cuts into batches) or as ``batch_sampler=`` (whole batches of indices).
These are PyTorch's samplers, with PyTorch's arguments, defaults and errors.

Randomness comes from nnlite's generators, never from NumPy's global state.
Each pass over a random sampler draws one seed from ``generator`` (or the
global generator that ``nl.manual_seed`` resets) and takes the whole pass from
a fresh PCG64 stream with that seed, the way the DataLoader shuffles. The seed
of the latest pass is the sampler's ``state_dict()``: a DataLoader stores it in
its own state, and after ``load_state_dict`` the next pass replays that seed, so
an interrupted epoch resumes with exactly the indices it would have had. (The
draws are not PyTorch's: its generators are different.)
"""
import itertools
import math
from collections.abc import Iterable

import numpy as np

from .._kernels.checks import is_int
from ..random import _gen

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


def _positive_int(owner, name, value, error=ValueError):
    if not is_int(value) or value <= 0:
        raise error(f"{owner}: {name} should be a positive integer value, but got {name}={value}")
    return int(value)


def _bool(owner, name, value, error=ValueError):
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{owner}: {name} should be a boolean value, but got {name}={value}")
    return bool(value)


def cut_into_batches(items, batch_size, drop_last):
    """``items`` (any iterable, an endless one too) in consecutive lists of ``batch_size``, taken
    as they come; the last, shorter one is dropped when ``drop_last`` (BatchSampler's batching,
    and the DataLoader's over a sampler or a stream)."""
    items = iter(items)
    while True:
        batch = list(itertools.islice(items, batch_size))
        if not batch or (drop_last and len(batch) < batch_size):
            return
        yield batch


class Sampler:
    """Base class: subclasses define ``__iter__`` (the indices, or lists of
    indices for a batch sampler) and, when they know it, ``__len__``.

    >>> import nnlite as nl
    >>> class Backwards(nl.data.Sampler):
    ...     def __init__(self, data_source):
    ...         self.data_source = data_source
    ...     def __iter__(self):
    ...         return iter(range(len(self.data_source) - 1, -1, -1))
    ...     def __len__(self):
    ...         return len(self.data_source)
    >>> list(Backwards("abcd"))
    [3, 2, 1, 0]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """The indices ``0, 1, ..., len(data_source) - 1``, in that order, every pass.

    >>> import nnlite as nl
    >>> list(nl.data.SequentialSampler(range(4)))
    [0, 1, 2, 3]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class _SeededSampler(Sampler):
    """A sampler whose pass is drawn from one seed, kept so a checkpoint can replay it."""

    def __init__(self, generator):
        _gen(generator)   # refuse anything but an nl.Generator (or None) now, not at the first pass
        self.generator = generator
        self._seed = None       # the seed of the latest pass
        self._replay = False    # after load_state_dict: the next pass reuses _seed

    def _pass_rng(self):
        """The random stream of a new pass (or of the saved one, once, after load_state_dict)."""
        if self._replay:
            self._replay = False
        else:
            self._seed = int(_gen(self.generator).integers(2**63))
        return np.random.Generator(np.random.PCG64(self._seed))

    def __iter__(self):
        return iter(self._draw(self._pass_rng()).tolist())

    def state_dict(self):
        """The latest pass's seed, as JSON-able data."""
        return {"seed": self._seed}

    def load_state_dict(self, state):
        """Make the next pass repeat the saved one (nothing to repeat if none had begun)."""
        try:
            seed = state["seed"]
        except (KeyError, TypeError):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict with a 'seed', "
                             f"got {state!r}") from None
        self._seed = None if seed is None else int(seed)
        self._replay = self._seed is not None


class RandomSampler(_SeededSampler):
    """Random indices into ``data_source``: a shuffle, or draws with replacement.

    Without replacement, a pass is a uniformly random permutation of
    ``0 .. n-1`` (``n = len(data_source)``); a ``num_samples`` larger than
    ``n`` chains fresh permutations and cuts the last one short, so every
    index appears ``num_samples // n`` or one more times. With
    ``replacement=True`` each of the ``num_samples`` indices is drawn
    independently and uniformly from ``0 .. n-1``. ``num_samples`` defaults
    to ``n``. A pass without replacement and ``num_samples = n`` is the
    permutation ``DataLoader(shuffle=True, generator=generator)`` would use
    for the same seed.

    >>> import nnlite as nl
    >>> s = nl.data.RandomSampler(range(5), generator=nl.Generator(0))
    >>> sorted(s), len(s)
    ([0, 1, 2, 3, 4], 5)
    >>> len(list(nl.data.RandomSampler(range(5), replacement=True, num_samples=12)))
    12
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = _bool("RandomSampler", "replacement", replacement, error=TypeError)
        self._num_samples = num_samples
        _positive_int("RandomSampler", "num_samples", self.num_samples)
        super().__init__(generator)

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _draw(self, rng):
        n, count = len(self.data_source), int(self.num_samples)
        if n == 0:
            raise ValueError(f"RandomSampler: cannot draw num_samples={count} indices from an empty "
                             f"data_source")
        if self.replacement:
            return rng.integers(n, size=count)
        permutations = [rng.permutation(n) for _ in range(math.ceil(count / n))]
        return np.concatenate(permutations)[:count]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(_SeededSampler):
    """The given ``indices`` in a new random order every pass (no replacement).

    >>> import nnlite as nl
    >>> sorted(nl.data.SubsetRandomSampler([7, 3, 9], generator=nl.Generator(0)))
    [3, 7, 9]
    """

    def __init__(self, indices, generator=None):
        self.indices = indices
        super().__init__(generator)

    def __iter__(self):
        return iter([self.indices[i] for i in self._pass_rng().permutation(len(self.indices)).tolist()])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(_SeededSampler):
    """``num_samples`` indices into ``weights``, index ``i`` drawn with
    probability ``p_i = w_i / sum_j w_j``.

    The weights need not sum to one. With ``replacement=True`` (the default)
    the draws are independent, so index ``i`` appears about ``p_i *
    num_samples`` times: the usual way to rebalance classes is ``w_i = 1 /
    (count of example i's class)``. Without replacement each index appears at
    most once: each draw picks among the indices not yet drawn, with
    probabilities proportional to their weights.

    Weights must be a one-dimensional sequence of finite, non-negative numbers
    with a positive sum, else the sampler is refused (PyTorch's messages and
    exception types, raised here at construction rather than at the first
    pass). Without replacement, ``num_samples`` may not exceed the number of
    positive weights: PyTorch would then draw indices of weight zero.

    >>> import nnlite as nl
    >>> s = nl.data.WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=1000, generator=nl.Generator(0))
    >>> draws = list(s)
    >>> draws.count(0), 650 < draws.count(2) < 850
    (0, True)
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        self.num_samples = _positive_int("WeightedRandomSampler", "num_samples", num_samples)
        self.replacement = _bool("WeightedRandomSampler", "replacement", replacement)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but given weights "
                             f"have shape {weights.shape}")
        if not np.isfinite(weights).all():
            raise RuntimeError(f"WeightedRandomSampler: invalid multinomial distribution (encountering "
                               f"probability entry = infinity or NaN): weights must be finite, got "
                               f"{weights[~np.isfinite(weights)][0]}")
        if (weights < 0).any():
            raise RuntimeError(f"WeightedRandomSampler: invalid multinomial distribution (encountering "
                               f"probability entry < 0): got weight {weights[weights < 0][0]} at index "
                               f"{int(np.argmax(weights < 0))}")
        if not weights.sum() > 0:
            raise RuntimeError("WeightedRandomSampler: invalid multinomial distribution (sum of "
                               f"probabilities <= 0): {weights.size} weights summing to {weights.sum()}")
        positive = int((weights > 0).sum())
        if not self.replacement and self.num_samples > positive:
            raise RuntimeError(f"WeightedRandomSampler: cannot sample n_sample > prob_dist.size(-1) samples "
                               f"without replacement: num_samples={self.num_samples}, but only {positive} "
                               f"of the {weights.size} weights are positive")
        self.weights = weights
        super().__init__(generator)

    def _draw(self, rng):
        return rng.choice(self.weights.size, size=self.num_samples, replace=self.replacement,
                          p=self.weights / self.weights.sum())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` (any iterable of indices) into lists
    of ``batch_size``; the last, shorter list is dropped if ``drop_last``.

    >>> import nnlite as nl
    >>> list(nl.data.BatchSampler(nl.data.SequentialSampler(range(7)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6]]
    >>> len(nl.data.BatchSampler(range(7), batch_size=3, drop_last=True))
    2
    """

    def __init__(self, sampler, batch_size, drop_last):
        self.batch_size = _positive_int("BatchSampler", "batch_size", batch_size)
        self.drop_last = _bool("BatchSampler", "drop_last", drop_last)
        if not isinstance(sampler, Iterable):
            raise TypeError(f"BatchSampler: sampler must be an iterable of indices, "
                            f"got {type(sampler).__name__}")
        self.sampler = sampler

    def __iter__(self):
        return cut_into_batches(self.sampler, self.batch_size, self.drop_last)

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # The position of a random inner sampler, so a DataLoader can replay its pass.
    def state_dict(self):
        inner = getattr(self.sampler, "state_dict", None)
        return {"sampler": inner()} if inner is not None else {}

    def load_state_dict(self, state):
        if "sampler" in state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])
