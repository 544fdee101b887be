"""Extrema: max, min, amax, amin, argmax and argmin.

The gradient of a maximum goes to the element that won. ``max(x, dim)`` and
``min(x, dim)`` return a ``(values, indices)`` pair, and each value's gradient
goes to the element at its index; over several dims or all of them (``amax``,
``amin``, ``max()`` of everything) tied winners share it equally, as in PyTorch.
Indices, and so argmax and argmin, are integers and carry no gradient. With a
Tensor as second argument, ``max`` and ``min`` are the elementwise ``maximum``
and ``minimum`` of elementwise_choice.py.
"""
import builtins
from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .elementwise_choice import maximum, minimum
from .dims import _dim, _dims
from .reduction import _grad_back, _reduced_dims

values_indices = namedtuple("values_indices", ["values", "indices"])


class _Extreme(Function):
    """max/min over all elements: ties share the gradient equally (as PyTorch's amax).

    Where the result is NaN, amax and amin give every element a NaN gradient (0 / 0
    winners), as PyTorch's do; ``max()`` and ``min()`` (``nan_wins``) share it
    among the NaNs, as PyTorch's do.
    """
    pick = None
    nan_wins = False

    def forward(self, a, dims, keepdim):
        if builtins.any(a.shape[d] == 0 for d in dims):
            # an empty batch is fine (nothing to reduce, nothing returned); an empty reduced dim has no max
            raise RuntimeError(f"{type(self).__name__.lower()}(): cannot reduce over an empty dim of a tensor "
                               f"of shape {a.shape}")
        self.dims = dims
        out = self.pick(a, axis=dims, keepdims=True) if a.size else \
            np.empty([1 if i in dims else n for i, n in enumerate(a.shape)], a.dtype)
        self.winners = a == out
        # max() and min() reduce everything to one value: a NaN result's NaNs share the gradient
        # (NaN == NaN is False, so no element "won")
        if self.nan_wins and a.dtype.kind == "f" and out.size and out.flat[0] != out.flat[0]:
            self.winners = np.isnan(a)
        return out if keepdim else out.reshape([s for i, s in enumerate(a.shape) if i not in dims])

    def backward(self, grad):
        a = self.inputs[0]
        w = self.winners
        share = (w / w.sum(axis=self.dims, keepdims=True)).astype(grad.dtype)
        return _grad_back(grad, a.shape, self.dims) * Tensor._make(share, None), None, None


class Amax(_Extreme):
    pick = staticmethod(np.max)


class Amin(_Extreme):
    pick = staticmethod(np.min)


class Max(Amax):
    nan_wins = True


class Min(Amin):
    nan_wins = True


class _ExtremeDim(Function):
    """max/min along one dim, returning values; the gradient goes to the chosen index."""
    arg = None

    def forward(self, a, dim, keepdim):
        if a.shape[dim] == 0:
            raise RuntimeError(f"cannot reduce over an empty dim {dim} of shape {a.shape}")
        idx = self.arg(a, axis=dim)
        self.dim, self.indices = dim, np.expand_dims(idx, dim)
        out = np.take_along_axis(a, self.indices, axis=dim)
        return out if keepdim else np.squeeze(out, axis=dim)

    def backward(self, grad):
        a = self.inputs[0]
        mask = np.zeros(a.shape, dtype=grad.dtype)
        np.put_along_axis(mask, self.indices, 1, axis=self.dim)
        return _grad_back(grad, a.shape, (self.dim,)) * Tensor._make(mask, None), None, None


class MaxDim(_ExtremeDim):
    arg = staticmethod(np.argmax)


class MinDim(_ExtremeDim):
    arg = staticmethod(np.argmin)


def _extreme(op, x, dim, keepdim, whole, along, argfn):
    if dim is None:
        return whole.apply(x, _dims(None, x.ndim), False)
    d = _dim(op, dim, x.ndim)
    if x.ndim == 0:
        return values_indices(x, Tensor._make(np.asarray(0), None))
    values = along.apply(x, d, keepdim)
    idx = argfn(x.data, axis=d)
    if keepdim:
        idx = np.expand_dims(idx, d)
    return values_indices(values, Tensor._make(np.asarray(idx, dtype=np.int64), None))


def max(input, dim=None, keepdim=False, *, other=None):  # noqa: A001
    """Largest element; with ``dim``, a (values, indices) pair like PyTorch; with a Tensor
    second argument (``other``), the elementwise ``maximum``."""
    if other is not None or isinstance(dim, Tensor):
        return maximum(input, dim if other is None else other)
    return _extreme("max", input, dim, keepdim, Max, MaxDim, np.argmax)


def min(input, dim=None, keepdim=False, *, other=None):  # noqa: A001
    if other is not None or isinstance(dim, Tensor):
        return minimum(input, dim if other is None else other)
    return _extreme("min", input, dim, keepdim, Min, MinDim, np.argmin)


def amax(input, dim=None, keepdim=False):
    return Amax.apply(input, _reduced_dims(dim, input.ndim), keepdim)


def amin(input, dim=None, keepdim=False):
    return Amin.apply(input, _reduced_dims(dim, input.ndim), keepdim)


def _arg_extreme(op, argfn, input, dim, keepdim):
    """The index of the extreme element (flat with ``dim=None``; then keepdim keeps every dim as 1)."""
    if input.dtype == np.bool_:   # PyTorch refuses bool here (max and min take it)
        raise TypeError(f"{op}: expected a number tensor, got dtype bool; cast it first (x.int())")
    if dim is None:
        if input.data.size == 0:
            raise IndexError(f"{op}: an empty tensor (shape {input.shape}) has no {op[3:]}; give a dim of nonzero size")
        idx = argfn(input.data)
        return Tensor._make(np.asarray(idx, dtype=np.int64).reshape((1,) * input.ndim if keepdim else ()), None)
    d = _dim(op, dim, input.ndim)
    if input.ndim == 0:   # PyTorch: a 0-dim input gives a 0-dim index, keepdim or not
        return Tensor._make(np.asarray(0, dtype=np.int64), None)
    if input.shape[d] == 0:
        raise IndexError(f"{op}: dim {dim} of the input (shape {input.shape}) is empty, so it has no {op[3:]}")
    idx = argfn(input.data, axis=d)
    return Tensor._make(np.asarray(np.expand_dims(idx, d) if keepdim else idx, dtype=np.int64), None)


def argmax(input, dim=None, keepdim=False):
    return _arg_extreme("argmax", np.argmax, input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg_extreme("argmin", np.argmin, input, dim, keepdim)
