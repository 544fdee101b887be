"""NumPy twins of the kernels in ``nnlite/_kernels/_conv.pyx``.

2-D convolution and pooling on (N, C, H, W) arrays.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks

# Convolution and pooling on (N, C, H, W) arrays. Weights use PyTorch's layout
# (out_channels, in_channels / groups, kH, kW); 1-D ops arrive as 2-D with H == 1.
# The compiled kernels gather every output pixel's receptive field into a column
# matrix (im2col) and run one GEMM per group; these twins do the same gather with
# NumPy slicing, one kernel tap (i, j) at a time. Equal to the compiled kernels to
# rounding (BLAS and NumPy sum in different orders), except max pooling: exact.

def _conv_check_dtype(op, **arrays):
    """All float operands are float32 or float64 and share one dtype."""
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(a).__name__}")
    (first_name, first), *rest = arrays.items()
    if first.dtype != np.float32 and first.dtype != np.float64:
        raise TypeError(f"{op}: expected float32 or float64 arrays, got {first_name} of dtype {first.dtype}")
    for name, a in arrays.items():
        checks.native(op, name, a)
    for name, a in rest:
        if a.dtype != first.dtype:
            raise TypeError(f"{op}: all float arrays must share one dtype, got {first_name} "
                            f"{first.dtype} and {name} {a.dtype}")


def _conv_pair(op, name, value, minimum):
    """A (h, w) pair of ints, each >= minimum."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= minimum
        for v in value)
    if not ok:
        raise ValueError(f"{op}: {name} must be a pair of ints >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def _conv_shape(op, name, shape):
    """A 4-D shape given as a tuple of non-negative ints."""
    ok = isinstance(shape, (tuple, list)) and len(shape) == 4 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 0
        for v in shape)
    if not ok:
        raise ValueError(f"{op}: {name} must be a 4-D shape (N, C, H, W) of non-negative ints, "
                         f"got {shape!r}")
    return tuple(int(v) for v in shape)


def _conv_geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """Check a convolution's arguments; return them normalised and the output shape."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {tuple(w_shape)}")
    stride = _conv_pair(op, "stride", stride, 1)
    padding = _conv_pair(op, "padding", padding, 0)
    dilation = _conv_pair(op, "dilation", dilation, 1)
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C, H, W = (int(v) for v in x_shape)
    O, Cg, kh, kw = (int(v) for v in w_shape)
    shapes = f"input shape {tuple(x_shape)}, weight shape {tuple(w_shape)}"
    if C % groups:
        raise ValueError(f"{op}: input has {C} channels, not divisible by groups={groups}; {shapes}")
    if O % groups:
        raise ValueError(f"{op}: weight has {O} output channels, not divisible by groups={groups}; {shapes}")
    if Cg * groups != C:
        raise ValueError(f"{op}: input has {C} channels but weight expects {Cg * groups} "
                         f"(groups={groups}); {shapes}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{op}: kernel size must be at least (1, 1), got ({kh}, {kw}); {shapes}")
    out = [(size + 2 * p - d * (k - 1) - 1) // s + 1
           for size, k, s, p, d in zip((H, W), (kh, kw), stride, padding, dilation)]
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size would be ({out[0]}, {out[1]}), expected at least (1, 1); "
                         f"{shapes}, stride={stride}, padding={padding}, dilation={dilation}")
    # the compiled loops multiply these sizes in 64-bit integers: refuse what would wrap
    checks.fits(op, "the zero-padded input", N, C, H + 2 * padding[0], W + 2 * padding[1])
    checks.fits(op, "the multiply-adds (N x O x OH x OW x C/groups x kH x kW)",
                N, O, out[0], out[1], Cg, kh, kw)
    return stride, padding, dilation, groups, (N, O, out[0], out[1])


def _conv_check_grad(op, grad, expected):
    if grad.shape != tuple(expected):
        raise ValueError(f"{op}: grad has shape {grad.shape} but the convolution's output "
                         f"shape is {tuple(expected)}")


def _conv_columns(x, kernel_size, stride, padding, dilation, out_hw):
    """im2col: (N, C, H, W) -> (N, C, kH, kW, OH, OW), the input under tap (i, j) of each window."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW) = kernel_size, stride, padding, dilation, out_hw
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((N, C, kh, kw, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh,
                                  j * dw: j * dw + sw * (OW - 1) + 1: sw]
    return cols


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y[n, o] = bias[o] + sum over (c, i, j) in o's group of weight[o, c, i, j] * x[n, c, oh*s + i*d - p, ...]."""
    op = "conv2d"
    if bias is None:
        _conv_check_dtype(op, input=x, weight=weight)
    else:
        _conv_check_dtype(op, input=x, weight=weight, bias=bias)
    stride, padding, dilation, groups, out_shape = _conv_geometry(
        op, x.shape, weight.shape, stride, padding, dilation, groups)
    N, O, OH, OW = out_shape
    if bias is not None and bias.shape != (O,):
        raise ValueError(f"{op}: bias must have shape ({O},), got {bias.shape}")
    G, Og, Kg = groups, O // groups, int(np.prod(weight.shape[1:]))
    cols = _conv_columns(x, weight.shape[2:], stride, padding, dilation, (OH, OW))
    cols = cols.reshape(N, G, Kg, OH * OW)
    w = weight.reshape(G, Og, Kg)
    y = np.empty((N, G, Og, OH * OW), dtype=x.dtype)
    for g in range(G):
        y[:, g] = w[g] @ cols[:, g]
    y = y.reshape(out_shape)
    if bias is not None:
        y += bias[:, None, None]
    return y


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups):
    """dL/dx: each output gradient flows back through the weight to every input under its window (col2im)."""
    op = "conv2d_backward_input"
    _conv_check_dtype(op, grad=grad, weight=weight)
    input_shape = _conv_shape(op, "input_shape", input_shape)
    stride, padding, dilation, groups, out_shape = _conv_geometry(
        op, input_shape, weight.shape, stride, padding, dilation, groups)
    _conv_check_grad(op, grad, out_shape)
    N, C, H, W = input_shape
    _, O, OH, OW = out_shape
    kh, kw = weight.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    G, Og, Kg = groups, O // groups, int(np.prod(weight.shape[1:]))
    g_out = grad.reshape(N, G, Og, OH * OW)
    w = weight.reshape(G, Og, Kg)
    cols = np.empty((N, G, Kg, OH * OW), dtype=grad.dtype)
    for g in range(G):
        cols[:, g] = w[g].T @ g_out[:, g]
    cols = cols.reshape(N, C, kh, kw, OH, OW)
    grad_xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            grad_xp[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh,
                    j * dw: j * dw + sw * (OW - 1) + 1: sw] += cols[:, :, i, j]
    return np.ascontiguousarray(grad_xp[:, :, ph: ph + H, pw: pw + W])


def conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups):
    """dL/dweight[o, c, i, j] = sum over the batch and output pixels of grad[n, o] * (tap (i, j) of x[n, c])."""
    op = "conv2d_backward_weight"
    _conv_check_dtype(op, grad=grad, input=x)
    weight_shape = _conv_shape(op, "weight_shape", weight_shape)
    stride, padding, dilation, groups, out_shape = _conv_geometry(
        op, x.shape, weight_shape, stride, padding, dilation, groups)
    _conv_check_grad(op, grad, out_shape)
    N, O, OH, OW = out_shape
    G, Og, Kg = groups, O // groups, int(np.prod(weight_shape[1:]))
    cols = _conv_columns(x, weight_shape[2:], stride, padding, dilation, (OH, OW))
    cols = cols.reshape(N, G, Kg, OH * OW)
    g_out = grad.reshape(N, G, Og, OH * OW)
    grad_w = np.empty((G, Og, Kg), dtype=x.dtype)
    for g in range(G):
        grad_w[g] = np.tensordot(g_out[:, g], cols[:, g], axes=([0, 2], [0, 2]))
    return grad_w.reshape(weight_shape)


def conv2d_backward_bias(grad):
    """dL/dbias[o] = sum of grad[:, o] over the batch and every output pixel (accumulated in float64)."""
    op = "conv2d_backward_bias"
    _conv_check_dtype(op, grad=grad)
    if grad.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D grad (N, O, OH, OW), got shape {grad.shape}")
    return grad.sum(axis=(0, 2, 3), dtype=np.float64).astype(grad.dtype)


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
    k = _conv_pair(op, "kernel_size", kernel_size, 1)
    s = _conv_pair(op, "stride", stride, 1)
    p = _conv_pair(op, "padding", padding, 0)
    d = _conv_pair(op, "dilation", dilation, 1)
    for ki, pi, di in zip(k, p, d):
        if pi > (di * (ki - 1) + 1) // 2:
            raise ValueError(f"{op}: padding {p} must be at most half the effective kernel size "
                             f"(kernel_size={k}, dilation={d})")
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
    _conv_check_dtype(op, input=x)
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
    _conv_check_dtype(op, grad=grad)
    input_shape = _conv_shape(op, "input_shape", input_shape)
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
    grad_x = np.zeros((N * C, H * W), dtype=grad.dtype)
    planes = np.arange(N * C)[:, None]
    L = grad.shape[2] * grad.shape[3]
    np.add.at(grad_x, (planes, indices.reshape(N * C, L)), grad.reshape(N * C, L))
    return grad_x.reshape(input_shape)


def _avg_pool_divisors(op, shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, dtype):
    """Geometry of an average pooling plus the (OH, OW) divisor of each window, PyTorch's rule."""
    k, s, p, _, (OH, OW) = _pool_geometry(op, shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    if divisor_override is not None:
        if (isinstance(divisor_override, (bool, np.bool_))
                or not isinstance(divisor_override, (int, np.integer)) or divisor_override == 0):
            raise ValueError(f"{op}: divisor_override must be None or a non-zero int, "
                             f"got {divisor_override!r}")
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
    _conv_check_dtype(op, input=x)
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
    _conv_check_dtype(op, grad=grad)
    input_shape = _conv_shape(op, "input_shape", input_shape)
    (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor = _avg_pool_divisors(
        op, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
        grad.dtype)
    N, C, H, W = input_shape
    if grad.shape != (N, C, OH, OW):
        raise ValueError(f"{op}: grad has shape {grad.shape} but the pooling's output shape is "
                         f"{(N, C, OH, OW)}")
    extra_h = max(0, (OH - 1) * sh + kh - (H + 2 * ph))
    extra_w = max(0, (OW - 1) * sw + kw - (W + 2 * pw))
    grad_xp = np.zeros((N, C, H + 2 * ph + extra_h, W + 2 * pw + extra_w), dtype=grad.dtype)
    share = grad / divisor
    for i in range(kh):
        for j in range(kw):
            grad_xp[:, :, i: i + sh * (OH - 1) + 1: sh, j: j + sw * (OW - 1) + 1: sw] += share
    return np.ascontiguousarray(grad_xp[:, :, ph: ph + H, pw: pw + W])


__all__ = sorted(n for n, v in list(globals().items())
                 if callable(v) and getattr(v, "__module__", None) == __name__ and not n.startswith("_"))
