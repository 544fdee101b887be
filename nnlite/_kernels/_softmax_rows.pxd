# The row steps of softmax and of its gradient, once for float and double (inline: compiled into
# each module that cimports them). _softmax.pyx runs them over the rows of an array; _attention.pyx
# over the rows of one head's scores while they are still in cache. One copy of the steps, so the
# two give the same bits for the same row.
from cython cimport floating

from nnlite._kernels._fastmath cimport _exp


# Row max, sum and dot product: _lanes.h (vector lanes; sums in 16 double partial sums
# combined in a fixed order, so the result depends on the row length alone).
cdef extern from "_lanes.h":
    float nnl_max_f(const float* x, Py_ssize_t n) noexcept nogil
    double nnl_max_d(const double* x, Py_ssize_t n) noexcept nogil
    double nnl_sum_f(const float* x, Py_ssize_t n) noexcept nogil
    double nnl_sum_d(const double* x, Py_ssize_t n) noexcept nogil
    double nnl_dot_f(const float* a, const float* b, Py_ssize_t n) noexcept nogil
    double nnl_dot_d(const double* a, const double* b, Py_ssize_t n) noexcept nogil


cdef inline floating row_max(const floating *x, Py_ssize_t cols) noexcept nogil:
    # -inf for a row of -inf, and x - max is then nan, as in PyTorch. A NaN entry need
    # not be caught here: exp(NaN - m) makes the row's sum NaN anyway.
    if floating is float:
        return nnl_max_f(x, cols)
    else:
        return nnl_max_d(x, cols)


cdef inline double row_sum(const floating *v, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        return nnl_sum_f(v, cols)
    else:
        return nnl_sum_d(v, cols)


cdef inline double row_dot(const floating *a, const floating *b, Py_ssize_t cols) noexcept nogil:
    if floating is float:
        return nnl_dot_f(a, b, cols)
    else:
        return nnl_dot_d(a, b, cols)


cdef inline void softmax_row(const floating *x, floating *y, Py_ssize_t cols) noexcept nogil:
    # y = softmax(x) for one row; y may be x itself
    cdef Py_ssize_t j
    cdef floating m = row_max(x, cols)
    for j in range(cols):          # no sum in this loop, so it vectorises
        y[j] = _exp(x[j] - m)
    cdef floating inv = <floating>(1 / row_sum(y, cols))
    for j in range(cols):
        y[j] = y[j] * inv


cdef inline void scaled_softmax_row(const floating *x, floating scale, const floating *bias,
                                    floating *y, Py_ssize_t cols) noexcept nogil:
    # y = softmax(x * scale + bias) for one row, bias a row of cols values or NULL; y may be x.
    # The scaled scores go into y, and softmax's steps follow on y in place.
    cdef Py_ssize_t j
    if bias != NULL:
        for j in range(cols):
            y[j] = x[j] * scale + bias[j]
    else:
        for j in range(cols):
            y[j] = x[j] * scale
    softmax_row(y, y, cols)


cdef inline void softmax_backward_row(const floating *g, const floating *out, floating scale,
                                      floating *dx, Py_ssize_t cols) noexcept nogil:
    # y = softmax(x * scale): dL/dx_j = y_j (g_j - sum_k g_k y_k) scale; dx may be g
    cdef Py_ssize_t j
    cdef floating d = <floating>row_dot(g, out, cols)
    for j in range(cols):
        dx[j] = out[j] * (g[j] - d) * scale
