# cython: language_level=3
"""Activation kernels with a parameter or a corner: leaky ReLU, hardtanh (and ReLU6),
hardsigmoid, hardswish, ELU (and SELU), softplus, mish and log-sigmoid.

(ReLU, tanh, sigmoid, SiLU and GELU are in ``_elementwise.pyx``.) Each loop is one
pass over the flat elements, shared among threads with ``prange``; an element's
result depends on that element alone, so the output is the same for any thread
count. Each backward loop sits below its forward loop.

The piecewise-linear activations keep, when asked (``save=True``), a boolean mask
of the piece each element fell on; their gradient is then ``grad`` times one of two
slopes (``masked_slope_backward``), read from the mask and never from x, so an
in-place forward, which overwrites x, still differentiates. ELU keeps its slope
(``e^x`` is not recovered exactly from the output). The smooth ones (softplus, mish,
log-sigmoid) and hardswish read x in backward.

float32 exp, tanh and log1p are the vectorisable ones of ``_fastmath.h`` (exp taken
only at arguments <= 0, where nnl_expf is exact to 1 ulp; log1p only on [0, 1]). Twins:
``reference/_activations.py``, equal bit for bit for the piecewise-linear loops and to
rounding for the others (NumPy's exp, tanh and log1p are not _fastmath.h's; where a
derivative crosses zero, as mish's near x = -1.19, the difference is a few ulps of the
terms that cancel there, not of the result).
"""
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport expm1

from nnlite._kernels._dtype cimport data, empty_like as _empty_like
from nnlite._kernels._elementwise_maps cimport map as _map, zip as _zip
from nnlite._kernels._fastmath cimport _exp, _log1p_unit, _sigmoid, _tanh
from nnlite._kernels._threads cimport threads_for, threads_for_streaming
from nnlite._kernels._checks cimport (c_contiguous as _c, flag as _flag, float_type as _float_type,
                                      real_number as _real_number, same_shape_floats as _pair_type)

cnp.import_array()

__all__ = ["leaky_relu_forward", "hardtanh_forward", "hardsigmoid_forward", "masked_slope_backward",
           "hardswish_forward", "hardswish_backward", "elu_forward", "softplus_forward",
           "softplus_backward", "mish_forward", "mish_backward", "logsigmoid_forward",
           "logsigmoid_backward"]


cdef inline floating _expm1_nonpositive(floating v) noexcept nogil:
    """e^v - 1 for v <= 0 without the cancellation of exp(v) - 1 near 0. float32 through
    e^v - 1 = 2t / (1 - t), t = tanh(v / 2): 1 - t >= 1 cancels nothing, and the
    vectorisable tanh keeps the loop in SIMD; float64: libm's expm1."""
    cdef float t, half = 0.5, one = 1, two = 2
    if floating is float:
        t = _tanh(v * half)
        return two * t / (one - t)
    else:
        return expm1(v)


cdef inline floating _softplus_stable(floating z) noexcept nogil:
    """log(1 + e^z) as max(z, 0) + log1p(e^-|z|): e^-|z| never overflows."""
    cdef floating zero = 0, minus_z = -z
    cdef floating e = _exp(minus_z if z >= zero else z)
    return (z if z > zero else zero) + _log1p_unit(e)


# -------------------------------------------------------- piecewise linear -----

# Two rules keep these loops in SIMD. Arithmetic is done on every element and the result
# picked afterwards: the compiler does not move a floating-point operation out of a branch
# (it could raise a flag the branch would not have), so ``v if v > 0 else v * slope`` left
# as written would be a branch per element, mispredicted on mixed signs. And a forward that
# can keep a mask has two loops, with and without it: a store made under a condition would
# keep the loop scalar too. Every such forward takes two parameters, so that one wrapper,
# _piecewise, runs them all: leaky ReLU's slope (and one it does not use), hardtanh's bounds,
# none for hardsigmoid.

cdef void _leaky_relu_fwd(const floating *x, floating *y, cnp.npy_bool *positive, Py_ssize_t n,
                          floating slope, floating unused) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v, scaled, zero = 0
    if positive == NULL:
        for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
            v = x[i]
            scaled = v * slope
            y[i] = v if v > zero else scaled     # NaN takes the second branch and stays NaN
        return
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        v = x[i]
        scaled = v * slope
        y[i] = v if v > zero else scaled
        positive[i] = v > zero


cdef void _hardtanh_fwd(const floating *x, floating *y, cnp.npy_bool *inside, Py_ssize_t n,
                        floating low, floating high) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    if inside == NULL:
        for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
            v = x[i]
            y[i] = low if v < low else (high if v > high else v)   # -0.0 and NaN pass unchanged
        return
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        v = x[i]
        y[i] = low if v < low else (high if v > high else v)
        inside[i] = not ((v <= low) | (v >= high))     # NaN is inside: its gradient passes


cdef void _hardsigmoid_fwd(const floating *x, floating *y, cnp.npy_bool *inside, Py_ssize_t n,
                           floating unused_a, floating unused_b) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v, zero = 0, three = 3, six = 6
    if inside == NULL:
        for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
            v = x[i] + three
            v = zero if v < zero else v    # comparisons that let NaN through, as np.maximum does
            v = six if v > six else v
            y[i] = v / six
        return
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        v = x[i] + three
        v = zero if v < zero else v
        v = six if v > six else v
        y[i] = v / six
        inside[i] = (x[i] > -three) & (x[i] < three)


cdef void _masked_slope_bwd(const floating *g, const cnp.npy_bool *mask, floating *dx, Py_ssize_t n,
                            floating slope_true, floating slope_false, bint flat) noexcept nogil:
    # flat: the mask's False piece is constant, and its gradient is 0 itself (not g * 0, which is
    # -0.0 for a negative g and NaN for an infinite one), as in PyTorch's hardtanh and hardsigmoid
    # Two loops, so that neither tests ``flat`` per element: each is a multiply and a select,
    # which GCC turns into vector blends (a test inside one loop kept it scalar, and a random
    # mask then cost a mispredicted branch every other element).
    cdef Py_ssize_t i
    cdef floating product, zero = 0
    if flat:
        for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
            product = g[i] * slope_true   # on every element: GCC does not move a multiply out of a branch
            dx[i] = product if mask[i] else zero
    else:
        for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
            dx[i] = g[i] * (slope_true if mask[i] else slope_false)


cdef void _hardswish_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v, zero = 0, three = 3, six = 6
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        v = x[i] + three
        v = zero if v < zero else v
        v = six if v > six else v
        y[i] = x[i] * v / six


cdef void _hardswish_bwd(const floating *g, const floating *x, floating *dx,
                         Py_ssize_t n) noexcept nogil:
    # 0 up to -3, g (x/3 + 1/2) on the open middle, g itself from 3 on (and for NaN), as
    # PyTorch forms it: the flat piece gives 0 itself, not g * 0
    cdef Py_ssize_t i
    cdef floating v, middle, zero = 0, three = 3, half = 0.5
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        v = x[i]
        middle = g[i] * (v / three + half)
        dx[i] = zero if v <= -three else (middle if v < three else g[i])


# ------------------------------------------------------------------ smooth -----

cdef void _elu_fwd(const floating *x, floating *y, floating *slope, cnp.npy_bool *negative,
                   Py_ssize_t n, floating alpha_scale, floating scale) noexcept nogil:
    # x > 0: scale x, slope scale; else alpha scale (e^x - 1), slope alpha scale e^x. The
    # exponentials take min(x, 0), so a large positive x never overflows. The slope and the
    # mask have a loop of their own: in one loop with y, the compiler leaves it scalar.
    cdef Py_ssize_t i
    cdef floating v, left, linear, curve, zero = 0
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        v = x[i]
        left = zero if v > zero else v
        linear = v * scale
        curve = _expm1_nonpositive(left) * alpha_scale
        y[i] = linear if v > zero else curve
    if slope == NULL:
        return
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        v = x[i]
        left = zero if v > zero else v
        curve = _exp(left) * alpha_scale
        slope[i] = curve if v <= zero else scale     # NaN takes scale, as in PyTorch
        negative[i] = v < zero


cdef void _softplus_fwd(const floating *x, floating *y, Py_ssize_t n, floating beta,
                        floating threshold) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating z, curve
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        z = x[i] * beta
        curve = _softplus_stable(z) / beta
        y[i] = x[i] if z > threshold else curve


cdef void _softplus_bwd(const floating *g, const floating *x, floating *dx, Py_ssize_t n,
                        floating beta, floating threshold) noexcept nogil:
    # slope sigmoid(beta x) on the curve, 1 on the linear side above the threshold
    cdef Py_ssize_t i
    cdef floating z, s, one = 1
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        z = x[i] * beta
        s = _sigmoid(z)
        dx[i] = g[i] * (one if z > threshold else s)


cdef void _mish_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = x[i] * _tanh(_softplus_stable(x[i]))


cdef void _mish_bwd(const floating *g, const floating *x, floating *dx, Py_ssize_t n) noexcept nogil:
    # d/dx x tanh(sp(x)) = t + x sigmoid(x) (1 - t^2), t = tanh(sp(x)), sp' = sigmoid
    cdef Py_ssize_t i
    cdef floating v, t, one = 1
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        v = x[i]
        t = _tanh(_softplus_stable(v))
        dx[i] = g[i] * (t + v * _sigmoid(v) * (one - t * t))


cdef void _logsigmoid_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    # log sigmoid(x) = min(x, 0) - log1p(e^-|x|)
    cdef Py_ssize_t i
    cdef floating v, minus_v, zero = 0
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        v = x[i]
        minus_v = -v
        y[i] = (v if v < zero else zero) - _log1p_unit(_exp(minus_v if v >= zero else v))


cdef void _logsigmoid_bwd(const floating *g, const floating *x, floating *dx,
                          Py_ssize_t n) noexcept nogil:
    # sigmoid(-x) from q = e^-|x| / (1 + e^-|x|): 1 - q for x < 0, q otherwise
    cdef Py_ssize_t i
    cdef floating v, minus_v, e, q, zero = 0, one = 1
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        v = x[i]
        minus_v = -v
        e = _exp(minus_v if v >= zero else v)
        q = e / (one + e)
        e = one - q
        dx[i] = g[i] * (e if v < zero else q)


# --------------------------------------------------------------- wrappers -----

# The loops without a parameter or a mask (hardswish, mish, log-sigmoid) go through
# _map and _zip (_elementwise_maps.pxd), the piecewise-linear forwards through _piecewise;
# the others pick their copy by the cast of the pointers, as every other kernel does (_dtype.pxd).

ctypedef void (*piece_f)(const float*, float*, cnp.npy_bool*, Py_ssize_t, float, float) noexcept nogil
ctypedef void (*piece_d)(const double*, double*, cnp.npy_bool*, Py_ssize_t, double, double) noexcept nogil


cdef cnp.ndarray _mask_like(cnp.ndarray x):
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), cnp.NPY_BOOL, 0)


cdef object _piecewise(int t, object x, bint save, double a, double b, piece_f loop_f, piece_d loop_d):
    """y = loop(x, a, b) for x of type number t (already checked); with ``save``, ``(y, mask)``,
    the mask of the piece each element fell on."""
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef cnp.ndarray mask = _mask_like(xc) if save else None
    cdef cnp.npy_bool *pm = <cnp.npy_bool*>data(mask)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef void *p_xc = data(xc), *p_y = data(y)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>p_xc, <float*>p_y, pm, n, <float>a, <float>b)
        else:
            loop_d(<const double*>p_xc, <double*>p_y, pm, n, a, b)
    return (y, mask) if save else y


def leaky_relu_forward(x, negative_slope, save=False):
    """x where x > 0, ``negative_slope * x`` elsewhere. With ``save``, ``(y, positive)``:
    the mask x > 0 that ``masked_slope_backward(grad, positive, 1, negative_slope)`` reads."""
    op = "leaky_relu_forward"
    cdef int t = _float_type(op, x, "x")
    cdef double slope = _real_number(op, negative_slope, "negative_slope")
    return _piecewise(t, x, _flag(op, save, "save"), slope, 0, _leaky_relu_fwd[float], _leaky_relu_fwd[double])


def hardtanh_forward(x, min_val, max_val, save=False):
    """x clamped to [min_val, max_val]. With ``save``, ``(y, inside)``: the mask of the open
    interval min_val < x < max_val, where the slope is 1 (0 elsewhere, at the bounds too),
    and of NaN, whose gradient PyTorch passes too."""
    op = "hardtanh_forward"
    cdef int t = _float_type(op, x, "x")
    cdef double low = _real_number(op, min_val, "min_val"), high = _real_number(op, max_val, "max_val")
    if low > high:
        raise ValueError(f"{op}: min_val ({low}) cannot be greater than max_val ({high})")
    return _piecewise(t, x, _flag(op, save, "save"), low, high, _hardtanh_fwd[float], _hardtanh_fwd[double])


def hardsigmoid_forward(x, save=False):
    """``min(max(x + 3, 0), 6) / 6``. With ``save``, ``(y, inside)``: the mask -3 < x < 3,
    where the slope is 1/6 (0 elsewhere, at -3 and 3 too)."""
    op = "hardsigmoid_forward"
    cdef int t = _float_type(op, x, "x")
    return _piecewise(t, x, _flag(op, save, "save"), 0, 0, _hardsigmoid_fwd[float], _hardsigmoid_fwd[double])


def masked_slope_backward(grad, mask, slope_true, slope_false):
    """``grad * (slope_true if mask else slope_false)``: the gradient of a piecewise-linear
    activation from the mask its forward kept. The slopes are rounded to grad's dtype.
    ``slope_false=None`` marks a flat piece: 0 itself there, whatever grad holds."""
    op = "masked_slope_backward"
    cdef int t = _float_type(op, grad, "grad")
    cdef double a = _real_number(op, slope_true, "slope_true")
    cdef bint flat = slope_false is None
    cdef double b = 0 if flat else _real_number(op, slope_false, "slope_false")
    if not cnp.PyArray_Check(mask) or cnp.PyArray_TYPE(<cnp.ndarray>mask) != cnp.NPY_BOOL:
        from nnlite._kernels.checks import bool_mask
        bool_mask(op, "mask", mask)
    if mask.shape != grad.shape:
        raise ValueError(f"{op}: mask must have the shape of grad {grad.shape}, got {mask.shape}")
    cdef cnp.ndarray gc = _c(grad), mc = _c(mask)
    cdef cnp.ndarray dx = _empty_like(gc, t)
    cdef const cnp.npy_bool *pm = <cnp.npy_bool*>data(mc)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(gc)
    cdef void *p_gc = data(gc), *p_dx = data(dx)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _masked_slope_bwd(<float*>p_gc, pm, <float*>p_dx, n, <float>a, <float>b, flat)
        else:
            _masked_slope_bwd(<double*>p_gc, pm, <double*>p_dx, n, a, b, flat)
    return dx


def hardswish_forward(x):
    """``x * min(max(x + 3, 0), 6) / 6``."""
    return _map("hardswish_forward", x, _hardswish_fwd[float], _hardswish_fwd[double])


def hardswish_backward(grad, x):
    """grad times hardswish's slope: 0 for x <= -3 (0 itself), x/3 + 1/2 between, 1 for x >= 3."""
    return _zip("hardswish_backward", grad, "grad", x, "x", _hardswish_bwd[float], _hardswish_bwd[double])


def elu_forward(x, alpha, scale, save=False):
    """``scale * x`` for x > 0, ``scale * alpha * (e^x - 1)`` otherwise (ELU: scale 1; SELU:
    its two constants). With ``save``, ``(y, slope, negative)``: dy/dx (``scale``, or
    ``scale * alpha * e^x`` for x <= 0) and the mask x < 0."""
    op = "elu_forward"
    cdef int t = _float_type(op, x, "x")
    cdef double a = _real_number(op, alpha, "alpha"), s = _real_number(op, scale, "scale")
    cdef double alpha_scale = a * s
    save = _flag(op, save, "save")
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef cnp.ndarray slope = _empty_like(xc, t) if save else None
    cdef cnp.ndarray negative = _mask_like(xc) if save else None
    cdef cnp.npy_bool *pm = <cnp.npy_bool*>data(negative)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef void *p_xc = data(xc), *p_y = data(y), *p_slope = data(slope)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _elu_fwd(<float*>p_xc, <float*>p_y, <float*>p_slope, pm, n,
                     <float>alpha_scale, <float>s)
        else:
            _elu_fwd(<double*>p_xc, <double*>p_y, <double*>p_slope, pm, n,
                     alpha_scale, s)
    return (y, slope, negative) if save else y


def softplus_forward(x, beta, threshold):
    """``log(1 + e^(beta x)) / beta``, and x itself where ``beta * x > threshold``."""
    op = "softplus_forward"
    cdef int t = _float_type(op, x, "x")
    cdef double b = _real_number(op, beta, "beta"), th = _real_number(op, threshold, "threshold")
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef void *p_xc = data(xc), *p_y = data(y)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _softplus_fwd(<float*>p_xc, <float*>p_y, n, <float>b, <float>th)
        else:
            _softplus_fwd(<double*>p_xc, <double*>p_y, n, b, th)
    return y


def softplus_backward(grad, x, beta, threshold):
    """grad times softplus's slope: ``sigmoid(beta x)``, and 1 where ``beta * x > threshold``."""
    op = "softplus_backward"
    cdef int t = _pair_type(op, grad, "grad", x, "x")
    cdef double b = _real_number(op, beta, "beta"), th = _real_number(op, threshold, "threshold")
    cdef cnp.ndarray gc = _c(grad), xc = _c(x)
    cdef cnp.ndarray dx = _empty_like(xc, t)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef void *p_gc = data(gc), *p_xc = data(xc), *p_dx = data(dx)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            _softplus_bwd(<float*>p_gc, <float*>p_xc, <float*>p_dx, n,
                          <float>b, <float>th)
        else:
            _softplus_bwd(<double*>p_gc, <double*>p_xc, <double*>p_dx, n,
                          b, th)
    return dx


def mish_forward(x):
    """``x * tanh(softplus(x))``."""
    return _map("mish_forward", x, _mish_fwd[float], _mish_fwd[double])


def mish_backward(grad, x):
    """grad times mish's slope ``t + x sigmoid(x) (1 - t^2)``, t = tanh(softplus(x))."""
    return _zip("mish_backward", grad, "grad", x, "x", _mish_bwd[float], _mish_bwd[double])


def logsigmoid_forward(x):
    """``log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|)``, finite for every finite x."""
    return _map("logsigmoid_forward", x, _logsigmoid_fwd[float], _logsigmoid_fwd[double])


def logsigmoid_backward(grad, x):
    """grad times log-sigmoid's slope ``sigmoid(-x)``, formed without e^x."""
    return _zip("logsigmoid_backward", grad, "grad", x, "x", _logsigmoid_bwd[float], _logsigmoid_bwd[double])
