"""DataLoader: a dataset, cut into batches, in a reproducible order.

Each pass over the loader is one *epoch*. With ``shuffle=True`` every epoch
visits the examples in a new random order: at the start of the epoch the
loader draws one seed from the nnlite generator (the global one, or the
``generator`` you pass) and builds the epoch's permutation from that seed.

The loader remembers where it is — which epoch, how many batches it has
handed out, and the epoch's seed — in :meth:`DataLoader.state_dict`. A
checkpoint stores that position; after :meth:`DataLoader.load_state_dict`
the next ``iter(loader)`` continues the interrupted epoch with exactly the
batches the uninterrupted run would have seen.
"""
import math

import numpy as np

from ..random import _gen
from .collate import default_collate

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` examples.

    >>> import numpy as np, nnlite as nl
    >>> ds = nl.data.TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [y.tolist() for x, y in nl.data.DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
                 generator=None, sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        try:
            len(dataset)
        except TypeError:
            raise TypeError(f"DataLoader: dataset must have a length (a map-style Dataset), "
                            f"got {type(dataset).__name__}") from None
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the sampler "
                             "chooses the order)")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator
        # An object whose iteration gives the epoch's indices (e.g. a DistributedSampler); if it
        # has set_epoch, the loader calls it with the epoch number before each epoch's order.
        self.sampler = sampler
        # The position: epoch number, batches already handed out in it, and its seed.
        self.epoch = 0
        self.batch_index = 0
        self._epoch_seed = None
        self._started = False   # has an epoch begun (so the next fresh iter is a new epoch)?
        self._resume = False    # continue the current epoch on the next iter (after load_state_dict)

    def __len__(self):
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
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
        order = self._order()
        while self.batch_index < len(self):
            start = self.batch_index * self.batch_size
            batch = self._fetch(order[start:start + self.batch_size])
            self.batch_index += 1
            yield batch

    def _order(self):
        """The epoch's order of example indices."""
        if self.sampler is not None:
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(self.epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if self._epoch_seed is None:
            self._epoch_seed = int(_gen(self.generator).integers(2**63))
        return np.random.Generator(np.random.PCG64(self._epoch_seed)).permutation(n)

    def _fetch(self, indices):
        if self.collate_fn is None:
            # TensorDataset (and Subsets of it) gather a whole batch with one index per array.
            gather = getattr(self.dataset, "_gather", None)
            if gather is not None:
                try:
                    return gather(indices)
                except AttributeError:
                    pass
        examples = [self.dataset[int(i)] for i in indices]
        return (self.collate_fn or default_collate)(examples)

    # -------------------------------------------------------------- position --
    def state_dict(self):
        """The loader's position as JSON-able data, for checkpoints."""
        return {"epoch": self.epoch, "batch_index": self.batch_index, "epoch_seed": self._epoch_seed,
                "started": self._started, "shuffle": self.shuffle, "batch_size": self.batch_size,
                "drop_last": self.drop_last, "dataset_length": len(self.dataset),
                **({"sampler": self.sampler.state_dict()} if hasattr(self.sampler, "state_dict") else {})}

    def load_state_dict(self, state):
        """Move to a saved position: the next ``iter(self)`` continues that epoch."""
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
        self.epoch = int(saved["epoch"])
        self.batch_index = int(saved["batch_index"])
        self._epoch_seed = None if saved["epoch_seed"] is None else int(saved["epoch_seed"])
        if "sampler" in state and hasattr(self.sampler, "load_state_dict"):
            self.sampler.load_state_dict(state["sampler"])
        self._started = bool(state.get("started", True))
        self._resume = self._started

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__}(len={len(self.dataset)}), "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, drop_last={self.drop_last})")
