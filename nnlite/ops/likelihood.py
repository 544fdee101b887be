"""Negative log-likelihoods of a distribution's parameters: binary cross-entropy on Bernoulli
probabilities, and the Poisson and Gaussian NLL losses.

``binary_cross_entropy`` is one Function, because its input gradient is PyTorch's
guarded closed form rather than the slope of its floored logs. The Poisson and
Gaussian losses are compositions of differentiable ops with PyTorch's guards
(an ``eps`` in the log, a variance clamped at ``eps`` with its gradient passed
through). The reduction helpers are the other losses' (``loss.py``).
"""
import math

import numpy as np

from ..autograd import Function, constant
from .arithmetic import _wants
from .elementwise_choice import clamp, where
from .distance import FloorValue
from .promotion import broadcast_shape
from .casting import cast
from .loss import (_broadcasts_to, _check_reduction, _data, _float_target, _input_dtype, _legacy, _reduce,
                   _same_shape)
from .pointwise import exp, log
from .shape import unsqueeze

__all__ = ["binary_cross_entropy", "poisson_nll_loss", "gaussian_nll_loss"]


# --------------------------------------------- BCE on probabilities ---

# PyTorch's two guards in BCE: each log term is floored at -100 (a confident mistake costs 100,
# not inf), and x (1 - x) is kept at least 1e-12 from 0 in the input gradient. PyTorch stores that
# 1e-12 as a float32, so it is rounded to float32 here too (a gradient of 1e12 would otherwise
# differ from PyTorch's in the 9th digit).
_LOG_FLOOR = -100.0
_BCE_EPS = float(np.float32(1e-12))


def _floored_log(p):
    """``max(log p, -100)``, never evaluating log 0 (its -inf would make gradients NaN)."""
    above = _data(p) > math.exp(_LOG_FLOOR)
    one = np.ones((), p.dtype)
    return where(above, log(where(above, p, one)), np.full((), _LOG_FLOOR, p.dtype))


class BinaryCrossEntropy(Function):
    """loss = -(t max(log x, -100) + (1 - t) max(log(1 - x), -100)), elementwise.

    d loss / dx = (x - t) / max(x (1 - x), 1e-12): the slope of the unfloored loss,
    guarded as PyTorch guards it, so a confident mistake (x = 0, t = 1) still gets
    a steep push instead of the floor's zero slope.
    d loss / dt = max(log(1 - x), -100) - max(log x, -100): the slope of the floored loss.
    The second derivative is that of this guarded slope, which is flat where the
    guard holds (x within about 1e-12 of 0 or 1); PyTorch's keeps growing there.
    """

    def forward(self, x, t):
        with np.errstate(divide="ignore"):   # log 0 = -inf is expected, then floored
            log_x = np.maximum(np.log(x), _LOG_FLOOR)
            log_not_x = np.maximum(np.log1p(-x), _LOG_FLOOR)
        return -(t * log_x + (1 - t) * log_not_x)

    def backward(self, grad):
        x, t = self.inputs
        gx = grad * (x - t) / clamp(x * (1.0 - x), min=_BCE_EPS) if _wants(x) else None
        gt = grad * (_floored_log(1.0 - x) - _floored_log(x)) if _wants(t) else None
        return gx, gt


def _in_unit_interval(name, values, hint=""):
    """Refuse ``values`` outside [0, 1] (NaN included), as PyTorch's BCE refuses its input and target."""
    outside = ~((values >= 0) & (values <= 1))
    if outside.any():
        raise ValueError(f"binary_cross_entropy: {name} must hold probabilities in [0, 1]{hint}; got "
                         f"{int(outside.sum())} value(s) outside, e.g. {float(values[outside][0])}")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """``-[t log x + (1 - t) log(1 - x)]`` for probabilities ``x``, each log floored at -100 as in PyTorch.

    ``input`` holds probabilities in [0, 1] (a sigmoid's output) and ``target``
    has its shape and, as in PyTorch, its dtype, with values in [0, 1] too (either
    outside, or NaN, is a ValueError); ``weight`` broadcasts to that shape
    and rescales each element (the loss keeps the input's dtype, as in PyTorch);
    "mean" averages over elements. On logits,
    :func:`binary_cross_entropy_with_logits` is the stabler choice.

    >>> import nnlite as nl
    >>> round(binary_cross_entropy(nl.tensor([0.8, 0.4]), nl.tensor([1.0, 0.0])).item(), 6)  # -(log .8 + log .6) / 2
    0.366985
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("binary_cross_entropy", reduction)
    _same_shape("binary_cross_entropy", input, target)
    _input_dtype("binary_cross_entropy", "target", target, input)
    _in_unit_interval("input", input.data, " (apply sigmoid first, or use binary_cross_entropy_with_logits "
                                           "on logits)")
    _in_unit_interval("target", _data(target))
    loss = BinaryCrossEntropy.apply(input, _float_target(target, input))
    if weight is not None:
        _broadcasts_to("binary_cross_entropy", "weight", weight, input.shape)
        loss = cast(loss * weight, input.dtype)   # PyTorch multiplies in place
    return _reduce(loss, reduction)


# ----------------------------------------------------- likelihoods ---

def _stirling(target):
    """``t log t - t + 0.5 log(2 pi t)`` (Stirling's log t!) where t > 1, else 0.

    It is evaluated only where t > 1, so no log 0 reaches a gradient.
    """
    big = _data(target) > 1
    safe = where(big, target, np.ones((), target.dtype))
    term = safe * log(safe) - safe + 0.5 * log(safe * (2 * math.pi))
    return where(big, term, np.zeros((), target.dtype))


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """``rate - t log rate``: the Poisson negative log-likelihood of counts ``t``, without ``log t!``.

    With ``log_input=True`` (the default) ``input`` is the log of the rate,
    ``exp(input) - t * input``; otherwise it is the rate, ``input - t * log(input + eps)``.
    ``full=True`` adds Stirling's approximation of ``log t!`` for targets above 1
    (PyTorch leaves it out where t <= 1). ``input`` and ``target`` broadcast.

    With ``full=True`` the gradient with respect to a target t <= 0 is finite here
    (``-input``, or ``-log(input + eps)``), the slope of a loss whose Stirling term is
    0 for every t <= 1. PyTorch 2.13's is NaN there, an artefact of its backward: it
    computes the term for every target and masks it afterwards, so the masked zero
    gradient meets ``log 0`` (0 * inf) or the log of a negative number. For targets
    above 0 the two agree.

    >>> import nnlite as nl
    >>> poisson_nll_loss(nl.tensor([0.0]), nl.tensor([2.0])).item()   # e^0 - 2 * 0
    1.0
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("poisson_nll_loss", reduction)
    broadcast_shape("poisson_nll_loss", input=input, target=target)
    target = _float_target(target, input)
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        loss = loss + _stirling(target)
    return _reduce(loss, reduction)


def _variance_shape(input, var):
    """``var`` shaped to broadcast against ``input`` by PyTorch's rules, or a ValueError."""
    shape, given = tuple(input.shape), tuple(var.shape)
    if given == shape:
        return var
    if input.ndim and given == shape[:-1]:   # one variance per row, shared along the last dim
        return unsqueeze(var, -1)
    differ = [i for i in range(len(shape)) if len(given) == len(shape) and given[i] != shape[i]]
    if len(given) == len(shape) and len(differ) == 1 and given[differ[0]] == 1:
        return var   # shared along the one dim where it has size 1
    raise ValueError(f"gaussian_nll_loss: var must have the input's shape {shape}, that shape without its last "
                     f"dim {shape[:-1]}, or that shape with one dim of size 1; got {given}")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """``0.5 (log var + (input - target)**2 / var)``: Gaussian negative log-likelihood with a predicted variance.

    ``var`` is a float, or a tensor of the input's shape (one variance per
    element), of that shape without its last dim, or of that shape with one
    dim of size 1 (one variance shared along it). Negative variances are
    refused. ``var`` is raised to ``eps`` for stability in value only: as in
    PyTorch, its gradient ignores that floor (:class:`~nnlite.ops.distance.FloorValue`).
    ``full=True`` adds the constant ``0.5 log(2 pi)``.

    >>> import nnlite as nl
    >>> round(gaussian_nll_loss(nl.tensor([3.0]), nl.tensor([1.0]), nl.tensor([4.0])).item(), 6)   # (log 4 + 1) / 2
    1.193147
    """
    _check_reduction("gaussian_nll_loss", reduction)
    if isinstance(var, (int, float, np.floating)):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var must be >= 0, got {var}")
        var = constant(np.full(input.shape, var, input.dtype))
    v = _data(var)
    if np.any(v < 0):
        raise ValueError(f"gaussian_nll_loss: var must be >= 0 everywhere, got {int((v < 0).sum())} negative "
                         f"entries (smallest {float(v.min())})")
    broadcast_shape("gaussian_nll_loss", input=input, target=target)
    var = FloorValue.apply(_variance_shape(input, var), eps)
    d = input - target
    loss = 0.5 * (log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)

