"""Convolution layers: a small weight slid over every position of the input.

The weight has PyTorch's layout ``(out_channels, in_channels // groups, *kernel_size)``:
each output channel looks at ``in_channels // groups`` input channels through a
``kernel_size`` window. With ``groups == in_channels`` every channel gets its
own filter (a depthwise convolution). Parameters: ``weight`` (kind "weight")
and ``bias`` (kind "bias", one per output channel).

The transposed convolutions (``ConvTranspose1d``/``2d``) run the same weight the
other way, as the adjoint of a convolution, and so store it the other way round:
``(in_channels, out_channels // groups, *kernel_size)``.
"""
import math
import numbers

from .. import ops
from .._kernels.checks import is_int
from ..parameter import Parameter
from . import functional as F
from ._checks import require_ints
from . import init
from .module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]


def _tuple(v, n, what):
    """n ints from an int or a tuple of n ints, checked when the layer is made (not at its first call)."""
    items = (v,) * n if is_int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if items is None or len(items) != n or not all(is_int(i) for i in items):
        raise TypeError(f"{what} must be an int or a tuple of {n} int{'s' * (n > 1)}, "
                        f"got {type(v).__name__} {v!r}")
    return tuple(int(i) for i in items)


class _ConvNd(Module):
    _dims = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        n, name = self._dims, type(self).__name__
        require_ints(name, in_channels=in_channels, out_channels=out_channels, groups=groups)
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"{name}: in_channels and out_channels must be >= 1, got in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"{name}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        if padding == "same" and any(s != 1 for s in _tuple(stride, n, f"{name}: stride")):
            raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, f"{name}: kernel_size")
        self.stride, self.dilation = _tuple(stride, n, f"{name}: stride"), _tuple(dilation, n, f"{name}: dilation")
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n, f"{name}: padding")
        self.padding_mode = padding_mode
        shape = ((in_channels, out_channels // groups) if self._transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = Parameter(ops.empty(*shape, dtype=dtype), kind="weight")
        if bias:
            self.bias = Parameter(ops.empty(out_channels, dtype=dtype), kind="bias")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias alike.
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def _explicit_padding(self):
        """F.pad widths (last dim first) for padding_mode != 'zeros'."""
        if self.padding == "valid":
            return (0, 0) * self._dims
        if self.padding == "same":
            total = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            pairs = [(t // 2, t - t // 2) for t in total]
        else:
            pairs = [(p, p) for p in self.padding]
        return tuple(w for pair in reversed(pairs) for w in pair)

    def _batched(self, input):
        """(name for errors, the input with a batch dim, whether it had none), after the checks."""
        name, n = f"{type(self).__name__}(in_channels={self.in_channels})", self._dims
        if input.ndim not in (n + 1, n + 2):
            raise ValueError(f"{name}: expected a {n + 2}-D (batched) or {n + 1}-D input, got shape "
                             f"{tuple(input.shape)}")
        unbatched = input.ndim == n + 1
        x = ops.unsqueeze(input, 0) if unbatched else input
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: input has {x.shape[1]} channels (shape {tuple(input.shape)})")
        return name, x, unbatched

    def forward(self, input):
        return self._convolve(input, F.conv1d if self._dims == 1 else F.conv2d)

    def _convolve(self, input, conv):
        """``conv`` (F.conv1d, F.conv2d, or a fused F.conv2d_relu) of ``input`` with this layer's
        weight, bias and geometry, after the checks and any non-zero padding."""
        name, x, unbatched = self._batched(input)
        padding = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, self._explicit_padding(), mode=self.padding_mode)
            padding = 0
        try:
            y = conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        return ops.squeeze(y, 0) if unbatched else y

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._dims:
            s += f", padding={self.padding}"  # PyTorch prints 'same' unquoted
        if self.dilation != (1,) * self._dims:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) sequences -> (N, C_out, L_out).

    ``L_out = (L + 2 padding - dilation (kernel_size - 1) - 1) // stride + 1``;
    ``padding='same'`` keeps ``L`` (stride 1 only), ``'valid'`` means no padding.
    ``padding_mode`` 'zeros' (default), 'reflect', 'replicate' or 'circular'.

    >>> import nnlite as nl
    >>> nl.nn.Conv1d(4, 8, 3, padding="same")(nl.randn(2, 4, 10)).shape
    (2, 8, 10)
    """
    _dims = 1


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) images -> (N, C_out, H_out, W_out).

    Per spatial dim: ``out = (size + 2 padding - dilation (kernel - 1) - 1) // stride + 1``.
    A weight holds ``out_channels * in_channels / groups * kH * kW`` numbers,
    independent of the image size: the same filter is reused at every position.
    ``padding_mode`` 'zeros' (default), 'reflect', 'replicate' or 'circular'.

    >>> import nnlite as nl
    >>> conv = nl.nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1)
    >>> conv(nl.randn(1, 3, 32, 32)).shape, conv.weight.shape
    ((1, 16, 16, 16), (16, 3, 3, 3))
    """
    _dims = 2


class _ConvTransposeNd(_ConvNd):
    """A transposed convolution: the adjoint of the convolution with the same geometry."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got {padding_mode!r}')
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a tuple, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.output_padding = _tuple(output_padding, self._dims, f"{name}: output_padding")

    def _output_padding(self, name, input, unbatched, output_size):
        """``output_padding``, or the one that gives ``output_size``: the output's sizes, with or
        without its leading (batch and) channel dims, as PyTorch takes it."""
        if output_size is None:
            return self.output_padding
        n = self._dims
        lead = 1 if unbatched else 2
        if len(output_size) not in (n, n + lead):
            raise ValueError(f"{name}: for a {n + lead}-D input, output_size must have {n} or {n + lead} "
                             f"elements, got {tuple(output_size)}")
        if not all(isinstance(v, numbers.Integral) for v in output_size):
            raise TypeError(f"{name}: output_size must hold ints, got {tuple(output_size)}")
        sizes = tuple(int(v) for v in output_size)[-n:]
        padding = []
        for d in range(n):
            smallest = ((input.shape[-n + d] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= sizes[d] <= largest:
                raise ValueError(f"{name}: requested an output size of {sizes}, but valid sizes range from "
                                 f"{smallest} to {largest} (for an input of {tuple(input.shape[-n:])})")
            padding.append(sizes[d] - smallest)
        return tuple(padding)

    def forward(self, input, output_size=None):
        name, x, unbatched = self._batched(input)
        conv = F.conv_transpose1d if self._dims == 1 else F.conv_transpose2d
        output_padding = self._output_padding(name, x, unbatched, output_size)
        try:
            y = conv(x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                     self.dilation)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        return ops.squeeze(y, 0) if unbatched else y


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C_in, L) -> (N, C_out, L_out), the adjoint of Conv1d.

    ``L_out = (L - 1) stride - 2 padding + dilation (kernel_size - 1) + output_padding + 1``.

    >>> import nnlite as nl
    >>> nl.nn.ConvTranspose1d(4, 8, 3, stride=2)(nl.randn(2, 4, 10)).shape
    (2, 8, 21)
    """
    _dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over (N, C_in, H, W) -> (N, C_out, H_out, W_out): each input
    pixel spreads a ``kernel_size`` window of weights over the output, the adjoint of the
    Conv2d with the same geometry. With stride 2 it doubles an image's size, as in the
    decoders of autoencoders and GAN generators.

    Per spatial dim: ``out = (size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1``;
    ``forward(input, output_size)`` picks ``output_padding`` for a requested size. The weight
    is ``(in_channels, out_channels // groups, kH, kW)``, PyTorch's layout.

    >>> import nnlite as nl
    >>> up = nl.nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1, output_padding=1)
    >>> up(nl.randn(1, 16, 8, 8)).shape, up.weight.shape
    ((1, 8, 16, 16), (16, 8, 3, 3))
    """
    _dims = 2
