"""Reductions: sum, mean, var, std, max, min, logsumexp, prod, all, any (PyTorch's ``dim``/``keepdim``).

The gradient of a reduction is spread back over the reduced elements: equally for
sum and mean, to the winners for max and min, by softmax weights for logsumexp,
and to each element by the product of the others for prod. all and any give bool
tensors and no gradient.
"""
import builtins
from collections import namedtuple

import numpy as np

from .._kernels.checks import is_int
from ..autograd import Function, chosen_by, constant
from ..tensor import Tensor, is_bfloat16, is_floating_dtype
from .arithmetic import abs as _abs
from .compare import maximum, minimum, where
from .dims import _dim, _dims
from .pointwise import exp
from .promotion import tensor_input
from .shape import cast, cat, expand, reshape

values_indices = namedtuple("values_indices", ["values", "indices"])


def _reduced_dims(dim, ndim):
    """The dims a reduction reduces: ``dim`` normalised, with an empty list meaning every dim.

    PyTorch reads ``sum(dim=())`` (and ``dim=[]``) as "no dims named, so all of them", as it
    reads ``dim=None``.
    """
    if dim is not None and type(dim) in (tuple, list) and not dim:
        dim = None
    return _dims(dim, ndim)


def _keepdim_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _grad_back(grad, in_shape, dims):
    """Reshape a reduced gradient so it broadcasts against the input, then expand."""
    return expand(reshape(grad, _keepdim_shape(in_shape, dims)), in_shape)


def _refuse_bfloat16_sums(a, op):
    """Raise TypeError for bfloat16, whose NumPy sums (ml_dtypes') round every partial sum to bfloat16.

    Added one at a time in bfloat16, 1000 ones sum to 256. The TypeError makes
    ``Function.apply`` sum in float32 and round once, as NumPy's float16 sum does
    (its partial sums are float32).
    """
    if is_bfloat16(a.dtype):
        raise TypeError(f"{op}: no bfloat16 sum (its partial sums would be rounded to bfloat16)")


class Sum(Function):
    saves_inputs = False

    def forward(self, a, dims, keepdim):
        if a.dtype.kind == "V":   # not float16/32/64: perhaps bfloat16
            _refuse_bfloat16_sums(a, "sum")
        self.in_shape, self.dims = a.shape, dims
        return np.sum(a, axis=dims, keepdims=keepdim)

    def backward(self, grad):
        return _grad_back(grad, self.in_shape, self.dims), None, None


def sum(input, dim=None, keepdim=False, dtype=None):  # noqa: A001
    if dtype is not None:
        input = cast(input, dtype)
    if input.dtype == np.bool_ or input.dtype.kind in "iu":
        return Tensor._make(np.asarray(np.sum(input.data, axis=_reduced_dims(dim, input.ndim), keepdims=keepdim)),
                            None)
    return Sum.apply(input, _reduced_dims(dim, input.ndim), keepdim)


def mean(input, dim=None, keepdim=False):
    dims = _reduced_dims(dim, input.ndim)
    if not is_floating_dtype(input.dtype):
        raise TypeError(f"mean: expected a floating point tensor, got {input.dtype}")
    n = int(np.prod([input.shape[d] for d in dims])) if dims else 1
    return Sum.apply(input, dims, keepdim) * (1.0 / n if n else np.nan)


def var(input, dim=None, correction=1, keepdim=False, unbiased=None):
    """Variance with Bessel's ``correction`` (1 = unbiased, PyTorch's default).

    ``dim=()`` reduces every dim, as in PyTorch; its gradient is the one of ``dim=None``
    (PyTorch 2.13 gives inf there, dividing by n - 1 with n taken as 1).
    """
    if unbiased is not None:
        correction = 1 if unbiased else 0
    dims = _reduced_dims(dim, input.ndim)
    n = int(np.prod([input.shape[d] for d in dims])) if dims else 1
    centered = input - mean(input, dims, keepdim=True)
    return sum(centered * centered, dims, keepdim) * (1.0 / (n - correction) if n - correction > 0 else np.inf)


def std(input, dim=None, correction=1, keepdim=False, unbiased=None):
    return Root.apply(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased), 2)


class Root(Function):
    """s ** (1/p) for s >= 0 (a sum of powers), with gradient 0 where s = 0.

    The p-th root has an infinite slope at 0, and the sum inside it a zero slope
    there, so the chain rule alone gives inf * 0 = NaN for the norm of a zero
    vector or the standard deviation of equal numbers. PyTorch defines those
    gradients as 0 (a subgradient), and so does this op.
    """
    save_output = True

    def forward(self, s, p):
        self.p = p
        return np.sqrt(s) if p == 2 else np.power(s, 1.0 / p)

    def backward(self, grad):
        s, out = self.inputs[0], self.out
        zero = s.data == 0
        if not np.any(zero):
            return grad * out / (self.p * s), None     # d s^(1/p)/ds = s^(1/p) / (p s)
        one = Tensor._make(np.ones((), s.dtype), None)
        safe = where(Tensor._make(zero, None), one, s)
        return where(Tensor._make(zero, None), 0 * one, grad * out / (self.p * safe)), None


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
    if dim is None:
        idx = argfn(input.data)
        return Tensor._make(np.asarray(idx, dtype=np.int64).reshape((1,) * input.ndim if keepdim else ()), None)
    d = _dim(op, dim, input.ndim)
    if input.ndim == 0:   # PyTorch: a 0-dim input gives a 0-dim index, keepdim or not
        return Tensor._make(np.asarray(0, dtype=np.int64), None)
    idx = argfn(input.data, axis=d)
    return Tensor._make(np.asarray(np.expand_dims(idx, d) if keepdim else idx, dtype=np.int64), None)


def argmax(input, dim=None, keepdim=False):
    return _arg_extreme("argmax", np.argmax, input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg_extreme("argmin", np.argmin, input, dim, keepdim)


class LogSumExp(Function):
    """log sum exp(x), computed stably as m + log sum exp(x - m)."""
    save_output = True

    def forward(self, a, dims, keepdim):
        if a.dtype.kind == "V":
            _refuse_bfloat16_sums(a, "logsumexp")
        self.dims, self.keepdim = dims, keepdim
        m = np.max(a, axis=dims, keepdims=True) if a.size else np.zeros(_keepdim_shape(a.shape, dims), a.dtype)
        m = np.where(np.isfinite(m), m, 0)
        out = m + np.log(np.sum(np.exp(a - m), axis=dims, keepdims=True))
        return out if keepdim else out.reshape([s for i, s in enumerate(a.shape) if i not in dims])

    def backward(self, grad):
        a = self.inputs[0]
        out = _grad_back(self.out, a.shape, self.dims)
        return _grad_back(grad, a.shape, self.dims) * exp(a - out), None, None


def logsumexp(input, dim, keepdim=False):
    """log sum exp over ``dim``; ``dim=()`` reduces every dim, as ``sum`` does (PyTorch 2.13 raises there)."""
    return LogSumExp.apply(input, _reduced_dims(dim, input.ndim), keepdim)


def norm(input, p=2, dim=None, keepdim=False):
    """The p-norm of the elements over ``dim``, for any real ``p`` or ``'fro'``.

    ``p = 0`` counts the nonzeros (gradient 0), ``inf`` and ``-inf`` take the
    largest and smallest ``|x|``, ``'fro'`` is the 2-norm over ``dim`` (the
    Frobenius norm of a matrix). The gradient at a zero vector is 0, as in
    PyTorch (see :class:`Root`), and so is it at a zero entry for p < 1, where
    ``|x|^p`` has an infinite slope.
    """
    if p == "fro":
        p = 2
    elif isinstance(p, str):
        raise ValueError(f"norm: p must be a number or 'fro', got {p!r} (the nuclear norm is not offered)")
    if p == 2:
        return Root.apply(sum(input * input, dim, keepdim), 2)
    if p == 1:
        return sum(_abs(input), dim, keepdim)
    if p == float("inf"):
        return amax(_abs(input), dim, keepdim)
    if p == -float("inf"):
        return amin(_abs(input), dim, keepdim)
    if p == 0:
        # the count of nonzeros (NaN among them) is flat in x: its gradient is 0, as in PyTorch
        return chosen_by(sum(constant((input.data != 0).astype(input.dtype)), dim, keepdim), input)
    if p < 1:
        # The slope of |x|^p at x = 0 is infinite (and |x|'s there 0: NaN by the chain rule); PyTorch
        # takes it to be 0, so zeros are routed around the power. Their power is 0 (p > 0) or
        # inf (p < 0, where one zero makes the norm 0 and every gradient 0).
        # A zero's term is 0 * x, not a constant: its gradient is then 0 times the norm's, as in
        # PyTorch, which is NaN when another entry made the norm NaN.
        nonzero = input.data != 0
        safe = where(nonzero, input, np.ones((), input.dtype))
        at_zero = np.full((), 0.0 if p > 0 else np.inf, input.dtype) + input * 0.0
        return Root.apply(sum(where(nonzero, _abs(safe) ** p, at_zero), dim, keepdim), p)
    return Root.apply(sum(_abs(input) ** p, dim, keepdim), p)


class Prod(Function):
    """The product over one dim (or all elements); d/dx_i = the product of the other elements.

    Without zeros that is ``out / x_i``. With a zero the division would be 0/0, so the
    product of the others is formed without dividing (:func:`_product_of_others`).
    """
    save_output = True

    def forward(self, a, dim, keepdim):
        self.dim = dim
        return a.prod(axis=dim, keepdims=keepdim)

    def backward(self, grad):
        x = self.inputs[0]
        dims = tuple(range(x.ndim)) if self.dim is None else (self.dim,)
        spread = _grad_back(grad, x.shape, dims)
        if not np.any(x.data == 0):
            return spread * _grad_back(self.out, x.shape, dims) / x, None, None
        if self.dim is None:
            others = reshape(_product_of_others(reshape(x, -1), 0), x.shape)
        else:
            others = _product_of_others(x, self.dim)
        return spread * others, None, None


def _product_of_others(x, dim):
    """prod_{j != i} x_j along ``dim``, without dividing: the product of the elements before i
    times the product of those after i, two running products.

    Written with ``Tensor.cumprod`` (scan.py imports this module, so the method, not an
    import), whose gradient is exact at zeros: second derivatives of prod are exact too.
    """
    n = x.shape[dim]
    edge = constant(np.ones(x.shape[:dim] + (1,) + x.shape[dim + 1:], x.dtype))
    if n <= 1:
        return expand(edge, x.shape)
    lead = (slice(None),) * dim
    before = x[lead + (slice(0, n - 1),)].cumprod(dim)              # x_0, x_0 x_1, ...
    after = x[lead + (slice(n - 1, 0, -1),)].cumprod(dim)           # x_{n-1}, x_{n-1} x_{n-2}, ...
    return cat([edge, before], dim) * cat([after[lead + (slice(None, None, -1),)], edge], dim)


def prod(input, dim=None, keepdim=False, dtype=None):
    """The product of the elements, over ``dim`` (one dim) or of all of them.

    Integer and bool tensors give int64 (``dtype=`` converts first); an empty product
    is 1. The gradient is exact where the input has zeros: with one zero only that
    element gets a gradient (the product of the others), with two or more none does.

    >>> import nnlite as nl
    >>> x = nl.tensor([2.0, 0.0, 3.0], requires_grad=True)
    >>> nl.prod(x).backward()
    >>> x.grad.tolist()
    [0.0, 6.0, 0.0]
    """
    tensor_input("prod", input)
    if dim is not None and not is_int(dim):
        raise TypeError(f"prod: dim must be an int or None (prod reduces one dim), got {dim!r}")
    if dtype is not None:
        input = cast(input, dtype)
    elif not is_floating_dtype(input.dtype):
        input = cast(input, np.int64)
    axis = None if dim is None else _dims(dim, input.ndim)
    axis = axis[0] if axis else None
    if not is_floating_dtype(input.dtype):
        return Tensor._make(np.asarray(np.prod(input.data, axis=axis, keepdims=keepdim)), None)
    return Prod.apply(input, axis, keepdim)


def _truth(op, reduce, input, dim, keepdim):
    """``reduce`` (np.all or np.any) over ``dim``: bool, or uint8 for a uint8 tensor, as in PyTorch."""
    out = np.asarray(reduce(tensor_input(op, input).data, axis=_dims(dim, input.ndim, op), keepdims=keepdim))
    return Tensor._make(out.astype(np.uint8) if input.dtype == np.uint8 else out, None)


def all(input, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """True where every element over ``dim`` (int, tuple or None: all) is nonzero; NaN counts as
    nonzero and an empty reduction gives True. No gradient."""
    return _truth("all", np.all, input, dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """True where some element over ``dim`` (int, tuple or None: all) is nonzero; NaN counts as
    nonzero and an empty reduction gives False. No gradient."""
    return _truth("any", np.any, input, dim, keepdim)
