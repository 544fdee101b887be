"""Activations built from other operations: threshold, hardshrink, softshrink, tanhshrink,
celu, softmin and rrelu.

tanhshrink, celu and softmin are compositions of differentiable operations
(``tanh``, ``exp``, ``where``, ``softmax``), so their gradients and second
derivatives come from those. threshold, hardshrink, softshrink and rrelu in
training are piecewise linear: each element falls on a piece with a slope (0,
1, or rrelu's random one). :class:`ChosenSlope` computes such a function in
NumPy and keeps the slope of every element; its backward is ``grad * slope``,
marked as chosen by x (:func:`nnlite.autograd.chosen_by`), so the second
derivative is zeros, as PyTorch's. The corners follow PyTorch:

* threshold and hardshrink pass the gradient only where the input is kept, so
  it is 0 exactly at the threshold (``x <= threshold`` is replaced) and at
  ``+-lambd``; softshrink likewise is flat on the closed interval
  ``[-lambd, lambd]``. A NaN input is kept, and its gradient passes.
* celu takes its linear piece at 0, where both pieces have slope 1, so its
  second derivative there is 0, as in PyTorch.
* rrelu in training multiplies by a random slope where ``x <= 0``.

threshold, celu and rrelu take PyTorch's ``inplace`` flag; the in-place form
overwrites the input and moves its history to the result
(:func:`nnlite.ops.inplace.apply_in_place`).
"""
import numpy as np

from .._kernels.checks import real_number
from ..autograd import Function, chosen_by, constant
from ..random import _gen
from ..tensor import Tensor
from .elementwise_choice import where
from .inplace import apply_in_place, inplace_flag as _inplace_flag
from .piecewise import leaky_relu
from .pointwise import _floating, exp, tanh
from .promotion import floating_input
from .softmax import softmax

__all__ = ["threshold", "hardshrink", "softshrink", "tanhshrink", "celu", "softmin", "rrelu"]


def _maybe_in_place(op, input, inplace, fn, *args):
    """``fn(input, *args)``, or, with ``inplace=True``, the same written into ``input``."""
    if _inplace_flag(op, inplace):
        return apply_in_place(input, op + "_", fn, *args)
    return fn(input, *args)


class ChosenSlope(Function):
    """A piecewise-linear function of x: ``pieces(x, *args)`` gives, in NumPy, its value and the
    slope of the piece each element fell on.

    d/dx = slope, a constant on each piece, so backward is ``grad * slope`` (exactly 0 where
    the slope is 0, whatever the gradient), and its derivative in x is 0 (chosen by x).
    """
    saves_inputs = False

    def forward(self, x, pieces, *args):
        out, self.slope = pieces(x, *args)
        return out

    def backward(self, grad):
        flat = constant(self.slope == 0)
        slope = constant(self.slope)
        grad_x = where(flat, np.zeros((), grad.dtype), grad * slope)
        return (chosen_by(grad_x, self.inputs[0]),) + (None,) * (len(self.inputs) - 1)


# ------------------------------------------------------------ thresholds ---

def _threshold_pieces(x, threshold, value):
    kept = ~(x <= threshold)     # NaN is not <= anything: it is kept, as in PyTorch
    return np.where(kept, x, x.dtype.type(value)), kept.astype(x.dtype)


def _threshold(x, threshold, value):
    return ChosenSlope.apply(x, _threshold_pieces, threshold, value)


def threshold(input, threshold, value, inplace=False):
    """``x`` where ``x > threshold``, else ``value``; the gradient is 0 where ``value`` was taken.

    >>> import nnlite as nl
    >>> threshold(nl.tensor([-1.0, 0.5, 2.0]), 0.5, 9.0).data.tolist()
    [9.0, 9.0, 2.0]
    """
    threshold = real_number("threshold", "threshold", threshold)
    value = real_number("threshold", "value", value)
    if isinstance(input, Tensor) and input.dtype.kind in "iu":
        threshold, value = int(threshold), int(value)   # as PyTorch: truncated to integers, the dtype kept
    else:
        input = _floating("threshold", input)
    return _maybe_in_place("threshold", input, inplace, _threshold, threshold, value)


def _outside(x, lambd):
    return ~((x >= -lambd) & (x <= lambd))     # NaN included


def _hardshrink_pieces(x, lambd):
    kept = _outside(x, lambd)
    return np.where(kept, x, x.dtype.type(0)), kept.astype(x.dtype)


def _softshrink_pieces(x, lambd):
    kept = _outside(x, lambd)
    return np.where(kept, x - x.dtype.type(lambd) * np.sign(x), x.dtype.type(0)), kept.astype(x.dtype)


def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0 (a negative ``lambd`` keeps everything, as in PyTorch).

    >>> import nnlite as nl
    >>> hardshrink(nl.tensor([-1.0, 0.5, 0.25, 0.75])).data.tolist()
    [-1.0, 0.0, 0.0, 0.75]
    """
    lambd = real_number("hardshrink", "lambd", lambd)
    return ChosenSlope.apply(_floating("hardshrink", input), _hardshrink_pieces, lambd)


def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between: ``x - clamp(x, -lambd, lambd)``.

    The soft-thresholding operator, the proximal map of ``lambd * |x|`` (the step
    of ISTA and of L1-regularised sparse coding).

    >>> import nnlite as nl
    >>> softshrink(nl.tensor([-1.0, 0.25, 2.0])).data.tolist()
    [-0.5, 0.0, 1.5]
    """
    lambd = real_number("softshrink", "lambd", lambd)
    if not lambd >= 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    return ChosenSlope.apply(_floating("softshrink", input), _softshrink_pieces, lambd)


def tanhshrink(input):
    """``x - tanh(x)``: near 0 it is ``x^3 / 3``, far away ``x -+ 1``; integers give the default float dtype."""
    input = floating_input("tanhshrink", input)
    return input - tanh(input)


# --------------------------------------------------------- smooth and soft ---

def _celu(x, alpha):
    # The negative piece is taken where x < 0 and x itself elsewhere: at 0 both have value 0
    # and slope 1, and PyTorch's second derivative there is the linear piece's, 0. The
    # exponential only ever sees x < 0 (0 stands in elsewhere), so a large x cannot overflow
    # and a NaN cannot reach it: inf * 0 or NaN * 0 would come back through the unused piece.
    negative = constant(x.data < 0)
    exponent = where(negative, x, 0.0) * (1.0 / alpha)
    return where(negative, alpha * (exp(exponent) - 1.0), x)


def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (e^(x/alpha) - 1))`` (Barron, 2017): an ELU whose slope is 1
    at 0 for every ``alpha``, so it is continuously differentiable there.

    >>> import nnlite as nl
    >>> [round(v, 4) for v in celu(nl.tensor([-1.0, 0.0, 2.0]), alpha=2.0).data.tolist()]
    [-0.7869, 0.0, 2.0]
    """
    alpha = real_number("celu", "alpha", alpha)
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (the negative piece divides by it)")
    return _maybe_in_place("celu", _floating("celu", input), inplace, _celu, alpha)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-x)`` along ``dim``: the largest weight goes to the smallest element.

    ``dtype``, if given, converts the input first, as in PyTorch. ``dim`` must be
    given (nnlite's softmax refuses PyTorch's deprecated implicit choice).

    >>> import nnlite as nl
    >>> [round(v, 4) for v in softmin(nl.tensor([0.0, 1.0]), dim=0).data.tolist()]
    [0.7311, 0.2689]
    """
    if dim is None:
        raise TypeError("softmin: pass dim explicitly (PyTorch's implicit choice of dim is deprecated)")
    if dtype is not None:
        input = input.to(dtype)
    return softmax(-input, dim)


# ---------------------------------------------------------- randomized ReLU ---

def _random_slopes(x, lower, upper, generator):
    # One slope per element, drawn whatever its sign so the draws do not depend on the data;
    # x > 0 keeps slope 1 (NaN, which is not <= 0, too, as in PyTorch).
    slopes = _gen(generator).uniform(lower, upper, size=x.shape).astype(x.dtype)
    slope = np.where(x <= 0, slopes, x.dtype.type(1))
    return x * slope, slope


def _rrelu_training(x, lower, upper, generator):
    return ChosenSlope.apply(x, _random_slopes, lower, upper, generator)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, generator=None):
    """Randomized leaky ReLU (Xu et al., 2015): ``x`` for x > 0, ``a * x`` otherwise.

    In training, ``a ~ U(lower, upper)`` is drawn for each element from nnlite's
    seeded generator (or ``generator``, an nnlite addition), and the gradient is
    ``a`` where ``x <= 0``; in evaluation ``a = (lower + upper) / 2``, a plain
    leaky ReLU. PyTorch's default is ``training=False``.
    """
    lower = real_number("rrelu", "lower", lower)
    upper = real_number("rrelu", "upper", upper)
    if lower > upper:
        raise ValueError(f"rrelu: lower must be <= upper, got lower={lower}, upper={upper}")
    input = _floating("rrelu", input)
    if training:
        return _maybe_in_place("rrelu", input, inplace, _rrelu_training, lower, upper, generator)
    return _maybe_in_place("rrelu", input, inplace, leaky_relu, (lower + upper) / 2)
