# Batch normalisation (included by _norm.pyx): statistics per channel over N and L.
#
# Training: for each channel c, mean and biased variance over all N*L values,
#     y[n, c, l] = (x[n, c, l] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]
# folded into one multiply-add per element (scale, shift); the running statistics
# move towards the batch's (with the unbiased variance). Eval: the running ones.
# The sums run in fixed blocks of STAT_BLOCK elements combined in block order, so
# they do not depend on the thread count. With activation="relu" (a BatchNorm fused with the
# ReLU after it) the forward clamps y at 0 as it writes it, and the backward masks the incoming
# gradient where y was <= 0 as it reads it, y's sign recomputed from x and the forward's
# per-channel numbers ("relu_terms"). Twin: reference/_norm.py.

# ------------------------------------------------------------- batch norm -----

cdef void _bn_stats(floating* x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, double eps,
                    double* mean, double* invstd, double* var_out, double* partial) noexcept nogil:
    """Per-channel mean, 1/sqrt(biased var + eps) and biased var, in fixed blocks of samples.

    Each block (a few samples of one channel, small enough to stay in cache) gets its
    own mean and sum of squared deviations, two-pass; the blocks are then merged in
    order with Chan et al.'s pairwise update, so x is read from memory once.
    """
    cdef Py_ssize_t rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef Py_ssize_t nblocks = (N + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t item, c, blk, n, n_begin, n_end
    cdef double s, block_mean, n_acc, n_blk, total, delta, mean_acc, m2
    for item in prange(C * nblocks, num_threads=threads_for(N * C * L), schedule="static"):
        c = item // nblocks
        blk = item % nblocks
        n_begin = blk * rows_per_block
        n_end = min(N, n_begin + rows_per_block)
        s = 0
        for n in range(n_begin, n_end):
            s = s + _sum(x + (n * C + c) * L, L)
        block_mean = s / ((n_end - n_begin) * L)
        s = 0
        for n in range(n_begin, n_end):
            s = s + _sum_sq_dev(x + (n * C + c) * L, L, block_mean)
        partial[2 * item] = block_mean
        partial[2 * item + 1] = s
    for c in range(C):
        n_acc = 0
        mean_acc = 0
        m2 = 0
        for blk in range(nblocks):
            n_blk = <double>((min(N, (blk + 1) * rows_per_block) - blk * rows_per_block) * L)
            total = n_acc + n_blk
            delta = partial[2 * (c * nblocks + blk)] - mean_acc
            mean_acc = mean_acc + delta * (n_blk / total)
            m2 = m2 + partial[2 * (c * nblocks + blk) + 1] + delta * delta * (n_acc * n_blk / total)
            n_acc = total
        if mean_acc != mean_acc and nblocks > 1:
            # An infinite block mean makes the next update's delta infinite and the merged
            # mean NaN (inf - inf); the plain count-weighted mean of the blocks is +-inf
            # where every infinity has one sign (NaN only with both signs or a NaN).
            mean_acc = 0
            for blk in range(nblocks):
                n_blk = <double>((min(N, (blk + 1) * rows_per_block) - blk * rows_per_block) * L)
                mean_acc = mean_acc + partial[2 * (c * nblocks + blk)] * n_blk
            mean_acc = mean_acc / n_acc
        mean[c] = mean_acc
        var_out[c] = m2 / n_acc
        invstd[c] = 1.0 / sqrt(var_out[c] + eps)


cdef void _scale_shift(floating* x, floating* y, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                       floating* terms, bint relu) noexcept nogil:
    """y = (x - mean[c]) * scale[c] + shift[c] over (N, C, L), clamped at 0 with ``relu``, in the
    input's type, from ``terms`` (_bn_channel_terms). x - mean is ((x - hi) - lo), the mean's
    two parts (_norm_steps.h): it keeps its precision without converting every element."""
    cdef Py_ssize_t row, c
    if L == 0:   # no values, however many (sample, channel) rows of none: no loop over them
        return
    for row in prange(N * C, num_threads=threads_for(N * C * L), schedule="static"):
        c = row % C
        if floating is float:
            nnl_bn_forward_row_f(x + row * L, y + row * L, L, terms[c], terms[C + c], terms[2 * C + c],
                                 terms[3 * C + c], relu)
        else:
            nnl_bn_forward_row_d(x + row * L, y + row * L, L, terms[c], terms[C + c], terms[2 * C + c],
                                 terms[3 * C + c], relu)


cdef void _bn_channel_terms(floating* w, floating* b, floating* running_mean,
                            floating* running_var, bint training, double momentum, double count,
                            double eps, double* mean, double* invstd, double* var, floating* terms,
                            floating* save_mean, floating* save_invstd, Py_ssize_t C) noexcept nogil:
    """Per channel: running-stat update (PyTorch's order, in double), the saved statistics in
    the input's dtype, and ``terms`` (4 x C, the input's dtype) of the map
    ``y = ((x - hi) - lo) * scale + shift``: the mean's high and low parts, scale and shift."""
    cdef Py_ssize_t c
    cdef double unbiased
    for c in range(C):
        if training:
            if running_mean != NULL:
                unbiased = var[c] * count / (count - 1)
                running_mean[c] = <floating>(momentum * mean[c] + (1.0 - momentum) * running_mean[c])
                running_var[c] = <floating>(momentum * unbiased + (1.0 - momentum) * running_var[c])
        else:
            mean[c] = running_mean[c]
            invstd[c] = 1.0 / sqrt(running_var[c] + eps)
        save_mean[c] = <floating>mean[c]
        save_invstd[c] = <floating>invstd[c]
        terms[c] = save_mean[c]
        if floating is float:
            terms[C + c] = nnl_low_part_f(mean[c], terms[c])
        else:
            terms[C + c] = nnl_low_part_d(mean[c], terms[c])
        terms[2 * C + c] = <floating>(invstd[c] if w == NULL else invstd[c] * w[c])
        terms[3 * C + c] = 0 if b == NULL else b[c]


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                       activation=None):
    """Normalise each channel of ``x`` (N, C, L) over N and L; returns (y, save_mean, save_invstd).

    Training: batch mean and ``1/sqrt(biased var + eps)``, and the running stats
    (when given) move towards them in place, with the *unbiased* variance.
    Eval: the running stats normalise instead.

    ``activation="relu"`` clamps y at 0 in the same pass (a fused BatchNorm + ReLU,
    the same bytes as ``relu_forward`` of the plain output) and returns a fourth array,
    ``relu_terms`` (4, C) in x's dtype: each channel's mean in two parts, scale and
    shift, the numbers y was computed from. ``batch_norm_backward`` recomputes from them
    and x where y was positive, instead of reading y.
    """
    kernel = "batch_norm_forward"
    cdef int t = _dtype(kernel, [("x", x), ("weight", weight), ("bias", bias),
                                 ("running_mean", running_mean), ("running_var", running_var)])
    cdef bint train = _flag(kernel, training, "training")
    cdef bint relu = _checks_py.fused_relu(kernel, activation)
    cdef Py_ssize_t count = _batch_norm_checks(kernel, x, weight, train, [
        ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)])
    # a float in [0, 1], as PyTorch's functional batch_norm takes it (its module's None, a
    # cumulative average, is the caller's 1 / batches seen)
    cdef double momentum_ = _quantity(kernel, momentum, "momentum", 0, 1)
    cdef double eps_ = _eps(kernel, eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{kernel}: give both running_mean and running_var, or neither")
    if running_mean is not None:
        _in_place(kernel, "running_mean", running_mean)
        _in_place(kernel, "running_var", running_var)
        # the running stats are written while x, weight and bias are read
        separate(kernel, [("running_mean", running_mean), ("running_var", running_var),
                          ("x", x), ("weight", weight), ("bias", bias)], 2)
    if not train and running_mean is None:
        raise ValueError(f"{kernel}: eval mode (training=False) needs running_mean and running_var")
    dtype = x.dtype
    cdef double m = momentum_ if train else 0.0
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    weight, bias = _contig(weight), _contig(bias)
    cdef Py_ssize_t N = xc.shape[0], C = xc.shape[1], L = xc.shape[2]
    cdef Py_ssize_t rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef Py_ssize_t nblocks = (N + rows_per_block - 1) // rows_per_block if train else 0
    # one scratch buffer: mean, invstd and var, C each, then the block partial sums
    cdef cnp.ndarray scratch = np.empty(3 * C + 2 * C * nblocks)
    cdef cnp.ndarray terms = np.empty((4, C), dtype=dtype)
    cdef cnp.ndarray y = np.empty((N, C, L), dtype=dtype)
    save_mean, save_invstd = np.empty(C, dtype=dtype), np.empty(C, dtype=dtype)
    # the one float/double choice of this pass: _batch_norm_forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _batch_norm_forward(<float*>data(y), xc, weight, bias, running_mean, running_var, save_mean,
                            save_invstd, terms, scratch, train, m, count, eps_, relu)
    else:
        _batch_norm_forward(<double*>data(y), xc, weight, bias, running_mean, running_var, save_mean,
                            save_invstd, terms, scratch, train, m, count, eps_, relu)
    if relu:
        return y, save_mean, save_invstd, terms
    return y, save_mean, save_invstd


cdef void _batch_norm_forward(floating* y, cnp.ndarray x, object weight, object bias,
                              object running_mean, object running_var, object save_mean,
                              object save_invstd, object terms, object scratch, bint train,
                              double momentum, double count, double eps, bint relu) noexcept:
    """batch_norm_forward after the checks: statistics, running-stat update, y, into y.

    ``scratch`` holds mean, invstd and var, C each, then the block partial sums.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef floating* xp = data_as(y, x)
    cdef floating* wp = data_as(y, weight)
    cdef floating* bp = data_as(y, bias)
    cdef floating* rmp = data_as(y, running_mean)
    cdef floating* rvp = data_as(y, running_var)
    cdef floating* smp = data_as(y, save_mean)
    cdef floating* sip = data_as(y, save_invstd)
    cdef floating* tp = data_as(y, terms)
    cdef double* d = _ddata(scratch)
    with nogil:
        if train:
            _bn_stats(xp, N, C, L, eps, d, d + C, d + 2 * C, d + 3 * C)
        _bn_channel_terms(wp, bp, rmp, rvp, train, momentum, count, eps, d, d + C, d + 2 * C,
                          tp, smp, sip, C)
        _scale_shift(xp, y, N, C, L, tp, relu)


cdef inline floating* _relu_masked(floating* g, floating* x, floating* scratch, Py_ssize_t L,
                                   Py_ssize_t c, Py_ssize_t C, floating* terms) noexcept nogil:
    """Row g as batch norm sees it: itself, or (with a fused ReLU's ``terms``) g masked where
    the forward's output was <= 0, written into this thread's ``scratch`` row."""
    if terms == NULL:
        return g
    if floating is float:
        nnl_bn_relu_mask_row_f(g, x, scratch, L, terms[c], terms[C + c], terms[2 * C + c],
                               terms[3 * C + c])
    else:
        nnl_bn_relu_mask_row_d(g, x, scratch, L, terms[c], terms[C + c], terms[2 * C + c],
                               terms[3 * C + c])
    return scratch


cdef void _bn_backward(floating* g, floating* x, floating* gx, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t L, double* mean, double* invstd, double* w, bint training,
                       double* sum_g, double* dotp, double* partial, floating* terms,
                       floating* scratch, int nt) noexcept nogil:
    # With a fused ReLU (terms not NULL), each row of g is masked into the thread's own row of
    # scratch (L elements, in cache; nt rows) just before each of the two passes reads it; the
    # passes then do what they do for a plain batch norm, on the values relu_backward would give.
    cdef Py_ssize_t rows_per_block = max(1, STAT_BLOCK // max(L, 1))
    cdef Py_ssize_t nblocks = (N + rows_per_block - 1) // rows_per_block
    cdef Py_ssize_t item, c, blk, n, n_end, row, l
    cdef double a, b, sg, sd, k, grad_mean, scale
    cdef double count = <double>(N * L)
    cdef floating* gr
    cdef floating* xr
    cdef floating* outr
    for item in prange(C * nblocks, num_threads=nt, schedule="static"):
        c = item // nblocks
        blk = item % nblocks
        a = 0
        b = 0
        n_end = min(N, (blk + 1) * rows_per_block)
        # assigned here so that prange makes them thread-private (they are written by pointer)
        sg = 0
        sd = 0
        for n in range(blk * rows_per_block, n_end):
            xr = x + (n * C + c) * L
            gr = _relu_masked(g + (n * C + c) * L, xr, scratch + threadid() * L, L, c, C, terms)
            _sum_g_and_g_dev(gr, xr, L, mean[c], &sg, &sd)
            a = a + sg
            b = b + sd
        partial[2 * item] = a
        partial[2 * item + 1] = b
    for c in range(C):
        a = 0
        b = 0
        for blk in range(nblocks):
            a = a + partial[2 * (c * nblocks + blk)]
            b = b + partial[2 * (c * nblocks + blk) + 1]
        sum_g[c] = a
        dotp[c] = b
    for row in prange(N * C, num_threads=nt, schedule="static"):
        c = row % C
        xr = x + row * L
        gr = _relu_masked(g + row * L, xr, scratch + threadid() * L, L, c, C, terms)
        outr = gx + row * L
        scale = invstd[c] * w[c]
        if training:
            k = dotp[c] * invstd[c] * invstd[c] / count
            grad_mean = sum_g[c] / count
            if floating is float:
                nnl_bn_backward_row_f(gr, xr, outr, L, mean[c], <float>k, <float>grad_mean,
                                      <float>scale)
            else:
                nnl_bn_backward_row_d(gr, xr, outr, L, mean[c], k, grad_mean, scale)
        else:
            for l in range(L):
                outr[l] = gr[l] * <floating>scale


def batch_norm_backward(grad, x, weight, save_mean, save_invstd, training, relu_terms=None):
    """Gradients of batch_norm_forward: (grad_x, grad_weight, grad_bias).

    With ``xhat = (x - mean) * invstd`` and ``g = grad * weight``, training gives
    ``grad_x = invstd * (g - mean(g) - xhat * mean(g * xhat))`` (the batch
    statistics depend on x); eval gives ``grad_x = g * invstd``.

    ``relu_terms``, the fourth array of ``batch_norm_forward(..., activation="relu")``,
    makes this the backward of the fused BatchNorm + ReLU: ``grad`` (the gradient of the
    clamped output) is first zeroed where that output was <= 0, as ``relu_backward``
    does, the output's sign recomputed from x and the terms.
    """
    kernel = "batch_norm_backward"
    cdef int t = _dtype(kernel, [("grad", grad), ("x", x), ("weight", weight),
                                 ("save_mean", save_mean), ("save_invstd", save_invstd),
                                 ("relu_terms", relu_terms)])
    cdef bint train = _flag(kernel, training, "training")
    _batch_norm_checks(kernel, x, weight, train, [
        ("save_mean", save_mean), ("save_invstd", save_invstd)])
    if save_mean is None or save_invstd is None:
        raise ValueError(f"{kernel}: save_mean and save_invstd are required")
    _shape(kernel, "grad", grad, x.shape)
    _shape(kernel, "relu_terms", relu_terms, (4, x.shape[1]))
    dtype = x.dtype
    cdef cnp.ndarray xc = np.ascontiguousarray(x), gc = np.ascontiguousarray(grad)
    cdef Py_ssize_t N = xc.shape[0], C = xc.shape[1], L = xc.shape[2]
    cdef cnp.ndarray mean = save_mean.astype(np.float64), invstd = save_invstd.astype(np.float64)
    cdef cnp.ndarray w = np.ones(C) if weight is None else weight.astype(np.float64)
    cdef cnp.ndarray sum_g = np.zeros(C), dotp = np.zeros(C)
    cdef cnp.ndarray gx = np.empty((N, C, L), dtype=dtype)
    cdef cnp.ndarray partial
    cdef int nt
    if N > 0 and L > 0:   # else no values (eval only): the sums stay 0, with no loop over rows of none
        rows_per_block = max(1, STAT_BLOCK // L)
        partial = np.empty(2 * C * ((N + rows_per_block - 1) // rows_per_block))
        terms = _contig(relu_terms)
        # The thread count is read once, here, and both the masked gradient's scratch (one row of L
        # per thread: threadid() < nt) and the parallel loops use it.
        nt = threads_for(N * C * L)
        scratch = None if relu_terms is None else np.empty((nt, L), dtype=dtype)
        # the one float/double choice of this pass: _batch_norm_backward is written once, on `floating`
        if t == cnp.NPY_FLOAT:
            _batch_norm_backward(<float*>data(gx), gc, xc, mean, invstd, w, sum_g, dotp, partial, train,
                                 terms, scratch, nt)
        else:
            _batch_norm_backward(<double*>data(gx), gc, xc, mean, invstd, w, sum_g, dotp, partial, train,
                                 terms, scratch, nt)
    if weight is None:
        return gx, None, None
    return gx, (dotp * invstd).astype(dtype), sum_g.astype(dtype)


cdef void _batch_norm_backward(floating* gx, cnp.ndarray grad, cnp.ndarray x, object mean_,
                               object invstd_, object w_, object sum_g_, object dotp_,
                               object partial_, bint training, object terms_,
                               object scratch_, int nt) noexcept:
    """batch_norm_backward after the checks: grad_x into gx, the channel sums (float64,
    like mean, invstd and w) into sum_g and dotp. ``terms_`` and ``scratch_`` are None
    (plain batch norm) or a fused ReLU's terms and a row for each of the nt threads."""
    cdef floating* gp = data_as(gx, grad)
    cdef floating* xp = data_as(gx, x)
    cdef floating* terms = data_as(gx, terms_)
    cdef floating* scratch = data_as(gx, scratch_)
    cdef double* mean = _ddata(mean_)
    cdef double* invstd = _ddata(invstd_)
    cdef double* w = _ddata(w_)
    cdef double* sum_g = _ddata(sum_g_)
    cdef double* dotp = _ddata(dotp_)
    cdef double* partial = _ddata(partial_)
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    with nogil:
        _bn_backward(gp, xp, gx, N, C, L, mean, invstd, w, training, sum_g, dotp, partial, terms,
                     scratch, nt)
