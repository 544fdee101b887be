"""The pointwise path of ``nnlite/_kernels/_conv_pointwise.pxi`` in NumPy, step for step.

A 1x1 kernel with stride 1 and no padding needs no im2col: the input of one
sample, seen as a (C, H*W) matrix, already *is* the column matrix. So each pass
is one matrix product per sample and group, straight on the input's memory:

* forward: ``y[n, group] = w[group] @ x[n, group]`` (then the bias);
* input gradient: ``gx[n, group] = w[group].T @ g[n, group]``;
* weight gradient: ``gw[group] = sum over n, in order, of g[n, group] @ x[n, group].T``.

The compiled kernels make the same products through BLAS, so the two agree to
rounding. ``conv_plan`` in ``_conv.pyx`` says which shapes take this path.
"""
import numpy as np

from .. import checks
from ._conv import _conv_check_grad, _conv_geometry

__all__ = ["pointwise_backward_input", "pointwise_backward_weight", "pointwise_forward"]


def _pointwise_geometry(op, x_shape, w_shape, groups):
    _, _, _, groups, out_shape = _conv_geometry(op, x_shape, w_shape, (1, 1), (0, 0), (1, 1),
                                                groups)
    if tuple(w_shape[2:]) != (1, 1):
        raise ValueError(f"{op}: expected a 1x1 kernel, got weight shape {tuple(w_shape)}")
    return groups, out_shape


def _as_matrices(a, groups):
    """(N, channels, H, W) as (N, groups, channels per group, H*W): no copy."""
    N, channels = a.shape[:2]
    return a.reshape(N, groups, channels // groups, -1)


def pointwise_forward(x, weight, bias, groups):
    """conv2d with a 1x1 kernel, stride 1, no padding: one product per sample and group."""
    op = "pointwise_forward"
    checks.same_float(op, input=x, weight=weight)
    groups, (N, O, OH, OW) = _pointwise_geometry(op, x.shape, weight.shape, groups)
    w = weight.reshape(groups, O // groups, -1)                  # (groups, O/groups, C/groups)
    xm = _as_matrices(x, groups)
    y = np.empty((N, groups, O // groups, OH * OW), dtype=x.dtype)
    for n in range(N):
        for grp in range(groups):
            y[n, grp] = w[grp] @ xm[n, grp]
    y = y.reshape(N, O, OH, OW)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return y


def pointwise_backward_input(grad, weight, input_shape, groups):
    """dL/dx of the pointwise conv: the transposed weight times the output gradient."""
    op = "pointwise_backward_input"
    checks.same_float(op, grad=grad, weight=weight)
    groups, out_shape = _pointwise_geometry(op, input_shape, weight.shape, groups)
    _conv_check_grad(op, grad, out_shape)
    N, C, H, W = (int(v) for v in input_shape)
    w = weight.reshape(groups, out_shape[1] // groups, -1)
    gm = _as_matrices(grad, groups)
    gx = np.empty((N, groups, C // groups, H * W), dtype=grad.dtype)
    for n in range(N):
        for grp in range(groups):
            gx[n, grp] = w[grp].T @ gm[n, grp]
    return gx.reshape(N, C, H, W)


def pointwise_backward_weight(grad, x, weight_shape, groups):
    """dL/dw of the pointwise conv: the output gradient times the input's transpose,
    added up sample after sample."""
    op = "pointwise_backward_weight"
    checks.same_float(op, grad=grad, input=x)
    groups, out_shape = _pointwise_geometry(op, x.shape, weight_shape, groups)
    _conv_check_grad(op, grad, out_shape)
    O, Cg = weight_shape[:2]
    gm, xm = _as_matrices(grad, groups), _as_matrices(x, groups)
    gw = np.zeros((groups, O // groups, Cg), dtype=grad.dtype)
    for n in range(x.shape[0]):
        for grp in range(groups):
            gw[grp] += gm[n, grp] @ xm[n, grp].T
    return gw.reshape(weight_shape)
