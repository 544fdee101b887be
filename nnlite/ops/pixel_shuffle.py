"""Pixel shuffle: trade channels for resolution, and back.

A convolution that outputs ``C * r^2`` channels at low resolution, followed by
``pixel_shuffle(·, r)``, is a learned ``r``-times upsampling ("sub-pixel
convolution", Shi et al., 2016, "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network"):
the ``r^2`` channels of each output channel become the ``r x r`` sub-pixels of
each input pixel. ``pixel_unshuffle`` is its inverse, a lossless
space-to-depth downsampling.

Both are a reshape, a permutation of axes and a reshape, so they move numbers
and compute nothing; their gradient is the inverse rearrangement of the
gradient. Any number of leading batch dims is allowed, as in PyTorch. The
layers ``PixelShuffle`` and ``PixelUnshuffle`` are in ``nnlite/nn/pixel_shuffle.py``.
"""
from .._kernels.checks import is_int
from .permutation import permute
from .shape import reshape

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _factor(op, name, factor):
    if not is_int(factor):
        raise TypeError(f"{op}: {name} must be an int, got {type(factor).__name__} {factor!r}")
    if factor < 1:
        raise ValueError(f"{op}: {name} must be positive, got {factor}")
    return int(factor)


def _three_dims(op, input):
    if input.ndim < 3:
        raise ValueError(f"{op}: expected an input of shape (*, C, H, W), at least 3 dims, got shape "
                         f"{tuple(input.shape)}")


def pixel_shuffle(input, upscale_factor):
    """``(*, C r^2, H, W) -> (*, C, H r, W r)``: out[c, h r + i, w r + j] = in[c r^2 + i r + j, h, w].

    >>> import nnlite as nl
    >>> pixel_shuffle(nl.arange(4.0).reshape(1, 4, 1, 1), 2).data.tolist()
    [[[[0.0, 1.0], [2.0, 3.0]]]]
    """
    r = _factor("pixel_shuffle", "upscale_factor", upscale_factor)
    _three_dims("pixel_shuffle", input)
    *batch, channels, height, width = input.shape
    if channels % (r * r):
        raise ValueError(f"pixel_shuffle: the channel dim (-3) must be divisible by upscale_factor^2 = "
                         f"{r * r}, got {channels} channels (shape {tuple(input.shape)})")
    b = len(batch)
    x = reshape(input, (*batch, channels // (r * r), r, r, height, width))
    # (*, C, i, j, H, W) -> (*, C, H, i, W, j): sub-pixel (i, j) of pixel (h, w) lands at (h r + i, w r + j)
    x = permute(x, tuple(range(b)) + tuple(b + d for d in (0, 3, 1, 4, 2)))
    return reshape(x, (*batch, channels // (r * r), height * r, width * r))


def pixel_unshuffle(input, downscale_factor):
    """``(*, C, H r, W r) -> (*, C r^2, H, W)``, the inverse of :func:`pixel_shuffle`.

    >>> import nnlite as nl
    >>> pixel_unshuffle(nl.arange(4.0).reshape(1, 1, 2, 2), 2).data.ravel().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    r = _factor("pixel_unshuffle", "downscale_factor", downscale_factor)
    _three_dims("pixel_unshuffle", input)
    *batch, channels, height, width = input.shape
    if height % r or width % r:
        raise ValueError(f"pixel_unshuffle: height and width (dims -2 and -1) must be divisible by "
                         f"downscale_factor = {r}, got shape {tuple(input.shape)}")
    b = len(batch)
    x = reshape(input, (*batch, channels, height // r, r, width // r, r))
    # (*, C, H, i, W, j) -> (*, C, i, j, H, W): the sub-pixels of each block become r^2 channels
    x = permute(x, tuple(range(b)) + tuple(b + d for d in (0, 2, 4, 1, 3)))
    return reshape(x, (*batch, channels * r * r, height // r, width // r))
