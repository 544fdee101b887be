/* The int8 GEMM's inner loops (see _int8.pyx for the whole story): packed weights, activation
   codes in the form the dot instruction reads, and a register tile of NNL_MR rows x two panels.

   Packed weights. ``w_q`` (N x K, int8) is rearranged once, when the layer is made, into panels
   of 8 output columns; within a panel, for each group g of four k, the 32 bytes
   w[8p + c][4g + j] for c < 8, j < 4. One 256-bit load is then "8 columns x 4 k": the operand
   of vpdpbusd, which adds, in each of 8 int32 lanes, the four products of a column with four
   broadcast activation bytes. Missing columns (N % 8) and k (K % 4) are zero, so they add 0.

   The dot step, nnl_dpbusd(acc, x, w), is that one instruction where the target has it
   (AVX-VNNI, or AVX512-VNNI with AVX512-VL, chosen at compile time) and an exact emulation
   where it does not: the quad of codes is kept as int16 pairs (x0, x2) and (x1, x3), the
   weight bytes are split into their even and odd bytes, sign-extended to int16, and two
   vpmaddwd add the four products in int32 (pairs of at most 2 * 255 * 128: nothing is lost).
   The loop around it is the same on both, so a machine without VNNI runs and tests the very
   loop that VNNI machines run with the instruction.

   7-bit codes (reduce_range) take nnl_dpbusd7: vpdpbusd again with VNNI; without it vpmaddubsw
   (32 u8 x s8 products, neighbours added in int16: 2 * 127 * 128 < 2**15, exact) and vpmaddwd
   by ones to widen the pairs into int32. Their codes stay bytes.

   Without AVX2 the same tile runs as plain C loops on bytes. Integer sums are exact, so every
   path gives the same int32 sums as the NumPy twin, in any order. */
#ifndef NNL_INT8_DOT_H
#define NNL_INT8_DOT_H

#include <stdint.h>
#include <string.h>
#include <math.h>
#include <float.h>

#if defined(__AVX2__)
#include <immintrin.h>
#define NNL_INT8_AVX2 1
#else
#define NNL_INT8_AVX2 0
#endif

#if NNL_INT8_AVX2 && defined(__AVXVNNI__)
#define NNL_INT8_VNNI 1
#define NNL_INT8_PATH "AVX-VNNI"
#elif NNL_INT8_AVX2 && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define NNL_INT8_VNNI 1
#define NNL_INT8_PATH "AVX512-VNNI"
#elif NNL_INT8_AVX2
#define NNL_INT8_VNNI 0
#define NNL_INT8_PATH "AVX2"
#else
#define NNL_INT8_VNNI 0
#define NNL_INT8_PATH "portable"
#endif

/* 8-bit codes are stored as int16 pairs only for the emulated vpdpbusd. */
#define NNL_WORD_CODES (NNL_INT8_AVX2 && !NNL_INT8_VNNI)

#define NNL_MR 4          /* rows of a register tile: 4 x 2 accumulators + the operands fit 16 ymm
                             (_int8.pyx's stack arrays hold 2 x NNL_MR x NNL_NR sums) */
#define NNL_NR 8          /* columns of a panel: one int32 lane each */

static const char* nnl_int8_path(void) { return NNL_INT8_PATH; }

/* Bytes per stored code: int16 for 8-bit codes on the emulated path, else one byte. */
static inline size_t nnl_code_size(int seven) { return (NNL_WORD_CODES && !seven) ? 2 : 1; }

#if NNL_INT8_AVX2

static inline __m256i nnl_broadcast32(const void* p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

#if NNL_INT8_VNNI
/* Four u8 codes broadcast to every lane: what vpdpbusd multiplies each column's bytes with. */
typedef __m256i nnl_quad;
static inline nnl_quad nnl_load_quad(const void* codes) { return nnl_broadcast32(codes); }
static inline __m256i nnl_dpbusd(__m256i acc, nnl_quad x, __m256i w) {
#if defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, x, w);
#else
    return _mm256_dpbusd_epi32(acc, x, w);
#endif
}
#define nnl_dpbusd7 nnl_dpbusd
#else
/* The same four codes, stored as int16 (x0, x2, x1, x3): two broadcasts, no shuffles. */
typedef struct { __m256i even, odd; } nnl_quad;
static inline nnl_quad nnl_load_quad(const void* codes) {
    nnl_quad q;
    q.even = nnl_broadcast32(codes);
    q.odd = nnl_broadcast32((const char*)codes + 4);
    return q;
}
/* vpdpbusd, exactly: the even and odd weight bytes sign-extended to int16 (shifts), two
   vpmaddwd. The splits of w depend only on w, so the compiler computes them once per tile step. */
static inline __m256i nnl_dpbusd(__m256i acc, nnl_quad x, __m256i w) {
    __m256i w_even = _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8), w_odd = _mm256_srai_epi16(w, 8);
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(x.even, w_even),
                                                  _mm256_madd_epi16(x.odd, w_odd)));
}
/* 7-bit codes (bytes, below 128): vpmaddubsw cannot saturate, vpmaddwd by ones widens. */
static inline __m256i nnl_dpbusd7(__m256i acc, __m256i x, __m256i w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)));
}
#endif
#endif   /* NNL_INT8_AVX2 */

/* out[8 (MR q + r) + c] = sum_k codes[r][k] w_q[8 q + c][k] for r < rows, c < 8 and panel q of
   the one or two (``two``) panels starting at w: a tile of up to 4 rows x 16 columns keeps two
   accumulators per row in registers, so each activation quad feeds two weight vectors. ``rows``,
   ``seven`` and ``two`` are constants at every call (nnl_tile_rows): the loops unroll into
   registers. */
#if NNL_INT8_AVX2

static inline __attribute__((always_inline)) void nnl_tile(int rows, int seven, int two, const void* codes,
                                                           Py_ssize_t stride, const int8_t* w,
                                                           Py_ssize_t groups, int32_t* out) {
    __m256i acc[2][NNL_MR];
    const int8_t* w2 = w + 32 * groups;
    int r, q;
    Py_ssize_t g;
    for (r = 0; r < NNL_MR; r++) acc[0][r] = acc[1][r] = _mm256_setzero_si256();
    for (g = 0; g < groups; g++) {
        __m256i wv = _mm256_loadu_si256((const __m256i*)(w + 32 * g)), wv2 = wv;
        if (two) wv2 = _mm256_loadu_si256((const __m256i*)(w2 + 32 * g));
        for (r = 0; r < rows; r++) {
            if (seven) {
                __m256i x = nnl_broadcast32((const uint8_t*)codes + r * stride + 4 * g);
                acc[0][r] = nnl_dpbusd7(acc[0][r], x, wv);
                if (two) acc[1][r] = nnl_dpbusd7(acc[1][r], x, wv2);
            } else {
                nnl_quad x = nnl_load_quad((const char*)codes + (r * stride + 4 * g) * (Py_ssize_t)nnl_code_size(0));
                acc[0][r] = nnl_dpbusd(acc[0][r], x, wv);
                if (two) acc[1][r] = nnl_dpbusd(acc[1][r], x, wv2);
            }
        }
    }
    for (q = 0; q <= two; q++)
        for (r = 0; r < rows; r++) _mm256_storeu_si256((__m256i*)(out + NNL_NR * (NNL_MR * q + r)), acc[q][r]);
}

#else   /* portable: the same sums as plain loops on bytes */

static inline void nnl_tile(int rows, int seven, int two, const void* codes, Py_ssize_t stride, const int8_t* w,
                            Py_ssize_t groups, int32_t* out) {
    int r, c, j, q;
    Py_ssize_t g;
    (void)seven;
    for (q = 0; q <= two; q++)
        for (r = 0; r < rows; r++) {
            const uint8_t* x = (const uint8_t*)codes + r * stride;
            const int8_t* wq = w + 32 * groups * q;
            int32_t s[NNL_NR] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (g = 0; g < groups; g++)
                for (c = 0; c < NNL_NR; c++)
                    for (j = 0; j < 4; j++)
                        s[c] += (int32_t)x[4 * g + j] * (int32_t)wq[32 * g + 4 * c + j];
            memcpy(out + NNL_NR * (NNL_MR * q + r), s, sizeof s);
        }
}

#endif

/* One tile of rows m0 .. m0 + rows - 1 (rows <= NNL_MR) against one or two packed panels. */
static void nnl_tile_rows(int rows, int seven, int two, const void* codes, Py_ssize_t m0, Py_ssize_t stride,
                          const int8_t* panel, Py_ssize_t groups, int32_t* out) {
    const void* x = (const char*)codes + m0 * stride * (Py_ssize_t)nnl_code_size(seven);
#define NNL_TILE_CASES(SEVEN, TWO) \
    switch (rows) { \
    case 4: nnl_tile(4, SEVEN, TWO, x, stride, panel, groups, out); break; \
    case 3: nnl_tile(3, SEVEN, TWO, x, stride, panel, groups, out); break; \
    case 2: nnl_tile(2, SEVEN, TWO, x, stride, panel, groups, out); break; \
    default: nnl_tile(1, SEVEN, TWO, x, stride, panel, groups, out); break; \
    }
    if (seven) {
        if (two) { NNL_TILE_CASES(1, 1) } else { NNL_TILE_CASES(1, 0) }
    } else {
        if (two) { NNL_TILE_CASES(0, 1) } else { NNL_TILE_CASES(0, 0) }
    }
#undef NNL_TILE_CASES
}

/* The epilogue of one tile: out[r * stride + c] = (float)(acc[8 r + c] - x_zp * row_sums[c]) * mult[c]
   (+ bias[c]) (then max(0, .) with relu) for r < rows, c < cols (the panel's columns that exist).
   The same float32 steps as the twin, in its order, eight columns at a time; no bias means no
   add at all (x + 0 would turn -0 into +0). max(0, v) keeps a NaN v, as ReLU does. */
static void nnl_epilogue(const int32_t* acc, int rows, int cols, int32_t x_zp, const int32_t* row_sums,
                         const float* mult, const float* bias, int relu, float* out, Py_ssize_t stride) {
    int32_t rs[NNL_NR] = {0, 0, 0, 0, 0, 0, 0, 0};
    float mu[NNL_NR] = {0, 0, 0, 0, 0, 0, 0, 0}, bi[NNL_NR] = {0, 0, 0, 0, 0, 0, 0, 0};
    int r, c;
    memcpy(rs, row_sums, sizeof(int32_t) * (size_t)cols);
    memcpy(mu, mult, sizeof(float) * (size_t)cols);
    if (bias) memcpy(bi, bias, sizeof(float) * (size_t)cols);
#if NNL_INT8_AVX2
    {
        const __m256i corr = _mm256_mullo_epi32(_mm256_set1_epi32(x_zp), _mm256_loadu_si256((const __m256i*)rs));
        const __m256 vm = _mm256_loadu_ps(mu), vb = _mm256_loadu_ps(bi), zero = _mm256_setzero_ps();
        for (r = 0; r < rows; r++) {
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                _mm256_loadu_si256((const __m256i*)(acc + NNL_NR * r)), corr)), vm);
            if (bias) v = _mm256_add_ps(v, vb);
            if (relu) v = _mm256_max_ps(zero, v);   /* maxps returns its second operand for NaN */
            if (cols == NNL_NR) {
                _mm256_storeu_ps(out + r * stride, v);
            } else {
                float t[NNL_NR];
                _mm256_storeu_ps(t, v);
                memcpy(out + r * stride, t, sizeof(float) * (size_t)cols);
            }
        }
    }
#else
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++) {
            float v = (float)(acc[NNL_NR * r + c] - x_zp * rs[c]) * mu[c];
            if (bias) v = v + bi[c];
            if (relu && v < 0) v = 0;
            out[r * stride + c] = v;
        }
#endif
    (void)c;
}

/* w (N x K, C order) into panels of 8 columns x groups of 4 k, zero-padded (see the top). */
static void nnl_pack_weight(const int8_t* w, Py_ssize_t N, Py_ssize_t K, int8_t* out) {
    Py_ssize_t panels = (N + NNL_NR - 1) / NNL_NR, groups = (K + 3) / 4, p, g, c, j;
    memset(out, 0, (size_t)(panels * groups * 32));
    for (p = 0; p < panels; p++)
        for (c = 0; c < NNL_NR && p * NNL_NR + c < N; c++)
            for (g = 0; g < groups; g++)
                for (j = 0; j < 4 && 4 * g + j < K; j++)
                    out[(p * groups + g) * 32 + 4 * c + j] = w[(p * NNL_NR + c) * K + 4 * g + j];
}

/* Where code k of a row goes: its own place, or for int16 codes the (x0, x2, x1, x3) order of
   its quad that nnl_load_quad reads. */
static inline Py_ssize_t nnl_code_slot(Py_ssize_t k, int words) {
    Py_ssize_t j = k & 3;
    return words && (j == 1 || j == 2) ? k ^ 3 : k;
}

/* min, max and whether any element is NaN, in one pass over x (the range starts at 0,
   which it must contain anyway). +-inf shows up as lo or hi. */
static void nnl_range_f32(const float* x, Py_ssize_t n, float* lo, float* hi, int* has_nan) {
    float a = 0.0f, b = 0.0f;
    int nan = 0;
    Py_ssize_t i = 0;
#if NNL_INT8_AVX2
    __m256 va = _mm256_setzero_ps(), vb = va, va2 = va, vb2 = va, vn = va;
    for (; i + 16 <= n; i += 16) {
        __m256 v = _mm256_loadu_ps(x + i), u = _mm256_loadu_ps(x + i + 8);
        /* minps/maxps return the second operand when either is NaN: the running value
           goes second so a NaN never replaces it; NaNs are caught by the unordered compare */
        va = _mm256_min_ps(v, va); vb = _mm256_max_ps(v, vb);
        va2 = _mm256_min_ps(u, va2); vb2 = _mm256_max_ps(u, vb2);
        vn = _mm256_or_ps(vn, _mm256_cmp_ps(v, u, _CMP_UNORD_Q));
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

/* One row of codes clamp(rint(x * inv) + zp, 0, qmax), NaN -> 0 (as quantize_u8), written in
   the layout the tile reads: int16 in quad order (words) or bytes, zero up to the padded
   length k4. */
static void nnl_quantize_row(const float* x, Py_ssize_t k, Py_ssize_t k4, float inv, float zp, float qmax,
                             int words, void* out) {
    Py_ssize_t i = 0;
    int16_t* o16 = (int16_t*)out;
    uint8_t* o8 = (uint8_t*)out;
#if NNL_INT8_AVX2
    const __m256 vi = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zp);
    const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(qmax);
    __m256i q[4];
    int j;
    /* 32 codes a step; max(q, 0) first: with q NaN maxps returns its second operand, 0 */
#define NNL_CODES8(J) \
    q[J] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_round_ps( \
        _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * (J)), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), \
        vz), zero), top))
    if (words) {
        /* packs works per 128-bit half (permute4x64 puts the quarters back in order), then
           each quad's middle two codes swap places */
        const __m256i swap = _mm256_setr_epi8(0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15,
                                              0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15);
        for (; i + 16 <= k; i += 16) {
            NNL_CODES8(0); NNL_CODES8(1);
            __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
            _mm256_storeu_si256((__m256i*)(o16 + i), _mm256_shuffle_epi8(p, swap));
        }
    } else {
        /* int32 -> int16 -> uint8 packs work per 128-bit half; one dword permute restores the order */
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (; i + 32 <= k; i += 32) {
            for (j = 0; j < 4; j++) { NNL_CODES8(j); }
            __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            _mm256_storeu_si256((__m256i*)(o8 + i), _mm256_permutevar8x32_epi32(p, order));
        }
    }
#undef NNL_CODES8
#endif
    /* i is a multiple of 4 here: the rest of the row, then zeros, quad by quad */
    for (; i < k4; i++) {
        float c = 0.0f;
        if (i < k) {
            c = nearbyintf(x[i] * inv) + zp;
            c = c >= qmax ? qmax : (c >= 0.0f ? c : 0.0f);
        }
        if (words) o16[nnl_code_slot(i, 1)] = (int16_t)c;
        else o8[i] = (uint8_t)c;
    }
}

/* Rows of uint8 codes (int8_linear's input) copied into the tile's layout. */
static void nnl_copy_codes(const uint8_t* x, Py_ssize_t m, Py_ssize_t k, Py_ssize_t k4, int words, void* out) {
    Py_ssize_t r, i;
    for (r = 0; r < m; r++) {
        for (i = 0; i < k4; i++) {
            uint8_t c = i < k ? x[r * k + i] : 0;
            if (words) ((int16_t*)out)[r * k4 + nnl_code_slot(i, 1)] = c;
            else ((uint8_t*)out)[r * k4 + i] = c;
        }
    }
}

#endif
