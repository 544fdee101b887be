/* Row reductions for the normalisation and softmax kernels, sums accumulated in double.

   Each sum runs in 16 independent partial sums (element i goes to lane
   i % 16, held as four vectors of four doubles), and the lanes are combined
   in one fixed tree at the end; the elements past the last multiple of 16
   are then added in order. The order depends on the length alone, never on
   the thread count. Sixteen lanes keep enough adds in flight to hide their
   latency: one running sum would wait for each add before the next, and the
   compiler may not reorder a float sum to vectorise it itself.

   With GCC or Clang the four-double and eight-float vectors are real SIMD types (vector_size),
   so the loops are vector code whatever the optimiser decides; elsewhere it is
   a struct of four doubles (eight floats) with the same arithmetic. Shared by _norm.pyx
   and _softmax.pyx through `cdef extern from "_lanes.h"`.

   The plain loop each sum equals (the same terms; only the order of the adds differs):

       double s = 0;
       for (ptrdiff_t i = 0; i < n; ++i) s += (double)x[i];     (or x[i] * y[i], ...) */
#ifndef NNLITE_LANES_H
#define NNLITE_LANES_H

#include <math.h>
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
typedef float nnl_v8f __attribute__((vector_size(32)));
static inline nnl_v8f nnl_add8(nnl_v8f a, nnl_v8f b) { return a + b; }
static inline nnl_v8f nnl_sub8(nnl_v8f a, nnl_v8f b) { return a - b; }
static inline nnl_v8f nnl_mul8(nnl_v8f a, nnl_v8f b) { return a * b; }
static inline nnl_v8f nnl_load8(const float* p)
{
    nnl_v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline nnl_v8f nnl_splat8(float s) { nnl_v8f v = {s, s, s, s, s, s, s, s}; return v; }
/* lanes 4h .. 4h + 3 of a (h = 0 or 1), widened to double */
static inline nnl_v4d nnl_widen(nnl_v8f a, int h)
{
    nnl_v4f v = {a[4 * h], a[4 * h + 1], a[4 * h + 2], a[4 * h + 3]};
    return __builtin_convertvector(v, nnl_v4d);
}
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
typedef struct { float v[8]; } nnl_v8f;
#define NNL_LANEWISE8(name, op) \
static inline nnl_v8f name(nnl_v8f a, nnl_v8f b) \
{ nnl_v8f r; int l; for (l = 0; l < 8; l++) r.v[l] = a.v[l] op b.v[l]; return r; }
NNL_LANEWISE8(nnl_add8, +)
NNL_LANEWISE8(nnl_sub8, -)
NNL_LANEWISE8(nnl_mul8, *)
static inline nnl_v8f nnl_load8(const float* p)
{ nnl_v8f r; memcpy(r.v, p, sizeof r.v); return r; }
static inline nnl_v8f nnl_splat8(float s)
{ nnl_v8f r; int l; for (l = 0; l < 8; l++) r.v[l] = s; return r; }
static inline nnl_v4d nnl_widen(nnl_v8f a, int h)
{ nnl_v4d r = {{a.v[4 * h], a.v[4 * h + 1], a.v[4 * h + 2], a.v[4 * h + 3]}}; return r; }
#endif

/* lanes (a0 a1 a2 a3) -> ((a0 + a1) + (a2 + a3)), then its elements (e0 + e2) + (e1 + e3) */
static inline double nnl_tree(const nnl_v4d* a)
{
    nnl_v4d v = nnl_add(nnl_add(a[0], a[1]), nnl_add(a[2], a[3]));
    return (nnl_lane(v, 0) + nnl_lane(v, 2)) + (nnl_lane(v, 1) + nnl_lane(v, 3));
}

/* Five reductions, for float (suffix _f) and double (suffix _d) rows. In each
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
/* sum(a b) */                                                                                \
static inline double nnl_dot_##SUF(const T* a, const T* b, ptrdiff_t n)                     \
{                                                                                             \
    nnl_v4d s[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 4; k++)                                                               \
            s[k] = nnl_add(s[k], nnl_mul(nnl_load_##SUF(a + i + 4 * k),                       \
                                         nnl_load_##SUF(b + i + 4 * k)));                     \
    double t = nnl_tree(s);                                                                   \
    for (; i < n; i++) t += (double)a[i] * b[i];                                              \
    return t;                                                                                 \
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
/* sum(x - shift) and sum((x - shift)^2) in one pass. With shift one of the row's own    \
   elements, sum((x - mean)^2) = s2 - s1^2 / n loses at most a factor n of the double's     \
   precision to cancellation ((shift - mean)^2 <= n var), far below float32's. */           \
static inline void nnl_shifted_sums_##SUF(const T* x, ptrdiff_t n, double shift,             \
                                          double* s1, double* s2)                            \
{                                                                                             \
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d q[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};                  \
    nnl_v4d m = nnl_splat(shift), d;                                                          \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < 4; k++) {                                                             \
            d = nnl_sub(nnl_load_##SUF(x + i + 4 * k), m);                                    \
            a[k] = nnl_add(a[k], d);                                                          \
            q[k] = nnl_add(q[k], nnl_mul(d, d));                                              \
        }                                                                                     \
    double sa = nnl_tree(a), sq = nnl_tree(q), e;                                             \
    for (; i < n; i++) { e = x[i] - shift; sa += e; sq += e * e; }                            \
    *s1 = sa;                                                                                 \
    *s2 = sq;                                                                                 \
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
}

NNL_REDUCTIONS(float, f)
NNL_REDUCTIONS(double, d)

/* The largest element of a row (-inf for an empty one), in vector lanes where AVX is
   there: a max is exact, so the order of the comparisons cannot change the result. A NaN
   may or may not win; the softmax kernels that use this turn a NaN row into NaNs anyway. */
#if defined(__AVX__)
#include <immintrin.h>
static inline float nnl_max_f(const float* x, ptrdiff_t n)
{
    __m256 m = _mm256_set1_ps(-INFINITY);
    float l[8], r = -INFINITY;
    ptrdiff_t i = 0;
    int k;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    _mm256_storeu_ps(l, m);
    for (k = 0; k < 8; k++) r = l[k] > r ? l[k] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}
static inline double nnl_max_d(const double* x, ptrdiff_t n)
{
    __m256d m = _mm256_set1_pd(-INFINITY);
    double l[4], r = -INFINITY;
    ptrdiff_t i = 0;
    int k;
    for (; i + 4 <= n; i += 4) m = _mm256_max_pd(m, _mm256_loadu_pd(x + i));
    _mm256_storeu_pd(l, m);
    for (k = 0; k < 4; k++) r = l[k] > r ? l[k] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}
#else
#define NNL_MAX(T, SUF)                                                                       \
static inline T nnl_max_##SUF(const T* x, ptrdiff_t n)                                        \
{   /* four running maxima break the compare chain */                                         \
    T m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};                                    \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 4 <= n; i += 4)                                                                \
        for (k = 0; k < 4; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];                     \
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];                                      \
    m[0] = m[1] > m[0] ? m[1] : m[0];                                                         \
    m[2] = m[3] > m[2] ? m[3] : m[2];                                                         \
    return m[2] > m[0] ? m[2] : m[0];                                                         \
}
NNL_MAX(float, f)
NNL_MAX(double, d)
#endif

/* sum(g w xhat) and sum(g w) over a row, xhat = (x - mean) rstd: the row dots of the
   layer-norm backward. Two versions, since float rows are done differently. */

/* double: every product and sum in double, in the 16 lanes. */
static inline void nnl_row_dots_d(const double* g, const double* x, const double* w, ptrdiff_t n,
                                  double mean, double rstd, double* sum_gw_xhat, double* sum_gw)
{
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};
    nnl_v4d b[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};
    nnl_v4d m = nnl_splat(mean), r = nnl_splat(rstd), gw, xhat;
    ptrdiff_t i = 0;
    int k;
    for (; i + 16 <= n; i += 16)
        for (k = 0; k < 4; k++) {
            gw = nnl_mul(nnl_load_d(g + i + 4 * k), nnl_load_d(w + i + 4 * k));
            xhat = nnl_mul(nnl_sub(nnl_load_d(x + i + 4 * k), m), r);
            a[k] = nnl_add(a[k], nnl_mul(gw, xhat));
            b[k] = nnl_add(b[k], gw);
        }
    double sa = nnl_tree(a), sb = nnl_tree(b), gws;
    for (; i < n; i++) {
        gws = g[i] * w[i];
        sa += gws * ((x[i] - mean) * rstd);
        sb += gws;
    }
    *sum_gw_xhat = sa;
    *sum_gw = sb;
}

/* float: the products in float (xhat exactly as the per-element step computes it, from
   the float mean and rstd), summed in float over runs of at most 8 per lane (128
   elements), and the runs added into the double lanes. Converting every product to
   double made this pass the backward's slowest; a float sum of 8 terms is good to
   about 5e-7 of its magnitude, and the row's total is still a double sum. */
static inline void nnl_row_dots_f(const float* g, const float* x, const float* w, ptrdiff_t n,
                                  double mean, double rstd, double* sum_gw_xhat, double* sum_gw)
{
    enum { RUN = 128 };
    nnl_v4d a[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};
    nnl_v4d b[4] = {nnl_splat(0), nnl_splat(0), nnl_splat(0), nnl_splat(0)};
    float fm = (float)mean, fr = (float)rstd, gws;
    nnl_v8f m = nnl_splat8(fm), r = nnl_splat8(fr), gw, xhat, ra[2], rb[2];
    ptrdiff_t i = 0, end;
    int k;
    while (i + 16 <= n) {
        ra[0] = ra[1] = rb[0] = rb[1] = nnl_splat8(0);
        end = i + RUN <= n ? i + RUN : n;
        for (; i + 16 <= end; i += 16)
            for (k = 0; k < 2; k++) {
                gw = nnl_mul8(nnl_load8(g + i + 8 * k), nnl_load8(w + i + 8 * k));
                xhat = nnl_mul8(nnl_sub8(nnl_load8(x + i + 8 * k), m), r);
                ra[k] = nnl_add8(ra[k], nnl_mul8(gw, xhat));
                rb[k] = nnl_add8(rb[k], gw);
            }
        /* run lanes 0-7 of ra[k] are lanes 8k .. 8k + 7, i.e. double vectors 2k and 2k + 1 */
        for (k = 0; k < 4; k++) {
            a[k] = nnl_add(a[k], nnl_widen(ra[k / 2], k % 2));
            b[k] = nnl_add(b[k], nnl_widen(rb[k / 2], k % 2));
        }
    }
    double sa = nnl_tree(a), sb = nnl_tree(b);
    for (; i < n; i++) {
        gws = g[i] * w[i];
        sa += (double)(gws * ((x[i] - fm) * fr));
        sb += gws;
    }
    *sum_gw_xhat = sa;
    *sum_gw = sb;
}

#endif
