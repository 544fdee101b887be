/* Per-element steps of layer and batch norm, for float (suffix _f) and double (suffix _d)
   rows.

   Written in C for one keyword: `restrict`. A row's input, output and partial-sum
   pointers are of the same type, so without it the compiler must assume that a
   store to the output may change the input, and keeps the loop scalar. The
   callers pass distinct, non-overlapping buffers. Shared by _norm.pyx through
   `cdef extern from "_norm_steps.h"`.

   The plain loops they equal, over one row of n elements (xhat = (x - mean) * rstd):

       layer norm forward:  y[j] = xhat[j] * w[j] + b[j]
       batch norm forward:  y[j] = (x[j] - mean) * scale + shift   (with relu: 0 where that is < 0)
       fused ReLU's mask:   out[j] = (x[j] - mean) * scale + shift <= 0 ? 0 : g[j]
       batch norm backward: out[j] = (g[j] - (x[j] - mean) * k - grad_mean) * scale
       layer norm backward: out[j] = rstd * (g[j] * w[j] - c2 - xhat[j] * c1);
                            pw[j] += g[j] * xhat[j]; pb[j] += g[j]

   (x - mean is formed as (x - hi) - lo with the double mean split in two: see below.) */
#ifndef NNLITE_NORM_STEPS_H
#define NNLITE_NORM_STEPS_H

#include <stddef.h>

#if defined(_MSC_VER)
#define NNL_RESTRICT __restrict
#else
#define NNL_RESTRICT restrict
#endif

/* Ask for the n bytes at p to be brought into cache (no effect on results). */
static inline void nnl_prefetch(const void* p, ptrdiff_t n)
{
#if defined(__GNUC__) || defined(__clang__)
    const char* c = (const char*)p;
    ptrdiff_t i;
    for (i = 0; i < n; i += 64) __builtin_prefetch(c + i, 0, 3);
#else
    (void)p;
    (void)n;
#endif
}

#define NNL_NORM_STEPS(T, SUF)                                                                 \
/* x - mean is where precision is lost (the two may nearly cancel). The mean is known in       \
   double; split it into hi = (T)mean and lo = (T)(mean - hi): x - hi is exact when the two    \
   are close, and (x - hi) - lo is then x - mean to within one rounding of the result, with    \
   no conversion per element (for double, lo is 0). An infinite mean has no low part: lo is    \
   0 there, not inf - inf, so x - mean is -inf (or NaN for x = inf), as without the split. */  \
static inline T nnl_low_part_##SUF(double mean, T hi)                                          \
{                                                                                              \
    const double lo = mean - (double)hi;                                                       \
    return lo == lo ? (T)lo : (T)0;                                                            \
}                                                                                              \
/* y = ((x - mean) rstd) w + b; w and b may be NULL (no affine map). */                        \
static inline void nnl_ln_forward_row_##SUF(const T* NNL_RESTRICT x, T* NNL_RESTRICT y,        \
                                            ptrdiff_t n, double mean, T rstd,                  \
                                            const T* NNL_RESTRICT w, const T* NNL_RESTRICT b)  \
{                                                                                              \
    const T hi = (T)mean, lo = nnl_low_part_##SUF(mean, hi);                                   \
    ptrdiff_t j;                                                                               \
    if (w != NULL && b != NULL)                                                                \
        for (j = 0; j < n; j++) y[j] = ((x[j] - hi) - lo) * rstd * w[j] + b[j];                \
    else if (w != NULL)                                                                        \
        for (j = 0; j < n; j++) y[j] = ((x[j] - hi) - lo) * rstd * w[j];                       \
    else if (b != NULL)                                                                        \
        for (j = 0; j < n; j++) y[j] = ((x[j] - hi) - lo) * rstd + b[j];                       \
    else                                                                                       \
        for (j = 0; j < n; j++) y[j] = ((x[j] - hi) - lo) * rstd;                              \
}                                                                                              \
/* Batch norm, one (sample, channel) row: y = (x - mean) scale + shift, with the mean given  \
   as its two parts (hi, lo). With relu, y is then 0 where it is < 0, as relu_forward has it   \
   (NaN and -0 stay). */                                                                       \
static inline void nnl_bn_forward_row_##SUF(const T* NNL_RESTRICT x, T* NNL_RESTRICT y,        \
                                            ptrdiff_t n, T hi, T lo, T scale, T shift,         \
                                            int relu)                                          \
{                                                                                              \
    ptrdiff_t j;                                                                               \
    T v;                                                                                       \
    if (relu)                                                                                  \
        for (j = 0; j < n; j++) {                                                              \
            v = ((x[j] - hi) - lo) * scale + shift;                                            \
            y[j] = v < 0 ? (T)0 : v;                                                           \
        }                                                                                      \
    else                                                                                       \
        for (j = 0; j < n; j++) y[j] = ((x[j] - hi) - lo) * scale + shift;                     \
}                                                                                              \
/* The gradient reaching batch norm from a fused ReLU, one row: g where the forward's output   \
   was positive (or NaN), 0 where it was <= 0, as relu_backward has it. The output is not      \
   read: its sign is recomputed from x by the forward's own steps and per-channel numbers,     \
   which give the same value bit for bit. */                                                  \
static inline void nnl_bn_relu_mask_row_##SUF(const T* NNL_RESTRICT g, const T* NNL_RESTRICT x, \
                                              T* NNL_RESTRICT out, ptrdiff_t n, T hi, T lo,    \
                                              T scale, T shift)                                \
{                                                                                              \
    ptrdiff_t j;                                                                               \
    for (j = 0; j < n; j++) out[j] = ((x[j] - hi) - lo) * scale + shift <= 0 ? (T)0 : g[j];     \
}                                                                                              \
/* Batch norm backward, one row: out = (g - (x - mean) k - grad_mean) scale. */                \
static inline void nnl_bn_backward_row_##SUF(const T* NNL_RESTRICT g, const T* NNL_RESTRICT x, \
                                             T* NNL_RESTRICT out, ptrdiff_t n, double mean,    \
                                             T k, T grad_mean, T scale)                        \
{                                                                                              \
    const T hi = (T)mean, lo = nnl_low_part_##SUF(mean, hi);                                   \
    ptrdiff_t j;                                                                               \
    for (j = 0; j < n; j++) out[j] = (g[j] - ((x[j] - hi) - lo) * k - grad_mean) * scale;      \
}                                                                                              \
/* out = rstd (g w - c2 - xhat c1), xhat = (x - mean) rstd; and, when pw is not NULL,          \
   pw += g xhat and pb += g (the weight and bias gradients' partial sums). */                  \
static inline void nnl_ln_backward_row_##SUF(const T* NNL_RESTRICT g,                          \
                                             const T* NNL_RESTRICT x,                          \
                                             const T* NNL_RESTRICT w, T* NNL_RESTRICT out,     \
                                             T* NNL_RESTRICT pw, T* NNL_RESTRICT pb,           \
                                             ptrdiff_t n, T mean, T rstd, T c1, T c2)          \
{                                                                                              \
    ptrdiff_t j;                                                                               \
    T xhat;                                                                                    \
    if (pw == NULL)                                                                            \
        for (j = 0; j < n; j++) {                                                              \
            xhat = (x[j] - mean) * rstd;                                                       \
            out[j] = rstd * (g[j] * w[j] - c2 - xhat * c1);                                    \
        }                                                                                      \
    else                                                                                       \
        for (j = 0; j < n; j++) {                                                              \
            xhat = (x[j] - mean) * rstd;                                                       \
            out[j] = rstd * (g[j] * w[j] - c2 - xhat * c1);                                    \
            pw[j] += g[j] * xhat;                                                              \
            pb[j] += g[j];                                                                     \
        }                                                                                      \
}

NNL_NORM_STEPS(float, f)
NNL_NORM_STEPS(double, d)

#endif
