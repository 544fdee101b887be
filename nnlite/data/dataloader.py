"""DataLoader: a dataset, cut into batches, in a reproducible order.

Each pass over the loader is one *epoch*. With ``shuffle=True`` every epoch
visits the examples in a new random order: at the start of the epoch the
loader draws one seed from the nnlite generator (the global one, or the
``generator`` you pass) and builds the epoch's permutation from that seed.

The loader remembers where it is — which epoch, how many batches it has
handed out, and the epoch's seed — in :meth:`DataLoader.state_dict`. A
checkpoint stores that position; after :meth:`DataLoader.load_state_dict`
the next ``iter(loader)`` continues the interrupted epoch with exactly the
batches the uninterrupted run would have seen. A random ``sampler`` (or
``batch_sampler``) with a ``state_dict``, such as
:class:`~nnlite.data.RandomSampler`, is saved with the position, so its
interrupted pass is replayed too. The position is that of the most recent ``iter(loader)``; an older iterator still running (``zip(loader,
loader)``, nested loops) goes on through its own epoch without moving it.

Over an :class:`~nnlite.data.IterableDataset` the loader takes the
examples in the stream's order and cuts them into batches; a stream has no
indices to shuffle or sample, and no position the loader could return to, so
``state_dict`` is refused for such a loader.

Every batch is loaded in the calling process. The arguments PyTorch uses for
worker processes are accepted at the values that mean "no workers"
(``num_workers=0``, ``prefetch_factor=None``, ``persistent_workers=False``,
``multiprocessing_context=None``); ``timeout`` and ``worker_init_fn`` only
concern workers, so they are checked and never used, as in PyTorch with
``num_workers=0``; ``pin_memory`` and ``pin_memory_device`` have no effect,
since nnlite's tensors always live in ordinary CPU memory, and batches
always come in order, whatever ``in_order`` says.
"""
import itertools
import math
import numbers

import numpy as np

from .._kernels.checks import is_int
from ..random import _gen
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import cut_into_batches

__all__ = ["DataLoader", "get_worker_info"]


def get_worker_info():
    """None: every batch is loaded in the calling process, which PyTorch's ``get_worker_info``
    also answers with None. An IterableDataset written to split its stream among PyTorch's
    workers therefore reads the whole stream here."""
    return None


def _check_worker_options(num_workers, timeout, worker_init_fn, multiprocessing_context,
                          prefetch_factor, persistent_workers):
    """Refuse, by name, the worker settings this in-process loader cannot honour."""
    if not is_int(num_workers) or num_workers < 0:
        raise ValueError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
    if num_workers > 0:
        raise ValueError(f"DataLoader: nnlite loads every batch in the calling process, so num_workers "
                         f"must be 0, got {num_workers}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)) \
            or not timeout >= 0:
        raise ValueError(f"DataLoader: timeout must be a non-negative number, got {timeout!r}")
    if worker_init_fn is not None and not callable(worker_init_fn):
        raise TypeError(f"DataLoader: worker_init_fn must be callable or None, "
                        f"got {type(worker_init_fn).__name__}")
    if multiprocessing_context is not None:
        raise ValueError(f"DataLoader: multiprocessing_context needs worker processes (num_workers > 0), "
                         f"which nnlite does not use; got {multiprocessing_context!r}")
    if prefetch_factor is not None:
        raise ValueError(f"DataLoader: prefetch_factor needs worker processes (num_workers > 0), "
                         f"which nnlite does not use; leave it None, got {prefetch_factor!r}")
    if persistent_workers:
        raise ValueError("DataLoader: persistent_workers=True needs worker processes (num_workers > 0), "
                         "which nnlite does not use")


def _indices(items):
    """A sampler's indices: an int64 array when they are all integers (the usual case, which
    TensorDataset's batched gather takes), else the list as given. PyTorch hands the dataset
    whatever its sampler yields: string keys, or lists of indices for a dataset that fetches a
    batch itself (``sampler=BatchSampler(...)`` with ``batch_size=None``)."""
    items = list(items)
    if all(isinstance(i, numbers.Integral) for i in items):   # NumPy's integers count too
        return np.asarray(items, dtype=np.int64)
    return items


def _key(index):
    """One index as the dataset gets it: a Python int for an integer, anything else unchanged."""
    return int(index) if isinstance(index, numbers.Integral) else index


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` examples.

    Arguments, their order and defaults are PyTorch's. ``batch_size=None``
    turns batching off: each example comes out alone, its NumPy arrays made
    Tensors (:func:`default_convert`) or passed to ``collate_fn``. A
    ``batch_sampler`` gives each batch's indices itself and excludes
    ``batch_size``, ``shuffle``, ``sampler`` and ``drop_last``.

    >>> import numpy as np, nnlite as nl
    >>> ds = nl.data.TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [y.tolist() for x, y in nl.data.DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="", in_order=True):
        if batch_size is not None and (not is_int(batch_size)
                                       or batch_size < 1):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got {batch_size!r}")
        if not isinstance(drop_last, (bool, np.bool_)):
            raise ValueError(f"DataLoader: drop_last must be a bool, got {drop_last!r}")
        if isinstance(dataset, IterableDataset):
            # A stream gives its examples in its own order: there are no indices to choose.
            for name, value, unset in (("shuffle", shuffle, shuffle in (None, False)),
                                       ("sampler", sampler, sampler is None),
                                       ("batch_sampler", batch_sampler, batch_sampler is None)):
                if not unset:
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, "
                                     f"but got {name}={value!r}")
        else:
            try:
                len(dataset)
            except TypeError:
                raise TypeError(f"DataLoader: dataset must have a length (a map-style Dataset) or be an "
                                f"IterableDataset, got {type(dataset).__name__}") from None
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the sampler "
                             "chooses the order)")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler excludes batch_size, shuffle, sampler and "
                                 "drop_last (it chooses every batch's indices itself)")
            batch_size = None
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None turns batching off, so drop_last=True "
                             "has nothing to drop")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        _check_worker_options(num_workers, timeout, worker_init_fn, multiprocessing_context,
                              prefetch_factor, persistent_workers)
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator
        # An object whose iteration gives the epoch's indices (e.g. a DistributedSampler); if it
        # has set_epoch, the loader calls it with the epoch number before each epoch's order.
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers, self.pin_memory, self.timeout = int(num_workers), bool(pin_memory), timeout
        self.worker_init_fn = worker_init_fn
        self.pin_memory_device, self.in_order = pin_memory_device, in_order
        # The position: epoch number, batches already handed out in it, and its seed.
        self.epoch = 0
        self.batch_index = 0
        self._epoch_seed = None
        self._started = False   # has an epoch begun (so the next fresh iter is a new epoch)?
        self._resume = False    # continue the current epoch on the next iter (after load_state_dict)
        self._latest = None     # the iteration that owns the position (the most recently started)

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        # An IterableDataset without __len__ raises TypeError here, as in PyTorch.
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # ------------------------------------------------------------- iteration --
    def __iter__(self):
        if self._resume:
            self._resume = False
        else:
            if self._started:
                self.epoch += 1
            self._started = True
            self.batch_index = 0
            self._epoch_seed = None
        if isinstance(self.dataset, IterableDataset):
            yield from self._stream()
            return
        me = self._latest = object()
        position = self.batch_index
        # The batches are taken as the sampler gives them (an endless sampler works), and a
        # resumed epoch skips the ones already handed out.
        for indices in itertools.islice(self._batches(), position, None):
            batch = self._fetch(indices)
            position += 1
            if self._latest is me:   # a newer iteration has taken over the position
                self.batch_index = position
            yield batch

    def _batches(self):
        """The epoch's batches, one by one: index arrays (single indices when batching is off)."""
        if self.batch_sampler is not None:
            return (_indices(b) for b in self.batch_sampler)
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(self.epoch)
            if self.batch_size is None:
                return iter(self.sampler)
            return (_indices(b) for b in cut_into_batches(self.sampler, self.batch_size, self.drop_last))
        order = self._order()
        if self.batch_size is None:
            return iter(order)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return (order[start:start + self.batch_size] for start in range(0, stop, self.batch_size))

    def _order(self):
        """The epoch's order of example indices, without a sampler: in turn, or shuffled."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if self._epoch_seed is None:
            self._epoch_seed = int(_gen(self.generator).integers(2**63))
        return np.random.Generator(np.random.PCG64(self._epoch_seed)).permutation(n)

    def _stream(self):
        """An IterableDataset's examples, in batches of batch_size (or one by one)."""
        examples = iter(self.dataset)
        if self.batch_size is None:
            yield from (self._convert(example) for example in examples)
            return
        for batch in cut_into_batches(examples, self.batch_size, self.drop_last):
            yield (self.collate_fn or default_collate)(batch)

    def _convert(self, example):
        """One example on its own, when batching is off."""
        return self.collate_fn(example) if self.collate_fn is not None else default_convert(example)

    def _fetch(self, indices):
        if self.batch_size is None and self.batch_sampler is None:   # batching off: one example
            return self._convert(self.dataset[_key(indices)])
        if self.collate_fn is None and isinstance(indices, np.ndarray):
            # TensorDataset (and Subsets of it) gather a whole batch with one index per array.
            gather = getattr(self.dataset, "_gather", None)
            if gather is not None:
                try:
                    return gather(indices)
                except AttributeError:
                    pass
        examples = [self.dataset[_key(i)] for i in indices]
        return (self.collate_fn or default_collate)(examples)

    # -------------------------------------------------------------- position --
    def _refuse_stream(self, method):
        if isinstance(self.dataset, IterableDataset):
            raise TypeError(f"DataLoader.{method}: the loader reads the IterableDataset "
                            f"{type(self.dataset).__name__} as a stream and cannot return to a position in "
                            f"it; checkpoint a loader over a map-style Dataset instead")

    def state_dict(self):
        """The loader's position as JSON-able data, for checkpoints (with its sampler's, if it has one)."""
        self._refuse_stream("state_dict")
        return {"epoch": self.epoch, "batch_index": self.batch_index, "epoch_seed": self._epoch_seed,
                "started": self._started, "shuffle": self.shuffle, "batch_size": self.batch_size,
                "drop_last": self.drop_last, "dataset_length": len(self.dataset),
                **({"sampler": self.sampler.state_dict()} if hasattr(self.sampler, "state_dict") else {}),
                **({"batch_sampler": self.batch_sampler.state_dict()}
                   if hasattr(self.batch_sampler, "state_dict") else {})}

    def load_state_dict(self, state):
        """Move to a saved position: the next ``iter(self)`` continues that epoch."""
        self._refuse_stream("load_state_dict")
        try:
            saved = {k: state[k] for k in ("epoch", "batch_index", "epoch_seed", "batch_size",
                                           "shuffle", "drop_last", "dataset_length")}
        except (KeyError, TypeError) as e:
            raise ValueError(f"DataLoader.load_state_dict: not a DataLoader state (missing {e})") from None
        mine = {"batch_size": self.batch_size, "shuffle": self.shuffle, "drop_last": self.drop_last,
                "dataset_length": len(self.dataset)}
        differ = [f"{k}: saved {saved[k]!r}, this loader {v!r}" for k, v in mine.items() if saved[k] != v]
        if differ:
            raise ValueError("DataLoader.load_state_dict: the saved position belongs to a different "
                             "loader (" + "; ".join(differ) + ")")
        if not 0 <= int(saved["batch_index"]) <= len(self):
            raise ValueError(f"DataLoader.load_state_dict: batch_index {saved['batch_index']} "
                             f"outside [0, {len(self)}]")
        for name in ("sampler", "batch_sampler"):
            # Without the saved pass of a sampler that keeps one, the epoch would go on in a new order.
            if (hasattr(getattr(self, name), "load_state_dict") and name not in state
                    and state.get("started", True)):
                raise ValueError(f"DataLoader.load_state_dict: this loader's {name} "
                                 f"{type(getattr(self, name)).__name__} keeps a state, but the saved "
                                 f"position has none for it, so its interrupted pass cannot be replayed")
        self.epoch = int(saved["epoch"])
        self.batch_index = int(saved["batch_index"])
        self._epoch_seed = None if saved["epoch_seed"] is None else int(saved["epoch_seed"])
        if "sampler" in state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])
        if "batch_sampler" in state and hasattr(self.batch_sampler, "load_state_dict"):
            self.batch_sampler.load_state_dict(state["batch_sampler"])
        self._started = bool(state.get("started", True))
        self._resume = self._started

    def __repr__(self):
        if isinstance(self.dataset, IterableDataset):
            return (f"DataLoader(dataset={type(self.dataset).__name__}(stream), "
                    f"batch_size={self.batch_size}, drop_last={self.drop_last})")
        return (f"DataLoader(dataset={type(self.dataset).__name__}(len={len(self.dataset)}), "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last})")
