# cython: language_level=3
"""Flush-to-zero and denormals-are-zero on every thread that runs nnlite's kernels.

A *subnormal* (denormal) float is one below the smallest normal number
(about 1.2e-38 in float32), stored with leading zeros in its significand so
that values fade gradually to zero instead of jumping there. Many x86 cores
(Intel's in particular) handle them in microcode: a multiply that reads or
produces one takes ~100 cycles instead of a few, so a matrix product whose
operands are a tenth subnormal can run 10-30x slower (on the AMD EPYC this
was written on, it did not slow down at all). Training makes such values easily: the gradient of a softmax
over large logits, for instance, holds probabilities like exp(-90).

Two bits of the SSE control register MXCSR switch the slow path off:

* FTZ (flush to zero, bit 15): a result that would be subnormal is written as 0;
* DAZ (denormals are zero, bit 6): a subnormal operand is read as 0.

MXCSR belongs to a *thread*, not to the process. nnlite's kernels run on the
calling thread and on OpenMP's worker threads, so :func:`set_flush_denormal`
sets the bits on the calling thread and then enters one ``parallel`` region
with the current thread count, where every worker sets them on itself.
OpenMP keeps its workers alive between regions, so the bits stay; a thread
created later (``set_num_threads`` with a larger count) is a clone of the
thread that creates it, whose bits it copies, and ``nnlite.set_flush_denormal``
is applied again after every ``nnlite.set_num_threads`` all the same.

On CPUs without MXCSR (not x86) the functions do nothing and report False,
as ``torch.set_flush_denormal`` does.

This module stays outside the kernel table (``table.py``) on purpose, and its
``__all__`` is empty. A table row makes ``K.<name>`` switch
with ``set_backend``, which is right for a computation and wrong here: the
bits set on the threads stay set whichever backend then runs, and the NumPy
twins compute on the same calling thread, so they flush too. It is reached
through ``nnlite/denormal.py`` only, with ``reference/_denormal.py`` as its
stand-in when the module is not built.
"""
from cython.parallel cimport parallel, threadid

from nnlite._kernels._threads cimport num_threads

__all__ = []

cdef extern from *:
    """
    #if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
    #include <xmmintrin.h>
    #define NNLITE_HAVE_MXCSR 1
    static unsigned int nnlite_get_mxcsr(void) { return _mm_getcsr(); }
    static void nnlite_set_mxcsr(unsigned int v) { _mm_setcsr(v); }
    #else
    #define NNLITE_HAVE_MXCSR 0
    static unsigned int nnlite_get_mxcsr(void) { return 0; }
    static void nnlite_set_mxcsr(unsigned int v) { (void)v; }
    #endif
    """
    int NNLITE_HAVE_MXCSR
    unsigned int nnlite_get_mxcsr() noexcept nogil
    void nnlite_set_mxcsr(unsigned int) noexcept nogil

cdef unsigned int FTZ = 0x8000
cdef unsigned int DAZ = 0x0040


cdef inline void _apply(bint mode) noexcept nogil:
    cdef unsigned int csr = nnlite_get_mxcsr()
    if mode:
        nnlite_set_mxcsr(csr | FTZ | DAZ)
    else:
        nnlite_set_mxcsr(csr & ~(FTZ | DAZ))


def supported():
    """True when this CPU has the FTZ/DAZ control bits (x86 with SSE)."""
    return bool(NNLITE_HAVE_MXCSR)


def set_flush_denormal(bint mode):
    """Set (``mode`` true) or clear FTZ and DAZ on this thread and every OpenMP worker; True if supported."""
    if not NNLITE_HAVE_MXCSR:
        return False
    cdef int n = num_threads()
    with nogil:
        _apply(mode)
        with parallel(num_threads=n):
            _apply(mode)
    return True


def thread_modes():
    """(FTZ, DAZ) of the calling thread and then of each OpenMP worker, as a list of pairs (for tests)."""
    cdef int n = num_threads()
    cdef int i
    cdef int t = 0      # each thread's own index in the region below; set so gcc sees no unset read
    cdef unsigned int csr[256]
    cdef int count = n if n < 256 else 256
    for i in range(count):
        csr[i] = 0xFFFFFFFF
    with nogil, parallel(num_threads=count):
        t = threadid()
        if t < count:
            csr[t] = nnlite_get_mxcsr()
    here = nnlite_get_mxcsr()
    out = [(bool(here & FTZ), bool(here & DAZ))]
    for i in range(count):
        if csr[i] != 0xFFFFFFFF:
            out.append((bool(csr[i] & FTZ), bool(csr[i] & DAZ)))
    return out
