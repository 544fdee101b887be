"""Padding: ``F.pad`` with PyTorch's four modes, and cropping with negative widths.

Constant padding is one Function whose gradient cuts the centre back out. The
reflect, replicate and circular modes read the input at computed positions (an
``np.ix_`` grid of indices per padded dim), so their gradient is indexing's
scatter-add: a position read twice receives both gradients.
"""
import numpy as np

from .._kernels.checks import is_int
from ..autograd import Function
from .indexing import GetItem


class ConstantPad(Function):
    """Surround x with ``value``; the gradient is the centre cut back out."""
    saves_inputs = False

    def forward(self, x, widths, value):
        self.key = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    def backward(self, grad):
        return GetItem.apply(grad, self.key), None, None


def _pad_widths(ndim, pad):
    """PyTorch's pad tuple (last dim first: left, right, then the dim before...) as np.pad widths."""
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"pad: expected an even-length tuple covering at most {ndim} dims, got {pad}")
    for width in pad:
        if not is_int(width):
            raise TypeError(f"pad: widths must be ints, got {type(width).__name__} {width!r} in {pad}")
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return widths


def _crop(input, widths):
    """``input`` with the negative widths cut off its ends (PyTorch's negative padding)."""
    if all(lo >= 0 and hi >= 0 for lo, hi in widths):
        return input
    for d, ((lo, hi), size) in enumerate(zip(widths, input.shape)):
        if size + min(lo, 0) + min(hi, 0) < 0:
            raise ValueError(f"pad: negative widths ({lo}, {hi}) cut more than the {size} positions of dim {d} "
                             f"(shape {input.shape})")
    key = tuple(slice(max(-lo, 0), size - max(-hi, 0)) for (lo, hi), size in zip(widths, input.shape))
    return GetItem.apply(input, key)


def _pad_index(size, lo, hi, mode):
    """Source position of every output position along one dim for the non-constant modes.

    A negative width cuts positions off that end. Reflect and replicate read the
    input as it was (the cut positions can still be reflected or replicated);
    circular, as PyTorch does, cuts first and wraps around what is left.
    """
    if mode == "circular":
        start, kept = max(-lo, 0), size - max(-lo, 0) - max(-hi, 0)
        if kept < 0:
            raise ValueError(f"pad: negative widths ({lo}, {hi}) cut more than the {size} positions of the dim")
        if max(lo, hi, 0) > kept:
            raise ValueError(f"pad: circular padding ({lo}, {hi}) wraps around more than once: at most "
                             f"{kept} positions (of {size}, after the cropping) can be repeated at each end")
        return start + np.arange(-max(lo, 0), kept + max(hi, 0)) % max(kept, 1)
    if size + lo + hi <= 0:
        raise ValueError(f"pad: {mode} padding ({lo}, {hi}) of a dim of size {size} leaves "
                         f"{size + lo + hi} positions")
    pos = np.arange(-lo, size + hi)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    if lo >= size or hi >= size:
        raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the dim size {size}")
    period = 2 * (size - 1)
    pos = np.abs(pos) % period if period else np.zeros_like(pos)
    return np.where(pos >= size, period - pos, pos)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dims; ``pad = (left, right, top, bottom, ...)`` as in PyTorch.

    Modes: 'constant' (with ``value``, default 0), 'reflect', 'replicate', 'circular'.
    A negative width removes that many positions from its end instead, as in PyTorch.
    Reflect widths must be smaller than the dim; circular ones at most its size.

    >>> import nnlite as nl
    >>> x = nl.tensor([[1.0, 2.0, 3.0]])
    >>> pad(x, (2, 1), mode="reflect").data.tolist(), pad(x, (-1, 1)).data.tolist()
    ([[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]], [[2.0, 3.0, 0.0]])
    """
    widths = _pad_widths(input.ndim, tuple(pad))
    if mode == "constant":
        input = _crop(input, widths)
        grown = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        return ConstantPad.apply(input, grown, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if value is not None and value != 0:
        raise ValueError(f"pad: value is only used with mode='constant', got value={value} with mode={mode!r}")
    dims = [d for d, w in enumerate(widths) if w != (0, 0)]
    index = [np.arange(n) for n in input.shape]
    for d in dims:
        if input.shape[d] == 0:
            raise ValueError(f"pad: cannot {mode}-pad dim {d} of size 0 (shape {input.shape})")
        index[d] = _pad_index(input.shape[d], *widths[d], mode)
    return GetItem.apply(input, np.ix_(*index))
