"""Softmax and its relatives as modules: a distribution over one dim of the input.

The kernels and their derivatives live in ``nnlite/ops/softmax.py``; Softmin
is softmax of the negated input (``nnlite/ops/composed_activations.py``).
"""
from . import functional as F
from .module import Module

__all__ = ["Softmax", "LogSoftmax", "Softmin", "Softmax2d"]


class Softmax(Module):
    """exp(x_i) / sum_j exp(x_j) along ``dim``."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    """``softmax(-x)`` along ``dim``: weights that favour the smallest elements."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmin(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels at every position of (N, C, H, W) or (C, H, W) input (dim -3).

    >>> import nnlite as nl
    >>> y = nl.nn.Softmax2d()(nl.randn(2, 3, 4, 5))
    >>> y.shape, round(float(y.sum(1).data.min()), 5)    # each position's channels sum to 1
    ((2, 3, 4, 5), 1.0)
    """

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
                             f"{tuple(input.shape)}")
        return F.softmax(input, -3)
