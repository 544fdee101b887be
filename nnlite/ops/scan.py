"""Scans: running sums, products, log-sum-exps, maxima and minima along one dim.

A scan's output at position i reads the inputs at positions j <= i. Its gradient
at position j therefore collects the incoming gradients of the outputs at
positions i >= j: the backward of a scan is a scan run the other way (the
gradient of ``cumsum`` is a reversed ``cumsum`` of the gradient). The reversals
are views made by indexing (``x[..., ::-1]``), so every backward here is written
in differentiable operations and second derivatives are exact, at zeros of
``cumprod`` as well.

``cummax`` and ``cummin`` return ``(values, indices)``, like ``max(dim)``; the
values are a ``gather`` of the input at the indices, so their gradient goes to the
element each running maximum came from.

Integer and bool tensors are summed and multiplied in int64, as in PyTorch;
``dtype=`` converts the input first. Float tensors are carried in a wider
accumulator, as PyTorch's CPU scans carry them (:func:`_accumulator`): a running sum
of a million float32 numbers, or of a few thousand float16 ones, would otherwise
lose most of its digits (a float16 sum of numbers below 1 stops growing at 2048).
"""

import numpy as np

from ..autograd import Function, constant, is_grad_enabled
from ..tensor import Tensor, int64, is_bfloat16, is_floating_dtype
from .arithmetic import abs as _abs
from .elementwise_choice import where
from .indexing import gather
from .pointwise import exp, log
from .promotion import floating_input, tensor_input
from .dims import _dim
from .casting import cast
from .concatenation import cat
from .extrema import values_indices
from .shape import reshape
from .sums import sum  # noqa: A004


def _accumulator(dtype):
    """The dtype a running sum, product or log-sum-exp is carried in: float64 for float32,
    float32 for the 16-bit floats, as in PyTorch; the result is rounded back once."""
    if dtype == np.float32:
        return np.dtype(np.float64)
    if dtype == np.float16 or is_bfloat16(dtype):
        return np.dtype(np.float32)
    return dtype


def _reversed(x, dim):
    """``x`` read backwards along ``dim`` (a view, through differentiable indexing)."""
    return x[(slice(None),) * dim + (slice(None, None, -1),)]


def _scan(cls, input, dim):
    """``cls`` along ``dim``; a 0-dim tensor is scanned as a one-element vector."""
    if input.ndim == 0:
        return reshape(cls.apply(reshape(input, 1), 0), ())
    return cls.apply(input, dim)


def _counting(op, input, dim, dtype):
    """``input`` and ``dim`` for cumsum/cumprod: ``dtype`` applied first, integers and bools as int64."""
    dim = _dim(op, dim, tensor_input(op, input).ndim)
    if dtype is not None:
        input = cast(input, dtype)
    elif not is_floating_dtype(input.dtype):
        input = cast(input, int64)
    return input, dim


class CumSum(Function):
    """out_i = sum_{j<=i} x_j; the gradient at j is the reversed running sum sum_{i>=j} g_i."""
    saves_inputs = False

    def forward(self, a, dim):
        self.dim = dim
        out = a.cumsum(axis=dim, dtype=_accumulator(a.dtype))
        if out.dtype.kind == "f":
            out += 0.0   # the sum starts from +0.0, as PyTorch's does: a run of -0.0 sums to 0.0
        return out.astype(a.dtype, copy=False)

    def backward(self, grad):
        return _reverse_cumsum(grad, self.dim), None


def _reverse_cumsum(t, dim):
    """sum_{i>=j} t_i along ``dim``."""
    return _reversed(CumSum.apply(_reversed(t, dim), dim), dim)


def cumsum(input, dim, *, dtype=None):
    """Running sum along ``dim``: :math:`y_i = \\sum_{j \\le i} x_j`.

    Integer and bool tensors give int64 (``dtype=`` converts first). inf - inf along
    the way gives NaN from there on, as in PyTorch.
    """
    input, dim = _counting("cumsum", input, dim, dtype)
    return _scan(CumSum, input, dim)


class CumProd(Function):
    """out_i = prod_{j<=i} x_j; d out_i / d x_j = prod_{m<=i, m != j} x_m for i >= j.

    The gradient at j sums that over i >= j. Where the slice along ``dim`` has no zero
    up to j it is ``reverse_cumsum(g * out)_j / x_j``. Let k be the first zero:

    * j < k: the same formula holds (out_i = 0 for i >= k, so those terms vanish);
    * j = k: ``reverse_cumsum(g * cumprod(x with x_k = 1))_k``: each out_i with x_k
      left out;
    * j > k: 0, since every out_i with i >= j still has the factor x_k = 0.

    That 0 has slopes in x_k, though, which a second derivative needs. So when the
    backward itself is being recorded (``create_graph=True``), the gradient is formed
    one position at a time instead (:func:`_cumprod_grad_by_omission`), as PyTorch does.
    """
    save_output = True

    def forward(self, a, dim):
        self.dim = dim
        return a.cumprod(axis=dim, dtype=_accumulator(a.dtype)).astype(a.dtype, copy=False)

    def backward(self, grad):
        x, out, dim = self.inputs[0], self.out, self.dim
        zero = x.data == 0
        if not np.any(zero):
            return _reverse_cumsum(grad * out, dim) / x, None
        if is_grad_enabled():
            return _cumprod_grad_by_omission(grad, x, dim), None
        zeros_so_far = np.cumsum(zero, axis=dim)
        before, first = constant(zeros_so_far == 0), constant(zero & (zeros_so_far == 1))
        before_first = _reverse_cumsum(grad * out, dim) / where(before, x, 1.0)
        at_first = _reverse_cumsum(grad * CumProd.apply(where(first, 1.0, x), dim), dim)
        return where(before, before_first, where(first, at_first, 0.0)), None


def _cumprod_grad_by_omission(grad, x, dim):
    """The gradient of cumprod at j as ``sum_{i>=j} g_i cumprod(x with x_j = 1)_i``, for each j.

    O(n^2) work for n elements along ``dim`` (n running products), but with no mask:
    every value comes from the x's it depends on, so every derivative of it is exact.
    """
    n = x.shape[dim]
    position = constant(np.arange(n).reshape((-1,) + (1,) * (x.ndim - dim - 1)))
    columns = []
    for j in range(n):
        omitted = CumProd.apply(where(position == j, 1.0, x), dim)
        tail = (slice(None),) * dim + (slice(j, None),)
        columns.append(sum((grad * omitted)[tail], dim, keepdim=True))
    return cat(columns, dim)


def cumprod(input, dim, *, dtype=None):
    """Running product along ``dim``: :math:`y_i = \\prod_{j \\le i} x_j`.

    Integer and bool tensors give int64 (``dtype=`` converts first). The gradient is
    exact where the input has zeros (no division by them), as in PyTorch.

    >>> import nnlite as nl
    >>> x = nl.tensor([2.0, 0.0, 3.0], requires_grad=True)
    >>> nl.cumprod(x, 0).sum().backward()   # d/dx of 2 + 2 x1 + 2 x1 x2 at x1 = 0
    >>> x.grad.tolist()
    [1.0, 8.0, 0.0]
    """
    input, dim = _counting("cumprod", input, dim, dtype)
    return _scan(CumProd, input, dim)


class LogCumSumExp(Function):
    """out_i = log sum_{j<=i} e^{x_j}, accumulated with logaddexp (no overflow).

    d out_i / d x_j = e^{x_j - out_i} for i >= j, so the gradient at j is
    ``e^{x_j} sum_{i>=j} g_i e^{-out_i}``. Both exponentials can overflow, so the sum
    is taken in logs, by a reversed logcumsumexp of ``log g_i - out_i``, for the
    positive and the negative part of g separately (a log needs positive numbers).
    The lowest float stands for log 0 in each part.
    """
    save_output = True

    def forward(self, a, dim):
        self.dim = dim
        return np.logaddexp.accumulate(a, axis=dim, dtype=_accumulator(a.dtype)).astype(a.dtype, copy=False)

    def backward(self, grad):
        x, out, dim = self.inputs[0], self.out, self.dim
        lowest = np.finfo(grad.dtype).min
        # log|g| where g != 0; at g = 0 the log of 1 stands in (never picked), so no log 0
        log_size = log(_abs(where(constant(grad.data == 0), 1.0, grad)))
        parts = []
        with np.errstate(over="ignore"):   # lowest - out may round to -inf: exp of it is the 0 it stands for
            for part in (grad.data > 0, grad.data < 0):
                log_part = where(constant(part), log_size, lowest)
                parts.append(exp(_reversed(LogCumSumExp.apply(_reversed(log_part - out, dim), dim), dim) + x))
        return parts[0] - parts[1], None


def logcumsumexp(input, dim):
    """Running log-sum-exp along ``dim``: :math:`y_i = \\log \\sum_{j \\le i} e^{x_j}`, without overflow.

    -inf elements add nothing; an inf makes the rest inf. Integer tensors are
    computed in the default float dtype (PyTorch refuses them).
    """
    input = floating_input("logcumsumexp", input)
    return _scan(LogCumSumExp, input, _dim("logcumsumexp", dim, input.ndim))


def _running_extreme(op, accumulate, input, dim):
    """(values, indices) of the running maximum or minimum; ties and NaN as in PyTorch.

    Position j is a candidate when x_j equals the running extreme at j (or is NaN,
    which then wins for good): the index at i is the last candidate up to i, so among
    equal values the latest one is taken.
    """
    dim = _dim(op, dim, tensor_input(op, input).ndim)
    x = input if input.ndim else reshape(input, 1)
    a = x.data
    candidate = a == accumulate(a, axis=dim)
    if is_floating_dtype(a.dtype):
        candidate |= np.isnan(a)
    positions = np.arange(a.shape[dim]).reshape((-1,) + (1,) * (a.ndim - dim - 1))
    indices = np.maximum.accumulate(np.where(candidate, positions, 0), axis=dim)
    values = gather(x, dim, indices)
    if input.ndim == 0:
        return values_indices(reshape(values, ()), Tensor._make(indices.reshape(()), None))
    return values_indices(values, Tensor._make(indices, None))


def cummax(input, dim):
    """Running maximum along ``dim`` and where it was found: ``(values, indices)``.

    Among equal values the latest index is taken, and from a NaN on the values are
    NaN (the latest NaN's index), as in PyTorch. The gradient goes to those elements.

    >>> import nnlite as nl
    >>> values, indices = nl.cummax(nl.tensor([1.0, 3.0, 3.0, 2.0]), 0)
    >>> values.tolist(), indices.tolist()
    ([1.0, 3.0, 3.0, 3.0], [0, 1, 2, 2])
    """
    return _running_extreme("cummax", np.maximum.accumulate, input, dim)


def cummin(input, dim):
    """Running minimum along ``dim`` and where it was found: ``(values, indices)``; ties as :func:`cummax`."""
    return _running_extreme("cummin", np.minimum.accumulate, input, dim)
