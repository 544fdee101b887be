# Layer, group and RMS normalisation (included by _norm.pyx): statistics per row.
#
# A "row" is what one set of statistics covers: the last D values of a sample
# (layer norm, RMS norm) or one group of channels of one sample (group norm).
# Plain loop, for layer norm:
#     for each row r: mean = sum(x[r]) / D; rstd = 1 / sqrt(sum((x[r] - mean)**2) / D + eps)
#                     y[r] = (x[r] - mean) * rstd * weight + bias
# One thread per row, so every row's sums have a fixed order; the weight and bias
# gradients are summed over rows in fixed blocks of ROW_BLOCK. Twin: reference/_norm.py.

# ------------------------------------------------- per-row normalisations -----

cdef void _ln_forward(floating* x, floating* y, floating* mean_out, floating* rstd_out,
                      Py_ssize_t rows, Py_ssize_t D, floating* w, floating* b,
                      double eps) noexcept nogil:
    cdef Py_ssize_t r
    cdef double mean, rstd, var, s1, s2, shift
    cdef floating* xr
    cdef floating* yr
    for r in prange(rows, num_threads=threads_for(rows * D), schedule="static"):
        xr = x + r * D
        yr = y + r * D
        # Fetch the next row while this one is summed and written from L1, so memory
        # is not idle during those passes.
        if r + 1 < rows:
            nnl_prefetch(xr + D, D * sizeof(floating))
        # one pass for both moments, about the row's first element (_lanes.h), or about 0
        # when that is an infinity or a NaN (x - inf would turn every other element into
        # -inf or NaN, and the mean of a row holding one +inf into NaN instead of +inf).
        # s1 and s2 are assigned here so that each thread has its own (written only through
        # a pointer, prange would share them between threads).
        shift = xr[0]
        if shift - shift != 0:
            shift = 0
        s1 = 0
        s2 = 0
        if floating is float:
            nnl_shifted_sums_f(xr, D, shift, &s1, &s2)
        else:
            nnl_shifted_sums_d(xr, D, shift, &s1, &s2)
        mean = shift + s1 / D
        # rounding may take the difference below 0; a NaN (from an infinity or a NaN in the
        # row) must stay NaN: a row that is not all finite has no finite rstd
        var = (s2 - s1 * (s1 / D)) / D
        if var < 0:
            var = 0
        rstd = 1.0 / sqrt(var + eps)
        mean_out[r] = <floating>mean
        rstd_out[r] = <floating>rstd
        # in the input's own type, x - mean through the mean's high and low parts
        if floating is float:
            nnl_ln_forward_row_f(xr, yr, D, mean, <float>rstd, w, b)
        else:
            nnl_ln_forward_row_d(xr, yr, D, mean, rstd, w, b)


def layer_norm_forward(x, weight, bias, eps):
    """Normalise each row of ``x`` (rows, D); returns (y, mean, rstd), mean/rstd of shape (rows,)."""
    kernel = "layer_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight), ("bias", bias)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{kernel}: the normalized size D must be positive, got x of shape {x.shape}")
    _shape(kernel, "weight", weight, (x.shape[1],))
    _shape(kernel, "bias", bias, (x.shape[1],))
    cdef double eps_ = _eps(kernel, eps)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight, bias = _contig(weight), _contig(bias)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef cnp.ndarray y = np.empty((rows, D), dtype=dtype)
    cdef cnp.ndarray mean = np.empty(rows, dtype=dtype), rstd = np.empty(rows, dtype=dtype)
    # the one float/double choice of this pass: _layer_norm_forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _layer_norm_forward(<float*>data(y), xc, mean, rstd, weight, bias, eps_)
    else:
        _layer_norm_forward(<double*>data(y), xc, mean, rstd, weight, bias, eps_)
    return y, mean, rstd


cdef void _layer_norm_forward(floating* y, cnp.ndarray x, object mean, object rstd, object weight,
                              object bias, double eps) noexcept:
    cdef floating* xp = data_as(y, x)
    cdef floating* mp = data_as(y, mean)
    cdef floating* rp = data_as(y, rstd)
    cdef floating* wp = data_as(y, weight)
    cdef floating* bp = data_as(y, bias)
    cdef Py_ssize_t rows = x.shape[0], D = x.shape[1]
    with nogil:
        _ln_forward(xp, y, mp, rp, rows, D, wp, bp, eps)


cdef inline void _row_dots(floating* g, floating* x, floating* w, Py_ssize_t D, double mean,
                           double rstd, double* sum_gw_xhat, double* sum_gw) noexcept nogil:
    """sum(g * w * xhat) and sum(g * w) over one row."""
    if floating is float:
        nnl_row_dots_f(g, x, w, D, mean, rstd, sum_gw_xhat, sum_gw)
    else:
        nnl_row_dots_d(g, x, w, D, mean, rstd, sum_gw_xhat, sum_gw)


cdef void _ln_backward(floating* g, floating* x, floating* gx, floating* mean_in,
                       floating* rstd_in, floating* w, bint affine, Py_ssize_t rows, Py_ssize_t D,
                       floating* partial_w, floating* partial_b) noexcept nogil:
    """grad_x row by row; grad_weight/grad_bias partial sums per ROW_BLOCK rows.

    A block's partial sums (at most ROW_BLOCK terms each) are kept in the input's type,
    so the per-element step has no conversions and runs at the type's full vector
    width; the blocks are then combined in double (_combine_blocks). float32 sums of 32
    terms are good to about 1e-6 relative, where one float32 sum over all rows would not be.
    """
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r, j
    cdef double mean, rstd, c1, c2
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    cdef floating* pw
    cdef floating* pb
    for blk in prange(nblocks, num_threads=threads_for(rows * D), schedule="static"):
        pw = partial_w + blk * D
        pb = partial_b + blk * D
        if affine:
            for j in range(D):
                pw[j] = 0
                pb[j] = 0
        for r in range(blk * ROW_BLOCK, min(rows, (blk + 1) * ROW_BLOCK)):
            gr = g + r * D
            xr = x + r * D
            outr = gx + r * D
            mean = mean_in[r]
            rstd = rstd_in[r]
            _row_dots(gr, xr, w, D, mean, rstd, &c1, &c2)
            # Assigned in the loop body, so each thread has its own c1 and c2 (written
            # only through a pointer, prange would share them between threads).
            c1 = c1 / D
            c2 = c2 / D
            # The row sums are in double; the per-element step in the input's own type:
            # mean and rstd are already stored in it, and float32 runs twice as wide.
            # Without an affine map w is ones (g * 1 is exact) and there are no partial sums.
            if floating is float:
                nnl_ln_backward_row_f(gr, xr, w, outr, pw if affine else NULL,
                                      pb if affine else NULL, D, <float>mean, <float>rstd,
                                      <float>c1, <float>c2)
            else:
                nnl_ln_backward_row_d(gr, xr, w, outr, pw if affine else NULL,
                                      pb if affine else NULL, D, mean, rstd, c1, c2)


cdef void _combine_blocks(partial_t* partial, Py_ssize_t nblocks, Py_ssize_t D,
                          floating* out) noexcept nogil:
    """out[j] = sum of partial[blk, j] over blocks, in block order, accumulated in double."""
    cdef Py_ssize_t j, blk
    cdef double s
    for j in prange(D, num_threads=threads_for(nblocks * D), schedule="static"):
        s = 0
        for blk in range(nblocks):
            s = s + partial[blk * D + j]
        out[j] = <floating>s


def layer_norm_backward(grad, x, weight, mean, rstd):
    """Gradients of layer_norm_forward: (grad_x, grad_weight, grad_bias); None for absent affine.

    ``grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with ``g = grad * weight``;
    grad_weight and grad_bias sum over rows in fixed blocks of rows.
    """
    kernel = "layer_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight), ("mean", mean),
                                 ("rstd", rstd)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "weight", weight, (x.shape[1],))
    _shape(kernel, "mean", mean, (x.shape[0],))
    _shape(kernel, "rstd", rstd, (x.shape[0],))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef cnp.ndarray mc = np.ascontiguousarray(mean), rc = np.ascontiguousarray(rstd)
    cdef bint affine = weight is not None
    # Without an affine map the weight is ones: g * 1.0 is exact, and one loop serves both.
    weight = _contig(weight) if affine else np.ones(x.shape[1], dtype=dtype)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef cnp.ndarray gx = np.empty((rows, D), dtype=dtype)
    cdef cnp.ndarray pw = np.empty(nblocks * D if affine else 0, dtype=dtype)
    cdef cnp.ndarray pb = np.empty(nblocks * D if affine else 0, dtype=dtype)
    cdef cnp.ndarray gw = np.empty(D, dtype=dtype), gb = np.empty(D, dtype=dtype)
    # the one float/double choice of this pass: _layer_norm_backward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _layer_norm_backward(<float*>data(gx), gc, xc, mc, rc, weight, affine, pw, pb, gw, gb)
    else:
        _layer_norm_backward(<double*>data(gx), gc, xc, mc, rc, weight, affine, pw, pb, gw, gb)
    if not affine:
        return gx, None, None
    return gx, gw, gb


cdef void _layer_norm_backward(floating* gx, cnp.ndarray grad, cnp.ndarray x, object mean,
                               object rstd, object weight, bint affine, object partial_w,
                               object partial_b, object grad_weight, object grad_bias) noexcept:
    cdef floating* gp = data_as(gx, grad)
    cdef floating* xp = data_as(gx, x)
    cdef floating* mp = data_as(gx, mean)
    cdef floating* rp = data_as(gx, rstd)
    cdef floating* wp = data_as(gx, weight)
    cdef floating* pw = data_as(gx, partial_w)
    cdef floating* pb = data_as(gx, partial_b)
    cdef floating* gw = data_as(gx, grad_weight)
    cdef floating* gb = data_as(gx, grad_bias)
    cdef Py_ssize_t rows = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    with nogil:
        _ln_backward(gp, xp, gx, mp, rp, wp, affine, rows, D, pw, pb)
        if affine:
            _combine_blocks(pw, nblocks, D, gw)
            _combine_blocks(pb, nblocks, D, gb)


# ------------------------------------------------------------- group norm -----

cdef void _gn_forward(floating* x, floating* y, floating* mean_out, floating* rstd_out,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, Py_ssize_t G,
                      floating* w, floating* b, double eps) noexcept nogil:
    cdef Py_ssize_t cpg = C // G, D = cpg * L
    cdef Py_ssize_t r, ci, c, l
    cdef double mean, rstd, a, shift
    cdef floating* xr
    cdef floating* yr
    for r in prange(N * G, num_threads=threads_for(N * C * L), schedule="static"):
        xr = x + r * D
        yr = y + r * D
        mean = _sum(xr, D) / D
        rstd = 1.0 / sqrt(_sum_sq_dev(xr, D, mean) / D + eps)
        mean_out[r] = <floating>mean
        rstd_out[r] = <floating>rstd
        for ci in range(cpg):
            c = (r % G) * cpg + ci
            a = 1.0 if w == NULL else <double>w[c]
            shift = 0.0 if b == NULL else <double>b[c]
            for l in range(L):
                if b == NULL:
                    yr[ci * L + l] = <floating>(((xr[ci * L + l] - mean) * rstd) * a)
                else:
                    yr[ci * L + l] = <floating>(((xr[ci * L + l] - mean) * rstd) * a + shift)


def group_norm_forward(x, num_groups, weight, bias, eps):
    """Normalise ``x`` (N, C, L) over each group of C/num_groups channels and L; (y, mean, rstd).

    mean and rstd have shape (N, num_groups); the affine map is per channel.
    """
    kernel = "group_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight), ("bias", bias)])
    N, C, L, G = _reference._group_norm_checks(kernel, x, num_groups, weight, bias)
    cdef Py_ssize_t groups = G
    cdef double eps_ = _eps(kernel, eps)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight, bias = _contig(weight), _contig(bias)
    cdef cnp.ndarray y = np.empty((N, C, L), dtype=dtype)
    cdef cnp.ndarray mean = np.empty((N, G), dtype=dtype), rstd = np.empty((N, G), dtype=dtype)
    # the one float/double choice of this pass: _group_norm_forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _group_norm_forward(<float*>data(y), xc, mean, rstd, weight, bias, groups, eps_)
    else:
        _group_norm_forward(<double*>data(y), xc, mean, rstd, weight, bias, groups, eps_)
    return y, mean, rstd


cdef void _group_norm_forward(floating* y, cnp.ndarray x, object mean, object rstd, object weight,
                              object bias, Py_ssize_t G, double eps) noexcept:
    cdef floating* xp = data_as(y, x)
    cdef floating* mp = data_as(y, mean)
    cdef floating* rp = data_as(y, rstd)
    cdef floating* wp = data_as(y, weight)
    cdef floating* bp = data_as(y, bias)
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    with nogil:
        _gn_forward(xp, y, mp, rp, N, C, L, G, wp, bp, eps)


cdef void _gn_backward(floating* g, floating* x, floating* gx, floating* mean_in,
                       floating* rstd_in, floating* w, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t L, Py_ssize_t G, double* partial_w,
                       double* partial_b) noexcept nogil:
    """grad_x per (sample, group) row; per-(sample, channel) sums for grad_weight/grad_bias."""
    cdef Py_ssize_t cpg = C // G, D = cpg * L
    cdef Py_ssize_t r, ci, c, l, n, j
    cdef double mean, rstd, a, xhat, c1, c2, s1, s2, gsum, gxsum
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    for r in prange(N * G, num_threads=threads_for(N * C * L), schedule="static"):
        n = r // G
        gr = g + r * D
        xr = x + r * D
        outr = gx + r * D
        mean = mean_in[r]
        rstd = rstd_in[r]
        c1 = 0
        c2 = 0
        # assigned here so that prange makes them thread-private (they are written by pointer)
        gsum = 0
        gxsum = 0
        for ci in range(cpg):
            c = (r % G) * cpg + ci
            a = 1.0 if w == NULL else <double>w[c]
            if rstd - rstd == 0 and a - a == 0:
                _sum_g_and_g_dev(gr + ci * L, xr + ci * L, L, mean, &gsum, &gxsum)
                # sums over the channel, then weighted: sum(g*w*xhat) = w * rstd * sum(g*(x-mean))
                gxsum = gxsum * rstd
                c1 = c1 + a * gxsum
                c2 = c2 + a * gsum
            else:
                # An infinite rstd or weight: xhat or g * w is +-inf element by element (NaN
                # where x is the mean or g is 0), and the sums meet those infinities, as the
                # twin's do; taken out of the sums, rstd or w would give inf * (a finite sum).
                gsum = 0
                gxsum = 0
                for l in range(L):
                    j = ci * L + l
                    xhat = (xr[j] - mean) * rstd
                    gsum = gsum + gr[j]
                    gxsum = gxsum + gr[j] * xhat
                    c1 = c1 + (gr[j] * a) * xhat
                    c2 = c2 + gr[j] * a
            partial_w[n * C + c] = gxsum
            partial_b[n * C + c] = gsum
        c1 = c1 / D
        c2 = c2 / D
        for ci in range(cpg):
            c = (r % G) * cpg + ci
            a = 1.0 if w == NULL else <double>w[c]
            for l in range(L):
                j = ci * L + l
                xhat = (xr[j] - mean) * rstd
                outr[j] = <floating>(rstd * (gr[j] * a - c2 - xhat * c1))


def group_norm_backward(grad, x, num_groups, weight, mean, rstd):
    """Gradients of group_norm_forward: (grad_x, grad_weight, grad_bias); None for absent affine.

    Per (sample, group): ``grad_x = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with
    ``g = grad * weight[channel]``; grad_weight/grad_bias sum per sample, then over
    samples in order.
    """
    kernel = "group_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight), ("mean", mean),
                                 ("rstd", rstd)])
    N, C, L, G = _reference._group_norm_checks(kernel, x, num_groups, weight, None)
    cdef Py_ssize_t groups = G
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "mean", mean, (N, G))
    _shape(kernel, "rstd", rstd, (N, G))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef cnp.ndarray mc = np.ascontiguousarray(mean), rc = np.ascontiguousarray(rstd)
    weight = _contig(weight)
    cdef cnp.ndarray gx = np.empty((N, C, L), dtype=dtype)
    cdef cnp.ndarray pw = np.empty(N * C), pb = np.empty(N * C)
    cdef cnp.ndarray gw = np.empty(C, dtype=dtype), gb = np.empty(C, dtype=dtype)
    # the one float/double choice of this pass: _group_norm_backward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _group_norm_backward(<float*>data(gx), gc, xc, mc, rc, weight, groups, pw, pb, gw, gb)
    else:
        _group_norm_backward(<double*>data(gx), gc, xc, mc, rc, weight, groups, pw, pb, gw, gb)
    if weight is None:
        return gx, None, None
    return gx, gw, gb


cdef void _group_norm_backward(floating* gx, cnp.ndarray grad, cnp.ndarray x, object mean,
                               object rstd, object weight, Py_ssize_t G, object partial_w,
                               object partial_b, object grad_weight, object grad_bias) noexcept:
    cdef floating* gp = data_as(gx, grad)
    cdef floating* xp = data_as(gx, x)
    cdef floating* mp = data_as(gx, mean)
    cdef floating* rp = data_as(gx, rstd)
    cdef floating* wp = data_as(gx, weight)
    cdef floating* gw = data_as(gx, grad_weight)
    cdef floating* gb = data_as(gx, grad_bias)
    cdef double* pw = _ddata(partial_w)
    cdef double* pb = _ddata(partial_b)
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    with nogil:
        _gn_backward(gp, xp, gx, mp, rp, wp, N, C, L, G, pw, pb)
        _combine_blocks(pw, N, C, gw)
        _combine_blocks(pb, N, C, gb)


# --------------------------------------------------------------- RMS norm -----

cdef void _rms_forward(floating* x, floating* y, floating* rrms_out, Py_ssize_t rows,
                       Py_ssize_t D, floating* w, double eps) noexcept nogil:
    cdef Py_ssize_t r, j
    cdef double rrms
    cdef floating* xr
    cdef floating* yr
    for r in prange(rows, num_threads=threads_for(rows * D), schedule="static"):
        xr = x + r * D
        yr = y + r * D
        rrms = 1.0 / sqrt(_sum_sq_dev(xr, D, 0.0) / D + eps)
        rrms_out[r] = <floating>rrms
        for j in range(D):
            if w == NULL:
                yr[j] = <floating>(xr[j] * rrms)
            else:
                yr[j] = <floating>((xr[j] * rrms) * w[j])


def rms_norm_forward(x, weight, eps):
    """Scale each row of ``x`` (rows, D) by ``rrms = 1/sqrt(mean(x**2) + eps)``; returns (y, rrms)."""
    kernel = "rms_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{kernel}: the normalized size D must be positive, got x of shape {x.shape}")
    _shape(kernel, "weight", weight, (x.shape[1],))
    cdef double eps_ = _eps(kernel, eps)
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight = _contig(weight)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef cnp.ndarray y = np.empty((rows, D), dtype=dtype), rrms = np.empty(rows, dtype=dtype)
    # the one float/double choice of this pass: _rms_norm_forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _rms_norm_forward(<float*>data(y), xc, rrms, weight, eps_)
    else:
        _rms_norm_forward(<double*>data(y), xc, rrms, weight, eps_)
    return y, rrms


cdef void _rms_norm_forward(floating* y, cnp.ndarray x, object rrms, object weight,
                            double eps) noexcept:
    cdef floating* xp = data_as(y, x)
    cdef floating* rp = data_as(y, rrms)
    cdef floating* wp = data_as(y, weight)
    cdef Py_ssize_t rows = x.shape[0], D = x.shape[1]
    with nogil:
        _rms_forward(xp, y, rp, rows, D, wp, eps)


cdef void _rms_backward(floating* g, floating* x, floating* gx, floating* rrms_in, floating* w,
                        Py_ssize_t rows, Py_ssize_t D, double* partial_w) noexcept nogil:
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r, j
    cdef double rrms, rrms3, c, c_odd, gw
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    cdef double* pw
    for blk in prange(nblocks, num_threads=threads_for(rows * D), schedule="static"):
        pw = partial_w + blk * D
        if w != NULL:
            for j in range(D):
                pw[j] = 0
        for r in range(blk * ROW_BLOCK, min(rows, (blk + 1) * ROW_BLOCK)):
            gr = g + r * D
            xr = x + r * D
            outr = gx + r * D
            rrms = rrms_in[r]
            rrms3 = rrms * rrms * rrms
            c = 0
            c_odd = 0
            j = 0
            if w == NULL:
                while j + 2 <= D:
                    c = c + <double>gr[j] * xr[j]
                    c_odd = c_odd + <double>gr[j + 1] * xr[j + 1]
                    j = j + 2
            else:
                while j + 2 <= D:
                    c = c + (gr[j] * <double>w[j]) * xr[j]
                    c_odd = c_odd + (gr[j + 1] * <double>w[j + 1]) * xr[j + 1]
                    j = j + 2
            if j < D:
                gw = gr[j] if w == NULL else gr[j] * <double>w[j]
                c = c + gw * xr[j]
            c = (c + c_odd) / D
            for j in range(D):
                if w == NULL:
                    outr[j] = <floating>(rrms * gr[j] - xr[j] * rrms3 * c)
                else:
                    gw = gr[j] * <double>w[j]
                    outr[j] = <floating>(rrms * gw - xr[j] * rrms3 * c)
                    pw[j] = pw[j] + <double>gr[j] * xr[j] * rrms


def rms_norm_backward(grad, x, weight, rrms):
    """Gradients of rms_norm_forward: (grad_x, grad_weight).

    With ``g = grad * weight``: ``grad_x = rrms * g - x * rrms**3 * mean(g * x)``.
    """
    kernel = "rms_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight), ("rrms", rrms)])
    _ndim(kernel, "x", x, 2, "(rows, D)")
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "weight", weight, (x.shape[1],))
    _shape(kernel, "rrms", rrms, (x.shape[0],))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef cnp.ndarray rc = np.ascontiguousarray(rrms)
    weight = _contig(weight)
    cdef Py_ssize_t rows = xc.shape[0], D = xc.shape[1]
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef bint affine = weight is not None
    cdef cnp.ndarray gx = np.empty((rows, D), dtype=dtype)
    cdef cnp.ndarray pw = np.empty(nblocks * D if affine else 0)
    cdef cnp.ndarray gw = np.empty(D, dtype=dtype)
    # the one float/double choice of this pass: _rms_norm_backward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _rms_norm_backward(<float*>data(gx), gc, xc, rc, weight, pw, gw)
    else:
        _rms_norm_backward(<double*>data(gx), gc, xc, rc, weight, pw, gw)
    if not affine:
        return gx, None
    return gx, gw


cdef void _rms_norm_backward(floating* gx, cnp.ndarray grad, cnp.ndarray x, object rrms,
                             object weight, object partial_w, object grad_weight) noexcept:
    cdef floating* gp = data_as(gx, grad)
    cdef floating* xp = data_as(gx, x)
    cdef floating* rp = data_as(gx, rrms)
    cdef floating* wp = data_as(gx, weight)
    cdef floating* gw = data_as(gx, grad_weight)
    cdef double* pw = _ddata(partial_w)
    cdef Py_ssize_t rows = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t nblocks = (rows + ROW_BLOCK - 1) // ROW_BLOCK
    with nogil:
        _rms_backward(gp, xp, gx, rp, wp, rows, D, pw)
        if wp != NULL:
            _combine_blocks(pw, nblocks, D, gw)
