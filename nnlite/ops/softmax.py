"""Softmax and log-softmax along any dim, stable for large logits.

The kernels work on the last dim of a 2-D array, so other dims are moved last
first. Each backward is a Function (kernel inside) whose own backward gives the
second derivative, derived in the docstrings below.
"""
import numpy as np

from .._kernels import K
from ..autograd import Function
from .pointwise import exp
from .reduction import sum as _sum


def _to_rows(a, dim):
    """Move ``dim`` last and flatten the rest: (rows, n) contiguous."""
    moved = np.moveaxis(a, dim, -1)
    return np.ascontiguousarray(moved).reshape(-1, a.shape[dim] if a.ndim else 1), moved.shape


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
        return SoftmaxGrad.apply(grad, self.out, self.dim), None


class SoftmaxGrad(Function):
    """f(g, y) = y * (g - sum(g y)) * scale (scale: 1, or scaled_softmax's).

    d/dg is the same map (its Jacobian diag(y) - y y^T is symmetric);
    d/dy in direction gg: (gg*g - gg*sum(g y) - g*sum(gg y)) * scale.
    """

    def forward(self, grad, out, dim, scale=1.0):
        self.dim, self.scale = dim, scale
        rows = _rowwise(lambda g, y: K.softmax_backward(g, y, scale), dim, grad, out)
        return rows.reshape(grad.shape)

    def backward(self, gg):
        grad, out = self.inputs[:2]
        d, scale = self.dim, self.scale
        s_gy = _sum(grad * out, d, keepdim=True)
        s_ggy = _sum(gg * out, d, keepdim=True)
        d_out = gg * grad - gg * s_gy - grad * s_ggy
        extra = (None,) * (len(self.inputs) - 3)   # scale, when it was passed
        return (SoftmaxGrad.apply(gg, out, d, scale), d_out if scale == 1.0 else d_out * scale, None) + extra


class ScaledSoftmax(Function):
    """softmax(x * scale + bias) over the last dim, in one pass over x: attention's weights.

    ``bias`` is a constant (L, S) array (a mask) added to every (L, S) block of
    the scores, or None; it gets no gradient. The scores are rounded as
    ``x * scale + bias`` would round them, so the weights are softmax's own. The
    gradient is softmax's, times ``scale`` (in the same kernel pass).
    """
    save_output = True
    saves_inputs = False

    def forward(self, a, scale, bias):
        self.scale = scale
        rows = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
        return K.scaled_softmax_forward(rows, scale, bias).reshape(a.shape)

    def backward(self, grad):
        return SoftmaxGrad.apply(grad, self.out, -1, self.scale), None, None


def scaled_softmax(input, scale, bias=None):
    """``softmax(input * scale + bias, dim=-1)`` with a constant (L, S) ``bias``, as one kernel call."""
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
    nd = max(x.ndim, 1)
    if not -nd <= dim < nd:
        raise IndexError(f"softmax: dim {dim} out of range for a tensor with {x.ndim} dims")
    return dim % nd


def softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return SoftmaxFunction.apply(input, _dim(input, dim))


def log_softmax(input, dim=None, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return LogSoftmaxFunction.apply(input, _dim(input, dim))
