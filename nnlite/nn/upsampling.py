"""The ``Upsample`` layers: :func:`~nnlite.nn.functional.interpolate` with its options kept.

How each mode picks its source pixels is in ``nnlite/ops/interpolate.py``.
"""
from ..ops.interpolate import interpolate
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


# ------------------------------------------------------------------- layers ---

class Upsample(Module):
    """Resize the spatial dims with :func:`interpolate` (a layer has no parameters to learn).

    ``Upsample(scale_factor=2, mode="bilinear")`` doubles the height and width of
    (N, C, H, W) input. The repr shows the scale factor (as a float, as PyTorch's
    does), or else the size, and the mode.

    >>> import nnlite as nl
    >>> up = nl.nn.Upsample(scale_factor=2, mode="nearest")
    >>> up, up(nl.randn(1, 3, 4, 5)).shape
    (Upsample(scale_factor=2.0, mode='nearest'), (1, 3, 8, 10))
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        shown = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{shown}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W) input: ``Upsample(size, scale_factor, mode="nearest")``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of (N, C, H, W) input with the corners aligned:
    ``Upsample(size, scale_factor, mode="bilinear", align_corners=True)``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
