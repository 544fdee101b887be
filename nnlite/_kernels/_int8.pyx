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

The loop: every output element is one dot product of two contiguous rows,
activations widened to int16 once per call, weights widened on the fly. With
AVX2 (``nnl_dot_4xn`` below) each step takes 16 columns of four weight rows and
one or two activation rows and does 8 ``vpmaddwd`` (16 products each, summed in
pairs into int32 lanes), so each weight load feeds two rows of output and each
activation load four; without AVX2 the same sums run as plain loops. Threads
split the output rows in blocks of four; integer sums are exact, so the result
is the same bytes for any thread count and lane order, and the float epilogue
is one multiply and one add per element in float32 (no fused multiply-add: the
build uses ``-ffp-contract=off``), exactly what the NumPy twin in
``reference/_int8.py`` does. ``simd_path()`` says which path was built.

``quantized_linear`` is a whole quantized Linear in one call on float32 input:
the input's min and max (dynamic) or given qparams (static), its codes written
straight into the layout the dot products read, the GEMM, the epilogue with an
optional ReLU. With 7-bit activation codes (``reduce_range``) the dot products
read bytes instead: ``vpmaddubsw`` multiplies 32 u8 x s8 pairs and adds
neighbours in int16 (exact, since 2 * 127 * 128 < 2**15), ``vpmaddwd`` by ones
widens to int32 (``nnl_dot7_4xn``).

The four kernels are rows of the kernel table (``table.py``): the quantized
layers call ``K.quantized_linear`` and so on, like every other op, and
``set_backend("reference")`` swaps in their twins. ``simd_path`` reports on
the build, so it stays outside the table.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport INFINITY, nearbyintf
from libc.stdlib cimport free, malloc
from libc.stdint cimport int8_t, int16_t, int32_t, uint8_t

from nnlite._kernels._threads cimport threads_for

import numpy as np

cnp.import_array()

__all__ = ["int8_linear", "quantize_u8", "dynamic_qparams", "quantized_linear"]

# Largest in_features whose int32 sums cannot overflow: 255 * 128 * K < 2**31.
MAX_IN_FEATURES = 65793


cdef extern from *:
    """
    /* Dot products of int16 activation rows with int8 weight rows, summed in int32.
       With AVX2 each step widens 16 weights of each of four rows to int16
       (vpmovsxbw) and multiplies them with 16 activations of one or two rows
       (vpmaddwd: 16 products, neighbours added, into 8 int32 lanes): 4 or 8 sums
       advance together, so every load feeds several multiply-adds. Without AVX2
       the same sums run as plain loops (which the compiler vectorises as it can).
       Integer sums are exact, so the lane order changes nothing: same bytes as the twin. */
    #include <string.h>
    #if defined(__AVX2__)
    #include <immintrin.h>
    #define NNL_HAVE_AVX2 1
    static inline int32_t nnl_hsum(__m256i v) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
        return _mm_cvtsi128_si32(s);
    }
    #define NNL_W16(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(p)))
    #define NNL_X16(p) _mm256_loadu_si256((const __m256i*)(p))
    #define NNL_MADD(acc, x, w) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, w))
    #else
    #define NNL_HAVE_AVX2 0
    #endif

    /* out[4 r + j] = sum_i x_r[i] * w[j k + i] for rows r < nx (1 or 2) of x and j < 4 of w. */
    static void nnl_dot_4xn(const int16_t* x0, const int16_t* x1, int nx, const int8_t* w, Py_ssize_t k,
                            int32_t* out) {
        int32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int8_t *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
        Py_ssize_t i = 0;
    #if NNL_HAVE_AVX2
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        __m256i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        if (nx == 2) {
            for (; i + 16 <= k; i += 16) {
                __m256i v0 = NNL_W16(w + i), v1 = NNL_W16(w1 + i), v2 = NNL_W16(w2 + i), v3 = NNL_W16(w3 + i);
                __m256i xa = NNL_X16(x0 + i), xb = NNL_X16(x1 + i);
                NNL_MADD(a0, xa, v0); NNL_MADD(a1, xa, v1); NNL_MADD(a2, xa, v2); NNL_MADD(a3, xa, v3);
                NNL_MADD(b0, xb, v0); NNL_MADD(b1, xb, v1); NNL_MADD(b2, xb, v2); NNL_MADD(b3, xb, v3);
            }
        } else {
            for (; i + 16 <= k; i += 16) {
                __m256i xa = NNL_X16(x0 + i);
                NNL_MADD(a0, xa, NNL_W16(w + i)); NNL_MADD(a1, xa, NNL_W16(w1 + i));
                NNL_MADD(a2, xa, NNL_W16(w2 + i)); NNL_MADD(a3, xa, NNL_W16(w3 + i));
            }
        }
        s[0] = nnl_hsum(a0); s[1] = nnl_hsum(a1); s[2] = nnl_hsum(a2); s[3] = nnl_hsum(a3);
        s[4] = nnl_hsum(b0); s[5] = nnl_hsum(b1); s[6] = nnl_hsum(b2); s[7] = nnl_hsum(b3);
    #endif
        for (; i < k; i++) {
            int32_t xa = x0[i];
            s[0] += xa * w[i]; s[1] += xa * w1[i]; s[2] += xa * w2[i]; s[3] += xa * w3[i];
            if (nx == 2) {
                int32_t xb = x1[i];
                s[4] += xb * w[i]; s[5] += xb * w1[i]; s[6] += xb * w2[i]; s[7] += xb * w3[i];
            }
        }
        memcpy(out, s, sizeof(int32_t) * 4 * (size_t)nx);
    }

    /* One activation row against one weight row (the last N % 4 rows of w). */
    static int32_t nnl_dot_1(const int16_t* x, const int8_t* w, Py_ssize_t k) {
        int32_t s = 0;
        Py_ssize_t i;
        for (i = 0; i < k; i++) s += (int32_t)x[i] * (int32_t)w[i];
        return s;
    }

    /* The same sums for 7-bit activation codes (uint8 below 128), read as bytes. With AVX2
       vpmaddubsw multiplies 32 unsigned activation bytes by 32 signed weight bytes and adds
       neighbours into 16 int16 lanes: |2 * 127 * 128| = 32512 fits int16, so nothing saturates
       and the sums stay exact. vpmaddwd by ones widens the pairs into int32 lanes. Twice the
       products per instruction of the int16 path, and no widening of either operand. */
    #if NNL_HAVE_AVX2
    #define NNL_MADD7(acc, x, w) \
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones))
    #define NNL_B32(p) _mm256_loadu_si256((const __m256i*)(p))
    /* 16 bytes in the low half, zeros above: a half step whose upper products are 0 */
    #define NNL_B16(p) _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128((const __m128i*)(p)), 0)
    #endif
    static void nnl_dot7_4xn(const uint8_t* x0, const uint8_t* x1, int nx, const int8_t* w, Py_ssize_t k,
                             int32_t* out) {
        int32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int8_t *w1 = w + k, *w2 = w + 2 * k, *w3 = w + 3 * k;
        Py_ssize_t i = 0;
    #if NNL_HAVE_AVX2
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        __m256i b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        if (nx == 2) {
            for (; i + 32 <= k; i += 32) {
                __m256i v0 = NNL_B32(w + i), v1 = NNL_B32(w1 + i), v2 = NNL_B32(w2 + i), v3 = NNL_B32(w3 + i);
                __m256i xa = NNL_B32(x0 + i), xb = NNL_B32(x1 + i);
                NNL_MADD7(a0, xa, v0); NNL_MADD7(a1, xa, v1); NNL_MADD7(a2, xa, v2); NNL_MADD7(a3, xa, v3);
                NNL_MADD7(b0, xb, v0); NNL_MADD7(b1, xb, v1); NNL_MADD7(b2, xb, v2); NNL_MADD7(b3, xb, v3);
            }
            if (i + 16 <= k) {   /* e.g. 784 = 24 * 32 + 16: the last 16 need not go to the scalar loop */
                __m256i v0 = NNL_B16(w + i), v1 = NNL_B16(w1 + i), v2 = NNL_B16(w2 + i), v3 = NNL_B16(w3 + i);
                __m256i xa = NNL_B16(x0 + i), xb = NNL_B16(x1 + i);
                NNL_MADD7(a0, xa, v0); NNL_MADD7(a1, xa, v1); NNL_MADD7(a2, xa, v2); NNL_MADD7(a3, xa, v3);
                NNL_MADD7(b0, xb, v0); NNL_MADD7(b1, xb, v1); NNL_MADD7(b2, xb, v2); NNL_MADD7(b3, xb, v3);
                i += 16;
            }
        } else {
            for (; i + 32 <= k; i += 32) {
                __m256i xa = NNL_B32(x0 + i);
                NNL_MADD7(a0, xa, NNL_B32(w + i)); NNL_MADD7(a1, xa, NNL_B32(w1 + i));
                NNL_MADD7(a2, xa, NNL_B32(w2 + i)); NNL_MADD7(a3, xa, NNL_B32(w3 + i));
            }
            if (i + 16 <= k) {
                __m256i xa = NNL_B16(x0 + i);
                NNL_MADD7(a0, xa, NNL_B16(w + i)); NNL_MADD7(a1, xa, NNL_B16(w1 + i));
                NNL_MADD7(a2, xa, NNL_B16(w2 + i)); NNL_MADD7(a3, xa, NNL_B16(w3 + i));
                i += 16;
            }
        }
        s[0] = nnl_hsum(a0); s[1] = nnl_hsum(a1); s[2] = nnl_hsum(a2); s[3] = nnl_hsum(a3);
        s[4] = nnl_hsum(b0); s[5] = nnl_hsum(b1); s[6] = nnl_hsum(b2); s[7] = nnl_hsum(b3);
    #endif
        for (; i < k; i++) {
            int32_t xa = x0[i];
            s[0] += xa * w[i]; s[1] += xa * w1[i]; s[2] += xa * w2[i]; s[3] += xa * w3[i];
            if (nx == 2) {
                int32_t xb = x1[i];
                s[4] += xb * w[i]; s[5] += xb * w1[i]; s[6] += xb * w2[i]; s[7] += xb * w3[i];
            }
        }
        memcpy(out, s, sizeof(int32_t) * 4 * (size_t)nx);
    }

    static int32_t nnl_dot7_1(const uint8_t* x, const int8_t* w, Py_ssize_t k) {
        int32_t s = 0;
        Py_ssize_t i;
        for (i = 0; i < k; i++) s += (int32_t)x[i] * (int32_t)w[i];
        return s;
    }
    """
    int NNL_HAVE_AVX2
    void nnl_dot_4xn(const int16_t* x0, const int16_t* x1, int nx, const int8_t* w, Py_ssize_t k,
                     int32_t* out) noexcept nogil
    int32_t nnl_dot_1(const int16_t* x, const int8_t* w, Py_ssize_t k) noexcept nogil
    void nnl_dot7_4xn(const uint8_t* x0, const uint8_t* x1, int nx, const int8_t* w, Py_ssize_t k,
                      int32_t* out) noexcept nogil
    int32_t nnl_dot7_1(const uint8_t* x, const int8_t* w, Py_ssize_t k) noexcept nogil


def simd_path():
    """"AVX2" when the kernel was built with the AVX2 dot products, else "portable"."""
    return "AVX2" if NNL_HAVE_AVX2 else "portable"


cdef inline void _epilogue(int32_t acc, Py_ssize_t m, Py_ssize_t n, Py_ssize_t N, int32_t x_zp,
                           const int32_t* row_sums, const float* mult, const float* bias,
                           float out_scale, int32_t out_zp, bint requant, bint relu,
                           float* out_f, uint8_t* out_q) noexcept nogil:
    cdef float v = <float>(acc - x_zp * row_sums[n]) * mult[n]
    cdef float q
    if bias != NULL:
        v = v + bias[n]
    if relu and v < 0:       # ReLU; NaN passes through, as in nn.ReLU
        v = 0
    if requant:
        q = nearbyintf(v / out_scale) + <float>out_zp
        if q < 0:
            q = 0
        elif q > 255:
            q = 255
        out_q[m * N + n] = <uint8_t>q
    else:
        out_f[m * N + n] = v


cdef void _row_block(const int16_t* x16, const uint8_t* x8, const int8_t* w, Py_ssize_t n0, Py_ssize_t M,
                     Py_ssize_t N, Py_ssize_t K, int32_t x_zp, const int32_t* row_sums, const float* mult,
                     const float* bias, float out_scale, int32_t out_zp, bint requant, bint relu,
                     float* out_f, uint8_t* out_q) noexcept nogil:
    # Output columns n0..n0+3 for every row of x, two activation rows at a time: the four
    # weight rows (4 K bytes) stay in L1 while the activation rows pass by. The sums live on
    # this call's stack, so each thread has its own.
    cdef int32_t acc[8]
    cdef Py_ssize_t m = 0, j, r, nx
    if n0 + 4 <= N:
        while m < M:
            nx = 2 if m + 1 < M else 1
            if x8 != NULL:   # 7-bit activation codes: the vpmaddubsw path
                nnl_dot7_4xn(x8 + m * K, x8 + (m + nx - 1) * K, <int>nx, w + n0 * K, K, acc)
            else:
                nnl_dot_4xn(x16 + m * K, x16 + (m + nx - 1) * K, <int>nx, w + n0 * K, K, acc)
            for r in range(nx):
                for j in range(4):
                    _epilogue(acc[4 * r + j], m + r, n0 + j, N, x_zp, row_sums, mult, bias, out_scale,
                              out_zp, requant, relu, out_f, out_q)
            m += nx
    else:
        for j in range(n0, N):
            for m in range(M):
                _epilogue(nnl_dot7_1(x8 + m * K, w + j * K, K) if x8 != NULL else nnl_dot_1(x16 + m * K, w + j * K, K),
                          m, j, N, x_zp, row_sums, mult, bias, out_scale, out_zp, requant, relu, out_f, out_q)


cdef void _gemm(const int16_t* x16, const uint8_t* x8, const int8_t* w, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                int32_t x_zp, const int32_t* row_sums, const float* mult, const float* bias,
                float out_scale, int32_t out_zp, bint requant, bint relu, float* out_f, uint8_t* out_q,
                int nthreads) noexcept nogil:
    # Threads split the output columns in blocks of four weight rows; every output element
    # is written by exactly one thread.
    cdef Py_ssize_t nblocks = (N + 3) // 4
    cdef Py_ssize_t b
    for b in prange(nblocks, num_threads=nthreads, schedule='static'):
        _row_block(x16, x8, w, 4 * b, M, N, K, x_zp, row_sums, mult, bias, out_scale, out_zp, requant, relu,
                   out_f, out_q)


cdef cnp.ndarray _checked(str name, object arr, int typenum, str dtype, int ndim):
    if not cnp.PyArray_Check(arr):
        raise TypeError(f"int8_linear: {name} must be a numpy.ndarray of {dtype}, got {type(arr).__name__}")
    if cnp.PyArray_TYPE(<cnp.ndarray>arr) != typenum or cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>arr):
        raise TypeError(f"int8_linear: {name} must be {dtype}, got {arr.dtype}")   # '>f4' too
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
    cdef const float* bias_ptr = NULL   # an if statement, not a conditional expression: Cython's
    if ba is not None:                    # temporary for the latter drops the const (a gcc warning)
        bias_ptr = <const float*>cnp.PyArray_DATA(ba)
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
    with nogil:
        for i in range(M * K):
            x16p[i] = xp[i]
        _gemm(x16p, NULL, wp, M, N, K, x_zero_point, sp, mp, bias_ptr, oscale, out_zero_point, requant, False,
              out_f, out_q, nthreads)
    return out


def quantize_u8(x, float scale, int zero_point):
    """uint8 codes ``clamp(rint(x * (1 / scale)) + zero_point, 0, 255)`` of a float32 array (any shape)."""
    if (not cnp.PyArray_Check(x) or cnp.PyArray_TYPE(<cnp.ndarray>x) != cnp.NPY_FLOAT32
            or cnp.PyArray_ISBYTESWAPPED(<cnp.ndarray>x)):
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


cdef extern from *:
    """
    #include <float.h>
    /* min, max and whether any element is NaN, in one pass over x (the range starts at 0,
       which it must contain anyway). +-inf shows up as lo or hi. */
    static void nnl_range_f32(const float* x, Py_ssize_t n, float* lo, float* hi, int* has_nan) {
        float a = 0.0f, b = 0.0f;
        int nan = 0;
        Py_ssize_t i = 0;
    #if NNL_HAVE_AVX2
        __m256 va = _mm256_setzero_ps(), vb = va, va2 = va, vb2 = va, vn = va;
        for (; i + 16 <= n; i += 16) {
            __m256 v = _mm256_loadu_ps(x + i), w = _mm256_loadu_ps(x + i + 8);
            /* minps/maxps return the second operand when either is NaN: the running value
               goes second so a NaN never replaces it; NaNs are caught by the unordered compare */
            va = _mm256_min_ps(v, va); vb = _mm256_max_ps(v, vb);
            va2 = _mm256_min_ps(w, va2); vb2 = _mm256_max_ps(w, vb2);
            vn = _mm256_or_ps(vn, _mm256_cmp_ps(v, w, _CMP_UNORD_Q));
        }
        {
            float ta[8], tb[8], tn[8];
            int j;
            _mm256_storeu_ps(ta, _mm256_min_ps(va, va2));
            _mm256_storeu_ps(tb, _mm256_max_ps(vb, vb2));
            _mm256_storeu_ps(tn, vn);
            for (j = 0; j < 8; j++) {
                a = ta[j] < a ? ta[j] : a;
                b = tb[j] > b ? tb[j] : b;
                nan |= tn[j] != 0.0f;   /* all-ones bits: a NaN pattern, != 0 is true */
            }
        }
    #endif
        for (; i < n; i++) {
            float v = x[i];
            a = v < a ? v : a;
            b = v > b ? v : b;
            nan |= v != v;
        }
        *lo = a; *hi = b; *has_nan = nan;
    }

    /* uint8 codes clamp(rint(x * inv) + zp, 0, 255), NaN -> 0 (as quantize_u8), stored widened
       to int16: the layout the dot products read. */
    static void nnl_quantize_i16(const float* x, Py_ssize_t n, float inv, float zp, int16_t* out) {
        Py_ssize_t i = 0;
    #if NNL_HAVE_AVX2
        const __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zp);
        const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
        for (; i + 16 <= n; i += 16) {
            __m256 q0 = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
            __m256 q1 = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vi),
                                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
            /* max(q, 0) first: with q NaN maxps returns its second operand, 0 */
            q0 = _mm256_min_ps(_mm256_max_ps(q0, zero), top);
            q1 = _mm256_min_ps(_mm256_max_ps(q1, zero), top);
            __m256i p = _mm256_packs_epi32(_mm256_cvttps_epi32(q0), _mm256_cvttps_epi32(q1));
            /* packs works per 128-bit half: put the four quarters back in order */
            _mm256_storeu_si256((__m256i*)(out + i), _mm256_permute4x64_epi64(p, 0xD8));
        }
    #endif
        for (; i < n; i++) {
            float q = nearbyintf(x[i] * inv) + zp;
            q = q >= 255.0f ? 255.0f : (q >= 0.0f ? q : 0.0f);
            out[i] = (int16_t)q;
        }
    }

    /* The dynamic path's 7-bit codes clamp(rint(x * inv) + zp, 0, 127), as bytes (finite x). */
    static void nnl_quantize_u7(const float* x, Py_ssize_t n, float inv, float zp, uint8_t* out) {
        Py_ssize_t i = 0;
    #if NNL_HAVE_AVX2
        const __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zp);
        const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(127.0f);
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (; i + 32 <= n; i += 32) {
            __m256i q[4];
            int j;
            for (j = 0; j < 4; j++) {
                __m256 v = _mm256_add_ps(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vi),
                                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
                q[j] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top));
            }
            /* int32 -> int16 -> uint8 packs work per 128-bit half; one dword permute restores the order */
            __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i*)(out + i), _mm256_permutevar8x32_epi32(p, order));
        }
    #endif
        for (; i < n; i++) {
            float q = nearbyintf(x[i] * inv) + zp;
            q = q >= 127.0f ? 127.0f : (q >= 0.0f ? q : 0.0f);
            out[i] = (uint8_t)q;
        }
    }
    """
    float FLT_EPSILON
    void nnl_quantize_u7(const float* x, Py_ssize_t n, float inv, float zp, uint8_t* out) noexcept nogil
    void nnl_range_f32(const float* x, Py_ssize_t n, float* lo, float* hi, int* has_nan) noexcept nogil
    void nnl_quantize_i16(const float* x, Py_ssize_t n, float inv, float zp, int16_t* out) noexcept nogil


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


cdef cnp.ndarray _checked_q(str name, object arr, int typenum, str dtype, int ndim):
    # _checked with this function's name in the messages
    try:
        return _checked(name, arr, typenum, dtype, ndim)
    except (TypeError, ValueError) as e:
        raise type(e)(str(e).replace("int8_linear:", "quantized_linear:", 1)) from None


def dynamic_qparams(float lo, float hi, bint reduce_range=False):
    """Affine ``(scale, zero_point)`` for codes 0..255 (0..127 with ``reduce_range``) of ``[min(lo, 0), max(hi, 0)]``.

    In float32 steps, with ``q_max`` 255 or 127: ``scale = max((hi - lo) / q_max, eps)``,
    ``zero_point = clamp(-rint(lo / scale), 0, q_max)``: what :func:`quantized_linear`
    computes from each batch's min and max.
    """
    cdef float scale, zp
    _qparams(lo, hi, 127.0 if reduce_range else 255.0, &scale, &zp)
    return float(scale), int(zp)



def quantized_linear(x, w_q, w_row_sums, w_scale, bias=None, x_scale=None, int x_zero_point=0,
                     bint relu=False, bint reduce_range=False):
    """A quantized Linear on float32 input, in one call: quantize, u8 x s8 GEMM, epilogue.

    ``x`` float32 (M, K). With ``x_scale=None`` (dynamic quantization) the
    scale and zero point come from this batch's min and max
    (:func:`dynamic_qparams`; the input must then be finite), else they are
    ``x_scale`` and ``x_zero_point`` (static, from QAT). The codes
    ``clamp(rint(x / s_x) + z_x, 0, 255)`` are widened to int16 for ``vpmaddwd``.
    With ``reduce_range=True`` (dynamic only) they use 7 bits,
    ``clamp(..., 0, 127)``, as PyTorch's x86 dynamic Linear does: a pair of
    u8 x s8 products then fits int16 exactly, so ``vpmaddubsw`` multiplies 32
    bytes per instruction without widening — about 1.4x faster on large
    batches, for twice the activation rounding step.
    Then ``y[m, n] = (s_x * w_scale[n]) * (acc[m, n] - z_x * w_row_sums[n]) + bias[n]``,
    and ``max(y, 0)`` with ``relu=True``. ``w_q`` int8 (N, K), ``w_row_sums``
    int32 (N,), ``w_scale`` and ``bias`` float32 (N,). Returns float32 (M, N).
    """
    cdef cnp.ndarray xa = _checked_q("x", x, cnp.NPY_FLOAT32, "float32", 2)
    cdef cnp.ndarray wa = _checked_q("w_q", w_q, cnp.NPY_INT8, "int8", 2)
    cdef cnp.ndarray sa = _checked_q("w_row_sums", w_row_sums, cnp.NPY_INT32, "int32", 1)
    cdef cnp.ndarray ca = _checked_q("w_scale", w_scale, cnp.NPY_FLOAT32, "float32", 1)
    cdef cnp.ndarray ba = None
    cdef Py_ssize_t M = xa.shape[0], K = xa.shape[1], N = wa.shape[0]
    if wa.shape[1] != K:
        raise ValueError(f"quantized_linear: x has {K} features (shape {x.shape}) but w_q has "
                         f"{wa.shape[1]} (shape {w_q.shape})")
    if sa.shape[0] != N or ca.shape[0] != N:
        raise ValueError(f"quantized_linear: w_row_sums and w_scale need {N} entries (one per row of w_q), "
                         f"got {sa.shape[0]} and {ca.shape[0]}")
    if bias is not None:
        ba = _checked_q("bias", bias, cnp.NPY_FLOAT32, "float32", 1)
        if ba.shape[0] != N:
            raise ValueError(f"quantized_linear: bias needs {N} entries, got {ba.shape[0]}")
    if K > MAX_IN_FEATURES:
        raise ValueError(f"quantized_linear: at most {MAX_IN_FEATURES} input features fit int32 sums, got {K}")
    cdef float sx = 1.0, zx = 0.0, lo, hi
    cdef int has_nan
    cdef const float* xp = <const float*>cnp.PyArray_DATA(xa)
    if reduce_range and x_scale is not None:
        raise ValueError("quantized_linear: reduce_range applies to dynamic quantization (x_scale=None) only")
    if x_scale is None:
        if M * K:
            with nogil:
                nnl_range_f32(xp, M * K, &lo, &hi, &has_nan)
            if has_nan or lo == -INFINITY or hi == INFINITY:
                raise ValueError("quantized_linear: dynamic quantization needs a finite input, got NaN or inf")
            _qparams(lo, hi, 127.0 if reduce_range else 255.0, &sx, &zx)
    else:
        sx = x_scale
        if not sx > 0:
            raise ValueError(f"quantized_linear: x_scale must be > 0, got {x_scale}")
        if not 0 <= x_zero_point <= 255:
            raise ValueError(f"quantized_linear: x_zero_point must be in [0, 255], got {x_zero_point}")
        zx = x_zero_point
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(2, [M, N], cnp.NPY_FLOAT32, 0)
    if M == 0 or N == 0:
        return out
    cdef int nthreads = threads_for(M * N * K // 8)
    cdef const float* bias_ptr = NULL   # an if statement, not a conditional expression: Cython's
    if ba is not None:                    # temporary for the latter drops the const (a gcc warning)
        bias_ptr = <const float*>cnp.PyArray_DATA(ba)
    cdef const float* cp = <const float*>cnp.PyArray_DATA(ca)
    # One scratch block: the activation codes (M x K: bytes for 7-bit codes, else int16),
    # then the N multipliers s_x * w_scale[n].
    cdef bint seven = reduce_range
    cdef size_t code_bytes = M * K * (sizeof(uint8_t) if seven else sizeof(int16_t))
    cdef char* scratch = <char*>malloc(code_bytes + N * sizeof(float) + 16)
    if scratch == NULL:
        raise MemoryError("quantized_linear: no memory for the quantized input")
    cdef int16_t* x16 = NULL
    cdef uint8_t* x8 = NULL
    cdef float* mult = <float*>(scratch + ((code_bytes + 15) // 16) * 16)
    cdef Py_ssize_t n
    try:
        with nogil:
            if seven:
                x8 = <uint8_t*>scratch
                nnl_quantize_u7(xp, M * K, <float>1.0 / sx, zx, x8)
            else:
                x16 = <int16_t*>scratch
                nnl_quantize_i16(xp, M * K, <float>1.0 / sx, zx, x16)
            for n in range(N):
                mult[n] = sx * cp[n]
            _gemm(x16, x8, <const int8_t*>cnp.PyArray_DATA(wa), M, N, K, <int32_t>zx,
                  <const int32_t*>cnp.PyArray_DATA(sa), mult, bias_ptr, 1.0, 0, False, relu,
                  <float*>cnp.PyArray_DATA(out), NULL, nthreads)
    finally:
        free(scratch)
    return out
