"""Activations made of straight pieces: leaky_relu, hardtanh (and relu6), hardsigmoid,
hardswish, prelu.

Each is a clamp, or a clamp times x, so it is cheap and has corners. At a corner
the derivative is one of the two one-sided slopes, and PyTorch's choice is
kept: the middle piece is the *open* interval, so hardtanh and relu6 have
slope 0 exactly at their bounds (``nnlite.clamp`` gives 1 there, as
``torch.clamp`` does, which is why relu6 is not written as a clamp), and so do
hardsigmoid at -3 and 3; hardswish has slope 0 at -3 and 1 at 3; leaky ReLU
takes its negative slope at 0.

leaky_relu, hardtanh and hardsigmoid have a constant slope on each piece. Their
forward kernels keep a boolean mask of the piece each element fell on, and
backward is ``grad`` times one of two slopes read from that mask
(:class:`MaskedSlopeGrad`, one kernel): it never reads the input again, so the
in-place forms (``hardtanh_``... in ``nnlite/ops/inplace.py``), which overwrite
it, differentiate exactly too, and the derivative of backward in x is zero.
hardswish's slope ``x/3 + 1/2`` depends on x, so its backward reads x (its
in-place form keeps a copy). prelu, whose slope is a parameter, is NumPy and
differentiable ops.
"""
import numpy as np

from .._kernels import K
from .._kernels.checks import real_number
from ..autograd import Function, chosen_by, constant, is_grad_enabled
from ..tensor import Tensor
from .elementwise_choice import where
from .pointwise import _floating
from .broadcasting import sum_to


class MaskedSlopeGrad(Function):
    """``grad * (slope_true if mask else slope_false)``: the gradient of a piecewise-linear
    activation, from the mask its forward kept. Linear in grad, with that same slope as its
    derivative; the mask holds no gradient (the slope is constant on each piece).
    ``slope_false=None`` marks a flat piece, whose gradient is 0 itself (PyTorch's hardtanh
    and hardsigmoid), not ``grad * 0`` (-0.0, or NaN for an infinite grad)."""
    saves_inputs = False

    def forward(self, grad, mask, slope_true, slope_false):
        return K.masked_slope_backward(grad, mask, slope_true, slope_false)

    def backward(self, gg):
        _, mask, slope_true, slope_false = self.inputs
        return MaskedSlopeGrad.apply(gg, mask, slope_true, slope_false), None, None, None


class LeakyReluFunction(Function):
    """x for x > 0, ``negative_slope * x`` otherwise.

    d/dx = 1 for x > 0 and ``negative_slope`` otherwise, at 0 too (PyTorch's
    choice). Forward keeps the mask x > 0.
    """
    saves_inputs = False

    def forward(self, a, negative_slope):
        self.negative_slope = negative_slope
        if not self.recording:
            return K.leaky_relu_forward(a, negative_slope)
        out, self.positive = K.leaky_relu_forward(a, negative_slope, save=True)
        return out

    def backward(self, grad):
        return chosen_by(MaskedSlopeGrad.apply(grad, self.positive, 1.0, self.negative_slope), self.inputs[0]), None


class HardtanhFunction(Function):
    """``min_val`` below min_val, ``max_val`` above max_val, x between.

    d/dx = 1 for min_val < x < max_val and 0 elsewhere, at both bounds too; at NaN it
    is 1 (PyTorch's ``hardtanh_backward``). Forward keeps the mask of where it is 1.
    """
    saves_inputs = False

    def forward(self, a, min_val, max_val):
        if not self.recording:
            return K.hardtanh_forward(a, min_val, max_val)
        out, self.inside = K.hardtanh_forward(a, min_val, max_val, save=True)
        return out

    def backward(self, grad):
        return chosen_by(MaskedSlopeGrad.apply(grad, self.inside, 1.0, None), self.inputs[0]), None, None


class HardsigmoidFunction(Function):
    """``relu6(x + 3) / 6``: 0 for x <= -3, 1 for x >= 3, ``x/6 + 1/2`` between.

    d/dx = 1/6 for -3 < x < 3 and 0 elsewhere, at -3 and 3 too. (PyTorch's
    float64 gradient is 1/6 rounded to float32, 0.16666667163...; nnlite's is
    1/6 in the input's precision. PyTorch has no second derivative here; nnlite's is 0.)
    """
    saves_inputs = False

    def forward(self, a):
        if not self.recording:
            return K.hardsigmoid_forward(a)
        out, self.inside = K.hardsigmoid_forward(a, save=True)
        return out

    def backward(self, grad):
        return chosen_by(MaskedSlopeGrad.apply(grad, self.inside, 1 / 6, None), self.inputs[0])


class HardswishFunction(Function):
    """``x * relu6(x + 3) / 6`` (Howard et al., 2019, "Searching for MobileNetV3"): a cheap
    swish, 0 for x <= -3 and x for x >= 3, ``x (x + 3) / 6`` between."""

    def forward(self, a):
        return K.hardswish_forward(a)

    def backward(self, grad):
        return HardswishGrad.apply(grad, self.inputs[0])


class HardswishGrad(Function):
    """grad * slope with slope = 0 for x <= -3, ``x/3 + 1/2`` for -3 < x < 3, 1 for x >= 3
    (PyTorch's choice at the corners: 0 at -3, 1 at 3).

    Linear in grad; its derivative in x is ``grad / 3`` on the open middle piece
    and 0 elsewhere, the second derivative of hardswish.
    """

    def forward(self, grad, x):
        return K.hardswish_backward(grad, x)

    def backward(self, gg):
        grad, x = self.inputs
        middle = constant((x.data > -3) & (x.data < 3))
        return HardswishGrad.apply(gg, x), where(middle, gg * grad / 3.0, 0.0)


def leaky_relu(input, negative_slope=0.01):
    """x for x > 0, ``negative_slope * x`` otherwise: negative inputs keep a small gradient.

    ``F.leaky_relu`` adds PyTorch's ``inplace`` flag; the in-place form is
    ``leaky_relu_`` in ``nnlite/ops/inplace.py``.

    >>> import nnlite as nl
    >>> leaky_relu(nl.tensor([-2.0, 0.0, 3.0]), 0.25).data.tolist()
    [-0.5, 0.0, 3.0]
    """
    negative_slope = real_number("leaky_relu", "negative_slope", negative_slope)
    return LeakyReluFunction.apply(_floating("leaky_relu", input), negative_slope)


def hardtanh(input, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val], with slope 0 at the bounds (PyTorch's hardtanh).

    ``F.hardtanh`` adds PyTorch's ``inplace`` flag; ``F.relu6`` is ``hardtanh(x, 0, 6)``.

    >>> import nnlite as nl
    >>> hardtanh(nl.tensor([-2.0, -0.5, 3.0])).data.tolist()
    [-1.0, -0.5, 1.0]
    """
    min_val = real_number("hardtanh", "min_val", min_val)
    max_val = real_number("hardtanh", "max_val", max_val)
    if not min_val <= max_val:   # written so that a NaN bound is refused too
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val}), "
                         "and neither can be NaN")
    if isinstance(input, Tensor) and input.dtype.kind in "iu":
        return _integer_clamp(input, min_val, max_val)
    return HardtanhFunction.apply(_floating("hardtanh", input), min_val, max_val)


def _integer_clamp(input, min_val, max_val):
    """hardtanh of an integer tensor, as PyTorch's: the bounds truncated to integers, the dtype
    kept, no gradient."""
    return Tensor._make(np.minimum(np.maximum(input.data, int(min_val)), int(max_val)), None)


def relu6(input):
    """``min(max(0, x), 6)``: a ReLU that saturates, hardtanh with bounds 0 and 6.

    >>> import nnlite as nl
    >>> relu6(nl.tensor([-1.0, 2.5, 8.0])).data.tolist()
    [0.0, 2.5, 6.0]
    """
    if isinstance(input, Tensor) and input.dtype.kind in "iu":
        return _integer_clamp(input, 0, 6)
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
    At x = 0 the mixed second derivatives (of d/dx in weight, of d/dweight in x) are 0,
    as PyTorch's are: there x and weight enter backward as constants.
    """

    def forward(self, a, weight):
        self.positive = a > 0
        return np.where(self.positive, a, weight * a)

    def backward(self, grad):
        x, weight = a, w = self.inputs
        if is_grad_enabled():   # a graph of the gradient is being recorded (create_graph)
            at_zero = a.data == 0
            if at_zero.any():
                at_zero = constant(at_zero)
                x = where(at_zero, constant(a.data), a)
                weight = where(at_zero, constant(w.data), w)
        zero = constant(np.zeros((), grad.dtype))
        grad_a = chosen_by(where(self.positive, grad, grad * weight), a)
        grad_weight = sum_to(where(self.positive, zero, grad * x), w.shape)
        return grad_a, grad_weight

