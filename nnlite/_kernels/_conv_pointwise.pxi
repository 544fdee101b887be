# Convolution with a 1x1 kernel, stride 1 and no padding (included by _conv.pyx).
#
# The input (C, H*W) of a sample already is the column matrix: one GEMM per
# sample and group, no copy. Plain loop it equals:
#     y[n, o, p] = sum over c of w[o, c] * x[n, c, p]
# Twin, step for step: reference/_conv_pointwise.py.

cdef void _forward_pointwise(const floating* x, const floating* w, const floating* bias,
                             floating* y, Geometry* g, bint relu) noexcept nogil:
    """1x1, stride 1, no padding: y[n, group] = w[group] @ x[n, group] straight from the input, then
    the bias added and (with ``relu``) the result clamped at 0, in one pass over y."""
    cdef Py_ssize_t L = g.H * g.W, Og = g.O // g.groups, Cg = g.C // g.groups
    cdef Py_ssize_t n, grp
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for n in range(g.N):
        for grp in range(g.groups):
            _gemm(False, False, Og, L, Cg, <floating*>w + grp * Og * Cg, Cg,
                  <floating*>x + (n * g.C + grp * Cg) * L, L, 0, y + (n * g.O + grp * Og) * L, L)
    _blas_restore_threads(saved)
    if bias != NULL or relu:
        _add_bias(y, bias, g.N, g.O, L, relu)


cdef void _backward_input_pointwise(const floating* grad, const floating* w, floating* gx,
                                    Geometry* g) noexcept nogil:
    cdef Py_ssize_t L = g.H * g.W, Og = g.O // g.groups, Cg = g.C // g.groups
    cdef Py_ssize_t n, grp
    cdef int saved[4]
    _blas_pin_one_thread(saved)
    for n in range(g.N):
        for grp in range(g.groups):
            _gemm(True, False, Cg, L, Og, <floating*>w + grp * Og * Cg, Cg,
                  <floating*>grad + (n * g.O + grp * Og) * L, L, 0, gx + (n * g.C + grp * Cg) * L, L)
    _blas_restore_threads(saved)


cdef void _backward_weight_pointwise(const floating* grad, const floating* x, floating* gw,
                                     Geometry* g) noexcept nogil:
    cdef Py_ssize_t L = g.H * g.W, Og = g.O // g.groups, Cg = g.C // g.groups
    cdef Py_ssize_t n, grp
    cdef int saved[4]
    if g.N == 0:
        memset(gw, 0, g.O * Cg * sizeof(floating))
    _blas_pin_one_thread(saved)
    for n in range(g.N):
        for grp in range(g.groups):
            _gemm(False, True, Og, Cg, L, <floating*>grad + (n * g.O + grp * Og) * L, L,
                  <floating*>x + (n * g.C + grp * Cg) * L, L, 0 if n == 0 else 1,
                  gw + grp * Og * Cg, Cg)
    _blas_restore_threads(saved)
