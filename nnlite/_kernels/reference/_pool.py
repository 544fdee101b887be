"""NumPy twins of the kernels in ``nnlite/_kernels/_pool.pyx``.

Max and average pooling on (N, C, H, W) arrays, with PyTorch's arguments.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises. Max
pooling is equal bit for bit (a comparison does not round), average pooling to
rounding.
"""
import numpy as np

from .. import checks

__all__ = ["avg_pool2d_backward", "avg_pool2d_forward", "max_pool2d_backward", "max_pool2d_forward"]


def _pool_out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length; with ceil_mode a window starting in the right padding is dropped."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(op, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Check a pooling's arguments; return them normalised and the output (OH, OW)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    k = checks.int_pair(op, "kernel_size", kernel_size, 1)
    s = checks.int_pair(op, "stride", stride, 1)
    p = checks.int_pair(op, "padding", padding, 0)
    d = checks.int_pair(op, "dilation", dilation, 1)
    ceil_mode = checks.flag(op, "ceil_mode", ceil_mode)
    # PyTorch's rule for max and average pooling: padding at most half the kernel size. Dilation
    # does not raise the limit, though it widens the window (PyTorch checks both, and the
    # kernel-size half is the smaller one).
    if any(pi > ki // 2 for ki, pi in zip(k, p)):
        raise ValueError(f"{op}: padding must be at most half the kernel size, got padding={p} "
                         f"and kernel_size={k}")
    H, W = (int(v) for v in x_shape[2:])
    planes = int(x_shape[0]) * int(x_shape[1])
    checks.fits(op, "the zero-padded input", planes, H + 2 * p[0], W + 2 * p[1])
    out = (_pool_out_size(H, k[0], s[0], p[0], d[0], ceil_mode),
           _pool_out_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size would be {out}, expected at least (1, 1); input shape "
                         f"{tuple(x_shape)}, kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    # With dilation a window at the left edge can step over the whole input; PyTorch then
    # returns -inf with an index outside the plane. Refuse instead.
    for axis, size in enumerate((H, W)):
        o = 0
        while o * s[axis] - p[axis] < 0:
            start = o * s[axis] - p[axis]
            taps_skipped = (-start + d[axis] - 1) // d[axis]
            if taps_skipped >= k[axis] or start + taps_skipped * d[axis] >= size:
                raise ValueError(f"{op}: window {o} along {'HW'[axis]} covers only padding; input shape "
                                 f"{tuple(x_shape)}, kernel_size={k}, padding={p}, dilation={d}")
            o += 1
    checks.fits(op, "the window taps (planes x OH x OW x kH x kW)", planes, out[0], out[1], k[0], k[1])
    return k, s, p, d, out


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Each window's maximum and its flat index in the (H*W) input plane, like PyTorch's return_indices.

    Ties keep the first position in row-major window order; a NaN wins (the last NaN seen).
    """
    op = "max_pool2d"
    checks.same_float(op, input=x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW) = _pool_geometry(
        op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    N, C, H, W = x.shape
    h0 = np.arange(OH) * sh - ph
    w0 = np.arange(OW) * sw - pw
    # The argmax starts at the window's first tap inside the input, as PyTorch's loop does.
    h_first = np.where(h0 < 0, h0 + (-h0 + dh - 1) // dh * dh, h0)
    w_first = np.where(w0 < 0, w0 + (-w0 + dw - 1) // dw * dw, w0)
    indices = np.empty((N, C, OH, OW), dtype=np.int64)
    indices[...] = h_first[:, None] * W + w_first[None, :]
    y = np.full((N, C, OH, OW), -np.inf, dtype=x.dtype)
    for i in range(kh):
        ih = h0 + i * dh
        for j in range(kw):
            iw = w0 + j * dw
            inside = ((ih >= 0) & (ih < H))[:, None] & ((iw >= 0) & (iw < W))[None, :]
            v = x[:, :, np.clip(ih, 0, H - 1)[:, None], np.clip(iw, 0, W - 1)[None, :]]
            take = inside & ((v > y) | np.isnan(v))
            y = np.where(take, v, y)
            indices = np.where(take, ih[:, None] * W + iw[None, :], indices)
    return y, indices


def max_pool2d_backward(grad, indices, input_shape):
    """Route each output gradient to the input position that won its window (scatter-add by index)."""
    op = "max_pool2d_backward"
    checks.same_float(op, grad=grad)
    input_shape = checks.shape4(op, "input_shape", input_shape)
    checks.allocatable(op, "the input gradient", input_shape, grad.itemsize)
    N, C, H, W = input_shape
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError(f"{op}: indices must be an int64 array, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    checks.native(op, "indices", indices)
    if grad.ndim != 4 or grad.shape[:2] != (N, C) or indices.shape != grad.shape:
        raise ValueError(f"{op}: grad and indices must have one shape (N, C, OH, OW) with (N, C) = "
                         f"{(N, C)}; got grad {grad.shape}, indices {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= H * W):
        raise ValueError(f"{op}: indices must lie in [0, {H * W}) for input shape {input_shape}, "
                         f"got range [{indices.min()}, {indices.max()}]")
    if grad.size == 0:   # nothing to scatter, however many planes of no windows
        return np.zeros(input_shape, dtype=grad.dtype)
    grad_x = np.zeros((N * C, H * W), dtype=grad.dtype)
    planes = np.arange(N * C)[:, None]
    L = grad.shape[2] * grad.shape[3]
    np.add.at(grad_x, (planes, indices.reshape(N * C, L)), grad.reshape(N * C, L))
    return grad_x.reshape(input_shape)


def _avg_pool_divisors(op, shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, dtype, grad=None):
    """Geometry of an average pooling plus the (OH, OW) divisor of each window, PyTorch's rule.
    A backward's ``grad`` is checked against the output shape before any divisor is made (an
    input_shape of 2**31 rows would make 2**30 of them first)."""
    k, s, p, _, (OH, OW) = _pool_geometry(op, shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    count_include_pad = checks.flag(op, "count_include_pad", count_include_pad)
    divisor_override = checks.divisor_override(op, divisor_override)
    if grad is not None and grad.shape != (shape[0], shape[1], OH, OW):
        raise ValueError(f"{op}: grad has shape {grad.shape} but the pooling's output shape is "
                         f"{(shape[0], shape[1], OH, OW)}")
    if divisor_override is not None:
        return k, s, p, (OH, OW), np.full((OH, OW), divisor_override, dtype=dtype)
    sizes = []
    for size, out, ki, si, pi in zip(shape[2:], (OH, OW), k, s, p):
        start = np.arange(out) * si - pi
        end = np.minimum(start + ki, size + pi)  # with padding, but not past the right padding
        sizes.append((end - start) if count_include_pad
                     else np.minimum(end, size) - np.maximum(start, 0))
    return k, s, p, (OH, OW), (sizes[0][:, None] * sizes[1][None, :]).astype(dtype)


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Each window's sum divided by its divisor: the window size, the in-input part of it, or an override."""
    op = "avg_pool2d"
    checks.same_float(op, input=x)
    (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor = _avg_pool_divisors(
        op, x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, x.dtype)
    N, C, H, W = x.shape
    # Zero padding wide enough for ceil_mode's last window, which may run past the padding.
    extra_h = max(0, (OH - 1) * sh + kh - (H + 2 * ph))
    extra_w = max(0, (OW - 1) * sw + kw - (W + 2 * pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)))
    total = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            total += xp[:, :, i: i + sh * (OH - 1) + 1: sh, j: j + sw * (OW - 1) + 1: sw]
    return total / divisor


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """Each input under a window receives grad / divisor of that window."""
    op = "avg_pool2d_backward"
    checks.same_float(op, grad=grad)
    input_shape = checks.shape4(op, "input_shape", input_shape)
    (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor = _avg_pool_divisors(
        op, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
        grad.dtype, grad)
    N, C, H, W = input_shape
    extra_h = max(0, (OH - 1) * sh + kh - (H + 2 * ph))
    extra_w = max(0, (OW - 1) * sw + kw - (W + 2 * pw))
    grad_xp = np.zeros((N, C, H + 2 * ph + extra_h, W + 2 * pw + extra_w), dtype=grad.dtype)
    share = grad / divisor
    for i in range(kh):
        for j in range(kw):
            grad_xp[:, :, i: i + sh * (OH - 1) + 1: sh, j: j + sw * (OW - 1) + 1: sw] += share
    return np.ascontiguousarray(grad_xp[:, :, ph: ph + H, pw: pw + W])
