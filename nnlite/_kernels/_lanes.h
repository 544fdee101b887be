/* Row reductions for the normalisation kernels, accumulated in double.

   Each sum runs in 16 independent partial sums (element i goes to lane
   i % 16), combined in one fixed tree at the end; the elements past the last
   multiple of 16 are then added in order. The order depends on the length
   alone, never on the thread count. Sixteen lanes keep enough adds in flight
   to hide their latency: one running sum would wait for each add before the
   next, and the compiler may not reorder a float sum to vectorise it.

   GCC and Clang get the lanes as four explicit vectors of four doubles
   (vector_size), so the loops are vector code whatever the optimiser
   decides; other compilers get the same sums lane by lane. Shared by
   _norm.pyx through `cdef extern from "_lanes.h"`. */
#ifndef NNLITE_LANES_H
#define NNLITE_LANES_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)

typedef double nnl_v4d __attribute__((vector_size(32)));
typedef float nnl_v4f __attribute__((vector_size(16)));

static inline nnl_v4d nnl_load_f(const float* p)
{
    nnl_v4f v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, nnl_v4d);
}
static inline nnl_v4d nnl_load_d(const double* p)
{
    nnl_v4d v;
    memcpy(&v, p, sizeof v);
    return v;
}
/* lanes (a0 a1 a2 a3) -> ((a0 + a1) + (a2 + a3)), then (e0 + e2) + (e1 + e3) */
static inline double nnl_tree(nnl_v4d a0, nnl_v4d a1, nnl_v4d a2, nnl_v4d a3)
{
    nnl_v4d v = (a0 + a1) + (a2 + a3);
    return (v[0] + v[2]) + (v[1] + v[3]);
}

#define NNL_REDUCTIONS(T, SUF)                                                                \
static inline double nnl_sum_##SUF(const T* x, ptrdiff_t n)                                  \
{                                                                                             \
    nnl_v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;                                     \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 16 <= n; i += 16) {                                                            \
        a0 += nnl_load_##SUF(x + i);      a1 += nnl_load_##SUF(x + i + 4);                    \
        a2 += nnl_load_##SUF(x + i + 8);  a3 += nnl_load_##SUF(x + i + 12);                   \
    }                                                                                         \
    double s = nnl_tree(a0, a1, a2, a3);                                                      \
    for (; i < n; i++) s += x[i];                                                             \
    return s;                                                                                 \
}                                                                                             \
/* sum((x - mean)^2) */                                                                       \
static inline double nnl_sum_sq_dev_##SUF(const T* x, ptrdiff_t n, double mean)              \
{                                                                                             \
    nnl_v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0, m = a0 + mean, d0, d1, d2, d3;      \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 16 <= n; i += 16) {                                                            \
        d0 = nnl_load_##SUF(x + i) - m;      d1 = nnl_load_##SUF(x + i + 4) - m;              \
        d2 = nnl_load_##SUF(x + i + 8) - m;  d3 = nnl_load_##SUF(x + i + 12) - m;             \
        a0 += d0 * d0;  a1 += d1 * d1;  a2 += d2 * d2;  a3 += d3 * d3;                        \
    }                                                                                         \
    double s = nnl_tree(a0, a1, a2, a3), d;                                                   \
    for (; i < n; i++) { d = x[i] - mean; s += d * d; }                                       \
    return s;                                                                                 \
}                                                                                             \
/* sum(g) and sum(g (x - mean)) */                                                            \
static inline void nnl_sum_g_and_g_dev_##SUF(const T* g, const T* x, ptrdiff_t n,            \
                                              double mean, double* sum_g, double* sum_g_dev)  \
{                                                                                             \
    nnl_v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
    nnl_v4d m = a0 + mean, g0, g1, g2, g3;                                                    \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 16 <= n; i += 16) {                                                            \
        g0 = nnl_load_##SUF(g + i);      g1 = nnl_load_##SUF(g + i + 4);                      \
        g2 = nnl_load_##SUF(g + i + 8);  g3 = nnl_load_##SUF(g + i + 12);                     \
        a0 += g0;  a1 += g1;  a2 += g2;  a3 += g3;                                            \
        b0 += g0 * (nnl_load_##SUF(x + i) - m);      b1 += g1 * (nnl_load_##SUF(x + i + 4) - m);  \
        b2 += g2 * (nnl_load_##SUF(x + i + 8) - m);  b3 += g3 * (nnl_load_##SUF(x + i + 12) - m); \
    }                                                                                         \
    double sa = nnl_tree(a0, a1, a2, a3), sb = nnl_tree(b0, b1, b2, b3);                      \
    for (; i < n; i++) { sa += g[i]; sb += g[i] * (x[i] - mean); }                           \
    *sum_g = sa;                                                                              \
    *sum_g_dev = sb;                                                                          \
}                                                                                             \
/* sum(g w xhat) and sum(g w), xhat = (x - mean) rstd */                                      \
static inline void nnl_row_dots_##SUF(const T* g, const T* x, const T* w, ptrdiff_t n,       \
                                       double mean, double rstd, double* sum_gw_xhat,         \
                                       double* sum_gw)                                        \
{                                                                                             \
    nnl_v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
    nnl_v4d m = a0 + mean, r = a0 + rstd, w0, w1, w2, w3;                                     \
    ptrdiff_t i = 0;                                                                          \
    for (; i + 16 <= n; i += 16) {                                                            \
        w0 = nnl_load_##SUF(g + i) * nnl_load_##SUF(w + i);                                   \
        w1 = nnl_load_##SUF(g + i + 4) * nnl_load_##SUF(w + i + 4);                           \
        w2 = nnl_load_##SUF(g + i + 8) * nnl_load_##SUF(w + i + 8);                           \
        w3 = nnl_load_##SUF(g + i + 12) * nnl_load_##SUF(w + i + 12);                         \
        a0 += w0 * ((nnl_load_##SUF(x + i) - m) * r);                                         \
        a1 += w1 * ((nnl_load_##SUF(x + i + 4) - m) * r);                                     \
        a2 += w2 * ((nnl_load_##SUF(x + i + 8) - m) * r);                                     \
        a3 += w3 * ((nnl_load_##SUF(x + i + 12) - m) * r);                                    \
        b0 += w0;  b1 += w1;  b2 += w2;  b3 += w3;                                            \
    }                                                                                         \
    double sa = nnl_tree(a0, a1, a2, a3), sb = nnl_tree(b0, b1, b2, b3), gw;                  \
    for (; i < n; i++) { gw = (double)g[i] * w[i]; sa += gw * ((x[i] - mean) * rstd); sb += gw; } \
    *sum_gw_xhat = sa;                                                                        \
    *sum_gw = sb;                                                                             \
}

#else  /* no vector extensions: the same sums, one lane at a time */

static inline double nnl_tree16(double* a)
{
    int width, l;
    for (width = 8; width >= 1; width /= 2)
        for (l = 0; l < width; l++) a[l] += a[l + width];
    return a[0];
}

#define NNL_REDUCTIONS(T, SUF)                                                                \
static inline double nnl_sum_##SUF(const T* x, ptrdiff_t n)                                  \
{                                                                                             \
    double a[16] = {0}, s; ptrdiff_t i = 0; int l;                                            \
    for (; i + 16 <= n; i += 16) for (l = 0; l < 16; l++) a[l] += x[i + l];                   \
    s = nnl_tree16(a);                                                                        \
    for (; i < n; i++) s += x[i];                                                             \
    return s;                                                                                 \
}                                                                                             \
static inline double nnl_sum_sq_dev_##SUF(const T* x, ptrdiff_t n, double mean)              \
{                                                                                             \
    double a[16] = {0}, s, d; ptrdiff_t i = 0; int l;                                         \
    for (; i + 16 <= n; i += 16)                                                              \
        for (l = 0; l < 16; l++) { d = x[i + l] - mean; a[l] += d * d; }                      \
    s = nnl_tree16(a);                                                                        \
    for (; i < n; i++) { d = x[i] - mean; s += d * d; }                                       \
    return s;                                                                                 \
}                                                                                             \
static inline void nnl_sum_g_and_g_dev_##SUF(const T* g, const T* x, ptrdiff_t n,            \
                                              double mean, double* sum_g, double* sum_g_dev)  \
{                                                                                             \
    double a[16] = {0}, b[16] = {0}, sa, sb; ptrdiff_t i = 0; int l;                          \
    for (; i + 16 <= n; i += 16)                                                              \
        for (l = 0; l < 16; l++) { a[l] += g[i + l]; b[l] += g[i + l] * (x[i + l] - mean); } \
    sa = nnl_tree16(a); sb = nnl_tree16(b);                                                   \
    for (; i < n; i++) { sa += g[i]; sb += g[i] * (x[i] - mean); }                           \
    *sum_g = sa; *sum_g_dev = sb;                                                             \
}                                                                                             \
static inline void nnl_row_dots_##SUF(const T* g, const T* x, const T* w, ptrdiff_t n,       \
                                       double mean, double rstd, double* sum_gw_xhat,         \
                                       double* sum_gw)                                        \
{                                                                                             \
    double a[16] = {0}, b[16] = {0}, sa, sb, gw; ptrdiff_t i = 0; int l;                      \
    for (; i + 16 <= n; i += 16)                                                              \
        for (l = 0; l < 16; l++) {                                                            \
            gw = (double)g[i + l] * w[i + l];                                                 \
            a[l] += gw * ((x[i + l] - mean) * rstd); b[l] += gw;                              \
        }                                                                                     \
    sa = nnl_tree16(a); sb = nnl_tree16(b);                                                   \
    for (; i < n; i++) { gw = (double)g[i] * w[i]; sa += gw * ((x[i] - mean) * rstd); sb += gw; } \
    *sum_gw_xhat = sa; *sum_gw = sb;                                                          \
}

#endif

NNL_REDUCTIONS(float, f)
NNL_REDUCTIONS(double, d)

#endif
