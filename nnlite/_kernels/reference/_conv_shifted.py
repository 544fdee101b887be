"""The shifted product of ``nnlite/_kernels/_shifted_gemm.h`` in NumPy: a convolution as a
sum of shifted views.

A stride-1, one-group convolution never needs the im2col copy. Pad each input
plane with zeros and lay the planes one after another in one flat array. Count
the output pixels along the *padded* width, ``p = oh * Wp + ow``; then tap
``(c, i, j)`` of every output pixel reads the flat array at ``p + off`` with one
fixed offset per tap, ``off = c * S + i * dh * Wp + j * dw`` (``S``: the distance
between two planes). So the whole convolution is

    out[o, p] = sum over taps k of  w[o, k] * flat[off[k] + p]

— for each tap, one weight column times one *view* of the input, shifted by
``off[k]``. The columns ``ow >= OW`` fall between two rows of the output: they
are computed and dropped. The compiled kernel does the same sum with a
register-blocked micro-kernel (and fused multiply-adds where the machine has
them), so the two agree to rounding. ``conv_plan`` in ``_conv.pyx`` says which
shapes take this path.
"""
import numpy as np

from .. import checks
from ._conv import _conv_geometry

__all__ = ["conv2d_shifted_forward", "shifted_offsets"]


def shifted_offsets(channels, kernel_size, dilation, plane_stride, padded_width):
    """off[k] for the taps k = (c, i, j) in order: where each tap's view starts."""
    kh, kw = kernel_size
    dh, dw = dilation
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kh), np.arange(kw), indexing="ij")
    return (c * plane_stride + i * dh * padded_width + j * dw).reshape(-1)


def conv2d_shifted_forward(x, weight, bias, padding, dilation):
    """conv2d with stride 1 and one group, computed as the shifted product."""
    op = "conv2d_shifted_forward"
    checks.same_float(op, input=x, weight=weight)
    _, (ph, pw), (dh, dw), _, (N, O, OH, OW) = _conv_geometry(
        op, x.shape, weight.shape, (1, 1), padding, dilation, 1)
    _, C, H, W = x.shape
    kh, kw = weight.shape[2:]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    S = Hp * Wp + dw * (kw - 1)           # a plane, and the gap the last row's views read into
    P = OH * Wp                           # output pixels counted along the padded width
    off = shifted_offsets(C, (kh, kw), (dh, dw), S, Wp)
    w = weight.reshape(O, C * kh * kw)
    y = np.empty((N, O, OH, OW), dtype=x.dtype)
    for n in range(N):
        flat = np.zeros(C * S, dtype=x.dtype)                    # the planes, end to end
        flat.reshape(C, S)[:, :Hp * Wp].reshape(C, Hp, Wp)[:, ph:ph + H, pw:pw + W] = x[n]
        out = np.zeros((O, P), dtype=x.dtype)
        for k, start in enumerate(off):                          # one shifted view per tap
            out += np.multiply.outer(w[:, k], flat[start:start + P])
        y[n] = out.reshape(O, OH, Wp)[:, :, :OW]                 # drop the columns between rows
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return y
