"""NumPy twins of the kernels in ``nnlite/_kernels/_elementwise.pyx``.

Activations, dropout and embedding lookups, one element (or row) at a time.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks
from ..special import erf, erf_float32
from ._gemm import _gemm_float_operands

__all__ = ["dropout_forward", "embedding_backward", "embedding_forward", "erf_forward", "gelu_backward",
           "gelu_forward", "relu_backward", "relu_forward", "sigmoid_backward", "sigmoid_forward",
           "silu_backward", "silu_forward", "tanh_backward", "tanh_forward"]


def _elementwise_floats(op, arrays, names):
    """Check float32/float64 ndarrays of one dtype and one shape; return the dtype."""
    dtype = _gemm_float_operands(op, arrays, names)
    for arr, name in zip(arrays[1:], names[1:]):
        if arr.shape != arrays[0].shape:
            raise ValueError(f"{op}: {name} must have the shape of {names[0]} "
                             f"{arrays[0].shape}, got {arr.shape}")
    return dtype


def _elementwise_c_order(a, dtype=None):
    """``a`` as a C-ordered array (0-d stays 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, dtype=dtype, order="C")


def _elementwise_approximate(op, approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


def relu_forward(x):
    """max(x, 0); NaN passes through, as in PyTorch."""
    _elementwise_floats("relu_forward", (x,), ("x",))
    return _elementwise_c_order(np.where(x < 0, x.dtype.type(0), x))


def relu_backward(grad, out):
    """grad where the forward output was positive or NaN, else 0 (PyTorch's: 0 where out <= 0)."""
    _elementwise_floats("relu_backward", (grad, out), ("grad", "out"))
    return _elementwise_c_order(np.where(out <= 0, grad.dtype.type(0), grad))


_GELU_SQRT_2_OVER_PI = 0.7978845608028654      # sqrt(2 / pi)
_GELU_KAPPA = 0.044715
_GELU_INV_SQRT_2 = 0.7071067811865476         # 1 / sqrt(2)
_GELU_INV_SQRT_2PI = 0.3989422804014327       # 1 / sqrt(2 pi): the normal pdf's constant


def _erf(x):
    """erf as the kernels compute it: their float32 polynomial, or libm's erf for float64."""
    return erf_float32(x) if x.dtype == np.float32 else erf(x)


def _expf_nonpositive(x):
    """exp of float32 ``x <= 0`` by the steps of the kernels' ``nnl_expf`` (``_fastmath.h``), bit for bit:
    x = n ln 2 + r, Cephes' polynomial in r, times 2^n from exponent bits in two halves; 0 below -104."""
    f = np.float32
    with np.errstate(invalid="ignore"):
        n = (x * f(1.44269504088896341) + f(12582912.0)) - f(12582912.0)
        r = x - n * f(0.693359375)
        r = r - n * f(-2.12194440e-4)
        p = f(1.9875691500e-4)
        for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
            p = p * r + f(c)
        p = p * r * r + r + f(1)
        k = np.clip(np.where(np.isnan(n), f(-252), n), -252, 254).astype(np.int32)
    half = k >> 1
    out = (p * ((half + 127).astype(np.uint32) << np.uint32(23)).view(f)
           * ((k - half + 127).astype(np.uint32) << np.uint32(23)).view(f))
    return np.where(x < f(-104), f(0), out)


def _tanh_float32(x):
    """tanh of float32 ``x`` by the steps of the kernels' ``nnl_tanhf``, bit for bit: an odd polynomial
    below |x| = 0.625, (1 - e) / (1 + e) with e = exp(-2|x|) from there, x's sign. Near +-1 it rounds as
    the kernels (and PyTorch's GELU) do, where NumPy's tanh may be an ulp away: whether 1 - tanh^2 is 0
    decides whether an infinite gradient times GELU's derivative is NaN."""
    f = np.float32
    with np.errstate(over="ignore", invalid="ignore"):   # the unused piece may overflow
        z = x * x
        small = ((((f(-5.70498872745e-3) * z + f(2.06390887954e-2)) * z - f(5.37397155531e-2)) * z
                  + f(1.33314422036e-1)) * z - f(3.33332819422e-1)) * z * x + x
        e = _expf_nonpositive(f(-2) * np.abs(x))
        big = (f(1) - e) / (f(1) + e)
    magnitude = np.abs(np.where(np.abs(x) < f(0.625), small, big))
    return np.where(np.isnan(x), x, np.copysign(magnitude, x)).astype(f, copy=False)


def _gelu_tanh(u):
    """tanh(u) as the kernels compute it for GELU: nnl_tanhf's steps for float32, NumPy's tanh for float64."""
    return _tanh_float32(u) if u.dtype == np.float32 else np.tanh(u)


def gelu_forward(x, approximate, save=False):
    """x * Phi(x) ("none": exact, with erf) or PyTorch's tanh approximation ("tanh").

    With ``save``, returns ``(y, saved)``: Phi(x) ("none") or tanh(u) ("tanh"),
    the part of the derivative gelu_backward would otherwise compute again.
    """
    _elementwise_floats("gelu_forward", (x,), ("x",))
    _elementwise_approximate("gelu_forward", approximate)
    save = checks.flag("gelu_forward", "save", save)
    t = x.dtype.type
    if approximate == "tanh":
        part = _gelu_tanh(t(_GELU_SQRT_2_OVER_PI) * (x + t(_GELU_KAPPA) * x * x * x))
        y = t(0.5) * x * (t(1) + part)
    else:
        part = _erf(x * t(_GELU_INV_SQRT_2))
        y = x * t(0.5) * (t(1) + part)
        part = t(0.5) * (t(1) + part)       # Phi(x), as gelu_backward computes it
    y = _elementwise_c_order(y, dtype=x.dtype)
    return (y, _elementwise_c_order(part, dtype=x.dtype)) if save else y


def gelu_backward(grad, x, approximate, saved=None):
    """PyTorch's GELU derivative: Phi(x) + x phi(x), or the tanh formula's derivative.

    ``saved`` (from ``gelu_forward(..., save=True)``) stands in for Phi(x) or tanh(u).
    """
    _elementwise_floats("gelu_backward", (grad, x), ("grad", "x"))
    if saved is not None:
        _elementwise_floats("gelu_backward", (x, saved), ("x", "saved"))
    _elementwise_approximate("gelu_backward", approximate)
    t = x.dtype.type
    if approximate == "tanh":
        x_sq = x * x
        inner = t(_GELU_SQRT_2_OVER_PI) * (x + t(_GELU_KAPPA) * x * x * x)   # as the forward rounds it
        tanh_inner = _gelu_tanh(inner) if saved is None else saved
        left_derivative = t(0.5) * (t(1) + tanh_inner)
        right_derivative = (t(0.5) * x * (t(1) - tanh_inner * tanh_inner)
                            * (t(_GELU_SQRT_2_OVER_PI) * (t(1) + t(3 * _GELU_KAPPA) * x_sq)))
        dx = grad * (left_derivative + right_derivative)
    else:
        cdf = t(0.5) * (t(1) + _erf(x * t(_GELU_INV_SQRT_2))) if saved is None else saved
        pdf = t(_GELU_INV_SQRT_2PI) * np.exp(t(-0.5) * x * x)
        dx = grad * (cdf + x * pdf)
    return _elementwise_c_order(dx, dtype=x.dtype)


def erf_forward(x):
    """erf of each element: float32 by the kernels' polynomial steps (within 1.06 ulp), float64 by libm's erf."""
    _elementwise_floats("erf_forward", (x,), ("x",))
    return _elementwise_c_order(_erf(x), dtype=x.dtype)


def tanh_forward(x):
    _elementwise_floats("tanh_forward", (x,), ("x",))
    return _elementwise_c_order(np.tanh(x))


def tanh_backward(grad, out):
    """grad * (1 - tanh^2), from the saved output."""
    _elementwise_floats("tanh_backward", (grad, out), ("grad", "out"))
    return _elementwise_c_order(grad * (out.dtype.type(1) - out * out))


def _sigmoid(x):
    # exp of a negative number only, so large |x| never overflows
    t = x.dtype.type
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, t(1) / (t(1) + e), e / (t(1) + e))


def sigmoid_forward(x):
    _elementwise_floats("sigmoid_forward", (x,), ("x",))
    return _elementwise_c_order(_sigmoid(x))


def sigmoid_backward(grad, out):
    """grad * out * (1 - out), from the saved output."""
    _elementwise_floats("sigmoid_backward", (grad, out), ("grad", "out"))
    return _elementwise_c_order(grad * out * (out.dtype.type(1) - out))


def silu_forward(x):
    """x * sigmoid(x) (also called swish)."""
    _elementwise_floats("silu_forward", (x,), ("x",))
    return _elementwise_c_order(x * _sigmoid(x))


def silu_backward(grad, x):
    """grad * s * (1 + x (1 - s)) with s = sigmoid(x)."""
    _elementwise_floats("silu_backward", (grad, x), ("grad", "x"))
    t = x.dtype.type
    s = _sigmoid(x)
    return _elementwise_c_order(grad * (s * (t(1) + x * (t(1) - s))))


def dropout_forward(x, u, p):
    """(y, mask): mask = u >= p keeps each element with probability 1 - p; y = x * mask / (1 - p)."""
    _elementwise_floats("dropout_forward", (x, u), ("x", "u"))
    p = checks.real_in("dropout_forward", "p", p, 0, 1, high_open=True)
    scale = x.dtype.type(1.0 / (1.0 - p))
    mask = u >= x.dtype.type(p)
    y = x * np.where(mask, scale, x.dtype.type(0))   # x * noise, as PyTorch computes it
    return _elementwise_c_order(y), _elementwise_c_order(mask)


def _embedding_check_indices(op, indices, num_embeddings):
    checks.index_array(op, "indices", indices)
    if indices.size:
        bad = (indices < 0) | (indices >= num_embeddings)
        if bad.any():
            index = int(indices[bad].flat[0])
            raise IndexError(f"{op}: index {index} is out of range for "
                             f"num_embeddings={num_embeddings}")


def embedding_forward(weight, indices):
    """weight[indices]: one row of the (num_embeddings, embedding_dim) table per index."""
    _gemm_float_operands("embedding_forward", (weight,), ("weight",))
    if weight.ndim != 2:
        raise ValueError(f"embedding_forward: weight must be 2-D (num_embeddings, embedding_dim), "
                         f"got shape {weight.shape}")
    _embedding_check_indices("embedding_forward", indices, weight.shape[0])
    return np.ascontiguousarray(weight[indices])


def embedding_backward(grad, indices, num_embeddings, padding_idx):
    """Scatter-add grad rows into a (num_embeddings, dim) table, in index order.

    The padding row (``padding_idx``; -1 for none) gets no gradient.
    """
    _gemm_float_operands("embedding_backward", (grad,), ("grad",))
    num_embeddings = checks.integer("embedding_backward", "num_embeddings", num_embeddings, 0)
    padding_idx = checks.padding_idx("embedding_backward", padding_idx, num_embeddings)
    _embedding_check_indices("embedding_backward", indices, num_embeddings)
    if grad.ndim != indices.ndim + 1 or grad.shape[:-1] != indices.shape:
        raise ValueError(f"embedding_backward: grad must have shape indices.shape + (dim,) = "
                         f"{indices.shape} + (dim,), got {grad.shape}")
    dim = grad.shape[-1]
    checks.allocatable("embedding_backward", "the gradient table", (num_embeddings, dim), grad.itemsize)
    table = np.zeros((num_embeddings, dim), dtype=grad.dtype)
    # unbuffered: rows hit twice are summed in index order
    np.add.at(table, indices.reshape(-1), grad.reshape(indices.size, dim))
    if padding_idx >= 0:
        table[padding_idx] = 0
    return table
