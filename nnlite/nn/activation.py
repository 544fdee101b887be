"""Activation functions as modules, so they can sit in a Sequential.

Each calls the function of the same name in ``nnlite.nn.functional`` (the
kernels and their derivatives live in ``nnlite/ops/pointwise.py`` and
``nnlite/ops/softmax.py``; the piecewise-linear ones in ``nnlite/ops/piecewise.py``).
All but one have no parameters: PReLU learns its negative slope. Threshold,
the shrinkage functions, CELU, Softmin and RReLU are compositions of other
operations (``nnlite/ops/composed_activations.py``).
"""
from .. import ops
from .._kernels.checks import is_int, real_number
from ..parameter import Parameter
from . import functional as F
from . import init as init_
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "Tanh", "Sigmoid", "SiLU", "Softmax",
           "LogSoftmax", "Softplus", "Hardtanh", "ReLU6", "LogSigmoid", "Softsign", "Mish", "Hardsigmoid",
           "Hardswish", "Threshold", "Hardshrink", "Softshrink", "Tanhshrink", "CELU", "Softmin", "Softmax2d",
           "RReLU"]


class ReLU(Module):
    """max(0, x); ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, self.inplace)

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


class Tanh(Module):
    """(e^x - e^-x) / (e^x + e^-x)."""

    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    """1 / (1 + e^-x)."""

    def forward(self, input):
        return F.sigmoid(input)


class SiLU(Module):
    """x * sigmoid(x) (also called swish); ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


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


class LogSigmoid(Module):
    """``log(sigmoid(x))``, computed stably."""

    def forward(self, input):
        return F.logsigmoid(input)


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, input):
        return F.softsign(input)


class Mish(Module):
    """``x * tanh(softplus(x))`` (Misra, 2019); ``inplace=True`` overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.mish(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardsigmoid(Module):
    """``relu6(x + 3) / 6``; ``inplace=True`` overwrites the input. (Its repr does not show
    ``inplace``, as PyTorch's does not.)"""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardsigmoid(input, self.inplace)


class Hardswish(Module):
    """``x * relu6(x + 3) / 6`` (Howard et al., 2019, MobileNetV3); ``inplace=True`` overwrites
    the input. (Its repr does not show ``inplace``, as PyTorch's does not.)"""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input, self.inplace)


# ------------------------------------------------------ thresholds and shrinkage ---

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
