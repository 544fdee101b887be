# cython: language_level=3
"""The int8 GEMM behind quantized Linear layers: u8 x s8 products, int32 sums, one epilogue.

A quantized Linear keeps its weight as int8 codes ``w_q`` (out_features x
in_features) with one scale per output row (symmetric: zero point 0), and
quantizes each batch of activations to uint8 codes ``x_q`` with a scale ``s_x``
and a zero point ``z_x``. Since ``x ~ s_x (x_q - z_x)`` and ``w ~ s_w[n] w_q``,

    y[m, n] = s_x s_w[n] * sum_k (x_q[m, k] - z_x) w_q[n, k] + b[n]
            = multiplier[n] * (acc[m, n] - z_x * row_sum[n]) + b[n]

with ``acc = sum_k x_q w_q`` summed exactly in int32 and ``row_sum[n] =
sum_k w_q[n, k]`` computed once when the layer is made: the zero point costs one
multiply-subtract per output, not one per product. That last line is the
*epilogue*; with an output scale and zero point it also *requantizes* the result
to uint8 codes, ``clamp(rint(y / s_out) + z_out, 0, 255)``, for a next quantized layer.

Why unsigned times signed: x86's integer dot-product instructions (VNNI's
``vpdpbusd``, and ``vpmaddubsw``) multiply unsigned by signed bytes, and a ReLU
network's activations are mostly non-negative, so all 256 codes of uint8 are used.

The loop is a small GEMM with a register tile, as in ``_gemm.pyx``'s
``gemm_tiled``, but with no horizontal sums. The weight is *packed* once, when
the layer is made (:func:`pack_int8_weight`): panels of 8 output columns, and in
each panel, for every four k, the 32 bytes "8 columns x 4 k". One 256-bit load
of them is the operand of ``vpdpbusd``, which multiplies each column's four
bytes with four activation codes broadcast to every lane and adds the four
products to that column's int32 lane. A tile keeps 4 rows x 16 columns (two
panels) of sums in 8 registers while k runs, so each weight load feeds 4 rows
and each activation load 16 columns; the sums come out one column per lane,
ready for the epilogue. A tile's rows of codes stay in L1 while the panels
stream past them from L2. Threads split the panels (a contiguous run each, so
each thread's weights stay in its own cache); every output element is written
by one thread.

``simd_path()`` says which dot step the build has (``_int8_dot.h``), chosen at
compile time from the target's instruction set:

* ``"AVX-VNNI"`` / ``"AVX512-VNNI"`` (e.g. Alder Lake and later, Ice Lake
  and Sapphire Rapids Xeons, Zen 4): ``vpdpbusd`` itself, for 8-bit and 7-bit
  codes alike (it sums four products straight into int32: nothing saturates).
* ``"AVX2"`` (Haswell to Zen 3): the same loop with ``vpdpbusd`` emulated
  exactly: 8-bit codes stored as int16 pairs, weight bytes split into even and
  odd ones, two ``vpmaddwd``. With 7-bit codes (``reduce_range``) the bytes go
  to ``vpmaddubsw`` (32 products; two of them fit int16 since 2 * 127 * 128 <
  2**15) and ``vpmaddwd`` by ones: as many multiply instructions, but no
  splitting of the weight bytes, one add instead of two, and half the bytes of
  codes to read.
* ``"portable"``: plain C loops on the packed layout.

Integer sums are exact, so the result is the same bytes for any thread count,
path and lane order, and the float epilogue is one multiply and one add per
element in float32 (no fused multiply-add: the build uses
``-ffp-contract=off``), exactly what the NumPy twin in ``reference/_int8.py``
does.

``quantized_linear`` is a whole quantized Linear in one call on float32 input:
the input's min and max (dynamic) or given qparams (static), its codes written
straight into the layout the tile reads, the GEMM, the epilogue with an
optional ReLU. ``int8_linear`` takes codes already made and a plain ``w_q``
(packed on the way in), and can requantize its output.

The five kernels are rows of the kernel table (``table.py``): the quantized
layers call ``K.quantized_linear`` and so on, like every other op, and
``set_backend("reference")`` swaps in their twins. ``simd_path`` reports on
the build, so it stays outside the table.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport INFINITY, nearbyintf
from libc.stdlib cimport free, malloc
from libc.stdint cimport int8_t, int16_t, int32_t, uint8_t

from nnlite._kernels._checks cimport flag as _flag, float32_number as _float32, integer as _integer
from nnlite._kernels._threads cimport threads_for
from nnlite._kernels.reference import _int8 as twin

import numpy as np

cnp.import_array()

__all__ = ["pack_int8_weight", "int8_linear", "quantize_u8", "dynamic_qparams", "quantized_linear"]

# Largest in_features whose int32 sums cannot overflow: 255 * 128 * K < 2**31.
cdef Py_ssize_t _MAX_K = 65793
MAX_IN_FEATURES = _MAX_K


cdef extern from "_int8_dot.h":
    int NNL_MR, NNL_NR
    float FLT_EPSILON
    const char* nnl_int8_path()
    size_t nnl_code_size(int seven) noexcept nogil
    void nnl_tile_rows(int rows, int seven, int two, const void* codes, Py_ssize_t m0, Py_ssize_t stride,
                       const int8_t* panel, Py_ssize_t groups, int32_t* out) noexcept nogil
    void nnl_epilogue(const int32_t* acc, int rows, int cols, int32_t x_zp, const int32_t* row_sums,
                      const float* mult, const float* bias, int relu, float* out, Py_ssize_t stride) noexcept nogil
    void nnl_pack_weight(const int8_t* w, Py_ssize_t N, Py_ssize_t K, int8_t* out) noexcept nogil
    void nnl_range_f32(const float* x, Py_ssize_t n, float* lo, float* hi, int* has_nan) noexcept nogil
    void nnl_quantize_row(const float* x, Py_ssize_t k, Py_ssize_t k4, float inv, float zp, float qmax,
                          int words, void* out) noexcept nogil
    void nnl_copy_codes(const uint8_t* x, Py_ssize_t m, Py_ssize_t k, Py_ssize_t k4, int words,
                        void* out) noexcept nogil


def simd_path():
    """The dot step this build runs: "AVX-VNNI", "AVX512-VNNI", "AVX2" (vpdpbusd emulated) or "portable"."""
    return nnl_int8_path().decode()


cdef void _panels(const void* codes, bint seven, const int8_t* packed, Py_ssize_t p0, Py_ssize_t p1,
                  Py_ssize_t M, Py_ssize_t N, Py_ssize_t groups, int32_t x_zp, const int32_t* row_sums,
                  const float* mult, const float* bias, float out_scale, int32_t out_zp, bint requant, bint relu,
                  float* out_f, uint8_t* out_q) noexcept nogil:
    # Columns 8 p0 .. 8 p1 - 1 for every row: NNL_MR rows at a time (their codes stay in L1)
    # against the panels two by two (they stream from L2 in one sequential run), the last one
    # alone when the run is odd. The sums live on this call's stack, one per thread.
    cdef int32_t acc[2 * 4 * 8]      # two panels of NNL_MR x NNL_NR
    cdef Py_ssize_t m = 0, p, q, rows
    cdef bint two
    while m < M:
        rows = min(NNL_MR, M - m)
        for p in range(p0, p1, 2):
            two = p + 1 < p1
            nnl_tile_rows(<int>rows, seven, two, codes, m, 4 * groups, packed + 32 * groups * p, groups, acc)
            for q in range(2 if two else 1):
                _epilogue(acc + NNL_MR * NNL_NR * q, m, rows, p + q, N, x_zp, row_sums, mult, bias, out_scale,
                          out_zp, requant, relu, out_f, out_q)
        m += rows


cdef inline void _epilogue(const int32_t* acc, Py_ssize_t m, Py_ssize_t rows, Py_ssize_t p, Py_ssize_t N,
                           int32_t x_zp, const int32_t* row_sums, const float* mult, const float* bias,
                           float out_scale, int32_t out_zp, bint requant, bint relu, float* out_f,
                           uint8_t* out_q) noexcept nogil:
    # Rows m .. m + rows - 1 of panel p: float32 straight into the output, or through `values`
    # rounded to the next layer's codes, clamp(rint(y / s_out) + z_out, 0, 255).
    cdef float values[4 * 8]
    cdef float v
    cdef Py_ssize_t n0 = NNL_NR * p, cols = min(NNL_NR, N - NNL_NR * p), r, c
    cdef const float* b = NULL
    if bias != NULL:      # an if statement: a conditional expression would drop the const
        b = bias + n0
    if not requant:
        nnl_epilogue(acc, <int>rows, <int>cols, x_zp, row_sums + n0, mult + n0, b, relu, out_f + m * N + n0, N)
        return
    nnl_epilogue(acc, <int>rows, <int>cols, x_zp, row_sums + n0, mult + n0, b, relu, values, NNL_NR)
    for r in range(rows):
        for c in range(cols):
            v = nearbyintf(values[NNL_NR * r + c] / out_scale) + <float>out_zp
            if v < 0:
                v = 0
            elif v > 255:
                v = 255
            out_q[(m + r) * N + n0 + c] = <uint8_t>v


cdef void _gemm(const void* codes, bint seven, const int8_t* packed, Py_ssize_t M, Py_ssize_t N,
                Py_ssize_t groups, int32_t x_zp, const int32_t* row_sums, const float* mult, const float* bias,
                float out_scale, int32_t out_zp, bint requant, bint relu, float* out_f, uint8_t* out_q,
                int nthreads) noexcept nogil:
    # Thread t takes panels [t P / T, (t + 1) P / T): a contiguous run, so its weights stay in its
    # own cache. One thread skips the parallel region: entering it costs about a microsecond,
    # as much as a batch-1 layer's sums.
    cdef Py_ssize_t panels = (N + NNL_NR - 1) // NNL_NR
    cdef Py_ssize_t t
    if nthreads > panels:     # a thread without a panel would only cost its wake-up
        nthreads = <int>panels
    if nthreads == 1:
        _panels(codes, seven, packed, 0, panels, M, N, groups, x_zp, row_sums, mult, bias, out_scale, out_zp,
                requant, relu, out_f, out_q)
        return
    for t in prange(nthreads, num_threads=nthreads, schedule='static'):
        _panels(codes, seven, packed, t * panels // nthreads, (t + 1) * panels // nthreads, M, N, groups, x_zp,
                row_sums, mult, bias, out_scale, out_zp, requant, relu, out_f, out_q)


cdef inline int _threads_for(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K) noexcept nogil:
    # A second thread pays once its half of the sums outlasts waking it. One thread does about
    # 60 G multiply-adds a second here (AMD EPYC, AVX2), and a wake-up measured ~25 us on a
    # 2-core VM whose other core was busy, so a layer needs some 2 M multiply-adds (~35 us):
    # 1/64 of a unit of the shared serial threshold (elements of float work) per multiply-add.
    return threads_for(M * N * K // 64)


cdef _refuse(twin_fn, tuple args):
    # An argument failed the fast checks: the twin's checks raise the error, so both backends
    # word it the same. Should the twin find nothing wrong, the compiled loop still must not run.
    twin_fn(*args)
    raise ValueError(f"{twin_fn.__name__}: arguments the compiled kernel cannot take")


cdef inline bint _is(object arr, int typenum, int ndim):
    # the fast test of one operand (on failure: _refuse)
    return (cnp.PyArray_Check(arr) and cnp.PyArray_TYPE(<cnp.ndarray>arr) == typenum
            and not cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>arr) and cnp.PyArray_NDIM(<cnp.ndarray>arr) == ndim)


cdef inline cnp.ndarray _contiguous(object arr):
    if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr):
        return <cnp.ndarray>arr
    return cnp.PyArray_GETCONTIGUOUS(<cnp.ndarray>arr)


cdef inline Py_ssize_t _vector_length(object arr):
    return cnp.PyArray_DIMS(<cnp.ndarray>arr)[0]


def pack_int8_weight(w_q):
    """``w_q`` int8 (N, K) rearranged for the tile: int8 ``(ceil(N / 8), ceil(K / 4), 8, 4)``.

    ``packed[p, g, c, j] = w_q[8 p + c, 4 g + j]``, zero where that is past the
    end: panels of 8 output columns, four k at a time (see the module docstring).
    """
    if not _is(w_q, cnp.NPY_INT8, 2):
        _refuse(twin.pack_int8_weight, (w_q,))
    cdef cnp.ndarray wa = _contiguous(w_q)
    cdef Py_ssize_t N = wa.shape[0], K = wa.shape[1]
    cdef cnp.ndarray out = np.empty(((N + 7) // 8, (K + 3) // 4, 8, 4), np.int8)
    if cnp.PyArray_SIZE(out) == 0:    # no bytes to write, however many panels of none
        return out
    with nogil:
        nnl_pack_weight(<const int8_t*>cnp.PyArray_DATA(wa), N, K, <int8_t*>cnp.PyArray_DATA(out))
    return out


def int8_linear(x_q, x_zero_point, w_q, w_row_sums, multiplier, bias=None, out_scale=None, out_zero_point=0):
    """``multiplier[n] * (x_q @ w_q.T - x_zero_point * w_row_sums)[m, n] + bias[n]``.

    ``x_q`` uint8 (M, K); ``w_q`` int8 (N, K), packed on each call; ``w_row_sums``
    int32 (N,), the sums of ``w_q``'s rows; ``multiplier`` float32 (N,), ``s_x * s_w[n]``;
    ``bias`` float32 (N,) or None. Returns float32 (M, N); with ``out_scale``
    the result requantized to uint8: ``clamp(rint(y / out_scale) + out_zero_point, 0, 255)``.
    """
    op = "int8_linear"
    if not (_is(x_q, cnp.NPY_UINT8, 2) and _is(w_q, cnp.NPY_INT8, 2) and _is(w_row_sums, cnp.NPY_INT32, 1)
            and _is(multiplier, cnp.NPY_FLOAT32, 1) and (bias is None or _is(bias, cnp.NPY_FLOAT32, 1))
            and w_q.shape[1] == x_q.shape[1] and _vector_length(w_row_sums) == w_q.shape[0]
            and _vector_length(multiplier) == w_q.shape[0]
            and (bias is None or _vector_length(bias) == w_q.shape[0]) and x_q.shape[1] <= _MAX_K):
        _refuse(twin.int8_linear, (x_q, x_zero_point, w_q, w_row_sums, multiplier, bias, out_scale, out_zero_point))
    # the scalars in the twin's order, each checked as the twin checks it (checks.py)
    cdef int32_t x_zp = <int32_t>_integer(op, x_zero_point, "x_zero_point", 0, 255, None)
    cdef int32_t out_zp = <int32_t>_integer(op, out_zero_point, "out_zero_point", 0, 255, None)
    cdef bint requant = out_scale is not None
    cdef float oscale = _float32(op, out_scale, "out_scale", True) if requant else 1.0
    cdef cnp.ndarray xa = _contiguous(x_q), sa = _contiguous(w_row_sums), ma = _contiguous(multiplier)
    cdef cnp.ndarray ba = None if bias is None else _contiguous(bias)
    cdef Py_ssize_t M = xa.shape[0], K = xa.shape[1], N = w_q.shape[0], K4 = (K + 3) // 4 * 4
    cdef cnp.ndarray out = np.empty((M, N), dtype=np.uint8 if requant else np.float32)
    if M == 0 or N == 0:
        return out
    cdef cnp.ndarray packed = pack_int8_weight(w_q)
    cdef const float* bias_ptr = NULL   # an if statement, not a conditional expression: Cython's
    if ba is not None:                    # temporary for the latter drops the const (a gcc warning)
        bias_ptr = <const float*>cnp.PyArray_DATA(ba)
    cdef float* out_f = NULL
    cdef uint8_t* out_q = NULL
    if requant:
        out_q = <uint8_t*>cnp.PyArray_DATA(out)
    else:
        out_f = <float*>cnp.PyArray_DATA(out)
    cdef int words = nnl_code_size(0) == 2
    cdef void* codes = malloc(M * K4 * nnl_code_size(0) + 1)   # + 1: K = 0 asks for no bytes, and
                                                              # malloc(0) may return NULL
    if codes == NULL:
        raise MemoryError("int8_linear: no memory for the activation codes")
    cdef int nthreads = _threads_for(M, N, K)
    with nogil:
        nnl_copy_codes(<const uint8_t*>cnp.PyArray_DATA(xa), M, K, K4, words, codes)
        _gemm(codes, False, <const int8_t*>cnp.PyArray_DATA(packed), M, N, K4 // 4, x_zp,
              <const int32_t*>cnp.PyArray_DATA(sa), <const float*>cnp.PyArray_DATA(ma), bias_ptr, oscale,
              out_zp, requant, False, out_f, out_q, nthreads)
    free(codes)
    return out


def quantize_u8(x, scale, zero_point):
    """uint8 codes ``clamp(rint(x * (1 / scale)) + zero_point, 0, 255)`` of a float32 array (any shape)."""
    if (not cnp.PyArray_Check(x) or cnp.PyArray_TYPE(<cnp.ndarray>x) != cnp.NPY_FLOAT32
            or cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>x)):
        _refuse(twin.quantize_u8, (x, scale, zero_point))
    cdef float scale_ = _float32("quantize_u8", scale, "scale", True)
    cdef int zp = <int>_integer("quantize_u8", zero_point, "zero_point", 0, 255, None)
    cdef cnp.ndarray xa = _contiguous(x)
    cdef cnp.ndarray out = np.empty(x.shape, dtype=np.uint8)
    cdef Py_ssize_t n = xa.size
    with nogil:   # one long row of byte codes
        nnl_quantize_row(<const float*>cnp.PyArray_DATA(xa), n, n, <float>1.0 / scale_, zp, 255.0, 0,
                         cnp.PyArray_DATA(out))
    return out


cdef inline void _qparams(float lo, float hi, float qmax, float* scale, float* zp) noexcept nogil:
    # calculate_qparams (affine, codes 0..qmax) in float32 steps: the range widened to contain 0,
    # scale (hi - lo) / qmax (at least float32's eps), zero point -rint(lo / scale) clamped.
    if lo > 0:
        lo = 0
    if hi < 0:
        hi = 0
    cdef float s = (hi - lo) / qmax
    if s < FLT_EPSILON:
        s = FLT_EPSILON
    cdef float z = -nearbyintf(lo / s)
    scale[0] = s
    zp[0] = 0 if z < 0 else (qmax if z > qmax else z)



def dynamic_qparams(lo, hi, reduce_range=False):
    """Affine ``(scale, zero_point)`` for codes 0..255 (0..127 with ``reduce_range``) of ``[min(lo, 0), max(hi, 0)]``.

    In float32 steps, with ``q_max`` 255 or 127: ``scale = max((hi - lo) / q_max, eps)``,
    ``zero_point = clamp(-rint(lo / scale), 0, q_max)``: what :func:`quantized_linear`
    computes from each batch's min and max.
    """
    cdef float scale, zp
    cdef float lo_ = _float32("dynamic_qparams", lo, "lo"), hi_ = _float32("dynamic_qparams", hi, "hi")
    cdef bint seven = _flag("dynamic_qparams", reduce_range, "reduce_range")
    _qparams(lo_, hi_, 127.0 if seven else 255.0, &scale, &zp)
    return float(scale), int(zp)



def quantized_linear(x, w_packed, w_row_sums, w_scale, bias=None, x_scale=None, x_zero_point=0, relu=False,
                     reduce_range=False):
    """A quantized Linear on float32 input, in one call: quantize, u8 x s8 GEMM, epilogue.

    ``x`` float32 (M, K). With ``x_scale=None`` (dynamic quantization) the
    scale and zero point come from this batch's min and max
    (:func:`dynamic_qparams`; the input must then be finite, and its range
    ``max(x, 0) - min(x, 0)`` must fit float32, or ValueError), else they are
    ``x_scale`` and ``x_zero_point`` (static, from QAT). The codes are
    ``clamp(rint(x / s_x) + z_x, 0, 255)``. With ``reduce_range=True``
    (dynamic only) they use 7 bits, ``clamp(..., 0, 127)``, as PyTorch's x86
    dynamic Linear does: without VNNI the kernel then multiplies them with
    ``vpmaddubsw`` (fewer instructions than the exact 8-bit emulation of
    ``vpdpbusd``), for twice the activation rounding step.
    Then ``y[m, n] = (s_x * w_scale[n]) * (acc[m, n] - z_x * w_row_sums[n]) + bias[n]``,
    and ``max(y, 0)`` with ``relu=True``. ``w_packed`` is
    :func:`pack_int8_weight` of the int8 ``w_q`` (N, K); ``w_row_sums`` int32
    (N,), the sums of ``w_q``'s rows; ``w_scale`` and ``bias`` float32 (N,).
    Returns float32 (M, N).
    """
    cdef Py_ssize_t M, K, N, K4
    if not (_is(x, cnp.NPY_FLOAT32, 2) and _is(w_packed, cnp.NPY_INT8, 4) and _is(w_row_sums, cnp.NPY_INT32, 1)
            and _is(w_scale, cnp.NPY_FLOAT32, 1) and (bias is None or _is(bias, cnp.NPY_FLOAT32, 1))):
        _refuse(twin.quantized_linear, (x, w_packed, w_row_sums, w_scale, bias, x_scale, x_zero_point, relu,
                                        reduce_range))
    cdef cnp.npy_intp* wd = cnp.PyArray_DIMS(<cnp.ndarray>w_packed)
    M, K, N = cnp.PyArray_DIMS(<cnp.ndarray>x)[0], cnp.PyArray_DIMS(<cnp.ndarray>x)[1], _vector_length(w_row_sums)
    K4 = (K + 3) // 4 * 4
    if (wd[0] != (N + 7) // 8 or wd[1] != K4 // 4 or wd[2] != 8 or wd[3] != 4 or _vector_length(w_scale) != N
            or (bias is not None and _vector_length(bias) != N) or K > _MAX_K):
        _refuse(twin.quantized_linear, (x, w_packed, w_row_sums, w_scale, bias, x_scale, x_zero_point, relu,
                                        reduce_range))
    # the scalars in the twin's order, each checked as the twin checks it (checks.py)
    op = "quantized_linear"
    cdef bint relu_ = _flag(op, relu, "relu"), seven = _flag(op, reduce_range, "reduce_range")
    cdef int32_t x_zp = <int32_t>_integer(op, x_zero_point, "x_zero_point", 0, 255, None)
    if seven and x_scale is not None:
        _refuse(twin.quantized_linear, (x, w_packed, w_row_sums, w_scale, bias, x_scale, x_zero_point, relu,
                                        reduce_range))
    cdef cnp.ndarray xa = _contiguous(x), wa = _contiguous(w_packed), sa = _contiguous(w_row_sums)
    cdef cnp.ndarray ca = _contiguous(w_scale)
    cdef cnp.ndarray ba = None if bias is None else _contiguous(bias)
    cdef float sx = 1.0, zx = 0.0, lo, hi
    cdef float qmax = 127.0 if seven else 255.0
    cdef int has_nan
    cdef const float* xp = <const float*>cnp.PyArray_DATA(xa)
    if x_scale is None:
        if M * K:
            with nogil:
                nnl_range_f32(xp, M * K, &lo, &hi, &has_nan)
            if has_nan or lo == -INFINITY or hi == INFINITY:
                _refuse(twin.quantized_linear, (x, w_packed, w_row_sums, w_scale, bias, x_scale, x_zero_point,
                                                relu, reduce_range))
            _qparams(lo, hi, qmax, &sx, &zx)
            if sx == INFINITY:   # max - min beyond float32 (inputs near +-3e38): the twin's error
                _refuse(twin.quantized_linear, (x, w_packed, w_row_sums, w_scale, bias, x_scale, x_zero_point,
                                                relu, reduce_range))
    else:
        sx = _float32(op, x_scale, "x_scale", True)
        zx = x_zp
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, [M, N], cnp.NPY_FLOAT32, 0)
    if M == 0 or N == 0:
        return out
    cdef int nthreads = _threads_for(M, N, K)
    cdef const float* bias_ptr = NULL   # an if statement, not a conditional expression: Cython's
    if ba is not None:                    # temporary for the latter drops the const (a gcc warning)
        bias_ptr = <const float*>cnp.PyArray_DATA(ba)
    cdef const float* cp = <const float*>cnp.PyArray_DATA(ca)
    # One scratch block: the activation codes (M x K4 in the tile's layout), then the N
    # multipliers s_x * w_scale[n].
    cdef size_t code_bytes = M * K4 * nnl_code_size(seven)
    cdef char* scratch = <char*>malloc(code_bytes + N * sizeof(float) + 16)
    if scratch == NULL:
        raise MemoryError("quantized_linear: no memory for the quantized input")
    cdef float* mult = <float*>(scratch + ((code_bytes + 15) // 16) * 16)
    cdef int words = nnl_code_size(seven) == 2
    cdef float inv = <float>1.0 / sx
    cdef Py_ssize_t n, m
    with nogil:
        for m in range(M):
            nnl_quantize_row(xp + m * K, K, K4, inv, zx, qmax, words, scratch + m * K4 * nnl_code_size(seven))
        for n in range(N):
            mult[n] = sx * cp[n]
        _gemm(scratch, seven, <const int8_t*>cnp.PyArray_DATA(wa), M, N, K4 // 4, <int32_t>zx,
              <const int32_t*>cnp.PyArray_DATA(sa), mult, bias_ptr, 1.0, 0, False, relu_,
              <float*>cnp.PyArray_DATA(out), NULL, nthreads)
    free(scratch)
    return out
