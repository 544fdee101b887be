"""Pooling layers: summarise each window of a feature map by its maximum, mean or power mean.

They have hyperparameters (window size, stride) and, but for one case, no
parameters. Pooling shrinks the spatial size, which cuts the computation of
later layers and gives a little translation invariance. Power-average (Lp)
pooling sits between the two: its exponent p runs from sum pooling (p = 1) to
max pooling (p = inf), and nnlite lets that exponent be a learned Parameter,
the layer's only one.
"""
from ..ops.conv import _default_stride, _norm_type, _window
from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "LPPool1d", "LPPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"]


def _single(v):
    """A 1-tuple of an int (a tuple or list is kept as a tuple, for F's checks to judge)."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _output_size(layer, output_size):
    """``output_size`` itself, refused when it is None: None may stand for "keep this size"
    inside a tuple only, as in PyTorch."""
    if output_size is None:
        raise TypeError(f"{layer}: output_size must be an int or a tuple (None may only be one of its "
                        f"elements), got None")
    return output_size


class _Pool(Module):
    def _check(self, input, dims):
        if input.ndim not in dims:
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): expected a "
                             f"{' or '.join(map(str, dims))}-D input, got shape {tuple(input.shape)}")


class _MaxPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPool):
    """Maximum over windows of (N, C, L) input; the gradient flows only to each window's winner."""

    def forward(self, input):
        self._check(input, (2, 3))
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool2d(_MaxPool):
    """Maximum over windows of (N, C, H, W) input (``stride`` defaults to ``kernel_size``).

    ``return_indices=True`` also returns each maximum's flat index in its
    ``H * W`` input plane (what ``MaxUnpool2d`` would need).

    >>> import nnlite as nl
    >>> nl.nn.MaxPool2d(2)(nl.randn(1, 3, 8, 8)).shape
    (1, 3, 4, 4)
    """

    def forward(self, input):
        self._check(input, (3, 4))
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool1d(_Pool):
    """Mean over windows of (N, C, L) input."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        # 1-tuples, as PyTorch's AvgPool1d keeps (and prints) them
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding, self.ceil_mode, self.count_include_pad = _single(padding), ceil_mode, count_include_pad

    def forward(self, input):
        self._check(input, (2, 3))
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_Pool):
    """Mean over windows of (N, C, H, W) input; ``count_include_pad`` counts padded zeros."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        self._check(input, (3, 4))
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _LPPool(_Pool):
    dims = None   # 1 or 2: how many window sizes kernel_size and stride hold

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        # checked now, as the functions check them, so a bad layer is refused where it is built
        name = type(self).__name__
        _norm_type(name, norm_type)
        _window(name, "kernel_size", kernel_size, self.dims)
        if not _default_stride(stride):
            _window(name, "stride", stride, self.dims)
        # A Parameter given as norm_type is registered, so an optimizer learns the exponent.
        self.norm_type = norm_type
        self.kernel_size, self.stride, self.ceil_mode = kernel_size, stride, ceil_mode

    def extra_repr(self):
        p = self.norm_type
        if isinstance(p, Tensor):
            p = f"{float(p.data.reshape(()))} (a {type(p).__name__})"
        return f"norm_type={p}, kernel_size={self.kernel_size}, stride={self.stride}, ceil_mode={self.ceil_mode}"


class LPPool1d(_LPPool):
    r"""Power-average pooling of (N, C, L) or (C, L) input: :math:`(\sum_{x \in X} x^p)^{1/p}` per window.

    ``p = norm_type``: 1 gives sum pooling, ``float("inf")`` the largest ``|x|``.
    ``stride`` defaults to ``kernel_size`` (the repr shows ``stride=None``, as
    PyTorch's does). PyTorch's layer turns ``norm_type`` into a float; nnlite's
    also takes a one-element Tensor or Parameter, and a Parameter becomes this
    layer's only parameter, learned like any other. See
    :func:`nnlite.nn.functional.lp_pool1d`.

    >>> import nnlite as nl
    >>> nl.nn.LPPool1d(2, 3, stride=2)(nl.randn(4, 16, 50)).shape
    (4, 16, 24)
    """

    dims = 1

    def forward(self, input):
        self._check(input, (2, 3))
        return F.lp_pool1d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class LPPool2d(_LPPool):
    r"""Power-average pooling of (N, C, H, W) or (C, H, W) input: :math:`(\sum_{x \in X} x^p)^{1/p}` per window.

    As :class:`LPPool1d`, over two-dimensional windows. A learned exponent:

    >>> import nnlite as nl
    >>> pool = nl.nn.LPPool2d(nl.nn.Parameter(nl.tensor(3.0), kind="temperature"), 2)
    >>> pool
    LPPool2d(norm_type=3.0 (a Parameter), kernel_size=2, stride=None, ceil_mode=False)
    >>> pool(nl.rand(1, 3, 8, 8)).shape, [name for name, _ in pool.named_parameters()]
    ((1, 3, 4, 4), ['norm_type'])
    """

    dims = 2

    def forward(self, input):
        self._check(input, (3, 4))
        return F.lp_pool2d(input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveAvgPool1d(_Pool):
    """Average to a fixed output length whatever the input length."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _output_size(type(self).__name__, output_size)

    def forward(self, input):
        self._check(input, (2, 3))
        return F.adaptive_avg_pool1d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_Pool):
    """Average to a fixed (H, W) whatever the input size; ``AdaptiveAvgPool2d(1)`` is global pooling.

    >>> import nnlite as nl
    >>> nl.nn.AdaptiveAvgPool2d((2, 3))(nl.randn(1, 4, 7, 9)).shape
    (1, 4, 2, 3)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _output_size(type(self).__name__, output_size)

    def forward(self, input):
        self._check(input, (3, 4))
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class _AdaptiveMaxPool(_Pool):
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = _output_size(type(self).__name__, output_size)
        self.return_indices = return_indices

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """Maximum over ``output_size`` bins of (N, C, L) or (C, L) input, whatever L.

    Bin i covers ``[floor(i L / out), ceil((i + 1) L / out))``, so neighbouring
    bins overlap when ``out`` does not divide L; ``return_indices=True`` also
    returns each maximum's position along L.
    """

    def forward(self, input):
        self._check(input, (2, 3))
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """Maximum over an ``output_size`` grid of bins of (N, C, H, W) or (C, H, W) input.

    ``output_size`` is an int, a pair, or a pair with None for "keep this size";
    ``AdaptiveMaxPool2d(1)`` is global max pooling. ``return_indices=True`` also
    returns each maximum's flat index in its ``H * W`` input plane.

    >>> import nnlite as nl
    >>> nl.nn.AdaptiveMaxPool2d((None, 3))(nl.randn(1, 4, 7, 9)).shape
    (1, 4, 7, 3)
    """

    def forward(self, input):
        self._check(input, (3, 4))
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)
