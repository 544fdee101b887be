"""The one place the kernels' thread count lives.

Kernel modules ``cimport num_threads, threads_for`` from here, so
``nl.set_num_threads`` reaches all of them at once. Work smaller than
``SERIAL_BELOW`` elements runs on one thread: starting a parallel region costs
a few microseconds, more than a small loop takes.
"""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define NNLITE_HAVE_OPENMP 1
    #else
    #define NNLITE_HAVE_OPENMP 0
    #endif
    """
    int NNLITE_HAVE_OPENMP

cdef int _num_threads = 1
cdef Py_ssize_t _serial_below = 32768

SERIAL_BELOW = 32768


cdef int num_threads() noexcept nogil:
    return _num_threads


cdef int threads_for(Py_ssize_t work) noexcept nogil:
    if work < _serial_below:
        return 1
    return _num_threads


def set_num_threads(int n):
    global _num_threads
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    _num_threads = n


def get_num_threads():
    return _num_threads


def set_serial_threshold(Py_ssize_t n):
    """Work below ``n`` elements runs serially (tests lower it to exercise the parallel paths)."""
    global _serial_below
    if n < 0:
        raise ValueError(f"set_serial_threshold: expected n >= 0, got {n}")
    _serial_below = n


def get_serial_threshold():
    return _serial_below


def openmp_enabled():
    return bool(NNLITE_HAVE_OPENMP)
