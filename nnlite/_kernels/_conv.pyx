"""Convolution kernels on (N, C, H, W) arrays (pooling is in _pool.pyx).

Convolution gathers each output pixel's receptive field into a column matrix
(im2col) and multiplies it by the weight with one BLAS GEMM per group; the
gradient with respect to the input multiplies back to columns and scatters
them onto the image (col2im). The batch is cut into chunks of a few samples,
about ``CHUNK_COLUMNS`` output pixels each, and the threads share the chunks:
each thread builds its chunk's columns in its own scratch, small enough to
stay in cache while the GEMM reads them (the whole batch's columns would not),
and a one-sample chunk's product lands straight in the output. With stride 1 and
output rows as wide as input rows, a tap's valid rows are one contiguous run of the
plane, copied (im2col) or added (col2im) at once.

Three shapes skip the columns: a 1x1 convolution with stride 1 and no padding is
already a GEMM on the input; a stride-1 convolution with one group runs as a
"shifted" product on zero-bordered planes (_shifted_gemm.h: each tap is the same
planes read from a fixed offset, so the columns never exist), where that wastes
little work (_use_shifted; ``shifted_paths`` tells which of the three loops take
it); and a depthwise convolution (one input channel per group, several groups) has
too little work per GEMM, so it runs plane by plane: as the one-row shifted product
with stride 1, as direct loops otherwise.

Determinism: every GEMM is a one-thread BLAS call on a block fixed by the
shape (OpenBLAS's own threading would change the summation order with the
thread count); the chunks (and the shifted products' samples) depend on the
shape only, and the weight gradient adds its per-task partial sums in task
order. Every output element is written by exactly one thread. Results are
bit-identical for any thread count.
"""
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset
from nnlite._kernels._blas cimport (blas_pin_one_thread as _blas_pin_one_thread,
                                    blas_restore_threads as _blas_restore_threads,
                                    dgemm_rowmajor, dgemm_serial, sgemm_rowmajor, sgemm_serial)

from nnlite._kernels._threads cimport threads_for
from nnlite._kernels._checks cimport (c_contiguous, int_pair, product_fits, same_float_type,
                                      shape4_ok)

import numpy as np

from nnlite._kernels import _blas as _blas_module
from nnlite._kernels import checks as _checks_py
from nnlite._kernels.reference import _conv as _reference  # the twins share argument checks

cnp.import_array()

# The stride-1 product without im2col: see _shifted_gemm.h.
cdef extern from "_shifted_gemm.h":
    Py_ssize_t nnl_shifted_tile_f() noexcept nogil
    Py_ssize_t nnl_shifted_tile_d() noexcept nogil
    Py_ssize_t nnl_shifted_lanes_f() noexcept nogil
    Py_ssize_t nnl_shifted_lanes_d() noexcept nogil
    void nnl_shifted_gemm_f(const float* w, Py_ssize_t K, const Py_ssize_t* off, const float* xpad,
                            Py_ssize_t O, Py_ssize_t P, float* out, Py_ssize_t ldo) noexcept nogil
    void nnl_shifted_gemm_d(const double* w, Py_ssize_t K, const Py_ssize_t* off,
                            const double* xpad, Py_ssize_t O, Py_ssize_t P, double* out,
                            Py_ssize_t ldo) noexcept nogil
    void nnl_depthwise_plane_f(const float* w, Py_ssize_t K, const Py_ssize_t* off,
                               const float* xpad, Py_ssize_t P, float* out) noexcept nogil
    void nnl_depthwise_plane_d(const double* w, Py_ssize_t K, const Py_ssize_t* off,
                               const double* xpad, Py_ssize_t P, double* out) noexcept nogil
    void nnl_depthwise_wgrad_f(const float* g, const float* xpad, const Py_ssize_t* off,
                               Py_ssize_t K, Py_ssize_t P, float* gw) noexcept nogil
    void nnl_depthwise_wgrad_d(const double* g, const double* xpad, const Py_ssize_t* off,
                               Py_ssize_t K, Py_ssize_t P, double* gw) noexcept nogil
    void nnl_shifted_wgrad_f(const float* g, Py_ssize_t ldg, Py_ssize_t gs, Py_ssize_t O,
                             const float* xpad, Py_ssize_t xs, const Py_ssize_t* off, Py_ssize_t K,
                             Py_ssize_t P, Py_ssize_t ns, float* gw) noexcept nogil
    void nnl_shifted_wgrad_d(const double* g, Py_ssize_t ldg, Py_ssize_t gs, Py_ssize_t O,
                             const double* xpad, Py_ssize_t xs, const Py_ssize_t* off,
                             Py_ssize_t K, Py_ssize_t P, Py_ssize_t ns, double* gw) noexcept nogil

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
           "conv2d_backward_bias"]

ctypedef fused floating:
    float
    double

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
    ``"forward"``, ``"input_grad"`` and ``"weight_grad"``, each one of ``ALGORITHMS``."""
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
    # smallest k >= 0 with start + k*step >= 0
    if start >= 0:
        return 0
    return (-start + step - 1) // step


cdef inline Py_ssize_t _end_inside(Py_ssize_t start, Py_ssize_t step, Py_ssize_t size,
                                   Py_ssize_t count) noexcept nogil:
    # one past the largest k < count with start + k*step < size
    cdef Py_ssize_t k
    if start >= size:
        return 0
    k = (size - start + step - 1) // step
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


# ---------------------------------------------------- im2col / col2im loops -----

cdef struct Geometry:
    Py_ssize_t N, C, H, W, O, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, groups


cdef inline bint _rows_are_flat(Geometry* g) noexcept nogil:
    """Stride 1 and output rows as wide as input rows ("same" padding): a tap's valid
    output rows then read one contiguous run of the input plane."""
    return g.sh == 1 and g.sw == 1 and g.OW == g.W


cdef inline void _tap_rows(Geometry* g, Py_ssize_t i, Py_ssize_t* oh_lo,
                           Py_ssize_t* oh_hi) noexcept nogil:
    """The output rows [oh_lo, oh_hi) whose input row for kernel row i is inside the
    image (stride 1)."""
    oh_lo[0] = min(g.OH, max(0, g.ph - i * g.dh))
    oh_hi[0] = max(oh_lo[0], min(g.OH, g.H + g.ph - i * g.dh))


cdef void _im2col(const floating* x, floating* cols, Py_ssize_t nb, Geometry* g) noexcept nogil:
    """cols[(c, i, j), n*L + oh*OW + ow] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] or 0."""
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, OH = g.OH, OW = g.OW, kh = g.kh, kw = g.kw
    cdef Py_ssize_t sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, NL = nb * L, taps = kh * kw
    cdef Py_ssize_t task, r, n, c, i, j, oh, ow, ih, iw0, lo, hi, oh_lo, oh_hi, k0, k1
    cdef bint flat = _rows_are_flat(g)
    cdef floating* dst
    cdef floating* row
    cdef const floating* src
    for task in range(C * taps * nb):
        r = task // nb
        n = task - r * nb
        c = r // taps
        i = (r // kw) % kh
        j = r % kw
        dst = cols + r * NL + n * L
        iw0 = j * dw - pw
        lo = _first_inside(iw0, sw)
        hi = _end_inside(iw0, sw, W, OW)
        if lo > OW:
            lo = OW
        if hi < lo:
            hi = lo
        if flat and hi > lo:
            # Output row oh reads input row oh - ph + i*dh from column iw0 on: with rows of
            # equal width, all valid rows are one run of the plane, copied at once from its
            # first valid element to its last. The entries in between that fall left or right
            # of the image (columns outside [lo, hi)) are then zeroed.
            _tap_rows(g, i, &oh_lo, &oh_hi)
            memset(dst, 0, oh_lo * OW * sizeof(floating))
            memset(dst + oh_hi * OW, 0, (OH - oh_hi) * OW * sizeof(floating))
            if oh_hi > oh_lo:
                k0 = oh_lo * OW + lo
                k1 = (oh_hi - 1) * OW + hi
                # input element of output entry k: k + (i*dh - ph)*W + iw0 in the plane
                src = x + (n * C + c) * H * W + (k0 + (i * dh - ph) * W + iw0)
                memcpy(dst + k0, src, (k1 - k0) * sizeof(floating))
                for oh in range(oh_lo, oh_hi):
                    for ow in range(lo):
                        dst[oh * OW + ow] = 0
                    for ow in range(hi, OW):
                        dst[oh * OW + ow] = 0
            continue
        for oh in range(OH):
            row = dst + oh * OW
            ih = oh * sh - ph + i * dh
            if ih < 0 or ih >= H:
                for ow in range(OW):
                    row[ow] = 0
                continue
            src = x + ((n * C + c) * H + ih) * W + iw0
            for ow in range(lo):
                row[ow] = 0
            # rows are short (OW elements): a plain loop beats a memcpy call
            if sw == 1:
                for ow in range(lo, hi):
                    row[ow] = src[ow]
            else:
                for ow in range(lo, hi):
                    row[ow] = src[ow * sw]
            for ow in range(hi, OW):
                row[ow] = 0


cdef void _col2im(floating* cols, floating* gx, Py_ssize_t nb, Geometry* g) noexcept nogil:
    """gx[n, c] = sum of the columns that read it, taps in order.

    With flat rows (_rows_are_flat) the entries of cols that fall outside the image are
    zeroed first: cols is scratch, and then a tap's valid rows add onto the plane as one run.
    """
    # Geometry in locals: through the pointer the compiler must assume stores alias it.
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, OH = g.OH, OW = g.OW, kh = g.kh, kw = g.kw
    cdef Py_ssize_t sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, NL = nb * L, HW = H * W
    cdef Py_ssize_t plane, n, c, i, j, oh, ow, ih, iw0, lo, hi, oh_lo, oh_hi, k, k0, k1
    cdef bint flat = _rows_are_flat(g)
    cdef floating* dst
    cdef floating* d
    cdef floating* src
    cdef const floating* s
    for plane in range(nb * C):
        n = plane // C
        c = plane - n * C
        dst = gx + plane * HW
        memset(dst, 0, HW * sizeof(floating))
        for i in range(kh):
            for j in range(kw):
                src = cols + ((c * kh + i) * kw + j) * NL + n * L
                iw0 = j * dw - pw
                lo = _first_inside(iw0, sw)
                hi = _end_inside(iw0, sw, W, OW)
                if flat:
                    # as in _im2col: output entry k lands on plane element k + delta
                    _tap_rows(g, i, &oh_lo, &oh_hi)
                    if hi <= lo or oh_hi <= oh_lo:
                        continue
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(lo):
                            src[oh * OW + ow] = 0
                        for ow in range(hi, OW):
                            src[oh * OW + ow] = 0
                    k0 = oh_lo * OW + lo
                    k1 = (oh_hi - 1) * OW + hi
                    d = dst + (k0 + (i * dh - ph) * W + iw0)
                    for k in range(k1 - k0):
                        d[k] += src[k0 + k]
                    continue
                for oh in range(OH):
                    ih = oh * sh - ph + i * dh
                    if ih < 0 or ih >= H:
                        continue
                    d = dst + ih * W + iw0
                    s = src + oh * OW
                    if sw == 1:
                        for ow in range(lo, hi):
                            d[ow] += s[ow]
                    else:
                        for ow in range(lo, hi):
                            d[ow * sw] += s[ow]


cdef void _channels_first_to_batch_first(const floating* src, floating* dst, const floating* bias,
                                         Py_ssize_t nb, Py_ssize_t O, Py_ssize_t L) noexcept nogil:
    """(O, nb, L) -> (nb, O, L), adding bias[o] when given; in place when nb == 1."""
    cdef Py_ssize_t task, n, o, l
    cdef floating b
    for task in range(nb * O):
        n = task // O
        o = task - n * O
        if bias == NULL:
            if src != dst:
                memcpy(dst + task * L, src + (o * nb + n) * L, L * sizeof(floating))
        else:
            b = bias[o]
            for l in range(L):
                dst[task * L + l] = src[(o * nb + n) * L + l] + b


cdef void _batch_first_to_channels_first(const floating* src, floating* dst, Py_ssize_t nb,
                                         Py_ssize_t O, Py_ssize_t L) noexcept nogil:
    """(nb, O, L) -> (O, nb, L)."""
    cdef Py_ssize_t task, n, o
    for task in range(nb * O):
        n = task // O
        o = task - n * O
        memcpy(dst + (o * nb + n) * L, src + task * L, L * sizeof(floating))


cdef void _add_bias(floating* y, const floating* bias, Py_ssize_t N, Py_ssize_t O,
                    Py_ssize_t L) noexcept nogil:
    cdef Py_ssize_t task, l
    cdef floating b
    cdef int nt = threads_for(N * O * L)
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        b = bias[task % O]
        for l in range(L):
            y[task * L + l] = y[task * L + l] + b


# ------------------------------------------------- stride-1 shifted product -----

# A stride-1 convolution with one group runs without im2col: each sample's input
# planes are copied once into zero-bordered planes laid end to end, and the product
# reads tap (c, i, j) as the window starting at one fixed offset (_shifted_gemm.h).
# The gradient with respect to the input is the same computation on the output
# gradient, with the kernel flipped and its in/out channels swapped.

cdef struct Shifted:
    Py_ssize_t Ci, Hi, Wi    # planes read (input; output gradient for backward)
    Py_ssize_t Co, Ho, Wo    # planes written
    Py_ssize_t qh, qw        # zero border on each side of a plane read
    Py_ssize_t Wp, S, P, K   # padded row, plane stride, pixels computed, taps
    Py_ssize_t scratch       # per-thread scratch elements: padded planes + product


cdef Shifted _shifted_plan(Py_ssize_t Ci, Py_ssize_t Hi, Py_ssize_t Wi, Py_ssize_t Co,
                           Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t qh, Py_ssize_t qw,
                           Geometry* g, Py_ssize_t tile) noexcept nogil:
    cdef Shifted sp
    sp.Ci, sp.Hi, sp.Wi, sp.Co, sp.Ho, sp.Wo, sp.qh, sp.qw = Ci, Hi, Wi, Co, Ho, Wo, qh, qw
    sp.Wp = Wi + 2 * qw
    # output rows counted along the padded width, rounded up to whole tiles
    sp.P = (Ho * sp.Wp + tile - 1) // tile * tile
    # A tile past the last output row reads at most dw*(kw-1) + tile - 1 elements beyond
    # the padded plane: they are zeros of the gap before the next plane.
    sp.S = (Hi + 2 * qh) * sp.Wp + g.dw * (g.kw - 1) + tile
    sp.K = Ci * g.kh * g.kw
    sp.scratch = Ci * sp.S + Co * sp.P
    return sp


cdef bint _use_shifted(Geometry* g, bint backward, Py_ssize_t tile) noexcept nogil:
    """Whether the shifted product beats im2col + BLAS here (stride 1, one group only).

    The shifted product computes more than it keeps: the pixels between rows (padded
    width / output width), the pixels up to a whole tile, and the rows of a short tile
    of output channels. BLAS computes only what it keeps, but its products are slow when
    they have few output channels (M of 16 or less). Measured on the LeNet and small-CNN
    layers: the shifted product wins up to 1.25x waste, or up to 1.6x with <= 16 output
    channels; BLAS wins beyond (8x8 maps: 1.5x; an input gradient to 1-6 channels), and
    on large images, where one sample's padded planes no longer fit in cache.
    """
    cdef Py_ssize_t eh = g.dh * (g.kh - 1), ew = g.dw * (g.kw - 1)
    cdef Py_ssize_t Co, Ho, Wo, Wp, P, rows
    cdef double waste
    if g.groups != 1 or g.sh != 1 or g.sw != 1:
        return False
    if backward:
        if g.ph > eh or g.pw > ew:       # the gradient would need a negative border
            return False
        Co, Ho, Wo, Wp = g.C, g.H, g.W, g.OW + 2 * (ew - g.pw)
    else:
        Co, Ho, Wo, Wp = g.O, g.OH, g.OW, g.W + 2 * g.pw
    if Co == 0 or Ho * Wo == 0:
        return False
    if (g.O if backward else g.C) * (Ho + g.dh * (g.kh - 1)) * Wp > SHIFTED_MAX_PLANES:
        return False                   # one sample's padded planes would not stay in cache
    P = (Ho * Wp + tile - 1) // tile * tile
    # channels go in tiles of 4, the rest in tiles of 2 and 1 (a 1-row tile runs at about
    # the speed of a 2-row one: it waits on its loads)
    rows = Co // 4 * 4 + (4 if Co % 4 == 3 else 2 if Co % 4 else 0)
    waste = (<double>P / (Ho * Wo)) * rows / Co
    return waste <= 1.25 or (Co <= 16 and waste <= 1.6)


cdef inline void _to_grid(const floating* src, floating* dst, Py_ssize_t planes, Py_ssize_t rows,
                          Py_ssize_t cols, Py_ssize_t row_stride,
                          Py_ssize_t plane_stride) noexcept nogil:
    """Copy contiguous (rows, cols) planes of src onto a grid: row r of plane m at
    dst + m*plane_stride + r*row_stride (a padded plane's interior, or the padded-width
    grid of a product)."""
    cdef Py_ssize_t m, r
    for m in range(planes):
        for r in range(rows):
            memcpy(dst + m * plane_stride + r * row_stride, src + (m * rows + r) * cols,
                   cols * sizeof(floating))


cdef inline void _from_grid(const floating* src, floating* dst, Py_ssize_t planes,
                           Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t row_stride,
                           Py_ssize_t plane_stride, const floating* bias) noexcept nogil:
    """The other way: contiguous planes of dst from the grid, plus bias[m] when given."""
    cdef Py_ssize_t m, r, c
    cdef floating b
    cdef const floating* s
    cdef floating* d
    for m in range(planes):
        b = 0 if bias == NULL else bias[m]
        for r in range(rows):
            s = src + m * plane_stride + r * row_stride
            d = dst + (m * rows + r) * cols
            for c in range(cols):
                d[c] = s[c] + b


cdef void _shifted_products(const floating* src, const floating* wmat, const floating* bias,
                            floating* dst, floating* scratch, Py_ssize_t* off, Py_ssize_t N,
                            int nt, Shifted* sp) noexcept nogil:
    """dst[n] = the shifted product of wmat with src[n]'s padded planes (+ bias), per sample."""
    cdef Py_ssize_t Ci = sp.Ci, Hi = sp.Hi, Wi = sp.Wi, Co = sp.Co, Ho = sp.Ho, Wo = sp.Wo
    cdef Py_ssize_t Wp = sp.Wp, S = sp.S, P = sp.P
    cdef Py_ssize_t n
    cdef floating* xpad
    cdef floating* out
    for n in prange(N, nogil=True, num_threads=nt, schedule='static'):
        # scratch comes zeroed; only the planes' interiors are written, sample after sample
        xpad = scratch + threadid() * sp.scratch
        out = xpad + Ci * S
        _to_grid(src + n * Ci * Hi * Wi, xpad + sp.qh * Wp + sp.qw, Ci, Hi, Wi, Wp, S)
        if floating is float:
            nnl_shifted_gemm_f(wmat, sp.K, off, xpad, Co, P, out, P)
        else:
            nnl_shifted_gemm_d(wmat, sp.K, off, xpad, Co, P, out, P)
        _from_grid(out, dst + n * Co * Ho * Wo, Co, Ho, Wo, Wp, P, bias)


cdef void _shifted_weight_grad(const floating* x, const floating* grad, floating* gw,
                               floating* scratch, floating* partial, Py_ssize_t* off,
                               Py_ssize_t N, Py_ssize_t per_task, Py_ssize_t per_call,
                               Py_ssize_t Pw, int nt, Shifted* sp) noexcept nogil:
    """gw = sum over tasks of per_task samples, in task order, of each task's shifted
    weight-gradient products, per_call samples a call (the lanes are summed once a call).

    Per sample, the input's padded planes (as in the forward) and the output gradient on
    the padded-width grid, Pw pixels a channel, zero between rows.
    """
    cdef Py_ssize_t Ci = sp.Ci, Hi = sp.Hi, Wi = sp.Wi, O = sp.Co, Ho = sp.Ho, Wo = sp.Wo
    cdef Py_ssize_t Wp = sp.Wp, S = sp.S, size = O * sp.K
    cdef Py_ssize_t ntasks = (N + per_task - 1) // per_task
    cdef Py_ssize_t task, n0, end, ns, s
    cdef floating* xpad
    cdef floating* gext
    for task in prange(ntasks, nogil=True, num_threads=nt, schedule='static'):
        # scratch comes zeroed; only the interiors are written, call after call
        xpad = scratch + threadid() * per_call * (Ci * S + O * Pw)
        gext = xpad + per_call * Ci * S
        end = min(N, (task + 1) * per_task)
        memset(partial + task * size, 0, size * sizeof(floating))
        n0 = task * per_task
        while n0 < end:
            ns = min(per_call, end - n0)
            for s in range(ns):
                _to_grid(x + (n0 + s) * Ci * Hi * Wi, xpad + s * Ci * S + sp.qh * Wp + sp.qw,
                         Ci, Hi, Wi, Wp, S)
                _to_grid(grad + (n0 + s) * O * Ho * Wo, gext + s * O * Pw, O, Ho, Wo, Wp, Pw)
            if floating is float:
                nnl_shifted_wgrad_f(gext, Pw, O * Pw, O, xpad, Ci * S, off, sp.K, Pw, ns,
                                    partial + task * size)
            else:
                nnl_shifted_wgrad_d(gext, Pw, O * Pw, O, xpad, Ci * S, off, sp.K, Pw, ns,
                                    partial + task * size)
            n0 = n0 + ns
    _sum_partials(partial, ntasks, size, gw)


cdef cnp.ndarray _tap_offsets(Py_ssize_t planes, Py_ssize_t S, Py_ssize_t Wp, Geometry* g):
    """off[(c, i, j)] = c*S + i*dh*Wp + j*dw: where tap (i, j) of padded plane c reads,
    relative to pixel 0 (planes S elements apart, rows Wp)."""
    c = np.arange(planes, dtype=np.intp)[:, None, None] * S
    i = np.arange(g.kh, dtype=np.intp)[None, :, None] * (g.dh * Wp)
    j = np.arange(g.kw, dtype=np.intp)[None, None, :] * g.dw
    return np.ascontiguousarray((c + i + j).ravel())


cdef Py_ssize_t _shifted_tile(int t) noexcept nogil:
    return nnl_shifted_tile_f() if t == cnp.NPY_FLOAT else nnl_shifted_tile_d()


cdef cnp.ndarray _shifted_scratch(int nt, Shifted* sp, dtype):
    """Per-thread scratch, all zero: the planes' borders and gaps are never written after."""
    return np.zeros(nt * sp.scratch, dtype=dtype)


# ------------------------------------------------------- convolution loops -----

cdef struct Chunking:
    Py_ssize_t samples       # samples per chunk (the last chunk may have fewer)
    Py_ssize_t count         # number of chunks
    Py_ssize_t scratch       # scratch elements per thread: the chunk's columns, then its (O, cols) product


cdef void _forward_gemm(const floating* x, const floating* w, const floating* bias, floating* y,
                        floating* scratch, Chunking* ch, int nt, Geometry* g) noexcept nogil:
    """General convolution: per chunk, im2col, one GEMM per group, then into (n, O, L) order."""
    cdef Py_ssize_t L = g.OH * g.OW, Og = g.O // g.groups, Kg = (g.C // g.groups) * g.kh * g.kw
    cdef Py_ssize_t K = g.C * g.kh * g.kw, G = ch.samples
    cdef Py_ssize_t chunk, n0, nc, grp
    cdef floating* cols
    cdef floating* out
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for chunk in prange(ch.count, nogil=True, num_threads=nt, schedule='static'):
        cols = scratch + threadid() * ch.scratch
        n0 = chunk * G
        nc = min(G, g.N - n0)
        # A one-sample chunk's (O, L) product is already its slice of y.
        out = y + n0 * g.O * L if nc == 1 else cols + K * G * L
        _im2col(x + n0 * g.C * g.H * g.W, cols, nc, g)
        for grp in range(g.groups):
            _gemm_serial(False, False, Og, nc * L, Kg, w + grp * Og * Kg, Kg,
                         cols + grp * Kg * nc * L, nc * L, 0, out + grp * Og * nc * L, nc * L)
        _channels_first_to_batch_first(out, y + n0 * g.O * L, bias, nc, g.O, L)
    _blas_restore_threads(saved)


cdef void _forward_pointwise(const floating* x, const floating* w, const floating* bias,
                             floating* y, Geometry* g) noexcept nogil:
    """1x1, stride 1, no padding: y[n, group] = w[group] @ x[n, group] straight from the input."""
    cdef Py_ssize_t L = g.H * g.W, Og = g.O // g.groups, Cg = g.C // g.groups
    cdef Py_ssize_t n, grp
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for n in range(g.N):
        for grp in range(g.groups):
            _gemm(False, False, Og, L, Cg, <floating*>w + grp * Og * Cg, Cg,
                  <floating*>x + (n * g.C + grp * Cg) * L, L, 0, y + (n * g.O + grp * Og) * L, L)
    _blas_restore_threads(saved)
    if bias != NULL:
        _add_bias(y, bias, g.N, g.O, L)


cdef inline const floating* _padded_plane(const floating* src, floating* scratch, Py_ssize_t H,
                                          Py_ssize_t W, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """The plane with its zero border, in scratch (or the plane itself when there is no border)."""
    cdef Py_ssize_t Wp = W + 2 * pw, ih
    if ph == 0 and pw == 0:
        return src
    memset(scratch, 0, (H + 2 * ph) * Wp * sizeof(floating))
    for ih in range(H):
        memcpy(scratch + (ih + ph) * Wp + pw, src + ih * W, W * sizeof(floating))
    return scratch


# ------------------------------------------------- depthwise, stride 1 -----

# With stride 1 a depthwise convolution is the shifted product with one output row per
# plane (_shifted_gemm.h, nnl_depthwise_plane): the input plane, zero-bordered, read at
# each tap's offset, the taps summed in registers over runs of pixels. The input gradient
# is the same with the kernel flipped, each input plane gathering its `multiplier` output
# planes. Strided depthwise convolutions take the direct loops further below.

cdef struct Planes:
    Py_ssize_t Q, Cin, nin, in_num, in_den   # planes written per sample; planes read per
                                             # sample; read per written plane, from plane
                                             # q * in_num // in_den on
    Py_ssize_t Hi, Wi, qh, qw, Ho, Wo        # read planes, their zero border, written planes
    Py_ssize_t Wp, S, P, K                   # padded row, plane stride, pixels, taps


cdef Planes _planes(Py_ssize_t Q, Py_ssize_t Cin, Py_ssize_t nin, Py_ssize_t in_num,
                    Py_ssize_t in_den, Py_ssize_t Hi, Py_ssize_t Wi, Py_ssize_t qh,
                    Py_ssize_t qw, Py_ssize_t Ho, Py_ssize_t Wo, Geometry* g,
                    Py_ssize_t vector) noexcept nogil:
    cdef Planes pl
    pl.Q, pl.Cin, pl.nin, pl.in_num, pl.in_den = Q, Cin, nin, in_num, in_den
    pl.Hi, pl.Wi, pl.qh, pl.qw, pl.Ho, pl.Wo = Hi, Wi, qh, qw, Ho, Wo
    pl.Wp = Wi + 2 * qw
    pl.P = (Ho * pl.Wp + vector - 1) // vector * vector
    # the last pixels read reach dw*(kw-1) + (P - Ho*Wp) < dw*(kw-1) + vector past the plane
    pl.S = (Hi + 2 * qh) * pl.Wp + g.dw * (g.kw - 1) + vector
    pl.K = nin * g.kh * g.kw
    return pl


cdef void _depthwise_products(const floating* src, const floating* wmat, const floating* bias,
                              floating* dst, floating* scratch, Py_ssize_t* off, Py_ssize_t N,
                              int nt, Planes* pl) noexcept nogil:
    """dst[n, q] = the taps wmat[q] over src[n]'s read planes for q (+ bias[q])."""
    cdef Py_ssize_t Q = pl.Q, Ho = pl.Ho, Wo = pl.Wo, Wp = pl.Wp, P = pl.P
    cdef Py_ssize_t per_thread = pl.nin * pl.S + P
    cdef Py_ssize_t task, n, q
    cdef floating* xpad
    cdef floating* out
    for task in prange(N * Q, nogil=True, num_threads=nt, schedule='static'):
        n = task // Q
        q = task - n * Q
        # scratch comes zeroed; only the planes' interiors are written, task after task
        xpad = scratch + threadid() * per_thread
        out = xpad + pl.nin * pl.S
        _to_grid(src + ((n * pl.Cin + q * pl.in_num // pl.in_den) * pl.Hi) * pl.Wi,
                 xpad + pl.qh * Wp + pl.qw, pl.nin, pl.Hi, pl.Wi, Wp, pl.S)
        if floating is float:
            nnl_depthwise_plane_f(wmat + q * pl.K, pl.K, off, xpad, P, out)
        else:
            nnl_depthwise_plane_d(wmat + q * pl.K, pl.K, off, xpad, P, out)
        _from_grid(out, dst + task * Ho * Wo, 1, Ho, Wo, Wp, P,
                   NULL if bias == NULL else bias + q)


cdef void _depthwise_weight_grad(const floating* grad, const floating* x, floating* gw,
                                 double* partial, floating* scratch, Py_ssize_t* off, int nt,
                                 Planes* pl, Geometry* g) noexcept nogil:
    """Per-(n, o) tap sums (parallel), then summed over n in order in double (serial)."""
    cdef Py_ssize_t N = g.N, O = g.O, OH = g.OH, OW = g.OW, taps = pl.K, P = pl.P
    cdef Py_ssize_t multiplier = g.O // g.C, per_thread = pl.S + P + taps
    cdef Py_ssize_t task, n, o, t
    cdef floating* xpad
    cdef floating* gext
    cdef floating* sums
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        n = task // O
        o = task - n * O
        xpad = scratch + threadid() * per_thread
        gext = xpad + pl.S
        sums = gext + P
        _to_grid(x + ((n * g.C + o // multiplier) * pl.Hi) * pl.Wi,
                 xpad + pl.qh * pl.Wp + pl.qw, 1, pl.Hi, pl.Wi, pl.Wp, pl.S)
        # the output gradient on the padded-width grid; the gaps stay zero
        _to_grid(grad + task * OH * OW, gext, 1, OH, OW, pl.Wp, P)
        memset(sums, 0, taps * sizeof(floating))
        if floating is float:
            nnl_depthwise_wgrad_f(gext, xpad, off, taps, P, sums)
        else:
            nnl_depthwise_wgrad_d(gext, xpad, off, taps, P, sums)
        for t in range(taps):
            partial[task * taps + t] = sums[t]
    _sum_over_samples(partial, N, O * taps, gw)


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


cdef Py_ssize_t _vector(int t) noexcept nogil:
    return nnl_shifted_lanes_f() if t == cnp.NPY_FLOAT else nnl_shifted_lanes_d()


cdef _run_depthwise_products(cnp.ndarray src, cnp.ndarray wmat, cnp.ndarray bias,
                             cnp.ndarray dst, Planes* pl, Geometry* g, int t):
    """Allocate the offsets and the zeroed per-thread scratch, then _depthwise_products."""
    cdef cnp.ndarray off = _tap_offsets(pl.nin, pl.S, pl.Wp, g)
    cdef int nt = threads_for(g.N * pl.Q * pl.P * pl.K)
    cdef cnp.ndarray scratch = np.zeros(nt * (pl.nin * pl.S + pl.P), dtype=src.dtype)
    cdef void* bp = NULL if bias is None else cnp.PyArray_DATA(bias)
    cdef Py_ssize_t* offp = <Py_ssize_t*>cnp.PyArray_DATA(off)
    with nogil:
        if t == cnp.NPY_FLOAT:
            _depthwise_products(<float*>cnp.PyArray_DATA(src), <float*>cnp.PyArray_DATA(wmat),
                                <float*>bp, <float*>cnp.PyArray_DATA(dst),
                                <float*>cnp.PyArray_DATA(scratch), offp, g.N, nt, pl)
        else:
            _depthwise_products(<double*>cnp.PyArray_DATA(src), <double*>cnp.PyArray_DATA(wmat),
                                <double*>bp, <double*>cnp.PyArray_DATA(dst),
                                <double*>cnp.PyArray_DATA(scratch), offp, g.N, nt, pl)


# The strided depthwise loops (stride 1 takes the shifted product above) work on a
# zero-padded copy of each plane (one scratch plane per thread, whole cache lines apart),
# so the inner loops run over whole output rows with no bounds checks.

cdef void _forward_depthwise(const floating* x, const floating* w, const floating* bias,
                             floating* y, floating* scratch, int nt, Geometry* g) noexcept nogil:
    """One input channel per group: y[n, o] = bias[o] + taps of w[o] over x[n, o // multiplier]."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, OH = g.OH, OW = g.OW
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw
    cdef Py_ssize_t dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, HW = H * W, Wp = W + 2 * pw, HWp = _plane_stride(g)
    cdef Py_ssize_t multiplier = O // C
    cdef Py_ssize_t task, n, o, i, j, oh, ow
    cdef floating wv, b
    cdef floating* dst
    cdef floating* d
    cdef const floating* xp
    cdef const floating* base
    cdef const floating* s
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        n = task // O
        o = task - n * O
        dst = y + task * L
        xp = _padded_plane(x + (n * C + o // multiplier) * HW, scratch + threadid() * HWp,
                           H, W, ph, pw)
        b = bias[o] if bias != NULL else 0
        for ow in range(L):
            dst[ow] = b
        for i in range(kh):
            for j in range(kw):
                wv = w[(o * kh + i) * kw + j]
                base = xp + i * dh * Wp + j * dw
                for oh in range(OH):
                    d = dst + oh * OW
                    s = base + oh * sh * Wp
                    if sw == 1:
                        for ow in range(OW):
                            d[ow] = d[ow] + wv * s[ow]
                    else:
                        for ow in range(OW):
                            d[ow] = d[ow] + wv * s[ow * sw]


cdef void _backward_input_gemm(const floating* grad, const floating* w, floating* gx,
                               floating* scratch, Chunking* ch, int nt, Geometry* g) noexcept nogil:
    """Per chunk: grad into (O, cols) order, one GEMM per group back to columns, col2im."""
    cdef Py_ssize_t L = g.OH * g.OW, Og = g.O // g.groups, Kg = (g.C // g.groups) * g.kh * g.kw
    cdef Py_ssize_t K = g.C * g.kh * g.kw, G = ch.samples
    cdef Py_ssize_t chunk, n0, nc, grp
    cdef floating* cols
    cdef const floating* grad_cm
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for chunk in prange(ch.count, nogil=True, num_threads=nt, schedule='static'):
        cols = scratch + threadid() * ch.scratch
        n0 = chunk * G
        nc = min(G, g.N - n0)
        grad_cm = grad + n0 * g.O * L
        if nc > 1:
            _batch_first_to_channels_first(grad + n0 * g.O * L, cols + K * G * L, nc, g.O, L)
            grad_cm = cols + K * G * L
        for grp in range(g.groups):
            _gemm_serial(True, False, Kg, nc * L, Og, w + grp * Og * Kg, Kg,
                         grad_cm + grp * Og * nc * L, nc * L, 0, cols + grp * Kg * nc * L, nc * L)
        _col2im(cols, gx + n0 * g.C * g.H * g.W, nc, g)
    _blas_restore_threads(saved)


cdef void _backward_input_pointwise(const floating* grad, const floating* w, floating* gx,
                                    Geometry* g) noexcept nogil:
    cdef Py_ssize_t L = g.H * g.W, Og = g.O // g.groups, Cg = g.C // g.groups
    cdef Py_ssize_t n, grp
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for n in range(g.N):
        for grp in range(g.groups):
            _gemm(True, False, Cg, L, Og, <floating*>w + grp * Og * Cg, Cg,
                  <floating*>grad + (n * g.O + grp * Og) * L, L, 0, gx + (n * g.C + grp * Cg) * L, L)
    _blas_restore_threads(saved)


cdef void _backward_input_depthwise(const floating* grad, const floating* w, floating* gx,
                                    floating* scratch, int nt, Geometry* g) noexcept nogil:
    """One thread per input plane: its multiplier output planes scatter onto a padded plane."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, OH = g.OH, OW = g.OW
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw
    cdef Py_ssize_t dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, HW = H * W, Wp = W + 2 * pw, HWp = _plane_stride(g)
    cdef Py_ssize_t multiplier = O // C
    cdef Py_ssize_t plane, n, c, m, o, i, j, oh, ow, ih
    cdef floating wv
    cdef floating* gp
    cdef floating* base
    cdef floating* d
    cdef const floating* s
    for plane in prange(N * C, nogil=True, num_threads=nt, schedule='static'):
        n = plane // C
        c = plane - n * C
        gp = scratch + threadid() * HWp
        memset(gp, 0, HWp * sizeof(floating))
        for m in range(multiplier):
            o = c * multiplier + m
            for i in range(kh):
                for j in range(kw):
                    wv = w[(o * kh + i) * kw + j]
                    base = gp + i * dh * Wp + j * dw
                    for oh in range(OH):
                        d = base + oh * sh * Wp
                        s = grad + (n * O + o) * L + oh * OW
                        if sw == 1:
                            for ow in range(OW):
                                d[ow] = d[ow] + wv * s[ow]
                        else:
                            for ow in range(OW):
                                d[ow * sw] = d[ow * sw] + wv * s[ow]
        for ih in range(H):
            memcpy(gx + plane * HW + ih * W, gp + (ih + ph) * Wp + pw, W * sizeof(floating))


cdef void _backward_weight_gemm(const floating* grad, const floating* x, floating* gw,
                                floating* scratch, floating* partial, Chunking* ch,
                                Py_ssize_t per_task, int nt, Geometry* g) noexcept nogil:
    """grad_w = sum over tasks, in task order, of each task's chunks' grad_cm @ cols^T.

    A task is ``per_task`` consecutive chunks, summed into its own partial in
    chunk order; the partials are then added in task order. Both orders depend
    on the shape only.
    """
    cdef Py_ssize_t L = g.OH * g.OW, Og = g.O // g.groups, Kg = (g.C // g.groups) * g.kh * g.kw
    cdef Py_ssize_t K = g.C * g.kh * g.kw, G = ch.samples, size = g.O * Kg
    cdef Py_ssize_t ntasks = (ch.count + per_task - 1) // per_task
    cdef Py_ssize_t task, chunk, n0, nc, grp
    cdef floating* cols
    cdef const floating* grad_cm
    cdef int saved[4]
    if g.N == 0:
        memset(gw, 0, size * sizeof(floating))
        return
    _blas_pin_one_thread(saved)
    for task in prange(ntasks, nogil=True, num_threads=nt, schedule='static'):
        cols = scratch + threadid() * ch.scratch
        for chunk in range(task * per_task, min((task + 1) * per_task, ch.count)):
            n0 = chunk * G
            nc = min(G, g.N - n0)
            _im2col(x + n0 * g.C * g.H * g.W, cols, nc, g)
            grad_cm = grad + n0 * g.O * L
            if nc > 1:
                _batch_first_to_channels_first(grad + n0 * g.O * L, cols + K * G * L, nc, g.O, L)
                grad_cm = cols + K * G * L
            for grp in range(g.groups):
                _gemm_serial(False, True, Og, Kg, nc * L, grad_cm + grp * Og * nc * L, nc * L,
                             cols + grp * Kg * nc * L, nc * L, 0 if chunk == task * per_task else 1,
                             partial + task * size + grp * Og * Kg, Kg)
    _blas_restore_threads(saved)
    _sum_partials(partial, ntasks, size, gw)


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


cdef void _backward_weight_pointwise(const floating* grad, const floating* x, floating* gw,
                                     Geometry* g) noexcept nogil:
    cdef Py_ssize_t L = g.H * g.W, Og = g.O // g.groups, Cg = g.C // g.groups
    cdef Py_ssize_t n, grp
    cdef int saved[4]
    if g.N == 0:
        memset(gw, 0, g.O * Cg * sizeof(floating))
    _blas_pin_one_thread(saved)
    for n in range(g.N):
        for grp in range(g.groups):
            _gemm(False, True, Og, Cg, L, <floating*>grad + (n * g.O + grp * Og) * L, L,
                  <floating*>x + (n * g.C + grp * Cg) * L, L, 0 if n == 0 else 1,
                  gw + grp * Og * Cg, Cg)
    _blas_restore_threads(saved)


cdef void _backward_weight_depthwise(const floating* grad, const floating* x, floating* gw,
                                     double* partial, floating* scratch, double* lanes_all, int nt,
                                     Geometry* g) noexcept nogil:
    """Per-(n, o) tap sums in float64 (parallel), then summed over n in order (serial).

    Each tap's sum runs in OW lanes (one per output column, summed over rows) and the
    lanes are added at the end: independent lanes vectorise, one long chain would not.
    """
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, OH = g.OH, OW = g.OW
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw
    cdef Py_ssize_t dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, HW = H * W, Wp = W + 2 * pw, HWp = _plane_stride(g)
    cdef Py_ssize_t multiplier = O // C, taps = kh * kw
    cdef Py_ssize_t task, n, o, i, j, oh, ow, t
    cdef double acc
    cdef double* lanes
    cdef const floating* xp
    cdef const floating* base
    cdef const floating* gr
    cdef const floating* s
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        n = task // O
        o = task - n * O
        xp = _padded_plane(x + (n * C + o // multiplier) * HW, scratch + threadid() * HWp,
                           H, W, ph, pw)
        lanes = lanes_all + threadid() * OW
        for i in range(kh):
            for j in range(kw):
                base = xp + i * dh * Wp + j * dw
                for ow in range(OW):
                    lanes[ow] = 0
                for oh in range(OH):
                    gr = grad + task * L + oh * OW
                    s = base + oh * sh * Wp
                    if sw == 1:
                        for ow in range(OW):
                            lanes[ow] = lanes[ow] + <double>gr[ow] * <double>s[ow]
                    else:
                        for ow in range(OW):
                            lanes[ow] = lanes[ow] + <double>gr[ow] * <double>s[ow * sw]
                acc = 0
                for ow in range(OW):
                    acc = acc + lanes[ow]
                partial[task * taps + i * kw + j] = acc
    _sum_over_samples(partial, N, O * taps, gw)


cdef void _backward_bias(const floating* grad, floating* gb, double* partial, Py_ssize_t N,
                         Py_ssize_t O, Py_ssize_t L) noexcept nogil:
    """Per-(n, o) plane sums in float64 (parallel), then summed over n in order (serial)."""
    cdef Py_ssize_t task, l, n, o
    cdef double acc
    cdef int nt = threads_for(N * O * L)
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
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

# Validation: a typed fast path for the common well-formed call; anything it does not
# accept goes to the twin's checker, which raises the one shared error message (or
# normalises an unusual but valid spelling, such as a list for a tuple).

cdef tuple _shape4(str op, str name, shape):
    if type(shape) is tuple and shape4_ok(<tuple>shape):
        return <tuple>shape
    return _checks_py.shape4(op, name, shape)


cdef bint _conv_geometry_fast(Geometry* g, tuple x_shape, tuple w_shape, stride, padding,
                              dilation, groups):
    cdef Py_ssize_t cg, extent_h, extent_w
    cdef Py_ssize_t[7] factors
    if (not shape4_ok(x_shape) or not shape4_ok(w_shape) or type(groups) is not int or groups < 1
            or not int_pair(stride, 1, &g.sh, &g.sw) or not int_pair(padding, 0, &g.ph, &g.pw)
            or not int_pair(dilation, 1, &g.dh, &g.dw)):
        return False
    g.N, g.C, g.H, g.W = x_shape
    g.O, cg, g.kh, g.kw = w_shape
    g.groups = groups
    if g.C % g.groups or g.O % g.groups or cg * g.groups != g.C or g.kh < 1 or g.kw < 1:
        return False
    extent_h = g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1
    extent_w = g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1
    if extent_h < 0 or extent_w < 0:  # (C division truncates; the twin's floor decides)
        return False
    g.OH = extent_h // g.sh + 1
    g.OW = extent_w // g.sw + 1
    # Every size the loops compute is a sub-product of one of these two; when either
    # does not fit, the twin's checker (Python's exact integers) raises the error.
    factors[0], factors[1], factors[2], factors[3] = g.N, g.C, g.H + 2 * g.ph, g.W + 2 * g.pw
    if not product_fits(factors, 4):
        return False
    factors[0], factors[1], factors[2], factors[3] = g.N, g.O, g.OH, g.OW
    factors[4], factors[5], factors[6] = cg, g.kh, g.kw
    return product_fits(factors, 7)


cdef int _conv_geometry(Geometry* g, str op, tuple x_shape, tuple w_shape, stride, padding,
                        dilation, groups) except -1:
    if _conv_geometry_fast(g, x_shape, w_shape, stride, padding, dilation, groups):
        return 0
    stride, padding, dilation, groups, out_shape = _reference._conv_geometry(
        op, x_shape, w_shape, stride, padding, dilation, groups)
    g.N, g.C, g.H, g.W = x_shape
    g.O, _, g.kh, g.kw = w_shape
    g.OH, g.OW = out_shape[2], out_shape[3]
    g.sh, g.sw = stride
    g.ph, g.pw = padding
    g.dh, g.dw = dilation
    g.groups = groups
    return 0


cdef int _check_grad(str op, object grad, Geometry* g) except -1:
    shape = grad.shape
    if (len(shape) != 4 or shape[0] != g.N or shape[1] != g.O or shape[2] != g.OH
            or shape[3] != g.OW):
        _reference._conv_check_grad(op, grad, (g.N, g.O, g.OH, g.OW))
    return 0


cdef inline bint _is_depthwise(Geometry* g):
    # groups == C == 1 (one input channel) is a plain convolution, faster as one GEMM
    return g.groups == g.C and g.groups > 1


cdef inline bint _is_pointwise(Geometry* g):
    return g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0 and g.pw == 0


cdef inline Py_ssize_t _plane_stride(Geometry* g) noexcept nogil:
    """Elements between two threads' padded planes: the plane, rounded up to whole cache
    lines (16 elements), so that no line is written by two threads."""
    return ((g.H + 2 * g.ph) * (g.W + 2 * g.pw) + 15) // 16 * 16


cdef cnp.ndarray _plane_scratch(int nt, Geometry* g, dtype):
    """One zero-padded (H + 2*ph, W + 2*pw) plane per thread for the depthwise loops."""
    return np.empty(nt * _plane_stride(g), dtype=dtype)


cdef Chunking _chunking(str op, Geometry* g) except *:
    """Cut the batch into chunks of about CHUNK_COLUMNS output pixels (at least one sample).

    A small batch is still cut into MIN_CHUNKS chunks where it can be, so that
    it has work for several threads; the cut depends on the shape alone.
    """
    cdef Chunking ch
    cdef Py_ssize_t L = g.OH * g.OW, K = g.C * g.kh * g.kw
    ch.samples = CHUNK_COLUMNS // L if L > 0 else 1
    ch.samples = max(1, min(ch.samples, (g.N + MIN_CHUNKS - 1) // MIN_CHUNKS))
    ch.count = (g.N + ch.samples - 1) // ch.samples
    ch.scratch = (K + g.O) * ch.samples * L
    _check_blas_size(op, K, ch.samples * L)
    return ch


cdef int _chunk_threads(Chunking* ch, Geometry* g):
    """Threads for a chunk loop: by the columns' size, never more than there are chunks."""
    return <int>max(1, min(threads_for(g.C * g.kh * g.kw * g.N * g.OH * g.OW), ch.count))


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y = conv2d(x, weight) + bias; x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O,) or None."""
    cdef int t
    cdef Geometry g
    cdef str op = "conv2d"
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
    cdef void* bp = NULL if bc is None else cnp.PyArray_DATA(bc)
    cdef Chunking ch
    cdef int nt
    cdef cnp.ndarray scratch
    if y.size == 0:
        return y
    cdef Planes pl
    cdef Algorithm algorithm = _plan(&g, FORWARD, _shifted_tile(t))
    if algorithm == DEPTHWISE_SHIFTED:
        pl = _planes(g.O, g.C, 1, 1, g.O // g.C, g.H, g.W, g.ph, g.pw, g.OH, g.OW, &g,
                     _vector(t))
        _run_depthwise_products(xc, wc, bc, y, &pl, &g, t)
        return y
    if algorithm == DEPTHWISE_DIRECT:
        nt = threads_for(g.N * g.O * g.OH * g.OW * g.kh * g.kw)
        scratch = _plane_scratch(nt, &g, x.dtype)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _forward_depthwise(<float*>cnp.PyArray_DATA(xc), <float*>cnp.PyArray_DATA(wc),
                                   <float*>bp, <float*>cnp.PyArray_DATA(y),
                                   <float*>cnp.PyArray_DATA(scratch), nt, &g)
            else:
                _forward_depthwise(<double*>cnp.PyArray_DATA(xc), <double*>cnp.PyArray_DATA(wc),
                                   <double*>bp, <double*>cnp.PyArray_DATA(y),
                                   <double*>cnp.PyArray_DATA(scratch), nt, &g)
        return y
    if algorithm == POINTWISE:
        _check_blas_size(op, g.C, g.H * g.W)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _forward_pointwise(<float*>cnp.PyArray_DATA(xc), <float*>cnp.PyArray_DATA(wc),
                                   <float*>bp, <float*>cnp.PyArray_DATA(y), &g)
            else:
                _forward_pointwise(<double*>cnp.PyArray_DATA(xc), <double*>cnp.PyArray_DATA(wc),
                                   <double*>bp, <double*>cnp.PyArray_DATA(y), &g)
        return y
    cdef Shifted sp
    cdef cnp.ndarray off
    if algorithm == SHIFTED:
        sp = _shifted_plan(g.C, g.H, g.W, g.O, g.OH, g.OW, g.ph, g.pw, &g, _shifted_tile(t))
        off = _tap_offsets(sp.Ci, sp.S, sp.Wp, &g)
        nt = <int>max(1, min(threads_for(g.N * g.O * sp.K * sp.P), g.N))
        scratch = _shifted_scratch(nt, &sp, x.dtype)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _shifted_products(<float*>cnp.PyArray_DATA(xc), <float*>cnp.PyArray_DATA(wc),
                                  <float*>bp, <float*>cnp.PyArray_DATA(y),
                                  <float*>cnp.PyArray_DATA(scratch),
                                  <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, nt, &sp)
            else:
                _shifted_products(<double*>cnp.PyArray_DATA(xc), <double*>cnp.PyArray_DATA(wc),
                                  <double*>bp, <double*>cnp.PyArray_DATA(y),
                                  <double*>cnp.PyArray_DATA(scratch),
                                  <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, nt, &sp)
        return y
    ch = _chunking(op, &g)
    nt = _chunk_threads(&ch, &g)
    scratch = np.empty(nt * ch.scratch, dtype=x.dtype)
    with nogil:
        if t == cnp.NPY_FLOAT:
            _forward_gemm(<float*>cnp.PyArray_DATA(xc), <float*>cnp.PyArray_DATA(wc), <float*>bp,
                          <float*>cnp.PyArray_DATA(y), <float*>cnp.PyArray_DATA(scratch), &ch, nt, &g)
        else:
            _forward_gemm(<double*>cnp.PyArray_DATA(xc), <double*>cnp.PyArray_DATA(wc), <double*>bp,
                          <double*>cnp.PyArray_DATA(y), <double*>cnp.PyArray_DATA(scratch), &ch, nt, &g)
    return y


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
    cdef cnp.ndarray scratch
    cdef Chunking ch
    cdef int nt
    if gx.size == 0:
        return gx
    if g.O == 0:
        gx.fill(0)
        return gx
    cdef Planes pl
    cdef Py_ssize_t multiplier = g.O // g.C if g.C else 0
    cdef Algorithm algorithm = _plan(&g, INPUT_GRAD, _shifted_tile(t))
    if algorithm == DEPTHWISE_SHIFTED:
        # each input plane gathers its multiplier output planes' gradients, padded by the
        # kernel's reach less the padding, through the flipped taps
        pl = _planes(g.C, g.O, multiplier, multiplier, 1, g.OH, g.OW, g.dh * (g.kh - 1) - g.ph,
                     g.dw * (g.kw - 1) - g.pw, g.H, g.W, &g, _vector(t))
        wflip = np.ascontiguousarray(
            wc.reshape(g.C, multiplier, g.kh, g.kw)[:, :, ::-1, ::-1]).reshape(g.C, -1)
        _run_depthwise_products(gc, wflip, None, gx, &pl, &g, t)
        return gx
    if algorithm == DEPTHWISE_DIRECT:
        nt = threads_for(g.N * g.O * g.OH * g.OW * g.kh * g.kw)
        scratch = _plane_scratch(nt, &g, grad.dtype)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _backward_input_depthwise(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(wc),
                                          <float*>cnp.PyArray_DATA(gx),
                                          <float*>cnp.PyArray_DATA(scratch), nt, &g)
            else:
                _backward_input_depthwise(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(wc),
                                          <double*>cnp.PyArray_DATA(gx),
                                          <double*>cnp.PyArray_DATA(scratch), nt, &g)
        return gx
    if algorithm == POINTWISE:
        _check_blas_size(op, g.O, g.H * g.W)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _backward_input_pointwise(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(wc),
                                          <float*>cnp.PyArray_DATA(gx), &g)
            else:
                _backward_input_pointwise(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(wc),
                                          <double*>cnp.PyArray_DATA(gx), &g)
        return gx
    cdef Shifted sp
    cdef cnp.ndarray off, flipped
    if algorithm == SHIFTED:
        # gx = the shifted product of the flipped, channel-swapped kernel with grad padded
        # by (kernel reach - padding): w'[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]
        sp = _shifted_plan(g.O, g.OH, g.OW, g.C, g.H, g.W, g.dh * (g.kh - 1) - g.ph,
                           g.dw * (g.kw - 1) - g.pw, &g, _shifted_tile(t))
        off = _tap_offsets(sp.Ci, sp.S, sp.Wp, &g)
        flipped = np.ascontiguousarray(wc[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        nt = <int>max(1, min(threads_for(g.N * g.C * sp.K * sp.P), g.N))
        scratch = _shifted_scratch(nt, &sp, grad.dtype)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _shifted_products(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(flipped),
                                  NULL, <float*>cnp.PyArray_DATA(gx),
                                  <float*>cnp.PyArray_DATA(scratch),
                                  <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, nt, &sp)
            else:
                _shifted_products(<double*>cnp.PyArray_DATA(gc),
                                  <double*>cnp.PyArray_DATA(flipped), NULL,
                                  <double*>cnp.PyArray_DATA(gx),
                                  <double*>cnp.PyArray_DATA(scratch),
                                  <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, nt, &sp)
        return gx
    ch = _chunking(op, &g)
    nt = _chunk_threads(&ch, &g)
    scratch = np.empty(nt * ch.scratch, dtype=grad.dtype)
    with nogil:
        if t == cnp.NPY_FLOAT:
            _backward_input_gemm(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(wc),
                                 <float*>cnp.PyArray_DATA(gx), <float*>cnp.PyArray_DATA(scratch),
                                 &ch, nt, &g)
        else:
            _backward_input_gemm(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(wc),
                                 <double*>cnp.PyArray_DATA(gx), <double*>cnp.PyArray_DATA(scratch),
                                 &ch, nt, &g)
    return gx


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
    cdef cnp.ndarray partial, scratch, lanes
    cdef Chunking ch
    cdef Py_ssize_t per_task
    cdef int nt
    if gw.size == 0:
        return gw
    cdef Planes pl
    cdef cnp.ndarray offsets
    cdef Algorithm algorithm = _plan(&g, WEIGHT_GRAD, _shifted_tile(t))
    if algorithm == DEPTHWISE_SHIFTED:
        pl = _planes(g.O, g.C, 1, 1, g.O // g.C, g.H, g.W, g.ph, g.pw, g.OH, g.OW, &g,
                     _vector(t))
        offsets = _tap_offsets(pl.nin, pl.S, pl.Wp, &g)
        partial = np.empty(g.N * g.O * pl.K, dtype=np.float64)
        nt = threads_for(g.N * g.O * pl.P * pl.K)
        scratch = np.zeros(nt * (pl.S + pl.P + pl.K), dtype=x.dtype)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _depthwise_weight_grad(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(xc),
                                       <float*>cnp.PyArray_DATA(gw),
                                       <double*>cnp.PyArray_DATA(partial),
                                       <float*>cnp.PyArray_DATA(scratch),
                                       <Py_ssize_t*>cnp.PyArray_DATA(offsets), nt, &pl, &g)
            else:
                _depthwise_weight_grad(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(xc),
                                       <double*>cnp.PyArray_DATA(gw),
                                       <double*>cnp.PyArray_DATA(partial),
                                       <double*>cnp.PyArray_DATA(scratch),
                                       <Py_ssize_t*>cnp.PyArray_DATA(offsets), nt, &pl, &g)
        return gw
    if algorithm == DEPTHWISE_DIRECT:
        partial = np.empty(g.N * g.O * g.kh * g.kw, dtype=np.float64)
        nt = threads_for(g.N * g.O * g.OH * g.OW * g.kh * g.kw)
        scratch = _plane_scratch(nt, &g, x.dtype)
        lanes = np.empty(nt * g.OW, dtype=np.float64)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _backward_weight_depthwise(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(xc),
                                           <float*>cnp.PyArray_DATA(gw),
                                           <double*>cnp.PyArray_DATA(partial),
                                           <float*>cnp.PyArray_DATA(scratch),
                                           <double*>cnp.PyArray_DATA(lanes), nt, &g)
            else:
                _backward_weight_depthwise(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(xc),
                                           <double*>cnp.PyArray_DATA(gw),
                                           <double*>cnp.PyArray_DATA(partial),
                                           <double*>cnp.PyArray_DATA(scratch),
                                           <double*>cnp.PyArray_DATA(lanes), nt, &g)
        return gw
    if algorithm == POINTWISE:
        _check_blas_size(op, g.O, g.H * g.W)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _backward_weight_pointwise(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(xc),
                                           <float*>cnp.PyArray_DATA(gw), &g)
            else:
                _backward_weight_pointwise(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(xc),
                                           <double*>cnp.PyArray_DATA(gw), &g)
        return gw
    cdef Shifted sp
    cdef cnp.ndarray off
    cdef Py_ssize_t Pw, vector, per_call
    if algorithm == SHIFTED:
        sp = _shifted_plan(g.C, g.H, g.W, g.O, g.OH, g.OW, g.ph, g.pw, &g, _shifted_tile(t))
        off = _tap_offsets(sp.Ci, sp.S, sp.Wp, &g)
        # the pixels rounded up to whole vectors only (the reduction has no tile of pixels)
        vector = _vector(t)
        Pw = (g.OH * sp.Wp + vector - 1) // vector * vector
        per_task = max(1, (g.N + MAX_WEIGHT_TASKS - 1) // MAX_WEIGHT_TASKS)
        per_call = max(1, min(per_task, SHIFTED_CALL_ELEMENTS // (g.C * sp.S + g.O * Pw)))
        nt = <int>max(1, min(threads_for(g.N * g.O * sp.K * Pw), (g.N + per_task - 1) // per_task))
        scratch = np.zeros(nt * per_call * (g.C * sp.S + g.O * Pw), dtype=x.dtype)
        partial = np.empty(((g.N + per_task - 1) // per_task) * gw.size, dtype=x.dtype)
        with nogil:
            if t == cnp.NPY_FLOAT:
                _shifted_weight_grad(<float*>cnp.PyArray_DATA(xc), <float*>cnp.PyArray_DATA(gc),
                                     <float*>cnp.PyArray_DATA(gw),
                                     <float*>cnp.PyArray_DATA(scratch),
                                     <float*>cnp.PyArray_DATA(partial),
                                     <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, per_task, per_call, Pw,
                                     nt, &sp)
            else:
                _shifted_weight_grad(<double*>cnp.PyArray_DATA(xc), <double*>cnp.PyArray_DATA(gc),
                                     <double*>cnp.PyArray_DATA(gw),
                                     <double*>cnp.PyArray_DATA(scratch),
                                     <double*>cnp.PyArray_DATA(partial),
                                     <Py_ssize_t*>cnp.PyArray_DATA(off), g.N, per_task, per_call, Pw,
                                     nt, &sp)
        return gw
    ch = _chunking(op, &g)
    per_task = max(1, (ch.count + MAX_WEIGHT_TASKS - 1) // MAX_WEIGHT_TASKS)
    nt = <int>max(1, min(_chunk_threads(&ch, &g), (ch.count + per_task - 1) // per_task))
    scratch = np.empty(nt * ch.scratch, dtype=x.dtype)
    partial = np.empty(((ch.count + per_task - 1) // per_task) * gw.size, dtype=x.dtype)
    with nogil:
        if t == cnp.NPY_FLOAT:
            _backward_weight_gemm(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(xc),
                                  <float*>cnp.PyArray_DATA(gw), <float*>cnp.PyArray_DATA(scratch),
                                  <float*>cnp.PyArray_DATA(partial), &ch, per_task, nt, &g)
        else:
            _backward_weight_gemm(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(xc),
                                  <double*>cnp.PyArray_DATA(gw), <double*>cnp.PyArray_DATA(scratch),
                                  <double*>cnp.PyArray_DATA(partial), &ch, per_task, nt, &g)
    return gw


def conv2d_backward_bias(grad):
    """dL/dbias: grad summed over (N, OH, OW) per channel, in float64, in a fixed order."""
    cdef int t
    cdef str op = "conv2d_backward_bias"
    t = same_float_type(op, {"grad": grad})
    if grad.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D grad (N, O, OH, OW), got shape {grad.shape}")
    cdef cnp.ndarray gc = c_contiguous(grad)
    cdef Py_ssize_t N = grad.shape[0], O = grad.shape[1], L = grad.shape[2] * grad.shape[3]
    cdef cnp.ndarray gb = np.empty(O, dtype=grad.dtype)
    cdef cnp.ndarray partial = np.empty(N * O, dtype=np.float64)
    with nogil:
        if t == cnp.NPY_FLOAT:
            _backward_bias(<float*>cnp.PyArray_DATA(gc), <float*>cnp.PyArray_DATA(gb),
                           <double*>cnp.PyArray_DATA(partial), N, O, L)
        else:
            _backward_bias(<double*>cnp.PyArray_DATA(gc), <double*>cnp.PyArray_DATA(gb),
                           <double*>cnp.PyArray_DATA(partial), N, O, L)
    return gb
