# Stride-1 convolution as the "shifted" product (included by _conv.pyx).
#
# The padded input planes, laid end to end, are read at one fixed offset per tap,
# so the im2col columns never exist; the micro-kernel is in _shifted_gemm.h, the
# plain loop it equals is there too. The depthwise algorithm (_conv_depthwise.pxi)
# shares the plane copies (_to_grid, _from_grid) and tap offsets defined here.
# Twin of every step: reference/_conv_shifted.py (a sum of shifted NumPy views).

# The stride-1 product without im2col: see _shifted_gemm.h.
cdef extern from "_shifted_gemm.h":
    Py_ssize_t nnl_shifted_tile_f() noexcept nogil
    Py_ssize_t nnl_shifted_tile_d() noexcept nogil
    Py_ssize_t nnl_shifted_lanes_f() noexcept nogil
    Py_ssize_t nnl_shifted_lanes_d() noexcept nogil
    Py_ssize_t nnl_shifted_rows() noexcept nogil
    void nnl_shifted_gemm_f(const float* w, Py_ssize_t K, const Py_ssize_t* off, const float* xpad,
                            Py_ssize_t O, Py_ssize_t P, float* out, Py_ssize_t ldo) noexcept nogil
    void nnl_shifted_gemm_d(const double* w, Py_ssize_t K, const Py_ssize_t* off,
                            const double* xpad, Py_ssize_t O, Py_ssize_t P, double* out,
                            Py_ssize_t ldo) noexcept nogil
    void nnl_depthwise_plane_f(const float* w, Py_ssize_t K, const Py_ssize_t* off,
                               const float* xpad, Py_ssize_t P, float* out) noexcept nogil
    void nnl_depthwise_plane_d(const double* w, Py_ssize_t K, const Py_ssize_t* off,
                               const double* xpad, Py_ssize_t P, double* out) noexcept nogil
    void nnl_depthwise_wgrad_f(const float* g, const float* xpad, const Py_ssize_t* off,
                               Py_ssize_t K, Py_ssize_t P, float* gw) noexcept nogil
    void nnl_depthwise_wgrad_d(const double* g, const double* xpad, const Py_ssize_t* off,
                               Py_ssize_t K, Py_ssize_t P, double* gw) noexcept nogil
    void nnl_shifted_wgrad_f(const float* g, Py_ssize_t ldg, Py_ssize_t gs, Py_ssize_t O,
                             const float* xpad, Py_ssize_t xs, const Py_ssize_t* off, Py_ssize_t K,
                             Py_ssize_t P, Py_ssize_t ns, float* gw) noexcept nogil
    void nnl_shifted_wgrad_d(const double* g, Py_ssize_t ldg, Py_ssize_t gs, Py_ssize_t O,
                             const double* xpad, Py_ssize_t xs, const Py_ssize_t* off,
                             Py_ssize_t K, Py_ssize_t P, Py_ssize_t ns, double* gw) noexcept nogil


# ------------------------------------------------- stride-1 shifted product -----

# A stride-1 convolution with one group runs without im2col: each sample's input
# planes are copied once into zero-bordered planes laid end to end, and the product
# reads tap (c, i, j) as the window starting at one fixed offset (_shifted_gemm.h).
# The gradient with respect to the input is the same computation on the output
# gradient, with the kernel flipped and its in/out channels swapped.

cdef struct Shifted:
    Py_ssize_t Ci, Hi, Wi    # planes read (input; output gradient for backward)
    Py_ssize_t Co, Ho, Wo    # planes written
    Py_ssize_t qh, qw        # zero border on each side of a plane read
    Py_ssize_t Wp, S, P, K   # padded row, plane stride, pixels computed, taps
    Py_ssize_t scratch       # per-thread scratch elements: padded planes + product


cdef Shifted _shifted_plan(Py_ssize_t Ci, Py_ssize_t Hi, Py_ssize_t Wi, Py_ssize_t Co,
                           Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t qh, Py_ssize_t qw,
                           Geometry* g, Py_ssize_t tile) noexcept nogil:
    cdef Shifted sp
    sp.Ci, sp.Hi, sp.Wi, sp.Co, sp.Ho, sp.Wo, sp.qh, sp.qw = Ci, Hi, Wi, Co, Ho, Wo, qh, qw
    sp.Wp = Wi + 2 * qw
    # output rows counted along the padded width, rounded up to whole tiles
    sp.P = (Ho * sp.Wp + tile - 1) // tile * tile
    # A tile past the last output row reads at most dw*(kw-1) + tile - 1 elements beyond
    # the padded plane: they are zeros of the gap before the next plane.
    sp.S = (Hi + 2 * qh) * sp.Wp + g.dw * (g.kw - 1) + tile
    sp.K = Ci * g.kh * g.kw
    sp.scratch = Ci * sp.S + Co * sp.P
    return sp


cdef bint _use_shifted(Geometry* g, bint backward, Py_ssize_t tile) noexcept nogil:
    """Whether the shifted product beats im2col + BLAS here (stride 1, one group only).

    The shifted product computes more than it keeps: the pixels between rows (padded
    width / output width), the pixels up to a whole tile, and the rows of a short tile
    of output channels. BLAS computes only what it keeps, but its products are slow when
    they have few output channels (M of 16 or less). Measured on the LeNet and small-CNN
    layers: the shifted product wins up to 1.25x waste, or up to 1.6x with <= 16 output
    channels; BLAS wins beyond (8x8 maps: 1.5x; an input gradient to 1-6 channels), and
    on large images, where one sample's padded planes no longer fit in cache. (Measured
    with the 256-bit tile, 4 rows by 24 pixels; an AVX-512 build's tile, 8 rows by 48
    pixels, goes through the same count of the work it wastes.)
    """
    cdef Py_ssize_t eh = g.dh * (g.kh - 1), ew = g.dw * (g.kw - 1)
    cdef Py_ssize_t Co, Ho, Wo, Wp, P, rows, rest
    cdef double waste
    if g.groups != 1 or g.sh != 1 or g.sw != 1:
        return False
    if backward:
        if g.ph > eh or g.pw > ew:       # the gradient would need a negative border
            return False
        Co, Ho, Wo, Wp = g.C, g.H, g.W, g.OW + 2 * (ew - g.pw)
    else:
        Co, Ho, Wo, Wp = g.O, g.OH, g.OW, g.W + 2 * g.pw
    if Co == 0 or Ho * Wo == 0:
        return False
    if (g.O if backward else g.C) * (Ho + g.dh * (g.kh - 1)) * Wp > SHIFTED_MAX_PLANES:
        return False                   # one sample's padded planes would not stay in cache
    P = (Ho * Wp + tile - 1) // tile * tile
    # channels go in tiles of nnl_shifted_rows() (4, or 8 with AVX-512), the rest in tiles
    # of 4, 2 and 1 (a 1-row tile runs at about the speed of a 2-row one: it waits on its
    # loads)
    rest = Co % nnl_shifted_rows()
    rows = Co - rest + rest // 4 * 4 + rest % 4 // 2 * 2 + (2 if rest % 2 else 0)
    waste = (<double>P / (Ho * Wo)) * rows / Co
    return waste <= 1.25 or (Co <= 16 and waste <= 1.6)


cdef inline void _to_grid(const floating* src, floating* dst, Py_ssize_t planes, Py_ssize_t rows,
                          Py_ssize_t cols, Py_ssize_t row_stride,
                          Py_ssize_t plane_stride) noexcept nogil:
    """Copy contiguous (rows, cols) planes of src onto a grid: row r of plane m at
    dst + m*plane_stride + r*row_stride (a padded plane's interior, or the padded-width
    grid of a product)."""
    cdef Py_ssize_t m, r
    for m in range(planes):
        for r in range(rows):
            memcpy(dst + m * plane_stride + r * row_stride, src + (m * rows + r) * cols,
                   cols * sizeof(floating))


cdef inline void _from_grid(const floating* src, floating* dst, Py_ssize_t planes,
                           Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t row_stride,
                           Py_ssize_t plane_stride, const floating* bias) noexcept nogil:
    """The other way: contiguous planes of dst from the grid, plus bias[m] when given."""
    cdef Py_ssize_t m, r, c
    cdef floating b
    cdef const floating* s
    cdef floating* d
    for m in range(planes):
        b = 0 if bias == NULL else bias[m]
        for r in range(rows):
            s = src + m * plane_stride + r * row_stride
            d = dst + (m * rows + r) * cols
            for c in range(cols):
                d[c] = s[c] + b


cdef void _shifted_products(const floating* src, const floating* wmat, const floating* bias,
                            floating* dst, floating* scratch, Py_ssize_t* off, Py_ssize_t N,
                            int nt, Shifted* sp, bint relu) noexcept nogil:
    """dst[n] = the shifted product of wmat with src[n]'s padded planes (+ bias), per sample;
    with ``relu``, each sample's output is clamped at 0 as soon as it is written."""
    cdef Py_ssize_t Ci = sp.Ci, Hi = sp.Hi, Wi = sp.Wi, Co = sp.Co, Ho = sp.Ho, Wo = sp.Wo
    cdef Py_ssize_t Wp = sp.Wp, S = sp.S, P = sp.P
    cdef Py_ssize_t n
    cdef floating* xpad
    cdef floating* out
    for n in prange(N, nogil=True, num_threads=nt, schedule='static'):
        # scratch comes zeroed; only the planes' interiors are written, sample after sample
        xpad = scratch + threadid() * sp.scratch
        out = xpad + Ci * S
        _to_grid(src + n * Ci * Hi * Wi, xpad + sp.qh * Wp + sp.qw, Ci, Hi, Wi, Wp, S)
        if floating is float:
            nnl_shifted_gemm_f(wmat, sp.K, off, xpad, Co, P, out, P)
        else:
            nnl_shifted_gemm_d(wmat, sp.K, off, xpad, Co, P, out, P)
        _from_grid(out, dst + n * Co * Ho * Wo, Co, Ho, Wo, Wp, P, bias)
        if relu:
            relu_block(dst + n * Co * Ho * Wo, Co * Ho * Wo, 1, Co * Ho * Wo)


cdef void _shifted_weight_grad(const floating* x, const floating* grad, floating* gw,
                               floating* scratch, floating* partial, Py_ssize_t* off,
                               Py_ssize_t N, Py_ssize_t per_task, Py_ssize_t per_call,
                               Py_ssize_t Pw, int nt, Shifted* sp) noexcept nogil:
    """gw = sum over tasks of per_task samples, in task order, of each task's shifted
    weight-gradient products, per_call samples a call (the lanes are summed once a call).

    Per sample, the input's padded planes (as in the forward) and the output gradient on
    the padded-width grid, Pw pixels a channel, zero between rows.
    """
    cdef Py_ssize_t Ci = sp.Ci, Hi = sp.Hi, Wi = sp.Wi, O = sp.Co, Ho = sp.Ho, Wo = sp.Wo
    cdef Py_ssize_t Wp = sp.Wp, S = sp.S, size = O * sp.K
    cdef Py_ssize_t ntasks = (N + per_task - 1) // per_task
    cdef Py_ssize_t task, n0, end, ns, s
    cdef floating* xpad
    cdef floating* gext
    for task in prange(ntasks, nogil=True, num_threads=nt, schedule='static'):
        # scratch comes zeroed; only the interiors are written, call after call
        xpad = scratch + threadid() * per_call * (Ci * S + O * Pw)
        gext = xpad + per_call * Ci * S
        end = min(N, (task + 1) * per_task)
        memset(partial + task * size, 0, size * sizeof(floating))
        n0 = task * per_task
        while n0 < end:
            ns = min(per_call, end - n0)
            for s in range(ns):
                _to_grid(x + (n0 + s) * Ci * Hi * Wi, xpad + s * Ci * S + sp.qh * Wp + sp.qw,
                         Ci, Hi, Wi, Wp, S)
                _to_grid(grad + (n0 + s) * O * Ho * Wo, gext + s * O * Pw, O, Ho, Wo, Wp, Pw)
            if floating is float:
                nnl_shifted_wgrad_f(gext, Pw, O * Pw, O, xpad, Ci * S, off, sp.K, Pw, ns,
                                    partial + task * size)
            else:
                nnl_shifted_wgrad_d(gext, Pw, O * Pw, O, xpad, Ci * S, off, sp.K, Pw, ns,
                                    partial + task * size)
            n0 = n0 + ns
    _sum_partials(partial, ntasks, size, gw)


cdef cnp.ndarray _tap_offsets(Py_ssize_t planes, Py_ssize_t S, Py_ssize_t Wp, Geometry* g):
    """off[(c, i, j)] = c*S + i*dh*Wp + j*dw: where tap (i, j) of padded plane c reads,
    relative to pixel 0 (planes S elements apart, rows Wp)."""
    c = np.arange(planes, dtype=np.intp)[:, None, None] * S
    i = np.arange(g.kh, dtype=np.intp)[None, :, None] * (g.dh * Wp)
    j = np.arange(g.kw, dtype=np.intp)[None, None, :] * g.dw
    return np.ascontiguousarray((c + i + j).ravel())


cdef Py_ssize_t _shifted_tile(int t) noexcept nogil:
    return nnl_shifted_tile_f() if t == cnp.NPY_FLOAT else nnl_shifted_tile_d()


cdef cnp.ndarray _shifted_scratch(int nt, Shifted* sp, dtype):
    """Per-thread scratch, all zero: the planes' borders and gaps are never written after."""
    return np.zeros(nt * sp.scratch, dtype=dtype)
