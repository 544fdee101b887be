"""Data parallelism: every rank holds the whole model, and the gradients are averaged.

Each of the ``W`` ranks runs the model on its own share of the batch (``B / W``
examples) and computes the gradient of its own mean loss, :math:`g_r`. The
gradient of the mean loss over the whole batch is their average,

.. math::  g = \\frac{1}{W} \\sum_{r=0}^{W-1} g_r ,

so after one ``all_reduce`` (a sum over the ranks) and a division by ``W``,
every rank holds the same gradient a single process would have computed for
the whole batch, and the optimizer steps of all ranks stay identical. What is
*replicated*: the parameters, the buffers and the optimizer state. What is
*reduced*: only the gradients.

nnlite's optimizers keep the gradients of all parameters in one flat,
contiguous buffer (the parameter arena, :mod:`nnlite.optim.arena`), so the
reduction needs no copying: the buffer is cut into *buckets* of at most
``bucket_cap_mb`` megabytes and each bucket is reduced with one in-place
``MPI_Allreduce``. Fewer, larger messages pay the network's latency fewer
times; a cap keeps each message short enough to hide behind computation in a
framework that overlaps them. Parameters that are not trainable are left out
(their gradient bytes are never sent); a tied parameter has one slot in the
arena, so its gradient is sent once.

The averaging runs inside ``loss.backward()``, right after the last gradient
has been accumulated (a hook on each trainable parameter queues it with
:func:`nnlite.autograd.queue_callback`), exactly where PyTorch's
``DistributedDataParallel`` does it: a training loop written for one process
needs no extra call. The buckets are reduced after the whole backward pass, not
overlapped with it: nnlite's engine accumulates the parameters' gradients once
the graph walk is over (a parameter used twice gets its total at the end), so
no bucket is complete earlier; and on a CPU the ranks share the cores the
backward pass would use anyway.

BatchNorm statistics are *per rank*: each rank normalises with the mean and
variance of its own share of the batch, and the running statistics of rank 0
are broadcast to every rank at each training forward (PyTorch's default,
``broadcast_buffers=True``). A 2-rank run with BatchNorm therefore differs from
a 1-rank run with the whole batch; models without BatchNorm match it to
rounding, and so do models whose BatchNorm layers are made
:class:`~nnlite.distributed.SyncBatchNorm`
(``SyncBatchNorm.convert_sync_batchnorm(model)``), which all-reduces the
statistics.
"""
import contextlib
import time

import numpy as np

from .. import autograd
from .._kernels.checks import real_number
from ..nn.module import Module
from ..tensor import Tensor
from . import process_group as pg

__all__ = ["DistributedDataParallel"]


class DistributedDataParallel(Module):
    """Wrap ``module`` so that ``backward()`` leaves every rank with the average gradient.

    PyTorch's name and behaviour: at construction rank 0's parameters and
    buffers are broadcast, so all ranks start equal; ``forward`` is the
    module's; ``backward()`` averages the gradients over the ranks before it
    returns. ``state_dict`` keys carry the prefix ``module.``, as in PyTorch;
    save ``ddp.module`` for a file a single process loads directly.

    ``bucket_cap_mb`` caps the bytes of one all-reduce message (PyTorch's
    default, 25 MB, puts a small model's whole gradient in one message; None
    means that default, as in PyTorch).
    Inside ``with ddp.no_sync():`` backward passes only accumulate locally;
    the first backward after the block averages everything accumulated.

    A parameter that receives no gradient on a rank (unused in its forward)
    gets a zero gradient there, so that every rank sends the same buckets.
    ``last_buckets`` lists the messages of the last averaging (dtype, offset,
    elements) and ``communication_seconds`` sums the time spent in them.

    >>> import nnlite as nl
    >>> from nnlite.distributed import DistributedDataParallel
    >>> model = DistributedDataParallel(nl.nn.Linear(3, 2))   # a world of one: a plain wrapper
    >>> model(nl.randn(4, 3)).sum().backward()
    >>> model.module.weight.grad.shape
    (2, 3)
    """

    def __init__(self, module, bucket_cap_mb=25, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        bucket_cap_mb = 25 if bucket_cap_mb is None else real_number("DistributedDataParallel", "bucket_cap_mb",
                                                                      bucket_cap_mb)
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {bucket_cap_mb}")
        self.module = module
        self.bucket_cap_mb = bucket_cap_mb
        self.broadcast_buffers = broadcast_buffers
        self.world_size = pg.get_world_size()
        self.require_backward_grad_sync = True
        self._queued = False
        self.last_buckets = []   # (dtype, element offset, element count) of each reduced message
        self.communication_seconds = 0.0   # wall time spent averaging gradients, summed over steps
        self._plan, self._planned_for = [], []
        for p in self._trainable():
            p.register_hook(self._grad_ready)
        self._sync_state()

    def _trainable(self):
        seen, out = set(), []
        for p in self.module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def _sync_state(self):
        """Rank 0's parameters and buffers on every rank (in place, so an optimizer's arena stays valid)."""
        for p in self.module.parameters():
            pg.broadcast(p.data)
        for b in self.module.buffers():
            pg.broadcast(b.data)

    def forward(self, *args, **kwargs):
        self._queued = False   # a backward that raised may have left it set
        if self.broadcast_buffers and self.training and self.world_size > 1:
            for b in self.module.buffers():
                pg.broadcast(b.data)
        return self.module(*args, **kwargs)

    # ---------------------------------------------------------- the reduction --
    def _grad_ready(self, grad):
        # Called by backward for each trainable parameter it reaches; the first one of
        # a backward pass queues the averaging, which runs once every gradient is in.
        if not self._queued and self.require_backward_grad_sync:
            self._queued = True
            autograd.queue_callback(self._average_gradients)
        return None

    @contextlib.contextmanager
    def no_sync(self):
        """Context manager: backward passes inside it accumulate gradients without averaging."""
        before, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    def _average_gradients(self):
        self._queued = False
        if self.world_size == 1:   # alone: the local gradient is already the average
            return
        params = self._trainable()
        for p in params:
            if p.grad is None:   # unused on this rank: a zero gradient keeps the buckets equal
                slot = getattr(p, "_grad_slot", None)
                if slot is not None:
                    slot.fill(0)
                    p.grad = Tensor._make(slot, None)
                else:
                    p.grad = Tensor._make(np.zeros_like(p.data), None)
        start = time.perf_counter()
        # The buckets stay the same from step to step (the gradients live in the same arena
        # slots), so they are planned again only when some gradient array changed.
        grads = [p.grad.data for p in params]
        if len(grads) != len(self._planned_for) or any(a is not b for a, b in zip(grads, self._planned_for)):
            self._plan = gradient_buckets(params, self.bucket_cap_mb * 2**20)
            self._planned_for = grads
            self.last_buckets = [(dtype, offset, count) for dtype, _, offset, count in self._plan]
        for _, flat, offset, count in self._plan:
            pg._reduce_(flat[offset:offset + count], pg.ReduceOp.AVG)
        self.communication_seconds += time.perf_counter() - start


def gradient_buckets(params, cap_bytes):
    """The messages that average ``params``' gradients: ``(dtype, flat, offset, count)`` each.

    ``flat[offset:offset + count]`` is one bucket. Gradients that live in an
    optimizer arena are grouped by arena buffer: every slot of one buffer is a
    view of the same aligned block of memory, so ``flat`` is that buffer, and
    consecutive trainable slots (with the zero padding between them) form one
    run, cut into buckets of at most ``cap_bytes``. A slot that is not trainable
    ends a run, so its bytes are never sent. A gradient outside any arena (no
    optimizer yet, or set by hand) is its own run.
    """
    by_owner, loose = {}, []
    for p in params:
        slot = getattr(p, "_grad_slot", None)
        owner = None if slot is None else slot.base
        if owner is not None and owner.dtype == np.uint8 and owner.ndim == 1 and p.grad is not None \
                and p.grad.data is slot:   # a slot of an arena buffer (arena.aligned_zeros)
            by_owner.setdefault(id(owner), (owner, []))[1].append(p)
        else:
            loose.append(p)
    buckets = []
    for owner, members in by_owner.values():
        dtype = members[0]._grad_slot.dtype
        # (address, bytes) of each trainable slot, in memory order; the arena puts every
        # slot on a 64-byte line, and the bytes up to the next line are zero padding.
        spans = sorted((p._grad_slot.ctypes.data, p._grad_slot.nbytes) for p in members)
        low, high = spans[0][0], max(a + n for a, n in spans)
        start_in_owner = low - owner.ctypes.data
        flat = owner[start_in_owner:start_in_owner + (high - low)].view(dtype)
        for start, stop in _runs(spans):
            buckets.extend(_cut(dtype, flat, (start - low) // dtype.itemsize, (stop - low) // dtype.itemsize,
                                cap_bytes))
    for p in loose:
        if not p.grad.data.flags.c_contiguous:
            p.grad = Tensor._make(np.ascontiguousarray(p.grad.data), None)
        flat = p.grad.data.reshape(-1)
        buckets.extend(_cut(flat.dtype, flat, 0, flat.size, cap_bytes))
    return buckets


def _runs(spans):
    """Merge ``(address, bytes)`` spans into maximal runs of trainable slots and their padding.

    A slot that starts on the first 64-byte line after the previous one ends
    continues the run; any other gap holds a slot that is not reduced.
    """
    runs = []
    for address, nbytes in spans:
        if runs and -(-runs[-1][1] // 64) * 64 == address:
            runs[-1][1] = address + nbytes
        else:
            runs.append([address, address + nbytes])
    return [tuple(r) for r in runs]


def _cut(dtype, flat, start, stop, cap_bytes):
    per_bucket = max(1, int(cap_bytes) // np.dtype(dtype).itemsize)
    return [(np.dtype(dtype), flat, offset, min(per_bucket, stop - offset))
            for offset in range(start, stop, per_bucket)]
