"""Subnormal numbers and how nnlite treats them: ``nl.set_flush_denormal``.

Floats below the smallest normal number (``numpy.finfo(numpy.float32).tiny``,
about 1.2e-38) are *subnormal*: they trade precision for a gradual approach
to zero. Many x86 cores compute with them in microcode, one to two orders of
magnitude slower than with normal numbers, so a matrix product whose operands
are a few percent subnormal can take ten times as long. Training produces them:
a softmax over logits with a large spread gives probabilities such as
exp(-90), and their gradients land in the output layer's products.

``set_flush_denormal(True)`` sets the CPU's flush-to-zero (FTZ: subnormal
results become 0) and denormals-are-zero (DAZ: subnormal operands are read as
0) modes on the calling thread and on every OpenMP thread of nnlite's kernels
(see ``nnlite/_kernels/_denormal.pyx``). Products then run at normal speed
whatever their operands hold. Results change only where such tiny values
mattered: a sum that held one differs in its last bits, and a gradient that
is subnormal as a whole becomes 0 (which an optimizer that rescales
gradients, such as Adam, would otherwise have turned into a real update).

**Default: off**, as in PyTorch. The modes belong to each thread, and the
calling thread is also where NumPy and the rest of the program compute, so
turning them on changes every float computation on it, not only nnlite's.
Set ``NNLITE_FLUSH_DENORMAL=1`` in the environment to have ``import nnlite``
turn flushing on.

**The twins stay equal.** The reference twins are NumPy code on the calling
thread, which carries the same bits as the kernels' threads, so a kernel and
its twin flush the same values. One more set of threads computes for NumPy:
OpenBLAS's own pool, which ``numpy.matmul`` uses for large products. Those
threads were started when NumPy loaded, before any mode was set, and a thread
copies its modes only when it starts; so ``set_flush_denormal`` also stops
that pool (OpenBLAS's ``blas_thread_shutdown_``, the call it makes itself
before a ``fork``), and OpenBLAS starts it again from the calling thread, with
the new modes, on its next threaded product. Call it while no other Python
thread is computing a product.
"""
import os

from . import _kernels

try:
    from ._kernels import _denormal as _impl
except ImportError:   # the compiled kernels are not built: nothing to set
    from ._kernels.reference import _denormal as _impl

__all__ = ["set_flush_denormal", "set_num_threads", "flush_denormal_enabled"]

_enabled = False


def set_flush_denormal(mode):
    """Turn flushing of subnormal floats to zero on or off; True when the CPU supports it.

    Like ``torch.set_flush_denormal``: on x86 it sets (or clears) the FTZ and
    DAZ bits on the calling thread and on every thread of nnlite's kernels and
    returns True; elsewhere it does nothing and returns False.

    >>> import numpy as np, nnlite as nl
    >>> x = np.array([1e-39], dtype=np.float32)      # subnormal in float32
    >>> nl.set_flush_denormal(True)
    True
    >>> float((x * np.float32(1.0))[0])               # read as zero
    0.0
    >>> nl.set_flush_denormal(False)
    True
    >>> float((x * np.float32(1.0))[0]) > 0
    True
    """
    global _enabled
    if not isinstance(mode, (bool, int)):
        raise TypeError(f"set_flush_denormal: expected a bool, got {type(mode).__name__}")
    supported = bool(_impl.set_flush_denormal(bool(mode)))
    if supported:
        _restart_numpy_blas_threads()
    _enabled = bool(mode) and supported
    return supported


def _restart_numpy_blas_threads():
    """Stop the worker threads of every OpenBLAS in the process; OpenBLAS restarts them on demand."""
    try:
        import ctypes

        from threadpoolctl import ThreadpoolController
        libraries = [lib.filepath for lib in ThreadpoolController().lib_controllers
                     if lib.internal_api == "openblas" and getattr(lib, "threading_layer", "") == "pthreads"]
    except Exception:   # no threadpoolctl, or a BLAS it cannot inspect: nothing to restart
        return
    for path in libraries:
        dll = ctypes.CDLL(path)
        for name in ("blas_thread_shutdown_", "scipy_blas_thread_shutdown_"):
            shutdown = getattr(dll, name, None)
            if shutdown is not None:
                shutdown()
                break


def flush_denormal_enabled():
    """True while nnlite has flushing of subnormal floats turned on."""
    return _enabled


def set_num_threads(n):
    """Use ``n`` threads in every kernel (``nnlite.set_num_threads``).

    With flushing on, the modes are set again on the new thread team, so a
    thread started for the larger count also flushes.
    """
    _kernels.set_num_threads(n)
    if _enabled:
        _impl.set_flush_denormal(True)


if os.environ.get("NNLITE_FLUSH_DENORMAL", "").strip().lower() in ("1", "true", "yes", "on"):
    set_flush_denormal(True)
