/* Row reductions for the normalisation and softmax kernels, sums accumulated in double.

   Each sum runs in 16 independent partial sums (element i goes to lane
   i % 16, held as four vectors of four doubles at 256 bits, two of eight at
   512: _vector.h chooses), and the lanes are combined in one fixed tree at the
   end; the elements past the last multiple of 16
   are then added in order. The order depends on the length alone, never on
   the thread count or the vector width: a 512-bit build gives the bytes a
   256-bit build gives (tests/_kernels/test_vector_width.py). Sixteen lanes keep enough adds in flight to hide their
   latency: one running sum would wait for each add before the next, and the
   compiler may not reorder a float sum to vectorise it itself.

   With GCC or Clang the double and float vectors are real SIMD types (vector_size),
   so the loops are vector code whatever the optimiser decides; elsewhere they are
   structs of lanes with the same arithmetic (_vector.h). Shared by _norm.pyx
   and _softmax.pyx through `cdef extern from "_lanes.h"`.

   The plain loop each sum equals (the same terms; only the order of the adds differs):

       double s = 0;
       for (ptrdiff_t i = 0; i < n; ++i) s += (double)x[i];     (or x[i] * y[i], ...) */
#ifndef NNLITE_LANES_H
#define NNLITE_LANES_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "_vector.h"

/* The 16 lanes are NNL_DV vectors of doubles; a float run (nnl_row_dots_f) holds them
   as NNL_FV vectors of floats, each widening into two double vectors. */
#define NNL_DV (16 / NNL_LANES_D)
#define NNL_FV (16 / NNL_LANES_F)
#define NNL_ZERO(a, n) do { int z_; for (z_ = 0; z_ < (n); z_++) a[z_] = nnl_splat(0); } while (0)

#if NNL_VECTOR_TYPES
typedef double nnl_v4d __attribute__((vector_size(32)));
static inline nnl_vd nnl_add(nnl_vd a, nnl_vd b) { return a + b; }
static inline nnl_vd nnl_sub(nnl_vd a, nnl_vd b) { return a - b; }
static inline nnl_vd nnl_mul(nnl_vd a, nnl_vd b) { return a * b; }
static inline nnl_vd nnl_load_f(const float* p)
{
    nnl_vhf v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, nnl_vd);
}
static inline nnl_vd nnl_load_d(const double* p)
{
    nnl_vd v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline nnl_vd nnl_splat(double s) { return NNL_SPLAT_D(s); }
static inline nnl_vf nnl_addf(nnl_vf a, nnl_vf b) { return a + b; }
static inline nnl_vf nnl_subf(nnl_vf a, nnl_vf b) { return a - b; }
static inline nnl_vf nnl_mulf(nnl_vf a, nnl_vf b) { return a * b; }
static inline nnl_vf nnl_loadf(const float* p)
{
    nnl_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline nnl_vf nnl_splatf(float s) { return NNL_SPLAT_F(s); }
/* lanes NNL_LANES_D h .. NNL_LANES_D (h + 1) - 1 of a (h = 0 or 1), widened to double */
static inline nnl_vd nnl_widen(nnl_vf a, int h)
{
    nnl_vhf v;
    memcpy(&v, (const float*)&a + NNL_LANES_D * h, sizeof v);
    return __builtin_convertvector(v, nnl_vd);
}
/* lanes (a0 a1 a2 a3), four doubles each -> ((a0 + a1) + (a2 + a3)), then its elements
   (e0 + e2) + (e1 + e3): at 512 bits the two vectors are read as the same four quarters */
static inline double nnl_tree(const nnl_vd* a)
{
    nnl_v4d q[4], v;
    memcpy(q, a, sizeof q);
    v = (q[0] + q[1]) + (q[2] + q[3]);
    return (v[0] + v[2]) + (v[1] + v[3]);
}
#else
#define NNL_LANEWISE(name, V, n, op) \
static inline V name(V a, V b) { V r; int l; for (l = 0; l < (n); l++) r.v[l] = a.v[l] op b.v[l]; return r; }
NNL_LANEWISE(nnl_add, nnl_vd, NNL_LANES_D, +)
NNL_LANEWISE(nnl_sub, nnl_vd, NNL_LANES_D, -)
NNL_LANEWISE(nnl_mul, nnl_vd, NNL_LANES_D, *)
NNL_LANEWISE(nnl_addf, nnl_vf, NNL_LANES_F, +)
NNL_LANEWISE(nnl_subf, nnl_vf, NNL_LANES_F, -)
NNL_LANEWISE(nnl_mulf, nnl_vf, NNL_LANES_F, *)
static inline nnl_vd nnl_load_f(const float* p)
{ nnl_vd r; int l; for (l = 0; l < NNL_LANES_D; l++) r.v[l] = p[l]; return r; }
static inline nnl_vd nnl_load_d(const double* p)
{ nnl_vd r; memcpy(r.v, p, sizeof r.v); return r; }
static inline nnl_vd nnl_splat(double s)
{ nnl_vd r; int l; for (l = 0; l < NNL_LANES_D; l++) r.v[l] = s; return r; }
static inline nnl_vf nnl_loadf(const float* p)
{ nnl_vf r; memcpy(r.v, p, sizeof r.v); return r; }
static inline nnl_vf nnl_splatf(float s)
{ nnl_vf r; int l; for (l = 0; l < NNL_LANES_F; l++) r.v[l] = s; return r; }
static inline nnl_vd nnl_widen(nnl_vf a, int h)
{ nnl_vd r; int l; for (l = 0; l < NNL_LANES_D; l++) r.v[l] = a.v[NNL_LANES_D * h + l]; return r; }
static inline double nnl_tree(const nnl_vd* a)
{   /* the same tree on lane i of the 16: a[i / NNL_LANES_D].v[i % NNL_LANES_D] */
    double t[16], v[4];
    int i;
    for (i = 0; i < 16; i++) t[i] = a[i / NNL_LANES_D].v[i % NNL_LANES_D];
    for (i = 0; i < 4; i++) v[i] = (t[i] + t[4 + i]) + (t[8 + i] + t[12 + i]);
    return (v[0] + v[2]) + (v[1] + v[3]);
}
#endif

/* Five reductions, for float (suffix _f) and double (suffix _d) rows. In each
   loop, k runs over the NNL_DV vectors of lanes: elements i + NNL_LANES_D k onwards. */
#define NNL_REDUCTIONS(T, SUF)                                                                \
static inline double nnl_sum_##SUF(const T* x, ptrdiff_t n)                                   \
{                                                                                             \
    nnl_vd a[NNL_DV];                                                                         \
    NNL_ZERO(a, NNL_DV);                                                                      \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < NNL_DV; k++)                                                          \
            a[k] = nnl_add(a[k], nnl_load_##SUF(x + i + NNL_LANES_D * k));                    \
    double s = nnl_tree(a);                                                                   \
    for (; i < n; i++) s += x[i];                                                             \
    return s;                                                                                 \
}                                                                                             \
/* sum(a b) */                                                                                \
static inline double nnl_dot_##SUF(const T* a, const T* b, ptrdiff_t n)                       \
{                                                                                             \
    nnl_vd s[NNL_DV];                                                                         \
    NNL_ZERO(s, NNL_DV);                                                                      \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < NNL_DV; k++)                                                          \
            s[k] = nnl_add(s[k], nnl_mul(nnl_load_##SUF(a + i + NNL_LANES_D * k),             \
                                         nnl_load_##SUF(b + i + NNL_LANES_D * k)));           \
    double t = nnl_tree(s);                                                                   \
    for (; i < n; i++) t += (double)a[i] * b[i];                                              \
    return t;                                                                                 \
}                                                                                             \
/* sum((x - mean)^2) */                                                                       \
static inline double nnl_sum_sq_dev_##SUF(const T* x, ptrdiff_t n, double mean)               \
{                                                                                             \
    nnl_vd a[NNL_DV];                                                                         \
    NNL_ZERO(a, NNL_DV);                                                                      \
    nnl_vd m = nnl_splat(mean), d;                                                            \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < NNL_DV; k++) {                                                        \
            d = nnl_sub(nnl_load_##SUF(x + i + NNL_LANES_D * k), m);                          \
            a[k] = nnl_add(a[k], nnl_mul(d, d));                                              \
        }                                                                                     \
    double s = nnl_tree(a), e;                                                                \
    for (; i < n; i++) { e = x[i] - mean; s += e * e; }                                       \
    return s;                                                                                 \
}                                                                                             \
/* sum(x - shift) and sum((x - shift)^2) in one pass. With shift one of the row's own         \
   elements, sum((x - mean)^2) = s2 - s1^2 / n loses at most a factor n of the double's       \
   precision to cancellation ((shift - mean)^2 <= n var), far below float32's. */             \
static inline void nnl_shifted_sums_##SUF(const T* x, ptrdiff_t n, double shift,              \
                                          double* s1, double* s2)                             \
{                                                                                             \
    nnl_vd a[NNL_DV];                                                                         \
    NNL_ZERO(a, NNL_DV);                                                                      \
    nnl_vd q[NNL_DV];                                                                         \
    NNL_ZERO(q, NNL_DV);                                                                      \
    nnl_vd m = nnl_splat(shift), d;                                                           \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < NNL_DV; k++) {                                                        \
            d = nnl_sub(nnl_load_##SUF(x + i + NNL_LANES_D * k), m);                          \
            a[k] = nnl_add(a[k], d);                                                          \
            q[k] = nnl_add(q[k], nnl_mul(d, d));                                              \
        }                                                                                     \
    double sa = nnl_tree(a), sq = nnl_tree(q), e;                                             \
    for (; i < n; i++) { e = x[i] - shift; sa += e; sq += e * e; }                            \
    *s1 = sa;                                                                                 \
    *s2 = sq;                                                                                 \
}                                                                                             \
/* sum(g) and sum(g (x - mean)) */                                                            \
static inline void nnl_sum_g_and_g_dev_##SUF(const T* g, const T* x, ptrdiff_t n,             \
                                              double mean, double* sum_g, double* sum_g_dev)  \
{                                                                                             \
    nnl_vd a[NNL_DV];                                                                         \
    NNL_ZERO(a, NNL_DV);                                                                      \
    nnl_vd b[NNL_DV];                                                                         \
    NNL_ZERO(b, NNL_DV);                                                                      \
    nnl_vd m = nnl_splat(mean), gv, d;                                                        \
    ptrdiff_t i = 0;                                                                          \
    int k;                                                                                    \
    for (; i + 16 <= n; i += 16)                                                              \
        for (k = 0; k < NNL_DV; k++) {                                                        \
            gv = nnl_load_##SUF(g + i + NNL_LANES_D * k);                                     \
            a[k] = nnl_add(a[k], gv);                                                         \
            d = nnl_sub(nnl_load_##SUF(x + i + NNL_LANES_D * k), m);                          \
            b[k] = nnl_add(b[k], nnl_mul(gv, d));                                             \
        }                                                                                     \
    double sa = nnl_tree(a), sb = nnl_tree(b);                                                \
    for (; i < n; i++) { sa += g[i]; sb += g[i] * (x[i] - mean); }                            \
    *sum_g = sa;                                                                              \
    *sum_g_dev = sb;                                                                          \
}

NNL_REDUCTIONS(float, f)
NNL_REDUCTIONS(double, d)

/* The largest element of a row (-inf for an empty one), in vector lanes where AVX is
   there (512-bit ones in an AVX-512 build): a max is exact, so the order of the
   comparisons cannot change the result. A NaN may or may not win; the softmax kernels
   that use this turn a NaN row into NaNs anyway. */
#if defined(__AVX512F__) && NNL_VECTOR_BITS == 512
#include <immintrin.h>
#define NNL_MAX_REGISTER(T, SUF, W, VT, SET1, MAX, LOADU, STOREU)                            \
static inline T nnl_max_##SUF(const T* x, ptrdiff_t n)                                       \
{                                                                                            \
    VT m = SET1(-INFINITY);                                                                  \
    T l[W], r = -INFINITY;                                                                   \
    ptrdiff_t i = 0;                                                                         \
    int k;                                                                                   \
    for (; i + (W) <= n; i += (W)) m = MAX(m, LOADU(x + i));                                 \
    STOREU(l, m);                                                                            \
    for (k = 0; k < (W); k++) r = l[k] > r ? l[k] : r;                                       \
    for (; i < n; i++) r = x[i] > r ? x[i] : r;                                              \
    return r;                                                                                \
}
NNL_MAX_REGISTER(float, f, 16, __m512, _mm512_set1_ps, _mm512_max_ps, _mm512_loadu_ps,
                 _mm512_storeu_ps)
NNL_MAX_REGISTER(double, d, 8, __m512d, _mm512_set1_pd, _mm512_max_pd, _mm512_loadu_pd,
                 _mm512_storeu_pd)
#elif defined(__AVX__)
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
    nnl_vd a[NNL_DV];
    NNL_ZERO(a, NNL_DV);
    nnl_vd b[NNL_DV];
    NNL_ZERO(b, NNL_DV);
    nnl_vd m = nnl_splat(mean), r = nnl_splat(rstd), gw, xhat;
    ptrdiff_t i = 0;
    int k;
    for (; i + 16 <= n; i += 16)
        for (k = 0; k < NNL_DV; k++) {
            gw = nnl_mul(nnl_load_d(g + i + NNL_LANES_D * k), nnl_load_d(w + i + NNL_LANES_D * k));
            xhat = nnl_mul(nnl_sub(nnl_load_d(x + i + NNL_LANES_D * k), m), r);
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
    nnl_vd a[NNL_DV];
    NNL_ZERO(a, NNL_DV);
    nnl_vd b[NNL_DV];
    NNL_ZERO(b, NNL_DV);
    float fm = (float)mean, fr = (float)rstd, gws;
    nnl_vf m = nnl_splatf(fm), r = nnl_splatf(fr), gw, xhat, ra[NNL_FV], rb[NNL_FV];
    ptrdiff_t i = 0, end;
    int k;
    while (i + 16 <= n) {
        for (k = 0; k < NNL_FV; k++) ra[k] = rb[k] = nnl_splatf(0);
        end = i + RUN <= n ? i + RUN : n;
        for (; i + 16 <= end; i += 16)
            for (k = 0; k < NNL_FV; k++) {
                gw = nnl_mulf(nnl_loadf(g + i + NNL_LANES_F * k), nnl_loadf(w + i + NNL_LANES_F * k));
                xhat = nnl_mulf(nnl_subf(nnl_loadf(x + i + NNL_LANES_F * k), m), r);
                ra[k] = nnl_addf(ra[k], nnl_mulf(gw, xhat));
                rb[k] = nnl_addf(rb[k], gw);
            }
        /* the lanes of float vector ra[k] are those of double vectors 2k and 2k + 1 */
        for (k = 0; k < NNL_DV; k++) {
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
