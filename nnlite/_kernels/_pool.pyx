"""Max and average pooling on (N, C, H, W) arrays, with PyTorch's arguments and results.

Each plane (one channel of one sample) is pooled by one thread, so the result
does not depend on the thread count. Max pooling returns, like PyTorch's
``return_indices=True``, the flat index in the (H*W) plane of each window's
maximum; its backward adds each gradient at that index. Average pooling divides
by the window's size, counting padding or not (``count_include_pad``), or by
``divisor_override``. Twins: ``reference/_pool.py``.
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t
from libc.string cimport memset

from nnlite._kernels._checks cimport (c_contiguous, flag as _flag, int_pair, integer as _integer,
                                      product_fits, same_float_type, shape4_ok)
from nnlite._kernels._dtype cimport data, data_as
from nnlite._kernels._threads cimport threads_for

import numpy as np

from nnlite._kernels import checks as _checks_py
from nnlite._kernels.reference import _pool as _reference  # the twins share argument checks

cnp.import_array()

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"]

cdef tuple _shape4(str op, str name, shape):
    if type(shape) is tuple and shape4_ok(<tuple>shape):
        return <tuple>shape
    return _checks_py.shape4(op, name, shape)


# ------------------------------------------------------------------ loops -----

cdef struct PoolGeometry:
    Py_ssize_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw
    bint count_include_pad
    Py_ssize_t divisor_override      # 0: none


cdef inline void _max_tap(floating v, Py_ssize_t at, floating* top, Py_ssize_t* best) noexcept nogil:
    # A larger value or a NaN takes the lead; written as selects, not a branch, because
    # which tap wins is data-dependent and mispredicted branches cost more than the compare.
    cdef bint take = v > top[0] or v != v
    top[0] = v if take else top[0]
    best[0] = at if take else best[0]


cdef extern from "_max_pool_rows.h":
    void nnl_max_pool_2x2_row_f(const float* r0, const float* r1, const float* end, Py_ssize_t W,
                                Py_ssize_t at, Py_ssize_t OW, float* y, int64_t* idx) noexcept nogil


cdef inline void _max_pool_2x2_row(const floating* src, const floating* end, Py_ssize_t oh,
                                   Py_ssize_t W, Py_ssize_t OW, floating* y,
                                   int64_t* indices) noexcept nogil:
    """Output row oh of a plane (src) pooled by 2 x 2 windows of stride 2, all inside."""
    cdef Py_ssize_t ow, at, best
    cdef floating top
    if floating is float:   # eight windows at a time, whatever the row's length
        nnl_max_pool_2x2_row_f(src + 2 * oh * W, src + (2 * oh + 1) * W, end, W, 2 * oh * W, OW,
                               y, indices)
    else:
        for ow in range(OW):
            at = 2 * oh * W + 2 * ow
            top = src[at]
            best = at
            _max_tap(src[at + 1], at + 1, &top, &best)
            _max_tap(src[at + W], at + W, &top, &best)
            _max_tap(src[at + W + 1], at + W + 1, &top, &best)
            y[ow] = top
            indices[ow] = best


cdef struct Taps:
    Py_ssize_t first, end     # in-input positions first, first + d, ... below end


cdef inline Taps _taps(Py_ssize_t start, Py_ssize_t k, Py_ssize_t d, Py_ssize_t size) noexcept nogil:
    """The taps start, start + d, ... (k of them) of a dilated window that fall in [0, size)."""
    cdef Taps taps
    taps.end = start + (k - 1) * d + 1
    if taps.end > size:
        taps.end = size
    while start < 0:
        start = start + d
    taps.first = start
    return taps


cdef void _max_pool_forward(floating* y, object x_, object indices_, PoolGeometry* p) noexcept:
    """PyTorch's loop: start at the first in-input tap; a larger value or a NaN takes the lead."""
    cdef const floating* x = data_as(y, x_)
    cdef int64_t* indices = <int64_t*>data(indices_)
    # Geometry in locals: through the pointer the compiler must assume stores alias it.
    cdef Py_ssize_t H = p.H, W = p.W, OH = p.OH, OW = p.OW, kh = p.kh, kw = p.kw
    cdef Py_ssize_t sh = p.sh, sw = p.sw, ph = p.ph, pw = p.pw, dh = p.dh, dw = p.dw
    cdef Py_ssize_t HW = H * W, L = OH * OW
    # ceil_mode may add a last row or column of windows that hang over the edge: those
    # shapes take the general loop, which keeps to the in-input taps
    cdef bint two_by_two = kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0 \
        and dh == 1 and dw == 1 and 2 * OH <= H and 2 * OW <= W
    cdef Py_ssize_t plane, oh, ow, ih, iw, best, at
    cdef Taps rows, cols
    cdef floating top
    cdef const floating* src
    cdef int nt = threads_for(p.planes * L * kh * kw)
    for plane in prange(p.planes, nogil=True, num_threads=nt, schedule='static'):
        src = x + plane * HW
        for oh in range(OH):
            if two_by_two:  # the common window: four taps, all inside
                _max_pool_2x2_row(src, x + p.planes * HW, oh, W, OW, y + plane * L + oh * OW,
                                  indices + plane * L + oh * OW)
                continue
            rows = _taps(oh * sh - ph, kh, dh, H)
            for ow in range(OW):
                cols = _taps(ow * sw - pw, kw, dw, W)
                best = rows.first * W + cols.first
                top = -INFINITY
                ih = rows.first
                while ih < rows.end:
                    iw = cols.first
                    while iw < cols.end:
                        _max_tap(src[ih * W + iw], ih * W + iw, &top, &best)
                        iw = iw + dw
                    ih = ih + dh
                y[plane * L + oh * OW + ow] = top
                indices[plane * L + oh * OW + ow] = best


cdef Py_ssize_t _max_pool_backward(floating* gx, object grad_, object indices_, Py_ssize_t planes,
                                   Py_ssize_t HW, Py_ssize_t L) noexcept:
    """Scatter-add per plane, outputs in order; returns how many indices fell outside the plane."""
    cdef const floating* grad = data_as(gx, grad_)
    cdef const int64_t* indices = <int64_t*>data(indices_)
    cdef Py_ssize_t plane, k, outside = 0
    cdef int64_t at
    cdef int nt = threads_for(planes * (L + HW))
    for plane in prange(planes, nogil=True, num_threads=nt, schedule='static'):
        memset(gx + plane * HW, 0, HW * sizeof(floating))
        for k in range(L):
            at = indices[plane * L + k]
            if at < 0 or at >= HW:
                outside += 1
            else:
                gx[plane * HW + at] += grad[plane * L + k]
    return outside


cdef struct Window:
    Py_ssize_t h0, h1, w0, w1, divisor


cdef inline Window _avg_window(PoolGeometry* p, Py_ssize_t oh, Py_ssize_t ow) noexcept nogil:
    """PyTorch's window bounds (clipped to the input) and divisor for output (oh, ow)."""
    cdef Window win
    cdef Py_ssize_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw
    cdef Py_ssize_t he = hs + p.kh, we = ws + p.kw
    if he > p.H + p.ph:
        he = p.H + p.ph
    if we > p.W + p.pw:
        we = p.W + p.pw
    win.h0 = hs if hs > 0 else 0
    win.w0 = ws if ws > 0 else 0
    win.h1 = he if he < p.H else p.H
    win.w1 = we if we < p.W else p.W
    if p.divisor_override != 0:
        win.divisor = p.divisor_override
    elif p.count_include_pad:
        win.divisor = (he - hs) * (we - ws)
    else:
        win.divisor = (win.h1 - win.h0) * (win.w1 - win.w0)
    return win


cdef void _avg_pool_forward(floating* y, object x_, PoolGeometry* p) noexcept:
    cdef const floating* x = data_as(y, x_)
    cdef Py_ssize_t HW = p.H * p.W, L = p.OH * p.OW
    cdef Py_ssize_t plane, oh, ow, ih, iw
    cdef Window win
    cdef floating total
    cdef const floating* src
    cdef int nt = threads_for(p.planes * L * p.kh * p.kw)
    for plane in prange(p.planes, nogil=True, num_threads=nt, schedule='static'):
        src = x + plane * HW
        for oh in range(p.OH):
            for ow in range(p.OW):
                win = _avg_window(p, oh, ow)
                total = 0
                for ih in range(win.h0, win.h1):
                    for iw in range(win.w0, win.w1):
                        total = total + src[ih * p.W + iw]
                y[plane * L + oh * p.OW + ow] = total / <floating>win.divisor


cdef void _avg_pool_backward(floating* gx, object grad_, PoolGeometry* p) noexcept:
    cdef const floating* grad = data_as(gx, grad_)
    cdef Py_ssize_t HW = p.H * p.W, L = p.OH * p.OW
    cdef Py_ssize_t plane, oh, ow, ih, iw
    cdef Window win
    cdef floating share
    cdef floating* dst
    cdef int nt = threads_for(p.planes * L * p.kh * p.kw)
    for plane in prange(p.planes, nogil=True, num_threads=nt, schedule='static'):
        dst = gx + plane * HW
        memset(dst, 0, HW * sizeof(floating))
        for oh in range(p.OH):
            for ow in range(p.OW):
                win = _avg_window(p, oh, ow)
                share = grad[plane * L + oh * p.OW + ow] / <floating>win.divisor
                for ih in range(win.h0, win.h1):
                    for iw in range(win.w0, win.w1):
                        dst[ih * p.W + iw] += share


# --------------------------------------------------------------- wrappers -----

cdef inline Py_ssize_t _pool_out_size(Py_ssize_t size, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p,
                                      Py_ssize_t d, bint ceil_mode):
    # only called with a non-negative numerator, where C's division is the floor
    cdef Py_ssize_t out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


cdef bint _pool_geometry_fast(PoolGeometry* p, tuple shape, kernel_size, stride, padding,
                              dilation, ceil_mode):
    cdef Py_ssize_t[4] factors
    if (not shape4_ok(shape) or type(ceil_mode) is not bool
            or not int_pair(kernel_size, 1, &p.kh, &p.kw) or not int_pair(stride, 1, &p.sh, &p.sw)
            or not int_pair(padding, 0, &p.ph, &p.pw) or not int_pair(dilation, 1, &p.dh, &p.dw)):
        return False
    # dilated windows may see only padding: the twin's checker handles those
    if p.dh != 1 or p.dw != 1 or 2 * p.ph > p.kh or 2 * p.pw > p.kw:
        return False
    p.H, p.W = shape[2], shape[3]
    # an empty plane, padded, has windows that cover only padding: the twin's checker refuses them
    if p.H < 1 or p.W < 1 or p.H + 2 * p.ph < p.kh or p.W + 2 * p.pw < p.kw:
        return False
    p.planes = shape[0] * shape[1]
    p.OH = _pool_out_size(p.H, p.kh, p.sh, p.ph, 1, ceil_mode)
    p.OW = _pool_out_size(p.W, p.kw, p.sw, p.pw, 1, ceil_mode)
    factors[0], factors[1], factors[2], factors[3] = p.planes, p.H + 2 * p.ph, p.W + 2 * p.pw, 1
    if not product_fits(factors, 3):
        return False
    factors[0], factors[1], factors[2], factors[3] = p.planes, p.OH, p.OW, p.kh * p.kw
    return p.OH >= 1 and p.OW >= 1 and product_fits(factors, 4)


cdef int _pool_geometry(PoolGeometry* p, str op, tuple shape, kernel_size, stride, padding,
                        dilation, ceil_mode) except -1:
    p.count_include_pad = False
    p.divisor_override = 0
    if _pool_geometry_fast(p, shape, kernel_size, stride, padding, dilation, ceil_mode):
        return 0
    k, s, pad, d, out = _reference._pool_geometry(op, shape, kernel_size, stride, padding, dilation,
                                                  ceil_mode)
    p.planes = shape[0] * shape[1]
    p.H, p.W = shape[2], shape[3]
    p.OH, p.OW = out
    p.kh, p.kw = k
    p.sh, p.sw = s
    p.ph, p.pw = pad
    p.dh, p.dw = d
    return 0


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """(y, indices): each window's maximum and its flat index in the (H*W) plane, as PyTorch."""
    cdef int t
    cdef PoolGeometry p
    cdef str op = "max_pool2d"
    t = same_float_type(op, {"input": x})
    _pool_geometry(&p, op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    cdef cnp.ndarray xc = c_contiguous(x)
    shape = (x.shape[0], x.shape[1], p.OH, p.OW)
    cdef cnp.ndarray y = np.empty(shape, dtype=x.dtype)
    cdef cnp.ndarray indices = np.empty(shape, dtype=np.int64)
    # the one float/double choice of this pass: _max_pool_forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _max_pool_forward(<float*>data(y), xc, indices, &p)
    else:
        _max_pool_forward(<double*>data(y), xc, indices, &p)
    return y, indices


def max_pool2d_backward(grad, indices, input_shape):
    """Scatter each output gradient onto the input position its index names."""
    cdef int t
    cdef str op = "max_pool2d_backward"
    t = same_float_type(op, {"grad": grad})
    input_shape = _shape4(op, "input_shape", input_shape)
    _checks_py.allocatable(op, "the input gradient", input_shape, grad.itemsize)
    N, C, H, W = input_shape
    if not isinstance(indices, cnp.ndarray) or indices.dtype != np.int64:
        raise TypeError(f"{op}: indices must be an int64 array, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    if grad.ndim != 4 or grad.shape[:2] != (N, C) or indices.shape != grad.shape:
        raise ValueError(f"{op}: grad and indices must have one shape (N, C, OH, OW) with (N, C) = "
                         f"{(N, C)}; got grad {grad.shape}, indices {indices.shape}")
    if grad.size == 0:   # nothing to scatter, however many planes of no windows
        return np.zeros(input_shape, dtype=grad.dtype)
    cdef cnp.ndarray gc = c_contiguous(grad)
    cdef cnp.ndarray ic = c_contiguous(indices)
    cdef cnp.ndarray gx = np.empty(input_shape, dtype=grad.dtype)
    cdef Py_ssize_t planes = N * C, HW = H * W, L = grad.shape[2] * grad.shape[3], outside
    # the one float/double choice of this pass: _max_pool_backward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        outside = _max_pool_backward(<float*>data(gx), gc, ic, planes, HW, L)
    else:
        outside = _max_pool_backward(<double*>data(gx), gc, ic, planes, HW, L)
    if outside:
        raise ValueError(f"{op}: indices must lie in [0, {HW}) for input shape {input_shape}, "
                         f"got range [{indices.min()}, {indices.max()}]")
    return gx


cdef int _avg_pool_geometry(PoolGeometry* p, str op, tuple shape, kernel_size, stride, padding,
                            ceil_mode, count_include_pad, divisor_override) except -1:
    _pool_geometry(p, op, shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    p.count_include_pad = _flag(op, count_include_pad, "count_include_pad")
    if divisor_override is not None:   # a non-zero int64 (checks.divisor_override)
        p.divisor_override = _integer(op, divisor_override, "divisor_override", INT64_MIN, INT64_MAX,
                                      "None or a non-zero int")
        if p.divisor_override == 0:
            _checks_py.divisor_override(op, divisor_override)
    return 0


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Window sums divided by PyTorch's divisor (window size, its in-input part, or the override)."""
    cdef int t
    cdef PoolGeometry p
    cdef str op = "avg_pool2d"
    t = same_float_type(op, {"input": x})
    _avg_pool_geometry(&p, op, x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)
    cdef cnp.ndarray xc = c_contiguous(x)
    cdef cnp.ndarray y = np.empty((x.shape[0], x.shape[1], p.OH, p.OW), dtype=x.dtype)
    # the one float/double choice of this pass: _avg_pool_forward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _avg_pool_forward(<float*>data(y), xc, &p)
    else:
        _avg_pool_forward(<double*>data(y), xc, &p)
    return y


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """Each input under a window receives that window's grad / divisor."""
    cdef int t
    cdef PoolGeometry p
    cdef str op = "avg_pool2d_backward"
    t = same_float_type(op, {"grad": grad})
    input_shape = _shape4(op, "input_shape", input_shape)
    _avg_pool_geometry(&p, op, input_shape, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)
    expected = (input_shape[0], input_shape[1], p.OH, p.OW)
    if grad.shape != expected:
        raise ValueError(f"{op}: grad has shape {grad.shape} but the pooling's output shape is "
                         f"{expected}")
    cdef cnp.ndarray gc = c_contiguous(grad)
    cdef cnp.ndarray gx = np.empty(input_shape, dtype=grad.dtype)
    # the one float/double choice of this pass: _avg_pool_backward is written once, on `floating`
    if t == cnp.NPY_FLOAT:
        _avg_pool_backward(<float*>data(gx), gc, &p)
    else:
        _avg_pool_backward(<double*>data(gx), gc, &p)
    return gx
