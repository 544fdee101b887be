"""Dropout: zero random elements (or whole channels) in training, rescaling the rest.

``dropout`` keeps each element with probability ``1 - p`` and divides the kept
ones by ``1 - p``, so the expected value stays the input (the mask comes from a
kernel, drawn from nnlite's seeded generator); ``dropout1d``/``dropout2d`` zero
whole channels; ``alpha_dropout`` keeps the mean and variance a SELU network
relies on. Each backward multiplies by the same mask.
"""
import math
import numbers
import warnings

import numpy as np

from .._kernels import K
from ..autograd import Function, constant
from ..random import _gen
from .inplace import apply_in_place
from .pointwise import SELU_ALPHA, SELU_SCALE


class DropoutFunction(Function):
    """y = x * mask / (1 - p): zeroing is rescaled so the expected value stays x."""
    saves_inputs = False

    def forward(self, x, u, p):
        y, mask = K.dropout_forward(np.ascontiguousarray(x), u, p)
        self.noise = mask.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        return y

    def backward(self, grad):
        return grad * constant(self.noise), None, None


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability ``p`` (in training) and scale the rest by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        if inplace:
            return apply_in_place(input, "dropout_", lambda x: x * 0.0)
        return input * 0.0
    u = _gen(generator).random(input.shape, dtype=input.dtype)
    if inplace:
        return apply_in_place(input, "dropout_", DropoutFunction.apply, u, float(p))
    return DropoutFunction.apply(input, u, float(p))


def _probability(op, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability must be in [0, 1], got {p!r}")
    return float(p)


def _times_noise(op, input, inplace, noise, shift=None):
    """``input * noise (+ shift)``, the noise (and shift) constants broadcast over ``input``;
    ``inplace=True`` writes the result into ``input``. Its gradient is ``grad * noise``."""
    noise, shift = constant(noise), constant(shift)

    def apply(x):
        return x * noise if shift is None else x * noise + shift
    return apply_in_place(input, op + "_", apply) if inplace else apply(input)


def _channel_dropout(op, input, p, training, inplace, generator, noise_shape):
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _times_noise(op, input, inplace, np.zeros((), input.dtype))
    keep = _gen(generator).random(noise_shape, dtype=input.dtype) >= p
    return _times_noise(op, input, inplace, keep.astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p)))


def dropout1d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels of (N, C, L) or unbatched (C, L) input with probability ``p``; scale the rest by 1/(1-p).

    Each channel ``input[n, c, :]`` is kept or dropped as a whole (Tompson et al.,
    2015): neighbouring positions of a feature map are correlated, so dropping
    single elements of one regularises little. ``generator`` (an nnlite addition)
    is the source of the masks; by default the seeded global one.
    """
    p = _probability("dropout1d", p)
    if input.ndim not in (2, 3):
        raise ValueError(f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape {tuple(input.shape)}")
    return _channel_dropout("dropout1d", input, p, training, inplace, generator, input.shape[:-1] + (1,))


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels ``input[n, c]`` of (N, C, H, W) input with probability ``p``; scale the rest by 1/(1-p).

    PyTorch's reading of other ranks is kept, with its warnings: a 3-D input is
    taken as (N, C, L), so each ``input[n, c, :]`` is one channel (for unbatched
    (C, H, W) input, add the batch dim: ``x.unsqueeze(0)``); any rank from 2
    drops ``input[i, j, ...]`` as a whole.
    """
    p = _probability("dropout2d", p)
    if input.ndim < 2:
        raise ValueError(f"dropout2d: expected a 4-D (N, C, H, W) input, got shape {tuple(input.shape)}: "
                         "channel dropout needs at least 2 dims")
    if input.ndim == 3:
        warnings.warn("dropout2d: a 3-D input is read as (N, C, L) and each input[n, c, :] is dropped as a "
                      "whole (1-D channel dropout); for an unbatched (C, H, W) image, add the batch dim or "
                      "use dropout1d for (N, C, L)", UserWarning, stacklevel=2)
    elif input.ndim != 4:
        warnings.warn(f"dropout2d: expected a 4-D (N, C, H, W) input, got {input.ndim}-D; PyTorch will refuse "
                      "this in a future release", UserWarning, stacklevel=2)
    noise_shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _channel_dropout("dropout2d", input, p, training, inplace, generator, noise_shape)


# The negative saturation value of SELU: what it gives as x -> -inf.
SELU_SATURATION = -SELU_SCALE * SELU_ALPHA


def alpha_dropout(input, p=0.5, training=False, inplace=False, generator=None):
    """Dropout that keeps SELU's mean 0 and variance 1 (Klambauer et al., 2017).

    A dropped element is set to SELU's saturation ``alpha' = -scale * alpha``
    instead of 0, and then ``y = a * (x * m + alpha' * (1 - m)) + b`` with
    ``a = ((1 - p) (1 + p alpha'^2))^(-1/2)`` and ``b = -a alpha' p`` restores
    mean and variance. PyTorch's default is ``training=False``.
    """
    p = _probability("alpha_dropout", p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _times_noise("alpha_dropout", input, inplace, np.zeros((), input.dtype))
    keep = (_gen(generator).random(input.shape, dtype=input.dtype) >= p).astype(input.dtype)
    a = 1.0 / math.sqrt((1.0 - p) * (1.0 + p * SELU_SATURATION ** 2))
    shift = a * SELU_SATURATION * (1.0 - keep) - a * SELU_SATURATION * p
    return _times_noise("alpha_dropout", input, inplace, keep * input.dtype.type(a), shift.astype(input.dtype))
