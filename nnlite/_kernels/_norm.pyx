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
from cython.parallel cimport prange
from libc.math cimport sqrt

from nnlite._kernels._threads cimport threads_for

import numpy as np

from nnlite._kernels import checks as _checks_py
from nnlite._kernels.reference import _norm as _reference  # the twins share argument checks

cnp.import_array()

__all__ = ["batch_norm_forward", "batch_norm_backward", "layer_norm_forward",
           "layer_norm_backward", "group_norm_forward", "group_norm_backward",
           "rms_norm_forward", "rms_norm_backward"]

ctypedef fused floating:
    float
    double

# The type of per-block partial sums: the input's own (layer norm) or double.
ctypedef fused partial_t:
    float
    double

# Elements per statistics block in batch norm, and rows per block in the
# weight/bias gradient reductions: fixed, so sums never depend on threads.
DEF STAT_BLOCK = 4096
DEF ROW_BLOCK = 32


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
    void nnl_bn_forward_row_f(const float* x, float* y, Py_ssize_t n, double mean, float scale,
                              float shift) noexcept nogil
    void nnl_bn_forward_row_d(const double* x, double* y, Py_ssize_t n, double mean, double scale,
                              double shift) noexcept nogil
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
    """The shared NumPy type number of the non-None arrays in ``named``."""
    cdef int first = -1, t
    first_name = None
    for name, a in named:
        if a is None:
            continue
        if not isinstance(a, cnp.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(a).__name__}")
        t = cnp.PyArray_TYPE(<cnp.ndarray>a)
        if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
            raise TypeError(f"{kernel}: {name} must be float32 or float64, got {a.dtype}")
        if cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>a):
            _checks_py.native(kernel, name, a)
        if first == -1:
            first, first_name, first_dtype = t, name, a.dtype
        elif t != first:
            raise TypeError(f"{kernel}: all float operands must share one dtype; "
                            f"{first_name} is {first_dtype} but {name} is {a.dtype}")
    return first


cdef int _shape(str kernel, str name, object a, tuple shape) except -1:
    if a is not None and a.shape != shape:
        raise ValueError(f"{kernel}: {name} must have shape {shape}, got {a.shape}")
    return 0


cdef int _ndim(str kernel, str name, object a, int ndim, str layout) except -1:
    if a.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D {layout}, got shape {a.shape}")
    return 0


cdef double _eps(str kernel, object eps) except? -1:
    if (not isinstance(eps, (int, float, np.integer, np.floating)) or isinstance(eps, bool)
            or not eps >= 0):
        raise ValueError(f"{kernel}: eps must be a float >= 0, got {eps!r}")
    return eps


cdef int _in_place(str kernel, str name, cnp.ndarray a) except -1:
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a)):
        raise ValueError(f"{kernel}: {name} is updated in place, so it must be C-contiguous "
                         f"and writable (got contiguous={a.flags.c_contiguous}, "
                         f"writable={a.flags.writeable})")
    return 0


cdef inline object _contig(object a):
    return None if a is None else np.ascontiguousarray(a)


cdef inline void* _data(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline double* _ddata(cnp.ndarray a):
    return <double*>cnp.PyArray_DATA(a)


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


# ------------------------------------------------------------- batch norm -----

cdef void _bn_stats(floating* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, double eps,
                    double* mean, double* invstd, double* var_out, double* partial) noexcept nogil:
    """Per-channel mean, 1/sqrt(biased var + eps) and biased var, in fixed blocks of samples.

    Each block (a few samples of one channel, small enough to stay in cache) gets its
    own mean and sum of squared deviations, two-pass; the blocks are then merged in
    order with Chan et al.'s pairwise update, so x is read from memory once.
    """
    cdef Py_ssize_t rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef Py_ssize_t nblocks = (N + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t item, c, blk, n, n_begin, n_end
    cdef double s, block_mean, n_acc, n_blk, total, delta, mean_acc, m2
    for item in prange(C * nblocks, num_threads=threads_for(N * C * L), schedule="static"):
        c = item // nblocks
        blk = item % nblocks
        n_begin = blk * rows_per_block
        n_end = min(N, n_begin + rows_per_block)
        s = 0
        for n in range(n_begin, n_end):
            s = s + _sum(x + (n * C + c) * L, L)
        block_mean = s / ((n_end - n_begin) * L)
        s = 0
        for n in range(n_begin, n_end):
            s = s + _sum_sq_dev(x + (n * C + c) * L, L, block_mean)
        partial[2 * item] = block_mean
        partial[2 * item + 1] = s
    for c in range(C):
        n_acc = 0
        mean_acc = 0
        m2 = 0
        for blk in range(nblocks):
            n_blk = <double>((min(N, (blk + 1) * rows_per_block) - blk * rows_per_block) * L)
            total = n_acc + n_blk
            delta = partial[2 * (c * nblocks + blk)] - mean_acc
            mean_acc = mean_acc + delta * (n_blk / total)
            m2 = m2 + partial[2 * (c * nblocks + blk) + 1] + delta * delta * (n_acc * n_blk / total)
            n_acc = total
        mean[c] = mean_acc
        var_out[c] = m2 / n_acc
        invstd[c] = 1.0 / sqrt(var_out[c] + eps)


cdef void _scale_shift(floating* x, floating* y, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                       double* mean, double* scale, double* shift) noexcept nogil:
    """y = (x - mean[c]) * scale[c] + shift[c] over (N, C, L), in the input's type
    (_norm_steps.h: x - mean keeps its precision without converting every element)."""
    cdef Py_ssize_t row, c
    for row in prange(N * C, num_threads=threads_for(N * C * L), schedule="static"):
        c = row % C
        if floating is float:
            nnl_bn_forward_row_f(x + row * L, y + row * L, L, mean[c], <float>scale[c],
                                 <float>shift[c])
        else:
            nnl_bn_forward_row_d(x + row * L, y + row * L, L, mean[c], scale[c], shift[c])


cdef void _bn_channel_terms(floating* w, floating* b, floating* running_mean,
                            floating* running_var, bint training, double momentum, double count,
                            double eps, double* mean, double* invstd, double* var,
                            double* scale, double* shift, floating* save_mean,
                            floating* save_invstd, Py_ssize_t C) noexcept nogil:
    """Per channel: running-stat update (PyTorch's order, in double), the affine map
    ``y = (x - mean) * scale + shift``, and the saved statistics in the input's dtype."""
    cdef Py_ssize_t c
    cdef double unbiased, sc
    for c in range(C):
        if training:
            if running_mean != NULL:
                unbiased = var[c] * count / (count - 1)
                running_mean[c] = <floating>(momentum * mean[c] + (1.0 - momentum) * running_mean[c])
                running_var[c] = <floating>(momentum * unbiased + (1.0 - momentum) * running_var[c])
        else:
            mean[c] = running_mean[c]
            invstd[c] = 1.0 / sqrt(running_var[c] + eps)
        sc = invstd[c] if w == NULL else invstd[c] * w[c]
        scale[c] = sc
        shift[c] = 0 if b == NULL else b[c]
        save_mean[c] = <floating>mean[c]
        save_invstd[c] = <floating>invstd[c]


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Normalise each channel of ``x`` (N, C, L) over N and L; returns (y, save_mean, save_invstd).

    Training: batch mean and ``1/sqrt(biased var + eps)``, and the running stats
    (when given) move towards them in place, with the *unbiased* variance.
    Eval: the running stats normalise instead.
    """
    kernel = "batch_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight), ("bias", bias),
                                 ("running_mean", running_mean), ("running_var", running_var)])
    cdef Py_ssize_t count = _batch_norm_checks(kernel, x, weight, training, [
        ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)])
    cdef double eps_ = _eps(kernel, eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{kernel}: give both running_mean and running_var, or neither")
    if running_mean is not None:
        _in_place(kernel, "running_mean", running_mean)
        _in_place(kernel, "running_var", running_var)
        # the running stats are written while x, weight and bias are read
        _checks_py.separate(kernel, [("running_mean", running_mean), ("running_var", running_var),
                                     ("x", x), ("weight", weight), ("bias", bias)],
                            written={"running_mean", "running_var"})
    if not training and running_mean is None:
        raise ValueError(f"{kernel}: eval mode (training=False) needs running_mean and running_var")
    dtype = x.dtype
    cdef bint train = training
    cdef double m = float(momentum) if train else 0.0
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight, bias = _contig(weight), _contig(bias)
    cdef Py_ssize_t N = xc.shape[0], C = xc.shape[1], L = xc.shape[2]
    cdef Py_ssize_t rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef Py_ssize_t nblocks = (N + rows_per_block - 1) // rows_per_block if train else 0
    # one scratch buffer: mean, invstd, var, scale, shift, then the block partial sums
    cdef cnp.ndarray scratch = np.empty(5 * C + 2 * C * nblocks)
    cdef double* d = _ddata(scratch)
    cdef cnp.ndarray y = np.empty((N, C, L), dtype=dtype)
    cdef cnp.ndarray save_mean = np.empty(C, dtype=dtype), save_invstd = np.empty(C, dtype=dtype)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* yp = cnp.PyArray_DATA(y)
    cdef void* wp = _data(weight)
    cdef void* bp = _data(bias)
    cdef void* rmp = _data(running_mean)
    cdef void* rvp = _data(running_var)
    cdef void* smp = cnp.PyArray_DATA(save_mean)
    cdef void* sip = cnp.PyArray_DATA(save_invstd)
    if t == cnp.NPY_FLOAT:
        with nogil:
            if train:
                _bn_stats(<float*>xp, N, C, L, eps_, d, d + C, d + 2 * C, d + 5 * C)
            _bn_channel_terms(<float*>wp, <float*>bp, <float*>rmp, <float*>rvp, train, m,
                              <double>count, eps_, d, d + C, d + 2 * C, d + 3 * C, d + 4 * C,
                              <float*>smp, <float*>sip, C)
            _scale_shift(<float*>xp, <float*>yp, N, C, L, d, d + 3 * C, d + 4 * C)
    else:
        with nogil:
            if train:
                _bn_stats(<double*>xp, N, C, L, eps_, d, d + C, d + 2 * C, d + 5 * C)
            _bn_channel_terms(<double*>wp, <double*>bp, <double*>rmp, <double*>rvp, train, m,
                              <double>count, eps_, d, d + C, d + 2 * C, d + 3 * C, d + 4 * C,
                              <double*>smp, <double*>sip, C)
            _scale_shift(<double*>xp, <double*>yp, N, C, L, d, d + 3 * C, d + 4 * C)
    return y, save_mean, save_invstd


cdef void _bn_backward(floating* g, floating* x, floating* gx, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t L, double* mean, double* invstd, double* w, bint training,
                       double* sum_g, double* dotp, double* partial) noexcept nogil:
    cdef Py_ssize_t rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef Py_ssize_t nblocks = (N + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t item, c, blk, n, n_end, row, l
    cdef double a, b, sg, sd, k, grad_mean, scale
    cdef double count = <double>(N * L)
    cdef int nt = threads_for(N * C * L)
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    for item in prange(C * nblocks, num_threads=nt, schedule="static"):
        c = item // nblocks
        blk = item % nblocks
        a = 0
        b = 0
        n_end = min(N, (blk + 1) * rows_per_block)
        # assigned here so that prange makes them thread-private (they are written by pointer)
        sg = 0
        sd = 0
        for n in range(blk * rows_per_block, n_end):
            _sum_g_and_g_dev(g + (n * C + c) * L, x + (n * C + c) * L, L, mean[c], &sg, &sd)
            a = a + sg
            b = b + sd
        partial[2 * item] = a
        partial[2 * item + 1] = b
    for c in range(C):
        a = 0
        b = 0
        for blk in range(nblocks):
            a = a + partial[2 * (c * nblocks + blk)]
            b = b + partial[2 * (c * nblocks + blk) + 1]
        sum_g[c] = a
        dotp[c] = b
    for row in prange(N * C, num_threads=nt, schedule="static"):
        c = row % C
        gr = g + row * L
        xr = x + row * L
        outr = gx + row * L
        scale = invstd[c] * w[c]
        if training:
            k = dotp[c] * invstd[c] * invstd[c] / count
            grad_mean = sum_g[c] / count
            if floating is float:
                nnl_bn_backward_row_f(gr, xr, outr, L, mean[c], <float>k, <float>grad_mean,
                                      <float>scale)
            else:
                nnl_bn_backward_row_d(gr, xr, outr, L, mean[c], k, grad_mean, scale)
        else:
            for l in range(L):
                outr[l] = gr[l] * <floating>scale


def batch_norm_backward(grad, x, weight, save_mean, save_invstd, training):
    """Gradients of batch_norm_forward: (grad_x, grad_weight, grad_bias).

    With ``xhat = (x - mean) * invstd`` and ``g = grad * weight``, training gives
    ``grad_x = invstd * (g - mean(g) - xhat * mean(g * xhat))`` (the batch
    statistics depend on x); eval gives ``grad_x = g * invstd``.
    """
    kernel = "batch_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight),
                                 ("save_mean", save_mean), ("save_invstd", save_invstd)])
    _batch_norm_checks(kernel, x, weight, training, [
        ("save_mean", save_mean), ("save_invstd", save_invstd)])
    if save_mean is None or save_invstd is None:
        raise ValueError(f"{kernel}: save_mean and save_invstd are required")
    _shape(kernel, "grad", grad, x.shape)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef Py_ssize_t N = xc.shape[0], C = xc.shape[1], L = xc.shape[2]
    cdef cnp.ndarray mean = save_mean.astype(np.float64), invstd = save_invstd.astype(np.float64)
    cdef cnp.ndarray w = np.ones(C) if weight is None else weight.astype(np.float64)
    cdef cnp.ndarray sum_g = np.empty(C), dotp = np.empty(C)
    rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef cnp.ndarray partial = np.empty(2 * C * ((N + rows_per_block - 1) // rows_per_block))
    cdef cnp.ndarray gx = np.empty((N, C, L), dtype=dtype)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* gp = cnp.PyArray_DATA(gc)
    cdef void* op = cnp.PyArray_DATA(gx)
    cdef bint train = training
    cdef double* dotp_p = _ddata(dotp)
    cdef double* invstd_p = _ddata(invstd)
    cdef double* mean_p = _ddata(mean)
    cdef double* partial_p = _ddata(partial)
    cdef double* sum_g_p = _ddata(sum_g)
    cdef double* w_p = _ddata(w)
    if t == cnp.NPY_FLOAT:
        with nogil:
            _bn_backward(<float*>gp, <float*>xp, <float*>op, N, C, L, mean_p, invstd_p,
                         w_p, train, sum_g_p, dotp_p, partial_p)
    else:
        with nogil:
            _bn_backward(<double*>gp, <double*>xp, <double*>op, N, C, L, mean_p,
                         invstd_p, w_p, train, sum_g_p, dotp_p,
                         partial_p)
    if weight is None:
        return gx, None, None
    return gx, (dotp * invstd).astype(dtype), sum_g.astype(dtype)


# ------------------------------------------------- per-row normalisations -----

cdef void _ln_forward(floating* x, floating* y, floating* mean_out, floating* rstd_out,
                      Py_ssize_t rows, Py_ssize_t D, floating* w, floating* b,
                      double eps) noexcept nogil:
    cdef Py_ssize_t r
    cdef double mean, rstd, var, s1, s2
    cdef floating* xr
    cdef floating* yr
    for r in prange(rows, num_threads=threads_for(rows * D), schedule="static"):
        xr = x + r * D
        yr = y + r * D
        # Fetch the next row while this one is summed and written from L1, so memory
        # is not idle during those passes.
        if r + 1 < rows:
            nnl_prefetch(xr + D, D * sizeof(floating))
        # one pass for both moments, about the row's first element (_lanes.h). s1 and s2
        # are assigned here so that each thread has its own (written only through a
        # pointer, prange would share them between threads).
        s1 = 0
        s2 = 0
        if floating is float:
            nnl_shifted_sums_f(xr, D, xr[0], &s1, &s2)
        else:
            nnl_shifted_sums_d(xr, D, xr[0], &s1, &s2)
        mean = xr[0] + s1 / D
        var = max(0.0, (s2 - s1 * (s1 / D)) / D)
        rstd = 1.0 / sqrt(var + eps)
        mean_out[r] = <floating>mean
        rstd_out[r] = <floating>rstd
        # in the input's own type, x - mean through the mean's high and low parts
        if floating is float:
            nnl_ln_forward_row_f(xr, yr, D, mean, <float>rstd, w, b)
        else:
            nnl_ln_forward_row_d(xr, yr, D, mean, rstd, w, b)


def layer_norm_forward(x, weight, bias, eps):
    """Normalise each row of ``x`` (rows, D); returns (y, mean, rstd), mean/rstd of shape (rows,)."""
    kernel = "layer_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight), ("bias", bias)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{kernel}: the normalized size D must be positive, got x of shape {x.shape}")
    _shape(kernel, "weight", weight, (x.shape[1],))
    _shape(kernel, "bias", bias, (x.shape[1],))
    cdef double eps_ = _eps(kernel, eps)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight, bias = _contig(weight), _contig(bias)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef cnp.ndarray y = np.empty((rows, D), dtype=dtype)
    cdef cnp.ndarray mean = np.empty(rows, dtype=dtype), rstd = np.empty(rows, dtype=dtype)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* yp = cnp.PyArray_DATA(y)
    cdef void* mp = cnp.PyArray_DATA(mean)
    cdef void* rp = cnp.PyArray_DATA(rstd)
    cdef void* wp = _data(weight)
    cdef void* bp = _data(bias)
    if t == cnp.NPY_FLOAT:
        with nogil:
            _ln_forward(<float*>xp, <float*>yp, <float*>mp, <float*>rp, rows, D,
                        <float*>wp, <float*>bp, eps_)
    else:
        with nogil:
            _ln_forward(<double*>xp, <double*>yp, <double*>mp, <double*>rp, rows, D,
                        <double*>wp, <double*>bp, eps_)
    return y, mean, rstd


cdef inline void _row_dots(floating* g, floating* x, floating* w, Py_ssize_t D, double mean,
                           double rstd, double* sum_gw_xhat, double* sum_gw) noexcept nogil:
    """sum(g * w * xhat) and sum(g * w) over one row."""
    if floating is float:
        nnl_row_dots_f(g, x, w, D, mean, rstd, sum_gw_xhat, sum_gw)
    else:
        nnl_row_dots_d(g, x, w, D, mean, rstd, sum_gw_xhat, sum_gw)


cdef void _ln_backward(floating* g, floating* x, floating* gx, floating* mean_in,
                       floating* rstd_in, floating* w, bint affine, Py_ssize_t rows, Py_ssize_t D,
                       floating* partial_w, floating* partial_b) noexcept nogil:
    """grad_x row by row; grad_weight/grad_bias partial sums per ROW_BLOCK rows.

    A block's partial sums (at most ROW_BLOCK terms each) are kept in the input's type,
    so the per-element step has no conversions and runs at the type's full vector
    width; the blocks are then combined in double (_combine_blocks). float32 sums of 32
    terms are good to about 1e-6 relative, where one float32 sum over all rows would not be.
    """
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r, j
    cdef double mean, rstd, c1, c2
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    cdef floating* pw
    cdef floating* pb
    for blk in prange(nblocks, num_threads=threads_for(rows * D), schedule="static"):
        pw = partial_w + blk * D
        pb = partial_b + blk * D
        if affine:
            for j in range(D):
                pw[j] = 0
                pb[j] = 0
        for r in range(blk * ROW_BLOCK, min(rows, (blk + 1) * ROW_BLOCK)):
            gr = g + r * D
            xr = x + r * D
            outr = gx + r * D
            mean = mean_in[r]
            rstd = rstd_in[r]
            _row_dots(gr, xr, w, D, mean, rstd, &c1, &c2)
            # Assigned in the loop body, so each thread has its own c1 and c2 (written
            # only through a pointer, prange would share them between threads).
            c1 = c1 / D
            c2 = c2 / D
            # The row sums are in double; the per-element step in the input's own type:
            # mean and rstd are already stored in it, and float32 runs twice as wide.
            # Without an affine map w is ones (g * 1 is exact) and there are no partial sums.
            if floating is float:
                nnl_ln_backward_row_f(gr, xr, w, outr, pw if affine else NULL,
                                      pb if affine else NULL, D, <float>mean, <float>rstd,
                                      <float>c1, <float>c2)
            else:
                nnl_ln_backward_row_d(gr, xr, w, outr, pw if affine else NULL,
                                      pb if affine else NULL, D, mean, rstd, c1, c2)


cdef void _combine_blocks(partial_t* partial, Py_ssize_t nblocks, Py_ssize_t D,
                          floating* out) noexcept nogil:
    """out[j] = sum of partial[blk, j] over blocks, in block order, accumulated in double."""
    cdef Py_ssize_t j, blk
    cdef double s
    for j in prange(D, num_threads=threads_for(nblocks * D), schedule="static"):
        s = 0
        for blk in range(nblocks):
            s = s + partial[blk * D + j]
        out[j] = <floating>s


def layer_norm_backward(grad, x, weight, mean, rstd):
    """Gradients of layer_norm_forward: (grad_x, grad_weight, grad_bias); None for absent affine.

    ``grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with ``g = grad * weight``;
    grad_weight and grad_bias sum over rows in fixed blocks of rows.
    """
    kernel = "layer_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight), ("mean", mean),
                                 ("rstd", rstd)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "weight", weight, (x.shape[1],))
    _shape(kernel, "mean", mean, (x.shape[0],))
    _shape(kernel, "rstd", rstd, (x.shape[0],))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef cnp.ndarray mc = np.ascontiguousarray(mean), rc = np.ascontiguousarray(rstd)
    cdef bint affine = weight is not None
    # Without an affine map the weight is ones: g * 1.0 is exact, and one loop serves both.
    weight = _contig(weight) if affine else np.ones(x.shape[1], dtype=dtype)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef cnp.ndarray gx = np.empty((rows, D), dtype=dtype)
    cdef cnp.ndarray pw = np.empty(nblocks * D if affine else 0, dtype=dtype)
    cdef cnp.ndarray pb = np.empty(nblocks * D if affine else 0, dtype=dtype)
    cdef cnp.ndarray gw = np.empty(D, dtype=dtype), gb = np.empty(D, dtype=dtype)
    cdef void* gp = cnp.PyArray_DATA(gc)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* op = cnp.PyArray_DATA(gx)
    cdef void* mp = cnp.PyArray_DATA(mc)
    cdef void* rp = cnp.PyArray_DATA(rc)
    cdef void* wp = _data(weight)
    cdef void* gwp = cnp.PyArray_DATA(gw)
    cdef void* gbp = cnp.PyArray_DATA(gb)
    cdef void* pwp = cnp.PyArray_DATA(pw)
    cdef void* pbp = cnp.PyArray_DATA(pb)
    if t == cnp.NPY_FLOAT:
        with nogil:
            _ln_backward(<float*>gp, <float*>xp, <float*>op, <float*>mp, <float*>rp, <float*>wp,
                         affine, rows, D, <float*>pwp, <float*>pbp)
            if affine:
                _combine_blocks(<float*>pwp, nblocks, D, <float*>gwp)
                _combine_blocks(<float*>pbp, nblocks, D, <float*>gbp)
    else:
        with nogil:
            _ln_backward(<double*>gp, <double*>xp, <double*>op, <double*>mp, <double*>rp,
                         <double*>wp, affine, rows, D, <double*>pwp, <double*>pbp)
            if affine:
                _combine_blocks(<double*>pwp, nblocks, D, <double*>gwp)
                _combine_blocks(<double*>pbp, nblocks, D, <double*>gbp)
    if not affine:
        return gx, None, None
    return gx, gw, gb


# ------------------------------------------------------------- group norm -----

cdef void _gn_forward(floating* x, floating* y, floating* mean_out, floating* rstd_out,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, Py_ssize_t G,
                      floating* w, floating* b, double eps) noexcept nogil:
    cdef Py_ssize_t cpg = C // G, D = cpg * L
    cdef Py_ssize_t r, ci, c, l
    cdef double mean, rstd, a, shift
    cdef floating* xr
    cdef floating* yr
    for r in prange(N * G, num_threads=threads_for(N * C * L), schedule="static"):
        xr = x + r * D
        yr = y + r * D
        mean = _sum(xr, D) / D
        rstd = 1.0 / sqrt(_sum_sq_dev(xr, D, mean) / D + eps)
        mean_out[r] = <floating>mean
        rstd_out[r] = <floating>rstd
        for ci in range(cpg):
            c = (r % G) * cpg + ci
            a = 1.0 if w == NULL else <double>w[c]
            shift = 0.0 if b == NULL else <double>b[c]
            for l in range(L):
                if b == NULL:
                    yr[ci * L + l] = <floating>(((xr[ci * L + l] - mean) * rstd) * a)
                else:
                    yr[ci * L + l] = <floating>(((xr[ci * L + l] - mean) * rstd) * a + shift)


def group_norm_forward(x, num_groups, weight, bias, eps):
    """Normalise ``x`` (N, C, L) over each group of C/num_groups channels and L; (y, mean, rstd).

    mean and rstd have shape (N, num_groups); the affine map is per channel.
    """
    kernel = "group_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight), ("bias", bias)])
    N, C, L, G = _reference._group_norm_checks(kernel, x, num_groups, weight, bias)
    cdef double eps_ = _eps(kernel, eps)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight, bias = _contig(weight), _contig(bias)
    cdef cnp.ndarray y = np.empty((N, C, L), dtype=dtype)
    cdef cnp.ndarray mean = np.empty((N, G), dtype=dtype), rstd = np.empty((N, G), dtype=dtype)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* yp = cnp.PyArray_DATA(y)
    cdef void* mp = cnp.PyArray_DATA(mean)
    cdef void* rp = cnp.PyArray_DATA(rstd)
    cdef void* wp = _data(weight)
    cdef void* bp = _data(bias)
    cdef Py_ssize_t n_ = N, c_ = C, l_ = L, g_ = G
    if t == cnp.NPY_FLOAT:
        with nogil:
            _gn_forward(<float*>xp, <float*>yp, <float*>mp, <float*>rp, n_, c_, l_, g_,
                        <float*>wp, <float*>bp, eps_)
    else:
        with nogil:
            _gn_forward(<double*>xp, <double*>yp, <double*>mp, <double*>rp, n_, c_, l_, g_,
                        <double*>wp, <double*>bp, eps_)
    return y, mean, rstd


cdef void _gn_backward(floating* g, floating* x, floating* gx, floating* mean_in,
                       floating* rstd_in, floating* w, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t L, Py_ssize_t G, double* partial_w,
                       double* partial_b) noexcept nogil:
    """grad_x per (sample, group) row; per-(sample, channel) sums for grad_weight/grad_bias."""
    cdef Py_ssize_t cpg = C // G, D = cpg * L
    cdef Py_ssize_t r, ci, c, l, n, j
    cdef double mean, rstd, a, xhat, c1, c2, s1, s2, gsum, gxsum
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    for r in prange(N * G, num_threads=threads_for(N * C * L), schedule="static"):
        n = r // G
        gr = g + r * D
        xr = x + r * D
        outr = gx + r * D
        mean = mean_in[r]
        rstd = rstd_in[r]
        c1 = 0
        c2 = 0
        # assigned here so that prange makes them thread-private (they are written by pointer)
        gsum = 0
        gxsum = 0
        for ci in range(cpg):
            c = (r % G) * cpg + ci
            a = 1.0 if w == NULL else <double>w[c]
            _sum_g_and_g_dev(gr + ci * L, xr + ci * L, L, mean, &gsum, &gxsum)
            # sums over the channel, then weighted: sum(g*w*xhat) = w * rstd * sum(g*(x-mean))
            c1 = c1 + a * (gxsum * rstd)
            c2 = c2 + a * gsum
            partial_w[n * C + c] = gxsum * rstd
            partial_b[n * C + c] = gsum
        c1 = c1 / D
        c2 = c2 / D
        for ci in range(cpg):
            c = (r % G) * cpg + ci
            a = 1.0 if w == NULL else <double>w[c]
            for l in range(L):
                j = ci * L + l
                xhat = (xr[j] - mean) * rstd
                outr[j] = <floating>(rstd * (gr[j] * a - c2 - xhat * c1))


def group_norm_backward(grad, x, num_groups, weight, mean, rstd):
    """Gradients of group_norm_forward: (grad_x, grad_weight, grad_bias); None for absent affine.

    Per (sample, group): ``grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with
    ``g = grad * weight[channel]``; grad_weight/grad_bias sum per sample, then over
    samples in order.
    """
    kernel = "group_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight), ("mean", mean),
                                 ("rstd", rstd)])
    N, C, L, G = _reference._group_norm_checks(kernel, x, num_groups, weight, None)
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "mean", mean, (N, G))
    _shape(kernel, "rstd", rstd, (N, G))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef cnp.ndarray mc = np.ascontiguousarray(mean), rc = np.ascontiguousarray(rstd)
    weight = _contig(weight)
    cdef cnp.ndarray gx = np.empty((N, C, L), dtype=dtype)
    cdef cnp.ndarray pw = np.empty(N * C), pb = np.empty(N * C)
    cdef cnp.ndarray gw = np.empty(C, dtype=dtype), gb = np.empty(C, dtype=dtype)
    cdef void* gp = cnp.PyArray_DATA(gc)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* op = cnp.PyArray_DATA(gx)
    cdef void* mp = cnp.PyArray_DATA(mc)
    cdef void* rp = cnp.PyArray_DATA(rc)
    cdef void* wp = _data(weight)
    cdef void* gwp = cnp.PyArray_DATA(gw)
    cdef void* gbp = cnp.PyArray_DATA(gb)
    cdef Py_ssize_t n_ = N, c_ = C, l_ = L, g_ = G
    cdef double* pb_p = _ddata(pb)
    cdef double* pw_p = _ddata(pw)
    if t == cnp.NPY_FLOAT:
        with nogil:
            _gn_backward(<float*>gp, <float*>xp, <float*>op, <float*>mp, <float*>rp, <float*>wp,
                         n_, c_, l_, g_, pw_p, pb_p)
            _combine_blocks(pw_p, n_, c_, <float*>gwp)
            _combine_blocks(pb_p, n_, c_, <float*>gbp)
    else:
        with nogil:
            _gn_backward(<double*>gp, <double*>xp, <double*>op, <double*>mp, <double*>rp,
                         <double*>wp, n_, c_, l_, g_, pw_p, pb_p)
            _combine_blocks(pw_p, n_, c_, <double*>gwp)
            _combine_blocks(pb_p, n_, c_, <double*>gbp)
    if weight is None:
        return gx, None, None
    return gx, gw, gb


# --------------------------------------------------------------- RMS norm -----

cdef void _rms_forward(floating* x, floating* y, floating* rrms_out, Py_ssize_t rows,
                       Py_ssize_t D, floating* w, double eps) noexcept nogil:
    cdef Py_ssize_t r, j
    cdef double rrms
    cdef floating* xr
    cdef floating* yr
    for r in prange(rows, num_threads=threads_for(rows * D), schedule="static"):
        xr = x + r * D
        yr = y + r * D
        rrms = 1.0 / sqrt(_sum_sq_dev(xr, D, 0.0) / D + eps)
        rrms_out[r] = <floating>rrms
        for j in range(D):
            if w == NULL:
                yr[j] = <floating>(xr[j] * rrms)
            else:
                yr[j] = <floating>((xr[j] * rrms) * w[j])


def rms_norm_forward(x, weight, eps):
    """Scale each row of ``x`` (rows, D) by ``rrms = 1/sqrt(mean(x**2) + eps)``; returns (y, rrms)."""
    kernel = "rms_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{kernel}: the normalized size D must be positive, got x of shape {x.shape}")
    _shape(kernel, "weight", weight, (x.shape[1],))
    cdef double eps_ = _eps(kernel, eps)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight = _contig(weight)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef cnp.ndarray y = np.empty((rows, D), dtype=dtype), rrms = np.empty(rows, dtype=dtype)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* yp = cnp.PyArray_DATA(y)
    cdef void* rp = cnp.PyArray_DATA(rrms)
    cdef void* wp = _data(weight)
    if t == cnp.NPY_FLOAT:
        with nogil:
            _rms_forward(<float*>xp, <float*>yp, <float*>rp, rows, D, <float*>wp, eps_)
    else:
        with nogil:
            _rms_forward(<double*>xp, <double*>yp, <double*>rp, rows, D, <double*>wp, eps_)
    return y, rrms


cdef void _rms_backward(floating* g, floating* x, floating* gx, floating* rrms_in, floating* w,
                        Py_ssize_t rows, Py_ssize_t D, double* partial_w) noexcept nogil:
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r, j
    cdef double rrms, rrms3, c, c_odd, gw
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    cdef double* pw
    for blk in prange(nblocks, num_threads=threads_for(rows * D), schedule="static"):
        pw = partial_w + blk * D
        if w != NULL:
            for j in range(D):
                pw[j] = 0
        for r in range(blk * ROW_BLOCK, min(rows, (blk + 1) * ROW_BLOCK)):
            gr = g + r * D
            xr = x + r * D
            outr = gx + r * D
            rrms = rrms_in[r]
            rrms3 = rrms * rrms * rrms
            c = 0
            c_odd = 0
            j = 0
            if w == NULL:
                while j + 2 <= D:
                    c = c + <double>gr[j] * xr[j]
                    c_odd = c_odd + <double>gr[j + 1] * xr[j + 1]
                    j = j + 2
            else:
                while j + 2 <= D:
                    c = c + (gr[j] * <double>w[j]) * xr[j]
                    c_odd = c_odd + (gr[j + 1] * <double>w[j + 1]) * xr[j + 1]
                    j = j + 2
            if j < D:
                gw = gr[j] if w == NULL else gr[j] * <double>w[j]
                c = c + gw * xr[j]
            c = (c + c_odd) / D
            for j in range(D):
                if w == NULL:
                    outr[j] = <floating>(rrms * gr[j] - xr[j] * rrms3 * c)
                else:
                    gw = gr[j] * <double>w[j]
                    outr[j] = <floating>(rrms * gw - xr[j] * rrms3 * c)
                    pw[j] = pw[j] + <double>gr[j] * xr[j] * rrms


def rms_norm_backward(grad, x, weight, rrms):
    """Gradients of rms_norm_forward: (grad_x, grad_weight).

    With ``g = grad * weight``: ``grad_x = rrms * g - x * rrms**3 * mean(g * x)``.
    """
    kernel = "rms_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight), ("rrms", rrms)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "weight", weight, (x.shape[1],))
    _shape(kernel, "rrms", rrms, (x.shape[0],))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef cnp.ndarray rc = np.ascontiguousarray(rrms)
    weight = _contig(weight)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef bint affine = weight is not None
    cdef cnp.ndarray gx = np.empty((rows, D), dtype=dtype)
    cdef cnp.ndarray pw = np.empty(nblocks * D if affine else 0)
    cdef cnp.ndarray gw = np.empty(D, dtype=dtype)
    cdef void* gp = cnp.PyArray_DATA(gc)
    cdef void* xp = cnp.PyArray_DATA(xc)
    cdef void* op = cnp.PyArray_DATA(gx)
    cdef void* rp = cnp.PyArray_DATA(rc)
    cdef void* wp = _data(weight)
    cdef void* gwp = cnp.PyArray_DATA(gw)
    cdef double* pw_p = _ddata(pw)
    if t == cnp.NPY_FLOAT:
        with nogil:
            _rms_backward(<float*>gp, <float*>xp, <float*>op, <float*>rp, <float*>wp, rows, D,
                          pw_p)
            if affine:
                _combine_blocks(pw_p, nblocks, D, <float*>gwp)
    else:
        with nogil:
            _rms_backward(<double*>gp, <double*>xp, <double*>op, <double*>rp, <double*>wp,
                          rows, D, pw_p)
            if affine:
                _combine_blocks(pw_p, nblocks, D, <double*>gwp)
    if not affine:
        return gx, None
    return gx, gw
