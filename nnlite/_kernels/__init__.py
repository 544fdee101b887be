"""The seam between nnlite's readable Python and its compiled loops.

Every kernel exists twice, with one signature:

* a compiled version in ``nnlite/_kernels/_<theme>.pyx`` (Cython, OpenMP), and
* a NumPy *reference twin* in ``nnlite/_kernels/reference/_<theme>.py``.

The table in ``table.py`` lists every kernel with its module and twin. Ops never
import a kernel module directly; they call ``K.<name>(...)``, where ``K`` is the
namespace below, filled from that table. :func:`set_backend` swaps what ``K``
holds, so the same model runs on either implementation
(``NNLITE_BACKEND=reference`` at start). Looking a name up on ``K`` is one
instance-dict lookup: the seam costs nothing.

If a compiled module is missing (an install without a compiler), nnlite warns
once and runs the affected kernels on their twins.

Besides ``table.py`` and ``allocator.py``, three modules here hold no kernel:
``checks.py`` (the argument checks both versions share), ``special.py``
(erf and the normal CDF and its inverse, in NumPy, for the twins and for the
ops and initialisers above them) and ``blocking.py`` (the matrix products'
cache blocks, from this machine's cache sizes).

Importing this package changes three things for the whole process, each with a
switch: OMP_WAIT_POLICY (below), malloc's thresholds (allocator.py) and serial
kernels in a forked child (_serial_after_fork). The docs list them together
under "Performance settings" (docs/api/kernels.rst).
"""
import importlib
import os
import warnings

from . import allocator
from .checks import is_int
from .table import KERNELS, MODULES

__all__ = ["K", "set_backend", "get_backend", "set_num_threads", "get_num_threads",
           "compiled_kernels", "openmp_enabled", "machine"]


class _KernelNamespace:
    """Holds the active kernel functions as attributes (``K.gemm``, ``K.relu_forward``...)."""

    def __repr__(self):
        return f"<nnlite kernels: backend={_backend!r}, {len(self.__dict__)} kernels>"


# Idle OpenMP threads sleep instead of spinning. Spinning saves a few microseconds
# per parallel region on an idle machine, but on a busy one (a shared server, a
# laptop running a browser) spinning threads steal the cores the work needs and
# steps become 10-100x slower. Must be set before the first kernel module loads
# libgomp; an explicit OMP_WAIT_POLICY from the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Freed activations and scratch are reused, not returned to the OS and faulted in again
# every step (see allocator.py; NNLITE_KEEP_FREED_MEMORY=0 keeps malloc's defaults).
allocator.keep_freed_memory()

K = _KernelNamespace()
_backend = None
_compiled = {}          # kernel name -> compiled function
_threads = None         # the compiled _threads module, when built


def _load_compiled():
    """Import the compiled module of every row of the kernel table that is built."""
    global _threads
    try:
        from . import _threads as threads_module
    except ImportError:   # an install without a C compiler: everything runs on the twins
        return
    _threads = threads_module
    for stem in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{stem}")
        except ImportError:
            continue
        listed = {name for name, where, _ in KERNELS if where == stem}
        unlisted = sorted(set(getattr(module, "__all__", ())) - listed)
        if unlisted:  # a compiled kernel outside the table breaks the design: refuse loudly
            raise ImportError(f"nnlite: {stem} defines kernels missing from table.py: {unlisted}")
        for name in listed:
            _compiled[name] = getattr(module, name)


_load_compiled()
_missing = sorted(name for name, _, _ in KERNELS if name not in _compiled)


def compiled_kernels():
    """Names of the kernels that have a compiled implementation in this install."""
    return sorted(_compiled)


def openmp_enabled():
    """True when the kernels were built with OpenMP."""
    return bool(_threads is not None and _threads.openmp_enabled())


def machine():
    """What the compiled kernels were built and tuned for on this machine: ``vector_bits``
    (256, or 512 under AVX-512; ``_vector.h``), ``vector_emulated`` (512-bit vectors run as
    256-bit halves: the NNLITE_VECTOR_BITS=512 test build), and the matrix products' cache
    blocks (``kc``, ``mc``, ``block``, ``k_block``, ``min_split_work``), the ``l1d`` and ``l2``
    cache sizes they come from and the ``source`` of those sizes (``blocking.py``).
    ``vector_bits`` is None without the compiled convolution module."""
    from .blocking import gemm_blocking
    info = {"vector_bits": None, "vector_emulated": False}
    try:
        from ._conv import vector_width
    except ImportError:
        pass
    else:
        info["vector_bits"], info["vector_emulated"] = vector_width()
    info.update(gemm_blocking())
    return info


def set_backend(name):
    """Run every kernel on ``"cython"`` (compiled, default) or ``"reference"`` (NumPy twins)."""
    global _backend
    if name not in ("cython", "reference"):
        raise ValueError(f"set_backend: expected 'cython' or 'reference', got {name!r}")
    funcs = {kernel: getattr(twins, kernel) for kernel, _, twins in KERNELS}
    if name == "cython":
        funcs.update(_compiled)
    # One store replaces the whole table: a kernel call in another thread sees either
    # the old table or the new one, never a half-filled namespace.
    K.__dict__ = funcs
    _backend = name


def get_backend():
    """The active backend: ``"cython"`` or ``"reference"``."""
    return _backend


# --- threads -----------------------------------------------------------------

# The most threads a kernel runs on. OpenMP's runtime lays out a new team on the stack of the
# thread that starts it: a parallel kernel asked for 100000 threads overflowed that stack and
# crashed the process. 1024 is far more threads than any CPU nnlite runs on has cores.
MAX_THREADS = 1024

_num_threads_py = 1


def _default_threads():
    """Physical cores available to this process, or ``OMP_NUM_THREADS`` when set (and in
    1 to MAX_THREADS; another value is passed over, as one that is not a number is)."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and 0 < int(env) <= MAX_THREADS:
        return int(env)
    try:
        logical = len(os.sched_getaffinity(0))
    except AttributeError:
        logical = os.cpu_count() or 1
    physical = None
    try:  # Linux: count distinct (physical id, core id) pairs
        cores, phys = set(), "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    cores.add((phys, line.split(":")[1].strip()))
        physical = len(cores) or None
    except OSError:
        pass
    return max(1, min(logical, physical or logical))


def set_num_threads(n):
    """Use ``n`` threads in every kernel: an int from 1 to ``MAX_THREADS`` (1024).

    BLAS needs no setting of its own: the kernels call it one thread at a time
    on fixed blocks (see ``_blas.pyx``), so results never depend on ``n``.
    """
    global _num_threads_py
    if not is_int(n) or n < 1:   # a Python or NumPy int, as torch.set_num_threads takes
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    n = int(n)
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads: expected a positive int of at most {MAX_THREADS}, got {n}")
    _num_threads_py = n
    if _threads is not None:
        _threads.set_num_threads(n)


def get_num_threads():
    """The number of threads kernels use."""
    return _num_threads_py


def _serial_after_fork():
    """In a child made by ``os.fork``, run the kernels on one thread.

    OpenMP's worker threads are not copied by ``fork``: a child that starts a
    parallel region the parent had used waits for threads that do not exist and
    hangs (PyTorch's children do). Serial kernels never wait for them. A child may
    call ``set_num_threads`` again; that is safe only when the parent had not yet
    run a parallel kernel, or with the ``spawn``/``forkserver`` start methods,
    whose children are fresh processes.
    """
    global _num_threads_py
    _num_threads_py = 1
    _threads.set_num_threads(1)


if _threads is None:
    warnings.warn("nnlite: compiled kernels are not built; running everything on the NumPy "
                  "reference twins (slow). Reinstall with a C compiler to build them.",
                  RuntimeWarning, stacklevel=2)
elif _missing:
    warnings.warn(f"nnlite: no compiled version of {', '.join(_missing)}; those run on NumPy twins.",
                  RuntimeWarning, stacklevel=2)

set_backend(os.environ.get("NNLITE_BACKEND", "cython"))
_num_threads_py = _default_threads()
if _threads is not None:
    _threads.set_num_threads(_num_threads_py)
    if hasattr(os, "register_at_fork"):   # POSIX
        os.register_at_fork(after_in_child=_serial_after_fork)
