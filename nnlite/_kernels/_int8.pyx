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

Why unsigned times signed: x86's integer dot-product instructions (AVX-VNNI's
``vpdpbusd``, and ``vpmaddubsw``) multiply unsigned by signed bytes, and a ReLU
network's activations are mostly non-negative, so all 256 codes of uint8 are used.

The loop: every output element is one dot product of two contiguous rows of
bytes, widened to 16 bits and summed into int32 lanes (the compiler turns the
loop into ``vpmaddwd`` on AVX2, or a VNNI instruction where the CPU has one).
Four weight rows share each pass over an activation row, so each activation
byte is loaded once for four outputs. Threads split the output rows; integer
sums are exact, so the result is the same bytes for any thread count, and the
float epilogue is one multiply and one add per element in float32 (no fused
multiply-add: the build uses ``-ffp-contract=off``), exactly what the NumPy twin
in ``reference_int8.py`` does.

The functions are reached through ``nnlite.quantization`` (this module's
``__all__`` stays empty, so the kernel table does not look for a twin in
``reference.py``).
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport nearbyintf
from libc.stdint cimport int8_t, int16_t, int32_t, uint8_t
from libc.stdlib cimport free, malloc

from nnlite._kernels._threads cimport threads_for

import numpy as np

cnp.import_array()

__all__ = []

# Largest in_features whose int32 sums cannot overflow: 255 * 128 * K < 2**31.
MAX_IN_FEATURES = 65793


cdef inline int32_t _dot16(const int16_t* x, const int16_t* w, Py_ssize_t k) noexcept nogil:
    # 16-bit operands, 32-bit sums: the pattern compilers turn into vpmaddwd (AVX2), which
    # multiplies 16 pairs and adds neighbours into 8 int32 lanes in one instruction.
    cdef int32_t acc = 0
    cdef Py_ssize_t i
    for i in range(k):
        acc = acc + <int32_t>x[i] * <int32_t>w[i]
    return acc


cdef inline void _dot16x4(const int16_t* x, const int16_t* w, Py_ssize_t k, int32_t* out) noexcept nogil:
    # Four weight rows at once: each load of x feeds four multiply-adds, so the loop is
    # bound by arithmetic rather than by loads.
    cdef int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef Py_ssize_t i
    cdef const int16_t* w1 = w + k
    cdef const int16_t* w2 = w + 2 * k
    cdef const int16_t* w3 = w + 3 * k
    for i in range(k):
        a0 = a0 + <int32_t>x[i] * <int32_t>w[i]
        a1 = a1 + <int32_t>x[i] * <int32_t>w1[i]
        a2 = a2 + <int32_t>x[i] * <int32_t>w2[i]
        a3 = a3 + <int32_t>x[i] * <int32_t>w3[i]
    out[0] = a0
    out[1] = a1
    out[2] = a2
    out[3] = a3


cdef inline void _epilogue(int32_t acc, Py_ssize_t m, Py_ssize_t n, Py_ssize_t N, int32_t x_zp,
                           const int32_t* row_sums, const float* mult, const float* bias,
                           float out_scale, int32_t out_zp, bint requant,
                           float* out_f, uint8_t* out_q) noexcept nogil:
    cdef float v = <float>(acc - x_zp * row_sums[n]) * mult[n]
    cdef float q
    if bias != NULL:
        v = v + bias[n]
    if requant:
        q = nearbyintf(v / out_scale) + <float>out_zp
        if q < 0:
            q = 0
        elif q > 255:
            q = 255
        out_q[m * N + n] = <uint8_t>q
    else:
        out_f[m * N + n] = v


cdef int _row_block(const int16_t* x16, const int8_t* w, Py_ssize_t n0, Py_ssize_t M, Py_ssize_t N,
                     Py_ssize_t K, int32_t x_zp, const int32_t* row_sums, const float* mult,
                     const float* bias, float out_scale, int32_t out_zp, bint requant,
                     float* out_f, uint8_t* out_q) noexcept nogil:
    # Output columns n0..n0+3 for every row of x. Their four weight rows are widened to int16
    # once, into a buffer of this call's own (each thread has one), and stay in L1 while every
    # activation row passes by.
    cdef Py_ssize_t n1 = n0 + 4 if n0 + 4 <= N else N
    cdef int16_t* w16 = <int16_t*>malloc(4 * K * sizeof(int16_t) + 1)
    cdef Py_ssize_t i, m, n
    if w16 == NULL:
        return 1
    for i in range((n1 - n0) * K):
        w16[i] = w[n0 * K + i]
    cdef int32_t acc4[4]
    for m in range(M):
        if n1 - n0 == 4:
            _dot16x4(x16 + m * K, w16, K, acc4)
            for n in range(4):
                _epilogue(acc4[n], m, n0 + n, N, x_zp, row_sums, mult, bias, out_scale, out_zp,
                          requant, out_f, out_q)
        else:
            for n in range(n0, n1):
                _epilogue(_dot16(x16 + m * K, w16 + (n - n0) * K, K), m, n, N, x_zp, row_sums, mult,
                          bias, out_scale, out_zp, requant, out_f, out_q)
    free(w16)
    return 0


cdef int _gemm(const int16_t* x16, const int8_t* w, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                int32_t x_zp, const int32_t* row_sums, const float* mult, const float* bias,
                float out_scale, int32_t out_zp, bint requant, float* out_f, uint8_t* out_q,
                int nthreads) noexcept nogil:
    # Threads split the output columns in blocks of four weight rows; every output element
    # is written by exactly one thread.
    cdef Py_ssize_t nblocks = (N + 3) // 4
    cdef Py_ssize_t b
    cdef int failed = 0
    for b in prange(nblocks, num_threads=nthreads, schedule='static'):
        failed += _row_block(x16, w, 4 * b, M, N, K, x_zp, row_sums, mult, bias, out_scale, out_zp,
                             requant, out_f, out_q)
    return failed


cdef cnp.ndarray _checked(str name, object arr, int typenum, str dtype, int ndim):
    if not cnp.PyArray_Check(arr):
        raise TypeError(f"int8_linear: {name} must be a numpy.ndarray of {dtype}, got {type(arr).__name__}")
    if cnp.PyArray_TYPE(<cnp.ndarray>arr) != typenum:
        raise TypeError(f"int8_linear: {name} must be {dtype}, got {arr.dtype}")
    if cnp.PyArray_NDIM(<cnp.ndarray>arr) != ndim:
        raise ValueError(f"int8_linear: {name} must be {ndim}-D, got shape {arr.shape}")
    if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr):
        return <cnp.ndarray>arr
    return cnp.PyArray_GETCONTIGUOUS(<cnp.ndarray>arr)


def int8_linear(x_q, int x_zero_point, w_q, w_row_sums, multiplier, bias=None, out_scale=None,
                int out_zero_point=0):
    """``multiplier[n] * (x_q @ w_q.T - x_zero_point * w_row_sums)[m, n] + bias[n]``.

    ``x_q`` uint8 (M, K); ``w_q`` int8 (N, K); ``w_row_sums`` int32 (N,), the
    sums of ``w_q``'s rows; ``multiplier`` float32 (N,), ``s_x * s_w[n]``;
    ``bias`` float32 (N,) or None. Returns float32 (M, N); with ``out_scale``
    the result requantized to uint8: ``clamp(rint(y / out_scale) + out_zero_point, 0, 255)``.
    """
    cdef cnp.ndarray xa = _checked("x_q", x_q, cnp.NPY_UINT8, "uint8", 2)
    cdef cnp.ndarray wa = _checked("w_q", w_q, cnp.NPY_INT8, "int8", 2)
    cdef cnp.ndarray sa = _checked("w_row_sums", w_row_sums, cnp.NPY_INT32, "int32", 1)
    cdef cnp.ndarray ma = _checked("multiplier", multiplier, cnp.NPY_FLOAT32, "float32", 1)
    cdef cnp.ndarray ba = None
    cdef Py_ssize_t M = xa.shape[0], K = xa.shape[1], N = wa.shape[0]
    if wa.shape[1] != K:
        raise ValueError(f"int8_linear: x_q has {K} features (shape {x_q.shape}) but w_q has "
                         f"{wa.shape[1]} (shape {w_q.shape})")
    if sa.shape[0] != N or ma.shape[0] != N:
        raise ValueError(f"int8_linear: w_row_sums and multiplier need {N} entries (one per row of w_q), "
                         f"got {sa.shape[0]} and {ma.shape[0]}")
    if bias is not None:
        ba = _checked("bias", bias, cnp.NPY_FLOAT32, "float32", 1)
        if ba.shape[0] != N:
            raise ValueError(f"int8_linear: bias needs {N} entries, got {ba.shape[0]}")
    if K > MAX_IN_FEATURES:
        raise ValueError(f"int8_linear: at most {MAX_IN_FEATURES} input features fit int32 sums, got {K}")
    if not 0 <= x_zero_point <= 255 or not 0 <= out_zero_point <= 255:
        raise ValueError(f"int8_linear: zero points must be in [0, 255], got x_zero_point={x_zero_point}, "
                         f"out_zero_point={out_zero_point}")
    cdef bint requant = out_scale is not None
    cdef float oscale = 1.0
    if requant:
        oscale = out_scale
        if not oscale > 0:
            raise ValueError(f"int8_linear: out_scale must be > 0, got {out_scale}")
    cdef cnp.ndarray out = np.empty((M, N), dtype=np.uint8 if requant else np.float32)
    cdef const float* bias_ptr = NULL if ba is None else <const float*>cnp.PyArray_DATA(ba)
    cdef float* out_f = NULL
    cdef uint8_t* out_q = NULL
    if requant:
        out_q = <uint8_t*>cnp.PyArray_DATA(out)
    else:
        out_f = <float*>cnp.PyArray_DATA(out)
    cdef const uint8_t* xp = <const uint8_t*>cnp.PyArray_DATA(xa)
    cdef const int8_t* wp = <const int8_t*>cnp.PyArray_DATA(wa)
    cdef const int32_t* sp = <const int32_t*>cnp.PyArray_DATA(sa)
    cdef const float* mp = <const float*>cnp.PyArray_DATA(ma)
    # An integer multiply-add costs about an eighth of a float element's work in the other
    # kernels (16 of them per vpmaddwd), so the serial threshold is reached 8x later.
    cdef int nthreads = threads_for(M * N * K // 8)
    if M == 0 or N == 0:
        return out
    # The activations widened to int16 once per call (M x K), read by every thread.
    cdef cnp.ndarray x16 = np.empty((M, K), dtype=np.int16)
    cdef int16_t* x16p = <int16_t*>cnp.PyArray_DATA(x16)
    cdef Py_ssize_t i
    cdef int failed
    with nogil:
        for i in range(M * K):
            x16p[i] = xp[i]
        failed = _gemm(x16p, wp, M, N, K, x_zero_point, sp, mp, bias_ptr, oscale, out_zero_point, requant,
              out_f, out_q, nthreads)
    if failed:
        raise MemoryError(f"int8_linear: could not allocate {4 * K * 2} bytes of scratch")
    return out


def quantize_u8(x, float scale, int zero_point):
    """uint8 codes ``clamp(rint(x * (1 / scale)) + zero_point, 0, 255)`` of a float32 array (any shape)."""
    if not cnp.PyArray_Check(x) or cnp.PyArray_TYPE(<cnp.ndarray>x) != cnp.NPY_FLOAT32:
        raise TypeError(f"quantize_u8: x must be a float32 numpy.ndarray, got "
                        f"{x.dtype if cnp.PyArray_Check(x) else type(x).__name__}")
    if not scale > 0:
        raise ValueError(f"quantize_u8: scale must be > 0, got {scale}")
    if not 0 <= zero_point <= 255:
        raise ValueError(f"quantize_u8: zero_point must be in [0, 255], got {zero_point}")
    cdef cnp.ndarray xa = <cnp.ndarray>x if cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x) \
        else cnp.PyArray_GETCONTIGUOUS(<cnp.ndarray>x)
    cdef cnp.ndarray out = np.empty(x.shape, dtype=np.uint8)
    cdef const float* xp = <const float*>cnp.PyArray_DATA(xa)
    cdef uint8_t* op = <uint8_t*>cnp.PyArray_DATA(out)
    cdef float inv = 1.0 / scale
    cdef float zp = zero_point
    cdef float q
    cdef Py_ssize_t i, n = xa.size
    with nogil:
        for i in range(n):
            q = nearbyintf(xp[i] * inv) + zp
            # written so that NaN (no comparison holds) maps to 0, as in the twin
            if q >= 255:
                q = 255
            elif not q >= 0:
                q = 0
            op[i] = <uint8_t>q
    return out
