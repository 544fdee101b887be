"""Rectifiers as modules: the identity on one side of a threshold, something flatter on the other.

ReLU and its relatives (ReLU6 and Hardtanh clip, LeakyReLU, PReLU and RReLU
keep a slope below zero, ELU, SELU and CELU curve into a floor, Threshold
replaces what is below a level). Each calls the function of the same name in
``nnlite.nn.functional``; the piecewise-linear kernels and their derivatives
live in ``nnlite/ops/piecewise.py``, the exponential ones in
``nnlite/ops/pointwise.py``, and CELU, Threshold and RReLU are compositions
(``nnlite/ops/composed_activations.py``). PReLU, the rectifier that learns its
negative slope, is in ``prelu.py``.
"""
from .._kernels.checks import real_number
from . import functional as F
from .module import Module

__all__ = ["ReLU", "Hardtanh", "ReLU6", "LeakyReLU", "RReLU", "ELU", "SELU", "CELU", "Threshold"]


class ReLU(Module):
    """max(0, x); ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardtanh(Module):
    """x clamped to ``[min_val, max_val]``; ``inplace=True`` overwrites the input."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        real_number("Hardtanh", "min_val", min_val)
        real_number("Hardtanh", "max_val", max_val)
        if max_val <= min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """``min(max(0, x), 6)``: Hardtanh with bounds 0 and 6; ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope * x`` otherwise; ``inplace=True`` overwrites the input."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        real_number("LeakyReLU", "negative_slope", negative_slope)
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class RReLU(Module):
    """Randomized leaky ReLU (Xu et al., 2015): ``x`` for x > 0, ``a * x`` otherwise.

    In training ``a ~ U(lower, upper)``, drawn for every element from nnlite's
    seeded generator, so ``nl.manual_seed`` repeats the slopes; in eval mode
    ``a = (lower + upper) / 2``. ``inplace=True`` overwrites the input.
    """

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        real_number("RReLU", "lower", lower)
        real_number("RReLU", "upper", upper)
        if lower > upper:
            raise ValueError(f"RReLU: lower must be <= upper, got lower={lower}, upper={upper}")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x for x > 0, ``alpha * (e^x - 1)`` otherwise; ``inplace=True`` overwrites the input."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        real_number("ELU", "alpha", alpha)
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class SELU(Module):
    """``scale * elu(x, alpha)`` with fixed alpha = 1.6733 and scale = 1.0507, which make
    mean 0 and variance 1 a stable point of LeCun-initialised layers (Klambauer et al., 2017)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.selu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class CELU(Module):
    """``max(0, x) + min(0, alpha * (e^(x/alpha) - 1))`` (Barron, 2017); ``inplace=True`` overwrites the input."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        real_number("CELU", "alpha", alpha)
        if alpha == 0:
            raise ValueError("CELU: alpha must not be 0 (the negative piece divides by it)")
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``; ``inplace=True`` overwrites the input."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        real_number("Threshold", "threshold", threshold)
        real_number("Threshold", "value", value)
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")
