/* Straight-line float32 math for nnlite's kernels: exp, sigmoid, tanh and erf.

   libm's expf/erff/tanhf are function calls, which keep a loop from
   vectorising; these inline versions let the compiler use SIMD. Used by the
   elementwise, softmax and recurrent kernels through _fastmath.pxd, whose fused
   _exp/_tanh/_sigmoid/_erf take these for float and libm for double.

   The plain code each stands for, within the stated ulps:
       nnl_expf(x)     = expf(x)                  (x <= 0)
       nnl_sigmoidf(x) = 1 / (1 + expf(-x))
       nnl_tanhf(x)    = tanhf(x)
       nnl_erff(x)     = erff(x)
   The NumPy twins use NumPy's exp and tanh and nnlite's special.erf
   (math.erf per element): equal to rounding. */
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

/* erf: z P(z^2) for |x| < 1; 1 - exp(-z^2) Q(1 / (1 + z/2)) above (erfc is
   smooth there once exp(-z^2) is factored out), clamped at |x| = 4 where erf
   is 1 in float. Least-squares fits on Chebyshev nodes; within 3 ulp. Both
   branches run and the bits pick one, so the loop vectorises (libm's erff
   does not). */
static inline float nnl_erff(float x)
{
    float z = fabsf(x);
    float zz = z * z;
    float p = -9.728393706609495e-06f;
    p = p * zz + 1.1288170207990333e-04f;
    p = p * zz - 8.48726718686521e-04f;
    p = p * zz + 5.221261642873287e-03f;
    p = p * zz - 2.68655177205801e-02f;
    p = p * zz + 1.1283784359693527e-01f;
    p = p * zz - 3.7612637877464294e-01f;
    p = p * zz + 1.128379225730896f;
    float small = p * z;
    uint32_t inside = 0u - (uint32_t)(z < 4.0f);   /* NaN: not inside, 4 is used */
    float zc = nnl_float((nnl_bits(z) & inside) | (nnl_bits(4.0f) & ~inside));
    float t = 1.0f / (1.0f + 0.5f * zc);
    float q = -8.533375710248947e-02f;
    q = q * t + 3.969348669052124e-01f;
    q = q * t - 6.941401362419128e-01f;
    q = q * t + 4.926917850971222e-01f;
    q = q * t - 1.642981469631195e-01f;
    q = q * t + 2.591525614261627e-01f;
    q = q * t + 2.2833551466464996e-01f;
    q = q * t + 2.8474539518356323e-01f;
    q = q * t + 2.8187501430511475e-01f;
    q = q * t + 7.964103133417666e-06f;
    float big = 1.0f - nnl_expf(-(zc * zc)) * q;
    uint32_t use_small = 0u - (uint32_t)(z < 1.0f);
    uint32_t magnitude = (nnl_bits(small) & use_small) | (nnl_bits(big) & ~use_small);
    uint32_t nan = 0u - (uint32_t)(z != z);   /* NaN in, NaN out */
    magnitude = (magnitude & ~nan) | (nnl_bits(x) & nan);
    return nnl_float(magnitude | (nnl_bits(x) & 0x80000000u));   /* erf is odd */
}

#endif
