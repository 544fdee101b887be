/* Runs the width-generic vector code (_lanes.h, _shifted_gemm.h) on fixed
   pseudo-random inputs and writes every result's bytes to stdout.

   test_vector_width.py compiles this twice, with -DNNLITE_VECTOR_BITS=256 and
   512 (emulated in 256-bit halves where the CPU has no AVX-512), and compares the
   two outputs byte for byte: the lane reductions and the shifted product's kept
   outputs must not depend on the width. The weight-gradient sums end in a sum
   of a vector's lanes, so they are not written here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "_lanes.h"
#include "_shifted_gemm.h"

static uint64_t state = 88172645463325252ull;

static double uniform(void)   /* xorshift64: the same numbers in both builds */
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void put(const void* p, size_t bytes) { fwrite(p, 1, bytes, stdout); }

#define ROWS(T, SUF)                                                                 \
static void rows_##SUF(void)                                                        \
{                                                                                   \
    static const ptrdiff_t lengths[] = {0, 1, 15, 16, 17, 31, 127, 128, 129, 300, 1001}; \
    size_t c;                                                                       \
    ptrdiff_t i, n;                                                                 \
    for (c = 0; c < sizeof lengths / sizeof lengths[0]; c++) {                      \
        n = lengths[c];                                                             \
        T* x = malloc((n + 1) * sizeof(T));                                         \
        T* g = malloc((n + 1) * sizeof(T));                                         \
        T* w = malloc((n + 1) * sizeof(T));                                         \
        for (i = 0; i < n; i++) {                                                   \
            x[i] = (T)(uniform() * 3 + 0.5);                                        \
            g[i] = (T)uniform();                                                    \
            w[i] = (T)(uniform() + 1);                                              \
        }                                                                           \
        double r[10];                                                               \
        T m = nnl_max_##SUF(x, n);                                                  \
        r[0] = nnl_sum_##SUF(x, n);                                                 \
        r[1] = nnl_dot_##SUF(x, g, n);                                              \
        r[2] = nnl_sum_sq_dev_##SUF(x, n, 0.25);                                    \
        nnl_shifted_sums_##SUF(x, n, n ? (double)x[0] : 0.0, &r[3], &r[4]);        \
        nnl_sum_g_and_g_dev_##SUF(g, x, n, 0.25, &r[5], &r[6]);                     \
        nnl_row_dots_##SUF(g, x, w, n, 0.25, 1.5, &r[7], &r[8]);                    \
        r[9] = (double)m;                                                           \
        put(r, sizeof r);                                                           \
        free(x);                                                                    \
        free(g);                                                                    \
        free(w);                                                                    \
    }                                                                               \
}

ROWS(float, f)
ROWS(double, d)

/* out[o, p] = sum_k w[o, k] xpad[off[k] + p] for O = 1 .. 11 output rows (whole and
   short tiles at both widths), 3x3 taps over 2 planes of 9 x 14; the first 112 pixels
   of each row are kept and written. P, rounded up to the build's tile, is at most 144:
   the planes are laid out the same in both builds. */
#define SHIFTED(T, SUF)                                                             \
static void shifted_##SUF(void)                                                     \
{                                                                                   \
    enum { C = 2, KH = 3, KW = 3, WP = 14, HP = 9, KEEP = 112 };                    \
    ptrdiff_t K = C * KH * KW, off[C * KH * KW], tile = nnl_shifted_tile_##SUF();  \
    ptrdiff_t P = (KEEP + tile - 1) / tile * tile, S = HP * WP + 144, O, i, k;      \
    T* xpad = calloc(C * S + P, sizeof(T));                                         \
    T* w = malloc(11 * K * sizeof(T));                                              \
    T* out = malloc(11 * P * sizeof(T));                                            \
    T* plane = malloc(P * sizeof(T));                                               \
    for (i = 0; i < C * S; i++) xpad[i] = (T)uniform();                             \
    for (i = 0; i < 11 * K; i++) w[i] = (T)uniform();                               \
    for (k = 0; k < K; k++)                                                         \
        off[k] = k / (KH * KW) * S + k % (KH * KW) / KW * WP + k % KW;              \
    for (O = 1; O <= 11; O++) {                                                     \
        nnl_shifted_gemm_##SUF(w, K, off, xpad, O, P, out, P);                      \
        for (i = 0; i < O; i++) put(out + i * P, KEEP * sizeof(T));                 \
    }                                                                               \
    nnl_depthwise_plane_##SUF(w, KH * KW, off, xpad, P, plane);                     \
    put(plane, KEEP * sizeof(T));                                                   \
    free(xpad);                                                                     \
    free(w);                                                                        \
    free(out);                                                                      \
    free(plane);                                                                    \
}

SHIFTED(float, f)
SHIFTED(double, d)

/* The weight gradients, gw[o, k] = sum over 3 samples and 112 pixels of g[o, p]
   xpad[off[k] + p], for O = 1 .. 11 channels and the taps above, and the depthwise one
   of each channel's plane: their lanes are summed in 256-bit vectors at either width, so
   their bytes too must not depend on the build. */
#define WGRAD(T, SUF)                                                               \
static void wgrad_##SUF(void)                                                       \
{                                                                                   \
    enum { C = 2, KH = 3, KW = 3, WP = 14, HP = 9, P = 112, NS = 3 };               \
    ptrdiff_t K = C * KH * KW, off[C * KH * KW], S = HP * WP + 144, O, i, k;        \
    T* xpad = calloc(NS * C * S, sizeof(T));                                        \
    T* g = malloc(NS * 11 * P * sizeof(T));                                         \
    T* gw = malloc(11 * K * sizeof(T));                                             \
    for (i = 0; i < NS * C * S; i++) xpad[i] = (T)uniform();                        \
    for (i = 0; i < NS * 11 * P; i++) g[i] = (T)uniform();                          \
    for (k = 0; k < K; k++)                                                         \
        off[k] = k / (KH * KW) * S + k % (KH * KW) / KW * WP + k % KW;              \
    for (O = 1; O <= 11; O++) {                                                     \
        memset(gw, 0, 11 * K * sizeof(T));                                          \
        nnl_shifted_wgrad_##SUF(g, P, 11 * P, O, xpad, C * S, off, K, P, NS, gw);   \
        put(gw, O * K * sizeof(T));                                                 \
    }                                                                               \
    for (O = 0; O < 11; O++) {                                                      \
        memset(gw, 0, K * sizeof(T));                                               \
        nnl_depthwise_wgrad_##SUF(g + O * P, xpad, off, KH * KW, P, gw);            \
        put(gw, KH * KW * sizeof(T));                                               \
    }                                                                               \
    free(xpad);                                                                     \
    free(g);                                                                        \
    free(gw);                                                                       \
}

WGRAD(float, f)
WGRAD(double, d)

int main(void)
{
    rows_f();
    rows_d();
    shifted_f();
    shifted_d();
    wgrad_f();
    wgrad_d();
    fprintf(stderr, "%d\n", nnl_vector_bits());
    return 0;
}
