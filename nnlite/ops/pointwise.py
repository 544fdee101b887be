"""Elementwise functions and activations, each with its derivative beside it.

The activations (relu, gelu, tanh, sigmoid, silu, elu, selu, softplus, mish,
logsigmoid) run on compiled kernels. Their backward is itself a Function
(``ReluGrad``...) that calls the backward kernel (ELU's and SELU's multiplies by
the slope their forward kept), and whose own backward states the second
derivative — so first-order training is fast and higher-order gradients stay
exact. ELU and SELU never read the input again (``EluGrad``), so their in-place
forms (``elu_``... in ``nnlite/ops/inplace.py``), which overwrite it,
differentiate exactly too. softsign is abs, add and div, as in PyTorch. The
piecewise-linear activations (leaky_relu, hardtanh, relu6, hardsigmoid,
hardswish, prelu) are in ``nnlite/ops/piecewise.py``.

exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, erf and softsign of an integer or bool
tensor give the default float dtype, as in PyTorch (:mod:`nnlite.ops.promotion`); relu
keeps an integer dtype.
"""
import math

import numpy as np

from .._kernels import K
from .._kernels.checks import real_number
from ..autograd import Function, chosen_by, constant, enable_grad, grad_in_backward
from ..tensor import Tensor
from .elementwise_choice import where
from .promotion import floating_array, floating_input


class _RealFunction(Function):
    """A NumPy function of one real number (``ufunc``), in the dtype PyTorch gives: an integer
    or bool tensor is computed in the default float dtype (NumPy would give float16 for int8,
    float64 for int64). ``casting="no"`` makes NumPy refuse every input it would first convert,
    so a floating tensor, the common case, pays no Python-level check."""
    ufunc = None

    def forward(self, a):
        try:
            return self.ufunc(a, casting="no")
        except TypeError:
            return self.ufunc(floating_array(a))


class Exp(_RealFunction):
    save_output = True
    saves_inputs = False
    ufunc = np.exp

    def backward(self, grad):
        return grad * self.out


class Log(_RealFunction):
    ufunc = np.log

    def backward(self, grad):
        return grad / self.inputs[0]


class Sqrt(_RealFunction):
    save_output = True
    saves_inputs = False
    ufunc = np.sqrt

    def backward(self, grad):
        return grad / (2 * self.out)


class Rsqrt(_RealFunction):
    """1/sqrt(a); d/da = -1/2 a^(-3/2) = -out^3 / 2."""
    save_output = True
    saves_inputs = False
    ufunc = np.sqrt

    def forward(self, a):
        return 1.0 / super().forward(a)

    def backward(self, grad):
        out = self.out
        return grad * (-0.5) * out * out * out


class Reciprocal(_RealFunction):
    """1/a; d/da = -1/a^2 = -out^2."""
    save_output = True
    saves_inputs = False
    ufunc = np.reciprocal

    def forward(self, a):
        if a.dtype.kind in "iub":   # NumPy's integer reciprocal truncates (1/2 is 0); PyTorch's is a float
            a = floating_array(a)
        with np.errstate(divide="ignore"):
            return np.reciprocal(a)

    def backward(self, grad):
        out = self.out
        return -grad * (out * out)


class Sin(_RealFunction):
    ufunc = np.sin

    def backward(self, grad):
        return grad * cos(self.inputs[0])


class Cos(_RealFunction):
    ufunc = np.cos

    def backward(self, grad):
        return -grad * sin(self.inputs[0])


class SoftplusFunction(Function):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (PyTorch's definition)."""

    def forward(self, a, beta, threshold):
        return K.softplus_forward(a, beta, threshold)

    def backward(self, grad):
        a, beta, threshold = self.inputs
        return SoftplusGrad.apply(grad, a, beta, threshold), None, None


class SoftplusGrad(Function):
    """grad * sigmoid(beta x), and grad itself where ``beta x > threshold``.

    Linear in grad; its derivative in x is ``grad * beta * s (1 - s)`` (s = sigmoid(beta x))
    where ``beta x < threshold`` and 0 elsewhere: exactly at the threshold PyTorch takes the
    slope from the curved side but the second derivative from the linear side.
    """

    def forward(self, grad, x, beta, threshold):
        return K.softplus_backward(grad, x, beta, threshold)

    def backward(self, gg):
        grad, x, beta, threshold = self.inputs
        s = sigmoid(x * beta)
        curved = constant(~(x.data * beta >= threshold))   # NaN stays on the curve: NaN out
        return (SoftplusGrad.apply(gg, x, beta, threshold), where(curved, gg * grad * s * (1.0 - s) * beta, 0.0),
                None, None)


# ------------------------------------------------------------- activations --

class ReluFunction(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return K.relu_forward(a)

    def backward(self, grad):
        return chosen_by(ReluGrad.apply(grad, self.out.detach()), self.inputs[0])


class ReluGrad(Function):
    """grad where out > 0 or is NaN (PyTorch passes the gradient of relu(NaN)). Linear in grad; its
    derivative in ``out`` is zero almost everywhere."""

    def forward(self, grad, out):
        return K.relu_backward(grad, out)

    def backward(self, gg):
        return ReluGrad.apply(gg, self.inputs[1]), None


class TanhFunction(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return K.tanh_forward(a)

    def backward(self, grad):
        return TanhGrad.apply(grad, self.out)


class TanhGrad(Function):
    """grad * (1 - out^2)."""

    def forward(self, grad, out):
        return K.tanh_backward(grad, out)

    def backward(self, gg):
        grad, out = self.inputs
        return TanhGrad.apply(gg, out), gg * grad * (-2.0) * out


class SigmoidFunction(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return K.sigmoid_forward(a)

    def backward(self, grad):
        return SigmoidGrad.apply(grad, self.out)


class SigmoidGrad(Function):
    """grad * out * (1 - out)."""

    def forward(self, grad, out):
        return K.sigmoid_backward(grad, out)

    def backward(self, gg):
        grad, out = self.inputs
        return SigmoidGrad.apply(gg, out), gg * grad * (1.0 - 2.0 * out)


class SiluFunction(Function):
    """x * sigmoid(x)."""

    def forward(self, a):
        return K.silu_forward(a)

    def backward(self, grad):
        return SiluGrad.apply(grad, self.inputs[0])


class SiluGrad(Function):
    """grad * s (1 + x (1 - s)) with s = sigmoid(x)."""

    def forward(self, grad, x):
        return K.silu_backward(grad, x)

    def backward(self, gg):
        grad, x = self.inputs
        s = sigmoid(x)
        second = s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))
        return SiluGrad.apply(gg, x), gg * grad * second


class GeluFunction(Function):
    """x Phi(x) (exact, with erf) or its tanh approximation.

    Memory: when the result is recorded for backward, the graph holds x and
    Phi(x) (tanh(u) for the tanh form; a new array the size of x) until
    backward frees them, so that backward does not compute erf (or tanh), most
    of the derivative's cost, a second time. Unrecorded calls
    (``no_grad``, inputs that want no gradient) keep nothing.
    """

    def forward(self, a, approximate):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        if not self.recording:
            return K.gelu_forward(a, approximate)
        out, self.saved = K.gelu_forward(a, approximate, save=True)
        return out

    def backward(self, grad):
        return GeluGrad.apply(grad, self.inputs[0], self.approximate, self.saved), None


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_derivative(x, approximate):
    """GELU'(x) written in differentiable ops (used for the second derivative)."""
    if approximate == "none":
        phi = exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        cdf = (erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
        return cdf + x * phi
    inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
    th = tanh(inner)
    dinner = (x * x * (3 * 0.044715) + 1.0) * _SQRT_2_OVER_PI
    return (th + 1.0) * 0.5 + x * 0.5 * (1.0 - th * th) * dinner


class GeluGrad(Function):
    def forward(self, grad, x, approximate, saved=None):
        self.approximate = approximate
        return K.gelu_backward(grad, x, approximate, saved)

    def backward(self, gg):
        grad, x = self.inputs[:2]
        with enable_grad():
            xd = x if x.requires_grad else x.detach().requires_grad_()
            d1 = _gelu_derivative(xd, self.approximate)
        g_grad = gg * d1
        (d2_dir,) = grad_in_backward(d1, xd, grad_outputs=gg * grad)
        return g_grad, d2_dir, None, None


class EluFunction(Function):
    """``scale * x`` for x > 0, ``scale * alpha * (e^x - 1)`` for x <= 0 (ELU has scale 1; SELU
    fixes alpha and scale).

    d/dx = ``scale`` for x > 0 and ``scale * alpha * e^x`` for x <= 0, at 0 too (PyTorch's
    choice). Forward keeps that slope (``e^x`` computed on its own, not as
    ``out + scale * alpha``, which loses digits far to the left) and the mask
    x < 0; backward multiplies by the slope in :class:`EluGrad`. Neither reads x
    or the output again, so either may be changed in place after the forward.
    """
    saves_inputs = False

    def forward(self, a, alpha, scale):
        if not self.recording:
            return K.elu_forward(a, alpha, scale)
        out, self.slope, self.negative = K.elu_forward(a, alpha, scale, save=True)
        return out

    def backward(self, grad):
        return EluGrad.apply(grad, self.inputs[0], self.slope, self.negative), None, None


class EluGrad(Function):
    """grad * slope, the slope d out/dx that forward kept.

    Where x < 0 the slope is ``scale * alpha * e^x``, its own derivative in x;
    elsewhere (and at 0, as in PyTorch) it is constant. So the derivative of
    ``grad * slope`` in x is ``grad * slope`` again where x < 0 and 0 elsewhere,
    an EluGrad itself, which keeps every higher derivative exact. x is an input
    only to carry those derivatives: its values are never read.
    """

    def forward(self, grad, x, slope, negative):
        return grad * slope

    def backward(self, gg):
        grad, x, slope, negative = self.inputs
        return (EluGrad.apply(gg, x, slope, negative),
                where(negative, EluGrad.apply(gg * grad, x, slope, negative), 0.0), None, None)


class Erf(Function):
    def forward(self, a):
        return K.erf_forward(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad * exp(-(x * x)) * (2.0 / math.sqrt(math.pi))


# ------------------------------------------------------------ free functions --

def exp(input):
    """:math:`e^x`; an integer or bool tensor gives the default float dtype, as in PyTorch."""
    return Exp.apply(input)


def log(input):
    """The natural logarithm; an integer or bool tensor gives the default float dtype."""
    return Log.apply(input)


def sqrt(input):
    """The square root; an integer or bool tensor gives the default float dtype."""
    return Sqrt.apply(input)


def rsqrt(input):
    """:math:`1 / \\sqrt{x}`; an integer or bool tensor gives the default float dtype."""
    return Rsqrt.apply(input)


def reciprocal(input):
    """:math:`1 / x`; an integer or bool tensor gives the default float dtype (0 gives inf)."""
    return Reciprocal.apply(input)


def sin(input):
    """The sine; an integer or bool tensor gives the default float dtype."""
    return Sin.apply(input)


def cos(input):
    """The cosine; an integer or bool tensor gives the default float dtype."""
    return Cos.apply(input)


def _as_floats_or_raise(op, input, error):
    """An integer or bool tensor a float kernel refused, in the default float dtype (PyTorch
    computes tanh, sigmoid and erf of integers in it); ``error`` for anything else."""
    if isinstance(input, Tensor) and input.dtype.kind in "biu":
        return floating_input(op, input)
    raise error


# The kernels refuse integer tensors with a TypeError, and a ``try`` costs nothing until one
# is raised: the float path pays nothing for the integer one.

def erf(input):
    """The error function; an integer or bool tensor gives the default float dtype."""
    try:
        return Erf.apply(input)
    except TypeError as error:
        return Erf.apply(_as_floats_or_raise("erf", input, error))


def relu(input):
    """``max(x, 0)``; an integer tensor keeps its dtype (no gradient), as in PyTorch."""
    try:
        return ReluFunction.apply(input)
    except TypeError:
        if not (isinstance(input, Tensor) and input.dtype.kind in "iu"):
            raise
        return Tensor._make(np.maximum(input.data, 0), None)


def tanh(input):
    """The hyperbolic tangent; an integer or bool tensor gives the default float dtype."""
    try:
        return TanhFunction.apply(input)
    except TypeError as error:
        return TanhFunction.apply(_as_floats_or_raise("tanh", input, error))


def sigmoid(input):
    """``1 / (1 + e^-x)``; an integer or bool tensor gives the default float dtype."""
    try:
        return SigmoidFunction.apply(input)
    except TypeError as error:
        return SigmoidFunction.apply(_as_floats_or_raise("sigmoid", input, error))


def silu(input):
    return SiluFunction.apply(input)


def gelu(input, approximate="none"):
    return GeluFunction.apply(input, approximate)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + e^(beta x)) / beta``, a smooth ReLU; x itself where ``beta * x > threshold``."""
    beta, threshold = real_number("softplus", "beta", beta), real_number("softplus", "threshold", threshold)
    return SoftplusFunction.apply(_floating("softplus", input), beta, threshold)


# SELU's constants (Klambauer et al., 2017, "Self-Normalizing Neural Networks"), to PyTorch's
# digits: chosen so that the SELU of a standard normal variable has mean 0 and variance 1.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _floating(op, input):
    """``input``, refused unless it holds floats (an integer tensor would come back as floats, or,
    in place, be truncated)."""
    dtype = np.dtype(input.dtype) if hasattr(input, "dtype") else np.asarray(input).dtype
    if dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got {dtype}")
    return input


def elu(input, alpha=1.0):
    """x for x > 0, ``alpha * (e^x - 1)`` otherwise (Clevert et al., 2016): smooth, with
    negative outputs down to ``-alpha`` that pull the mean activation towards 0.
    The in-place form is ``elu_`` in ``nnlite/ops/inplace.py``.

    >>> import nnlite as nl
    >>> [round(v, 4) for v in elu(nl.tensor([-1.0, 0.0, 2.0])).data.tolist()]
    [-0.6321, 0.0, 2.0]
    """
    alpha = real_number("elu", "alpha", alpha)
    return EluFunction.apply(_floating("elu", input), alpha, 1.0)


def selu(input):
    """``scale * elu(x, alpha)`` with SELU's fixed constants (``SELU_ALPHA``, ``SELU_SCALE``).

    With LeCun-normal weights, layers of SELU keep their activations near mean 0
    and variance 1 without a normalisation layer (tutorial 2 shows it). The
    in-place form is ``selu_`` in ``nnlite/ops/inplace.py``.

    >>> import nnlite as nl
    >>> [round(v, 4) for v in selu(nl.tensor([-1.0, 0.0, 2.0])).data.tolist()]
    [-1.1113, 0.0, 2.1014]
    """
    return EluFunction.apply(_floating("selu", input), SELU_ALPHA, SELU_SCALE)


class LogSigmoidFunction(Function):
    """``log(sigmoid(x)) = min(x, 0) - log(1 + e^-|x|)``, PyTorch's stable form: ``e^-|x|`` never
    overflows, and log1p keeps the digits of a tiny ``e^-|x|`` (x = 40 gives -4.2e-18, not 0)."""

    def forward(self, a):
        return K.logsigmoid_forward(a)

    def backward(self, grad):
        return LogSigmoidGrad.apply(grad, self.inputs[0])


class LogSigmoidGrad(Function):
    """grad * sigmoid(-x), formed as PyTorch forms it from ``q = e^-|x| / (1 + e^-|x|)``:
    ``1 - q`` for x < 0, ``q`` otherwise (never e^x, which overflows).

    Linear in grad; its derivative in x is ``grad * (s - 1) * s`` with s = sigmoid(x),
    the second derivative of log sigmoid.
    """

    def forward(self, grad, x):
        return K.logsigmoid_backward(grad, x)

    def backward(self, gg):
        grad, x = self.inputs
        s = sigmoid(x)
        return LogSigmoidGrad.apply(gg, x), gg * grad * (s - 1.0) * s


class MishFunction(Function):
    """``x * tanh(softplus(x))`` (Misra, 2019, "Mish: A Self Regularized Non-Monotonic
    Activation Function"), with softplus(x) = log(1 + e^x) as PyTorch writes it.

    d/dx = t + x * sigmoid(x) * (1 - t^2) with t = tanh(softplus(x)), one kernel
    (:class:`MishGrad`); its own derivative comes from that formula in differentiable ops.
    """

    def forward(self, a):
        return K.mish_forward(a)

    def backward(self, grad):
        return MishGrad.apply(grad, self.inputs[0])


def _mish_derivative(x):
    """mish'(x) in differentiable ops (used for the second derivative)."""
    t = tanh(softplus(x))   # softplus is linear above 20, where tanh is 1 to the last digit anyway
    return t + x * sigmoid(x) * (1.0 - t * t)


class MishGrad(Function):
    """grad * mish'(x). Linear in grad; its derivative in x is ``grad * mish''(x)``, found by
    differentiating :func:`_mish_derivative` (as GELU's second derivative is)."""

    def forward(self, grad, x):
        return K.mish_backward(grad, x)

    def backward(self, gg):
        grad, x = self.inputs
        with enable_grad():
            xd = x if x.requires_grad else x.detach().requires_grad_()
            d1 = _mish_derivative(xd)
        (d2_dir,) = grad_in_backward(d1, xd, grad_outputs=gg * grad)
        return gg * d1, d2_dir


def logsigmoid(input):
    """``log(sigmoid(x)) = -softplus(-x)``, computed without overflow for large ``|x|``.

    >>> import nnlite as nl
    >>> [round(v, 4) for v in logsigmoid(nl.tensor([-1000.0, 0.0, 1000.0])).data.tolist()]
    [-1000.0, -0.6931, 0.0]
    """
    return LogSigmoidFunction.apply(_floating("logsigmoid", input))


def mish(input):
    """``x * tanh(softplus(x))``: a smooth, non-monotonic ReLU-like curve with a dip to
    about -0.31 near x = -1.2. The in-place form is ``mish_`` in ``nnlite/ops/inplace.py``.

    >>> import nnlite as nl
    >>> [round(v, 4) for v in mish(nl.tensor([-1.0, 0.0, 2.0])).data.tolist()]
    [-0.3034, 0.0, 1.944]
    """
    return MishFunction.apply(_floating("mish", input))


def softsign(input):
    """``x / (1 + |x|)``: like tanh, from -1 to 1, but approached polynomially, not exponentially.

    Written with abs, add and div, exactly as PyTorch writes it, so values and gradients
    (slope 1 at x = 0, where abs's derivative is taken as 0) are PyTorch's.

    >>> import nnlite as nl
    >>> softsign(nl.tensor([-3.0, 0.0, 1.0])).data.tolist()
    [-0.75, 0.0, 0.5]
    """
    input = floating_input("softsign", input)   # integers: the default float dtype, as in PyTorch
    return input / (input.abs() + 1)
