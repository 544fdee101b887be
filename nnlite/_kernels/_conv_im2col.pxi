# Convolution by im2col + GEMM, the general algorithm (included by _conv.pyx).
#
# Each output pixel's receptive field is copied into one column of a matrix
# (im2col); the convolution is then one GEMM per group, weight (O, C*kh*kw) times
# columns (C*kh*kw, pixels). The input gradient multiplies back to columns and
# adds them onto the image (col2im); the weight gradient multiplies the output
# gradient by the columns. The batch is cut into chunks of about CHUNK_COLUMNS
# pixels so that a chunk's columns stay in cache while the GEMM reads them.
# Plain loop it equals, for one sample and one group:
#     for o, (c, i, j), (oh, ow): y[o, oh, ow] += w[o, c, i, j] * x[c, oh*sh + i*dh - ph, ow*sw + j*dw - pw]
# Twin: reference/_conv.py (the same gather, tap by tap, in NumPy).

# ---------------------------------------------------- im2col / col2im loops -----

cdef inline bint _rows_are_flat(Geometry* g) noexcept nogil:
    """Stride 1 and output rows as wide as input rows ("same" padding): a tap's valid
    output rows then read one contiguous run of the input plane."""
    return g.sh == 1 and g.sw == 1 and g.OW == g.W


cdef inline void _tap_rows(Geometry* g, Py_ssize_t i, Py_ssize_t* oh_lo,
                           Py_ssize_t* oh_hi) noexcept nogil:
    """The output rows [oh_lo, oh_hi) whose input row for kernel row i is inside the
    image (stride 1)."""
    oh_lo[0] = min(g.OH, max(0, g.ph - i * g.dh))
    oh_hi[0] = max(oh_lo[0], min(g.OH, g.H + g.ph - i * g.dh))


cdef inline void _gather_row(const floating* src, floating* row, Py_ssize_t OW, Py_ssize_t sw,
                             Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """row[ow] = src[ow*sw] for ow in [lo, hi), zero outside it (one output row of one tap)."""
    cdef Py_ssize_t ow
    for ow in range(lo):
        row[ow] = 0
    # rows are short (OW elements): a plain loop beats a memcpy call
    if sw == 1:
        for ow in range(lo, hi):
            row[ow] = src[ow]
    elif sw == 2:   # the common strided case, with a constant stride the compiler can unroll
        for ow in range(lo, hi):
            row[ow] = src[2 * ow]
    else:
        for ow in range(lo, hi):
            row[ow] = src[ow * sw]
    for ow in range(hi, OW):
        row[ow] = 0


cdef void _im2col(const floating* x, floating* cols, Py_ssize_t nb, Geometry* g) noexcept nogil:
    """cols[(c, i, j), n*L + oh*OW + ow] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] or 0.

    Tap by tap, then sample by sample: a tap's columns inside the image ([lo, hi)) and,
    with flat rows, its valid output rows are worked out once per tap, not per sample
    (those are integer divisions, which cost more than a short row's copy).
    """
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, OH = g.OH, OW = g.OW, kh = g.kh, kw = g.kw
    cdef Py_ssize_t sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, NL = nb * L, HW = H * W, CHW = C * H * W
    cdef Py_ssize_t r, n, c, i, j, oh, ow, ih, iw0, lo, hi, oh_lo, oh_hi, k0, k1
    cdef bint flat = _rows_are_flat(g)
    cdef floating* dst
    cdef const floating* src
    cdef const floating* plane
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                iw0 = j * dw - pw
                lo = _first_inside(iw0, sw)
                hi = _end_inside(iw0, sw, W, OW)
                if lo > OW:
                    lo = OW
                if hi < lo:
                    hi = lo
                if flat and hi > lo:
                    # Output row oh reads input row oh - ph + i*dh from column iw0 on: with rows
                    # of equal width, all valid rows are one run of the plane, copied at once
                    # from its first valid element to its last. The entries in between that
                    # fall left or right of the image (columns outside [lo, hi)) are then zeroed.
                    _tap_rows(g, i, &oh_lo, &oh_hi)
                    k0 = oh_lo * OW + lo
                    k1 = (oh_hi - 1) * OW + hi
                    for n in range(nb):
                        dst = cols + r * NL + n * L
                        memset(dst, 0, oh_lo * OW * sizeof(floating))
                        memset(dst + oh_hi * OW, 0, (OH - oh_hi) * OW * sizeof(floating))
                        if oh_hi > oh_lo:
                            # input element of output entry k: k + (i*dh - ph)*W + iw0 in the plane
                            src = x + n * CHW + c * HW + (k0 + (i * dh - ph) * W + iw0)
                            memcpy(dst + k0, src, (k1 - k0) * sizeof(floating))
                            for oh in range(oh_lo, oh_hi):
                                for ow in range(lo):
                                    dst[oh * OW + ow] = 0
                                for ow in range(hi, OW):
                                    dst[oh * OW + ow] = 0
                    continue
                for n in range(nb):
                    dst = cols + r * NL + n * L
                    plane = x + n * CHW + c * HW + iw0
                    for oh in range(OH):
                        ih = oh * sh - ph + i * dh
                        if ih < 0 or ih >= H:
                            memset(dst + oh * OW, 0, OW * sizeof(floating))
                        else:
                            _gather_row(plane + ih * W, dst + oh * OW, OW, sw, lo, hi)


cdef inline void _scatter_add_row(const floating* row, floating* dst, Py_ssize_t sw, Py_ssize_t lo,
                                  Py_ssize_t hi) noexcept nogil:
    """dst[ow*sw] += row[ow] for ow in [lo, hi) (_gather_row the other way)."""
    cdef Py_ssize_t ow
    if sw == 1:
        for ow in range(lo, hi):
            dst[ow] += row[ow]
    elif sw == 2:
        for ow in range(lo, hi):
            dst[2 * ow] += row[ow]
    else:
        for ow in range(lo, hi):
            dst[ow * sw] += row[ow]


cdef void _col2im(floating* cols, floating* gx, Py_ssize_t nb, Geometry* g) noexcept nogil:
    """gx[n, c] = sum of the columns that read it, taps in order.

    With flat rows (_rows_are_flat) the entries of cols that fall outside the image are
    zeroed first: cols is scratch, and then a tap's valid rows add onto the plane as one
    run, plane after plane. Other geometries go tap by tap, then sample by sample (as in
    _im2col: a tap's columns inside the image, integer divisions, are worked out once per
    tap instead of once per plane and tap); every element of gx still receives its taps'
    terms in (i, j) order, the order of the plain loop.
    """
    # Geometry in locals: through the pointer the compiler must assume stores alias it.
    cdef Py_ssize_t C = g.C, H = g.H, W = g.W, OH = g.OH, OW = g.OW, kh = g.kh, kw = g.kw
    cdef Py_ssize_t sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, NL = nb * L, HW = H * W, CHW = C * H * W
    cdef Py_ssize_t plane, n, c, i, j, oh, ow, ih, iw0, lo, hi, oh_lo, oh_hi, k, k0, k1
    cdef floating* dst
    cdef floating* d
    cdef floating* src
    if _rows_are_flat(g):
        for plane in range(nb * C):
            n = plane // C
            c = plane - n * C
            dst = gx + plane * HW
            memset(dst, 0, HW * sizeof(floating))
            for i in range(kh):
                for j in range(kw):
                    src = cols + ((c * kh + i) * kw + j) * NL + n * L
                    iw0 = j * dw - pw
                    lo = _first_inside(iw0, sw)
                    hi = _end_inside(iw0, sw, W, OW)
                    # as in _im2col: output entry k lands on plane element k + delta
                    _tap_rows(g, i, &oh_lo, &oh_hi)
                    if hi <= lo or oh_hi <= oh_lo:
                        continue
                    for oh in range(oh_lo, oh_hi):
                        for ow in range(lo):
                            src[oh * OW + ow] = 0
                        for ow in range(hi, OW):
                            src[oh * OW + ow] = 0
                    k0 = oh_lo * OW + lo
                    k1 = (oh_hi - 1) * OW + hi
                    d = dst + (k0 + (i * dh - ph) * W + iw0)
                    for k in range(k1 - k0):
                        d[k] += src[k0 + k]
        return
    memset(gx, 0, nb * CHW * sizeof(floating))
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                iw0 = j * dw - pw
                lo = _first_inside(iw0, sw)
                hi = _end_inside(iw0, sw, W, OW)
                for n in range(nb):
                    src = cols + ((c * kh + i) * kw + j) * NL + n * L
                    dst = gx + n * CHW + c * HW
                    for oh in range(OH):
                        ih = oh * sh - ph + i * dh
                        if ih < 0 or ih >= H:
                            continue
                        _scatter_add_row(src + oh * OW, dst + ih * W + iw0, sw, lo, hi)


cdef void _channels_first_to_batch_first(const floating* src, floating* dst, const floating* bias,
                                         Py_ssize_t nb, Py_ssize_t O, Py_ssize_t L) noexcept nogil:
    """(O, nb, L) -> (nb, O, L), adding bias[o] when given; in place when nb == 1."""
    cdef Py_ssize_t n, o, l
    cdef floating b
    cdef floating* d
    cdef const floating* s
    for n in range(nb):
        for o in range(O):
            d = dst + (n * O + o) * L
            s = src + (o * nb + n) * L
            if bias == NULL:
                if src != dst:
                    memcpy(d, s, L * sizeof(floating))
            else:
                b = bias[o]
                for l in range(L):
                    d[l] = s[l] + b


cdef void _batch_first_to_channels_first(const floating* src, floating* dst, Py_ssize_t nb,
                                         Py_ssize_t O, Py_ssize_t L) noexcept nogil:
    """(nb, O, L) -> (O, nb, L)."""
    cdef Py_ssize_t n, o
    for n in range(nb):
        for o in range(O):
            memcpy(dst + (o * nb + n) * L, src + (n * O + o) * L, L * sizeof(floating))


cdef void _add_bias(floating* y, const floating* bias, Py_ssize_t N, Py_ssize_t O,
                    Py_ssize_t L, bint relu) noexcept nogil:
    """y[n, o] += bias[o] (when given), then clamped at 0 (with ``relu``), plane by plane."""
    cdef Py_ssize_t task, l
    cdef floating b
    cdef int nt = threads_for(N * O * L)
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        if bias != NULL:
            b = bias[task % O]
            for l in range(L):
                y[task * L + l] = y[task * L + l] + b
        if relu:
            relu_block(y + task * L, L, 1, L)


cdef struct Chunking:
    Py_ssize_t samples       # samples per chunk (the last chunk may have fewer)
    Py_ssize_t count         # number of chunks
    Py_ssize_t scratch       # scratch elements per thread: the chunk's columns, then its (O, cols) product


cdef void _forward_gemm(const floating* x, const floating* w, const floating* bias, floating* y,
                        floating* scratch, Chunking* ch, int nt, Geometry* g, bint relu) noexcept nogil:
    """General convolution: per chunk, im2col, one GEMM per group, then into (n, O, L) order
    (and, with ``relu``, clamped at 0 while the chunk's output is in cache)."""
    cdef Py_ssize_t L = g.OH * g.OW, Og = g.O // g.groups, Kg = (g.C // g.groups) * g.kh * g.kw
    cdef Py_ssize_t K = g.C * g.kh * g.kw, G = ch.samples
    cdef Py_ssize_t chunk, n0, nc, grp
    cdef floating* cols
    cdef floating* out
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for chunk in prange(ch.count, nogil=True, num_threads=nt, schedule='static'):
        cols = scratch + threadid() * ch.scratch
        n0 = chunk * G
        nc = min(G, g.N - n0)
        # A one-sample chunk's (O, L) product is already its slice of y.
        out = y + n0 * g.O * L if nc == 1 else cols + K * G * L
        _im2col(x + n0 * g.C * g.H * g.W, cols, nc, g)
        for grp in range(g.groups):
            _gemm_serial(False, False, Og, nc * L, Kg, w + grp * Og * Kg, Kg,
                         cols + grp * Kg * nc * L, nc * L, 0, out + grp * Og * nc * L, nc * L)
        _channels_first_to_batch_first(out, y + n0 * g.O * L, bias, nc, g.O, L)
        if relu:
            relu_block(y + n0 * g.O * L, nc * g.O * L, 1, nc * g.O * L)
    _blas_restore_threads(saved)


cdef void _backward_input_gemm(const floating* grad, const floating* w, floating* gx,
                               floating* scratch, Chunking* ch, int nt, Geometry* g) noexcept nogil:
    """Per chunk: grad into (O, cols) order, one GEMM per group back to columns, col2im."""
    cdef Py_ssize_t L = g.OH * g.OW, Og = g.O // g.groups, Kg = (g.C // g.groups) * g.kh * g.kw
    cdef Py_ssize_t K = g.C * g.kh * g.kw, G = ch.samples
    cdef Py_ssize_t chunk, n0, nc, grp
    cdef floating* cols
    cdef const floating* grad_cm
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for chunk in prange(ch.count, nogil=True, num_threads=nt, schedule='static'):
        cols = scratch + threadid() * ch.scratch
        n0 = chunk * G
        nc = min(G, g.N - n0)
        grad_cm = grad + n0 * g.O * L
        if nc > 1:
            _batch_first_to_channels_first(grad + n0 * g.O * L, cols + K * G * L, nc, g.O, L)
            grad_cm = cols + K * G * L
        for grp in range(g.groups):
            _gemm_serial(True, False, Kg, nc * L, Og, w + grp * Og * Kg, Kg,
                         grad_cm + grp * Og * nc * L, nc * L, 0, cols + grp * Kg * nc * L, nc * L)
        _col2im(cols, gx + n0 * g.C * g.H * g.W, nc, g)
    _blas_restore_threads(saved)


cdef void _backward_weight_gemm(const floating* grad, const floating* x, floating* gw,
                                floating* scratch, floating* partial, Chunking* ch,
                                Py_ssize_t per_task, int nt, Geometry* g) noexcept nogil:
    """grad_w = sum over tasks, in task order, of each task's chunks' grad_cm @ cols^T.

    A task is ``per_task`` consecutive chunks, summed into its own partial in
    chunk order; the partials are then added in task order. Both orders depend
    on the shape only.
    """
    cdef Py_ssize_t L = g.OH * g.OW, Og = g.O // g.groups, Kg = (g.C // g.groups) * g.kh * g.kw
    cdef Py_ssize_t K = g.C * g.kh * g.kw, G = ch.samples, size = g.O * Kg
    cdef Py_ssize_t ntasks = (ch.count + per_task - 1) // per_task
    cdef Py_ssize_t task, chunk, n0, nc, grp
    cdef floating* cols
    cdef const floating* grad_cm
    cdef int saved[4]
    if g.N == 0:
        memset(gw, 0, size * sizeof(floating))
        return
    _blas_pin_one_thread(saved)
    for task in prange(ntasks, nogil=True, num_threads=nt, schedule='static'):
        cols = scratch + threadid() * ch.scratch
        for chunk in range(task * per_task, min((task + 1) * per_task, ch.count)):
            n0 = chunk * G
            nc = min(G, g.N - n0)
            _im2col(x + n0 * g.C * g.H * g.W, cols, nc, g)
            grad_cm = grad + n0 * g.O * L
            if nc > 1:
                _batch_first_to_channels_first(grad + n0 * g.O * L, cols + K * G * L, nc, g.O, L)
                grad_cm = cols + K * G * L
            for grp in range(g.groups):
                _gemm_serial(False, True, Og, Kg, nc * L, grad_cm + grp * Og * nc * L, nc * L,
                             cols + grp * Kg * nc * L, nc * L, 0 if chunk == task * per_task else 1,
                             partial + task * size + grp * Og * Kg, Kg)
    _blas_restore_threads(saved)
    _sum_partials(partial, ntasks, size, gw)


cdef Chunking _chunking(str op, Geometry* g) except *:
    """Cut the batch into chunks of about CHUNK_COLUMNS output pixels (at least one sample).

    A small batch is still cut into MIN_CHUNKS chunks where it can be, so that
    it has work for several threads; the cut depends on the shape alone.
    """
    cdef Chunking ch
    cdef Py_ssize_t L = g.OH * g.OW, K = g.C * g.kh * g.kw
    ch.samples = CHUNK_COLUMNS // L if L > 0 else 1
    ch.samples = max(1, min(ch.samples, (g.N + MIN_CHUNKS - 1) // MIN_CHUNKS))
    ch.count = (g.N + ch.samples - 1) // ch.samples
    ch.scratch = (K + g.O) * ch.samples * L
    _check_blas_size(op, K, ch.samples * L)
    return ch


cdef int _chunk_threads(Chunking* ch, Geometry* g):
    """Threads for a chunk loop: by the columns' size, never more than there are chunks."""
    return <int>max(1, min(threads_for(g.C * g.kh * g.kw * g.N * g.OH * g.OW), ch.count))
