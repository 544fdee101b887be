# Depthwise convolution: one input channel per group (included by _conv.pyx).
#
# A GEMM per group would have only kh*kw terms per output, too little work, so
# depthwise convolutions run plane by plane: with stride 1 as a one-row shifted
# product (_shifted_gemm.h, nnl_depthwise_plane), otherwise as direct loops over
# a zero-padded copy of each plane. Plain loop it equals, per sample:
#     y[o, oh, ow] = sum over (i, j) of w[o, 0, i, j] * x[o // multiplier, oh*sh + i*dh - ph, ow*sw + j*dw - pw]
# Twins, step for step: reference/_conv_depthwise.py.

# ------------------------------------------------- depthwise, stride 1 -----

# With stride 1 a depthwise convolution is the shifted product with one output row per
# plane (_shifted_gemm.h, nnl_depthwise_plane): the input plane, zero-bordered, read at
# each tap's offset, the taps summed in registers over runs of pixels. The input gradient
# is the same with the kernel flipped, each input plane gathering its `multiplier` output
# planes. Strided depthwise convolutions take the direct loops further below.

cdef struct Planes:
    Py_ssize_t Q, Cin, nin, in_num, in_den   # planes written per sample; planes read per
                                             # sample; read per written plane, from plane
                                             # q * in_num // in_den on
    Py_ssize_t Hi, Wi, qh, qw, Ho, Wo        # read planes, their zero border, written planes
    Py_ssize_t Wp, S, P, K                   # padded row, plane stride, pixels, taps


cdef Planes _planes(Py_ssize_t Q, Py_ssize_t Cin, Py_ssize_t nin, Py_ssize_t in_num,
                    Py_ssize_t in_den, Py_ssize_t Hi, Py_ssize_t Wi, Py_ssize_t qh,
                    Py_ssize_t qw, Py_ssize_t Ho, Py_ssize_t Wo, Geometry* g,
                    Py_ssize_t vector) noexcept nogil:
    cdef Planes pl
    pl.Q, pl.Cin, pl.nin, pl.in_num, pl.in_den = Q, Cin, nin, in_num, in_den
    pl.Hi, pl.Wi, pl.qh, pl.qw, pl.Ho, pl.Wo = Hi, Wi, qh, qw, Ho, Wo
    pl.Wp = Wi + 2 * qw
    pl.P = (Ho * pl.Wp + vector - 1) // vector * vector
    # the last pixels read reach dw*(kw-1) + (P - Ho*Wp) < dw*(kw-1) + vector past the plane
    pl.S = (Hi + 2 * qh) * pl.Wp + g.dw * (g.kw - 1) + vector
    pl.K = nin * g.kh * g.kw
    return pl


cdef void _depthwise_products(const floating* src, const floating* wmat, const floating* bias,
                              floating* dst, floating* scratch, Py_ssize_t* off, Py_ssize_t N,
                              int nt, Planes* pl, bint relu) noexcept nogil:
    """dst[n, q] = the taps wmat[q] over src[n]'s read planes for q (+ bias[q]); clamped at 0
    plane by plane as it is written, with ``relu``."""
    cdef Py_ssize_t Q = pl.Q, Ho = pl.Ho, Wo = pl.Wo, Wp = pl.Wp, P = pl.P
    cdef Py_ssize_t per_thread = pl.nin * pl.S + P
    cdef Py_ssize_t task, n, q
    cdef floating* xpad
    cdef floating* out
    for task in prange(N * Q, nogil=True, num_threads=nt, schedule='static'):
        n = task // Q
        q = task - n * Q
        # scratch comes zeroed; only the planes' interiors are written, task after task
        xpad = scratch + threadid() * per_thread
        out = xpad + pl.nin * pl.S
        _to_grid(src + ((n * pl.Cin + q * pl.in_num // pl.in_den) * pl.Hi) * pl.Wi,
                 xpad + pl.qh * Wp + pl.qw, pl.nin, pl.Hi, pl.Wi, Wp, pl.S)
        if floating is float:
            nnl_depthwise_plane_f(wmat + q * pl.K, pl.K, off, xpad, P, out)
        else:
            nnl_depthwise_plane_d(wmat + q * pl.K, pl.K, off, xpad, P, out)
        _from_grid(out, dst + task * Ho * Wo, 1, Ho, Wo, Wp, P,
                   <const floating*>NULL if bias == NULL else bias + q)
        if relu:
            relu_block(dst + task * Ho * Wo, Ho * Wo, 1, Ho * Wo)


cdef void _depthwise_weight_grad(const floating* grad, const floating* x, floating* gw,
                                 double* partial, floating* scratch, Py_ssize_t* off, int nt,
                                 Planes* pl, Geometry* g) noexcept nogil:
    """Per-(n, o) tap sums (parallel), then summed over n in order in double (serial)."""
    cdef Py_ssize_t N = g.N, O = g.O, OH = g.OH, OW = g.OW, taps = pl.K, P = pl.P
    cdef Py_ssize_t multiplier = g.O // g.C, per_thread = pl.S + P + taps
    cdef Py_ssize_t task, n, o, t
    cdef floating* xpad
    cdef floating* gext
    cdef floating* sums
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        n = task // O
        o = task - n * O
        xpad = scratch + threadid() * per_thread
        gext = xpad + pl.S
        sums = gext + P
        _to_grid(x + ((n * g.C + o // multiplier) * pl.Hi) * pl.Wi,
                 xpad + pl.qh * pl.Wp + pl.qw, 1, pl.Hi, pl.Wi, pl.Wp, pl.S)
        # the output gradient on the padded-width grid; the gaps stay zero
        _to_grid(grad + task * OH * OW, gext, 1, OH, OW, pl.Wp, P)
        memset(sums, 0, taps * sizeof(floating))
        if floating is float:
            nnl_depthwise_wgrad_f(gext, xpad, off, taps, P, sums)
        else:
            nnl_depthwise_wgrad_d(gext, xpad, off, taps, P, sums)
        for t in range(taps):
            partial[task * taps + t] = sums[t]
    _sum_over_samples(partial, N, O * taps, gw)


cdef _run_depthwise_products(const floating* src, const floating* wmat, const floating* bias,
                             floating* dst, Planes* pl, Geometry* g, dtype, bint relu):
    """Allocate the offsets and the zeroed per-thread scratch, then _depthwise_products."""
    cdef cnp.ndarray off = _tap_offsets(pl.nin, pl.S, pl.Wp, g)
    cdef int nt = threads_for(g.N * pl.Q * pl.P * pl.K)
    cdef cnp.ndarray scratch = np.zeros(nt * (pl.nin * pl.S + pl.P), dtype=dtype)
    cdef floating* s = <floating*>cnp.PyArray_DATA(scratch)
    cdef Py_ssize_t* offp = <Py_ssize_t*>cnp.PyArray_DATA(off)
    with nogil:
        _depthwise_products(src, wmat, bias, dst, s, offp, g.N, nt, pl, relu)


# The strided depthwise loops (stride 1 takes the shifted product above) work on a
# zero-padded copy of each plane (one scratch plane per thread, whole cache lines apart),
# so the inner loops run over whole output rows with no bounds checks.

cdef void _forward_depthwise(const floating* x, const floating* w, const floating* bias,
                             floating* y, floating* scratch, int nt, Geometry* g, bint relu) noexcept nogil:
    """One input channel per group: y[n, o] = bias[o] + taps of w[o] over x[n, o // multiplier]
    (clamped at 0 plane by plane, with ``relu``)."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, OH = g.OH, OW = g.OW
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw
    cdef Py_ssize_t dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, HW = H * W, Wp = W + 2 * pw, HWp = _plane_stride(g)
    cdef Py_ssize_t multiplier = O // C
    cdef Py_ssize_t task, n, o, i, j, oh, ow
    cdef floating wv, b
    cdef floating* dst
    cdef floating* d
    cdef const floating* xp
    cdef const floating* base
    cdef const floating* s
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        n = task // O
        o = task - n * O
        dst = y + task * L
        xp = _padded_plane(x + (n * C + o // multiplier) * HW, scratch + threadid() * HWp,
                           H, W, ph, pw)
        b = bias[o] if bias != NULL else 0
        for ow in range(L):
            dst[ow] = b
        for i in range(kh):
            for j in range(kw):
                wv = w[(o * kh + i) * kw + j]
                base = xp + i * dh * Wp + j * dw
                for oh in range(OH):
                    d = dst + oh * OW
                    s = base + oh * sh * Wp
                    if sw == 1:
                        for ow in range(OW):
                            d[ow] = d[ow] + wv * s[ow]
                    else:
                        for ow in range(OW):
                            d[ow] = d[ow] + wv * s[ow * sw]
        if relu:
            relu_block(dst, L, 1, L)


cdef inline const floating* _padded_plane(const floating* src, floating* scratch, Py_ssize_t H,
                                          Py_ssize_t W, Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """The plane with its zero border, in scratch (or the plane itself when there is no border)."""
    cdef Py_ssize_t Wp = W + 2 * pw, ih
    if ph == 0 and pw == 0:
        return src
    memset(scratch, 0, (H + 2 * ph) * Wp * sizeof(floating))
    for ih in range(H):
        memcpy(scratch + (ih + ph) * Wp + pw, src + ih * W, W * sizeof(floating))
    return scratch


cdef void _backward_input_depthwise(const floating* grad, const floating* w, floating* gx,
                                    floating* scratch, int nt, Geometry* g) noexcept nogil:
    """One thread per input plane: its multiplier output planes scatter onto a padded plane."""
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, OH = g.OH, OW = g.OW
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw
    cdef Py_ssize_t dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, HW = H * W, Wp = W + 2 * pw, HWp = _plane_stride(g)
    cdef Py_ssize_t multiplier = O // C
    cdef Py_ssize_t plane, n, c, m, o, i, j, oh, ow, ih
    cdef floating wv
    cdef floating* gp
    cdef floating* base
    cdef floating* d
    cdef const floating* s
    for plane in prange(N * C, nogil=True, num_threads=nt, schedule='static'):
        n = plane // C
        c = plane - n * C
        gp = scratch + threadid() * HWp
        memset(gp, 0, HWp * sizeof(floating))
        for m in range(multiplier):
            o = c * multiplier + m
            for i in range(kh):
                for j in range(kw):
                    wv = w[(o * kh + i) * kw + j]
                    base = gp + i * dh * Wp + j * dw
                    for oh in range(OH):
                        d = base + oh * sh * Wp
                        s = grad + (n * O + o) * L + oh * OW
                        if sw == 1:
                            for ow in range(OW):
                                d[ow] = d[ow] + wv * s[ow]
                        else:
                            for ow in range(OW):
                                d[ow * sw] = d[ow * sw] + wv * s[ow]
        for ih in range(H):
            memcpy(gx + plane * HW + ih * W, gp + (ih + ph) * Wp + pw, W * sizeof(floating))


cdef void _backward_weight_depthwise(const floating* grad, const floating* x, floating* gw,
                                     double* partial, floating* scratch, double* lanes_all, int nt,
                                     Geometry* g) noexcept nogil:
    """Per-(n, o) tap sums in float64 (parallel), then summed over n in order (serial).

    Each tap's sum runs in OW lanes (one per output column, summed over rows) and the
    lanes are added at the end: independent lanes vectorise, one long chain would not.
    """
    cdef Py_ssize_t N = g.N, C = g.C, O = g.O, H = g.H, W = g.W, OH = g.OH, OW = g.OW
    cdef Py_ssize_t kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw
    cdef Py_ssize_t dh = g.dh, dw = g.dw
    cdef Py_ssize_t L = OH * OW, HW = H * W, Wp = W + 2 * pw, HWp = _plane_stride(g)
    cdef Py_ssize_t multiplier = O // C, taps = kh * kw
    cdef Py_ssize_t task, n, o, i, j, oh, ow, t
    cdef double acc
    cdef double* lanes
    cdef const floating* xp
    cdef const floating* base
    cdef const floating* gr
    cdef const floating* s
    for task in prange(N * O, nogil=True, num_threads=nt, schedule='static'):
        n = task // O
        o = task - n * O
        xp = _padded_plane(x + (n * C + o // multiplier) * HW, scratch + threadid() * HWp,
                           H, W, ph, pw)
        lanes = lanes_all + threadid() * OW
        for i in range(kh):
            for j in range(kw):
                base = xp + i * dh * Wp + j * dw
                for ow in range(OW):
                    lanes[ow] = 0
                for oh in range(OH):
                    gr = grad + task * L + oh * OW
                    s = base + oh * sh * Wp
                    if sw == 1:
                        for ow in range(OW):
                            lanes[ow] = lanes[ow] + <double>gr[ow] * <double>s[ow]
                    else:
                        for ow in range(OW):
                            lanes[ow] = lanes[ow] + <double>gr[ow] * <double>s[ow * sw]
                acc = 0
                for ow in range(OW):
                    acc = acc + lanes[ow]
                partial[task * taps + i * kw + j] = acc
    _sum_over_samples(partial, N, O * taps, gw)


cdef inline Py_ssize_t _plane_stride(Geometry* g) noexcept nogil:
    """Elements between two threads' padded planes: the plane, rounded up to whole cache
    lines (16 elements), so that no line is written by two threads."""
    return ((g.H + 2 * g.ph) * (g.W + 2 * g.pw) + 15) // 16 * 16


cdef cnp.ndarray _plane_scratch(int nt, Geometry* g, dtype):
    """One zero-padded (H + 2*ph, W + 2*pw) plane per thread for the depthwise loops."""
    return np.empty(nt * _plane_stride(g), dtype=dtype)
