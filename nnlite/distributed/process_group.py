"""The group of processes that train together, and the collective operations between them.

Data-parallel training runs the same program in ``world_size`` processes
(*ranks*), started by MPI's launcher::

    mpiexec -n 4 python train.py                     # on one machine
    mpiexec -n 8 -f hostfile python train.py         # across machines (MPICH's hostfile)

Every rank holds a full copy of the parameters. Two collective operations keep
the copies equal:

* ``broadcast``: rank ``src`` sends its values, every other rank receives them
  (used once at the start, so all ranks begin from rank 0's initialisation);
* ``all_reduce``: every rank contributes an array and every rank receives the
  elementwise sum (used after each backward pass on the gradients).

The messages go through MPI, via mpi4py (``pip install "nnlite[mpi]"`` installs
mpi4py and the MPICH library). Without mpi4py, or in a program not started by
``mpiexec``, the world is one process: every operation is then the identity,
so the same script runs alone unchanged.

A failure on one rank must not leave the others waiting forever in a
collective: :func:`init` installs an exception hook that prints the traceback
and aborts the whole MPI job (``MPI_Abort``), so ``mpiexec`` exits non-zero
within seconds.
"""
import sys
import time
import traceback

import numpy as np

from ..tensor import Tensor

__all__ = ["init", "is_initialized", "get_rank", "get_world_size", "is_main", "barrier", "all_reduce",
           "broadcast", "ReduceOp"]


class ReduceOp:
    """How ``all_reduce`` combines the ranks' values (PyTorch's names)."""
    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"   # the sum divided by the number of ranks


class _World:
    """The processes of this job: MPI's ``COMM_WORLD``, or this process alone (``comm is None``)."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1


_world = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


def init(abort_on_error=True):
    """Join the job's processes (MPI's ``COMM_WORLD``); a world of one without MPI.

    Call once, before building the model. Safe to call again (returns at once).
    With ``abort_on_error`` an uncaught exception on any rank prints its
    traceback and aborts every rank, instead of leaving the others blocked in
    their next collective. Returns the world size.
    """
    global _world
    if _world is not None:
        return _world.size
    MPI = _mpi()
    comm = MPI.COMM_WORLD if MPI is not None else None
    _world = _World(comm if comm is not None and comm.Get_size() > 1 else None)
    if _world.comm is not None and abort_on_error:
        _install_abort_hook(_world.comm, _world.rank)
    return _world.size


def _install_abort_hook(comm, rank):
    def abort_all(kind, value, tb):
        # One write, then a moment for mpiexec to pass it on: Abort kills the job at once, and a
        # message written in pieces could reach the terminal cut off after its first line.
        message = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"nnlite.distributed: rank {rank} failed; aborting all ranks\n{message}")
        sys.stderr.flush()
        time.sleep(0.2)
        comm.Abort(1)   # ends every process of the job, this one included

    sys.excepthook = abort_all


def is_initialized():
    """Whether :func:`init` has run in this process."""
    return _world is not None


def _get_world():
    return _world if _world is not None else _World(None)


def get_rank():
    """This process's number in the job, 0 .. world_size - 1 (0 before :func:`init`)."""
    return _get_world().rank


def get_world_size():
    """The number of processes in the job (1 before :func:`init` and without MPI)."""
    return _get_world().size


def is_main():
    """True on rank 0: the rank that prints, writes checkpoints and metrics."""
    return get_rank() == 0


def barrier():
    """Wait until every rank has reached this call."""
    comm = _get_world().comm
    if comm is not None:
        comm.Barrier()


_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD", ReduceOp.MIN: "MIN",
            ReduceOp.MAX: "MAX"}


def _array(tensor, name):
    if isinstance(tensor, Tensor):
        return tensor.data
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(f"{name}: expected a Tensor (or NumPy array), got {type(tensor).__name__}")


def _reduce_(array, op):
    """Combine ``array`` over the ranks in place (an array of any layout)."""
    world = _get_world()
    if world.comm is not None:
        MPI = _mpi()
        work = array if array.flags.c_contiguous else np.ascontiguousarray(array)
        world.comm.Allreduce(MPI.IN_PLACE, work, op=getattr(MPI, _MPI_OPS[op]))
        if work is not array:
            array[...] = work
    if op == ReduceOp.AVG and world.size > 1:
        array *= array.dtype.type(1.0 / world.size)
    return array


def all_reduce(tensor, op=ReduceOp.SUM):
    """Replace ``tensor``'s values on every rank by their combination over all ranks (in place).

    ``op`` is one of :class:`ReduceOp`: ``SUM`` (default), ``AVG``, ``PRODUCT``,
    ``MIN``, ``MAX``. Returns ``tensor``.

    >>> import nnlite as nl
    >>> t = nl.tensor([1.0, 2.0])
    >>> nl.distributed.all_reduce(t).tolist()   # a world of one: the sum over one rank
    [1.0, 2.0]
    """
    if op not in _MPI_OPS:
        raise ValueError(f"all_reduce: op must be one of {sorted(_MPI_OPS)}, got {op!r}")
    array = _array(tensor, "all_reduce")
    if op == ReduceOp.AVG and array.dtype.kind != "f":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating point tensor, got {array.dtype}")
    _reduce_(array, op)
    if isinstance(tensor, Tensor):
        tensor._bump_version()
    return tensor


def broadcast(tensor, src=0):
    """Overwrite ``tensor`` on every rank with rank ``src``'s values (in place); returns it."""
    world = _get_world()
    if not 0 <= src < world.size:
        raise ValueError(f"broadcast: src must be a rank in [0, {world.size}), got {src}")
    array = _array(tensor, "broadcast")
    if world.comm is not None:
        work = array if array.flags.c_contiguous else np.ascontiguousarray(array)
        world.comm.Bcast(work, root=src)
        if work is not array:
            array[...] = work
        if isinstance(tensor, Tensor):
            tensor._bump_version()
    return tensor


def broadcast_object(obj, src=0):
    """Rank ``src``'s Python object (pickled by MPI) on every rank: for small metadata only."""
    comm = _get_world().comm
    return obj if comm is None else comm.bcast(obj, root=src)
