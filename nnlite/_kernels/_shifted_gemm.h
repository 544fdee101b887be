/* The product at the heart of a stride-1 convolution without im2col ("shifted" GEMM).

   Pad each input plane with zeros and lay the planes one after another. For
   stride 1, the output pixel (oh, ow) reads, for tap (c, i, j), the padded
   element at (oh + i*dh, ow + j*dw) of plane c. Count output pixels along the
   padded width, p = oh*Wp + ow: the element is then at p + off[k] with one
   fixed offset per tap, off[k] = c*S + i*dh*Wp + j*dw (S: a plane's stride).
   So, over p,

       out[o, p] = sum_k w[o, k] * xpad[off[k] + p]

   is a GEMM whose right-hand matrix is the padded input itself, each row k a
   shifted window of it: the 9x (or 25x) copy that im2col makes never exists.
   The columns p with ow >= OW fall between rows and are computed and thrown
   away (Wp/OW of the work: 1.1x for a 3x3 kernel on 16x16 maps).

   The loop is a register-blocked micro-kernel, as in a BLAS. The tile is sized
   to the vector registers (_vector.h chooses the width):
   * 256-bit vectors with fused multiply-adds (AVX2 + FMA, 16 registers): 4 output
     rows by 3 vectors of pixels, 12 accumulators; per tap three input vectors
     and one broadcast weight: the 16 registers exactly (measured 1.7x the speed
     of 4 x 2);
   * 512-bit vectors (AVX-512, 32 registers): 8 rows by 3 vectors, 24
     accumulators + 3 inputs + 1 weight = 28 registers. The pixel side stays 3
     vectors (48 floats: twice the 256-bit tile) and the rows double, since a
     wider pixel side would waste more on small maps, which round P up to it;
   * without FMA each product needs a register of its own: 4 rows by 2 vectors.
   Every out[o, p] is the sum over k in order, one multiply-add per tap, whatever
   the tile: the kept outputs are the same bytes at either width (the columns and
   rows computed past the end, then thrown away, differ). How much is thrown away
   decides which shapes _conv.pyx sends here (_use_shifted); that rule reads the
   tile from nnl_shifted_tile_* and nnl_shifted_rows, so it holds at both widths,
   though its thresholds were measured on the 256-bit tile.
   The weight gradient (a sum over pixels) and the depthwise case (one output row
   per plane) follow further below. The depthwise output, like this product's, is
   the same bytes at either width; the weight gradients end in a sum of a vector's
   lanes, and sum 256-bit vectors in every build (see below), so they are too.

   Requirements (the caller, _conv.pyx, sees to them): P a multiple of the tile's
   width (nnl_shifted_tile_*), xpad readable up to off[K-1] + P, out with room for
   O rows of ldo. Written with GCC/Clang vector types; elsewhere a struct of lanes
   with the same arithmetic. Shared by _conv.pyx through `cdef extern`. */
#ifndef NNLITE_SHIFTED_GEMM_H
#define NNLITE_SHIFTED_GEMM_H

#include <stddef.h>
#include <string.h>

#include "_vector.h"

#if NNL_VECTOR_TYPES
#define NNL_SG_SPLAT_F(s) NNL_SPLAT_F(s)
#define NNL_SG_SPLAT_D(s) NNL_SPLAT_D(s)
#else
static inline nnl_vf NNL_SG_SPLAT_F(float s)
{ nnl_vf r; int l; for (l = 0; l < NNL_LANES_F; l++) r.v[l] = s; return r; }
static inline nnl_vd NNL_SG_SPLAT_D(double s)
{ nnl_vd r; int l; for (l = 0; l < NNL_LANES_D; l++) r.v[l] = s; return r; }
#endif

#if NNL_VECTOR_FMA
#define NNL_SG_MULADD_F(acc, a, b) nnl_fmadd_f((acc), (a), (b))
#define NNL_SG_MULADD_D(acc, a, b) nnl_fmadd_d((acc), (a), (b))
#if NNL_VECTOR_REGISTERS == 32
#define NNL_SG_MR 8   /* tile: 8 output rows x 3 vectors of pixels (28 of 32 registers) */
#else
#define NNL_SG_MR 4   /* tile: 4 output rows x 3 vectors of pixels (16 of 16 registers) */
#endif
#define NNL_SG_NV 3
#elif NNL_VECTOR_TYPES
#define NNL_SG_MULADD_F(acc, a, b) ((acc) + (a) * (b))
#define NNL_SG_MULADD_D(acc, a, b) ((acc) + (a) * (b))
#define NNL_SG_MR 4
#define NNL_SG_NV 2
#else
static inline nnl_vf NNL_SG_MULADD_F(nnl_vf c, nnl_vf a, nnl_vf b)
{ int l; for (l = 0; l < NNL_LANES_F; l++) c.v[l] += a.v[l] * b.v[l]; return c; }
static inline nnl_vd NNL_SG_MULADD_D(nnl_vd c, nnl_vd a, nnl_vd b)
{ int l; for (l = 0; l < NNL_LANES_D; l++) c.v[l] += a.v[l] * b.v[l]; return c; }
#define NNL_SG_MR 4
#define NNL_SG_NV 2
#endif
#define NNL_SG_IN_REGISTER(v) NNL_IN_REGISTER(v)

/* Rows of a whole tile; the rows left over go in tiles of 4, 2 and 1. */
static inline ptrdiff_t nnl_shifted_rows(void) { return NNL_SG_MR; }

#define NNL_SHIFTED_GEMM(T, SUF, V, LANES, MULADD, SPLAT)                                     \
/* Pixels per tile: a multiple of this is what P must be. */                                  \
static inline ptrdiff_t nnl_shifted_tile_##SUF(void) { return NNL_SG_NV * (LANES); }          \
static inline ptrdiff_t nnl_shifted_lanes_##SUF(void) { return (LANES); }                     \
static inline V nnl_sg_load_##SUF(const T* p) { V v; memcpy(&v, p, sizeof v); return v; }   \
static inline void nnl_sg_store_##SUF(T* p, V v) { memcpy(p, &v, sizeof v); }                \
/* One tile: out[o0 + r, p0 ..] for r < mr (mr = NNL_SG_MR, 4, 2 or 1: a constant once    \
   inlined, so the loops unroll and the accumulators live in registers). */                  \
static inline void nnl_sg_tile_##SUF(const T* w, int mr, ptrdiff_t K, const ptrdiff_t* off,  \
                                     const T* x0, T* out, ptrdiff_t ldo)                      \
{                                                                                             \
    V acc[NNL_SG_MR][NNL_SG_NV], b[NNL_SG_NV], a;                                             \
    ptrdiff_t k;                                                                              \
    int r, v;                                                                                 \
    memset(acc, 0, sizeof acc);                                                               \
    for (k = 0; k < K; k++) {                                                                 \
        for (v = 0; v < NNL_SG_NV; v++)                                                       \
            b[v] = nnl_sg_load_##SUF(x0 + off[k] + v * (LANES));                              \
        for (r = 0; r < mr; r++) {                                                            \
            a = SPLAT(w[r * K + k]);                                                          \
            for (v = 0; v < NNL_SG_NV; v++)                                                   \
                acc[r][v] = MULADD(acc[r][v], a, b[v]);                                       \
        }                                                                                     \
    }                                                                                         \
    for (r = 0; r < mr; r++)                                                                  \
        for (v = 0; v < NNL_SG_NV; v++)                                                       \
            nnl_sg_store_##SUF(out + r * ldo + v * (LANES), acc[r][v]);                       \
}                                                                                             \
/* out[o, p] = sum_k w[o*K + k] * xpad[off[k] + p], o < O, p < P (P % tile == 0).             \
   Output channels go in tiles of NNL_SG_MR; those left over in tiles of 4, 2 and 1 (3:   \
   a tile of 2 and one of 1). */                                                              \
static void nnl_shifted_gemm_##SUF(const T* w, ptrdiff_t K, const ptrdiff_t* off,             \
                                   const T* xpad, ptrdiff_t O, ptrdiff_t P, T* out,           \
                                   ptrdiff_t ldo)                                              \
{                                                                                             \
    ptrdiff_t o0, p0;                                                                         \
    int mr;                                                                                   \
    for (o0 = 0; o0 < O; o0 += mr) {                                                          \
        mr = O - o0 >= NNL_SG_MR ? NNL_SG_MR : O - o0 >= 4 ? 4 : O - o0 >= 2 ? 2 : 1;         \
        for (p0 = 0; p0 < P; p0 += NNL_SG_NV * (LANES)) {                                     \
            if (mr == NNL_SG_MR)                                                              \
                nnl_sg_tile_##SUF(w + o0 * K, NNL_SG_MR, K, off, xpad + p0, out + o0 * ldo + p0, \
                                  ldo);                                                       \
            else if (NNL_SG_MR > 4 && mr == 4)   /* (folded away when NNL_SG_MR is 4) */      \
                nnl_sg_tile_##SUF(w + o0 * K, 4, K, off, xpad + p0, out + o0 * ldo + p0, ldo); \
            else if (mr == 2)                                                                 \
                nnl_sg_tile_##SUF(w + o0 * K, 2, K, off, xpad + p0, out + o0 * ldo + p0, ldo); \
            else                                                                              \
                nnl_sg_tile_##SUF(w + o0 * K, 1, K, off, xpad + p0, out + o0 * ldo + p0, ldo); \
        }                                                                                     \
    }                                                                                         \
}


/* The weight gradient of the same convolution is the product the other way round,
       gw[o, k] += sum over samples s and pixels p of g_s[o, p] * xpad_s[off[k] + p],
   a reduction over the pixels (g_s: sample s's output gradient on the padded-width grid,
   zero between rows). Tiles of 2 output channels by 6 taps keep 12 vector accumulators
   across all the samples given; per vector of pixels: two gradient rows and six input
   windows loaded (neighbouring taps: mostly the same cache lines), twelve multiply-adds
   (measured a little faster than 3 x 3, 3 x 4 or 4 x 2 with 16 registers; with AVX-512's
   32, 4 channels by 6 taps: 24 accumulators + 4 gradient vectors + 1 input = 29). The
   tile decides only which accumulators run together, not any sum's order. Each
   accumulator's lanes are then summed in a fixed tree, once per call (so a call should
   bring several samples).

   The vectors are 256 bits wide in every build, also where the rest of the code uses
   512 (nnl_vhf: 8 floats, nnl_vhd: 4 doubles, in 16 of AVX-512's 32 registers a tile).
   Most of a step's ten loads are unaligned (neighbouring taps are one element apart),
   and a 512-bit load that is not aligned crosses a cache line every time: on an AMD EPYC
   with AVX-512 (Zen 4) the 512-bit loop took 10.1 ms for the float weight gradient of a
   32 -> 64 channel 3x3 layer on 64 samples of 16 x 16, the 256-bit one with the same
   tile 7.8 ms. So the weight gradients (this one and the depthwise one below) sum the
   256-bit build's lanes at either width and are the same bytes in both builds. */
#if NNL_VECTOR_REGISTERS == 32
#define NNL_WG_R 4   /* output channels per tile */
#else
#define NNL_WG_R 2   /* output channels per tile */
#endif
#define NNL_WG_K 6   /* taps per tile */
#define NNL_HSUM(T, SUF, V, LANES)                                                             \
static inline T nnl_sg_hsum_##SUF(V a)                                                        \
{   /* halves added pairwise: lanes (0..n/2-1) + (n/2..n-1), and again, to one lane */        \
    T l[LANES];                                                                               \
    int h, i;                                                                                 \
    memcpy(l, &a, sizeof l);                                                                  \
    for (h = (LANES) / 2; h > 0; h /= 2)                                                      \
        for (i = 0; i < h; i++) l[i] += l[i + h];                                             \
    return l[0];                                                                              \
}
#define NNL_SHIFTED_WGRAD(T, SUF, V, LANES, MULADD)                                            \
/* gw[o*K + k] += sum over s < ns, p < P of g[s*gs + o*ldg + p] * xpad[s*xs + off[k] + p]   \
   (P % LANES == 0) */                                                                        \
static void nnl_shifted_wgrad_##SUF(const T* g, ptrdiff_t ldg, ptrdiff_t gs, ptrdiff_t O,    \
                                    const T* xpad, ptrdiff_t xs, const ptrdiff_t* off,        \
                                    ptrdiff_t K, ptrdiff_t P, ptrdiff_t ns, T* gw)            \
{                                                                                             \
    ptrdiff_t o0, k0, p, sm;                                                                  \
    int r, v, rows, cols;                                                                     \
    const T* gr[NNL_WG_R];                                                                    \
    const T* xk[NNL_WG_K];                                                                    \
    for (o0 = 0; o0 < O; o0 += NNL_WG_R) {                                                    \
        rows = O - o0 < NNL_WG_R ? (int)(O - o0) : NNL_WG_R;                                 \
        for (r = 0; r < NNL_WG_R; r++)   /* a short tile repeats its last row */              \
            gr[r] = g + (o0 + (r < rows ? r : rows - 1)) * ldg;                               \
        for (k0 = 0; k0 < K; k0 += NNL_WG_K) {                                                \
            V acc[NNL_WG_R][NNL_WG_K], a[NNL_WG_R], b;                                        \
            cols = K - k0 < NNL_WG_K ? (int)(K - k0) : NNL_WG_K;                              \
            for (v = 0; v < NNL_WG_K; v++)                                                    \
                xk[v] = xpad + off[k0 + (v < cols ? v : cols - 1)];                           \
            memset(acc, 0, sizeof acc);                                                       \
            for (sm = 0; sm < ns; sm++)                                                       \
                for (p = 0; p < P; p += (LANES)) {                                            \
                    for (r = 0; r < NNL_WG_R; r++) {                                          \
                        a[r] = nnl_sg_load_##SUF(gr[r] + sm * gs + p);                        \
                        NNL_SG_IN_REGISTER(a[r]);                                             \
                    }                                                                         \
                    for (v = 0; v < NNL_WG_K; v++) {                                          \
                        b = nnl_sg_load_##SUF(xk[v] + sm * xs + p);                           \
                        NNL_SG_IN_REGISTER(b);                                                \
                        for (r = 0; r < NNL_WG_R; r++)                                        \
                            acc[r][v] = MULADD(acc[r][v], a[r], b);                           \
                    }                                                                         \
                }                                                                             \
            for (r = 0; r < rows; r++)                                                        \
                for (v = 0; v < cols; v++)                                                    \
                    gw[(o0 + r) * K + k0 + v] += nnl_sg_hsum_##SUF(acc[r][v]);                \
        }                                                                                     \
    }                                                                                         \
}

/* Depthwise convolution: every output plane has its own few taps, so the product has one
   row. Instead of tiles of rows, a run of 8 vectors of pixels keeps 8 independent sums in
   registers over the taps (a single sum would wait on each multiply-add's latency):
       out[p] = sum_k w[k] * xpad[off[k] + p],            p < P (P % LANES == 0)
   and the weight gradient of one plane, taps in tiles of 9 with one vector sum each:
       gw[k] += sum_p g[p] * xpad[off[k] + p]              (lanes summed per call)  */
#define NNL_DEPTHWISE(T, SUF, V, LANES, MULADD, SPLAT)                                        \
static inline void nnl_dw_run_##SUF(const T* w, ptrdiff_t K, const ptrdiff_t* off,            \
                                    const T* x0, T* out, int nv)                              \
{                                                                                             \
    V acc[8], a;                                                                              \
    ptrdiff_t k;                                                                              \
    int v;                                                                                    \
    memset(acc, 0, sizeof acc);                                                               \
    for (k = 0; k < K; k++) {                                                                 \
        a = SPLAT(w[k]);                                                                      \
        for (v = 0; v < nv; v++)                                                              \
            acc[v] = MULADD(acc[v], a, nnl_sg_load_##SUF(x0 + off[k] + v * (LANES)));         \
    }                                                                                         \
    for (v = 0; v < nv; v++)                                                                  \
        nnl_sg_store_##SUF(out + v * (LANES), acc[v]);                                        \
}                                                                                             \
static void nnl_depthwise_plane_##SUF(const T* w, ptrdiff_t K, const ptrdiff_t* off,          \
                                      const T* xpad, ptrdiff_t P, T* out)                     \
{                                                                                             \
    ptrdiff_t p0;                                                                             \
    for (p0 = 0; p0 + 8 * (LANES) <= P; p0 += 8 * (LANES))                                    \
        nnl_dw_run_##SUF(w, K, off, xpad + p0, out + p0, 8);   /* unrolled: 8 is constant */  \
    for (; p0 < P; p0 += (LANES))                                                             \
        nnl_dw_run_##SUF(w, K, off, xpad + p0, out + p0, 1);                                  \
}
#define NNL_DEPTHWISE_WGRAD(T, SUF, V, LANES, MULADD)                                         \
static void nnl_depthwise_wgrad_##SUF(const T* g, const T* xpad, const ptrdiff_t* off,        \
                                      ptrdiff_t K, ptrdiff_t P, T* gw)                        \
{                                                                                             \
    ptrdiff_t k0, p;                                                                          \
    int t, nt;                                                                                \
    for (k0 = 0; k0 < K; k0 += 9) {                                                          \
        V acc[9], gv;                                                                         \
        nt = K - k0 < 9 ? (int)(K - k0) : 9;                                                  \
        memset(acc, 0, sizeof acc);                                                           \
        for (p = 0; p < P; p += (LANES)) {                                                    \
            gv = nnl_sg_load_##SUF(g + p);                                                    \
            NNL_SG_IN_REGISTER(gv);                                                           \
            for (t = 0; t < nt; t++)                                                          \
                acc[t] = MULADD(acc[t], gv, nnl_sg_load_##SUF(xpad + off[k0 + t] + p));       \
        }                                                                                     \
        for (t = 0; t < nt; t++)                                                              \
            gw[k0 + t] += nnl_sg_hsum_##SUF(acc[t]);                                          \
    }                                                                                         \
}

NNL_SHIFTED_GEMM(float, f, nnl_vf, NNL_LANES_F, NNL_SG_MULADD_F, NNL_SG_SPLAT_F)
NNL_SHIFTED_GEMM(double, d, nnl_vd, NNL_LANES_D, NNL_SG_MULADD_D, NNL_SG_SPLAT_D)
NNL_DEPTHWISE(float, f, nnl_vf, NNL_LANES_F, NNL_SG_MULADD_F, NNL_SG_SPLAT_F)
NNL_DEPTHWISE(double, d, nnl_vd, NNL_LANES_D, NNL_SG_MULADD_D, NNL_SG_SPLAT_D)
#if NNL_VECTOR_BITS == 512
/* The weight gradients in 256-bit vectors (see above: 8 floats, 4 doubles), with the
   multiply-add the 256-bit build uses: fused where the target has FMA, a product then a
   sum where not. Their lanes are then the 256-bit build's, and so are their bytes. */
#if NNL_VECTOR_TYPES
typedef double nnl_vhd __attribute__((vector_size(NNL_VECTOR_BYTES / 2)));
#else
typedef struct { double v[NNL_LANES_D / 2]; } nnl_vhd;
#endif
static inline nnl_vhf nnl_sg_load_hf(const float* p) { nnl_vhf v; memcpy(&v, p, sizeof v); return v; }
static inline nnl_vhd nnl_sg_load_hd(const double* p) { nnl_vhd v; memcpy(&v, p, sizeof v); return v; }
#if NNL_VECTOR_FMA && defined(__FMA__)   /* (-mavx512f alone brings 512-bit FMAs, not 256-bit ones) */
static inline nnl_vhf nnl_sg_muladd_hf(nnl_vhf c, nnl_vhf a, nnl_vhf b)
{ return (nnl_vhf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
static inline nnl_vhd nnl_sg_muladd_hd(nnl_vhd c, nnl_vhd a, nnl_vhd b)
{ return (nnl_vhd)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c); }
#elif NNL_VECTOR_TYPES
static inline nnl_vhf nnl_sg_muladd_hf(nnl_vhf c, nnl_vhf a, nnl_vhf b) { return c + a * b; }
static inline nnl_vhd nnl_sg_muladd_hd(nnl_vhd c, nnl_vhd a, nnl_vhd b) { return c + a * b; }
#else
static inline nnl_vhf nnl_sg_muladd_hf(nnl_vhf c, nnl_vhf a, nnl_vhf b)
{ int l; for (l = 0; l < NNL_LANES_D; l++) c.v[l] += a.v[l] * b.v[l]; return c; }
static inline nnl_vhd nnl_sg_muladd_hd(nnl_vhd c, nnl_vhd a, nnl_vhd b)
{ int l; for (l = 0; l < NNL_LANES_D / 2; l++) c.v[l] += a.v[l] * b.v[l]; return c; }
#endif
NNL_HSUM(float, hf, nnl_vhf, NNL_LANES_D)
NNL_HSUM(double, hd, nnl_vhd, NNL_LANES_D / 2)
NNL_SHIFTED_WGRAD(float, hf, nnl_vhf, NNL_LANES_D, nnl_sg_muladd_hf)
NNL_SHIFTED_WGRAD(double, hd, nnl_vhd, NNL_LANES_D / 2, nnl_sg_muladd_hd)
NNL_DEPTHWISE_WGRAD(float, hf, nnl_vhf, NNL_LANES_D, nnl_sg_muladd_hf)
NNL_DEPTHWISE_WGRAD(double, hd, nnl_vhd, NNL_LANES_D / 2, nnl_sg_muladd_hd)
#define nnl_shifted_wgrad_f nnl_shifted_wgrad_hf
#define nnl_shifted_wgrad_d nnl_shifted_wgrad_hd
#define nnl_depthwise_wgrad_f nnl_depthwise_wgrad_hf
#define nnl_depthwise_wgrad_d nnl_depthwise_wgrad_hd
#else
NNL_HSUM(float, f, nnl_vf, NNL_LANES_F)
NNL_HSUM(double, d, nnl_vd, NNL_LANES_D)
NNL_SHIFTED_WGRAD(float, f, nnl_vf, NNL_LANES_F, NNL_SG_MULADD_F)
NNL_SHIFTED_WGRAD(double, d, nnl_vd, NNL_LANES_D, NNL_SG_MULADD_D)
NNL_DEPTHWISE_WGRAD(float, f, nnl_vf, NNL_LANES_F, NNL_SG_MULADD_F)
NNL_DEPTHWISE_WGRAD(double, d, nnl_vd, NNL_LANES_D, NNL_SG_MULADD_D)
#endif

#endif
