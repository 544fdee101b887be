# cython: language_level=3
"""Softmax, log-softmax and cross-entropy over the last dimension of (rows, cols) input.

Every row is independent, so rows are split between threads; within a row the
loops run in a fixed order. Row sums accumulate in double (in the vector lanes of
_lanes.h), which keeps float32 softmax accurate for wide rows. Each kernel subtracts
the row maximum before ``exp``: exp(x - max) <= 1 never overflows, even for logits
of 1e4.

The loss reduction of ``cross_entropy_forward`` sums per-row losses in fixed
blocks of ``LOSS_BLOCK`` rows, blocks added in order, so the loss is the same
for any thread count. Twins: ``reference/_softmax.py``.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, NAN, isfinite, log
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t

from nnlite._kernels._dtype cimport empty_like as _empty_like
from nnlite._kernels._fastmath cimport _exp
from nnlite._kernels._softmax_rows cimport (row_dot as _row_dot, row_max as _row_max, row_sum as _row_sum,
                                           scaled_softmax_row, softmax_backward_row,
                                           softmax_row as _softmax_row)
from nnlite._kernels._threads cimport threads_for
from nnlite._kernels._checks cimport (c_contiguous as _c, float_type as _float_type,
                                     index_array as _index_array, integer as _integer, real_in as _real_in,
                                     real_number as _real_number)

cnp.import_array()

__all__ = ["softmax_forward", "softmax_backward", "scaled_softmax_forward", "log_softmax_forward",
           "log_softmax_backward", "cross_entropy_forward", "cross_entropy_backward"]

cdef enum:
    LOSS_BLOCK = 256     # rows per partial loss sum; never depends on the thread count

cdef enum Reduction:
    REDUCTION_NONE, REDUCTION_MEAN, REDUCTION_SUM


# ------------------------------------------------------------ validation -----

cdef int _same_type(str op, int t, object first, str first_name, object arr, str name) except -1:
    if _float_type(op, arr, name) != t:
        raise TypeError(f"{op}: all operands must share one dtype, got {first.dtype} ({first_name}) "
                        f"and {arr.dtype} ({name})")
    return t


cdef int _rows_type(str op, object a, str name_a, object b=None, str name_b=None) except -1:
    """2-D float input (and, when ``name_b`` is given, a second operand of the same dtype and shape)."""
    cdef int t = _float_type(op, a, name_a)
    if name_b is not None:   # a second operand, when the kernel has one, is required
        _same_type(op, t, a, name_a, b, name_b)
    if a.ndim != 2:
        raise ValueError(f"{op}: expected 2-D (rows, cols) {name_a}, got shape {a.shape}")
    if name_b is not None and b.shape != a.shape:
        raise ValueError(f"{op}: {name_b} must have the shape of {name_a} {a.shape}, got {b.shape}")
    return t


# ------------------------------------------------------------------ loops -----

cdef void _softmax_fwd(const floating *x, floating *y, Py_ssize_t rows,
                       Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(rows, num_threads=threads_for(rows * cols), schedule='static'):
        _softmax_row(&x[i * cols], &y[i * cols], cols)


cdef void _scaled_softmax_fwd(const floating *x, floating scale, const floating *bias,
                              Py_ssize_t period, floating *y, Py_ssize_t rows,
                              Py_ssize_t cols) noexcept nogil:
    # softmax(x * scale + bias), bias row (i % period) for row i (bias NULL: none)
    cdef Py_ssize_t i
    for i in prange(rows, num_threads=threads_for(rows * cols), schedule='static'):
        scaled_softmax_row(&x[i * cols], scale, NULL if bias == NULL else &bias[(i % period) * cols],
                           &y[i * cols], cols)


cdef void _softmax_bwd(const floating *g, const floating *out, floating scale, floating *dx,
                       Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(rows, num_threads=threads_for(rows * cols), schedule='static'):
        softmax_backward_row(&g[i * cols], &out[i * cols], scale, &dx[i * cols], cols)


cdef void _log_softmax_fwd(const floating *x, floating *y, Py_ssize_t rows,
                           Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef floating m, log_s
    for i in prange(rows, num_threads=threads_for(rows * cols), schedule='static'):
        m = _row_max(&x[i * cols], cols)
        for j in range(cols):          # exps staged in y: this loop vectorises, the sum cannot
            y[i * cols + j] = _exp(x[i * cols + j] - m)
        log_s = <floating>log(_row_sum(&y[i * cols], cols))
        for j in range(cols):
            y[i * cols + j] = (x[i * cols + j] - m) - log_s


cdef void _log_softmax_bwd(const floating *g, const floating *out, floating *dx, Py_ssize_t rows,
                           Py_ssize_t cols) noexcept nogil:
    # y = log_softmax(x): dL/dx_j = g_j - exp(y_j) sum_k g_k
    cdef Py_ssize_t i, j
    cdef floating total
    for i in prange(rows, num_threads=threads_for(rows * cols), schedule='static'):
        total = <floating>_row_sum(&g[i * cols], cols)
        for j in range(cols):
            dx[i * cols + j] = g[i * cols + j] - _exp(out[i * cols + j]) * total


cdef void _cross_entropy_rows(const floating *x, const int64_t *target, const floating *weight,
                              Py_ssize_t n, Py_ssize_t c, int64_t ignore_index,
                              double label_smoothing, double w_total, double *lse_out,
                              double *row_loss, double *row_weight, floating *scratch,
                              int nt) noexcept nogil:
    # Row i, log-probabilities lp_j = (x_j - max) - log(sum_k exp(x_k - max)), eps = label_smoothing:
    #   loss_i = (1 - eps) (-w[t] lp_t) + eps / C (-sum_j w_j lp_j)
    # lp is formed from (x_j - max), exact, rather than from x_j - lse: with logits of
    # 1e4, lse rounded to float32 is off by ~1e-3, the loss would inherit that.
    # The exps are staged in a per-thread row of scratch (so that loop vectorises), then
    # summed; then the row's x_j - max are staged there, and
    # sum_j w_j lp_j = sum_j w_j (x_j - max) - log s sum_j w_j, sums in double. (Not
    # sum_j w_j x_j - (max + log s) sum_j w_j: for logits far from zero that difference
    # cancels, and equal logits of 1e16 lost log s to rounding.)
    cdef Py_ssize_t i, j
    cdef floating m
    cdef double s, log_s, w_t, lp, smooth
    cdef floating *buf
    for i in prange(n, num_threads=nt, schedule='static'):
        buf = scratch + threadid() * c
        m = _row_max(&x[i * c], c)
        for j in range(c):
            buf[j] = _exp(x[i * c + j] - m)
        s = _row_sum(buf, c)
        log_s = log(s)
        lse_out[i] = m + log_s
        if target[i] == ignore_index:
            row_loss[i] = 0
            row_weight[i] = 0
            continue
        w_t = 1
        if weight != NULL:
            w_t = weight[target[i]]
        row_weight[i] = w_t
        lp = (<double>x[i * c + target[i]] - m) - log_s
        row_loss[i] = (1 - label_smoothing) * (-w_t * lp)
        if label_smoothing > 0:
            for j in range(c):
                buf[j] = x[i * c + j] - m
            if weight == NULL:
                smooth = _row_sum(buf, c)
            else:
                smooth = _row_dot(weight, buf, c)
            smooth = smooth - log_s * w_total
            if not isfinite(smooth):
                # an infinite weight times the max's x_j - max = 0 is NaN, and x_j - max may
                # overflow float32 (logits of -3e38 and 3e38): term by term in double,
                # sum_j w_j lp_j is the twin's (an infinity, NaN, or finite)
                smooth = 0
                for j in range(c):
                    lp = (<double>x[i * c + j] - m) - log_s
                    smooth = smooth + (lp if weight == NULL else weight[j] * lp)
            row_loss[i] = row_loss[i] - label_smoothing / c * smooth


cdef double _block_sum(const double *v, Py_ssize_t n) noexcept nogil:
    """Sum of ``v`` in fixed blocks of LOSS_BLOCK, each summed in order, added in order."""
    cdef Py_ssize_t block, i
    cdef double total = 0, partial
    for block in range((n + LOSS_BLOCK - 1) // LOSS_BLOCK):
        partial = 0
        for i in range(block * LOSS_BLOCK, min((block + 1) * LOSS_BLOCK, n)):
            partial += v[i]
        total += partial
    return total


cdef void _cross_entropy_bwd(const floating *x, const int64_t *target, const floating *weight,
                             const double *lse, const double *scale, Py_ssize_t n, Py_ssize_t c,
                             int64_t ignore_index, double label_smoothing, double w_total,
                             floating *dx) noexcept nogil:
    # d loss_i / d x_j = s_i [(1 - eps) w[t] (p_j - [j == t]) + eps / C (p_j sum(w) - w_j)]
    # with p = softmax(x) = exp(x - lse): written as coef * p_j - b * w_j, minus a at j == t.
    # An ignored row has s_i = 0: 0 * p_j - 0 * w_j, which is 0 unless p_j (or w_j or sum(w)) is
    # NaN or infinite, as in PyTorch (whose ignored rows get 0 * softmax).
    # lse is kept in double: x - lse is then exact to the logits' precision even for
    # logits of 1e8, where a float32 lse would be off by several units.
    cdef Py_ssize_t i, j
    cdef double a, b, w_t
    cdef floating coef, bf
    cdef bint kept
    for i in prange(n, num_threads=threads_for(n * c), schedule='static'):
        kept = target[i] != ignore_index
        a = 0
        b = 0
        if kept:
            w_t = 1
            if weight != NULL:
                w_t = weight[target[i]]
            a = scale[i] * (1 - label_smoothing) * w_t
            b = scale[i] * (label_smoothing / c)
        coef = <floating>(a + b * w_total)
        bf = <floating>b
        if weight == NULL:
            for j in range(c):
                dx[i * c + j] = coef * _exp(<floating>(x[i * c + j] - lse[i])) - bf
        else:
            for j in range(c):
                dx[i * c + j] = coef * _exp(<floating>(x[i * c + j] - lse[i])) - bf * weight[j]
        if kept:
            dx[i * c + target[i]] -= <floating>a


# --------------------------------------------------------------- wrappers -----

# One dtype dispatch for the four row kernels: each wrapper names its float and
# double loops; _rows_map / _rows_zip check, allocate and run the loop of the dtype.

ctypedef void (*rows_map_f)(const float*, float*, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*rows_map_d)(const double*, double*, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*rows_zip_f)(const float*, const float*, float*, Py_ssize_t, Py_ssize_t) noexcept nogil
ctypedef void (*rows_zip_d)(const double*, const double*, double*, Py_ssize_t,
                            Py_ssize_t) noexcept nogil


cdef cnp.ndarray _rows_map(str op, object x, rows_map_f loop_f, rows_map_d loop_d):
    """y = loop(x) row by row for a 2-D float array."""
    cdef int t = _rows_type(op, x, "x")
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef Py_ssize_t rows = xc.shape[0], cols = xc.shape[1]
    cdef void* px = cnp.PyArray_DATA(xc)
    cdef void* py = cnp.PyArray_DATA(y)
    if cols == 0:   # rows without columns: nothing to compute, however many rows there are
        return y
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>px, <float*>py, rows, cols)
        else:
            loop_d(<const double*>px, <double*>py, rows, cols)
    return y


cdef cnp.ndarray _rows_zip(str op, object grad, object out, rows_zip_f loop_f, rows_zip_d loop_d):
    """dx = loop(grad, out) row by row, for the backward of a row kernel."""
    cdef int t = _rows_type(op, grad, "grad", out, "out")
    cdef cnp.ndarray g = _c(grad), o = _c(out)
    cdef cnp.ndarray dx = _empty_like(g, t)
    cdef Py_ssize_t rows = g.shape[0], cols = g.shape[1]
    cdef void* pg = cnp.PyArray_DATA(g)
    cdef void* po = cnp.PyArray_DATA(o)
    cdef void* pd = cnp.PyArray_DATA(dx)
    if cols == 0:   # rows without columns: nothing to compute, however many rows there are
        return dx
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>pg, <const float*>po, <float*>pd, rows, cols)
        else:
            loop_d(<const double*>pg, <const double*>po, <double*>pd, rows, cols)
    return dx


def softmax_forward(x):
    """exp(x_j - max) / sum_k exp(x_k - max) along the last dimension."""
    return _rows_map("softmax_forward", x, _softmax_fwd[float], _softmax_fwd[double])


def scaled_softmax_forward(x, scale, bias):
    """softmax(x * scale + bias) along the last dimension, in one pass over x: attention's scores.

    ``bias`` (None, or (period, cols) of x's dtype) is added to every block of
    ``period`` rows in turn, row i getting bias row i % period: an (L, S) mask
    for (N * H * L, S) scores. ``scale`` (a real number) is rounded to x's dtype,
    and each score rounds as NumPy's ``x * x.dtype.type(scale) + bias`` rounds it
    (a product rounded, then a sum rounded: no fused multiply-add), so the result
    equals ``softmax_forward`` of that array.
    """
    op = "scaled_softmax_forward"
    cdef int t = _rows_type(op, x, "x")
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1], period = 1
    cdef cnp.ndarray bc = None
    if bias is not None:
        _same_type(op, t, x, "x", bias, "bias")
        if bias.ndim != 2 or bias.shape[1] != cols or bias.shape[0] == 0 or rows % bias.shape[0]:
            raise ValueError(f"{op}: bias must be (period, {cols}) with period dividing the {rows} rows "
                             f"of x {x.shape}, got {bias.shape}")
        bc = _c(bias)
        period = bias.shape[0]
    cdef double s = _real_number(op, scale, "scale")
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef void *px = cnp.PyArray_DATA(xc)
    cdef void *pb = NULL if bc is None else cnp.PyArray_DATA(bc)
    cdef void *py = cnp.PyArray_DATA(y)
    if cols == 0:   # rows without columns: nothing to compute, however many rows there are
        return y
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _scaled_softmax_fwd(<const float*>px, <float>s, <const float*>pb, period, <float*>py, rows, cols)
        else:
            _scaled_softmax_fwd(<const double*>px, s, <const double*>pb, period, <double*>py, rows, cols)
    return y


def softmax_backward(grad, out, scale=1.0):
    """out * (grad - sum(grad * out)) * scale along the last dimension.

    ``scale``: the gradient of softmax(x * scale), as scaled_softmax_forward computes it.
    """
    cdef int t = _rows_type("softmax_backward", grad, "grad", out, "out")
    cdef double s = _real_number("softmax_backward", scale, "scale")
    cdef cnp.ndarray g = _c(grad), o = _c(out)
    cdef cnp.ndarray dx = _empty_like(g, t)
    cdef Py_ssize_t rows = g.shape[0], cols = g.shape[1]
    cdef void* pg = cnp.PyArray_DATA(g)
    cdef void* po = cnp.PyArray_DATA(o)
    cdef void* pd = cnp.PyArray_DATA(dx)
    if cols == 0:   # rows without columns: nothing to compute, however many rows there are
        return dx
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _softmax_bwd(<const float*>pg, <const float*>po, <float>s, <float*>pd, rows, cols)
        else:
            _softmax_bwd(<const double*>pg, <const double*>po, s, <double*>pd, rows, cols)
    return dx


def log_softmax_forward(x):
    """x_j - max - log(sum_k exp(x_k - max)) along the last dimension."""
    return _rows_map("log_softmax_forward", x, _log_softmax_fwd[float], _log_softmax_fwd[double])


def log_softmax_backward(grad, out):
    """grad - exp(out) * sum(grad) along the last dimension."""
    return _rows_zip("log_softmax_backward", grad, out, _log_softmax_bwd[float],
                     _log_softmax_bwd[double])


cdef tuple _cross_entropy_inputs(str op, object logits, object target, object weight,
                                 object ignore_index, object label_smoothing, object reduction):
    """Validate; return (dtype number, logits, target, weight or None, Reduction, ignore_index,
    label_smoothing)."""
    cdef int t = _float_type(op, logits, "logits")
    if weight is not None:
        _same_type(op, t, logits, "logits", weight, "weight")
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must be 2-D (N, C), got shape {logits.shape}")
    n, c = logits.shape
    if c == 0:
        raise ValueError(f"{op}: logits must have at least one class, got shape {logits.shape}")
    _index_array(op, target, "target")
    if target.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) for logits {logits.shape}, "
                         f"got {target.shape}")
    if weight is not None and weight.shape != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},) for logits {logits.shape}, "
                         f"got {weight.shape}")
    cdef Reduction red
    if reduction == "none":
        red = REDUCTION_NONE
    elif reduction == "mean":
        red = REDUCTION_MEAN
    elif reduction == "sum":
        red = REDUCTION_SUM
    else:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    cdef double eps = _real_in(op, label_smoothing, "label_smoothing", 0, 1)
    cdef int64_t ign = _integer(op, ignore_index, "ignore_index", INT64_MIN, INT64_MAX, None)
    cdef cnp.ndarray tc = _c(target)
    cdef const int64_t *pt = <const int64_t*>cnp.PyArray_DATA(tc)
    cdef int64_t classes = c
    cdef Py_ssize_t i, rows = n, bad = -1
    with nogil:
        for i in range(rows):
            if pt[i] != ign and (pt[i] < 0 or pt[i] >= classes):
                bad = i
                break
    if bad >= 0:
        raise IndexError(f"{op}: target {pt[bad]} is out of bounds for C={c} classes "
                         f"(ignore_index={ign})")
    return t, _c(logits), tc, (None if weight is None else _c(weight)), red, ign, eps


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing, reduction):
    """(loss, lse): PyTorch's cross_entropy for class-index targets, and each row's logsumexp.

    ``lse`` is float64 whatever the logits' dtype, so the backward's exp(x - lse)
    stays accurate for large logits.

    "mean" divides by the summed weight of the non-ignored targets (nan when
    every target is ignored, as in PyTorch).
    """
    op = "cross_entropy_forward"
    cdef int t
    cdef int64_t ign
    cdef double eps
    t, x, tc, w, red, ign, eps = _cross_entropy_inputs(op, logits, target, weight, ignore_index,
                                                       label_smoothing, reduction)
    cdef cnp.ndarray xc = x, tgt = tc
    cdef Py_ssize_t n = xc.shape[0], c = xc.shape[1]
    cdef Reduction r = red
    cdef cnp.ndarray lse = cnp.PyArray_EMPTY(1, xc.shape, cnp.NPY_DOUBLE, 0)
    cdef cnp.ndarray row_loss = np.empty(n), row_weight = np.empty(n)
    cdef double *pl = <double*>cnp.PyArray_DATA(row_loss)
    cdef double *pw = <double*>cnp.PyArray_DATA(row_weight)
    cdef const int64_t *pt = <const int64_t*>cnp.PyArray_DATA(tgt)
    cdef void *pweight = NULL if w is None else cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef double total = 0, w_sum = 0
    cdef double w_total = c if w is None else float(np.sum(w, dtype=np.float64))
    cdef int nt = threads_for(n * c)
    cdef cnp.ndarray scratch = np.empty(nt * c, dtype=xc.dtype)
    cdef void *ps = cnp.PyArray_DATA(scratch)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _cross_entropy_rows(<float*>cnp.PyArray_DATA(xc), pt, <float*>pweight, n, c, ign, eps,
                                w_total, <double*>cnp.PyArray_DATA(lse), pl, pw, <float*>ps, nt)
        else:
            _cross_entropy_rows(<double*>cnp.PyArray_DATA(xc), pt, <double*>pweight, n, c, ign, eps,
                                w_total, <double*>cnp.PyArray_DATA(lse), pl, pw, <double*>ps, nt)
        if r != REDUCTION_NONE:
            total = _block_sum(pl, n)
        if r == REDUCTION_MEAN:
            w_sum = _block_sum(pw, n)
            total = total / w_sum if w_sum != 0 else NAN
    if r == REDUCTION_NONE:
        return row_loss.astype(xc.dtype), lse
    return np.array(total, dtype=xc.dtype), lse


def cross_entropy_backward(grad_loss, logits, target, weight, lse, ignore_index,
                           label_smoothing, reduction):
    """d loss / d logits for cross_entropy_forward; ``lse`` is the forward's second result.

    p = exp(logits - lse) with the saved float64 ``lse``: the difference is formed in
    double and rounded once to the logits' dtype, so p keeps its precision for
    logits of any size (a float32 lse near 1e8 would be off by several units).
    """
    op = "cross_entropy_backward"
    cdef int t
    cdef int64_t ign
    cdef double eps
    t, x, tc, w, red, ign, eps = _cross_entropy_inputs(op, logits, target, weight, ignore_index,
                                                       label_smoothing, reduction)
    if _float_type(op, lse, "lse") != cnp.NPY_DOUBLE:
        raise TypeError(f"{op}: lse must be float64 (cross_entropy_forward's second result), "
                        f"got {lse.dtype}")
    _same_type(op, t, logits, "logits", grad_loss, "grad_loss")
    cdef cnp.ndarray xc = x, tgt = tc
    cdef Py_ssize_t n = xc.shape[0], c = xc.shape[1]
    if lse.shape != (n,):
        raise ValueError(f"{op}: lse must have shape ({n},) for logits {logits.shape}, got {lse.shape}")
    cdef Reduction r = red
    want = (n,) if r == REDUCTION_NONE else ()
    if grad_loss.shape != want:
        raise ValueError(f"{op}: grad_loss must have shape {want} for reduction={reduction!r}, "
                         f"got {grad_loss.shape}")
    cdef cnp.ndarray lc = _c(lse)
    cdef const int64_t *pt = <const int64_t*>cnp.PyArray_DATA(tgt)
    # per-row incoming gradient s_i, in double: grad_loss[i], or the shared scalar
    cdef cnp.ndarray scale
    cdef cnp.ndarray row_weight
    cdef double w_sum
    if r == REDUCTION_NONE:
        scale = grad_loss.astype(np.float64)
    elif r == REDUCTION_SUM:
        scale = np.full(n, float(grad_loss))
    else:
        row_weight = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)[
            np.where(tgt != ign, tgt, 0)]
        row_weight[tgt == ign] = 0
        w_sum = _block_sum(<double*>cnp.PyArray_DATA(row_weight), n)
        scale = np.full(n, float(grad_loss) / w_sum if w_sum != 0 else 0.0)
    cdef double w_total = c if w is None else float(np.sum(w, dtype=np.float64))
    cdef void *pweight = NULL if w is None else cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef double *ps = <double*>cnp.PyArray_DATA(scale)
    cdef cnp.ndarray dx = _empty_like(xc, t)
    if t == cnp.NPY_FLOAT32:
        with nogil:
            _cross_entropy_bwd(<float*>cnp.PyArray_DATA(xc), pt, <float*>pweight,
                               <double*>cnp.PyArray_DATA(lc), ps, n, c, ign, eps, w_total,
                               <float*>cnp.PyArray_DATA(dx))
    else:
        with nogil:
            _cross_entropy_bwd(<double*>cnp.PyArray_DATA(xc), pt, <double*>pweight,
                               <double*>cnp.PyArray_DATA(lc), ps, n, c, ign, eps, w_total,
                               <double*>cnp.PyArray_DATA(dx))
    return dx
