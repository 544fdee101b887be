"""The one place the kernels' thread count lives.

Kernel modules ``cimport num_threads, threads_for`` from here, so
``nl.set_num_threads`` reaches all of them at once. Work smaller than
``SERIAL_BELOW`` elements runs on one thread: starting a parallel region costs
microseconds (tens of them when the other threads sleep, as they do under
OMP_WAIT_POLICY=PASSIVE), more than a small loop takes. The memory-bound loops of
relu and the other piecewise-linear activations, bias_grad and conv2d_backward_bias
(``threads_for_streaming``) stay on one thread below 8 times that threshold.
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


# A streaming loop does one or two cheap operations per element it reads (a ReLU or
# its mask, a running column sum): one core runs 32768 such float32 elements in ~7 us,
# while waking a sleeping thread (OMP_WAIT_POLICY=PASSIVE) took ~25 us on this
# project's 2-core AMD EPYC. Such a loop counts each element as 1/8 of a work unit,
# so it shares its elements among threads only from 8 times the serial threshold on
# (262144 elements at the default 32768), whatever OMP_WAIT_POLICY says: the rule
# does not read it. relu_forward, relu_backward, the piecewise-linear loops of
# _activations.pyx (leaky ReLU, hardtanh, hardsigmoid, hardswish, masked_slope_backward),
# bias_grad and conv2d_backward_bias use it; the other memory-bound loops, the copies
# among them, keep threads_for's rule.
cdef Py_ssize_t STREAMING_ELEMENTS_PER_WORK = 8


cdef int threads_for_streaming(Py_ssize_t elements) noexcept nogil:
    return threads_for(elements // STREAMING_ELEMENTS_PER_WORK)


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
