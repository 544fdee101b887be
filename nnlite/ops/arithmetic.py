"""Arithmetic with NumPy broadcasting: + - * / ** and friends.

When an operand was broadcast in forward, its gradient is summed back to its
own shape (``sum_to``): every position it was copied to sent it a gradient.
"""
import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .compare import where
from .pointwise import log
from .shape import sum_to


def _shape(a):
    return a.shape if isinstance(a, (np.ndarray, Tensor)) else ()


class Add(Function):
    saves_inputs = False

    def forward(self, a, b):
        self.shapes = (_shape(a), _shape(b))
        return _broadcast_op(np.add, a, b, "add")

    def backward(self, grad):
        a, b = self.inputs   # a constant operand (a mask, a fixed bias) gets no gradient summed for it
        return (sum_to(grad, self.shapes[0]) if _wants(a) else None,
                sum_to(grad, self.shapes[1]) if _wants(b) else None)


class Sub(Function):
    saves_inputs = False

    def forward(self, a, b):
        self.shapes = (_shape(a), _shape(b))
        return _broadcast_op(np.subtract, a, b, "sub")

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad, self.shapes[0]) if _wants(a) else None,
                sum_to(-grad, self.shapes[1]) if _wants(b) else None)


def _version_if(x, needed):
    return x._version[0] if needed and isinstance(x, Tensor) else None


class Mul(Function):
    def _saved_versions(self, args):
        a, b = args  # d/da reads b and d/db reads a: only those must stay unmodified
        return [_version_if(a, _wants(b)), _version_if(b, _wants(a))]

    def forward(self, a, b):
        return _broadcast_op(np.multiply, a, b, "mul")

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad * b, _shape(a)) if _wants(a) else None,
                sum_to(grad * a, _shape(b)) if _wants(b) else None)


class Div(Function):
    def _saved_versions(self, args):
        a, b = args
        return [_version_if(a, _wants(b)), _version_if(b, True)]

    def forward(self, a, b):
        return _broadcast_op(np.true_divide, a, b, "div")

    def backward(self, grad):
        a, b = self.inputs
        ga = sum_to(grad / b, _shape(a)) if _wants(a) else None
        gb = sum_to(-grad * a / (b * b), _shape(b)) if _wants(b) else None
        return ga, gb


class Pow(Function):
    """a ** b. d/da = b a^(b-1);  d/db = a^b log a.

    At the formulas' singular points the gradients are PyTorch's: d/da is 0 where
    b = 0 (a^0 is constant, though 0 * 0^(-1) is NaN), and d/db is 0 where a = 0 and
    b >= 0 (0^b log 0 is 0 * -inf).
    """

    def forward(self, a, b):
        return _broadcast_op(np.power, a, b, "pow")

    def backward(self, grad):
        a, b = self.inputs
        ga = gb = None
        if _wants(a):
            if isinstance(b, (int, float)):
                if b == 0:
                    ga = Tensor._make(np.zeros(a.shape, a.dtype), None)
                else:
                    ga = grad * (b * a ** (b - 1)) if b != 2 else grad * (2 * a)
            else:
                b_data = b.data if isinstance(b, Tensor) else np.asarray(b)
                # 0 ** -1 = inf where b = 0 is expected, then replaced by the zero slope
                with np.errstate(divide="ignore", invalid="ignore"):
                    ga = sum_to(grad * _zero_where(b_data == 0, b * a ** (b - 1)), _shape(a))
        if _wants(b):
            a_data = a.data if isinstance(a, Tensor) else np.asarray(a)
            singular = (a_data == 0) & (b.data >= 0)
            # log 0 = -inf and 0 * -inf = NaN are expected at the singular points, then replaced
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = log(a) if isinstance(a, Tensor) else np.log(a)
                gb = sum_to(grad * _zero_where(singular, (a ** b) * log_a), _shape(b))
        return ga, gb


def _zero_where(mask, t):
    """``t`` with 0 where ``mask`` holds (also replacing the NaN or Inf a formula gave there)."""
    if not np.any(mask):
        return t
    return where(Tensor._make(mask, None), Tensor._make(np.zeros((), t.dtype), None), t)


class Neg(Function):
    saves_inputs = False

    def forward(self, a):
        return np.negative(a)

    def backward(self, grad):
        return -grad


class Abs(Function):
    def forward(self, a):
        return np.abs(a)

    def backward(self, grad):
        (a,) = self.inputs
        return grad * Tensor._make(np.sign(a.data), None)


def _wants(x):
    return isinstance(x, Tensor) and x.requires_grad


def _broadcast_op(op, a, b, name):
    try:
        return op(a, b)
    except ValueError:
        raise ValueError(f"{name}: shapes {_shape(a)} and {_shape(b)} cannot be broadcast together") from None


def add(input, other, alpha=1):
    return Add.apply(input, other if alpha == 1 else other * alpha)


def sub(input, other, alpha=1):
    return Sub.apply(input, other if alpha == 1 else other * alpha)


def mul(input, other):
    return Mul.apply(input, other)


def div(input, other):
    return Div.apply(input, other)


def pow(input, exponent):  # noqa: A001 - PyTorch's name
    return Pow.apply(input, exponent)


def neg(input):
    return Neg.apply(input)


def abs(input):  # noqa: A001
    return Abs.apply(input)


def square(input):
    return Mul.apply(input, input)
