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
from libc.stdint cimport int8_t, int32_t, uint8_t

from nnlite._kernels._threads cimport threads_for

import numpy as np

cnp.import_array()

__all__ = []

# Largest in_features whose int32 sums cannot overflow: 255 * 128 * K < 2**31.
MAX_IN_FEATURES = 65793


cdef inline int32_t _dot(const uint8_t* x, const int8_t* w, Py_ssize_t k) noexcept nogil:
    cdef int32_t acc = 0
    cdef Py_ssize_t i
    for i in range(k):
        acc += <int32_t>x[i] * <int32_t>w[i]
    return acc


cdef inline void _dot4(const uint8_t* x, const int8_t* w, Py_ssize_t k, int32_t* acc) noexcept nogil:
    # Four weight rows (k apart) against one activation row: x[i] is loaded once for four sums.
    cdef int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef Py_ssize_t i
    cdef int32_t xi
    for i in range(k):
        xi = x[i]
        a0 += xi * w[i]
        a1 += xi * w[k + i]
        a2 += xi * w[2 * k + i]
        a3 += xi * w[3 * k + i]
    acc[0] = a0
    acc[1] = a1
    acc[2] = a2
    acc[3] = a3


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


cdef void _row_block(const uint8_t* x, const int8_t* w, Py_ssize_t n, Py_ssize_t M, Py_ssize_t N,
                     Py_ssize_t K, int32_t x_zp, const int32_t* row_sums, const float* mult,
                     const float* bias, float out_scale, int32_t out_zp, bint requant,
                     float* out_f, uint8_t* out_q) noexcept nogil:
    # Output columns n..n+3 for every row of x. The four sums live on this call's stack, so
    # each thread has its own (an array declared in the function holding the prange would be shared).
    cdef int32_t acc4[4]
    cdef Py_ssize_t m, j
    if n + 4 <= N:
        for m in range(M):
            _dot4(x + m * K, w + n * K, K, acc4)
            for j in range(4):
                _epilogue(acc4[j], m, n + j, N, x_zp, row_sums, mult, bias, out_scale, out_zp,
                          requant, out_f, out_q)
    else:
        for j in range(n, N):
            for m in range(M):
                _epilogue(_dot(x + m * K, w + j * K, K), m, j, N, x_zp, row_sums, mult, bias,
                          out_scale, out_zp, requant, out_f, out_q)


cdef void _gemm(const uint8_t* x, const int8_t* w, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                int32_t x_zp, const int32_t* row_sums, const float* mult, const float* bias,
                float out_scale, int32_t out_zp, bint requant, float* out_f, uint8_t* out_q,
                int nthreads) noexcept nogil:
    # Threads split the output columns in blocks of four weight rows; every output element
    # is written by exactly one thread.
    cdef Py_ssize_t nblocks = (N + 3) // 4
    cdef Py_ssize_t b
    for b in prange(nblocks, num_threads=nthreads, schedule='static'):
        _row_block(x, w, 4 * b, M, N, K, x_zp, row_sums, mult, bias, out_scale, out_zp, requant,
                   out_f, out_q)


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
    cdef int nthreads = threads_for(M * N * K)
    if M == 0 or N == 0:
        return out
    with nogil:
        _gemm(xp, wp, M, N, K, x_zero_point, sp, mp, bias_ptr, oscale, out_zero_point, requant,
              out_f, out_q, nthreads)
    return out
