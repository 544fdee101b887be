"""Elementwise choice: each element of the result is an element of one operand.

``where`` picks by a condition, ``masked_fill`` by a mask, ``maximum`` and ``minimum``
by size, ``clamp`` between an input and its bounds. The result has the operands'
promoted dtype (:mod:`nnlite.ops.promotion`: ``where(c, int_tensor, 0.5)`` is float32),
and the gradient of each element goes to the operand it came from (for ties in
``maximum``/``minimum`` it is split evenly, as in PyTorch).
"""
import numpy as np

from ..autograd import Function, constant
from ..tensor import Tensor
from .promotion import checked_int, one_dtype, operand, promoted_dtype, promoted_operands, sequence_as_array
from .broadcasting import sum_to
from .casting import cast
from .selection import nonzero


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _shape(x):
    return np.shape(_data(x))


class Where(Function):
    saves_inputs = False

    def forward(self, cond, a, b):
        self.cond = np.asarray(cond, dtype=bool)
        self.shapes = (_shape(a), _shape(b))
        return np.where(self.cond, a, b)

    def backward(self, grad):
        cond = constant(self.cond)
        zero = np.zeros((), grad.dtype)
        return (None, sum_to(where(cond, grad, zero), self.shapes[0]),
                sum_to(where(cond, zero, grad), self.shapes[1]))


def where(condition, input=None, other=None):
    """Elements of ``input`` where ``condition`` holds, else of ``other``, in their promoted dtype
    (:mod:`nnlite.ops.promotion`: ``where(c, int_tensor, 0.5)`` is float32).

    A Python int beside an integer tensor must fit its dtype, as in PyTorch. ``where(condition)``
    alone gives the indices where it holds, one tensor per dim: ``nonzero(condition, as_tuple=True)``.
    """
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other (or neither, for the indices where condition holds)")
    cond_dtype = np.asarray(_data(condition)).dtype
    if cond_dtype not in (np.bool_, np.uint8):   # PyTorch refuses to read numbers as truth values
        raise TypeError(f"where: expected a bool condition, got dtype {cond_dtype}; compare it first (c != 0)")
    input, other = _int_argument("where", "input", input, other), _int_argument("where", "other", other, input)
    if not one_dtype(input, other):   # two numbers too: NumPy would give them float64, PyTorch float32
        input, other = sequence_as_array(input), sequence_as_array(other)
        dtype = promoted_dtype("where", input, other)
        input, other = operand("where", "input", input, dtype), operand("where", "other", other, dtype)
    return Where.apply(_data(condition), input, other)


def _int_argument(op, name, value, tensor):
    """``value``, checked as PyTorch checks a scalar argument where it is a Python int and
    ``tensor`` an integer Tensor: it must fit the tensor's dtype (:func:`checked_int`)."""
    if type(value) is int and isinstance(tensor, Tensor) and tensor.dtype.kind in "iu":
        return checked_int(op, name, value, tensor.dtype)
    return value


def masked_fill(input, mask, value):
    """``value`` where ``mask`` is True, else ``input`` (the mask broadcasts against it).

    ``value`` is a number or a 0-dim Tensor; a Tensor value gets the sum of the
    gradient at the filled positions (in its own dtype), as in PyTorch.
    """
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be bool, got {m.dtype}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-dim Tensor, got a Tensor of "
                             f"shape {value.shape}")
        return where(m, cast(value, input.dtype), input)
    return where(m, np.asarray(_int_argument("masked_fill", "value", value, input), dtype=input.dtype), input)


class _MaxMin(Function):
    pick = None

    def forward(self, a, b):
        return self.pick(a, b)

    def backward(self, grad):
        a, b = self.inputs
        ad, bd = _data(a), _data(b)
        b_wins, a_wins = ((ad < bd), (ad > bd)) if self.pick is np.maximum else ((ad > bd), (ad < bd))
        # Each side gets the gradient unless the other side won; a tie splits it. Where one is
        # NaN neither wins, and both get it, as in PyTorch.
        weight_a = constant(np.where(ad == bd, 0.5, ~b_wins).astype(grad.dtype))
        weight_b = constant(np.where(ad == bd, 0.5, ~a_wins).astype(grad.dtype))
        return (sum_to(grad * weight_a, _shape(a)) if getattr(a, "requires_grad", False) else None,
                sum_to(grad * weight_b, _shape(b)) if getattr(b, "requires_grad", False) else None)


class Maximum(_MaxMin):
    pick = staticmethod(np.maximum)


class Minimum(_MaxMin):
    pick = staticmethod(np.minimum)


def maximum(input, other):
    """The larger of ``input`` and ``other`` elementwise (NaN if either is), in their promoted dtype."""
    if not one_dtype(input, other):
        input, other = promoted_operands("maximum", input, other)
    return Maximum.apply(input, other)


def minimum(input, other):
    """The smaller of ``input`` and ``other`` elementwise (NaN if either is), in their promoted dtype."""
    if not one_dtype(input, other):
        input, other = promoted_operands("minimum", input, other)
    return Minimum.apply(input, other)


class Clamp(Function):
    """``min(max(x, lo), hi)`` with each gradient going where the output came from, as in PyTorch.

    x gets the gradient where lo <= x <= hi (1 at the bounds themselves), a bound
    where the output is that bound and x is strictly past it. When lo > hi the
    output is hi everywhere, so hi takes the whole gradient and lo and x none.
    The choice is a mask, held as a constant: as in PyTorch, the gradients do not
    depend on x or the bounds (a second derivative in them finds them unused).
    """

    def forward(self, a, lo, hi):
        out = a  # max after min, so lo > hi gives hi everywhere, as in PyTorch
        if lo is not None:
            out = np.maximum(out, lo)
        if hi is not None:
            out = np.minimum(out, hi)
        return out.astype(a.dtype, copy=False)

    def backward(self, grad):
        a, lo, hi = self.inputs
        x, lo_data, hi_data = a.data, _data(lo), _data(hi)
        zero = np.zeros((), grad.dtype)
        grads = [None, None, None]
        if a.requires_grad:
            inside = True
            if lo is not None:
                inside = x >= lo_data
            if hi is not None:
                inside = inside & (x <= hi_data)
            grads[0] = sum_to(where(inside, grad, zero), a.shape)
        if getattr(lo, "requires_grad", False):
            below = x < lo_data if hi is None else (x < lo_data) & (lo_data < hi_data)
            grads[1] = sum_to(where(below, grad, zero), lo.shape)
        if getattr(hi, "requires_grad", False):
            above = x > hi_data if lo is None else (x > hi_data) | (hi_data < lo_data)
            grads[2] = sum_to(where(above, grad, zero), hi.shape)
        return tuple(grads)


_PLAIN_BOUND = (type(None), float, int)


def clamp(input, min=None, max=None):  # noqa: A002 - PyTorch's names
    """``input`` limited to [min, max]; a bound is a number, a Tensor (which broadcasts) or None.

    The result's dtype follows PyTorch's promotion: an int64 tensor clamped at 1.5 is
    float32, and bounds that are tensors take part like any operand.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if type(min) not in _PLAIN_BOUND or type(max) not in _PLAIN_BOUND or input.dtype.kind != "f":
        # tensor bounds or a non-float input: every operand in the promoted dtype (the casts
        # hand each gradient back in its operand's own dtype)
        bounds = [b for b in (min, max) if b is not None]
        dtype = promoted_dtype("clamp", input, *bounds)
        if dtype.kind in "iu":   # a Python int bound must fit the dtype, as in PyTorch
            min, max = (checked_int("clamp", name, b, dtype) if type(b) is int else b
                        for name, b in (("min", min), ("max", max)))
        input, min, max = (None if b is None else operand("clamp", name, b, dtype)
                           for name, b in (("input", input), ("min", min), ("max", max)))
    return Clamp.apply(input, min, max)


clip = clamp
