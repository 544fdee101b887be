"""Pixel shuffle layers: ``PixelShuffle`` (channels to resolution) and ``PixelUnshuffle`` (back).

The rearrangements themselves, with the sub-pixel convolution they serve, are
in ``nnlite/ops/pixel_shuffle.py``.
"""
from ..ops.pixel_shuffle import _factor, pixel_shuffle, pixel_unshuffle
from .module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelShuffle(Module):
    """Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)``; see :func:`pixel_shuffle`.

    >>> import nnlite as nl
    >>> nl.nn.PixelShuffle(3)(nl.randn(1, 18, 4, 4)).shape
    (1, 2, 12, 12)
    """

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = _factor("PixelShuffle", "upscale_factor", upscale_factor)

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)``; see :func:`pixel_unshuffle`."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = _factor("PixelUnshuffle", "downscale_factor", downscale_factor)

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
