"""Products: ``prod``, the product of a tensor's elements, over one dim or all of them.

The derivative of ``x_1 x_2 ... x_n`` by ``x_i`` is the product of the other
elements. Without zeros that is the product divided by ``x_i``; with a zero the
division would be 0/0, so the product of the others is built from two running
products instead, and the gradient stays exact.
"""
import numpy as np

from .._kernels.checks import is_int
from ..autograd import Function, constant
from ..tensor import Tensor, is_floating_dtype
from .broadcasting import expand
from .casting import cast
from .concatenation import cat
from .dims import _dims
from .promotion import tensor_input
from .reduction import _grad_back
from .shape import reshape


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

    Written with ``Tensor.cumprod``, whose gradient is exact at zeros: second derivatives of
    prod are exact too.
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
