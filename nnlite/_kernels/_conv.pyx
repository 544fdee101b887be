"""Convolution kernels on (N, C, H, W) arrays (pooling is in _pool.pyx).

This file holds the plan (which of five algorithms each pass of a convolution
takes, and why), the argument checks and the four kernel wrappers. The
algorithms' loops are one file each, included below:

* ``_conv_im2col.pxi`` — the general case: each output pixel's receptive field
  is gathered into a column matrix (im2col), one BLAS GEMM per group; the input
  gradient multiplies back to columns and scatters them (col2im). The batch is
  cut into chunks of about ``CHUNK_COLUMNS`` output pixels, whose columns stay
  in cache while the GEMM reads them.
* ``_conv_pointwise.pxi`` — 1x1, stride 1, no padding: the input already is the
  column matrix.
* ``_conv_shifted.pxi`` — stride 1, one group, where it wastes little work: a
  "shifted" product on zero-bordered planes (_shifted_gemm.h: each tap is the
  same planes read from a fixed offset, so the columns never exist).
* ``_conv_depthwise.pxi`` — one input channel per group: too little work per
  GEMM, so plane by plane, as the one-row shifted product with stride 1 and as
  direct loops otherwise.

Determinism: every GEMM is a one-thread BLAS call on a block fixed by the
shape (OpenBLAS's own threading would change the summation order with the
thread count); the chunks (and the shifted products' samples) depend on the
shape only, and the weight gradient adds its per-task partial sums in task
order. Every output element is written by exactly one thread. Results are
bit-identical for any thread count.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, threadid
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from nnlite._kernels._blas cimport (blas_pin_one_thread as _blas_pin_one_thread,
                                    blas_restore_threads as _blas_restore_threads,
                                    dgemm_rowmajor, dgemm_serial, relu_block, sgemm_rowmajor,
                                    sgemm_serial)

from nnlite._kernels._dtype cimport data, data_as, type_of
from nnlite._kernels._threads cimport threads_for, threads_for_streaming
from nnlite._kernels._checks cimport (c_contiguous, int_pair, product_fits, same_float_type,
                                      shape4_ok)

import numpy as np

from nnlite._kernels import _blas as _blas_module
from nnlite._kernels import checks as _checks_py
from nnlite._kernels.reference import _conv as _reference  # the twins share argument checks

cnp.import_array()

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
           "conv2d_backward_bias"]

cdef enum:
    # Output pixels per im2col chunk: enough columns for an efficient GEMM, few enough
    # that a chunk's columns (C*kh*kw rows of them) stay in cache (measured: 256 and
    # 1024 were no faster on the LeNet and small-CNN layers, 256 slower on 8x8 maps).
    CHUNK_COLUMNS = 512
    # Chunks a batch is cut into at least (when it has that many samples).
    MIN_CHUNKS = 4
    # The weight gradient keeps one partial sum per task; at most this many tasks.
    MAX_WEIGHT_TASKS = 16
    # Elements of one sample's padded input planes above which the shifted product is
    # not used: every tile of output channels streams them all, so they must stay in L2.
    SHIFTED_MAX_PLANES = 1 << 18
    # Elements of padded planes and output gradient that one weight-gradient call of the
    # shifted product brings (several samples, fewer when they are large): every tile of
    # channels and taps streams them all.
    SHIFTED_CALL_ELEMENTS = 1 << 16
cdef Py_ssize_t _INT_MAX = 2147483647


def blas_threads_pinned():
    """True when the GEMMs here can pin OpenBLAS to one thread (the determinism guarantee)."""
    return _blas_module.blas_threads_pinned()


cdef extern from "_vector.h":
    int nnl_vector_bits() noexcept nogil
    int nnl_vector_emulated() noexcept nogil


def vector_width():
    """(bits, emulated): the width the hand-written vector code was compiled for (256, or
    512 on an AVX-512 target; _vector.h), and whether 512-bit vectors run as two 256-bit
    halves (the NNLITE_VECTOR_BITS=512 test build on a machine without AVX-512)."""
    return nnl_vector_bits(), bool(nnl_vector_emulated())


# ------------------------------------------------------------------- the plan -----
#
# Every convolution pass takes exactly one of five algorithms, chosen from the shape
# alone (never from the thread count, so results stay bit-identical):
#
#   depthwise-shifted  one input channel per group, stride 1: each plane is a one-row
#                      shifted product (a depthwise GEMM would have K = kh*kw only)
#   depthwise-direct   one input channel per group, other strides: loops over a
#                      zero-padded copy of each plane
#   pointwise          a 1x1 kernel, stride 1, no padding: the input already is the
#                      column matrix, so one BLAS GEMM per sample
#   shifted            stride 1, one group, where it wastes little work (_use_shifted):
#                      a GEMM whose right-hand side is the padded input read at one
#                      fixed offset per tap, so the im2col copy never exists
#   im2col             everything else: gather columns chunk by chunk, BLAS GEMM
#
# `conv_plan` shows the choice from Python; tests use it to know which loop they ran.

cdef enum Algorithm:
    DEPTHWISE_SHIFTED, DEPTHWISE_DIRECT, POINTWISE, SHIFTED, IM2COL

cdef enum Pass:
    FORWARD, INPUT_GRAD, WEIGHT_GRAD

ALGORITHMS = ("depthwise-shifted", "depthwise-direct", "pointwise", "shifted", "im2col")


cdef Algorithm _plan(Geometry* g, Pass p, Py_ssize_t tile):
    """The algorithm for pass ``p`` of the convolution ``g`` (see the table above)."""
    if _is_depthwise(g):
        if g.sh == 1 and g.sw == 1 and (
                p != INPUT_GRAD or (g.ph <= g.dh * (g.kh - 1) and g.pw <= g.dw * (g.kw - 1))):
            return DEPTHWISE_SHIFTED   # (the input gradient needs a non-negative border)
        return DEPTHWISE_DIRECT
    if _is_pointwise(g):
        return POINTWISE
    if p == INPUT_GRAD:
        return SHIFTED if _use_shifted(g, True, tile) else IM2COL
    # Where the forward runs as a shifted product, so does the weight gradient (measured:
    # on 8x8 maps, where the forward does not, the gradient's reductions are too short to pay).
    if _use_shifted(g, False, tile) and (p == FORWARD or g.N > 0):
        return SHIFTED
    return IM2COL


def conv_plan(x_shape, weight_shape, stride, padding, dilation, groups, dtype=np.float32):
    """The algorithm each pass of this convolution takes: a dict with the keys
    ``"forward"``, ``"input_grad"`` and ``"weight_grad"``, each one of ``ALGORITHMS``.

    For finite values: the weight gradient of an input holding an infinity or a NaN, and
    the input gradient of such a weight, take im2col (depthwise: the direct loops) in
    place of a shifted product."""
    cdef Geometry g
    _conv_geometry(&g, "conv_plan", tuple(x_shape), tuple(weight_shape), stride, padding,
                   dilation, groups)
    cdef Py_ssize_t tile = _shifted_tile(cnp.NPY_FLOAT if np.dtype(dtype) == np.float32
                                         else cnp.NPY_DOUBLE)
    return {"forward": ALGORITHMS[_plan(&g, FORWARD, tile)],
            "input_grad": ALGORITHMS[_plan(&g, INPUT_GRAD, tile)],
            "weight_grad": ALGORITHMS[_plan(&g, WEIGHT_GRAD, tile)]}


def shifted_paths(x_shape, weight_shape, stride, padding, dilation, groups, dtype=np.float32):
    """Which of (forward, input gradient, weight gradient) run as shifted products here."""
    plan = conv_plan(x_shape, weight_shape, stride, padding, dilation, groups, dtype)
    return tuple(plan[p] == "shifted" for p in ("forward", "input_grad", "weight_grad"))


# ----------------------------------------------------------------- helpers -----

cdef inline Py_ssize_t _first_inside(Py_ssize_t start, Py_ssize_t step) noexcept nogil:
    # smallest k >= 0 with start + k*step >= 0 (a ceiling division that cannot overflow,
    # whatever the step: up to the int64 maximum)
    if start >= 0:
        return 0
    return (-start - 1) // step + 1


cdef inline Py_ssize_t _end_inside(Py_ssize_t start, Py_ssize_t step, Py_ssize_t size,
                                   Py_ssize_t count) noexcept nogil:
    # one past the largest k < count with start + k*step < size
    cdef Py_ssize_t k
    if start >= size:
        return 0
    k = (size - start - 1) // step + 1
    return k if k < count else count


cdef inline void _gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       floating* a, Py_ssize_t lda, floating* b, Py_ssize_t ldb, floating beta,
                       floating* c, Py_ssize_t ldc) noexcept nogil:
    """Row-major c = op(a) @ op(b) + beta*c through the shared deterministic BLAS door."""
    if floating is float:
        sgemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
    else:
        dgemm_rowmajor(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


cdef inline void _gemm_serial(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                              const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                              floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """One BLAS call on this thread (inside a chunk loop that pinned BLAS to one thread)."""
    if floating is float:
        sgemm_serial(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
    else:
        dgemm_serial(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)


cdef int _check_blas_size(str op, Py_ssize_t rows, Py_ssize_t cols) except -1:
    if rows > _INT_MAX or cols > _INT_MAX:
        raise ValueError(f"{op}: a GEMM operand of {rows} x {cols} exceeds BLAS's 32-bit sizes; "
                         f"use a smaller batch")
    return 0


# ---------------------------------------------------------- geometry -----

include "_conv_geometry.pxi"


# ------------------------------------------- reductions shared by the algorithms -----

cdef void _sum_over_samples(const double* partial, Py_ssize_t N, Py_ssize_t size,
                            floating* gw) noexcept nogil:
    """gw[i] = sum over samples n, in order, of partial[n * size + i] (in double)."""
    cdef Py_ssize_t i, n
    cdef double acc
    for i in range(size):
        acc = 0
        for n in range(N):
            acc = acc + partial[n * size + i]
        gw[i] = <floating>acc


cdef bint _all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """No infinity and no NaN among x[0..n) (v * 0 is 0 for a finite v, NaN otherwise;
    the OR over all elements needs no order, so the compiler can vectorise it)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in prange(n, nogil=True, num_threads=threads_for_streaming(n), schedule='static'):
        bad |= x[i] * 0 != 0
    return not bad


cdef Algorithm _finite_or_real_pixels(Algorithm algorithm, const floating* values,
                                      Py_ssize_t n) noexcept nogil:
    """``algorithm``, or im2col (depthwise: the direct loops) for a shifted product of
    ``values`` that hold an infinity or a NaN.

    The gradients' shifted products run over a grid wider than the output, whose extra
    columns hold a zero gradient: the weight gradient multiplies those zeros by input
    values, the input gradient by weights. With an infinity there, 0 * inf is a NaN that
    the true sums (over real output pixels: the twins', PyTorch's) do not have; the
    other algorithms visit real pixels only.
    """
    if algorithm == SHIFTED or algorithm == DEPTHWISE_SHIFTED:
        if not _all_finite(values, n):
            return IM2COL if algorithm == SHIFTED else DEPTHWISE_DIRECT
    return algorithm


cdef Py_ssize_t _vector(int t) noexcept nogil:
    return nnl_shifted_lanes_f() if t == cnp.NPY_FLOAT else nnl_shifted_lanes_d()


cdef void _sum_partials(const floating* partial, Py_ssize_t ntasks, Py_ssize_t size,
                        floating* gw) noexcept nogil:
    """gw[i] = the tasks' partial sums added in task order."""
    cdef Py_ssize_t i, t
    cdef floating acc
    for i in prange(size, nogil=True, num_threads=threads_for(size * ntasks), schedule='static'):
        acc = partial[i]
        for t in range(1, ntasks):
            acc = acc + partial[t * size + i]
        gw[i] = acc


# ------------------------------------------------------------- the algorithms -----
#
# One file per algorithm of the plan above, compiled into this module (Cython's
# include: the loops stay inline-able and share the Geometry struct).

include "_conv_im2col.pxi"
include "_conv_pointwise.pxi"
include "_conv_shifted.pxi"
include "_conv_depthwise.pxi"


# ---------------------------------------------------------- bias gradient -----

cdef void _backward_bias(const floating* grad, floating* gb, double* partial, Py_ssize_t N,
                         Py_ssize_t O, Py_ssize_t L) noexcept nogil:
    """Per-(n, o) plane sums in float64 (parallel), then summed over n in order (serial).

    Each plane is summed pixel after pixel; four planes go side by side, so that four
    additions are in flight at once instead of each waiting for the one before it (the
    same sums in the same order, about three times faster on large planes).
    """
    cdef Py_ssize_t block, task, l, n, o, planes = N * O
    cdef double acc, a0, a1, a2, a3
    cdef const floating* p
    # An element costs a load and an add: a memory-bound loop (see threads_for_streaming).
    cdef int nt = threads_for_streaming(N * O * L)
    for block in prange((planes + 3) // 4, nogil=True, num_threads=nt, schedule='static'):
        p = grad + block * 4 * L
        if block * 4 + 4 <= planes:
            a0 = 0
            a1 = 0
            a2 = 0
            a3 = 0
            for l in range(L):
                a0 = a0 + p[l]
                a1 = a1 + p[L + l]
                a2 = a2 + p[2 * L + l]
                a3 = a3 + p[3 * L + l]
            partial[block * 4] = a0
            partial[block * 4 + 1] = a1
            partial[block * 4 + 2] = a2
            partial[block * 4 + 3] = a3
        else:   # the last few planes, one at a time
            for task in range(block * 4, planes):
                acc = 0
                for l in range(L):
                    acc = acc + grad[task * L + l]
                partial[task] = acc
    for o in range(O):
        acc = 0
        for n in range(N):
            acc = acc + partial[n * O + o]
        gb[o] = <floating>acc


# ----------------------------------------------------------- conv wrappers -----

def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, activation=None):
    """y = conv2d(x, weight) + bias; x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or None.

    ``activation="relu"`` clamps y at 0 (a fused Conv2d + ReLU, the bytes of ``relu_forward``
    of the plain output): each task clamps the block of y it has just written, while the
    block is still in cache, instead of a second pass over all of y (the 1x1 algorithm, whose
    products come straight from BLAS, clamps in its bias pass, or in a pass of its own).
    """
    cdef int t
    cdef Geometry g
    cdef str op = "conv2d"
    cdef bint relu = _checks_py.fused_relu("conv2d_forward", activation)
    if bias is None:
        t = same_float_type(op, {"input": x, "weight": weight})
    else:
        t = same_float_type(op, {"input": x, "weight": weight, "bias": bias})
    _conv_geometry(&g, op, x.shape, weight.shape, stride, padding, dilation, groups)
    if bias is not None and bias.shape != (g.O,):
        raise ValueError(f"{op}: bias must have shape ({g.O},), got {bias.shape}")
    cdef cnp.ndarray xc = c_contiguous(x)
    cdef cnp.ndarray wc = c_contiguous(weight)
    cdef cnp.ndarray bc = None if bias is None else c_contiguous(bias)
    cdef cnp.ndarray y = np.empty((g.N, g.O, g.OH, g.OW), dtype=x.dtype)
    if y.size == 0:
        return y
    # the one float/double choice of this pass: _forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _forward(<float*>data(y), xc, wc, bc, &g, op, relu)
    else:
        _forward(<double*>data(y), xc, wc, bc, &g, op, relu)
    return y


cdef _forward(floating* y, cnp.ndarray xc, cnp.ndarray wc, cnp.ndarray bc, Geometry* g, str op, bint relu):
    """conv2d_forward after the checks: run the algorithm the plan picks, into y (clamped at 0
    with ``relu``)."""
    cdef const floating* x = <floating*>cnp.PyArray_DATA(xc)
    cdef const floating* w = <floating*>cnp.PyArray_DATA(wc)
    cdef const floating* b = NULL if bc is None else <floating*>cnp.PyArray_DATA(bc)
    cdef int t = type_of(y)
    cdef Chunking ch
    cdef int nt
    cdef cnp.ndarray scratch, off
    cdef floating* s
    cdef Planes pl
    cdef Shifted sp
    cdef Algorithm algorithm = _plan(g, FORWARD, _shifted_tile(t))
    if algorithm == DEPTHWISE_SHIFTED:
        pl = _planes(g.O, g.C, 1, 1, g.O // g.C, g.H, g.W, g.ph, g.pw, g.OH, g.OW, g, _vector(t))
        _run_depthwise_products(x, w, b, y, &pl, g, xc.dtype, relu)
        return
    if algorithm == DEPTHWISE_DIRECT:
        nt = threads_for(g.N * g.O * g.OH * g.OW * g.kh * g.kw)
        scratch = _plane_scratch(nt, g, xc.dtype)
        s = <floating*>cnp.PyArray_DATA(scratch)
        with nogil:
            _forward_depthwise(x, w, b, y, s, nt, g, relu)
        return
    if algorithm == POINTWISE:
        _check_blas_size(op, g.C, g.H * g.W)
        with nogil:
            _forward_pointwise(x, w, b, y, g, relu)
        return
    if algorithm == SHIFTED:
        sp = _shifted_plan(g.C, g.H, g.W, g.O, g.OH, g.OW, g.ph, g.pw, g, _shifted_tile(t))
        off = _tap_offsets(sp.Ci, sp.S, sp.Wp, g)
        nt = <int>max(1, min(threads_for(g.N * g.O * sp.K * sp.P), g.N))
        scratch = _shifted_scratch(nt, &sp, xc.dtype)
        s = <floating*>cnp.PyArray_DATA(scratch)
        with nogil:
            _shifted_products(x, w, b, y, s, <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, nt, &sp, relu)
        return
    ch = _chunking(op, g)
    nt = _chunk_threads(&ch, g)
    scratch = np.empty(nt * ch.scratch, dtype=xc.dtype)
    s = <floating*>cnp.PyArray_DATA(scratch)
    with nogil:
        _forward_gemm(x, w, b, y, s, &ch, nt, g, relu)


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups):
    """dL/dx of conv2d, shape input_shape: GEMM back to columns, then col2im."""
    cdef int t
    cdef Geometry g
    cdef str op = "conv2d_backward_input"
    t = same_float_type(op, {"grad": grad, "weight": weight})
    input_shape = _shape4(op, "input_shape", input_shape)
    _conv_geometry(&g, op, input_shape, weight.shape, stride, padding, dilation, groups)
    _check_grad(op, grad, &g)
    cdef cnp.ndarray gc = c_contiguous(grad)
    cdef cnp.ndarray wc = c_contiguous(weight)
    cdef cnp.ndarray gx = np.empty(input_shape, dtype=grad.dtype)
    if gx.size == 0:
        return gx
    if g.O == 0:
        gx.fill(0)
        return gx
    # the one float/double choice of this pass: _backward_input is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _backward_input(<float*>data(gx), gc, wc, &g, op)
    else:
        _backward_input(<double*>data(gx), gc, wc, &g, op)
    return gx


cdef _backward_input(floating* gx, cnp.ndarray gc, cnp.ndarray wc, Geometry* g, str op):
    """conv2d_backward_input after the checks: run the algorithm the plan picks, into gx."""
    cdef const floating* gr = <floating*>cnp.PyArray_DATA(gc)
    cdef const floating* w = <floating*>cnp.PyArray_DATA(wc)
    cdef int t = type_of(gx)
    cdef Chunking ch
    cdef int nt
    cdef cnp.ndarray scratch, off, flipped
    cdef floating* s
    cdef Planes pl
    cdef Shifted sp
    cdef Py_ssize_t multiplier = g.O // g.C if g.C else 0
    cdef Algorithm algorithm = _finite_or_real_pixels(_plan(g, INPUT_GRAD, _shifted_tile(t)), w,
                                                      cnp.PyArray_SIZE(wc))
    if algorithm == DEPTHWISE_SHIFTED:
        # each input plane gathers its multiplier output planes' gradients, padded by the
        # kernel's reach less the padding, through the flipped taps
        pl = _planes(g.C, g.O, multiplier, multiplier, 1, g.OH, g.OW, g.dh * (g.kh - 1) - g.ph,
                     g.dw * (g.kw - 1) - g.pw, g.H, g.W, g, _vector(t))
        flipped = np.ascontiguousarray(
            wc.reshape(g.C, multiplier, g.kh, g.kw)[:, :, ::-1, ::-1]).reshape(g.C, -1)
        _run_depthwise_products(gr, <floating*>cnp.PyArray_DATA(flipped), <const floating*>NULL,
                                gx, &pl, g, gc.dtype, False)
        return
    if algorithm == DEPTHWISE_DIRECT:
        nt = threads_for(g.N * g.O * g.OH * g.OW * g.kh * g.kw)
        scratch = _plane_scratch(nt, g, gc.dtype)
        s = <floating*>cnp.PyArray_DATA(scratch)
        with nogil:
            _backward_input_depthwise(gr, w, gx, s, nt, g)
        return
    if algorithm == POINTWISE:
        _check_blas_size(op, g.O, g.H * g.W)
        with nogil:
            _backward_input_pointwise(gr, w, gx, g)
        return
    if algorithm == SHIFTED:
        # gx = the shifted product of the flipped, channel-swapped kernel with grad padded
        # by (kernel reach - padding): w'[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]
        sp = _shifted_plan(g.O, g.OH, g.OW, g.C, g.H, g.W, g.dh * (g.kh - 1) - g.ph,
                           g.dw * (g.kw - 1) - g.pw, g, _shifted_tile(t))
        off = _tap_offsets(sp.Ci, sp.S, sp.Wp, g)
        flipped = np.ascontiguousarray(wc[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        nt = <int>max(1, min(threads_for(g.N * g.C * sp.K * sp.P), g.N))
        scratch = _shifted_scratch(nt, &sp, gc.dtype)
        s = <floating*>cnp.PyArray_DATA(scratch)
        with nogil:
            _shifted_products(gr, <floating*>cnp.PyArray_DATA(flipped), <const floating*>NULL, gx,
                              s, <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, nt, &sp, False)
        return
    ch = _chunking(op, g)
    nt = _chunk_threads(&ch, g)
    scratch = np.empty(nt * ch.scratch, dtype=gc.dtype)
    s = <floating*>cnp.PyArray_DATA(scratch)
    with nogil:
        _backward_input_gemm(gr, w, gx, s, &ch, nt, g)


def conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups):
    """dL/dweight of conv2d, shape weight_shape: the batch reduced in a thread-count-free order."""
    cdef int t
    cdef Geometry g
    cdef str op = "conv2d_backward_weight"
    t = same_float_type(op, {"grad": grad, "input": x})
    weight_shape = _shape4(op, "weight_shape", weight_shape)
    _conv_geometry(&g, op, x.shape, weight_shape, stride, padding, dilation, groups)
    _check_grad(op, grad, &g)
    cdef cnp.ndarray gc = c_contiguous(grad)
    cdef cnp.ndarray xc = c_contiguous(x)
    cdef cnp.ndarray gw = np.empty(weight_shape, dtype=x.dtype)
    if gw.size == 0:
        return gw
    # the one float/double choice of this pass: _backward_weight is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _backward_weight(<float*>data(gw), gc, xc, &g, op)
    else:
        _backward_weight(<double*>data(gw), gc, xc, &g, op)
    return gw


cdef _backward_weight(floating* gw, cnp.ndarray gc, cnp.ndarray xc, Geometry* g, str op):
    """conv2d_backward_weight after the checks: run the algorithm the plan picks, into gw."""
    cdef const floating* gr = <floating*>cnp.PyArray_DATA(gc)
    cdef const floating* x = <floating*>cnp.PyArray_DATA(xc)
    cdef int t = type_of(gw)
    cdef Py_ssize_t size = g.O * (g.C // g.groups) * g.kh * g.kw
    cdef cnp.ndarray partial, scratch, lanes, off
    cdef Chunking ch
    cdef Py_ssize_t per_task, Pw, vector, per_call
    cdef int nt
    cdef Planes pl
    cdef Shifted sp
    cdef Algorithm algorithm = _finite_or_real_pixels(_plan(g, WEIGHT_GRAD, _shifted_tile(t)), x,
                                                      cnp.PyArray_SIZE(xc))
    if algorithm == DEPTHWISE_SHIFTED:
        pl = _planes(g.O, g.C, 1, 1, g.O // g.C, g.H, g.W, g.ph, g.pw, g.OH, g.OW, g, _vector(t))
        off = _tap_offsets(pl.nin, pl.S, pl.Wp, g)
        partial = np.empty(g.N * g.O * pl.K, dtype=np.float64)
        nt = threads_for(g.N * g.O * pl.P * pl.K)
        scratch = np.zeros(nt * (pl.S + pl.P + pl.K), dtype=xc.dtype)
        with nogil:
            _depthwise_weight_grad(gr, x, gw, <double*>cnp.PyArray_DATA(partial),
                                   <floating*>cnp.PyArray_DATA(scratch),
                                   <Py_ssize_t*>cnp.PyArray_DATA(off), nt, &pl, g)
        return
    if algorithm == DEPTHWISE_DIRECT:
        partial = np.empty(g.N * g.O * g.kh * g.kw, dtype=np.float64)
        nt = threads_for(g.N * g.O * g.OH * g.OW * g.kh * g.kw)
        scratch = _plane_scratch(nt, g, xc.dtype)
        lanes = np.empty(nt * g.OW, dtype=np.float64)
        with nogil:
            _backward_weight_depthwise(gr, x, gw, <double*>cnp.PyArray_DATA(partial),
                                       <floating*>cnp.PyArray_DATA(scratch),
                                       <double*>cnp.PyArray_DATA(lanes), nt, g)
        return
    if algorithm == POINTWISE:
        _check_blas_size(op, g.O, g.H * g.W)
        with nogil:
            _backward_weight_pointwise(gr, x, gw, g)
        return
    if algorithm == SHIFTED:
        sp = _shifted_plan(g.C, g.H, g.W, g.O, g.OH, g.OW, g.ph, g.pw, g, _shifted_tile(t))
        off = _tap_offsets(sp.Ci, sp.S, sp.Wp, g)
        # the pixels rounded up to whole vectors only (the reduction has no tile of pixels)
        vector = _vector(t)
        Pw = (g.OH * sp.Wp + vector - 1) // vector * vector
        per_task = max(1, (g.N + MAX_WEIGHT_TASKS - 1) // MAX_WEIGHT_TASKS)
        per_call = max(1, min(per_task, SHIFTED_CALL_ELEMENTS // (g.C * sp.S + g.O * Pw)))
        nt = <int>max(1, min(threads_for(g.N * g.O * sp.K * Pw), (g.N + per_task - 1) // per_task))
        scratch = np.zeros(nt * per_call * (g.C * sp.S + g.O * Pw), dtype=xc.dtype)
        partial = np.empty(((g.N + per_task - 1) // per_task) * size, dtype=xc.dtype)
        with nogil:
            _shifted_weight_grad(x, gr, gw, <floating*>cnp.PyArray_DATA(scratch),
                                 <floating*>cnp.PyArray_DATA(partial),
                                 <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, per_task, per_call, Pw,
                                 nt, &sp)
        return
    ch = _chunking(op, g)
    per_task = max(1, (ch.count + MAX_WEIGHT_TASKS - 1) // MAX_WEIGHT_TASKS)
    nt = <int>max(1, min(_chunk_threads(&ch, g), (ch.count + per_task - 1) // per_task))
    scratch = np.empty(nt * ch.scratch, dtype=xc.dtype)
    partial = np.empty(((ch.count + per_task - 1) // per_task) * size, dtype=xc.dtype)
    with nogil:
        _backward_weight_gemm(gr, x, gw, <floating*>cnp.PyArray_DATA(scratch),
                              <floating*>cnp.PyArray_DATA(partial), &ch, per_task, nt, g)


def conv2d_backward_bias(grad):
    """dL/dbias: grad summed over (N, OH, OW) per channel, in float64, in a fixed order."""
    cdef int t
    cdef str op = "conv2d_backward_bias"
    t = same_float_type(op, {"grad": grad})
    if grad.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D grad (N, O, OH, OW), got shape {grad.shape}")
    cdef cnp.ndarray gc = c_contiguous(grad)
    cdef Py_ssize_t N = grad.shape[0], O = grad.shape[1], L = grad.shape[2] * grad.shape[3]
    if N == 0 or L == 0:   # no values: zero sums, without a partial sum for each plane of none
        return np.zeros(O, dtype=grad.dtype)
    cdef cnp.ndarray gb = np.empty(O, dtype=grad.dtype)
    cdef cnp.ndarray partial = np.empty(N * O, dtype=np.float64)
    cdef double* pp = <double*>data(partial)
    cdef void* pg = data(gc)
    cdef void* pb = data(gb)
    # the one float/double choice of this pass: _backward_bias is written once, on `floating`.
    # Both element pointers are cast here, not in a runner (see _dtype.pxd): the runner form
    # moved the unchanged plane-sum loop across a 64-byte code boundary, 8% slower.
    with nogil:
        if t == cnp.NPY_FLOAT:
            _backward_bias(<float*>pg, <float*>pb, pp, N, O, L)
        else:
            _backward_bias(<double*>pg, <double*>pb, pp, N, O, L)
    return gb
