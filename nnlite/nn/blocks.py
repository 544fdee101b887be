"""Efficient convolution blocks: fewer parameters for (nearly) the same job.

Both blocks factor an expensive k x k convolution over many channels into
cheaper pieces. Their docstrings count the parameters against the plain
version; the counts are checked by the tests (and by the doctests below).
"""
from .. import ops
from .conv import Conv2d
from .container import Sequential
from .module import Module
from .normalization import BatchNorm2d

__all__ = ["DepthwiseSeparableConv2d", "Bottleneck"]


def _check_channels(owner, input, channels):
    if input.ndim != 4 or input.shape[1] != channels:
        got = f"{input.shape[1]} channels" if input.ndim == 4 else f"{input.ndim} dims"
        raise ValueError(f"{owner}: expected input (batch, {channels}, height, width), got {got} "
                         f"(shape {tuple(input.shape)})")


class DepthwiseSeparableConv2d(Module):
    """A k x k depthwise convolution (one filter per channel) then a 1 x 1 pointwise one.

    The depthwise part filters space within each channel (``groups=in_channels``);
    the pointwise part mixes channels. Used by MobileNet (Howard et al., 2017)
    and Xception (Chollet, 2017).

    Parameters (C_in -> C_out channels, kernel k, with bias):

        separable = C_in*k*k + C_in  +  C_in*C_out + C_out      (depthwise + pointwise)
        plain     = C_in*C_out*k*k + C_out                      (one Conv2d)

    so the ratio is about 1/C_out + 1/k^2. For C_in = 32, C_out = 64, k = 3:
    separable = 288 + 32 + 2048 + 64 = 2432, plain = 18432 + 64 = 18496 (7.6x fewer).

    >>> import nnlite as nl
    >>> DepthwiseSeparableConv2d(32, 64, 3).num_parameters(), nl.nn.Conv2d(32, 64, 3).num_parameters()
    (2432, 18496)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depthwise = Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                groups=in_channels, bias=bias, dtype=dtype)
        self.pointwise = Conv2d(in_channels, out_channels, 1, bias=bias, dtype=dtype)

    def forward(self, input):
        _check_channels(f"DepthwiseSeparableConv2d(in_channels={self.in_channels})", input, self.in_channels)
        return self.pointwise(self.depthwise(input))


class Bottleneck(Module):
    """ResNet's bottleneck residual block (He et al., 2016): 1x1 reduce, 3x3, 1x1 expand.

        out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))

    The 3x3 convolution, the expensive part, works on ``bottleneck_channels``
    (b) instead of the full width. ``out_channels`` defaults to
    ``expansion * bottleneck_channels`` (expansion = 4, as in ResNet-50).
    The shortcut is the identity when the shape is kept, else ``downsample``:
    a strided 1x1 projection with its BatchNorm. Convolutions have no bias (the
    BatchNorm after each has a shift). Names follow torchvision's Bottleneck.

    Parameters (C_in -> C_out, bottleneck b; BatchNorm: 2 per channel):

        bottleneck = C_in*b + 9*b*b + b*C_out + 2*(b + b + C_out)  [+ C_in*C_out + 2*C_out projection]
        plain      = 2 * (9*C*C + 2*C)       (two 3x3 conv+BN at full width C = C_out, ResNet's basic block)

    For C_in = C_out = 256, b = 64: bottleneck = 16384 + 36864 + 16384 + 768 = 70400,
    plain = 2 * (589824 + 512) = 1180672 (16.8x more).

    >>> Bottleneck(256, 64).num_parameters()
    70400
    """
    expansion = 4

    def __init__(self, in_channels, bottleneck_channels, out_channels=None, stride=1, dtype=None):
        super().__init__()
        out_channels = self.expansion * bottleneck_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        b = bottleneck_channels
        self.conv1 = Conv2d(in_channels, b, 1, bias=False, dtype=dtype)
        self.bn1 = BatchNorm2d(b, dtype=dtype)
        self.conv2 = Conv2d(b, b, 3, stride=stride, padding=1, bias=False, dtype=dtype)
        self.bn2 = BatchNorm2d(b, dtype=dtype)
        self.conv3 = Conv2d(b, out_channels, 1, bias=False, dtype=dtype)
        self.bn3 = BatchNorm2d(out_channels, dtype=dtype)
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential(Conv2d(in_channels, out_channels, 1, stride=stride, bias=False,
                                                dtype=dtype), BatchNorm2d(out_channels, dtype=dtype))
        else:
            self.downsample = None

    def forward(self, input):
        _check_channels(f"Bottleneck(in_channels={self.in_channels})", input, self.in_channels)
        out = ops.relu(self.bn1(self.conv1(input)))
        out = ops.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = input if self.downsample is None else self.downsample(input)
        return ops.relu(out + shortcut)
