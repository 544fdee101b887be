# cython: language_level=3
"""One time step of an RNN, LSTM or GRU layer: the gate math of a step in one pass.

A recurrent layer's step is a matrix product, ``gh = h_{t-1} W_hh^T``, and
then a dozen elementwise operations on the gates (adds, sigmoids, tanhs,
products). Run as separate operations, each makes its own array and its own
autograd node, and for a batch of 64 and 128 hidden units the Python and
allocation overhead of those steps costs more than the arithmetic. Here the
elementwise part of a step is one loop over (batch, hidden): it reads the
input projection ``gi`` (computed for every step at once, before the scan),
``gh`` and ``b_hh``, and writes the new state and the activated gates that
backward needs. The backward step is one loop too: from the gradient of the
new state and the saved gates it writes the gradients of the pre-activations,
which the caller multiplies by ``W_hh`` (for the previous state) and, summed
over all steps in one product at the end, by the states (for ``W_hh``).

The steps (``gh`` already holds ``h W_hh^T``, ``b`` is ``b_hh`` or 0)::

    LSTM   i, f, g, o = σ(gi_i + (gh_i + b_i)), σ(..f..), tanh(..g..), σ(..o..)
           c' = f c + i g,   h' = o tanh(c')                 saved: i, f, g, o
    GRU    r, z = σ(gi_r + (gh_r + b_r)), σ(gi_z + (gh_z + b_z))
           hn = gh_n + b_n,  n = tanh(gi_n + r hn),  h' = n + z (h - n)
                                                             saved: r, z, n, hn
    RNN    h' = tanh(gi + (gh + b))  or relu(...)

The NumPy twin, ``reference/_rnn.py``, performs the same operations in the
same order; float32 uses the straight-line exp/tanh of ``_fastmath.h`` (the
twin NumPy's), so the two agree to rounding. Every output element depends on
its own inputs only, so the result is the same bytes for any thread count.
The six step kernels are rows of the kernel table (``table.py``), and so are
the two scans at the end of this file, which run every step of a sequence in
one call (``nnlite/ops/recurrent.py`` calls them as ``K.recurrent_scan_forward``
and ``K.recurrent_scan_backward``): the same row loops and each step's product,
without Python between the steps. The layers call only the scans; a step
kernel stays callable on its own, one time step, to read and to test.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange

import numpy as np

from nnlite._kernels._blas cimport (blas_pin_one_thread, blas_restore_threads, dgemm_rowmajor, dgemm_serial,
                                    gemv_row, sgemm_rowmajor, sgemm_serial)
from nnlite._kernels._checks cimport flag as _flag, is_native_float, separate
from nnlite._kernels._dtype cimport data
from nnlite._kernels._fastmath cimport _sigmoid, _tanh
from nnlite._kernels._threads cimport threads_for

from nnlite._kernels import checks as _checks_py

cnp.import_array()

__all__ = ["lstm_step_forward", "lstm_step_backward", "gru_step_forward", "gru_step_backward",
           "rnn_step_forward", "rnn_step_backward", "recurrent_scan_forward", "recurrent_scan_backward"]


cdef inline floating _bias(const floating* b, Py_ssize_t k) noexcept nogil:
    return b[k] if b != NULL else 0


# Each step works row by row (one sample of the batch), and within a row in
# plain passes over contiguous stretches (add the projections; sigmoid over the
# sigmoid gates; tanh over the candidate; combine). Loops of that shape are what
# the compiler turns into vector instructions; one loop doing all four gates
# per element would not be.

cdef inline void _preact(const floating* gi, const floating* gh, const floating* b, floating* out,
                         Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    if b != NULL:
        for k in range(n):
            out[k] = gi[k] + (gh[k] + b[k])
    else:
        for k in range(n):
            out[k] = gi[k] + gh[k]


cdef inline void _sigmoid_inplace(floating* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        x[k] = _sigmoid(x[k])


cdef inline void _tanh_inplace(floating* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        x[k] = _tanh(x[k])


# ------------------------------------------------------------------ LSTM -----

cdef void _lstm_fwd(const floating* gh, const floating* gi, const floating* b, const floating* c_prev,
                    floating* gates, floating* c, floating* h, Py_ssize_t B, Py_ssize_t H,
                    int nt) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(B, num_threads=nt, schedule="static"):
        _lstm_fwd_row(gh + n * 4 * H, gi + n * 4 * H, b, c_prev + n * H, gates + n * 4 * H,
                      c + n * H, h + n * H, H)


cdef inline void _lstm_fwd_row(const floating* gh, const floating* gi, const floating* b,
                               const floating* c_prev, floating* g, floating* c, floating* h,
                               Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating cc
    _preact(gi, gh, b, g, 4 * H)
    _sigmoid_inplace(g, 2 * H)            # i, f
    _tanh_inplace(g + 2 * H, H)           # g
    _sigmoid_inplace(g + 3 * H, H)        # o
    for j in range(H):
        cc = g[H + j] * c_prev[j] + g[j] * g[2 * H + j]
        c[j] = cc
        h[j] = cc                          # tanh(c') below, in its own pass
    _tanh_inplace(h, H)
    for j in range(H):
        h[j] = g[3 * H + j] * h[j]


cdef void _lstm_bwd(const floating* dh, floating* dc, const floating* gates, const floating* c_prev,
                    const floating* c, floating* dpre, Py_ssize_t B, Py_ssize_t H, int nt) noexcept nogil:
    # dc holds dL/dc' on entry and dL/dc (the previous cell state's gradient) on exit.
    cdef Py_ssize_t n
    for n in prange(B, num_threads=nt, schedule="static"):
        _lstm_bwd_row(dh + n * H, dc + n * H, gates + n * 4 * H, c_prev + n * H, c + n * H,
                      dpre + n * 4 * H, H)


cdef inline void _lstm_bwd_row(const floating* dh, floating* dc, const floating* g, const floating* c_prev,
                               const floating* c, floating* d, Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating i_, f_, gg, o_, tc, dct
    for j in range(H):
        d[3 * H + j] = c[j]               # tanh(c') goes through the scratch of the o-gate slot
    _tanh_inplace(d + 3 * H, H)
    for j in range(H):
        i_ = g[j]
        f_ = g[H + j]
        gg = g[2 * H + j]
        o_ = g[3 * H + j]
        tc = d[3 * H + j]
        dct = dc[j] + dh[j] * o_ * (1 - tc * tc)
        d[j] = dct * gg * i_ * (1 - i_)
        d[H + j] = dct * c_prev[j] * f_ * (1 - f_)
        d[2 * H + j] = dct * i_ * (1 - gg * gg)
        d[3 * H + j] = dh[j] * tc * o_ * (1 - o_)
        dc[j] = dct * f_


# ------------------------------------------------------------------- GRU -----

cdef void _gru_fwd(const floating* gh, const floating* gi, const floating* b, const floating* h_prev,
                   floating* gates, floating* h, Py_ssize_t B, Py_ssize_t H, int nt) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(B, num_threads=nt, schedule="static"):
        _gru_fwd_row(gh + n * 3 * H, gi + n * 3 * H, b, h_prev + n * H, gates + n * 4 * H, h + n * H, H)


cdef inline void _gru_fwd_row(const floating* gh, const floating* gi, const floating* b,
                              const floating* h_prev, floating* g, floating* h, Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t j
    _preact(gi, gh, b, g, 2 * H)                          # r, z pre-activations
    _sigmoid_inplace(g, 2 * H)
    if b != NULL:                                         # hn = W_hn h + b_hn
        for j in range(H):
            g[3 * H + j] = gh[2 * H + j] + b[2 * H + j]
    else:
        for j in range(H):
            g[3 * H + j] = gh[2 * H + j]
    for j in range(H):
        g[2 * H + j] = gi[2 * H + j] + g[j] * g[3 * H + j]
    _tanh_inplace(g + 2 * H, H)                           # n
    for j in range(H):
        h[j] = g[2 * H + j] + g[H + j] * (h_prev[j] - g[2 * H + j])


cdef void _gru_bwd(const floating* dh, const floating* gates, const floating* h_prev, floating* dgi,
                   floating* dgh, floating* dh_prev, Py_ssize_t B, Py_ssize_t H, int nt) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(B, num_threads=nt, schedule="static"):
        _gru_bwd_row(dh + n * H, gates + n * 4 * H, h_prev + n * H, dgi + n * 3 * H, dgh + n * 3 * H,
                     dh_prev + n * H, H)


cdef inline void _gru_bwd_row(const floating* dh, const floating* g, const floating* h_prev, floating* dgi,
                              floating* dgh, floating* dh_prev, Py_ssize_t H) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating r_, z_, n_, hn, dn, dz, dr
    for j in range(H):
        r_ = g[j]
        z_ = g[H + j]
        n_ = g[2 * H + j]
        hn = g[3 * H + j]
        dn = dh[j] * (1 - z_) * (1 - n_ * n_)
        dz = dh[j] * (h_prev[j] - n_) * z_ * (1 - z_)
        dr = dn * hn * r_ * (1 - r_)
        dgi[j] = dr
        dgi[H + j] = dz
        dgi[2 * H + j] = dn
        dgh[j] = dr
        dgh[H + j] = dz
        dgh[2 * H + j] = dn * r_
        dh_prev[j] = dh[j] * z_


# ------------------------------------------------------------------- RNN -----

cdef void _rnn_fwd(const floating* gh, const floating* gi, const floating* b, floating* h,
                   Py_ssize_t B, Py_ssize_t H, bint relu, int nt) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(B, num_threads=nt, schedule="static"):
        _rnn_fwd_row(gh + n * H, gi + n * H, b, h + n * H, H, relu)


cdef inline void _rnn_fwd_row(const floating* gh, const floating* gi, const floating* b, floating* h,
                              Py_ssize_t H, bint relu) noexcept nogil:
    cdef Py_ssize_t j
    _preact(gi, gh, b, h, H)
    if relu:
        for j in range(H):
            h[j] = h[j] if h[j] > 0 else 0
    else:
        _tanh_inplace(h, H)


cdef void _rnn_bwd(const floating* dh, const floating* h, floating* dpre, Py_ssize_t B, Py_ssize_t H,
                   bint relu, int nt) noexcept nogil:
    cdef Py_ssize_t n
    for n in prange(B, num_threads=nt, schedule="static"):
        _rnn_bwd_row(dh + n * H, h + n * H, dpre + n * H, H, relu)


cdef inline void _rnn_bwd_row(const floating* dh, const floating* h, floating* dpre, Py_ssize_t H,
                              bint relu) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(H):
        if relu:
            dpre[j] = dh[j] if h[j] > 0 else 0
        else:
            dpre[j] = dh[j] * (1 - h[j] * h[j])


# ------------------------------------------------------------------ scans -----
#
# A layer's whole sequence in one call, so no Python runs between its steps.
# How the steps share the threads is a plan made from the shape alone
# (checks.scan_row_blocks, which the twin follows too), never from the thread
# count, so the bytes are the same for any number of threads:
#
# * row blocks, when W_hh is small enough to stay in a core's cache and the batch
#   has at least 8 rows: each sample's recurrence needs its own rows only (its h
#   and c, the one W_hh), so the batch is cut into an even number of blocks of at
#   most 64 rows (checks.scan_blocks) and each thread carries its blocks through
#   every time step, a one-thread BLAS call and the row loops a step. The
#   parallel region is entered once for the sequence; the threads never wait for
#   each other.
# * step by step otherwise (a large W_hh, which every block would pack again each
#   step, or a small batch): each step's product goes through BLAS's door as
#   K.gemm's does (GEMV for one row, fixed blocks shared among the threads
#   otherwise), then the step kernels' loops. The same bytes as K.gemm and the
#   step kernels, one step after another.

cdef enum Mode:
    MODE_LSTM, MODE_GRU, MODE_RNN_TANH, MODE_RNN_RELU

cdef enum:
    SCAN_ARRAYS = 11   # the most arrays a scan reads and writes (the backward's)

MODES = {"LSTM": MODE_LSTM, "GRU": MODE_GRU, "RNN_TANH": MODE_RNN_TANH, "RNN_RELU": MODE_RNN_RELU}


cdef void _product(bint shared, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const floating* a,
                   const floating* b, floating* c) noexcept nogil:
    """c (m x n) = a (m x k) @ op(b), every matrix contiguous: one row by GEMV, more rows by GEMM.
    When ``shared``, as K.gemm computes it (the door's fixed blocks shared among the threads);
    else in one call on this thread (BLAS pinned by the caller), which is K.gemm's only for a
    product too small for K.gemm to cut."""
    cdef int saved[4]
    if m == 1:
        if shared:
            blas_pin_one_thread(saved)
        gemv_row(trans_b, n, k, a, 1, b, k if trans_b else n, 0, c)
        if shared:
            blas_restore_threads(saved)
    elif shared:
        if floating is float:
            sgemm_rowmajor(False, trans_b, m, n, k, a, k, b, k if trans_b else n, 0, c, n)
        else:
            dgemm_rowmajor(False, trans_b, m, n, k, a, k, b, k if trans_b else n, 0, c, n)
    else:
        if floating is float:
            sgemm_serial(False, trans_b, m, n, k, a, k, b, k if trans_b else n, 0, c, n)
        else:
            dgemm_serial(False, trans_b, m, n, k, a, k, b, k if trans_b else n, 0, c, n)


cdef void _forward_rows(Mode mode, Py_ssize_t s, const floating* gi, const floating* gh, const floating* b,
                        floating* hs, floating* cs, floating* gates, Py_ssize_t B, Py_ssize_t H,
                        Py_ssize_t G, Py_ssize_t r0, Py_ssize_t r1, int nt) noexcept nogil:
    """Step s's gate math for rows r0..r1-1 (``gh`` holds their h W_hh^T): the step kernels' rows.
    One thread (a block's rows) loops without opening a parallel region of its own."""
    cdef Py_ssize_t n
    if nt > 1:
        for n in prange(r0, r1, num_threads=nt, schedule="static"):
            _forward_row(mode, s, n, gi, gh, b, hs, cs, gates, B, H, G)
    else:
        for n in range(r0, r1):
            _forward_row(mode, s, n, gi, gh, b, hs, cs, gates, B, H, G)


cdef inline void _forward_row(Mode mode, Py_ssize_t s, Py_ssize_t n, const floating* gi, const floating* gh,
                              const floating* b, floating* hs, floating* cs, floating* gates, Py_ssize_t B,
                              Py_ssize_t H, Py_ssize_t G) noexcept nogil:
    cdef Py_ssize_t BH = B * H
    if mode == MODE_LSTM:
        _lstm_fwd_row(gh + n * G * H, gi + (s * B + n) * G * H, b, cs + s * BH + n * H,
                      gates + (s * B + n) * 4 * H, cs + (s + 1) * BH + n * H, hs + (s + 1) * BH + n * H, H)
    elif mode == MODE_GRU:
        _gru_fwd_row(gh + n * G * H, gi + (s * B + n) * G * H, b, hs + s * BH + n * H,
                     gates + (s * B + n) * 4 * H, hs + (s + 1) * BH + n * H, H)
    else:
        _rnn_fwd_row(gh + n * H, gi + (s * B + n) * H, b, hs + (s + 1) * BH + n * H, H, mode == MODE_RNN_RELU)


cdef void _backward_rows(Mode mode, Py_ssize_t s, const floating* g, const floating* hs, const floating* cs,
                         const floating* gates, floating* dgi, floating* dgh, const floating* dh,
                         floating* dc, floating* dh_s, floating* through_z, Py_ssize_t B, Py_ssize_t H,
                         Py_ssize_t G, Py_ssize_t S, Py_ssize_t r0, Py_ssize_t r1, int nt) noexcept nogil:
    """Step s's gradients of the pre-activations for rows r0..r1-1, as _forward_rows shares them."""
    cdef Py_ssize_t n
    if nt > 1:
        for n in prange(r0, r1, num_threads=nt, schedule="static"):
            _backward_row(mode, s, n, g, hs, cs, gates, dgi, dgh, dh, dc, dh_s, through_z, B, H, G, S)
    else:
        for n in range(r0, r1):
            _backward_row(mode, s, n, g, hs, cs, gates, dgi, dgh, dh, dc, dh_s, through_z, B, H, G, S)


cdef inline void _backward_row(Mode mode, Py_ssize_t s, Py_ssize_t n, const floating* g, const floating* hs,
                               const floating* cs, const floating* gates, floating* dgi, floating* dgh,
                               const floating* dh, floating* dc, floating* dh_s, floating* through_z,
                               Py_ssize_t B, Py_ssize_t H, Py_ssize_t G, Py_ssize_t S) noexcept nogil:
    # dL/dh of the step: the gradient from above the layer (g) plus the one from step s + 1 (dh)
    cdef Py_ssize_t j, BH = B * H
    cdef const floating* g_h = g + ((s * S) * B + n) * H
    cdef const floating* g_c
    for j in range(H):
        dh_s[n * H + j] = g_h[j] + dh[n * H + j]
    if mode == MODE_LSTM:
        g_c = g + ((s * S + 1) * B + n) * H
        for j in range(H):
            dc[n * H + j] = dc[n * H + j] + g_c[j]
        _lstm_bwd_row(dh_s + n * H, dc + n * H, gates + (s * B + n) * 4 * H, cs + s * BH + n * H,
                      cs + (s + 1) * BH + n * H, dgi + (s * B + n) * G * H, H)
    elif mode == MODE_GRU:
        _gru_bwd_row(dh_s + n * H, gates + (s * B + n) * 4 * H, hs + s * BH + n * H,
                     dgi + (s * B + n) * G * H, dgh + (s * B + n) * G * H, through_z + n * H, H)
    else:
        _rnn_bwd_row(dh_s + n * H, hs + (s + 1) * BH + n * H, dgi + (s * B + n) * H, H, mode == MODE_RNN_RELU)


cdef void _scan_forward(Mode mode, floating** a, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G,
                        Py_ssize_t r0, Py_ssize_t r1, bint shared) noexcept nogil:
    """Time steps 0..T-1 for rows r0..r1-1; a: gi, w_hh, b_hh, hs, cs, gates, gh (scratch)."""
    cdef Py_ssize_t s
    cdef int nt = threads_for((r1 - r0) * G * H) if shared else 1
    for s in range(T):
        _product(shared, True, r1 - r0, G * H, H, a[3] + (s * B + r0) * H, a[1], a[6] + r0 * G * H)
        _forward_rows(mode, s, a[0], a[6], a[2], a[3], a[4], a[5], B, H, G, r0, r1, nt)


cdef void _scan_backward(Mode mode, floating** a, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G,
                         Py_ssize_t S, Py_ssize_t r0, Py_ssize_t r1, bint shared) noexcept nogil:
    """Time steps T-1..0 for rows r0..r1-1; a: g, w_hh, hs, cs, gates, dgi, dgh, dh, dc, and the
    scratch dh_s, through_z. dh (and dc) carry the state's gradient back to the first step."""
    cdef Py_ssize_t s, j
    cdef int nt = threads_for((r1 - r0) * G * H) if shared else 1
    cdef floating* d = a[6] if mode == MODE_GRU else a[5]   # GRU's n gate reaches h through r (W_hn h)
    for s in range(T - 1, -1, -1):
        _backward_rows(mode, s, a[0], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], B, H, G, S,
                       r0, r1, nt)
        _product(shared, False, r1 - r0, H, G * H, d + (s * B + r0) * G * H, a[1], a[7] + r0 * H)
        if mode == MODE_GRU:
            for j in range(r0 * H, r1 * H):
                a[7][j] = a[7][j] + a[10][j]


cdef void _scan(bint forward, Mode mode, floating** a, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                Py_ssize_t G, Py_ssize_t S, Py_ssize_t blocks) noexcept nogil:
    """Run the plan: ``blocks`` blocks of rows shared among the threads (block k: rows
    k*B//blocks up to (k+1)*B//blocks, checks.scan_blocks), or, for 0, every step over the
    whole batch."""
    cdef Py_ssize_t k, r0, r1
    cdef int saved[4]
    cdef int nt
    if blocks == 0:
        if forward:
            _scan_forward(mode, a, T, B, H, G, 0, B, True)
        else:
            _scan_backward(mode, a, T, B, H, G, S, 0, B, True)
        return
    nt = min(threads_for(T * B * G * H), blocks)
    blas_pin_one_thread(saved)
    for k in prange(blocks, num_threads=nt, schedule="static"):
        r0 = k * B // blocks
        r1 = (k + 1) * B // blocks
        if forward:
            _scan_forward(mode, a, T, B, H, G, r0, r1, False)
        else:
            _scan_backward(mode, a, T, B, H, G, S, r0, r1, False)
    blas_restore_threads(saved)


# -------------------------------------------------------------- wrappers -----

# Every step kernel takes arrays its caller allocated, of exact shapes, plus (B, H);
# _step checks them, and _run is the one place that maps a step to its loop, so the
# float/double choice is made once for all six.

cdef enum Step:
    LSTM_FORWARD, LSTM_BACKWARD, GRU_FORWARD, GRU_BACKWARD, RNN_FORWARD, RNN_BACKWARD

cdef enum:
    MAX_ARRAYS = 7


cdef void _run(Step step, floating** a, Py_ssize_t B, Py_ssize_t H, bint relu,
               int nt) noexcept nogil:
    """Run ``step`` on the arrays a[0], a[1], ... in the order its wrapper names them."""
    if step == LSTM_FORWARD:
        _lstm_fwd(a[0], a[1], a[2], a[3], a[4], a[5], a[6], B, H, nt)
    elif step == LSTM_BACKWARD:
        _lstm_bwd(a[0], a[1], a[2], a[3], a[4], a[5], B, H, nt)
    elif step == GRU_FORWARD:
        _gru_fwd(a[0], a[1], a[2], a[3], a[4], a[5], B, H, nt)
    elif step == GRU_BACKWARD:
        _gru_bwd(a[0], a[1], a[2], a[3], a[4], a[5], B, H, nt)
    elif step == RNN_FORWARD:
        _rnn_fwd(a[0], a[1], a[2], a[3], B, H, relu, nt)
    else:
        _rnn_bwd(a[0], a[1], a[2], B, H, relu, nt)


cdef int _step(Step step, str op, tuple arrays, tuple names, tuple shapes, tuple written,
               Py_ssize_t B, Py_ssize_t H, bint relu=False, int gates=4) except -1:
    """Check ``arrays`` (checks.shaped_operands says what is wrong; the ``written`` ones
    must be writable and share memory with no other), then run ``step``."""
    cdef void* p[MAX_ARRAYS]
    cdef int t = -1
    cdef Py_ssize_t i
    for i in range(len(arrays)):
        arr = arrays[i]
        if arr is None and names[i] == "b_hh":
            p[i] = NULL
            continue
        if (not is_native_float(arr) or (t != -1 and cnp.PyArray_TYPE(<cnp.ndarray>arr) != t)
                or arr.shape != shapes[i] or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr)):
            _checks_py.shaped_operands(op, arrays, names, shapes, optional=("b_hh",))
        if names[i] in written and not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>arr):
            _checks_py.in_place(op, names[i], arr)
        t = cnp.PyArray_TYPE(<cnp.ndarray>arr)
        p[i] = data(arr)
    # an output over an input would be read after it is written (lstm_step_backward
    # uses dpre's o-gate slot as scratch before it reads the o gate)
    cdef list outs = [(names[i], arrays[i]) for i in range(len(arrays)) if names[i] in written]
    separate(op, outs + [(names[i], arrays[i]) for i in range(len(arrays)) if names[i] not in written],
             len(outs))
    if B == 0 or H == 0:   # nothing to write, however many rows of nothing (a loop over them is not)
        return 0
    cdef int nt = threads_for(B * H * gates)
    with nogil:
        # the one float/double choice of the six steps: _run is written once, on `floating`
        if t == cnp.NPY_FLOAT:
            _run(step, <float**>p, B, H, relu, nt)
        else:
            _run(step, <double**>p, B, H, relu, nt)
    return 0


def lstm_step_forward(gh, gi, b_hh, c_prev, gates, c, h):
    """Write c', h' and the gates (i, f, g, o) of one LSTM step (see the module docstring)."""
    B, H = _checks_py.step_state("lstm_step_forward", "c_prev", c_prev)
    _step(LSTM_FORWARD, "lstm_step_forward", (gh, gi, b_hh, c_prev, gates, c, h),
          ("gh", "gi", "b_hh", "c_prev", "gates", "c", "h"),
          ((B, 4 * H), (B, 4 * H), (4 * H,), (B, H), (B, 4 * H), (B, H), (B, H)), ("gates", "c", "h"), B, H)


def lstm_step_backward(dh, dc, gates, c_prev, c, dpre):
    """From dL/dh', dL/dc' (``dc``, overwritten with dL/dc) and the saved gates, write dL/d(pre-activations)."""
    B, H = _checks_py.step_state("lstm_step_backward", "c_prev", c_prev)
    _step(LSTM_BACKWARD, "lstm_step_backward", (dh, dc, gates, c_prev, c, dpre),
          ("dh", "dc", "gates", "c_prev", "c", "dpre"),
          ((B, H), (B, H), (B, 4 * H), (B, H), (B, H), (B, 4 * H)), ("dc", "dpre"), B, H)


def gru_step_forward(gh, gi, b_hh, h_prev, gates, h):
    """Write h' and the saved (r, z, n, W_hn h + b_hn) of one GRU step."""
    B, H = _checks_py.step_state("gru_step_forward", "h_prev", h_prev)
    _step(GRU_FORWARD, "gru_step_forward", (gh, gi, b_hh, h_prev, gates, h),
          ("gh", "gi", "b_hh", "h_prev", "gates", "h"),
          ((B, 3 * H), (B, 3 * H), (3 * H,), (B, H), (B, 4 * H), (B, H)), ("gates", "h"), B, H)


def gru_step_backward(dh, gates, h_prev, dgi, dgh, dh_prev):
    """From dL/dh' and the saved gates: dL/d(input projection), dL/d(gh + b_hh), and dL/dh through z."""
    B, H = _checks_py.step_state("gru_step_backward", "h_prev", h_prev)
    _step(GRU_BACKWARD, "gru_step_backward", (dh, gates, h_prev, dgi, dgh, dh_prev),
          ("dh", "gates", "h_prev", "dgi", "dgh", "dh_prev"),
          ((B, H), (B, 4 * H), (B, H), (B, 3 * H), (B, 3 * H), (B, H)), ("dgi", "dgh", "dh_prev"), B, H)


def rnn_step_forward(gh, gi, b_hh, h, relu):
    """Write h' = tanh(gi + gh + b_hh) (or relu) of one plain RNN step."""
    relu = _flag("rnn_step_forward", relu, "relu")
    B, H = _checks_py.step_state("rnn_step_forward", "h", h)
    _step(RNN_FORWARD, "rnn_step_forward", (gh, gi, b_hh, h), ("gh", "gi", "b_hh", "h"),
          ((B, H), (B, H), (H,), (B, H)), ("h",), B, H, relu, 1)


def rnn_step_backward(dh, h, dpre, relu):
    """dL/d(pre-activation) of one plain RNN step from dL/dh' and h'."""
    relu = _flag("rnn_step_backward", relu, "relu")
    B, H = _checks_py.step_state("rnn_step_backward", "h", h)
    _step(RNN_BACKWARD, "rnn_step_backward", (dh, h, dpre), ("dh", "h", "dpre"),
          ((B, H), (B, H), (B, H)), ("dpre",), B, H, relu, 1)


cdef bint _layout_fits(list layout, tuple written):
    """checks.scan_operands's rules on the fast path, without raising: True when every array
    is as its (name, array, shape) triple says. When not, the Python check names the fault."""
    cdef int t = -1
    for name, arr, shape in layout:
        if shape is None or arr is None:
            if (shape is None) != (arr is None) and not (arr is None and name == "b_hh"):
                return False
            continue
        if (not is_native_float(arr) or (t != -1 and cnp.PyArray_TYPE(<cnp.ndarray>arr) != t)
                or arr.shape != shape or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>arr)
                or (name in written and not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>arr))):
            return False
        t = cnp.PyArray_TYPE(<cnp.ndarray>arr)
    return True


cdef tuple _scan_dims(str op, object mode, object hs):
    """(T, B, H, G) of a scan, from its mode and ``hs`` (checks.scan_mode and scan_state raise)."""
    cdef Py_ssize_t G = _checks_py.scan_mode(op, mode)
    if not is_native_float(hs) or cnp.PyArray_NDIM(<cnp.ndarray>hs) != 3 or hs.shape[0] < 1:
        _checks_py.scan_state(op, hs)
    return hs.shape[0] - 1, hs.shape[1], hs.shape[2], G


cdef int _run_scan(bint forward, str op, object mode, list layout, tuple written, list scratch,
                   Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G) except -1:
    """Check ``layout`` (checks.scan_*_layout: the arrays in the order _scan reads them), then
    run the scan on them and on ``scratch``. None is a NULL pointer."""
    cdef void* p[SCAN_ARRAYS]
    cdef Py_ssize_t i
    if not _layout_fits(layout, written):
        _checks_py.scan_operands(op, mode, layout, written)   # raises, naming what is wrong
    # no written array may share memory with another: byte ranges first, exactly where they meet
    cdef list outs = [(name, arr) for name, arr, _ in layout if arr is not None and name in written]
    separate(op, outs + [(name, arr) for name, arr, _ in layout if arr is not None and name not in written],
             len(outs))
    arrays = [arr for _, arr, _ in layout] + scratch
    for i in range(len(arrays)):
        p[i] = NULL if arrays[i] is None else data(arrays[i])
    if T == 0 or B == 0 or H == 0:   # nothing to compute, and BLAS is not asked for an empty product
        return 0
    cdef Mode m = MODES[mode]
    cdef Py_ssize_t S = 2 if m == MODE_LSTM else 1
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>arrays[1])   # w_hh's, the dtype of them all
    cdef Py_ssize_t blocks = 0   # the plan: 0 for step by step, else how many blocks of rows
    if _checks_py.scan_row_blocks(B, H, G, 4 if t == cnp.NPY_FLOAT else 8):
        blocks = len(_checks_py.scan_blocks(B))
    with nogil:
        if t == cnp.NPY_FLOAT:
            _scan(forward, m, <float**>p, T, B, H, G, S, blocks)
        else:
            _scan(forward, m, <double**>p, T, B, H, G, S, blocks)
    return 0


def recurrent_scan_forward(mode, gi, w_hh, b_hh, hs, cs, gates):
    """All T steps of one recurrent layer and direction in one call (no Python between steps).

    ``mode``: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU", with G = 4, 3, 1, 1 gates.
    Reads ``gi`` (T, B, G*H), the input projections of every step; ``w_hh``
    (G*H, H); ``b_hh`` (G*H,) or None; ``hs[0]`` (and for LSTM ``cs[0]``), the
    initial state. Writes the rest of ``hs`` (T+1, B, H) and of ``cs`` (LSTM;
    None otherwise) and ``gates`` (T, B, 4H) for LSTM and GRU (None for RNN):
    what the step kernels write, step after step, with ``gh = hs[s] @ w_hh.T``.
    How the steps share the threads: ``checks.scan_row_blocks``.
    """
    op = "recurrent_scan_forward"
    T, B, H, G = _scan_dims(op, mode, hs)
    layout = _checks_py.scan_forward_layout(mode, T, B, H, G, gi, w_hh, b_hh, hs, cs, gates)
    gh = np.empty((B, G * H), hs.dtype)   # the rows of h W_hh^T, rewritten every step
    _run_scan(True, op, mode, layout, _checks_py.SCAN_FORWARD_WRITTEN, [gh], T, B, H, G)


def recurrent_scan_backward(mode, g, w_hh, hs, cs, gates, dgi, dgh, dh, dc):
    """The backward of ``recurrent_scan_forward``, from the last step to the first.

    Reads ``g`` (T, S, B, H), the gradient of every step's output (S = 2 for
    LSTM: h and c), and the forward's ``hs``, ``cs`` and ``gates``. ``dh`` (and
    for LSTM ``dc``), (B, H), hold the gradient of the last state on entry and
    that of the initial state on exit. Writes ``dgi`` (T, B, G*H), the gradients
    of the pre-activations (of the input projections), and for GRU ``dgh``, those
    of ``h W_hh^T + b_hh`` (they differ in the n gate; None for the others).
    """
    op = "recurrent_scan_backward"
    T, B, H, G = _scan_dims(op, mode, hs)
    layout = _checks_py.scan_backward_layout(mode, T, B, H, G, g, w_hh, hs, cs, gates, dgi, dgh, dh, dc)
    dh_s = np.empty((B, H), hs.dtype)     # dL/dh of the current step, from above and from the next step
    through_z = np.empty((B, H), hs.dtype) if mode == "GRU" else None
    _run_scan(False, op, mode, layout, _checks_py.SCAN_BACKWARD_WRITTEN, [dh_s, through_z], T, B, H, G)
