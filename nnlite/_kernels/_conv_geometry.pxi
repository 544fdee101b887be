# A convolution's geometry and its checks (included by _conv.pyx).
#
# Geometry holds every size a convolution loop needs. The output size along H is
#     OH = (H + 2*ph - dh*(kh - 1) - 1) // sh + 1     (and the same along W),
# the sizes of PyTorch's Conv2d. The fast path below accepts the common
# well-formed call in C; anything else goes to the twins' checker
# (reference/_conv.py, _conv_geometry), which raises the one shared error
# message, or normalises an unusual but valid spelling (a list for a tuple).
# Both refuse shapes whose products would not fit in 64-bit sizes.

cdef struct Geometry:
    Py_ssize_t N, C, H, W, O, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, groups


# Validation: a typed fast path for the common well-formed call; anything it does not
# accept goes to the twin's checker, which raises the one shared error message (or
# normalises an unusual but valid spelling, such as a list for a tuple).

cdef tuple _shape4(str op, str name, shape):
    if type(shape) is tuple and shape4_ok(<tuple>shape):
        return <tuple>shape
    return _checks_py.shape4(op, name, shape)


cdef bint _conv_geometry_fast(Geometry* g, tuple x_shape, tuple w_shape, stride, padding,
                              dilation, groups):
    cdef Py_ssize_t cg, extent_h, extent_w
    cdef Py_ssize_t[7] factors
    cdef int overflow = 0
    # groups: an int in [1, int64 max] read in C (anything else: checks.integer, in the twin)
    if (not shape4_ok(x_shape) or not shape4_ok(w_shape) or type(groups) is not int
            or not int_pair(stride, 1, &g.sh, &g.sw) or not int_pair(padding, 0, &g.ph, &g.pw)
            or not int_pair(dilation, 1, &g.dh, &g.dw)):
        return False
    g.groups = PyLong_AsLongLongAndOverflow(groups, &overflow)
    if overflow or g.groups < 1:
        return False
    g.N, g.C, g.H, g.W = x_shape
    g.O, cg, g.kh, g.kw = w_shape
    if g.C % g.groups or g.O % g.groups or cg * g.groups != g.C or g.kh < 1 or g.kw < 1:
        return False
    extent_h = g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1
    extent_w = g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1
    if extent_h < 0 or extent_w < 0:  # (C division truncates; the twin's floor decides)
        return False
    g.OH = extent_h // g.sh + 1
    g.OW = extent_w // g.sw + 1
    # Every size the loops compute is a sub-product of one of these two; when either
    # does not fit, the twin's checker (Python's exact integers) raises the error.
    factors[0], factors[1], factors[2], factors[3] = g.N, g.C, g.H + 2 * g.ph, g.W + 2 * g.pw
    if not product_fits(factors, 4):
        return False
    factors[0], factors[1], factors[2], factors[3] = g.N, g.O, g.OH, g.OW
    factors[4], factors[5], factors[6] = cg, g.kh, g.kw
    return product_fits(factors, 7)


cdef int _conv_geometry(Geometry* g, str op, tuple x_shape, tuple w_shape, stride, padding,
                        dilation, groups) except -1:
    if _conv_geometry_fast(g, x_shape, w_shape, stride, padding, dilation, groups):
        return 0
    stride, padding, dilation, groups, out_shape = _reference._conv_geometry(
        op, x_shape, w_shape, stride, padding, dilation, groups)
    g.N, g.C, g.H, g.W = x_shape
    g.O, _, g.kh, g.kw = w_shape
    g.OH, g.OW = out_shape[2], out_shape[3]
    g.sh, g.sw = stride
    g.ph, g.pw = padding
    g.dh, g.dw = dilation
    g.groups = groups
    return 0


cdef int _check_grad(str op, object grad, Geometry* g) except -1:
    shape = grad.shape
    if (len(shape) != 4 or shape[0] != g.N or shape[1] != g.O or shape[2] != g.OH
            or shape[3] != g.OW):
        _reference._conv_check_grad(op, grad, (g.N, g.O, g.OH, g.OW))
    return 0


cdef inline bint _is_depthwise(Geometry* g):
    # groups == C == 1 (one input channel) is a plain convolution, faster as one GEMM
    return g.groups == g.C and g.groups > 1


cdef inline bint _is_pointwise(Geometry* g):
    return g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.ph == 0 and g.pw == 0
