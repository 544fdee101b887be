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
from libc.stdint cimport INT64_MAX, int64_t
from libc.string cimport memcpy

from nnlite._kernels._dtype cimport data, data_as, empty_like as _empty_like
from nnlite._kernels._elementwise_maps cimport map as _map, zip as _zip
from nnlite._kernels._fastmath cimport _erf, _exp, _sigmoid, _tanh
from nnlite._kernels._threads cimport threads_for, threads_for_streaming
from nnlite._kernels._checks cimport (c_contiguous as _c, flag as _flag, float_type as _float_type,
                                      index_array as _index_array, integer as _integer, real_in as _real_in,
                                      same_shape_floats as _pair_type)
from nnlite._kernels import checks

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

cdef inline void _check_approximate(str op, object approximate) except *:
    if approximate != "none" and approximate != "tanh":
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


# ------------------------------------------------------------------ loops -----

cdef void _relu_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        y[i] = 0 if x[i] < 0 else x[i]     # "x < 0" lets NaN through, as PyTorch does


cdef void _relu_bwd(const floating *g, const floating *out, floating *dx,
                    Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating gi
    for i in prange(n, num_threads=threads_for_streaming(n), schedule='static'):
        gi = g[i]              # loaded unconditionally, so the select vectorises
        dx[i] = 0 if out[i] <= 0 else gi   # "out <= 0" lets NaN's gradient through, as PyTorch does


cdef void _gelu_fwd(const floating *x, floating *y, floating *saved, Py_ssize_t n,
                    bint use_tanh) noexcept nogil:
    # saved (NULL: not wanted) receives the part of the derivative that costs the most,
    # Phi(x) or tanh(u), so that _gelu_bwd need not compute it again. Each case is a
    # loop of its own, here and in _gelu_bwd: a test inside the loop keeps it from vectorising.
    cdef Py_ssize_t i
    cdef floating v, part, half = 0.5, one = 1
    cdef floating beta = <floating>SQRT_2_OVER_PI, kappa = <floating>KAPPA
    cdef floating inv_sqrt2 = <floating>INV_SQRT_2
    if use_tanh and saved == NULL:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            y[i] = half * v * (one + _tanh(beta * (v + kappa * v * v * v)))
    elif use_tanh:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            part = _tanh(beta * (v + kappa * v * v * v))
            y[i] = half * v * (one + part)
            saved[i] = part
    elif saved == NULL:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            y[i] = v * half * (one + _erf(v * inv_sqrt2))
    else:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            part = _erf(v * inv_sqrt2)
            y[i] = v * half * (one + part)
            saved[i] = half * (one + part)     # Phi(x), as _gelu_bwd computes it


cdef void _gelu_bwd(const floating *g, const floating *x, const floating *saved, floating *dx,
                    Py_ssize_t n, bint use_tanh) noexcept nogil:
    # d/dx [x Phi(x)] = Phi(x) + x phi(x); the tanh form differentiates
    # 0.5 x (1 + tanh(u)), u = beta (x + kappa x^3), term by term as PyTorch does.
    # saved (or NULL) holds the forward's Phi(x) or tanh(u): the same bits as computed here.
    cdef Py_ssize_t i
    cdef floating v, x_sq, th, cdf, pdf, half = 0.5, one = 1
    cdef floating beta = <floating>SQRT_2_OVER_PI, kappa = <floating>KAPPA
    cdef floating kappa3 = <floating>(3 * KAPPA)
    cdef floating inv_sqrt2 = <floating>INV_SQRT_2, alpha = <floating>INV_SQRT_2PI
    if use_tanh and saved == NULL:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            x_sq = v * v
            th = _tanh(beta * (v + kappa * v * v * v))     # u rounded as the forward rounds it
            dx[i] = g[i] * (half * (one + th)
                            + half * v * (one - th * th) * (beta * (one + kappa3 * x_sq)))
    elif use_tanh:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            x_sq = v * v
            th = saved[i]
            dx[i] = g[i] * (half * (one + th)
                            + half * v * (one - th * th) * (beta * (one + kappa3 * x_sq)))
    elif saved == NULL:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            cdf = half * (one + _erf(v * inv_sqrt2))
            pdf = alpha * _exp(-half * v * v)
            dx[i] = g[i] * (cdf + v * pdf)
    else:
        for i in prange(n, num_threads=threads_for(n), schedule='static'):
            v = x[i]
            pdf = alpha * _exp(-half * v * v)
            dx[i] = g[i] * (saved[i] + v * pdf)


cdef void _gelu_run_fwd(int t, void *x, void *y, void *saved, Py_ssize_t n, bint use_tanh) noexcept nogil:
    if t == cnp.NPY_FLOAT32:
        _gelu_fwd(<const float*>x, <float*>y, <float*>saved, n, use_tanh)
    else:
        _gelu_fwd(<const double*>x, <double*>y, <double*>saved, n, use_tanh)


cdef void _gelu_run_bwd(int t, void *g, void *x, void *saved, void *dx, Py_ssize_t n,
                        bint use_tanh) noexcept nogil:
    if t == cnp.NPY_FLOAT32:
        _gelu_bwd(<const float*>g, <const float*>x, <const float*>saved, <float*>dx, n, use_tanh)
    else:
        _gelu_bwd(<const double*>g, <const double*>x, <const double*>saved, <double*>dx, n, use_tanh)


cdef void _erf_fwd(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    # float32: nnl_erff (_fastmath.h), within 1.06 ulp and vectorised; its twin
    # special.erf_float32 does the same float steps. float64: libm's erf, as the
    # twin's special.erf (math.erf per element). Equal to the twin bit for bit.
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads_for(n), schedule='static'):
        y[i] = _erf(x[i])


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
# _map / _zip (``_elementwise_maps.pxd``, shared with ``_activations.pyx``) check the
# arguments, allocate the result and run the loop of the arguments' dtype. GELU, whose loops take the optional saved part too, picks its
# copy in _gelu_run_fwd/_gelu_run_bwd; dropout and embedding, whose loops take other
# arguments, pick theirs as every other kernel does (_dtype.pxd): by the cast of one pointer.

def relu_forward(x):
    """max(x, 0) elementwise (NaN passes through)."""
    return _map("relu_forward", x, _relu_fwd[float], _relu_fwd[double])


def relu_backward(grad, out):
    """grad where the forward output is positive or NaN, else 0."""
    return _zip("relu_backward", grad, "grad", out, "out", _relu_bwd[float], _relu_bwd[double])


def gelu_forward(x, approximate, save=False):
    """x Phi(x) with Phi the standard normal CDF ("none"), or PyTorch's tanh form ("tanh").

    With ``save``, returns ``(y, saved)``: ``saved`` holds Phi(x) ("none") or
    tanh(u) ("tanh"), the costly part of the derivative, for gelu_backward.
    """
    _check_approximate("gelu_forward", approximate)
    cdef int t = _float_type("gelu_forward", x, "x")
    save = _flag("gelu_forward", save, "save")
    cdef cnp.ndarray xc = _c(x)
    cdef cnp.ndarray y = _empty_like(xc, t)
    cdef cnp.ndarray saved = _empty_like(xc, t) if save else None
    cdef void *px = cnp.PyArray_DATA(xc)
    cdef void *py = cnp.PyArray_DATA(y)
    cdef void *ps = cnp.PyArray_DATA(saved) if save else NULL
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef bint use_tanh = approximate == "tanh"
    with nogil:
        _gelu_run_fwd(t, px, py, ps, n, use_tanh)
    return (y, saved) if save else y


def gelu_backward(grad, x, approximate, saved=None):
    """grad * d gelu(x) / dx, with PyTorch's derivative formulas.

    ``saved``: what ``gelu_forward(x, approximate, save=True)`` returned beside
    y; the result is the same bits, without computing erf (or tanh) again.
    """
    _check_approximate("gelu_backward", approximate)
    cdef int t = _pair_type("gelu_backward", grad, "grad", x, "x")
    if saved is not None:
        _pair_type("gelu_backward", x, "x", saved, "saved")
    cdef cnp.ndarray gc = _c(grad), xc = _c(x)
    cdef cnp.ndarray sc = None if saved is None else _c(saved)
    cdef cnp.ndarray dx = _empty_like(xc, t)
    cdef void *pg = cnp.PyArray_DATA(gc)
    cdef void *px = cnp.PyArray_DATA(xc)
    cdef void *ps = NULL if saved is None else cnp.PyArray_DATA(sc)
    cdef void *pd = cnp.PyArray_DATA(dx)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xc)
    cdef bint use_tanh = approximate == "tanh"
    with nogil:
        _gelu_run_bwd(t, pg, px, ps, pd, n, use_tanh)
    return dx


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
    cdef double pd = _real_in("dropout_forward", p, "p", 0, 1, False, True)   # 0 <= p < 1
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
    cdef Py_ssize_t rows = _integer(op, num_embeddings, "num_embeddings", 0, INT64_MAX, None)
    cdef int64_t pad
    if type(padding_idx) is int and -1 <= padding_idx < rows:
        pad = padding_idx
    else:
        pad = checks.padding_idx(op, padding_idx, rows)
    cdef cnp.ndarray idx = _check_indices(op, indices, rows)
    index_shape = (<object>idx).shape
    grad_shape = grad.shape
    if len(grad_shape) != len(index_shape) + 1 or grad_shape[:len(index_shape)] != index_shape:
        raise ValueError(f"{op}: grad must have shape indices.shape + (dim,) = {index_shape} + (dim,), "
                         f"got {grad.shape}")
    cdef cnp.ndarray g = _c(grad)
    cdef Py_ssize_t dim = g.shape[g.ndim - 1]
    checks.allocatable(op, "the gradient table", (rows, dim), g.itemsize)
    cdef cnp.ndarray table = np.zeros((rows, dim), dtype=g.dtype)
    # the one float/double choice of this pass: _embedding_bwd is written once, on `floating`
    if t == cnp.NPY_FLOAT32:
        _embedding_bwd(<float*>data(table), g, idx, dim, pad)
    else:
        _embedding_bwd(<double*>data(table), g, idx, dim, pad)
    return table
