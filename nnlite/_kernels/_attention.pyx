# cython: language_level=3
"""Packed multi-head self-attention, one (batch item, head) at a time.

``qkv`` is the (N, L, 3E) output of a MultiheadAttention's input projection:
Q, K and V side by side, head h of each in its columns h*d .. (h+1)*d (E = H d).
For every item and head the forward computes

    S = Q_h K_h^T,   P = softmax(S * scale + bias),   O_h = P V_h,

and the backward, from the output's gradient dO_h and the saved P,

    dV_h = P^T dO_h,   dP = dO_h V_h^T,   dS = scale * P * (dP - rowsum(dP * P)),
    dQ_h = dS K_h,     dK_h = dS^T Q_h.

These are the products and softmax steps ``K.bmm`` and the softmax kernels run
over all heads at once (and the twin, ``reference/_attention.py``, runs so), in
the same order; here one thread does all the steps of one head before the
next, so the head's (L, L) scores are made, softmaxed and used while they are in
the thread's cache. The scores never fill an (N, H, L, L) array of their own:
the forward writes each head's softmax weights straight into the saved-weights
array (or, when the call is not recorded for a backward, into an (L, L)
scratch block of the thread), and the backward works in such a block. For long sequences this
removes most of attention's memory traffic; the arrays it leaves out are the
size of the weights, N H L^2 numbers each.

Each product is one BLAS call on the calling thread (``sgemm_serial``, as K.bmm
makes for heads this size), with the heads read in place through the row
stride; each softmax row is ``_softmax_rows.pxd``'s, the one the softmax kernels
use. The heads are shared out whole among the threads in a fixed order, so
every number is the same for any thread count; for heads K.bmm would not cut,
they are the bits of K.bmm and the softmax kernels run one after the other.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, threadid
from cpython.pyport cimport PY_SSIZE_T_MAX

from nnlite._kernels._checks cimport c_contiguous as _c, flag as _flag
from nnlite._kernels._blas cimport blas_pin_one_thread, blas_restore_threads, dgemm_serial, sgemm_serial
from nnlite._kernels._softmax_rows cimport scaled_softmax_row, softmax_backward_row
from nnlite._kernels._threads cimport threads_for
from nnlite._kernels import checks

cnp.import_array()

__all__ = ["packed_attention_backward", "packed_attention_forward"]


cdef inline int _threads(Py_ssize_t items, Py_ssize_t length, Py_ssize_t d) noexcept nogil:
    """K.bmm's rule for its items (a thread for every so many multiply-adds), read off the
    shape alone, and never more threads than heads (each thread's (L, L) scratch block
    would be memory for nothing); items * length^2 is known to fit, the product with d
    is capped."""
    cdef Py_ssize_t work = items * length * length
    cdef int nt
    if d > 0 and work > PY_SSIZE_T_MAX // d:
        nt = threads_for(PY_SSIZE_T_MAX // 16)
    else:
        nt = threads_for(work * d // 16)
    return <int>min(<Py_ssize_t>nt, items)


cdef inline void _product(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                          const floating *a, Py_ssize_t lda, const floating *b, Py_ssize_t ldb,
                          floating *c, Py_ssize_t ldc) noexcept nogil:
    """c (m x n, rows ldc apart) = op(a) op(b), row-major: one BLAS call on this thread (an empty
    sum, for heads of width 0, fills zeros)."""
    if floating is float:
        sgemm_serial(trans_a, trans_b, m, n, k, a, lda, b, ldb, 0, c, ldc)
    else:
        dgemm_serial(trans_a, trans_b, m, n, k, a, lda, b, ldb, 0, c, ldc)


cdef void _forward(const floating *qkv, Py_ssize_t n, Py_ssize_t length, Py_ssize_t heads,
                   Py_ssize_t d, floating scale, const floating *bias, floating *out,
                   floating *weights, floating *scratch, int nt) noexcept nogil:
    """out (N, L, E) and, when weights is not NULL, weights (N, H, L, L), on nt threads;
    scratch: one (L, L) block for each of them, used when weights is NULL."""
    cdef Py_ssize_t item, b, h, r, width = 3 * heads * d, e = heads * d
    cdef Py_ssize_t block = length * length
    cdef const floating *q
    cdef floating *p
    cdef int saved[4]
    blas_pin_one_thread(saved)
    for item in prange(n * heads, nogil=True, num_threads=nt, schedule='static'):
        b = item // heads
        h = item % heads
        q = &qkv[b * length * width + h * d]          # K_h and V_h are E and 2E columns on
        p = &weights[item * block] if weights != NULL else &scratch[threadid() * block]
        _product(False, True, length, length, d, q, width, q + e, width, p, length)
        for r in range(length):
            scaled_softmax_row(&p[r * length], scale, NULL if bias == NULL else &bias[r * length],
                               &p[r * length], length)
        _product(False, False, length, d, length, p, length, q + 2 * e, width,
                 &out[b * length * e + h * d], e)
    blas_restore_threads(saved)


cdef void _backward(const floating *grad, const floating *qkv, const floating *weights,
                    Py_ssize_t n, Py_ssize_t length, Py_ssize_t heads, Py_ssize_t d, floating scale,
                    floating *d_qkv, floating *scratch, int nt) noexcept nogil:
    """d_qkv (N, L, 3E) from grad (N, L, E) and weights (N, H, L, L), on nt threads; scratch:
    one (L, L) block for each of them, where dP becomes dS in place."""
    cdef Py_ssize_t item, b, h, r, width = 3 * heads * d, e = heads * d
    cdef Py_ssize_t block = length * length
    cdef const floating *q
    cdef const floating *p
    cdef const floating *d_out
    cdef floating *dq
    cdef floating *ds
    cdef int saved[4]
    blas_pin_one_thread(saved)
    for item in prange(n * heads, nogil=True, num_threads=nt, schedule='static'):
        b = item // heads
        h = item % heads
        q = &qkv[b * length * width + h * d]
        p = &weights[item * block]
        d_out = &grad[b * length * e + h * d]
        dq = &d_qkv[b * length * width + h * d]       # dK_h and dV_h are E and 2E columns on
        ds = &scratch[threadid() * block]
        _product(True, False, length, d, length, p, length, d_out, e, dq + 2 * e, width)      # dV
        _product(False, True, length, length, d, d_out, e, q + 2 * e, width, ds, length)      # dP
        for r in range(length):
            softmax_backward_row(&ds[r * length], &p[r * length], scale, &ds[r * length], length)
        _product(False, False, length, d, length, ds, length, q + e, width, dq, width)        # dQ
        _product(True, False, length, d, length, ds, length, q, width, dq + e, width)         # dK
    blas_restore_threads(saved)


cdef inline void* _data(cnp.ndarray a):
    return NULL if a is None else cnp.PyArray_DATA(a)


cdef cnp.ndarray _scratch(int nt, Py_ssize_t length, object dtype):
    """One (L, L) block for each of the nt threads. The wrappers choose nt with the GIL held
    and pass it to the kernel: read again inside the kernel, the thread count could follow a
    set_num_threads made meanwhile by another Python thread, past the end of this array."""
    return np.empty((nt, length, length), dtype)


def packed_attention_forward(qkv, num_heads, scale, bias, save_weights):
    """Self-attention of ``num_heads`` heads from packed ``qkv``; returns (out, weights).

    For each item and head h: ``P_h = softmax(Q_h K_h^T * scale + bias)`` and
    ``O_h = P_h V_h``. ``out`` is (N, L, E) with the heads side by side;
    ``weights`` the (N, H, L, L) array of the P_h when ``save_weights``
    (backward reads it), else None. ``bias``: None or an (L, L) mask added to
    every head's scaled scores.
    """
    op = "packed_attention_forward"
    cdef Py_ssize_t n, length, heads, d
    dtype, n, length, heads, d = checks.attention_operands(op, qkv, num_heads, bias)
    cdef double s = checks.real_number(op, "scale", scale)
    save_weights = _flag(op, save_weights, "save_weights")
    cdef cnp.ndarray out = np.empty((n, length, heads * d), dtype)
    cdef cnp.ndarray weights = np.empty((n, heads, length, length), dtype) if save_weights else None
    if n * heads * length == 0 or (d == 0 and weights is None):
        return out, weights   # no head has a position, or heads of width 0 and no weights asked for
    cdef int nt = _threads(n * heads, length, d)
    cdef cnp.ndarray scratch = None if save_weights else _scratch(nt, length, dtype)
    # the inputs are copied (when not C-contiguous) once the results have their memory
    cdef cnp.ndarray x = _c(qkv)
    cdef cnp.ndarray bc = None if bias is None else _c(bias)
    cdef bint single = dtype == np.float32
    cdef void *px = _data(x)
    cdef void *pb = _data(bc)
    cdef void *po = _data(out)
    cdef void *pw = _data(weights)
    cdef void *ps = _data(scratch)
    with nogil:
        if single:
            _forward(<const float*>px, n, length, heads, d, <float>s, <const float*>pb, <float*>po, <float*>pw,
                     <float*>ps, nt)
        else:
            _forward(<const double*>px, n, length, heads, d, s, <const double*>pb, <double*>po, <double*>pw,
                     <double*>ps, nt)
    return out, weights


def packed_attention_backward(grad, qkv, weights, num_heads, scale):
    """The gradient of ``packed_attention_forward``'s output with respect to ``qkv``, (N, L, 3E).

    With dO_h the gradient's head h and P_h the saved weights:
    ``dV_h = P_h^T dO_h``, ``dP_h = dO_h V_h^T``,
    ``dS_h = scale * P_h * (dP_h - rowsum(dP_h * P_h))``,
    ``dQ_h = dS_h K_h``, ``dK_h = dS_h^T Q_h``, each written into its block.
    """
    op = "packed_attention_backward"
    cdef Py_ssize_t n, length, heads, d
    dtype, n, length, heads, d = checks.attention_operands(op, qkv, num_heads, None, grad, weights,
                                                           backward=True)
    cdef double s = checks.real_number(op, "scale", scale)
    cdef cnp.ndarray d_qkv = np.empty(qkv.shape, dtype)
    if cnp.PyArray_SIZE(d_qkv) == 0:
        return d_qkv          # no batch item, no position, or heads of width 0
    cdef int nt = _threads(n * heads, length, d)
    cdef cnp.ndarray scratch = _scratch(nt, length, dtype)
    cdef cnp.ndarray g = _c(grad), x = _c(qkv), p = _c(weights)
    cdef bint single = dtype == np.float32
    cdef void *pg = _data(g)
    cdef void *px = _data(x)
    cdef void *pw = _data(p)
    cdef void *pd = _data(d_qkv)
    cdef void *ps = _data(scratch)
    with nogil:
        if single:
            _backward(<const float*>pg, <const float*>px, <const float*>pw, n, length, heads, d, <float>s,
                      <float*>pd, <float*>ps, nt)
        else:
            _backward(<const double*>pg, <const double*>px, <const double*>pw, n, length, heads, d, s,
                      <double*>pd, <double*>ps, nt)
    return d_qkv
