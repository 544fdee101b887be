"""Softmax and log-softmax along any dim, stable for large logits.

The kernels work on the last dim of a 2-D array, so other dims are moved last
first. Each backward is a Function (kernel inside) whose own backward gives the
second derivative, derived in the docstrings below.
"""
import math

import numpy as np

from .._kernels import K
from ..autograd import Function
from ..tensor import Tensor
from .dims import _dim as _checked_dim
from .pointwise import exp
from .sums import sum as _sum


def _to_rows(a, dim):
    """Move ``dim`` last and flatten the rest: (rows, n) contiguous."""
    moved = np.moveaxis(a, dim, -1)
    n = a.shape[dim] if a.ndim else 1
    rows = math.prod(moved.shape[:-1])   # not -1: NumPy cannot infer it when n is 0
    return np.ascontiguousarray(moved).reshape(rows, n), moved.shape


def _from_rows(r, moved_shape, dim):
    return np.moveaxis(r.reshape(moved_shape), -1, dim)


def _rowwise(kernel, dim, *arrays):
    if arrays[0].ndim == 0:
        arrays = tuple(x.reshape(1) for x in arrays)
        dim = 0
    rows = [_to_rows(x, dim) for x in arrays]
    return _from_rows(kernel(*[r for r, _ in rows]), rows[0][1], dim)


class SoftmaxFunction(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a, dim):
        self.dim = dim
        out = _rowwise(K.softmax_forward, dim, a)
        return out.reshape(a.shape)

    def backward(self, grad):
        return SoftmaxGrad.apply(grad, self.out, self.dim, 1.0), None


class SoftmaxGrad(Function):
    """f(g, y) = y * (g - sum(g y)) * scale (scale: 1, or scaled_softmax's).

    d/dg is the same map (its Jacobian diag(y) - y y^T is symmetric);
    d/dy in direction gg: (gg*g - gg*sum(g y) - g*sum(gg y)) * scale.
    """

    def forward(self, grad, out, dim, scale):
        self.dim, self.scale = dim, scale
        rows = _rowwise(lambda g, y: K.softmax_backward(g, y, scale), dim, grad, out)
        return rows.reshape(grad.shape)

    def backward(self, gg):
        grad, out = self.inputs[:2]
        d, scale = self.dim, self.scale
        s_gy = _sum(grad * out, d, keepdim=True)
        s_ggy = _sum(gg * out, d, keepdim=True)
        d_out = gg * grad - gg * s_gy - grad * s_ggy
        return SoftmaxGrad.apply(gg, out, d, scale), d_out if scale == 1.0 else d_out * scale, None, None


class ScaledSoftmax(Function):
    """softmax(x * scale + bias) over the last dim, in one pass over x: attention's weights.

    ``scale`` is a real number and ``bias`` a constant (L, S) array (a mask)
    added to every (L, S) block of the scores, or None; neither gets a gradient
    (``scaled_softmax`` refuses a Tensor that requires one). For float32 and
    float64 input the scores round as ``x * scale + bias`` rounds them (scale
    rounded to x's dtype), so the weights are the same bits as softmax of those
    scores. float16 and bfloat16 input is widened to float32 once (the kernels
    have no narrower loops) and its scores are not rounded to the narrow dtype
    between the steps, so its weights can differ a little from the three steps'
    (attention takes this pass for float32 and float64 scores only). The
    gradient is softmax's, times ``scale`` (in the same kernel pass).
    """
    save_output = True
    saves_inputs = False

    def forward(self, a, scale, bias):
        self.scale = scale
        # (rows counted from the shape: reshape(-1, 0) cannot tell how many rows of no keys there are)
        rows = a.reshape(math.prod(a.shape[:-1]), a.shape[-1]) if a.ndim else a.reshape(1, 1)
        return K.scaled_softmax_forward(rows, scale, bias).reshape(a.shape)

    def backward(self, grad):
        return SoftmaxGrad.apply(grad, self.out, -1, self.scale), None, None


def scaled_softmax(input, scale, bias=None):
    """``softmax(input * scale + bias, dim=-1)`` with a constant (L, S) ``bias``, as one kernel call.

    ``scale`` is a Python or NumPy real number and ``bias`` an ndarray, a Tensor
    that does not require grad, or None: the pass treats both as constants. A
    learned scale or bias (a Tensor that requires grad) is refused with a
    TypeError rather than silently left without a gradient; write
    ``softmax(input * scale + bias, dim=-1)`` for those.
    """
    if isinstance(scale, Tensor):
        given, fix = (("a Tensor that requires grad", "for a learned scale write softmax(input * scale + bias, "
                       "dim=-1)") if scale.requires_grad else ("a Tensor", "pass float(scale)"))
        raise TypeError(f"scaled_softmax: scale must be a real number (a constant), got {given}; {fix}")
    if isinstance(bias, Tensor) and bias.requires_grad:
        raise TypeError("scaled_softmax: bias must be a constant (an ndarray or a Tensor that does not "
                        "require grad), got a Tensor that requires grad; for a learned bias write "
                        "softmax(input * scale + bias, dim=-1)")
    return ScaledSoftmax.apply(input, scale, bias)


class LogSoftmaxFunction(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a, dim):
        self.dim = dim
        return _rowwise(K.log_softmax_forward, dim, a).reshape(a.shape)

    def backward(self, grad):
        return LogSoftmaxGrad.apply(grad, self.out, self.dim), None


class LogSoftmaxGrad(Function):
    """f(g, y) = g - exp(y) sum(g).

    d/dg in direction gg: gg - sum(gg exp(y));  d/dy: -gg exp(y) sum(g).
    """

    def forward(self, grad, out, dim):
        self.dim = dim
        return _rowwise(K.log_softmax_backward, dim, grad, out).reshape(grad.shape)

    def backward(self, gg):
        grad, out = self.inputs[:2]
        d = self.dim
        p = exp(out)
        return (gg - _sum(gg * p, d, keepdim=True), -gg * p * _sum(grad, d, keepdim=True), None)


def _dim(x, dim):
    if dim is None:
        raise TypeError("softmax: pass dim explicitly (PyTorch's implicit dim choice is deprecated)")
    return _checked_dim("softmax", dim, x.ndim)


def softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return SoftmaxFunction.apply(input, _dim(input, dim))


def log_softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return LogSoftmaxFunction.apply(input, _dim(input, dim))
