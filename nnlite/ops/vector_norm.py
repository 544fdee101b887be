"""Vector norms: ``norm``, the p-norm of a tensor's elements over any dims.

``norm(x, p) = (sum |x|^p)^(1/p)``: p = 2 is the Euclidean length (over a
matrix, the Frobenius norm ``'fro'``), p = 1 the sum of magnitudes, ``inf`` the
largest magnitude. The p-th root is :class:`Root`, which ``std`` uses as well:
its slope is infinite at 0, where it gives the gradient 0, as PyTorch does.
(Normalisation, batch norm, layer norm and the rest, is in norm.py.)
"""
import numpy as np

from ..autograd import Function, chosen_by, constant
from ..tensor import Tensor
from .arithmetic import abs as _abs
from .elementwise_choice import where
from .extrema import amax, amin
from .promotion import floating_input
from .opmath import is_half
from .sums import in_float32, sum  # noqa: A004


class Root(Function):
    """s ** (1/p) for s >= 0 (a sum of powers), with gradient 0 where s = 0.

    The p-th root has an infinite slope at 0, and the sum inside it a zero slope
    there, so the chain rule alone gives inf * 0 = NaN for the norm of a zero
    vector or the standard deviation of equal numbers. PyTorch defines those
    gradients as 0 (a subgradient), and so does this op.

    At s = inf (a sum of squares that overflowed) the slope ``s^(1/p) / (p s)`` reads
    inf / inf; its limit, ``s^(1/p - 1) / p``, is 0 for p > 1 and p < 0, and this op
    gives that 0, so a norm that overflowed passes 0 to its finite entries, as
    PyTorch's ``x / norm`` does.
    """
    save_output = True

    def forward(self, s, p):
        self.p = p
        return np.sqrt(s) if p == 2 else np.power(s, 1.0 / p)

    def backward(self, grad):
        s, out = self.inputs[0], self.out
        flat = s.data == 0
        if self.p > 1 or self.p < 0:
            flat = flat | np.isposinf(s.data)
        if not np.any(flat):
            return grad * out / (self.p * s), None     # d s^(1/p)/ds = s^(1/p) / (p s)
        one = Tensor._make(np.ones((), s.dtype), None)
        safe = where(Tensor._make(flat, None), one, s)
        return where(Tensor._make(flat, None), 0 * one, grad * out / (self.p * safe)), None


def norm(input, p=2, dim=None, keepdim=False):
    """The p-norm of the elements over ``dim``, for any real ``p`` or ``'fro'``.

    ``p = 0`` counts the nonzeros (gradient 0), ``inf`` and ``-inf`` take the
    largest and smallest ``|x|``, ``'fro'`` is the 2-norm over ``dim`` (the
    Frobenius norm of a matrix). The gradient at a zero vector is 0, as in
    PyTorch (see :class:`Root`), and so is it at a zero entry for p < 1, where
    ``|x|^p`` has an infinite slope. An integer or bool tensor gives the default float
    dtype (PyTorch refuses it).
    """
    input = floating_input("norm", input)
    if is_half(input.dtype):
        return in_float32(norm, input, p, dim, keepdim)
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
