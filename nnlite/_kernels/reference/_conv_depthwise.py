"""The depthwise paths of ``nnlite/_kernels/_conv_depthwise.pxi`` in NumPy, step for step.

A depthwise convolution has one input channel per group: output plane ``o``
reads only input plane ``o // multiplier`` (``multiplier = O / C``), through its
own ``kh x kw`` taps. A GEMM per group would have ``kh * kw`` terms per output,
too little work, so the compiled kernels go plane by plane, two ways:

* **depthwise-shifted** (stride 1): the shifted product of
  ``reference/_conv_shifted.py`` with one output row, per plane. The plane,
  zero-bordered and flattened, is read at one offset per tap,
  ``i * dh * Wp + j * dw``; each tap adds ``w[o, k]`` times that view. The input
  gradient is the same product with the taps flipped, each input plane
  gathering its ``multiplier`` output planes' gradients; the weight gradient
  multiplies each view by the output gradient on the padded-width grid.
* **depthwise-direct** (other strides): loops over taps on a zero-padded copy
  of each plane, each tap a strided window of it. The input gradient scatters
  the output gradient back through the same windows.

The weight gradients sum in float64, per sample and then over samples in
order, as the compiled kernels do. ``conv_plan`` in ``_conv.pyx`` says which
shapes take which path.
"""
import numpy as np

from .. import checks
from ._conv import _conv_check_grad, _conv_geometry
from ._conv_shifted import flat_planes, shifted_offsets

__all__ = ["depthwise_direct_backward_input", "depthwise_direct_backward_weight",
           "depthwise_direct_forward", "depthwise_shifted_backward_input",
           "depthwise_shifted_backward_weight", "depthwise_shifted_forward"]


def _depthwise_geometry(op, x_shape, w_shape, stride, padding, dilation):
    C = int(x_shape[1]) if len(x_shape) == 4 else 0
    stride, padding, dilation, _, out_shape = _conv_geometry(
        op, x_shape, w_shape, stride, padding, dilation, C)
    if w_shape[1] != 1:
        raise ValueError(f"{op}: expected a depthwise weight (O, 1, kH, kW), got shape "
                         f"{tuple(w_shape)}")
    return stride, padding, dilation, out_shape


def _plane_products(flat, wmat, Wp, rows, cols, kernel_size, dilation):
    """out[n, q] = sum over the read planes m and taps k of wmat[q, m, k] times the view
    of flat[n, q, m] at tap k's offset: flat (N, Q, nin, S), wmat (Q, nin, kh*kw)."""
    N, Q, nin, S = flat.shape
    P = rows * Wp
    off = shifted_offsets(1, kernel_size, dilation, S, Wp)
    out = np.zeros((N, Q, P), dtype=flat.dtype)
    for m in range(nin):
        for k, start in enumerate(off):                          # one shifted view per tap
            out += wmat[None, :, m, k, None] * flat[:, :, m, start:start + P]
    return out.reshape(N, Q, rows, Wp)[..., :cols]               # drop the columns between rows


def depthwise_shifted_forward(x, weight, bias, padding, dilation):
    """Depthwise conv2d, stride 1: each plane a one-row shifted product."""
    op = "depthwise_shifted_forward"
    checks.same_float(op, input=x, weight=weight)
    _, padding, dilation, (N, O, OH, OW) = _depthwise_geometry(
        op, x.shape, weight.shape, (1, 1), padding, dilation)
    kh, kw = weight.shape[2:]
    planes = np.repeat(x, O // x.shape[1], axis=1)               # output plane o reads o // multiplier
    flat, Wp = flat_planes(planes, padding, dilation[1] * (kw - 1))
    y = _plane_products(flat[:, :, None], weight.reshape(O, 1, kh * kw), Wp, OH, OW,
                        (kh, kw), dilation)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return y


def depthwise_shifted_backward_input(grad, weight, input_shape, padding, dilation):
    """dL/dx, stride 1: each input plane gathers its multiplier output planes' gradients,
    bordered by the kernel's reach less the padding, through the flipped taps."""
    op = "depthwise_shifted_backward_input"
    checks.same_float(op, grad=grad, weight=weight)
    _, (ph, pw), (dh, dw), out_shape = _depthwise_geometry(
        op, input_shape, weight.shape, (1, 1), padding, dilation)
    _conv_check_grad(op, grad, out_shape)
    N, C, H, W = (int(v) for v in input_shape)
    O, _, kh, kw = weight.shape
    border = (dh * (kh - 1) - ph, dw * (kw - 1) - pw)
    if min(border) < 0:
        raise ValueError(f"{op}: padding {(ph, pw)} beyond the kernel's reach "
                         f"{(dh * (kh - 1), dw * (kw - 1))}: the shifted product needs a "
                         f"non-negative border")
    mult = O // C
    flat, Wp = flat_planes(grad, border, dw * (kw - 1))          # (N, O, S)
    wflip = weight.reshape(C, mult, kh, kw)[:, :, ::-1, ::-1].reshape(C, mult, kh * kw)
    return _plane_products(flat.reshape(N, C, mult, -1), wflip, Wp, H, W, (kh, kw), (dh, dw))


def depthwise_shifted_backward_weight(grad, x, weight_shape, padding, dilation):
    """dL/dw, stride 1: per (sample, plane) and tap, the output gradient on the
    padded-width grid times the forward's view, in float64; then summed over samples."""
    op = "depthwise_shifted_backward_weight"
    checks.same_float(op, grad=grad, input=x)
    _, padding, (dh, dw), (N, O, OH, OW) = _depthwise_geometry(
        op, x.shape, weight_shape, (1, 1), padding, dilation)
    _conv_check_grad(op, grad, (N, O, OH, OW))
    kh, kw = weight_shape[2:]
    flat, Wp = flat_planes(np.repeat(x, O // x.shape[1], axis=1), padding, dw * (kw - 1))
    P = OH * Wp
    off = shifted_offsets(1, (kh, kw), (dh, dw), flat.shape[-1], Wp)
    g = np.zeros((N, O, OH, Wp), dtype=grad.dtype)               # zeros between the rows
    g[..., :OW] = grad
    g = g.reshape(N, O, P).astype(np.float64)
    sums = np.stack([np.einsum("nop,nop->no", g, flat[:, :, start:start + P])
                     for start in off], axis=-1)                 # (N, O, taps), per sample
    return _sum_over_samples(sums).astype(grad.dtype).reshape(weight_shape)


def _sum_over_samples(partial):
    """partial (N, ...) summed over samples one after another, in float64."""
    acc = np.zeros(partial.shape[1:], dtype=np.float64)
    for n in range(partial.shape[0]):
        acc += partial[n]
    return acc


def _windows(stride, dilation, out_hw, i, j):
    """The index of tap (i, j)'s strided window in a zero-padded plane."""
    (sh, sw), (dh, dw), (OH, OW) = stride, dilation, out_hw
    return (Ellipsis, slice(i * dh, i * dh + (OH - 1) * sh + 1, sh),
            slice(j * dw, j * dw + (OW - 1) * sw + 1, sw))


def depthwise_direct_forward(x, weight, bias, stride, padding, dilation):
    """Depthwise conv2d, any stride: per tap, its weight times a strided window of the
    zero-padded plane, added to the output."""
    op = "depthwise_direct_forward"
    checks.same_float(op, input=x, weight=weight)
    stride, (ph, pw), dilation, (N, O, OH, OW) = _depthwise_geometry(
        op, x.shape, weight.shape, stride, padding, dilation)
    kh, kw = weight.shape[2:]
    xp = np.pad(np.repeat(x, O // x.shape[1], axis=1), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, O, OH, OW), dtype=x.dtype)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    for i in range(kh):
        for j in range(kw):
            y += weight[None, :, 0, i, j, None, None] * xp[_windows(stride, dilation, (OH, OW), i, j)]
    return y


def depthwise_direct_backward_input(grad, weight, input_shape, stride, padding, dilation):
    """dL/dx, any stride: each input plane's multiplier output planes, tap by tap,
    scattered back through the forward's windows onto a zero-padded plane."""
    op = "depthwise_direct_backward_input"
    checks.same_float(op, grad=grad, weight=weight)
    stride, (ph, pw), dilation, (N, O, OH, OW) = _depthwise_geometry(
        op, input_shape, weight.shape, stride, padding, dilation)
    _conv_check_grad(op, grad, (N, O, OH, OW))
    C, H, W = (int(v) for v in input_shape[1:])
    kh, kw = weight.shape[2:]
    mult = O // C
    gp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=grad.dtype)
    for m in range(mult):
        o = np.arange(C) * mult + m                              # plane c's m-th output plane
        for i in range(kh):
            for j in range(kw):
                gp[_windows(stride, dilation, (OH, OW), i, j)] += (
                    weight[None, o, 0, i, j, None, None] * grad[:, o])
    return gp[:, :, ph:ph + H, pw:pw + W].copy()                 # drop the border


def depthwise_direct_backward_weight(grad, x, weight_shape, stride, padding, dilation):
    """dL/dw, any stride: per (sample, plane) and tap, the output gradient times the
    forward's window, in float64; then summed over samples."""
    op = "depthwise_direct_backward_weight"
    checks.same_float(op, grad=grad, input=x)
    stride, (ph, pw), dilation, (N, O, OH, OW) = _depthwise_geometry(
        op, x.shape, weight_shape, stride, padding, dilation)
    _conv_check_grad(op, grad, (N, O, OH, OW))
    kh, kw = weight_shape[2:]
    xp = np.pad(np.repeat(x, O // x.shape[1], axis=1),
                ((0, 0), (0, 0), (ph, ph), (pw, pw))).astype(np.float64)
    g = grad.astype(np.float64)
    sums = np.stack([np.einsum("nohw,nohw->no", g, xp[_windows(stride, dilation, (OH, OW), i, j)])
                     for i in range(kh) for j in range(kw)], axis=-1)
    return _sum_over_samples(sums).astype(grad.dtype).reshape(weight_shape)
