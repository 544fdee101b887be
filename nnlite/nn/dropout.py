"""Dropout: a regulariser with no parameters, active only in training mode."""
from . import functional as F
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zero each element with probability ``p`` in training; scale the survivors by 1/(1-p).

    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks
    from Overfitting". The rescaling keeps each element's expected value, so in
    eval mode (``model.eval()``) the layer is the identity. Masks come from the
    seeded generator: ``nl.manual_seed`` makes them reproducible.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
