"""Rectifiers as modules: the identity on one side of a threshold, something flatter on the other.

ReLU and its relatives (ReLU6 and Hardtanh clip, LeakyReLU, PReLU and RReLU
keep a slope below zero, ELU, SELU and CELU curve into a floor, Threshold
replaces what is below a level). Each calls the function of the same name in
``nnlite.nn.functional``; the piecewise-linear kernels and their derivatives
live in ``nnlite/ops/piecewise.py``, the exponential ones in
``nnlite/ops/pointwise.py``, and CELU, Threshold and RReLU are compositions
(``nnlite/ops/composed_activations.py``). PReLU is the one with a parameter:
it learns its negative slope.
"""
from .. import ops
from .._kernels.checks import is_int, real_number
from ..parameter import Parameter
from . import functional as F
from . import init as init_
from .module import Module

__all__ = ["ReLU", "Hardtanh", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "Threshold"]


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


class PReLU(Module):
    """max(0, x) + a * min(0, x) with the negative slope ``a`` learned (He et al., 2015,
    "Delving Deep into Rectifiers").

    Parameter: ``weight`` (num_parameters,), kind "scale", every slope starting at
    ``init``. With ``num_parameters=1`` one slope serves the whole input; with
    ``num_parameters=C`` each channel (dim 1 of the input) has its own. An input of
    fewer than 2 dims has no channel dim and takes a single slope.

    >>> import nnlite as nl
    >>> act = nl.nn.PReLU(3)
    >>> act(nl.randn(2, 3, 5)).shape, act.weight.kind, act.weight.data.tolist()
    ((2, 3, 5), 'scale', [0.25, 0.25, 0.25])
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        if not is_int(num_parameters):
            raise TypeError(f"PReLU: num_parameters must be an int, got {type(num_parameters).__name__} "
                            f"{num_parameters!r}")
        if num_parameters < 0:
            raise ValueError(f"PReLU: num_parameters must be >= 0, got {num_parameters}")
        self.num_parameters, self.init = int(num_parameters), real_number("PReLU", "init", init)
        # Kind "scale": each slope multiplies (the negative half of) one channel, shaped and
        # broadcast like a norm layer's gamma; it connects no unit to another, as a "weight"
        # does. param_groups_by_kind leaves "scale" out of weight decay, as He et al. ask for
        # the slopes: decay pulls them towards 0, that is towards a plain ReLU.
        self.weight = Parameter(ops.empty(self.num_parameters, dtype=dtype), kind="scale")
        self.reset_parameters()

    def reset_parameters(self):
        init_.constant_(self.weight, self.init)

    def forward(self, input):
        try:
            return F.prelu(input, self.weight)
        except ValueError:
            self._check_input(input)   # name the layer, not the function, when the shape is wrong
            raise

    def _check_input(self, input):
        n, shape = self.num_parameters, tuple(input.shape)
        if n != 1 and input.ndim < 2:
            raise ValueError(f"PReLU(num_parameters={n}): a {input.ndim}-D input has no channel dim "
                             f"and takes 1 slope, not {n} (shape {shape})")
        if n != 1 and shape[1] != n:
            raise ValueError(f"PReLU(num_parameters={n}): input has {shape[1]} channels in dim 1 "
                             f"(shape {shape})")

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


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
