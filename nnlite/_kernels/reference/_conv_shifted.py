"""The shifted product of ``nnlite/_kernels/_shifted_gemm.h`` in NumPy: a convolution as a
sum of shifted views, and its two gradients done the same way.

A stride-1, one-group convolution never needs the im2col copy. Pad each input
plane with zeros and lay the planes one after another in one flat array. Count
the output pixels along the *padded* width, ``p = oh * Wp + ow``; then tap
``(c, i, j)`` of every output pixel reads the flat array at ``p + off`` with one
fixed offset per tap, ``off = c * S + i * dh * Wp + j * dw`` (``S``: the distance
between two planes). So the whole convolution is

    out[o, p] = sum over taps k of  w[o, k] * flat[off[k] + p]

— for each tap, one weight column times one *view* of the input, shifted by
``off[k]``. The columns ``ow >= OW`` fall between two rows of the output: they
are computed and dropped.

The input gradient is the same product run backwards: the output gradient,
bordered by the kernel's reach less the padding, times the kernel flipped in
both directions with its input and output channels swapped. The weight gradient
reads the same views as the forward, and multiplies each by the output gradient
laid on the padded-width grid (zeros between rows, so the dropped columns add
nothing):

    gw[o, k] = sum over samples n and pixels p of  g[n, o, p] * flat[n][off[k] + p]

The compiled kernels do these sums with register-blocked micro-kernels (and
fused multiply-adds where the machine has them), so the twins agree with them to
rounding. ``conv_plan`` in ``_conv.pyx`` says which shapes take this path.
"""
import numpy as np

from .. import checks
from ._conv import _conv_check_grad, _conv_geometry

__all__ = ["conv2d_shifted_backward_input", "conv2d_shifted_backward_weight",
           "conv2d_shifted_forward", "flat_planes", "shifted_offsets"]


def shifted_offsets(channels, kernel_size, dilation, plane_stride, padded_width):
    """off[k] for the taps k = (c, i, j) in order: where each tap's view starts."""
    kh, kw = kernel_size
    dh, dw = dilation
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kh), np.arange(kw), indexing="ij")
    return (c * plane_stride + i * dh * padded_width + j * dw).reshape(-1)


def flat_planes(planes, border, gap):
    """planes (..., H, W) with a zero border (bh, bw), each plane flattened and followed
    by ``gap`` zeros (where the last row's views read past the plane): (..., S), and Wp."""
    bh, bw = border
    H, W = planes.shape[-2:]
    Hp, Wp = H + 2 * bh, W + 2 * bw
    flat = np.zeros(planes.shape[:-2] + (Hp * Wp + gap,), dtype=planes.dtype)
    flat[..., :Hp * Wp].reshape(planes.shape[:-2] + (Hp, Wp))[..., bh:bh + H, bw:bw + W] = planes
    return flat, Wp


def _shifted_product(src, wmat, border, kernel_size, dilation):
    """dst[n] = the shifted product of wmat (Co, Ci*kh*kw) with src[n]'s bordered planes."""
    N, Ci, Hi, Wi = src.shape
    (kh, kw), (dh, dw) = kernel_size, dilation
    Ho = Hi + 2 * border[0] - dh * (kh - 1)
    Wo = Wi + 2 * border[1] - dw * (kw - 1)
    flat, Wp = flat_planes(src, border, dw * (kw - 1))           # (N, Ci, S)
    S = flat.shape[-1]
    P = Ho * Wp                           # output pixels counted along the padded width
    off = shifted_offsets(Ci, kernel_size, dilation, S, Wp)
    dst = np.empty((N, wmat.shape[0], Ho, Wo), dtype=src.dtype)
    for n in range(N):
        planes = flat[n].reshape(-1)                             # the planes, end to end
        out = np.zeros((wmat.shape[0], P), dtype=src.dtype)
        for k, start in enumerate(off):                          # one shifted view per tap
            out += np.multiply.outer(wmat[:, k], planes[start:start + P])
        dst[n] = out.reshape(-1, Ho, Wp)[:, :, :Wo]              # drop the columns between rows
    return dst


def conv2d_shifted_forward(x, weight, bias, padding, dilation):
    """conv2d with stride 1 and one group, computed as the shifted product."""
    op = "conv2d_shifted_forward"
    checks.same_float(op, input=x, weight=weight)
    _, padding, dilation, _, (N, O, OH, OW) = _conv_geometry(
        op, x.shape, weight.shape, (1, 1), padding, dilation, 1)
    y = _shifted_product(x, weight.reshape(O, -1), padding, weight.shape[2:], dilation)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return y


def conv2d_shifted_backward_input(grad, weight, input_shape, padding, dilation):
    """dL/dx of a stride-1, one-group conv2d: the shifted product of the flipped,
    channel-swapped kernel with the output gradient."""
    op = "conv2d_shifted_backward_input"
    checks.same_float(op, grad=grad, weight=weight)
    _, (ph, pw), (dh, dw), _, out_shape = _conv_geometry(
        op, input_shape, weight.shape, (1, 1), padding, dilation, 1)
    _conv_check_grad(op, grad, out_shape)
    O, C, kh, kw = weight.shape
    border = (dh * (kh - 1) - ph, dw * (kw - 1) - pw)   # the kernel's reach less the padding
    if min(border) < 0:
        raise ValueError(f"{op}: padding {(ph, pw)} beyond the kernel's reach "
                         f"{(dh * (kh - 1), dw * (kw - 1))}: the shifted product needs a "
                         f"non-negative border")
    # w'[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, O * kh * kw)
    return _shifted_product(grad, flipped, border, (kh, kw), (dh, dw))


def conv2d_shifted_backward_weight(grad, x, weight_shape, padding, dilation):
    """dL/dw of a stride-1, one-group conv2d: per tap, the output gradient on the
    padded-width grid times the forward's shifted view, summed over samples."""
    op = "conv2d_shifted_backward_weight"
    checks.same_float(op, grad=grad, input=x)
    _, padding, (dh, dw), _, out_shape = _conv_geometry(
        op, x.shape, weight_shape, (1, 1), padding, dilation, 1)
    _conv_check_grad(op, grad, out_shape)
    N, O, OH, OW = out_shape
    C, kh, kw = weight_shape[1:]
    flat, Wp = flat_planes(x, padding, dw * (kw - 1))            # as in the forward
    S = flat.shape[-1]
    P = OH * Wp
    off = shifted_offsets(C, (kh, kw), (dh, dw), S, Wp)
    g = np.zeros((N, O, OH, Wp), dtype=grad.dtype)               # zeros between the rows
    g[..., :OW] = grad
    g = g.reshape(N, O, P)
    planes = flat.reshape(N, C * S)
    gw = np.zeros((O, len(off)), dtype=grad.dtype)
    for k, start in enumerate(off):
        gw[:, k] = np.einsum("nop,np->o", g, planes[:, start:start + P])
    return gw.reshape(weight_shape)
