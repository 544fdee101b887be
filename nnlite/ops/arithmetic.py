"""Arithmetic with NumPy broadcasting: + - * / ** and friends.

When an operand was broadcast in forward, its gradient is summed back to its
own shape (``sum_to``): every position it was copied to sent it a gradient.

Every operation here computes in the dtype PyTorch's promotion gives
(:mod:`nnlite.ops.promotion`): ``nl.tensor([1, 2]) / 2`` is float32, and so is a float32
tensor times ``nl.tensor(0.5, dtype=nl.float64)``. ``+ - * / **`` promote in their
forward: NumPy computes operands of one dtype (or a float tensor with a Python number)
as they are, with ``casting="no"``, and refuses the others, which are then promoted, so
the common case costs no check in Python.

In ``+ - *`` and as a power's base, a Python int beside an integer tensor is read in
the tensor's dtype, wrapped as PyTorch wraps it (int8 ``+ 1000`` adds -24,
:func:`~nnlite.ops.promotion.wrapped_int`); ``/`` divides by the number itself.

A float16 or bfloat16 tensor times or over a number is computed with the number
in float32 and rounded once, as PyTorch computes it (:mod:`nnlite.ops.opmath`); ``+``
and ``-`` read the number in the tensor's dtype, as both PyTorch and NumPy do.
"""
import numbers

import numpy as np

from .._kernels.checks import real_number
from ..autograd import Function, chosen_by, constant, product_saved_versions, version_if
from ..tensor import Tensor
from .elementwise_choice import where
from .pointwise import log
from .promotion import (broadcast_shape, checked_int, operand, promoted_dtype, promoted_operands,
                        python_int_operands, tensor_input, wrapped_int)
from .broadcasting import sum_to
from .casting import cast
from . import opmath
from .opmath import half_pair, is_half


def _shape(a):
    return a.shape if isinstance(a, (np.ndarray, Tensor)) else ()


class Add(Function):
    saves_inputs = False

    def forward(self, a, b):
        if self.recording:
            self.shapes = (_shape(a), _shape(b))
        try:
            return np.add(a, b, casting="no")
        except (TypeError, ValueError, OverflowError):
            return _promoted(np.add, "add", a, b)

    def backward(self, grad):
        a, b = self.inputs   # a constant operand (a mask, a fixed bias) gets no gradient summed for it
        return (sum_to(grad, self.shapes[0]) if _wants(a) else None,
                sum_to(grad, self.shapes[1]) if _wants(b) else None)


class Sub(Function):
    saves_inputs = False

    def forward(self, a, b):
        if self.recording:
            self.shapes = (_shape(a), _shape(b))
        try:
            return np.subtract(a, b, casting="no")
        except (TypeError, ValueError, OverflowError):
            if _is_bool(a) or _is_bool(b):
                raise TypeError("sub: subtraction, the - operator, with a bool operand is not supported, "
                                "as in PyTorch; to invert a mask use ~ or logical_not") from None
            return _promoted(np.subtract, "sub", a, b)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad, self.shapes[0]) if _wants(a) else None,
                sum_to(-grad, self.shapes[1]) if _wants(b) else None)


class Mul(Function):
    _saved_versions = staticmethod(product_saved_versions)   # d/da reads b and d/db reads a

    def forward(self, a, b):
        try:
            out = np.multiply(a, b, casting="no")
        except (TypeError, ValueError, OverflowError):
            out = _promoted(np.multiply, "mul", a, b)
        # a float16 or bfloat16 product (2 bytes: one comparison spares float32 any other check)
        # with a number is computed again, the number kept in float32, as PyTorch computes it
        return out if out.itemsize != 2 else opmath.product(a, b, out)

    def backward(self, grad):
        a, b = self.inputs
        return (sum_to(grad * b, _shape(a)) if _wants(a) else None,
                sum_to(grad * a, _shape(b)) if _wants(b) else None)


class Div(Function):
    def _saved_versions(self, args):
        a, b = args
        return [version_if(a, _wants(b)), version_if(b, True)]

    def forward(self, a, b):
        try:
            out = np.true_divide(a, b, casting="no")
        except (TypeError, ValueError, OverflowError):
            out = _promoted(np.true_divide, "div", a, b, floating=True)
        return out if out.itemsize != 2 else opmath.quotient(a, b, out)   # as in Mul.forward

    def backward(self, grad):
        a, b = self.inputs
        ga = sum_to(grad / b, _shape(a)) if _wants(a) else None
        # (a / b) / b, PyTorch's order: b * b underflows to 0 for |b| < 1e-154 where a / b^2 does not overflow
        gb = sum_to(-grad * ((a / b) / b), _shape(b)) if _wants(b) else None
        return ga, gb


def _trunc_divide(a, b, dtype=None):
    """a / b rounded toward zero. For integers: the floor quotient, one up where the exact
    quotient is negative and not whole (NumPy has no integer division that truncates)."""
    if np.result_type(a, b).kind in "iu":
        q = np.floor_divide(a, b)
        return q + ((q * b != a) & ((a < 0) != (b < 0)))
    return np.trunc(np.true_divide(a, b, dtype=dtype))


class RoundedDiv(Function):
    """a / b rounded toward zero ("trunc") or toward -inf ("floor"), in the operands' dtype.

    A step function of both operands, flat between its jumps: its gradient is 0 for
    each, as PyTorch gives it (not an error, unlike ``floor_divide``'s).
    """
    saves_inputs = False

    def forward(self, a, b, rounding_mode):
        if self.recording:
            self.shapes = (_shape(a), _shape(b))
        divide = _trunc_divide if rounding_mode == "trunc" else np.floor_divide
        # a float divisor 0 gives ±inf or NaN, and int8 -128 // -1 wraps to -128, as in PyTorch
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = divide(a, b)
            if is_half(out.dtype) and rounding_mode == "floor":
                out = opmath.floor_divide_half(a, b)
            return opmath.with_number(divide, a, b, out)   # a half tensor and one number: in float32

    def backward(self, grad):
        a, b = self.inputs[:2]
        return (constant(np.zeros(self.shapes[0], grad.dtype)) if _wants(a) else None,
                constant(np.zeros(self.shapes[1], grad.dtype)) if _wants(b) else None, None)


class Pow(Function):
    """a ** b. d/da = b a^(b-1);  d/db = a^b log a.

    Integers to negative integer powers (an exponent tensor) give PyTorch's integers:
    1 for a base 1, ±1 for a base -1 by the exponent's parity, 0 for every other base
    (0 too: PyTorch gives 0 ** -1 as 0, not a division by zero).

    At the formulas' singular points the gradients are PyTorch's: d/da is 0 where
    b = 0 (a^0 is constant, though 0 * 0^(-1) is NaN), and d/db is 0 where a = 0 and
    b >= 0 (0^b log 0 is 0 * -inf).
    """

    def forward(self, a, b):
        if type(b) is np.ndarray and b.dtype.kind == "i" and (
                a.dtype.kind in "iub" if type(a) is np.ndarray else type(a) in (int, bool)):
            return _integer_power(*promoted_operands("pow", a, b))
        try:
            return np.power(a, b, casting="no")
        except (TypeError, ValueError, OverflowError):
            return _promoted(np.power, "pow", a, b)

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
            # log 0 = -inf and 0 * -inf = NaN are expected at the singular points, then replaced;
            # an integer base's log is taken in the result's dtype, as PyTorch takes it
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = log(cast(a, grad.dtype)) if isinstance(a, Tensor) else np.log(np.asarray(a, grad.dtype))
                gb = sum_to(grad * _zero_where(singular, (a ** b) * log_a), _shape(b))
        return ga, gb


def _integer_power(a, b):
    """a ** b for integers, b possibly negative (which NumPy refuses): PyTorch's 1 or ±1 where
    a is 1 or -1 and b < 0, 0 for every other a there."""
    negative = b < 0
    if not negative.any():
        return _broadcast_op(np.power, a, b, "pow")
    # (-1)^b depends only on b's parity, which b & 1 keeps (also for -2**63, whose -b overflows)
    power = _broadcast_op(np.power, a, np.where(negative, b & 1, b), "pow")
    return np.where(negative & (a != 1) & (a != -1), 0, power)


def _zero_where(mask, t):
    """``t`` with 0 where ``mask`` holds (also replacing the NaN or Inf a formula gave there)."""
    if not np.any(mask):
        return t
    return where(Tensor._make(mask, None), Tensor._make(np.zeros((), t.dtype), None), t)


class Neg(Function):
    saves_inputs = False

    def forward(self, a):
        if a.dtype.kind == "b":
            raise TypeError("neg: negation, the - operator, of a bool tensor is not supported, as in PyTorch; "
                            "to invert a mask use ~ or logical_not")
        return np.negative(a)

    def backward(self, grad):
        return -grad


class Abs(Function):
    def forward(self, a):
        if a.dtype.kind == "b":
            raise TypeError("abs: not defined for bool tensors, as in PyTorch")
        return np.abs(a)

    def backward(self, grad):
        (a,) = self.inputs
        # the sign of a, 0 at 0 and at NaN (PyTorch's sgn; np.sign gives NaN there)
        sign = (a.data > 0).astype(a.dtype) - (a.data < 0).astype(a.dtype)
        return chosen_by(grad * Tensor._make(sign, None), a)   # the sign is chosen by a


def _wants(x):
    return isinstance(x, Tensor) and x.requires_grad


def _is_bool(x):
    """A bool array or a Python bool (an operand as a Function's forward receives it)."""
    return type(x) is bool or isinstance(x, np.ndarray) and x.dtype.kind == "b"


def _broadcast_op(op, a, b, name):
    try:
        return op(a, b)
    except ValueError as error:
        try:
            np.broadcast_shapes(_shape(a), _shape(b))
        except ValueError:
            raise ValueError(f"{name}: shapes {_shape(a)} and {_shape(b)} cannot be broadcast together") from None
        # the shapes fit: NumPy refused the values ("Integers to negative integer powers are not allowed.")
        raise ValueError(f"{name}: {error}") from None


def _promoted(ufunc, op, a, b, floating=False):
    """``ufunc(a, b)`` for operands NumPy would not compute without converting one (``casting="no"``
    refused them): in the dtype PyTorch computes ``op`` in (:func:`~nnlite.ops.promotion.promoted_operands`),
    or the error that names what is wrong with them."""
    a, b = promoted_operands(op, a, b, floating)
    return _broadcast_op(ufunc, a, b, op)


def add(input, other, alpha=1):
    """``input + alpha * other``, in the dtype PyTorch's promotion gives (:mod:`nnlite.ops.promotion`).

    Two bool operands give bool (``alpha`` then only says whether ``other`` counts), as in
    PyTorch. An int ``alpha`` must fit an integer result's dtype. For two float16 (or two
    bfloat16) tensors alpha is read in their dtype and the sum computed in float32, then
    rounded once, as PyTorch computes it (:mod:`nnlite.ops.opmath`)."""
    if alpha != 1:
        if half_pair(input, other):
            return _half_with_alpha("add", input, other, alpha)
        other = times_alpha("add", input, other, alpha)
    return Add.apply(input, other)


def sub(input, other, alpha=1):
    """``input - alpha * other``. An int ``-alpha`` must fit an integer result's dtype (PyTorch
    subtracts by adding ``-alpha * other``)."""
    if alpha != 1:
        if half_pair(input, other):
            return _half_with_alpha("sub", input, other, -alpha)
        other = times_alpha("sub", input, other, alpha, checked=-alpha)
    return Sub.apply(input, other)


def _half_with_alpha(op, input, other, alpha):
    """``input + alpha * other`` for a :func:`~nnlite.ops.opmath.half_pair`: alpha in their dtype, the rest in float32."""
    alpha = float(np.asarray(real_number(op, "alpha", alpha)).astype(input.dtype))
    return cast(cast(input, np.float32) + cast(other, np.float32) * alpha, input.dtype)


def times_alpha(op, input, other, alpha, checked=None):
    """``other * alpha`` as PyTorch computes it for ``input + alpha * other``.

    An int alpha (or the ``checked`` value standing for it) must fit the dtype of
    ``input + other`` where that is an integer dtype, and is then read in it (-1 is 255
    for uint8); an int ``other`` (read by :func:`~nnlite.ops.promotion.wrapped_int`) is
    multiplied in that dtype: only the low bits count.
    """
    input, other = python_int_operands(op, input, other)
    dtype = promoted_dtype(op, input, other)
    if dtype.kind in "iub" and type(alpha) not in (int, bool):
        raise TypeError(f"{op}: alpha={alpha!r} must be an int for {dtype} operands, as in PyTorch")
    if dtype.kind == "b":   # bools: alpha only says whether other counts
        return other if alpha else other & False
    if dtype.kind in "iu":
        checked_int(op, *(("alpha", alpha) if checked is None else ("-alpha", checked)), dtype)
        alpha = wrapped_int(op, alpha, dtype)
        if type(other) is int:
            return wrapped_int(op, other * alpha % 2 ** 64, dtype)
    # alpha * other in the dtype of the sum, as PyTorch forms it (a bool tensor times 2 in uint8, not int64)
    if isinstance(other, Tensor):
        return cast(other, dtype) * alpha
    if isinstance(other, np.ndarray):   # 0-dim int8 -1 is 255 in uint8, as PyTorch casts it
        return np.multiply(other, alpha, dtype=dtype, casting="unsafe")
    return other * alpha


def mul(input, other):
    """``input * other``, in the dtype PyTorch's promotion gives (:mod:`nnlite.ops.promotion`)."""
    return Mul.apply(input, other)


def div(input, other, *, rounding_mode=None):
    """``input / other``, a true division: integer and bool operands give the default float
    dtype (``nl.tensor([1, 2]) / 2`` is float32), as in PyTorch.

    ``rounding_mode="trunc"`` rounds the quotient toward zero and ``"floor"`` toward -inf
    (Python's ``//``). Both compute in the promoted dtype, as PyTorch does: integers stay
    integers (and refuse a zero divisor), a float divisor 0 gives ±inf or NaN, and the
    gradient is 0 (the quotient is a step function).

    >>> import nnlite as nl
    >>> x = nl.tensor([7, -7])
    >>> nl.div(x, 2).tolist(), x.div(2, rounding_mode="trunc").tolist(), x.div(2, rounding_mode="floor").tolist()
    ([3.5, -3.5], [3, -3], [3, -4])
    """
    if rounding_mode is None:
        return Div.apply(input, other)
    if rounding_mode not in ("trunc", "floor"):
        error = ValueError if isinstance(rounding_mode, str) else TypeError
        raise error(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    dtype = promoted_dtype("div", input, other)
    if dtype.kind == "b":
        raise TypeError(f"div: rounding_mode={rounding_mode!r} needs number operands, got bool ones")
    a, b = promoted_operands("div", input, other)
    if dtype.kind in "iu" and not np.all(b.data if isinstance(b, Tensor) else b):
        raise ZeroDivisionError(f"div: integer division by zero (rounding_mode={rounding_mode!r})")
    if _shape(a) != _shape(b):
        broadcast_shape("div", a, b)
    return RoundedDiv.apply(a, b, rounding_mode)


def pow(input, exponent):  # noqa: A001 - PyTorch's name
    """``input ** exponent``, elementwise and broadcast, in the dtype PyTorch's promotion gives.

    A bool tensor to a Python bool power stays bool (x ** True is x, x ** False is all
    True), as in PyTorch. As in PyTorch 2.13, an integer tensor to a negative Python int
    power raises ValueError (give the exponent as a float for a fractional result), and
    to an exponent beyond its dtype (int8 ** 128) OverflowError; an exponent *tensor*
    with negative entries gives integers there: 1 for x = 1, ±1 for x = -1 (by the
    exponent's parity) and 0 for every other x, 0 included.

    >>> import nnlite as nl
    >>> (nl.tensor([2, 1, -1, 0]) ** nl.tensor([-1, -2, -3, -1])).tolist()
    [0, 1, -1, 0]
    """
    if type(exponent) in (int, bool) and isinstance(input, Tensor) and input.dtype.kind in "iub":
        if type(exponent) is bool and input.dtype.kind == "b":
            return Tensor._make(input.data | (not exponent), None)
        if exponent < 0:
            raise ValueError(f"pow: Integers to negative integer powers are not allowed ({input.dtype} "
                             f"tensor to the power {exponent}); give the exponent as a float "
                             f"({float(exponent)}) for a fractional result")
        checked_int("pow", "exponent", exponent, promoted_dtype("pow", input, exponent))
    return Pow.apply(input, exponent)   # a Python int base wraps (Pow.forward)


def neg(input):
    return Neg.apply(input)


def positive(input):
    """``+x``: x itself, as ``torch.positive`` gives it; a bool tensor has no sign and is refused."""
    if input.dtype == np.bool_:
        raise TypeError("positive: the + operator takes a number tensor, got dtype bool")
    return input


def abs(input):  # noqa: A001
    return Abs.apply(input)


def square(input):
    """``input * input``; a bool tensor gives int64, as in PyTorch."""
    if input.dtype.kind == "b":
        input = cast(input, np.int64)
    return Mul.apply(input, input)


# ------------------------------------------------------- combined operations --

class Lerp(Function):
    """start + w (end - start); d/dstart = 1 - w, d/dend = w, d/dw = end - start.

    Forward uses the form that is exact at its own end: ``start + w (end - start)`` for
    :math:`|w| < 0.5` and ``end - (end - start)(1 - w)`` otherwise (PyTorch's choice), so w = 1
    gives end exactly, not start + (end - start) rounded.
    """

    def _saved_versions(self, args):
        # start and end are read only for the weight's gradient, the weight only for theirs: as
        # PyTorch, a lerp with a number weight does not stop start or end being changed in place
        start, end, weight = args
        reads_ends = _wants(weight)
        return [version_if(start, reads_ends), version_if(end, reads_ends),
                version_if(weight, _wants(start) or _wants(end))]

    def forward(self, start, end, weight):
        if is_half(start.dtype):
            return opmath.lerp(start, end, weight)
        delta = end - start
        if not isinstance(weight, np.ndarray):   # a number: one branch for every element
            return start + weight * delta if -0.5 < weight < 0.5 else end - delta * (1 - weight)
        with np.errstate(invalid="ignore"):   # the branch np.where does not pick may be inf - inf
            return np.where(np.abs(weight) < 0.5, start + weight * delta, end - delta * (1 - weight))

    def backward(self, grad):
        start, end, weight = self.inputs
        return (sum_to(grad * (1 - weight), start.shape) if _wants(start) else None,
                sum_to(grad * weight, end.shape) if _wants(end) else None,
                sum_to(grad * (end - start), weight.shape) if _wants(weight) else None)


def lerp(input, end, weight):
    """Linear interpolation :math:`x + w (\\mathrm{end} - x)`: w = 0 gives input, w = 1 gives end.

    ``weight`` is a number or a tensor; all three broadcast. As in PyTorch, input and
    end are floating-point tensors of one dtype, and a weight tensor with dims has it
    too; a 0-dim one is converted, or, beside 0-dim input and end, promotes them (a
    0-dim float64 weight makes 0-dim float32 ones float64). w outside [0, 1] extrapolates.
    """
    if not tensor_input("lerp", input).is_floating_point():
        raise TypeError(f"lerp: expected a floating-point input, got {input.dtype}")
    if not isinstance(end, Tensor):
        raise TypeError(f"lerp: expected end to be a Tensor, got {type(end).__name__}")
    if end.dtype != input.dtype:
        raise TypeError(f"lerp: expected end with the input's dtype {input.dtype}, got {end.dtype}")
    if isinstance(weight, Tensor):
        if weight.ndim and weight.dtype != input.dtype:
            raise TypeError(f"lerp: expected weight with the input's dtype {input.dtype}, got {weight.dtype}")
        dtype = promoted_dtype("lerp", input, end, weight)
        input, end, weight = cast(input, dtype), cast(end, dtype), cast(weight, dtype)
    else:
        weight = real_number("lerp", "weight", weight)
    if not input.shape == end.shape == (weight.shape if isinstance(weight, Tensor) else input.shape):
        broadcast_shape("lerp", input, end, weight)
    return Lerp.apply(input, end, weight)


def _combined(op, input, tensor1, tensor2, value):
    """The three tensors promoted to one dtype, after checking they broadcast and ``value`` fits it."""
    number = real_number(op, "value", value)
    if (type(input) is type(tensor1) is type(tensor2) is Tensor
            and input.dtype == tensor1.dtype == tensor2.dtype and input.dtype.kind == "f"):
        if not input.shape == tensor1.shape == tensor2.shape:   # the common case, promotion's cost spared
            broadcast_shape(op, input, tensor1, tensor2)
        return input, tensor1, tensor2, number
    dtype = promoted_dtype(op, tensor_input(op, input), tensor1, tensor2)
    if dtype.kind == "b":
        raise TypeError(f"{op}: expected number tensors, got bool ones")
    if dtype.kind in "iu":
        if number != int(number):
            raise TypeError(f"{op}: value={value} is not a whole number but the tensors are {dtype}; "
                            "use floating-point tensors")
        number = checked_int(op, "value", int(value if isinstance(value, numbers.Integral) else number), dtype)
    a, b, c = (operand(op, name, x, dtype) for name, x in
               (("input", input), ("tensor1", tensor1), ("tensor2", tensor2)))
    if not a.shape == b.shape == c.shape:
        broadcast_shape(op, a, b, c)
    return a, b, c, number


def addcmul(input, tensor1, tensor2, value=1):
    """:math:`x + v \\, t_1 t_2`, elementwise and broadcast (an optimizer's update in one call).

    Integer tensors stay integers (a non-whole ``value`` is refused rather than truncated).
    """
    a, b, c, value = _combined("addcmul", input, tensor1, tensor2, value)
    if is_half(a.dtype):
        # PyTorch: (value t1) in float32, then one FMA rounded once: opmath.fma32's steps, written
        # with differentiable casts here so that the result keeps its gradient
        product = cast(b, np.float32) * float(value)
        wide = cast(a, np.float64) + cast(product, np.float64) * cast(c, np.float64)
        return cast(cast(wide, np.float32), a.dtype)
    return a + (b if value == 1 else b * value) * c


def addcdiv(input, tensor1, tensor2, value=1):
    """:math:`x + v \\, t_1 / t_2`, elementwise and broadcast; t2 = 0 gives ±inf or NaN.

    As in PyTorch, tensor1 and tensor2 may not both be integers (that division used to
    truncate); convert one of them to floats.
    """
    if all(isinstance(t, Tensor) and t.dtype.kind in "iub" for t in (tensor1, tensor2)):
        raise TypeError(f"addcdiv: tensor1 and tensor2 are both integers ({tensor1.dtype}, {tensor2.dtype}); "
                        "convert one to floats for a true division")
    a, b, c, value = _combined("addcdiv", input, tensor1, tensor2, value)
    if is_half(a.dtype):   # computed in float32 and rounded once, as PyTorch computes it
        return cast(addcdiv(*(cast(t, np.float32) for t in (a, b, c)), value), a.dtype)
    return a + (b if value == 1 else b * value) / c


class NanToNum(Function):
    """NaN, inf and -inf replaced by numbers; the gradient passes where x was finite, 0 elsewhere."""
    saves_inputs = False

    def forward(self, a, nan, posinf, neginf):
        if self.recording:
            self.finite = np.isfinite(a)
        with np.errstate(over="ignore"):   # a replacement beyond the dtype's range becomes inf, as in PyTorch
            return np.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, grad):
        return grad * constant(self.finite.astype(grad.dtype)), None, None, None


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN replaced by ``nan``, inf by ``posinf``, -inf by ``neginf``, others unchanged.

    ``posinf`` and ``neginf`` default to the largest and the lowest finite value of the
    dtype (3.4e38 for float32). Integer and bool tensors are returned as copies.
    """
    replacements = [None if v is None else real_number("nan_to_num", name, v)
                    for name, v in (("nan", nan), ("posinf", posinf), ("neginf", neginf))]
    if replacements[0] is None:   # PyTorch reads nan=None as the default, 0
        replacements[0] = 0.0
    if not tensor_input("nan_to_num", input).is_floating_point():
        return Tensor._make(input.data.copy(), None)
    return NanToNum.apply(input, *replacements)
