"""Elementwise functions and activations, each with its derivative beside it.

The activations (relu, gelu, tanh, sigmoid, silu) run on compiled kernels. Their
backward is itself a Function (``ReluGrad``...) that calls the backward
kernel, and whose own backward states the second derivative — so first-order
training is fast and higher-order gradients stay exact.
"""
import math

import numpy as np

from .._kernels import K
from ..autograd import Function, constant, enable_grad, grad as autograd_grad
from .compare import where


class Exp(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return np.exp(a)

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    def forward(self, a):
        return np.log(a)

    def backward(self, grad):
        return grad / self.inputs[0]


class Sqrt(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return np.sqrt(a)

    def backward(self, grad):
        return grad / (2 * self.out)


class Rsqrt(Function):
    """1/sqrt(a); d/da = -1/2 a^(-3/2) = -out^3 / 2."""
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return 1.0 / np.sqrt(a)

    def backward(self, grad):
        out = self.out
        return grad * (-0.5) * out * out * out


class Sin(Function):
    def forward(self, a):
        return np.sin(a)

    def backward(self, grad):
        return grad * cos(self.inputs[0])


class Cos(Function):
    def forward(self, a):
        return np.cos(a)

    def backward(self, grad):
        return -grad * sin(self.inputs[0])


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (PyTorch's definition)."""

    def forward(self, a, beta, threshold):
        self.beta, self.threshold = beta, threshold
        z = a * beta
        return np.where(z > threshold, a, np.logaddexp(0, z) / beta).astype(a.dtype, copy=False)

    def backward(self, grad):
        (a,) = self.inputs[:1]
        z = a * self.beta
        s = sigmoid(z)
        linear = constant(z.data > self.threshold)
        return grad * where(linear, 1.0, s), None, None


# ------------------------------------------------------------- activations --

class ReluFunction(Function):
    save_output = True
    saves_inputs = False

    def forward(self, a):
        return K.relu_forward(a)

    def backward(self, grad):
        return ReluGrad.apply(grad, self.out.detach())


class ReluGrad(Function):
    """grad where out > 0. Linear in grad; its derivative in ``out`` is zero almost everywhere."""

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
        (d2_dir,) = autograd_grad(d1, xd, grad_outputs=gg * grad, create_graph=True)
        return g_grad, d2_dir, None, None


class Erf(Function):
    def forward(self, a):
        return K.erf_forward(a)

    def backward(self, grad):
        x = self.inputs[0]
        return grad * exp(-(x * x)) * (2.0 / math.sqrt(math.pi))


# ------------------------------------------------------------ free functions --

def exp(input):
    return Exp.apply(input)


def log(input):
    return Log.apply(input)


def sqrt(input):
    return Sqrt.apply(input)


def rsqrt(input):
    return Rsqrt.apply(input)


def sin(input):
    return Sin.apply(input)


def cos(input):
    return Cos.apply(input)


def erf(input):
    return Erf.apply(input)


def relu(input):
    return ReluFunction.apply(input)


def tanh(input):
    return TanhFunction.apply(input)


def sigmoid(input):
    return SigmoidFunction.apply(input)


def silu(input):
    return SiluFunction.apply(input)


def gelu(input, approximate="none"):
    return GeluFunction.apply(input, approximate)


def softplus(input, beta=1.0, threshold=20.0):
    return Softplus.apply(input, beta, threshold)

