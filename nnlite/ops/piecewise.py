"""Activations made of straight pieces: hardtanh (and relu6), hardsigmoid, hardswish, prelu.

Each is a clamp, or a clamp times x, so it is cheap and has corners. At a corner
the derivative is one of the two one-sided slopes, and PyTorch's choice is
kept: the middle piece is the *open* interval, so hardtanh and relu6 have
slope 0 exactly at their bounds (``nnlite.clamp`` gives 1 there, as
``torch.clamp`` does, which is why relu6 is not written as a clamp), and so do
hardsigmoid at -3 and 3; hardswish has slope 0 at -3 and 1 at 3.

Forward keeps what backward needs and never reads the input again, except
hardswish, whose slope ``x/3 + 1/2`` depends on x; their in-place forms
(``hardtanh_``... in ``nnlite/ops/inplace.py``) build on that. A derivative
that is constant on each piece makes backward ``grad`` times a constant
array, whose own derivative in x is zero.
"""
import numpy as np

from .._kernels.checks import real_number
from ..autograd import Function, constant
from .compare import where
from .pointwise import _floating
from .shape import sum_to


class HardtanhFunction(Function):
    """``min_val`` below min_val, ``max_val`` above max_val, x between.

    d/dx = 1 for min_val < x < max_val and 0 elsewhere, at both bounds too
    (PyTorch's ``hardtanh_backward``). Forward keeps that 0/1 mask.
    """
    saves_inputs = False

    def forward(self, a, min_val, max_val):
        if self.recording:
            self.inside = ((a > min_val) & (a < max_val)).astype(a.dtype)
        # where, not np.maximum: a -0.0 at a bound of 0 stays -0.0, and NaN stays NaN, as in PyTorch
        low, high = np.asarray(min_val, a.dtype), np.asarray(max_val, a.dtype)
        return np.where(a < low, low, np.where(a > high, high, a))

    def backward(self, grad):
        return grad * constant(self.inside), None, None


class HardsigmoidFunction(Function):
    """``relu6(x + 3) / 6``: 0 for x <= -3, 1 for x >= 3, ``x/6 + 1/2`` between.

    d/dx = 1/6 for -3 < x < 3 and 0 elsewhere, at -3 and 3 too. (PyTorch's
    float64 gradient is 1/6 rounded to float32, 0.16666667163...; nnlite's is
    1/6 in the input's precision. PyTorch has no second derivative here; nnlite's is 0.)
    """
    saves_inputs = False

    def forward(self, a):
        if self.recording:
            self.slope = np.where((a > -3) & (a < 3), a.dtype.type(1 / 6), a.dtype.type(0))
        return np.minimum(np.maximum(a + 3, 0), 6) / 6

    def backward(self, grad):
        return grad * constant(self.slope)


class HardswishFunction(Function):
    """``x * relu6(x + 3) / 6`` (Howard et al., 2019, "Searching for MobileNetV3"): a cheap
    swish, 0 for x <= -3 and x for x >= 3, ``x (x + 3) / 6`` between."""

    def forward(self, a):
        return a * np.minimum(np.maximum(a + 3, 0), 6) / 6

    def backward(self, grad):
        return HardswishGrad.apply(grad, self.inputs[0])


class HardswishGrad(Function):
    """grad * slope with slope = 0 for x <= -3, ``x/3 + 1/2`` for -3 < x < 3, 1 for x >= 3
    (PyTorch's choice at the corners: 0 at -3, 1 at 3).

    Linear in grad; its derivative in x is ``grad / 3`` on the open middle piece
    and 0 elsewhere, the second derivative of hardswish.
    """

    def forward(self, grad, x):
        middle = (x > -3) & (x < 3)
        self.middle = middle
        slope = np.where(middle, x / 3 + 0.5, np.where(x <= -3, 0, 1).astype(x.dtype))
        return grad * slope

    def backward(self, gg):
        grad, x = self.inputs
        return HardswishGrad.apply(gg, x), where(constant(self.middle), gg * grad / 3.0, 0.0)


def hardtanh(input, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val], with slope 0 at the bounds (PyTorch's hardtanh).

    ``F.hardtanh`` adds PyTorch's ``inplace`` flag; ``F.relu6`` is ``hardtanh(x, 0, 6)``.

    >>> import nnlite as nl
    >>> hardtanh(nl.tensor([-2.0, -0.5, 3.0])).data.tolist()
    [-1.0, -0.5, 1.0]
    """
    min_val = real_number("hardtanh", "min_val", min_val)
    max_val = real_number("hardtanh", "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return HardtanhFunction.apply(_floating("hardtanh", input), min_val, max_val)


def relu6(input):
    """``min(max(0, x), 6)``: a ReLU that saturates, hardtanh with bounds 0 and 6.

    >>> import nnlite as nl
    >>> relu6(nl.tensor([-1.0, 2.5, 8.0])).data.tolist()
    [0.0, 2.5, 6.0]
    """
    return HardtanhFunction.apply(_floating("relu6", input), 0.0, 6.0)


def hardsigmoid(input):
    """``relu6(x + 3) / 6``, a piecewise-linear sigmoid: 0 up to -3, 1 from 3.

    >>> import nnlite as nl
    >>> hardsigmoid(nl.tensor([-4.0, 0.0, 1.5, 4.0])).data.tolist()
    [0.0, 0.5, 0.75, 1.0]
    """
    return HardsigmoidFunction.apply(_floating("hardsigmoid", input))


def hardswish(input):
    """``x * relu6(x + 3) / 6``, a piecewise swish (MobileNetV3's activation).

    >>> import nnlite as nl
    >>> hardswish(nl.tensor([-4.0, 0.0, 1.5, 4.0])).data.tolist()
    [-0.0, 0.0, 1.125, 4.0]
    """
    return HardswishFunction.apply(_floating("hardswish", input))


class PReluFunction(Function):
    """x for x > 0, ``weight * x`` otherwise; ``weight`` comes shaped to broadcast against x.

    d/dx = 1 for x > 0 and ``weight`` elsewhere, at 0 and at NaN too (PyTorch's choice);
    d/dweight = x where x <= 0, summed over the positions a slope serves. Both are written
    with ``where`` on the forward's mask, so their own derivatives (in grad, weight and x)
    follow; and a slope times +-inf stays infinite, which a sum of the two sides would not.
    """

    def forward(self, a, weight):
        self.positive = a > 0
        return np.where(self.positive, a, weight * a)

    def backward(self, grad):
        a, weight = self.inputs
        zero = constant(np.zeros((), grad.dtype))
        grad_a = where(self.positive, grad, grad * weight)
        grad_weight = sum_to(where(self.positive, zero, grad * a), weight.shape)
        return grad_a, grad_weight

