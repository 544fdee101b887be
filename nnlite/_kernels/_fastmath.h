/* Straight-line float32 math for nnlite's kernels: exp, sigmoid, tanh, erf and
   log1p on [0, 1].

   libm's expf/erff/tanhf are function calls, which keep a loop from
   vectorising; these inline versions let the compiler use SIMD. Used by the
   elementwise, softmax and recurrent kernels through _fastmath.pxd, whose fused
   _exp/_tanh/_sigmoid/_erf take these for float and libm for double.

   The plain code each stands for, within the stated ulps:
       nnl_expf(x)     = expf(x)                  (x <= 0)
       nnl_sigmoidf(x) = 1 / (1 + expf(-x))
       nnl_tanhf(x)    = tanhf(x)
       nnl_erff(x)     = erff(x)
       nnl_log1pf_unit(e) = log1pf(e)             (0 <= e <= 1)
   The NumPy twins use NumPy's exp, tanh and log1p (equal to rounding), except in two
   places that do these functions' steps in float32 NumPy, equal bit for bit: erf
   (special.erf_float32: nnl_erff's steps, with nnl_expf_normal's) and the tanh of the
   tanh-approximated GELU (reference/_elementwise.py's _tanh_float32: nnl_tanhf's, so
   that an infinite gradient times a slope that rounds to 0 is NaN in both). */
#ifndef NNLITE_FASTMATH_H
#define NNLITE_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>
static inline uint32_t nnl_bits(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static inline float nnl_float(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }

/* exp: x = n ln2 + r, |r| <= ln2/2; exp(r) by Cephes' degree-6 polynomial, 2^n
   from exponent bits in two halves. Within 1 ulp; exp(-inf) = 0, NaN stays
   NaN. Callers pass x <= 0 (+inf is not handled). */
static inline float nnl_expf(float x)
{
    const float round_magic = 12582912.0f;   /* 1.5 * 2^23: (y + it) - it rounds y */
    float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - n * 0.693359375f;          /* ln 2 split in two: this product is exact */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t k = (int32_t)n;
    k = k < -252 ? -252 : k;
    k = k > 254 ? 254 : k;
    int32_t half = k >> 1;
    float out = p * nnl_float((uint32_t)(half + 127) << 23)
                  * nnl_float((uint32_t)(k - half + 127) << 23);
    /* x < -104 down to -inf (not NaN) underflows to 0; compared on the bits
       so the loop stays branch-free */
    uint32_t xb = nnl_bits(x);
    return nnl_float(nnl_bits(out) & (0u - (uint32_t)((xb <= 0xC2D00000u) | (xb > 0xFF800000u))));
}

/* sigmoid from exp(-|x|) only, so it never overflows: s(|x|) = 1 / (1 + e),
   s(-|x|) = e s(|x|); the sign bit of x picks one. */
static inline float nnl_sigmoidf(float x)
{
    float e = nnl_expf(-fabsf(x));
    float s = 1.0f / (1.0f + e);
    uint32_t negative = 0u - (nnl_bits(x) >> 31);
    return nnl_float((nnl_bits(s) & ~negative) | (nnl_bits(e * s) & negative));
}

/* tanh: Cephes' odd polynomial for |x| < 0.625, where (1 - e) / (1 + e) with
   e = exp(-2|x|) would cancel; that quotient, given x's sign, elsewhere. */
static inline float nnl_tanhf(float x)
{
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z
                     - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z
                   - 3.33332819422e-1f) * z * x + x;
    float e = nnl_expf(-2.0f * fabsf(x));
    uint32_t big = nnl_bits((1.0f - e) / (1.0f + e));
    uint32_t use_small = 0u - (uint32_t)((nnl_bits(x) & 0x7FFFFFFFu) < 0x3F200000u);  /* 0.625f */
    uint32_t magnitude = ((nnl_bits(small) & use_small) | (big & ~use_small)) & 0x7FFFFFFFu;
    return nnl_float(magnitude | (nnl_bits(x) & 0x80000000u));   /* tanh is odd: x's sign, -0 too */
}

/* exp for -87 < x <= 0 only, where exp(x) is a normal float: nnl_expf's
   reduction and polynomial without its underflow handling (one scale factor
   2^n), and the polynomial by Estrin's scheme (independent pairs joined by
   r^2), so its chain of dependent operations is short. Within 1 ulp. erf's
   second piece calls it with x = R(u): from -17.47 to -1.384 for
   |x| >= 0.8125 (and for NaN, which u's clamp sends to -17.47), and between
   -1.384 and -0.0002 for |x| < 0.8125, where its result is discarded. */
static inline float nnl_expf_normal(float x)
{
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float r2 = r * r;
    float q0 = 5.0000001201e-1f + 1.6666665459e-1f * r;
    float q1 = 4.1665795894e-2f + 8.3334519073e-3f * r;
    float q2 = 1.3981999507e-3f + 1.9875691500e-4f * r;
    float p = q0 + (q1 + q2 * r2) * r2;
    p = p * r2 + r + 1.0f;
    return p * nnl_float((uint32_t)((int32_t)n + 127) << 23);
}

/* erf in two pieces, both computed and the bits picking one, so the loop
   vectorises (libm's erff is a call):
     |x| <  0.8125:  erf(x) = z + z S(z^2), z = |x|, S(s) = erf(z)/z - 1 of degree 5.
                     Adding z last keeps the polynomial's rounding small beside
                     the result (S is at most 0.13 in size).
     |x| >= 0.8125:  erf(x) = 1 - exp(R(u)), R(u) = log erfc(0.8125 + u) of degree 7,
                     u = min(z, 3.9375) - 0.8125. From 3.9375 on, exp(R) < 2^-25
                     and 1 - exp(R) rounds to 1, which erf is in float there.
   Weighted minimax fits (erfc(z) weighs R's error, as it scales it in the
   result), each coefficient rounded to float with the higher ones refitted to
   absorb that rounding. R's two lowest terms are added last, by Horner's rule,
   and the rest by Estrin's scheme: the last additions carry the result's size
   and so its rounding, while the dependent chain, which bounds the loop's speed,
   stays short. Over every float, the largest error against erf in double is
   1.06 ulp. Only adds, multiplies and bit selects, in this order:
   special.erf_float32 does the same steps in NumPy, bit for bit. NaN in, NaN
   out; erf(-0) = -0. */
static inline float nnl_erff(float x)
{
    float z = fabsf(x);
    float s = z * z;
    float p = -6.5226818e-4f;
    p = p * s + 5.0844280e-3f;
    p = p * s - 2.6821297e-2f;
    p = p * s + 1.1283151e-1f;
    p = p * s - 3.7612608e-1f;
    p = p * s + 1.2837917e-1f;
    float small = z + z * p;
    uint32_t inside = 0u - (uint32_t)(z < 3.9375f);   /* NaN: not inside, 3.9375 is used */
    float u = nnl_float((nnl_bits(z) & inside) | (nnl_bits(3.9375f) & ~inside)) - 0.8125f;
    float u2 = u * u, u4 = u2 * u2;
    float t = (-8.1749332e-1f + -4.9737368e-2f * u) + (1.1853923e-2f + -2.0961408e-3f * u) * u2
              + (1.8471517e-4f + 4.2544402e-6f * u) * u4;
    float r = -1.3841528e+0f + (-2.3274617e+0f + t * u) * u;
    float big = 1.0f - nnl_expf_normal(r);
    uint32_t use_small = 0u - (uint32_t)(z < 0.8125f);
    uint32_t magnitude = (nnl_bits(small) & use_small) | (nnl_bits(big) & ~use_small);
    uint32_t nan = 0u - (uint32_t)(z != z);   /* NaN in, NaN out */
    magnitude = (magnitude & ~nan) | (nnl_bits(x) & nan);
    return nnl_float(magnitude | (nnl_bits(x) & 0x80000000u));   /* erf is odd */
}

/* log1p(e) for 0 <= e <= 1, the range of e^-|z| in softplus, mish and log-sigmoid.
   u = 1 + e loses e's low bits, which c = e - (u - 1) recovers exactly (u - 1 is
   exact for u in [1, 2]): log1p(e) = log(u) + c / u to first order. log(u) as
   Cephes' logf computes it: u = 2^k m with m in [sqrt(1/2), sqrt(2)) (k is 0 or
   1 here), f = m - 1, log(m) = f - f^2/2 + f^3 P(f), and k ln 2 added in two
   parts. Within 0.9 ulp of log1p in double over every float in [0, 1]; a NaN
   passes through. */
static inline float nnl_log1pf_unit(float e)
{
    float u = 1.0f + e;
    float c = e - (u - 1.0f);
    uint32_t high = 0u - (uint32_t)(u > 1.41421356f);
    float k = nnl_float(nnl_bits(1.0f) & high);
    float m = nnl_float((nnl_bits(u * 0.5f) & high) | (nnl_bits(u) & ~high));
    float f = m - 1.0f;
    float z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float y = p * f * z;
    y = y + k * -2.12194440e-4f;
    y = y - 0.5f * z;
    y = y + c / u;
    return (f + y) + k * 0.693359375f;
}

#endif
