# cython: language_level=3
"""Elementwise kernels: activations and their derivatives, dropout, embedding lookup.

Every activation loop is one pass over the flat elements, split between threads
with ``prange``. Each element's result depends only on that element, so the
output is the same for any thread count. The derivative of each activation
sits right below its forward loop. Twins: ``reference/_elementwise.py``.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport erf
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from nnlite._kernels._dtype cimport data, data_as
from nnlite._kernels._fastmath cimport _erf, _exp, _sigmoid, _tanh
from nnlite._kernels._threads cimport threads_for
from nnlite._kernels._checks cimport c_contiguous as _c, float_type as _float_type, index_array as _index_array

cnp.import_array()

__all__ = ["relu_forward", "relu_backward", "gelu_forward", "gelu_backward",
           "erf_forward", "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
           "silu_forward", "silu_backward", "dropout_forward",
           "embedding_forward", "embedding_backward"]

# Written out to full double precision; a float kernel rounds them once.
cdef double SQRT_2_OVER_PI = 0.7978845608028654   # sqrt(2 / pi), tanh-GELU's slope at 0
cdef double KAPPA = 0.044715                       # tanh-GELU's cubic coefficient
cdef double INV_SQRT_2 = 0.7071067811865476
cdef double INV_SQRT_2PI = 0.3989422804014327     # the standard normal pdf at 0
cdef Py_ssize_t EMBEDDING_CHUNK = 64               # columns per thread task in embedding_backward


# ------------------------------------------------------------ validation -----

cdef int _pair_type(str op, object a, str name_a, object b, str name_b) except -1:
    """Both float arrays of one dtype and one shape; returns the dtype number."""
    cdef int t = _float_type(op, a, name_a)
    if _float_type(op, b, name_b) != t:
        raise TypeError(f"{op}: all operands must share one dtype, got {a.dtype} ({name_a}) "
                        f"and {b.dtype} ({name_b})")
    if a.shape != b.shape:
        raise ValueError(f"{op}: {name_b} must have the shape of {name_a} {a.shape}, got {b.shape}")
    return t


cdef inline cnp.ndarray _empty_like(cnp.ndarray x, int t):
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t, 0)


cdef inline void _check_approximate(str op, object approximate) except *:
    if approximate != "none" and approximate != "tanh":
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


# ------------------------------------------------------------------ loops -----

cdef void _relu_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = 0 if x[i] < 0 else x[i]     # "x < 0" lets NaN through, as PyTorch does


cdef void _relu_bwd(const floating *g, const floating *out, floating *dx,
                    Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        gi = g[i]              # loaded unconditionally, so the select vectorises
        dx[i] = gi if out[i] > 0 else 0


cdef void _gelu_fwd(const floating *x, floating *y, Py_ssize_t n, bint use_tanh) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v, half = 0.5, one = 1
    cdef floating beta = <floating>SQRT_2_OVER_PI, kappa = <floating>KAPPA
    cdef floating inv_sqrt2 = <floating>INV_SQRT_2
    if use_tanh:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            y[i] = half * v * (one + _tanh(beta * (v + kappa * v * v * v)))
    else:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            y[i] = v * half * (one + _erf(v * inv_sqrt2))


cdef void _gelu_bwd(const floating *g, const floating *x, floating *dx, Py_ssize_t n,
                    bint use_tanh) noexcept nogil:
    # d/dx [x Phi(x)] = Phi(x) + x phi(x); the tanh form differentiates
    # 0.5 x (1 + tanh(u)), u = beta (x + kappa x^3), term by term as PyTorch does.
    cdef Py_ssize_t i
    cdef floating v, x_sq, th, cdf, pdf, half = 0.5, one = 1
    cdef floating beta = <floating>SQRT_2_OVER_PI, kappa = <floating>KAPPA
    cdef floating kappa3 = <floating>(3 * KAPPA)
    cdef floating inv_sqrt2 = <floating>INV_SQRT_2, alpha = <floating>INV_SQRT_2PI
    if use_tanh:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            x_sq = v * v
            th = _tanh(beta * (v + kappa * x_sq * v))
            dx[i] = g[i] * (half * (one + th)
                            + half * v * (one - th * th) * (beta * (one + kappa3 * x_sq)))
    else:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            cdf = half * (one + _erf(v * inv_sqrt2))
            pdf = alpha * _exp(-half * v * v)
            dx[i] = g[i] * (cdf + v * pdf)


# The two GELU forms as loops of their own (the one-signature shape _map and _zip take).
cdef void _gelu_erf_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    _gelu_fwd(x, y, n, False)


cdef void _gelu_tanh_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    _gelu_fwd(x, y, n, True)


cdef void _gelu_erf_bwd(const floating *g, const floating *x, floating *dx, Py_ssize_t n) noexcept nogil:
    _gelu_bwd(g, x, dx, n, False)


cdef void _gelu_tanh_bwd(const floating *g, const floating *x, floating *dx, Py_ssize_t n) noexcept nogil:
    _gelu_bwd(g, x, dx, n, True)


cdef void _erf_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    # libm's double erf for both types, rounded once: the twin's steps (special.erf is
    # math.erf, the same libm function, per element), so float32 is correctly rounded
    # more often than a float erff would be and equal to the twin bit for bit
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = <floating>erf(<double>x[i])


cdef void _tanh_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = _tanh(x[i])


cdef void _tanh_bwd(const floating *g, const floating *out, floating *dx,
                    Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating one = 1
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        dx[i] = g[i] * (one - out[i] * out[i])     # tanh' = 1 - tanh^2


cdef void _sigmoid_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = _sigmoid(x[i])


cdef void _sigmoid_bwd(const floating *g, const floating *out, floating *dx,
                       Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating one = 1
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        dx[i] = g[i] * out[i] * (one - out[i])   # sigmoid' = s (1 - s)


cdef void _silu_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = x[i] * _sigmoid(x[i])


cdef void _silu_bwd(const floating *g, const floating *x, floating *dx,
                    Py_ssize_t n) noexcept nogil:
    # d/dx [x s(x)] = s + x s (1 - s) = s (1 + x (1 - s))
    cdef Py_ssize_t i
    cdef floating s, one = 1
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        s = _sigmoid(x[i])
        dx[i] = g[i] * (s * (one + x[i] * (one - s)))


cdef void _dropout_fwd(floating *y, object x_, object u_, double p_, double scale_,
                       object mask_) noexcept:
    cdef const floating *x = data_as(y, x_)
    cdef const floating *u = data_as(y, u_)
    cdef cnp.npy_bool *mask = <cnp.npy_bool*>data(mask_)
    cdef floating p = <floating>p_, scale = <floating>scale_
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(<cnp.ndarray>x_)
    cdef bint keep
    for i in prange(n, nogil=True, num_threads=threads_for(n), schedule='static'):
        keep = u[i] >= p
        mask[i] = keep
        y[i] = x[i] * (scale if keep else 0)     # x * noise, as PyTorch computes it


cdef void _embedding_fwd(floating *out, object weight_, object indices_, Py_ssize_t dim) noexcept:
    cdef const floating *weight = data_as(out, weight_)
    cdef const int64_t *indices = <const int64_t*>data(indices_)
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(<cnp.ndarray>indices_)
    for i in prange(n, nogil=True, num_threads=threads_for(n * dim), schedule='static'):
        memcpy(&out[i * dim], &weight[indices[i] * dim], dim * sizeof(floating))


cdef void _embedding_bwd_columns(const floating *g, const int64_t *indices, floating *table,
                                 Py_ssize_t n, Py_ssize_t dim, Py_ssize_t j0, Py_ssize_t j1,
                                 int64_t padding_idx) noexcept nogil:
    # One thread owns columns [j0, j1) of the whole table and walks the indices in
    # order, so a row hit twice always sums its gradients in the same order.
    cdef Py_ssize_t i, j
    cdef floating *row
    cdef const floating *src
    for i in range(n):
        if indices[i] == padding_idx:
            continue
        row = &table[indices[i] * dim]
        src = &g[i * dim]
        for j in range(j0, j1):
            row[j] += src[j]


cdef void _embedding_bwd(floating *table, object g_, object indices_, Py_ssize_t dim,
                         int64_t padding_idx) noexcept:
    cdef const floating *g = data_as(table, g_)
    cdef const int64_t *indices = <const int64_t*>data(indices_)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>indices_)
    cdef Py_ssize_t chunk, n_chunks = (dim + EMBEDDING_CHUNK - 1) // EMBEDDING_CHUNK
    cdef Py_ssize_t j0
    for chunk in prange(n_chunks, nogil=True, num_threads=threads_for(n * dim), schedule='static'):
        j0 = chunk * EMBEDDING_CHUNK
        _embedding_bwd_columns(g, indices, table, n, dim, j0,
                               min(j0 + EMBEDDING_CHUNK, dim), padding_idx)


# --------------------------------------------------------------- wrappers -----

# One dtype dispatch for every activation: each wrapper names its float and double
# loops (``_relu_fwd[float]`` is the float32 specialisation of the fused loop), and
# _map / _zip check the arguments, allocate the result and run the loop of the
# arguments' dtype. Dropout and embedding, whose loops take other arguments, pick
# their copy as every other kernel does (_dtype.pxd): by the cast of one pointer.

ctypedef void (*map_f)(const float*, float*, Py_ssize_t) noexcept nogil
ctypedef void (*map_d)(const double*, double*, Py_ssize_t) noexcept nogil
ctypedef void (*zip_f)(const float*, const float*, float*, Py_ssize_t) noexcept nogil
ctypedef void (*zip_d)(const double*, const double*, double*, Py_ssize_t) noexcept nogil


cdef cnp.ndarray _map(str op, object x, map_f loop_f, map_d loop_d):
    """y = loop(x), elementwise, on the float32 or float64 loop as x's dtype says."""
    cdef int t = _float_type(op, x, "x")
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef void* px = cnp.PyArray_DATA(xc)
    cdef void* py = cnp.PyArray_DATA(y)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>px, <float*>py, n)
        else:
            loop_d(<const double*>px, <double*>py, n)
    return y


cdef cnp.ndarray _zip(str op, object a, str name_a, object b, str name_b, zip_f loop_f,
                      zip_d loop_d):
    """out = loop(a, b), elementwise, for two arrays of one dtype and one shape."""
    cdef int t = _pair_type(op, a, name_a, b, name_b)
    cdef cnp.ndarray ac = _c(a), bc = _c(b)
    cdef cnp.ndarray out = _empty_like(ac, t)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ac)
    cdef void* pa = cnp.PyArray_DATA(ac)
    cdef void* pb = cnp.PyArray_DATA(bc)
    cdef void* po = cnp.PyArray_DATA(out)
    with nogil:
        if t == cnp.NPY_FLOAT32:
            loop_f(<const float*>pa, <const float*>pb, <float*>po, n)
        else:
            loop_d(<const double*>pa, <const double*>pb, <double*>po, n)
    return out


def relu_forward(x):
    """max(x, 0) elementwise (NaN passes through)."""
    return _map("relu_forward", x, _relu_fwd[float], _relu_fwd[double])


def relu_backward(grad, out):
    """grad where the forward output is positive, else 0."""
    return _zip("relu_backward", grad, "grad", out, "out", _relu_bwd[float], _relu_bwd[double])


def gelu_forward(x, approximate):
    """x Phi(x) with Phi the standard normal CDF ("none"), or PyTorch's tanh form ("tanh")."""
    _check_approximate("gelu_forward", approximate)
    if approximate == "tanh":
        return _map("gelu_forward", x, _gelu_tanh_fwd[float], _gelu_tanh_fwd[double])
    return _map("gelu_forward", x, _gelu_erf_fwd[float], _gelu_erf_fwd[double])


def gelu_backward(grad, x, approximate):
    """grad * d gelu(x) / dx, with PyTorch's derivative formulas."""
    _check_approximate("gelu_backward", approximate)
    if approximate == "tanh":
        return _zip("gelu_backward", grad, "grad", x, "x", _gelu_tanh_bwd[float], _gelu_tanh_bwd[double])
    return _zip("gelu_backward", grad, "grad", x, "x", _gelu_erf_bwd[float], _gelu_erf_bwd[double])


def erf_forward(x):
    """erf of each element (its derivative, 2/sqrt(pi) exp(-x^2), is composed of other ops)."""
    return _map("erf_forward", x, _erf_fwd[float], _erf_fwd[double])


def tanh_forward(x):
    """tanh(x) elementwise."""
    return _map("tanh_forward", x, _tanh_fwd[float], _tanh_fwd[double])


def tanh_backward(grad, out):
    """grad * (1 - out^2), from the saved forward output."""
    return _zip("tanh_backward", grad, "grad", out, "out", _tanh_bwd[float], _tanh_bwd[double])


def sigmoid_forward(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    return _map("sigmoid_forward", x, _sigmoid_fwd[float], _sigmoid_fwd[double])


def sigmoid_backward(grad, out):
    """grad * out * (1 - out), from the saved forward output."""
    return _zip("sigmoid_backward", grad, "grad", out, "out", _sigmoid_bwd[float],
                _sigmoid_bwd[double])


def silu_forward(x):
    """x * sigmoid(x)."""
    return _map("silu_forward", x, _silu_fwd[float], _silu_fwd[double])


def silu_backward(grad, x):
    """grad * s (1 + x (1 - s)), s = sigmoid(x)."""
    return _zip("silu_backward", grad, "grad", x, "x", _silu_bwd[float], _silu_bwd[double])


def dropout_forward(x, u, p):
    """(y, mask): mask = u >= p (kept with probability 1 - p), y = x * mask / (1 - p).

    ``u`` holds the caller's uniform [0, 1) draws, so the random stream stays in
    Python (and seeded) while the kernel stays a pure function.
    """
    cdef int t = _pair_type("dropout_forward", x, "x", u, "u")
    cdef double pd
    try:
        pd = p
    except TypeError:
        raise TypeError(f"dropout_forward: p must be a number, got {type(p).__name__}") from None
    if not (0.0 <= pd < 1.0):
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p!r}")
    cdef double scale = 1.0 / (1.0 - pd)
    cdef cnp.ndarray xc = _c(x), uc = _c(u)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef cnp.ndarray mask = _empty_like(xc, cnp.NPY_BOOL)
    # the one float/double choice of dropout: _dropout_fwd is written once, on `floating`
    if t == cnp.NPY_FLOAT32:
        _dropout_fwd(<float*>data(y), xc, uc, pd, scale, mask)
    else:
        _dropout_fwd(<double*>data(y), xc, uc, pd, scale, mask)
    return y, mask


cdef cnp.ndarray _check_indices(str op, object indices, Py_ssize_t num_embeddings):
    """int64 indices, every one in [0, num_embeddings): checked here, before the GIL goes."""
    _index_array(op, indices, "indices")
    cdef cnp.ndarray idx = _c(indices)
    cdef const int64_t *p = <const int64_t*>cnp.PyArray_DATA(idx)
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(idx), bad = -1
    with nogil:
        for i in range(n):
            if p[i] < 0 or p[i] >= num_embeddings:
                bad = i
                break
    if bad >= 0:
        raise IndexError(f"{op}: index {p[bad]} is out of range for num_embeddings={num_embeddings}")
    return idx


def embedding_forward(weight, indices):
    """weight[indices]: one row of the (num_embeddings, embedding_dim) table per index."""
    cdef int t = _float_type("embedding_forward", weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"embedding_forward: weight must be 2-D (num_embeddings, embedding_dim), "
                         f"got shape {weight.shape}")
    cdef cnp.ndarray w = _c(weight)
    cdef Py_ssize_t num_embeddings = w.shape[0], dim = w.shape[1]
    cdef cnp.ndarray idx = _check_indices("embedding_forward", indices, num_embeddings)
    cdef cnp.ndarray out = np.empty((<object>idx).shape + (dim,), dtype=w.dtype)
    # the one float/double choice of this pass: _embedding_fwd is written once, on `floating`
    if t == cnp.NPY_FLOAT32:
        _embedding_fwd(<float*>data(out), w, idx, dim)
    else:
        _embedding_fwd(<double*>data(out), w, idx, dim)
    return out


def embedding_backward(grad, indices, num_embeddings, padding_idx):
    """Scatter-add rows of ``grad`` into a zero (num_embeddings, dim) table, in index order.

    ``padding_idx`` (-1 for none) names a row that never gets gradient.
    """
    op = "embedding_backward"
    cdef int t = _float_type(op, grad, "grad")
    if isinstance(num_embeddings, bool) or not isinstance(num_embeddings, (int, np.integer)) \
            or num_embeddings < 0:
        raise ValueError(f"{op}: num_embeddings must be an int >= 0, got {num_embeddings!r}")
    if not isinstance(padding_idx, (int, np.integer)) or not -1 <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be -1 (none) or in [0, {num_embeddings}), "
                         f"got {padding_idx!r}")
    cdef cnp.ndarray idx = _check_indices(op, indices, num_embeddings)
    index_shape = (<object>idx).shape
    grad_shape = grad.shape
    if len(grad_shape) != len(index_shape) + 1 or grad_shape[:len(index_shape)] != index_shape:
        raise ValueError(f"{op}: grad must have shape indices.shape + (dim,) = {index_shape} + (dim,), "
                         f"got {grad.shape}")
    cdef cnp.ndarray g = _c(grad)
    cdef Py_ssize_t dim = g.shape[g.ndim - 1]
    cdef cnp.ndarray table = np.zeros((int(num_embeddings), dim), dtype=g.dtype)
    cdef int64_t pad = padding_idx
    # the one float/double choice of this pass: _embedding_bwd is written once, on `floating`
    if t == cnp.NPY_FLOAT32:
        _embedding_bwd(<float*>data(table), g, idx, dim, pad)
    else:
        _embedding_bwd(<double*>data(table), g, idx, dim, pad)
    return table
