"""Shrinkage functions as modules: values near zero are pulled to (or towards) zero.

Compositions of other operations (``nnlite/ops/composed_activations.py``).
"""
from .._kernels.checks import real_number
from . import functional as F
from .module import Module

__all__ = ["Hardshrink", "Softshrink", "Tanhshrink"]


class Hardshrink(Module):
    """``x`` where ``|x| > lambd``, else 0."""

    def __init__(self, lambd=0.5):
        super().__init__()
        real_number("Hardshrink", "lambd", lambd)
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(Module):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between (soft thresholding)."""

    def __init__(self, lambd=0.5):
        super().__init__()
        real_number("Softshrink", "lambd", lambd)
        self.lambd = lambd
        if not lambd >= 0:
            raise ValueError(f"Softshrink: lambd must be >= 0, got {lambd}")

    def forward(self, input):
        return F.softshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Tanhshrink(Module):
    """``x - tanh(x)``."""

    def forward(self, input):
        return F.tanhshrink(input)
