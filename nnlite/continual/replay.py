"""Experience replay: keep a small, fair sample of the past and rehearse it with every new batch.

A **reservoir** (Vitter 1985, "Random sampling with a reservoir") keeps a
uniform sample of a stream whose length is not known in advance, in fixed
memory: the first ``capacity`` examples fill it; the n-th example after that
(n counted from 1 over the whole stream) replaces a random slot with
probability ``capacity / n``. At every moment each example seen so far is in
the buffer with the same probability, ``capacity / n`` — so after five tasks
every task holds about a fifth of it, with no task boundaries needed.
"""
import numpy as np

from .._kernels.checks import is_int
from ..random import _gen
from ..tensor import Tensor

__all__ = ["ReservoirBuffer"]


class ReservoirBuffer:
    """A reservoir sample of up to ``capacity`` examples, each a row of one or more arrays.

    >>> import numpy as np, nnlite as nl
    >>> buffer = ReservoirBuffer(capacity=4, generator=nl.Generator(0))
    >>> buffer.add(np.arange(10.0)[:, None], np.arange(10))
    >>> len(buffer), buffer.seen
    (4, 10)
    >>> [t.shape for t in buffer.sample(3)]
    [(3, 1), (3,)]
    """

    def __init__(self, capacity, generator=None):
        if not is_int(capacity) or capacity < 1:
            raise ValueError(f"ReservoirBuffer: capacity must be a positive int, got {capacity!r}")
        from ..random import Generator
        if generator is not None and not isinstance(generator, Generator):
            raise TypeError(f"ReservoirBuffer: generator must be an nl.Generator or None, "
                            f"got {type(generator).__name__}")
        self.capacity = int(capacity)
        self.generator = generator
        self.arrays = None      # one array per field, capacity rows
        self.seen = 0           # examples offered so far

    def __len__(self):
        return min(self.seen, self.capacity)

    def add(self, *fields):
        """Offer a batch of examples (matching rows of each field: arrays or Tensors) to the reservoir."""
        fields = [f.data if isinstance(f, Tensor) else np.asarray(f) for f in fields]
        if not fields or any(f.ndim == 0 for f in fields):
            raise ValueError(f"ReservoirBuffer.add: expected one or more fields of rows (arrays with a first "
                             f"dimension), got shapes {[f.shape for f in fields]}")
        if len({len(f) for f in fields}) != 1:
            raise ValueError(f"ReservoirBuffer.add: fields need the same number of rows, got "
                             f"{[len(f) for f in fields]}")
        if self.arrays is None:
            self.arrays = [np.zeros((self.capacity,) + f.shape[1:], f.dtype) for f in fields]
        elif len(fields) != len(self.arrays):
            raise ValueError(f"ReservoirBuffer.add: expected {len(self.arrays)} fields, got {len(fields)}")
        for i, (store, f) in enumerate(zip(self.arrays, fields)):
            # Rows of another shape would not fit; another kind of number (0.5 into integer labels) would be cut.
            if f.shape[1:] != store.shape[1:] or not np.can_cast(f.dtype, store.dtype, "same_kind"):
                raise ValueError(f"ReservoirBuffer.add: field {i} holds rows of shape {store.shape[1:]} and dtype "
                                 f"{store.dtype}, got shape {f.shape[1:]} and dtype {f.dtype}")
        rng = _gen(self.generator)
        for row in range(len(fields[0])):
            self.seen += 1
            if self.seen <= self.capacity:
                slot = self.seen - 1
            else:
                slot = int(rng.integers(self.seen))   # uniform in [0, n): kept with probability capacity / n
                if slot >= self.capacity:
                    continue
            for store, f in zip(self.arrays, fields):
                store[slot] = f[row]

    def sample(self, batch_size):
        """``batch_size`` stored examples drawn uniformly (without replacement), as Tensors per field.

        While fewer than ``batch_size`` examples are stored, all of them are returned.
        """
        if not is_int(batch_size) or batch_size < 1:   # 2.0 passed int(2.0) == 2.0, then failed in NumPy
            raise ValueError(f"ReservoirBuffer.sample: batch_size must be a positive integer, got {batch_size!r}")
        if len(self) == 0:
            raise ValueError("ReservoirBuffer.sample: the buffer is empty")
        rng = _gen(self.generator)
        picked = rng.choice(len(self), size=min(batch_size, len(self)), replace=False)
        return tuple(Tensor._make(store[picked], None) for store in self.arrays)
