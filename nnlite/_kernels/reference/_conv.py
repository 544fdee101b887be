"""NumPy twins of the kernels in ``nnlite/_kernels/_conv.pyx``.

2-D convolution on (N, C, H, W) arrays (the pooling twins are in ``_pool.py``).

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
A fused ReLU (``conv2d_forward(..., activation="relu")``) is one last step that every
compiled algorithm takes alike, on the output it has computed; it is here, and the
per-algorithm twins (``_conv_shifted.py`` and the others), which show how each
algorithm computes the convolution, leave it out.
"""
import numpy as np

from .. import checks

__all__ = ["conv2d_backward_bias", "conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward"]

# Weights use PyTorch's layout (out_channels, in_channels / groups, kH, kW); 1-D ops
# arrive as 2-D with H == 1. These twins gather every output pixel's receptive field
# into a column matrix (im2col) with NumPy slicing, one kernel tap (i, j) at a time,
# and multiply once per group. The compiled kernels take one of five algorithms
# (their conv_plan); the shifted product's own twin is in _conv_shifted.py. Equal
# to the compiled kernels to rounding (BLAS and NumPy sum in different orders).

def _conv_geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """Check a convolution's arguments; return them normalised and the output shape."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {tuple(w_shape)}")
    stride = checks.int_pair(op, "stride", stride, 1)
    padding = checks.int_pair(op, "padding", padding, 0)
    dilation = checks.int_pair(op, "dilation", dilation, 1)
    groups = checks.integer(op, "groups", groups, 1, what="a positive int")
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


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, activation=None):
    """y[n, o] = bias[o] + sum over (c, i, j) in o's group of weight[o, c, i, j] * x[n, c, oh*s + i*d - p, ...];
    with ``activation="relu"``, then 0 where y < 0 (NaN and -0 stay, as in relu_forward)."""
    op = "conv2d"
    relu = checks.fused_relu("conv2d_forward", activation)
    if bias is None:
        checks.same_float(op, input=x, weight=weight)
    else:
        checks.same_float(op, input=x, weight=weight, bias=bias)
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
    return np.where(y < 0, y.dtype.type(0), y) if relu else y


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups):
    """dL/dx: each output gradient flows back through the weight to every input under its window (col2im)."""
    op = "conv2d_backward_input"
    checks.same_float(op, grad=grad, weight=weight)
    input_shape = checks.shape4(op, "input_shape", input_shape)
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
    checks.same_float(op, grad=grad, input=x)
    weight_shape = checks.shape4(op, "weight_shape", weight_shape)
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
    checks.same_float(op, grad=grad)
    if grad.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D grad (N, O, OH, OW), got shape {grad.shape}")
    return grad.sum(axis=(0, 2, 3), dtype=np.float64).astype(grad.dtype)
