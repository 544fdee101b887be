"""Smooth activations and gates as modules, so they can sit in a Sequential.

GELU, SiLU, Mish and Hardswish weigh x by a gate; Softplus is a smooth ReLU;
Tanh, Softsign, Sigmoid, Hardsigmoid and LogSigmoid squash into a range. None
has parameters. Each calls the function of the same name in
``nnlite.nn.functional`` (kernels and derivatives in ``nnlite/ops/pointwise.py``
and ``nnlite/ops/piecewise.py``). The rectifiers are in ``rectifier.py``, the
softmax family in ``softmax.py``, the shrinkage functions in ``shrinkage.py``.
"""
from .._kernels.checks import real_number
from . import functional as F
from .module import Module

__all__ = ["GELU", "SiLU", "Mish", "Hardswish", "Softplus", "Tanh", "Softsign", "Sigmoid", "Hardsigmoid", "LogSigmoid"]


class GELU(Module):
    """x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` uses the tanh formula."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) (also called swish); ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Mish(Module):
    """``x * tanh(softplus(x))`` (Misra, 2019); ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.mish(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardswish(Module):
    """``x * relu6(x + 3) / 6`` (Howard et al., 2019, MobileNetV3); ``inplace=True`` overwrites
    the input. (Its repr does not show ``inplace``, as PyTorch's does not.)"""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input, self.inplace)


class Softplus(Module):
    """``log(1 + e^(beta x)) / beta``, a smooth ReLU; x itself where ``beta * x > threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        real_number("Softplus", "beta", beta)
        real_number("Softplus", "threshold", threshold)
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Tanh(Module):
    """(e^x - e^-x) / (e^x + e^-x)."""

    def forward(self, input):
        return F.tanh(input)


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, input):
        return F.softsign(input)


class Sigmoid(Module):
    """1 / (1 + e^-x)."""

    def forward(self, input):
        return F.sigmoid(input)


class Hardsigmoid(Module):
    """``relu6(x + 3) / 6``; ``inplace=True`` overwrites the input. (Its repr does not show
    ``inplace``, as PyTorch's does not.)"""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardsigmoid(input, self.inplace)


class LogSigmoid(Module):
    """``log(sigmoid(x))``, computed stably."""

    def forward(self, input):
        return F.logsigmoid(input)
