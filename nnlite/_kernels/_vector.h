/* The vector width of nnlite's hand-written SIMD code, chosen in one place.

   _lanes.h (the row sums of the normalisation and softmax kernels) and
   _shifted_gemm.h (the convolution's shifted product) are written once on the
   vector types below, so the same source serves both widths:

   * 512 bits where the compiler targets AVX-512F (__AVX512F__: -march=native on
     a Xeon with AVX-512): 16 floats or 8 doubles a vector, 32 vector registers;
   * 256 bits otherwise (AVX2: 8 floats or 4 doubles, 16 registers).

   NNLITE_VECTOR_BITS (a macro that setup.py defines from the environment
   variable of the same name) overrides the choice: 256 keeps 256-bit vectors on
   an AVX-512 machine, to compare the two; 512 on a machine without AVX-512
   compiles the 512-bit source with each 512-bit operation done as two 256-bit
   halves. A lane's arithmetic is the same IEEE operation either way (a 512-bit
   FMA is, lane for lane, two 256-bit FMAs), so that emulated build gives the
   bytes an AVX-512 build gives: it is how the 512-bit path is tested on an AVX2
   machine (tests/_kernels/test_vector_width.py). It runs slower than either
   native width (a 512-bit tile needs twice the registers AVX2 has): for tests,
   not for use.

   With GCC or Clang the vectors are vector_size types, so the loops are vector
   code whatever the optimiser decides; elsewhere they are structs of lanes with
   the same arithmetic, lane by lane (NNLITE_LANE_STRUCTS asks for those with GCC
   too, so that the test can check them). */
#ifndef NNLITE_VECTOR_H
#define NNLITE_VECTOR_H

#include <stddef.h>
#include <string.h>

#if defined(NNLITE_VECTOR_BITS)
#if NNLITE_VECTOR_BITS != 256 && NNLITE_VECTOR_BITS != 512
#error "NNLITE_VECTOR_BITS must be 256 or 512"
#endif
#define NNL_VECTOR_BITS NNLITE_VECTOR_BITS
#elif defined(__AVX512F__)
#define NNL_VECTOR_BITS 512
#else
#define NNL_VECTOR_BITS 256
#endif
#define NNL_VECTOR_BYTES (NNL_VECTOR_BITS / 8)
#define NNL_LANES_F (NNL_VECTOR_BYTES / 4)   /* floats in a vector: 8 or 16 */
#define NNL_LANES_D (NNL_VECTOR_BYTES / 8)   /* doubles in a vector: 4 or 8 */

/* 1 when 512-bit vectors run as 256-bit halves (the test build on an AVX2 machine) */
#if NNL_VECTOR_BITS == 512 && !defined(__AVX512F__)
#define NNL_VECTOR_EMULATED 1
#else
#define NNL_VECTOR_EMULATED 0
#endif

/* Vector registers the micro-kernels' tiles are sized for: AVX-512 has 32, AVX 16.
   The emulated build uses the AVX-512 tiles, so it runs the same source. */
#define NNL_VECTOR_REGISTERS (NNL_VECTOR_BITS == 512 ? 32 : 16)

#if (defined(__GNUC__) || defined(__clang__)) && !defined(NNLITE_LANE_STRUCTS)
#if NNL_VECTOR_BITS == 512
/* GCC warns that passing a 64-byte vector changed ABI (and differs without AVX-512);
   every function here is static inline, so no ABI is crossed. (The notes that go with
   the warning ignore this pragma: setup.py passes -Wno-psabi to the 512-bit build.) */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#define NNL_VECTOR_TYPES 1
typedef float nnl_vf __attribute__((vector_size(NNL_VECTOR_BYTES)));
typedef double nnl_vd __attribute__((vector_size(NNL_VECTOR_BYTES)));
/* half a vector of floats: the NNL_LANES_D floats that widen into one vector of doubles */
typedef float nnl_vhf __attribute__((vector_size(NNL_VECTOR_BYTES / 2)));
/* every lane s (a list, not a loop or 0 + s: the compiler turns the list into one
   broadcast, and 0 + s would turn -0 into +0) */
#define NNL_4(s) (s), (s), (s), (s)
#if NNL_VECTOR_BITS == 512
#define NNL_SPLAT_F(s) ((nnl_vf){NNL_4(s), NNL_4(s), NNL_4(s), NNL_4(s)})
#define NNL_SPLAT_D(s) ((nnl_vd){NNL_4(s), NNL_4(s)})
#else
#define NNL_SPLAT_F(s) ((nnl_vf){NNL_4(s), NNL_4(s)})
#define NNL_SPLAT_D(s) ((nnl_vd){NNL_4(s)})
#endif
#else
#define NNL_VECTOR_TYPES 0
typedef struct { float v[NNL_LANES_F]; } nnl_vf;
typedef struct { double v[NNL_LANES_D]; } nnl_vd;
typedef struct { float v[NNL_LANES_D]; } nnl_vhf;
#endif

/* Fused multiply-add c + a b (rounded once), where the target has it: 512-bit
   instructions under AVX-512F, two 256-bit ones in the emulated build, 256-bit
   ones under FMA. NNL_VECTOR_FMA says whether nnl_fmadd_f/_d exist. */
#if NNL_VECTOR_TYPES && NNL_VECTOR_BITS == 512 && defined(__AVX512F__)
#include <immintrin.h>
#define NNL_VECTOR_FMA 1
static inline nnl_vf nnl_fmadd_f(nnl_vf c, nnl_vf a, nnl_vf b)
{ return (nnl_vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
static inline nnl_vd nnl_fmadd_d(nnl_vd c, nnl_vd a, nnl_vd b)
{ return (nnl_vd)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c); }
#elif NNL_VECTOR_TYPES && defined(__FMA__)
#include <immintrin.h>
#define NNL_VECTOR_FMA 1
#if NNL_VECTOR_EMULATED
/* each 256-bit half one _mm256_fmadd: the same rounding, lane for lane, as _mm512_fmadd */
#define NNL_FMADD_HALVES(V, H, FMA)                                                    \
    V r;                                                                               \
    H h[3][2];                                                                         \
    memcpy(h[0], &c, sizeof c);                                                        \
    memcpy(h[1], &a, sizeof a);                                                        \
    memcpy(h[2], &b, sizeof b);                                                        \
    h[0][0] = FMA(h[1][0], h[2][0], h[0][0]);                                          \
    h[0][1] = FMA(h[1][1], h[2][1], h[0][1]);                                          \
    memcpy(&r, h[0], sizeof r);                                                        \
    return r;
static inline nnl_vf nnl_fmadd_f(nnl_vf c, nnl_vf a, nnl_vf b)
{ NNL_FMADD_HALVES(nnl_vf, __m256, _mm256_fmadd_ps) }
static inline nnl_vd nnl_fmadd_d(nnl_vd c, nnl_vd a, nnl_vd b)
{ NNL_FMADD_HALVES(nnl_vd, __m256d, _mm256_fmadd_pd) }
#else
static inline nnl_vf nnl_fmadd_f(nnl_vf c, nnl_vf a, nnl_vf b)
{ return (nnl_vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c); }
static inline nnl_vd nnl_fmadd_d(nnl_vd c, nnl_vd a, nnl_vd b)
{ return (nnl_vd)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c); }
#endif
#else
#define NNL_VECTOR_FMA 0
#endif

/* Keep a loaded vector in a register: otherwise the compiler may fold the load into
   each operation that uses it, loading the same data again for every use. ("v" names
   all 32 AVX-512 registers; an emulated 512-bit vector is two registers, so it is left
   to the compiler.) */
#if NNL_VECTOR_TYPES && NNL_VECTOR_BITS == 512 && defined(__AVX512F__)
#define NNL_IN_REGISTER(v) __asm__("" : "+v"(v))
#elif NNL_VECTOR_TYPES && NNL_VECTOR_BITS == 256 && defined(__AVX__)
#define NNL_IN_REGISTER(v) __asm__("" : "+x"(v))
#else
#define NNL_IN_REGISTER(v) ((void)0)
#endif

/* The width this build's vector code was compiled for, in bits (reported by
   nnlite._kernels.vector_width()). */
static inline int nnl_vector_bits(void) { return NNL_VECTOR_BITS; }
static inline int nnl_vector_emulated(void) { return NNL_VECTOR_EMULATED; }

#endif
