"""log-sum-exp over any dims: ``logsumexp(x) = log(sum(exp(x)))``, without overflow.

``exp`` of a large number overflows, so the largest element m is taken out
first: ``logsumexp(x) = m + log(sum(exp(x - m)))``, where no exp exceeds 1. The
gradient of logsumexp is the softmax of x over the same dims,
``exp(x - logsumexp(x))``, which the backward forms from the saved output.
"""
import numpy as np

from ..autograd import Function
from .pointwise import exp
from .promotion import floating_input
from .reduction import _grad_back, _keepdim_shape, _reduced_dims, _refuse_bfloat16_sums


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
    input = floating_input("logsumexp", input)   # integers and bools: the default float dtype, as in PyTorch
    return LogSumExp.apply(input, _reduced_dims(dim, input.ndim), keepdim)
