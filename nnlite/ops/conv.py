"""Convolution and pooling, forward and backward side by side.

A 2-D convolution ``y = conv(x, w)`` is linear in ``x`` and in ``w``. Its two
gradients are the adjoints of those linear maps:

* grad_input  = conv2d_backward_input(g, w)   (a "transposed convolution" of g)
* grad_weight = conv2d_backward_weight(g, x)  (a correlation of g with x)

The first of them, applied to an input rather than to a gradient, is itself a
layer: the transposed convolution (``conv_transpose2d``), which upsamples.

Each of these is again linear in both arguments, and the adjoints close the
circle: the derivative of grad_input with respect to g is the forward
convolution, with respect to w it is a grad_weight, and so on. Writing the three
as Functions that call each other in their backward gives exact derivatives of
any order, as PyTorch's double-backward does.

1-D convolution and pooling run through the 2-D kernels with a height of 1. The
convolution's Functions below take the (N, C, L) arrays of a 1-D convolution as
they are and hand the kernels (N, C, 1, L) views of them, so a 1-D convolution
records one Function, as a 2-D one does, and its gradients come back in the
3-D shapes of its arguments.
"""
import math
import numbers

import numpy as np

from .._kernels import K
from .._kernels.checks import is_int
from ..autograd import Function, chosen_by, constant
from ..tensor import Tensor
from .indexing import gather
from .padding import pad
from .broadcasting import expand
from .casting import cast
from .opmath import is_half
from .pointwise import ReluGrad, relu
from .shape import reshape, unsqueeze, squeeze


def _pair(v, what):
    """(height, width) from an int or from a tuple of one or two ints (PyTorch's geometry arguments)."""
    items = (v,) if is_int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if items is None or len(items) not in (1, 2) or not all(is_int(i) for i in items):
        raise TypeError(f"{what} must be an int or a tuple of one or two ints, got {type(v).__name__} {v!r}")
    return (int(items[0]),) * 2 if len(items) == 1 else (int(items[0]), int(items[1]))


def _one(v, what):
    """A 1-D geometry argument (an int or a tuple of one int) as the (1, v) the 2-D kernels take."""
    items = (v,) if is_int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if items is None or len(items) != 1 or not is_int(items[0]):
        raise TypeError(f"{what} must be an int or a tuple of one int, got {type(v).__name__} {v!r}")
    return 1, int(items[0])


def _groups(op, groups):
    if not is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {type(groups).__name__} {groups!r}")
    return int(groups)


def _default_stride(stride):
    """True when a pooling ``stride`` was left out (None, or PyTorch's empty list): it is the kernel size."""
    return stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)


def _planes(array):
    """A contiguous array as the 2-D kernels take it: (N, C, L) as (N, C, 1, L), 4-D as it is."""
    array = np.ascontiguousarray(array)
    return array[:, :, None, :] if array.ndim == 3 else array


def _planes_shape(shape):
    """The 2-D kernels' spelling of an (N, C, L) shape: (N, C, 1, L); a 4-D shape as it is."""
    return (shape[0], shape[1], 1, shape[2]) if len(shape) == 3 else tuple(shape)


# ------------------------------------------------------------- convolution ---

class Conv2dFunction(Function):
    """y[n, o] = b[o] + sum_{c, i, j} w[o, c, i, j] x[n, c, s*h + d*i - p, s*w + d*j - p]."""
    activation = None

    def forward(self, x, weight, bias, geometry):
        self.geometry = geometry
        y = K.conv2d_forward(_planes(x), _planes(weight), bias, *geometry, self.activation)
        return y[:, :, 0, :] if x.ndim == 3 else y

    def backward(self, grad):
        x, weight, bias, geo = self.inputs
        gx = Conv2dInputGrad.apply(grad, weight, x.shape, geo) if x.requires_grad else None
        gw = Conv2dWeightGrad.apply(grad, x, weight.shape, geo) if weight.requires_grad else None
        gb = ConvBiasGrad.apply(grad) if bias is not None and bias.requires_grad else None
        return gx, gw, gb, None


class Conv2dReLUFunction(Conv2dFunction):
    """relu(conv2d(x)), the output clamped by the convolution kernel (conv2d_relu says how); the
    gradient is masked where the output is 0 before the convolution's backward."""
    activation = "relu"
    save_output = True   # the mask comes from the output

    def backward(self, grad):
        # the mask comes from the pre-activation, which x, weight and bias all move: zero to each
        return super().backward(chosen_by(ReluGrad.apply(grad, self.out.detach()), self.out))


class Conv2dInputGrad(Function):
    """grad_x = conv^T(g, w). Adjoints: d/dg -> conv(gg, w); d/dw -> grad_weight(g, gg)."""

    def forward(self, grad, weight, input_shape, geometry):
        gx = K.conv2d_backward_input(_planes(grad), _planes(weight), _planes_shape(input_shape), *geometry)
        return gx.reshape(input_shape)

    def backward(self, gg):
        grad, weight, _, geo = self.inputs
        d_grad = Conv2dFunction.apply(gg, weight, None, geo) if grad.requires_grad else None
        d_w = Conv2dWeightGrad.apply(grad, gg, weight.shape, geo) if weight.requires_grad else None
        return d_grad, d_w, None, None


class Conv2dWeightGrad(Function):
    """grad_w = corr(g, x). Adjoints: d/dg -> conv(x, gg); d/dx -> grad_input(g, gg)."""

    def forward(self, grad, x, weight_shape, geometry):
        gw = K.conv2d_backward_weight(_planes(grad), _planes(x), _planes_shape(weight_shape), *geometry)
        return gw.reshape(weight_shape)

    def backward(self, gg):
        grad, x, _, geo = self.inputs
        d_grad = Conv2dFunction.apply(x, gg, None, geo) if grad.requires_grad else None
        d_x = Conv2dInputGrad.apply(grad, gg, x.shape, geo) if x.requires_grad else None
        return d_grad, d_x, None, None


class ConvBiasGrad(Function):
    """grad_b[o] = sum of g[:, o] over batch and pixels; the adjoint broadcasts back."""
    saves_inputs = False

    def forward(self, grad):
        self.shape = grad.shape
        return K.conv2d_backward_bias(_planes(grad))

    def backward(self, gg):
        return expand(reshape(gg, (1, gg.shape[0]) + (1,) * (len(self.shape) - 2)), self.shape)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of (N, C, H, W) ``input`` with (O, C/groups, kH, kW) ``weight``.

    ``padding`` is an int, a pair, or 'valid' / 'same' (for 'same' with an even
    effective kernel the extra row/column goes on the bottom/right, as in PyTorch).
    Zero padding only.
    """
    return _conv2d("conv2d", Conv2dFunction, input, weight, bias, stride, padding, dilation, groups)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``relu(conv2d(...))`` with the ReLU inside the convolution kernel (an nnlite addition,
    opt-in): each block of the output is clamped as soon as it is written, while it is in cache,
    instead of in a pass of ReLU's own over all of it (the 1x1 algorithm, whose products come
    straight from BLAS, clamps in its bias pass); the same values and gradients, bit for bit.

    float16 and bfloat16 inputs run as the two operations, the ReLU on the rounded output (see
    :func:`batch_norm_relu`). :func:`nnlite.nn.fuse_conv_relu` rewrites a model's Conv2d + ReLU
    pairs to use this function.
    """
    if is_half(input.dtype):
        return relu(conv2d(input, weight, bias, stride, padding, dilation, groups))
    return _conv2d("conv2d_relu", Conv2dReLUFunction, input, weight, bias, stride, padding, dilation, groups)


def _conv2d(name, function, input, weight, bias, stride, padding, dilation, groups):
    if input.ndim == 3 and weight.ndim == 4:   # one unbatched (C, H, W) input, as PyTorch allows
        return squeeze(_conv2d(name, function, unsqueeze(input, 0), weight, bias, stride, padding, dilation,
                               groups), 0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"{name}: expected 4-D input (N, C, H, W) or 3-D (C, H, W) and a 4-D weight, got "
                         f"shapes {tuple(input.shape)} and {tuple(weight.shape)}")
    stride, dilation = _pair(stride, f"{name}: stride"), _pair(dilation, f"{name}: dilation")
    if isinstance(padding, str):
        input, padding = _string_padding(input, weight.shape[2:], stride, dilation, padding)
    geometry = (stride, _pair(padding, f"{name}: padding"), dilation, _groups(name, groups))
    return function.apply(input, weight, bias, geometry)


def _string_padding(input, kernel, stride, dilation, padding):
    """(input, padding) for padding 'valid' or 'same' over the (height, width) of ``kernel``;
    a 3-D input is a 1-D convolution's (its kernel's height is 1) and is padded along L only."""
    if padding == "valid":
        return input, (0, 0)
    if padding != "same":
        raise ValueError(f"conv: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    if stride != (1, 1):
        raise ValueError(f"conv: padding='same' is not supported for strided convolutions (stride={stride})")
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    left = [t // 2 for t in total]
    if all(t % 2 == 0 for t in total):
        return input, tuple(left)
    widths = (left[1], total[1] - left[1]) + ((left[0], total[0] - left[0]) if input.ndim == 4 else ())
    return pad(input, widths), (0, 0)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of (N, C, L) ``input`` with (O, C/groups, k) ``weight``."""
    return _conv1d("conv1d", Conv2dFunction, input, weight, bias, stride, padding, dilation, groups)


def conv1d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``relu(conv1d(...))`` with the ReLU inside the convolution kernel, as :func:`conv2d_relu`
    (an nnlite addition, opt-in; :func:`nnlite.nn.fuse_conv_relu` uses it for Conv1d + ReLU)."""
    if is_half(input.dtype):
        return relu(conv1d(input, weight, bias, stride, padding, dilation, groups))
    return _conv1d("conv1d_relu", Conv2dReLUFunction, input, weight, bias, stride, padding, dilation, groups)


def _conv1d(name, function, input, weight, bias, stride, padding, dilation, groups):
    """A 1-D convolution runs on the 2-D kernels as a height-1 one: (N, C, L) is (N, C, 1, L)."""
    if input.ndim == 2 and weight.ndim == 3:   # one unbatched (C, L) input
        return squeeze(_conv1d(name, function, unsqueeze(input, 0), weight, bias, stride, padding, dilation,
                               groups), 0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"{name}: expected 3-D input (N, C, L) or 2-D (C, L) and a 3-D weight, got shapes "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    groups = _groups(name, groups)
    if input.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"{name}: input has {input.shape[1]} channels but weight expects "
                         f"{weight.shape[1] * groups} (groups={groups}); input shape "
                         f"{tuple(input.shape)}, weight shape {tuple(weight.shape)}")
    stride, dilation = _one(stride, f"{name}: stride"), _one(dilation, f"{name}: dilation")
    if isinstance(padding, str):
        input, padding = _string_padding(input, (1,) + tuple(weight.shape[2:]), stride, dilation, padding)
    else:
        padding = (0, _one(padding, f"{name}: padding")[1])
    length = _output_length(input.shape[-1], weight.shape[-1], stride[1], padding[1], dilation[1])
    if length < 1:   # named here in 1-D terms, not as the height-1 2-D convolution would name it
        raise ValueError(f"{name}: output length would be {length}, expected at least 1; input shape "
                         f"{tuple(input.shape)}, weight shape {tuple(weight.shape)}, stride={stride[1]}, "
                         f"padding={padding[1]}, dilation={dilation[1]}")
    geometry = (stride, padding, dilation, groups)
    return function.apply(input, weight, bias, geometry)


def _output_length(n, kernel, stride, padding, dilation, ceil_mode=False):
    """Outputs of a window sliding along ``n`` values, as PyTorch counts them: in ceil mode a
    last window that would start in the right padding is dropped."""
    span = n + 2 * padding - dilation * (kernel - 1) - 1
    length = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (length - 1) * stride >= n + padding:
        length -= 1
    return length


# --------------------------------------------------- transposed convolution ---

class ConvTranspose2dFunction(Conv2dInputGrad):
    """The transposed convolution as an operation of its own: conv2d's input gradient, applied
    to an input (the weight read as a convolution from the output's channels to the input's).
    Its derivatives are those of that gradient: in x a convolution, in w a weight gradient."""


def _transposed_size(size, kernel, stride, padding, output_padding, dilation):
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _conv_transpose(name, input, weight, bias, stride, padding, output_padding, groups, dilation):
    """The shared body of conv_transpose1d/2d; every geometry argument is a (height, width) pair
    (height 1 for 1-D), and input and weight are (N, C, [H,] W) and (C_in, C_out/groups, [kH,] kW)."""
    if input.dtype != weight.dtype or (bias is not None and bias.dtype != input.dtype):
        given = f"input {input.dtype}, weight {weight.dtype}" + (f", bias {bias.dtype}" if bias is not None else "")
        raise TypeError(f"{name}: input, weight and bias must share one dtype, got {given}; convert them")
    for what, values, least in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if min(values) < least:
            raise ValueError(f"{name}: {what} must be {'positive' if least else 'non-negative'}, got {values}")
    if groups < 1 or weight.shape[0] % groups:
        raise ValueError(f"{name}: groups must be a positive divisor of the weight's first dim "
                         f"(in_channels, {weight.shape[0]}), got {groups}")
    if input.shape[1] != weight.shape[0]:
        raise ValueError(f"{name}: input has {input.shape[1]} channels but weight expects {weight.shape[0]} "
                         f"(in_channels is the weight's first dim); input shape {tuple(input.shape)}, "
                         f"weight shape {tuple(weight.shape)}")
    for op, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op < max(s, d):
            raise ValueError(f"{name}: output_padding must be smaller than either stride or dilation, got "
                             f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    one_d = input.ndim == 3
    spatial = (1,) + tuple(input.shape[2:]) if one_d else tuple(input.shape[2:])
    if min(spatial) < 1:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} has an empty spatial dim")
    kernel = (1,) + tuple(weight.shape[2:]) if one_d else tuple(weight.shape[2:])
    out = tuple(_transposed_size(*a) for a in zip(spatial, kernel, stride, padding, output_padding, dilation))
    if min(out) < 1:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} gives an output of size "
                         f"{out[1:] if one_d else out}, which is not positive")
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{name}: bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    out_shape = (input.shape[0], out_channels) + (out[1:] if one_d else out)
    # The convolution this is the adjoint of reads out_shape; with output_padding >= stride (allowed
    # when the dilation is larger) it gives more positions than the input has: the extra ones
    # receive zeros, appended on the bottom and right.
    conv_out = tuple((o + 2 * p - d * (k - 1) - 1) // s + 1
                     for o, k, s, p, d in zip(out, kernel, stride, padding, dilation))
    extra = tuple(c - i for c, i in zip(conv_out, spatial))
    if any(extra):
        input = pad(input, (0, extra[1]) + (() if one_d else (0, extra[0])))
    y = ConvTranspose2dFunction.apply(input, weight, out_shape, (stride, padding, dilation, groups))
    if bias is not None:
        y = y + reshape(bias, (1, out_channels) + (1,) * (y.ndim - 2))
    return y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution of (N, C_in, H, W) ``input`` with (C_in, C_out/groups, kH, kW)
    ``weight``: the adjoint of :func:`conv2d` with the same geometry, which spreads each input
    pixel over a ``kH x kW`` window of the output (PyTorch's ``F.conv_transpose2d``).

    Per spatial dim: ``out = (size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1``.
    ``output_padding`` (smaller than stride or dilation) picks among the output sizes that a
    strided conv2d would map back to ``size``.

    >>> import nnlite as nl
    >>> conv_transpose2d(nl.randn(1, 4, 5, 5), nl.randn(4, 2, 3, 3), stride=2).shape
    (1, 2, 11, 11)
    """
    if input.ndim == 3 and weight.ndim == 4:   # one unbatched (C, H, W) input
        return squeeze(conv_transpose2d(unsqueeze(input, 0), weight, bias, stride, padding, output_padding,
                                        groups, dilation), 0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv_transpose2d: expected 4-D input (N, C, H, W) or 3-D (C, H, W) and a 4-D "
                         f"weight, got shapes {tuple(input.shape)} and {tuple(weight.shape)}")
    op = "conv_transpose2d"
    return _conv_transpose(op, input, weight, bias, _pair(stride, f"{op}: stride"),
                           _pair(padding, f"{op}: padding"), _pair(output_padding, f"{op}: output_padding"),
                           _groups(op, groups), _pair(dilation, f"{op}: dilation"))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution of (N, C_in, L) ``input`` with (C_in, C_out/groups, k) ``weight``;
    ``L_out = (L - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1``."""
    if input.ndim == 2 and weight.ndim == 3:   # one unbatched (C, L) input
        return squeeze(conv_transpose1d(unsqueeze(input, 0), weight, bias, stride, padding, output_padding,
                                        groups, dilation), 0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv_transpose1d: expected 3-D input (N, C, L) or 2-D (C, L) and a 3-D weight, "
                         f"got shapes {tuple(input.shape)} and {tuple(weight.shape)}")
    op = "conv_transpose1d"

    def flat(v, what):   # the unused height gets no padding
        return (0, _one(v, f"{op}: {what}")[1])
    return _conv_transpose(op, input, weight, bias, _one(stride, f"{op}: stride"), flat(padding, "padding"),
                           flat(output_padding, "output_padding"), _groups(op, groups),
                           _one(dilation, f"{op}: dilation"))


# ------------------------------------------------------------------ pooling ---

class MaxPool2dFunction(Function):
    """Each window's maximum; the gradient goes to the position that won."""
    saves_inputs = False

    def forward(self, x, geometry, saved):
        y, self.indices = K.max_pool2d_forward(np.ascontiguousarray(x), *geometry)
        self.in_shape = x.shape
        saved["indices"] = self.indices   # for return_indices, even when no graph is recorded
        return y

    def backward(self, grad):
        return chosen_by(MaxPool2dGrad.apply(grad, self.indices, self.in_shape), self.inputs[0]), None, None


class MaxPool2dGrad(Function):
    """Scatter-add by index; its adjoint gathers at the same indices."""
    saves_inputs = False

    def forward(self, grad, indices, input_shape):
        self.indices = indices
        return K.max_pool2d_backward(np.ascontiguousarray(grad), indices, tuple(input_shape))

    def backward(self, gg):
        n, c, oh, ow = self.indices.shape
        flat = reshape(gg, (n, c, -1))
        picked = gather(flat, 2, self.indices.reshape(n, c, -1))
        return reshape(picked, (n, c, oh, ow)), None, None


class AvgPool2dFunction(Function):
    """Each window's mean (or sum / divisor_override)."""
    saves_inputs = False

    def forward(self, x, geometry):
        self.geometry, self.in_shape = geometry, x.shape
        return K.avg_pool2d_forward(np.ascontiguousarray(x), *geometry)

    def backward(self, grad):
        return AvgPool2dGrad.apply(grad, self.in_shape, self.geometry), None


class AvgPool2dGrad(Function):
    """Spread grad / divisor over each window; the adjoint is the pooling itself."""
    saves_inputs = False

    def forward(self, grad, input_shape, geometry):
        self.geometry = geometry
        return K.avg_pool2d_backward(np.ascontiguousarray(grad), tuple(input_shape), *geometry)

    def backward(self, gg):
        return AvgPool2dFunction.apply(gg, self.geometry), None, None


def _pool1d_geometry(op, input, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """The 1-D pooling's (1, v) pairs for the 2-D kernels, checked in 1-D terms first, so that
    a mistake is named as the caller wrote it (not as the 2-D pooling's pairs)."""
    k, s, p, d = (_one(v, f"{op}: {name}")[1] for v, name in ((kernel_size, "kernel_size"), (stride, "stride"),
                                                           (padding, "padding"), (dilation, "dilation")))
    for name, value in (("kernel_size", k), ("stride", s), ("dilation", d)):
        if value < 1:
            raise ValueError(f"{op}: {name} must be an int >= 1, got {value}")
    if p < 0:
        raise ValueError(f"{op}: padding must be an int >= 0, got {p}")
    if p > k // 2:
        raise ValueError(f"{op}: padding must be at most half the kernel size, got padding={p} and kernel_size={k}")
    length = _output_length(input.shape[-1], k, s, p, d, ceil_mode)
    if length < 1:
        raise ValueError(f"{op}: output length would be {length}, expected at least 1; input shape "
                         f"{tuple(input.shape)}, kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    return (1, k), (1, s), (0, p), (1, d)


def _check_pool(name, input, dims):
    if input.ndim not in dims:
        raise ValueError(f"{name}: expected a {' or '.join(map(str, dims))}-D input, got shape "
                         f"{tuple(input.shape)}")


def _batched(fn, input, ndim_full):
    """Run a pooling defined on batched input on an unbatched one too (PyTorch allows both)."""
    if input.ndim == ndim_full:
        return fn(input)
    return squeeze(fn(unsqueeze(input, 0)), 0)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    _check_pool("max_pool2d", input, (3, 4))
    stride = kernel_size if _default_stride(stride) else stride
    geo = (_pair(kernel_size, "max_pool2d: kernel_size"), _pair(stride, "max_pool2d: stride"),
           _pair(padding, "max_pool2d: padding"), _pair(dilation, "max_pool2d: dilation"), bool(ceil_mode))
    saved = {}
    out = _batched(lambda x: MaxPool2dFunction.apply(x, geo, saved), input, 4)
    if not return_indices:
        return out
    # Each winner's flat index in its (H * W) input plane, as PyTorch returns it.
    return out, constant(saved["indices"].reshape(out.shape))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    _check_pool("avg_pool2d", input, (3, 4))
    stride = kernel_size if _default_stride(stride) else stride
    geo = (_pair(kernel_size, "avg_pool2d: kernel_size"), _pair(stride, "avg_pool2d: stride"),
           _pair(padding, "avg_pool2d: padding"), bool(ceil_mode), bool(count_include_pad), divisor_override)
    return _batched(lambda x: AvgPool2dFunction.apply(x, geo), input, 4)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    _check_pool("max_pool1d", input, (2, 3))
    stride = kernel_size if _default_stride(stride) else stride
    k, s, p, d = _pool1d_geometry("max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode)
    out = max_pool2d(unsqueeze(input, -2), k, s, p, d, ceil_mode, return_indices)
    if return_indices:  # with a height of 1 the plane index is the position along L
        return squeeze(out[0], -2), squeeze(out[1], -2)
    return squeeze(out, -2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    _check_pool("avg_pool1d", input, (2, 3))
    stride = kernel_size if _default_stride(stride) else stride
    k, s, p, _ = _pool1d_geometry("avg_pool1d", input, kernel_size, stride, padding, ceil_mode=ceil_mode)
    return squeeze(avg_pool2d(unsqueeze(input, -2), k, s, p, ceil_mode, count_include_pad), -2)


# ---------------------------------------------------------- power-average pooling ---
#
# Lp pooling is written, as PyTorch writes it, with average pooling, powers and relu, so
# its first and second derivatives (also with respect to a learnable exponent) come from
# theirs; it has no Function of its own.

def _norm_type(name, norm_type):
    """The exponent p as a float, checked: a non-zero number or a one-element Tensor."""
    if isinstance(norm_type, Tensor):
        if norm_type.data.size != 1:
            raise ValueError(f"{name}: norm_type must be a number or a one-element Tensor, got a Tensor "
                             f"of shape {tuple(norm_type.shape)}")
        value = float(norm_type.data.reshape(()))
    elif isinstance(norm_type, numbers.Real) and not isinstance(norm_type, bool):
        value = float(norm_type)
    else:
        raise TypeError(f"{name}: norm_type must be a number or a one-element Tensor, got "
                        f"{type(norm_type).__name__}")
    if value == 0:
        raise ValueError(f"{name}: norm_type must be non-zero (the result is a 1/norm_type-th root), "
                         f"got {value}")
    return value


def _window(name, what, values, count):
    """``values`` (an int or a sequence of ``count`` ints) as a tuple of ints >= 1."""
    def whole(v):
        return is_int(v) and v >= 1

    seq = (values,) * count if not isinstance(values, (tuple, list)) else tuple(values)
    if len(seq) != count or not all(whole(v) for v in seq):
        raise ValueError(f"{name}: {what} must be an int >= 1 or {count} of them, got {values!r}")
    return tuple(int(v) for v in seq)


def _lp_pool(name, input, norm_type, kernel, stride, ceil_mode, avg_pool, max_pool):
    p = _norm_type(name, norm_type)
    if isinstance(norm_type, Tensor):
        if math.isinf(p):
            raise ValueError(f"{name}: a Tensor norm_type must be finite, got {p}; for max pooling of |x| "
                             "pass the float inf")
        norm_type = cast(norm_type, input.dtype)   # a 0-dim exponent keeps the input's dtype, as in PyTorch
    else:
        norm_type = p   # a Python float: NumPy scalars and ints would promote the powers
    if math.isinf(p):
        # PyTorch's limit: the largest |x| of each window (the smallest for -inf); no power is taken.
        if p > 0:
            return max_pool(input.abs(), kernel, stride, 0, 1, ceil_mode)
        return -max_pool(-input.abs(), kernel, stride, 0, 1, ceil_mode)
    mean = avg_pool(input.pow(norm_type), kernel, stride, 0, ceil_mode)
    # PyTorch's sign(m) * relu(|m|) is m itself, but its derivative is 0 where m = 0: a
    # window whose powers sum to zero sends back a zero gradient, not 0 * inf = NaN from the
    # root below. relu(m) - relu(-m) has the same values and derivatives (except where m is
    # NaN: relu's mask sends back 0 where PyTorch's product sends NaN) and is made of
    # operations autograd records (sign is not), so an exported graph keeps it.
    total = (mean.relu() - (-mean).relu()).mul(math.prod(kernel))
    return total.pow(1.0 / norm_type)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    r"""Power-average pooling over (H, W): each window ``X`` gives :math:`(\sum_{x \in X} x^p)^{1/p}`.

    ``p = norm_type``. With ``p = 1`` it is sum pooling (average pooling times
    the window area); as ``p`` grows it approaches the window's largest ``|x|``,
    which ``p = inf`` returns exactly (``-inf``: the smallest). Input is
    ``(N, C, H, W)`` or unbatched ``(C, H, W)``; ``stride`` defaults to
    ``kernel_size``; there is no padding. It is computed as PyTorch computes it,
    ``avg_pool2d(x ** p) * kh * kw`` and then the ``1/p``-th root, so with
    ``ceil_mode=True`` a window cut short by the edge has its mean scaled by the
    full window area. A window whose powers sum to zero gets a zero gradient.

    Non-integer ``p`` needs non-negative input (a negative number has no real
    ``p``-th power: the result is NaN). PyTorch documents ``norm_type`` as a
    float (and its LPPool layers pass it through ``float()``); nnlite's functions
    and layers also take a one-element Tensor, such as a Parameter, and then the
    gradient reaches ``p`` too (learned-exponent "GeM" pooling).

    >>> import nnlite as nl
    >>> x = nl.tensor([[[[3.0, 4.0], [0.0, 0.0]]]])
    >>> lp_pool2d(x, 2, 2).data.ravel().tolist()          # sqrt(9 + 16)
    [5.0]
    >>> lp_pool2d(x, float("inf"), 2).data.ravel().tolist()
    [4.0]
    """
    _check_pool("lp_pool2d", input, (3, 4))
    kernel = _window("lp_pool2d", "kernel_size", kernel_size, 2)
    stride = kernel if _default_stride(stride) else _window("lp_pool2d", "stride", stride, 2)
    return _lp_pool("lp_pool2d", input, norm_type, kernel, stride, ceil_mode, avg_pool2d, max_pool2d)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    r"""Power-average pooling along L: each window gives :math:`(\sum_{x} x^p)^{1/p}`.

    Input is ``(N, C, L)`` or unbatched ``(C, L)``; everything else is as in
    :func:`lp_pool2d` (``norm_type`` a number or a one-element Tensor).

    >>> import nnlite as nl
    >>> lp_pool1d(nl.tensor([[[3.0, 4.0, 0.0, 0.0]]]), 2, 2, stride=1).data.tolist()
    [[[5.0, 4.0, 0.0]]]
    """
    _check_pool("lp_pool1d", input, (2, 3))
    kernel = _window("lp_pool1d", "kernel_size", kernel_size, 1)
    stride = kernel if _default_stride(stride) else _window("lp_pool1d", "stride", stride, 1)
    return _lp_pool("lp_pool1d", input, norm_type, kernel, stride, ceil_mode, avg_pool1d, max_pool1d)
