"""Training on many processes and machines: data parallelism over MPI (mpi4py).

* :mod:`~nnlite.distributed.process_group` — :func:`init`, the ranks, and the
  collective operations :func:`all_reduce`, :func:`broadcast`, :func:`barrier`.
* :mod:`~nnlite.distributed.data_parallel` — :class:`DistributedDataParallel`:
  replicated parameters, gradients averaged in buckets of the optimizer's arena.
* :mod:`~nnlite.distributed.sync_batchnorm` — :class:`SyncBatchNorm`: batch
  statistics over every rank's examples.
* :mod:`~nnlite.distributed.sampler` — :class:`DistributedSampler`: each rank's
  share of every epoch.
* :mod:`~nnlite.distributed.recipes` — :func:`distribute_recipe`: what
  ``nnlite train RECIPE --distributed`` changes in a recipe.

Start a job with ``mpiexec -n 2 python -m mpi4py train.py`` (``pip install
"nnlite[mpi]"``). Without MPI every function works on a world of one process.
"""
from .data_parallel import DistributedDataParallel, gradient_buckets
from .process_group import (ReduceOp, all_reduce, barrier, broadcast, broadcast_object, get_rank,
                            get_world_size, init, is_initialized, is_main)
from .recipes import distribute_recipe
from .sampler import DistributedSampler
from .sync_batchnorm import SyncBatchNorm, sync_batch_norm

__all__ = ["init", "is_initialized", "get_rank", "get_world_size", "is_main", "barrier", "all_reduce",
           "broadcast", "broadcast_object", "ReduceOp", "DistributedDataParallel", "DistributedSampler",
           "gradient_buckets", "distribute_recipe", "SyncBatchNorm", "sync_batch_norm"]
