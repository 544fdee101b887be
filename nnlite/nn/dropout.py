"""Dropout: regularisers with no parameters, active only in training mode.

``Dropout`` zeroes single elements; ``Dropout1d`` and ``Dropout2d`` zero whole
channels of a feature map; ``AlphaDropout`` keeps the mean and variance that
SELU networks rely on. All of them draw their masks from nnlite's seeded
generator, so ``nl.manual_seed`` makes them reproducible, and all are the
identity in eval mode (``model.eval()``).
"""
from ..ops.dropout import _probability
from . import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"]


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _probability(type(self).__name__, p)
        self.p, self.inplace = p, inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` in training; scale the survivors by 1/(1-p).

    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks
    from Overfitting". The rescaling keeps each element's expected value, so in
    eval mode (``model.eval()``) the layer is the identity. Masks come from the
    seeded generator: ``nl.manual_seed`` makes them reproducible.
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zero whole channels ``x[n, c, :]`` of (N, C, L) or (C, L) input with probability ``p``;
    scale the kept ones by 1/(1-p) (Tompson et al., 2015, "Efficient Object Localization
    Using Convolutional Networks").

    Neighbouring positions of a feature map are strongly correlated, so zeroing
    single elements barely removes information; zeroing a channel does.

    >>> import nnlite as nl
    >>> y = nl.nn.Dropout1d(0.5)(nl.ones(8, 16, 10))
    >>> bool(((y.data == 0).all(axis=2) | (y.data == 2).all(axis=2)).all())   # each channel whole
    True
    """

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels ``x[n, c, :, :]`` of (N, C, H, W) input with probability ``p``;
    scale the kept ones by 1/(1-p). As in PyTorch, a 3-D input is read as (N, C, L), with
    a warning (see :func:`nnlite.nn.functional.dropout2d`).
    """

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout for self-normalising (SELU) networks (Klambauer et al., 2017): dropped elements
    take SELU's negative saturation value, and an affine map restores mean 0 and variance 1
    (see :func:`nnlite.nn.functional.alpha_dropout`)."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training, self.inplace)
