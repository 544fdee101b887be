/* Row reductions for the normalisation kernels, accumulated in double.

   Each sum runs in 16 independent partial sums (element i goes to lane
   i % 16, held as four vectors of four doubles), and the lanes are combined
   in one fixed tree at the end; the elements past the last multiple of 16
   are then added in order. The order depends on the length alone, never on
   the thread count. Sixteen lanes keep enough adds in flight to hide their
   latency: one running sum would wait for each add before the next, and the
   compiler may not reorder a float sum to vectorise it itself.

   With GCC or Clang the four-double vector is a real SIMD type (vector_size),
   so the loops are vector code whatever the optimiser decides; elsewhere it is
   a struct of four doubles with the same arithmetic. Shared by _norm.pyx
   through `cdef extern from "_lanes.h"`. */
#ifndef NNLITE_LANES_H
#define NNLITE_LANES_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
typedef double nnl_v4d __attribute__((vector_size(32)));
typedef float nnl_v4f __attribute__((vector_size(16)));
static inline nnl_v4d nnl_add(nnl_v4d a, nnl_v4d b) { return a + b; }
static inline nnl_v4d nnl_sub(nnl_v4d a, nnl_v4d b) { return a - b; }
static inline nnl_v4d nnl_mul(nnl_v4d a, nnl_v4d b) { return a * b; }
static inline double nnl_lane(nnl_v4d a, int l) { return a[l]; }
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
static inline nnl_v4d nnl_splat(double s) { nnl_v4d v = {s, s, s, s}; return v; }
#else
typedef struct { double v[4]; } nnl_v4d;
#define NNL_LANEWISE(name, op) \
static inline nnl_v4d name(nnl_v4d a, nnl_v4d b) \
{ nnl_v4d r; int l; for (l = 0; l < 4; l++) r.v[l] = a.v[l] op b.v[l]; return r; }
NNL_LANEWISE(nnl_add, +)
NNL_LANEWISE(nnl_sub, -)
NNL_LANEWISE(nnl_mul, *)
static inline double nnl_lane(nnl_v4d a, int l) { return a.v[l]; }
static inline nnl_v4d nnl_load_f(const float* p) { nnl_v4d r = {{p[0], p[1], p[2], p[3]}}; return r; }
static inline nnl_v4d nnl_load_d(const double* p) { nnl_v4d r = {{p[0], p[1], p[2], p[3]}}; return r; }
static inline nnl_v4d nnl_splat(double s) { nnl_v4d r = {{s, s, s, s}}; return r; }
#endif

/* lanes (a0 a1 a2 a3) -> ((a0 + a1) + (a2 + a3)), then its elements (e0 + e2) + (e1 + e3) */
static inline double nnl_tree(const nnl_v4d* a)
{
    nnl_v4d v = nnl_add(nnl_add(a[0], a[1]), nnl_add(a[2], a[3]));
    return (nnl_lane(v, 0) + nnl_lane(v, 2)) + (nnl_lane(v, 1) + nnl_lane(v, 3));
}

/* The four reductions, for float (suffix _f) and double (suffix _d) rows. In each
   loop, k runs over the four vectors of lanes: elements i + 4k .. i + 4k + 3. */
#define NNL_REDUCTIONS(T, SUF)                                                                \
static inline double nnl_sum_##SUF(const T* x, ptrdiff_t n)                                  \
{                                                                                             \
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 4; k++)                                                               \
            a[k] = nnl_add(a[k], nnl_load_##SUF(x + i + 4 * k));                              \
    double s = nnl_tree(a);                                                                   \
    for (; i < n; i++) s += x[i];                                                             \
    return s;                                                                                 \
}                                                                                             \
/* sum((x - mean)^2) */                                                                       \
static inline double nnl_sum_sq_dev_##SUF(const T* x, ptrdiff_t n, double mean)              \
{                                                                                             \
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d m = nnl_splat(mean), d;                                                           \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 4; k++) {                                                             \
            d = nnl_sub(nnl_load_##SUF(x + i + 4 * k), m);                                    \
            a[k] = nnl_add(a[k], nnl_mul(d, d));                                              \
        }                                                                                     \
    double s = nnl_tree(a), e;                                                                \
    for (; i < n; i++) { e = x[i] - mean; s += e * e; }                                       \
    return s;                                                                                 \
}                                                                                             \
/* sum(g) and sum(g (x - mean)) */                                                            \
static inline void nnl_sum_g_and_g_dev_##SUF(const T* g, const T* x, ptrdiff_t n,            \
                                              double mean, double* sum_g, double* sum_g_dev)  \
{                                                                                             \
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d b[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d m = nnl_splat(mean), gv;                                                          \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 4; k++) {                                                             \
            gv = nnl_load_##SUF(g + i + 4 * k);                                               \
            a[k] = nnl_add(a[k], gv);                                                         \
            b[k] = nnl_add(b[k], nnl_mul(gv, nnl_sub(nnl_load_##SUF(x + i + 4 * k), m)));     \
        }                                                                                     \
    double sa = nnl_tree(a), sb = nnl_tree(b);                                                \
    for (; i < n; i++) { sa += g[i]; sb += g[i] * (x[i] - mean); }                           \
    *sum_g = sa;                                                                              \
    *sum_g_dev = sb;                                                                          \
}                                                                                             \
/* sum(g w xhat) and sum(g w), xhat = (x - mean) rstd */                                      \
static inline void nnl_row_dots_##SUF(const T* g, const T* x, const T* w, ptrdiff_t n,       \
                                       double mean, double rstd, double* sum_gw_xhat,         \
                                       double* sum_gw)                                        \
{                                                                                             \
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d b[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d m = nnl_splat(mean), r = nnl_splat(rstd), gw, xhat;                               \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 4; k++) {                                                             \
            gw = nnl_mul(nnl_load_##SUF(g + i + 4 * k), nnl_load_##SUF(w + i + 4 * k));       \
            xhat = nnl_mul(nnl_sub(nnl_load_##SUF(x + i + 4 * k), m), r);                     \
            a[k] = nnl_add(a[k], nnl_mul(gw, xhat));                                          \
            b[k] = nnl_add(b[k], gw);                                                         \
        }                                                                                     \
    double sa = nnl_tree(a), sb = nnl_tree(b), gws;                                           \
    for (; i < n; i++) {                                                                      \
        gws = (double)g[i] * w[i];                                                            \
        sa += gws * ((x[i] - mean) * rstd);                                                   \
        sb += gws;                                                                            \
    }                                                                                         \
    *sum_gw_xhat = sa;                                                                        \
    *sum_gw = sb;                                                                             \
}

NNL_REDUCTIONS(float, f)
NNL_REDUCTIONS(double, d)

#endif
