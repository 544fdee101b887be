"""Normalisation kernels: batch, layer, group and RMS norm, forward and backward.

Statistics are accumulated in double, also for float32 input, and every sum
runs in an order fixed by the shape alone: a row or a fixed-size block of rows
is summed by one thread (in 16 interleaved accumulators, _lanes.h, so the adds
do not wait on each other), and block results are combined serially in block order.
So the results are bit-identical for any thread count. (One exception to "in double":
layer norm's float32 backward forms its short partial sums in float32, see _ln_backward
and nnl_row_dots_f; their totals are still double sums.)
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt

from nnlite._kernels._checks cimport flag as _flag, is_native_float, quantity as _quantity, separate
from nnlite._kernels._dtype cimport data, data_as
from nnlite._kernels._threads cimport threads_for

import numpy as np

from nnlite._kernels import checks as _checks_py
from nnlite._kernels.reference import _norm as _reference  # the twins share argument checks

cnp.import_array()

__all__ = ["batch_norm_forward", "batch_norm_backward", "layer_norm_forward",
           "layer_norm_backward", "group_norm_forward", "group_norm_backward",
           "rms_norm_forward", "rms_norm_backward"]

# The type of per-block partial sums: the input's own (layer norm) or double.
ctypedef fused partial_t:
    float
    double

# Elements per statistics block in batch norm, and rows per block in the
# weight/bias gradient reductions: fixed, so sums never depend on threads.
cdef enum:
    STAT_BLOCK = 4096
    ROW_BLOCK = 32


# ------------------------------------------------------------- row sums -----

# The row sums live in _lanes.h: 16 interleaved double partial sums, combined in a
# fixed order, written as explicit vectors so they vectorise.
cdef extern from "_lanes.h":
    double nnl_sum_f(const float* x, Py_ssize_t n) noexcept nogil
    double nnl_sum_d(const double* x, Py_ssize_t n) noexcept nogil
    double nnl_sum_sq_dev_f(const float* x, Py_ssize_t n, double mean) noexcept nogil
    double nnl_sum_sq_dev_d(const double* x, Py_ssize_t n, double mean) noexcept nogil
    void nnl_shifted_sums_f(const float* x, Py_ssize_t n, double shift, double* s1,
                            double* s2) noexcept nogil
    void nnl_shifted_sums_d(const double* x, Py_ssize_t n, double shift, double* s1,
                            double* s2) noexcept nogil
    void nnl_sum_g_and_g_dev_f(const float* g, const float* x, Py_ssize_t n, double mean,
                               double* sum_g, double* sum_g_dev) noexcept nogil
    void nnl_sum_g_and_g_dev_d(const double* g, const double* x, Py_ssize_t n, double mean,
                               double* sum_g, double* sum_g_dev) noexcept nogil
    void nnl_row_dots_f(const float* g, const float* x, const float* w, Py_ssize_t n, double mean,
                        double rstd, double* sum_gw_xhat, double* sum_gw) noexcept nogil
    void nnl_row_dots_d(const double* g, const double* x, const double* w, Py_ssize_t n,
                        double mean, double rstd, double* sum_gw_xhat, double* sum_gw) noexcept nogil


# The per-element steps of layer and batch norm live in _norm_steps.h, where `restrict`
# tells the compiler that the rows do not overlap, so the loops vectorise.
cdef extern from "_norm_steps.h":
    void nnl_prefetch(const void* p, Py_ssize_t n) noexcept nogil
    void nnl_ln_forward_row_f(const float* x, float* y, Py_ssize_t n, double mean, float rstd,
                              const float* w, const float* b) noexcept nogil
    void nnl_ln_forward_row_d(const double* x, double* y, Py_ssize_t n, double mean, double rstd,
                              const double* w, const double* b) noexcept nogil
    float nnl_low_part_f(double mean, float hi) noexcept nogil
    double nnl_low_part_d(double mean, double hi) noexcept nogil
    void nnl_bn_forward_row_f(const float* x, float* y, Py_ssize_t n, float hi, float lo, float scale,
                              float shift, int relu) noexcept nogil
    void nnl_bn_forward_row_d(const double* x, double* y, Py_ssize_t n, double hi, double lo,
                              double scale, double shift, int relu) noexcept nogil
    void nnl_bn_relu_mask_row_f(const float* g, const float* x, float* out, Py_ssize_t n, float hi,
                                float lo, float scale, float shift) noexcept nogil
    void nnl_bn_relu_mask_row_d(const double* g, const double* x, double* out, Py_ssize_t n,
                                double hi, double lo, double scale, double shift) noexcept nogil
    void nnl_bn_backward_row_f(const float* g, const float* x, float* out, Py_ssize_t n,
                               double mean, float k, float grad_mean, float scale) noexcept nogil
    void nnl_bn_backward_row_d(const double* g, const double* x, double* out, Py_ssize_t n,
                               double mean, double k, double grad_mean,
                               double scale) noexcept nogil
    void nnl_ln_backward_row_f(const float* g, const float* x, const float* w, float* out,
                               float* pw, float* pb, Py_ssize_t n, float mean, float rstd,
                               float c1, float c2) noexcept nogil
    void nnl_ln_backward_row_d(const double* g, const double* x, const double* w, double* out,
                               double* pw, double* pb, Py_ssize_t n, double mean, double rstd,
                               double c1, double c2) noexcept nogil


cdef inline double _sum(floating* x, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return nnl_sum_f(x, n)
    else:
        return nnl_sum_d(x, n)


cdef inline double _sum_sq_dev(floating* x, Py_ssize_t n, double mean) noexcept nogil:
    """sum((x - mean)^2) over n elements."""
    if floating is float:
        return nnl_sum_sq_dev_f(x, n, mean)
    else:
        return nnl_sum_sq_dev_d(x, n, mean)


cdef inline void _sum_g_and_g_dev(floating* g, floating* x, Py_ssize_t n, double mean,
                                  double* sum_g, double* sum_g_dev) noexcept nogil:
    """sum(g) and sum(g * (x - mean)) over n elements."""
    if floating is float:
        nnl_sum_g_and_g_dev_f(g, x, n, mean, sum_g, sum_g_dev)
    else:
        nnl_sum_g_and_g_dev_d(g, x, n, mean, sum_g, sum_g_dev)


# ------------------------------------------------------------- validation -----

cdef int _dtype(str kernel, list named) except -1:
    """The shared NumPy type number of the non-None arrays in ``named``.

    Only the affine parameters and the running statistics may be None
    (checks.NORM_OPTIONAL); a missing input, gradient or saved statistic is refused
    by name (its pointer would be read).
    """
    cdef int first = -1, t
    for name, a in named:
        if a is None:
            _checks_py.norm_required(kernel, ((name, a),))
            continue
        t = cnp.PyArray_TYPE(<cnp.ndarray>a) if is_native_float(a) else -1
        if t == -1 or (first != -1 and t != first):
            _checks_py.float_dtype(kernel, named)   # raises the shared error
            raise TypeError(f"{kernel}: expected float32 or float64 arrays of one dtype")
        first = t
    return first


cdef int _shape(str kernel, str name, object a, tuple shape) except -1:
    if a is not None and a.shape != shape:
        raise ValueError(f"{kernel}: {name} must have shape {shape}, got {a.shape}")
    return 0


cdef int _ndim(str kernel, str name, object a, int ndim, str layout) except -1:
    if a.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D {layout}, got shape {a.shape}")
    return 0


cdef inline double _eps(str kernel, object eps) except? -1:
    """eps as a double: a real number >= 0, not a bool, not NaN (checks.quantity)."""
    return _quantity(kernel, eps, "eps")


cdef int _in_place(str kernel, str name, cnp.ndarray a) except -1:
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a)):
        raise ValueError(f"{kernel}: {name} is updated in place, so it must be C-contiguous "
                         f"and writable (got contiguous={a.flags.c_contiguous}, "
                         f"writable={a.flags.writeable})")
    return 0


cdef inline object _contig(object a):
    return None if a is None else np.ascontiguousarray(a)


cdef inline double* _ddata(object a):
    """The data of a float64 scratch or statistics array."""
    return <double*>data(a)


cdef Py_ssize_t _batch_norm_checks(str kernel, object x, object weight, bint training,
                                   list extra) except -1:
    _ndim(kernel, "x", x, 3, "(N, C, L)")
    channels = x.shape[1]
    for name, a in [("weight", weight)] + extra:
        _shape(kernel, name, a, (channels,))
    count = x.shape[0] * x.shape[2]
    if training and count < 2:
        raise ValueError(f"{kernel}: training needs more than 1 value per channel, "
                         f"got x of shape {x.shape}")
    return count


# ------------------------------------------------------------- the kernels -----
#
# Two kinds of normalisation, one file each, compiled into this module:
# batch norm takes its statistics per channel over the whole batch (a reduction
# across samples, in fixed blocks); layer, group and RMS norm take them per row of
# one sample (a reduction within a row, one thread per row).

include "_norm_batch.pxi"
include "_norm_rows.pxi"
