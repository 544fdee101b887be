"""DistributedSampler: each rank's share of an epoch, all ranks agreeing on the order.

Every rank builds the same permutation of the dataset, from a seed all ranks
share plus the epoch number, so an epoch's order differs from the last one but
not between ranks. Rank ``r`` of ``W`` then takes positions ``r, r + W,
r + 2W, ...``: the shares are disjoint and together cover the epoch.

Each rank must see the same number of examples, or the ranks would disagree on
the number of steps and wait for each other forever. When ``W`` does not divide
the dataset, the epoch is either padded by repeating its first examples
(default) or cut to a multiple of ``W`` (``drop_last=True``). PyTorch's
semantics, step for step (the permutation itself comes from NumPy's PCG64, so
the order is not PyTorch's).
"""
import math

import numpy as np

from . import process_group as pg

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` visits this epoch.

    Pass it to a :class:`~nnlite.data.DataLoader` as ``sampler=``; the loader
    calls :meth:`set_epoch` at the start of every epoch (in PyTorch that call
    is left to the training loop, and forgetting it repeats epoch 0's order).
    ``state_dict()`` holds the epoch and the seed, so a checkpoint resumes
    the same order.

    >>> from nnlite.distributed import DistributedSampler
    >>> s = DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
    >>> list(s), len(s)     # 10 padded to 12: positions 1, 4, 7, 10 -> index 0 repeated
    ([1, 4, 7, 0], 4)
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        num_replicas = pg.get_world_size() if num_replicas is None else int(num_replicas)
        rank = pg.get_rank() if rank is None else int(rank)
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, num_replicas), got rank={rank}, "
                             f"num_replicas={num_replicas}")
        self.dataset = dataset
        self.num_replicas, self.rank = num_replicas, rank
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch):
        """Use epoch ``epoch``'s order (the permutation is seeded with ``seed + epoch``)."""
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.Generator(np.random.PCG64(self.seed + self.epoch)).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:   # pad by repeating the start of the order (as often as needed)
            order = np.concatenate([order] * math.ceil(self.total_size / n))[:self.total_size] if n else order
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def state_dict(self):
        return {"epoch": self.epoch, "seed": self.seed, "shuffle": self.shuffle, "drop_last": self.drop_last,
                "num_replicas": self.num_replicas}

    def load_state_dict(self, state):
        if state.get("num_replicas", self.num_replicas) != self.num_replicas:
            raise ValueError(f"DistributedSampler.load_state_dict: saved for {state['num_replicas']} ranks, "
                             f"this run has {self.num_replicas}")
        self.epoch, self.seed = int(state["epoch"]), int(state["seed"])
        self.shuffle, self.drop_last = bool(state["shuffle"]), bool(state["drop_last"])

    def __repr__(self):
        return (f"DistributedSampler(len(dataset)={len(self.dataset)}, rank={self.rank}, "
                f"num_replicas={self.num_replicas}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last})")
