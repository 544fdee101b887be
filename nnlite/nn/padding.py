"""Padding layers: grow (or, with negative widths, crop) the borders of a signal or an image.

Each layer holds its widths and calls :func:`nnlite.nn.functional.pad` in one
mode. What the new border holds is the difference between them:

* zero / constant — a fixed value (what a convolution's ``padding=`` does);
* reflection — the input mirrored at its edge, the edge itself not repeated
  (``[a b c] -> [c b | a b c | b a]``), so no artificial jump is created;
* replication — the edge value repeated (``[a a | a b c | c c]``);
* circular — the other end of the input (``[b c | a b c | a b]``), for
  signals that wrap around, such as angles or periodic boundaries.

The 1d layers pad the last dim, given ``padding`` as an int or
``(left, right)``; the 2d layers pad the last two, given an int or
``(left, right, top, bottom)``. Reprs and accepted ranks are PyTorch's.
"""
from .._kernels.checks import is_int
from . import functional as F
from .module import Module

__all__ = ["ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
           "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d"]


class _PadNd(Module):
    dims = None        # how many trailing dims the layer pads
    mode = None        # F.pad's mode
    ranks = None       # the input ranks it accepts: (unbatched, batched), or None for "at least dims"

    def __init__(self, padding):
        super().__init__()
        self.padding = self._widths(padding)

    def _widths(self, padding):
        name, count = type(self).__name__, 2 * self.dims
        if is_int(padding):
            return (int(padding),) * count
        widths = tuple(padding) if isinstance(padding, (tuple, list)) else None
        if widths is None or len(widths) != count or not all(
                is_int(w) for w in widths):
            sides = "(left, right)" if self.dims == 1 else "(left, right, top, bottom)"
            raise ValueError(f"{name}: padding must be an int or {count} ints {sides}, got {padding!r}")
        return tuple(int(w) for w in widths)

    def _check_input(self, input):
        ranks = self.ranks or ()
        if (ranks and input.ndim not in ranks) or input.ndim < self.dims:
            wanted = " or ".join(f"{r}-D" for r in ranks) if ranks else f"at least {self.dims}-D"
            raise ValueError(f"{type(self).__name__}({self.extra_repr()}): expected an input of {wanted} shape, "
                             f"got shape {tuple(input.shape)}")

    def forward(self, input):
        self._check_input(input)
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        self._check_input(input)
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``: ``(*, W) -> (*, left + W + right)``."""
    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with ``value``: ``(*, H, W) -> (*, top + H + bottom, left + W + right)``.

    >>> import nnlite as nl
    >>> nl.nn.ConstantPad2d((1, 0, 0, 1), 7.0)(nl.zeros(1, 1, 1)).data.tolist()
    [[[7.0, 0.0], [7.0, 7.0]]]
    """
    dims = 2


class _ZeroPad:
    """Constant padding with 0, shown as PyTorch shows it: only the widths."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPad, ConstantPad1d):
    """Pad the last dim with zeros."""


class ZeroPad2d(_ZeroPad, ConstantPad2d):
    """Pad the last two dims with zeros.

    >>> import nnlite as nl
    >>> nl.nn.ZeroPad2d((1, 1, 2, 0))
    ZeroPad2d((1, 1, 2, 0))
    """


class ReflectionPad1d(_PadNd):
    """Mirror (N, C, W) or (C, W) input at its ends, the edge not repeated; widths < W.

    >>> import nnlite as nl
    >>> nl.nn.ReflectionPad1d(2)(nl.tensor([[1.0, 2.0, 3.0]])).data.tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]]
    """
    dims, mode, ranks = 1, "reflect", (2, 3)


class ReflectionPad2d(_PadNd):
    """Mirror (N, C, H, W) or (C, H, W) input at its borders; widths smaller than the dim they pad."""
    dims, mode, ranks = 2, "reflect", (3, 4)


class ReplicationPad1d(_PadNd):
    """Repeat the end values of (N, C, W) or (C, W) input.

    >>> import nnlite as nl
    >>> nl.nn.ReplicationPad1d((1, 2))(nl.tensor([[1.0, 2.0, 3.0]])).data.tolist()
    [[1.0, 1.0, 2.0, 3.0, 3.0, 3.0]]
    """
    dims, mode, ranks = 1, "replicate", (2, 3)


class ReplicationPad2d(_PadNd):
    """Repeat the border values of (N, C, H, W) or (C, H, W) input."""
    dims, mode, ranks = 2, "replicate", (3, 4)


class CircularPad1d(_PadNd):
    """Wrap (N, C, W) or (C, W) input around: the left border comes from the right end and back.

    >>> import nnlite as nl
    >>> nl.nn.CircularPad1d(1)(nl.tensor([[1.0, 2.0, 3.0]])).data.tolist()
    [[3.0, 1.0, 2.0, 3.0, 1.0]]
    """
    dims, mode, ranks = 1, "circular", (2, 3)


class CircularPad2d(_PadNd):
    """Wrap (N, C, H, W) or (C, H, W) input around, as on a torus; widths at most the dim they pad."""
    dims, mode, ranks = 2, "circular", (3, 4)
