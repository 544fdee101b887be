/* One output row of 2 x 2, stride-2 max pooling on float planes, eight windows at a time.

   The rule is PyTorch's, as in _pool.pyx's loop: the window's taps in the order
   (0,0), (0,1), (1,0), (1,1); a larger value or a NaN takes the lead. The plain loop
   this equals, for output ow of a row whose window's first input is r0[2*ow]:

       top = r0[2*ow]; lead = 0;
       if (r0[2*ow+1] > top || r0[2*ow+1] != r0[2*ow+1]) { top = r0[2*ow+1]; lead = 1; }
       (then r1[2*ow] with lead W, r1[2*ow+1] with lead W+1)
       y[ow] = top; idx[ow] = at + 2*ow + lead;

   Why vectors written out here: which tap wins depends on the data, so scalar code
   mispredicts about every other compare, and GCC vectorises the plain loop only for
   rows of eight or more windows. Rows shorter than that (8 x 8 to 14 x 14 inputs) ran
   scalar at about 13 ns a window against under 1 ns in vector code. Here every row
   runs as blocks of eight windows: a row of eight or more ends with one block that
   overlaps the one before (the windows it repeats get the same values); a shorter row
   reads 16 inputs a row past its end when the input has them (the lanes beyond the
   row are computed and dropped) and copies its inputs to a padded buffer when not.
   Selection only, no arithmetic: the bytes do not depend on the vector width.

   With compilers without GCC's vector extensions the same rule runs as the plain loop.
   Shared by _pool.pyx through `cdef extern from "_max_pool_rows.h"`. */
#ifndef NNLITE_MAX_POOL_ROWS_H
#define NNLITE_MAX_POOL_ROWS_H

#include <stdint.h>
#include <string.h>
#include <Python.h>

#if defined(__GNUC__)
typedef float nnl_pool_v8f __attribute__((vector_size(32)));
typedef int32_t nnl_pool_v8i __attribute__((vector_size(32)));

/* The tap v (lead code `code`) against the leaders: a larger value or a NaN takes the lead. */
static inline void nnl_pool_take8(nnl_pool_v8f v, int32_t code, nnl_pool_v8f *top, nnl_pool_v8i *lead)
{
    nnl_pool_v8i take = (v > *top) | (v != v);
    nnl_pool_v8i vb, tb;
    memcpy(&vb, &v, sizeof vb);
    memcpy(&tb, top, sizeof tb);
    tb = (vb & take) | (tb & ~take);
    memcpy(top, &tb, sizeof tb);
    *lead = (take & code) | (*lead & ~take);
}

/* Eight windows side by side: r0 and r1 point at their 16 top and 16 bottom inputs,
   `at` is r0[0]'s index in the plane. */
static inline void nnl_pool_2x2_block8(const float *r0, const float *r1, Py_ssize_t W, Py_ssize_t at,
                                      float *y, int64_t *idx)
{
    const nnl_pool_v8i even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = even + 1;
    nnl_pool_v8f t0, t1, b0, b1, top;
    nnl_pool_v8i lead = {0, 0, 0, 0, 0, 0, 0, 0};
    int l;
    memcpy(&t0, r0, sizeof t0);
    memcpy(&t1, r0 + 8, sizeof t1);
    memcpy(&b0, r1, sizeof b0);
    memcpy(&b1, r1 + 8, sizeof b1);
    top = __builtin_shuffle(t0, t1, even);
    nnl_pool_take8(__builtin_shuffle(t0, t1, odd), 1, &top, &lead);
    nnl_pool_take8(__builtin_shuffle(b0, b1, even), (int32_t)W, &top, &lead);
    nnl_pool_take8(__builtin_shuffle(b0, b1, odd), (int32_t)W + 1, &top, &lead);
    memcpy(y, &top, sizeof top);
    for (l = 0; l < 8; l++)
        idx[l] = at + 2 * l + lead[l];
}

/* Output row of OW windows: r0, r1 are the input rows 2*oh and 2*oh + 1 (at: r0's index
   in the plane), `end` is one past the last element of the whole input. */
static inline void nnl_max_pool_2x2_row_f(const float *r0, const float *r1, const float *end,
                                         Py_ssize_t W, Py_ssize_t at, Py_ssize_t OW,
                                         float *y, int64_t *idx)
{
    Py_ssize_t ow;
    if (OW < 8) {
        float p0[16], p1[16], py[8];
        int64_t pi[8];
        if (end - r1 < 16) {   /* the last rows of the input: no 16 elements to read past them */
            memset(p0, 0, sizeof p0);
            memset(p1, 0, sizeof p1);
            memcpy(p0, r0, 2 * OW * sizeof(float));
            memcpy(p1, r1, 2 * OW * sizeof(float));
            r0 = p0;
            r1 = p1;
        }
        nnl_pool_2x2_block8(r0, r1, W, at, py, pi);
        memcpy(y, py, OW * sizeof(float));
        memcpy(idx, pi, OW * sizeof(int64_t));
        return;
    }
    for (ow = 0; ow + 8 <= OW; ow += 8)
        nnl_pool_2x2_block8(r0 + 2 * ow, r1 + 2 * ow, W, at + 2 * ow, y + ow, idx + ow);
    if (ow < OW) {
        ow = OW - 8;
        nnl_pool_2x2_block8(r0 + 2 * ow, r1 + 2 * ow, W, at + 2 * ow, y + ow, idx + ow);
    }
}

#else

static inline void nnl_max_pool_2x2_row_f(const float *r0, const float *r1, const float *end,
                                         Py_ssize_t W, Py_ssize_t at, Py_ssize_t OW,
                                         float *y, int64_t *idx)
{
    Py_ssize_t ow;
    (void)end;
    for (ow = 0; ow < OW; ow++) {
        const float v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
        const Py_ssize_t code[4] = {0, 1, W, W + 1};
        float top = v[0];
        Py_ssize_t lead = 0;
        int t;
        for (t = 1; t < 4; t++)
            if (v[t] > top || v[t] != v[t]) {
                top = v[t];
                lead = code[t];
            }
        y[ow] = top;
        idx[ow] = at + 2 * ow + lead;
    }
}

#endif
#endif
