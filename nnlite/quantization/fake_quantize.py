r"""Fake quantization with the straight-through estimator (quantization-aware training).

To train a model that will run in int8, quantize and dequantize in the forward
pass, in floating point, so the loss sees the rounding:

.. math::

    \tilde x = s\,\big(\operatorname{clamp}(\operatorname{round}(x/s) + z, q_{\min}, q_{\max}) - z\big)

Rounding has zero derivative almost everywhere, which would stop all learning.
The *straight-through estimator* (Bengio et al. 2013) treats rounding as the
identity in the backward pass, and clipping as what it is:

.. math::

    \frac{\partial \tilde x}{\partial x} =
    \begin{cases} 1 & q_{\min} \le \operatorname{round}(x/s) + z \le q_{\max} \\ 0 & \text{otherwise} \end{cases}

so weights keep moving in small steps below the quantization grid until they
cross into another code. These are ``torch.fake_quantize_per_tensor_affine``'s
forward and gradient.
"""
import numpy as np

from ..autograd import Function
from ..nn.module import Module
from ..parameter import Buffer
from ..tensor import Tensor
from .observer import MovingAverageMinMaxObserver

__all__ = ["fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine", "FakeQuantize"]


class FakeQuantizeFunction(Function):
    """Forward: quantize then dequantize. Backward: pass the gradient where the code was not clipped."""

    def forward(self, x, scale, zero_point, quant_min, quant_max):
        codes = np.rint(x * (np.float32(1.0) / scale)) + zero_point
        self.inside = (codes >= quant_min) & (codes <= quant_max)
        return ((np.clip(codes, quant_min, quant_max) - zero_point) * scale).astype(x.dtype)

    def backward(self, grad):
        return grad * Tensor(self.inside.astype(grad.dtype)), None, None, None, None


def _check(x, op, scale, quant_min, quant_max):
    if not isinstance(x, Tensor) or x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating point Tensor, got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else x.dtype}")
    if not quant_min < quant_max:
        raise ValueError(f"{op}: expected quant_min < quant_max, got {quant_min} and {quant_max}")
    # A zero scale would divide by zero and turn every value into 0 or nan without a word.
    s = np.asarray(scale.data if isinstance(scale, Tensor) else scale, np.float64)
    if not np.all(s > 0):
        raise ValueError(f"{op}: scale must be > 0, got {s if s.ndim else float(s)}")


def fake_quantize_per_tensor_affine(input, scale, zero_point, quant_min, quant_max):
    """Quantize-dequantize ``input`` with one scale and zero point; straight-through gradient."""
    _check(input, "fake_quantize_per_tensor_affine", scale, quant_min, quant_max)
    if not quant_min <= zero_point <= quant_max:
        raise ValueError(f"fake_quantize_per_tensor_affine: zero_point {zero_point} is outside "
                         f"[{quant_min}, {quant_max}]")
    scale = np.float32(float(scale))
    return FakeQuantizeFunction.apply(input, scale, np.float32(int(zero_point)), quant_min, quant_max)


def fake_quantize_per_channel_affine(input, scale, zero_point, axis, quant_min, quant_max):
    """Per-channel fake quantization: ``scale`` and ``zero_point`` hold one value per slice along ``axis``."""
    _check(input, "fake_quantize_per_channel_affine", scale, quant_min, quant_max)
    s = np.asarray(scale.data if isinstance(scale, Tensor) else scale, np.float32).reshape(-1)
    z = np.asarray(zero_point.data if isinstance(zero_point, Tensor) else zero_point).reshape(-1)
    axis = axis % input.ndim
    if s.size != input.shape[axis] or z.size != input.shape[axis]:
        raise ValueError(f"fake_quantize_per_channel_affine: expected {input.shape[axis]} scales and zero points "
                         f"(axis {axis} of shape {tuple(input.shape)}), got {s.size} and {z.size}")
    shape = [1] * input.ndim
    shape[axis] = -1
    return FakeQuantizeFunction.apply(input, s.reshape(shape), z.astype(np.float32).reshape(shape),
                                      quant_min, quant_max)


class FakeQuantize(Module):
    """An observer followed by fake quantization with the qparams it currently computes.

    ``observer`` is a class (default :class:`MovingAverageMinMaxObserver`) built with
    ``observer_kwargs``. ``enable_observer(False)`` freezes the qparams (late in
    QAT); ``enable_fake_quant(False)`` passes values through unchanged.
    """

    def __init__(self, observer=MovingAverageMinMaxObserver, **observer_kwargs):
        super().__init__()
        self.activation_post_process = observer(**observer_kwargs)
        self.quant_min = self.activation_post_process.quant_min
        self.quant_max = self.activation_post_process.quant_max
        self.ch_axis = getattr(self.activation_post_process, "ch_axis", None)
        self.scale = Buffer(np.array([1.0], np.float32))
        self.zero_point = Buffer(np.array([0], np.int64))
        self.observer_enabled, self.fake_quant_enabled = True, True

    def enable_observer(self, enabled=True):
        self.observer_enabled = bool(enabled)
        return self

    def enable_fake_quant(self, enabled=True):
        self.fake_quant_enabled = bool(enabled)
        return self

    def calculate_qparams(self):
        return self.activation_post_process.calculate_qparams()

    def forward(self, x):
        if self.observer_enabled:
            self.activation_post_process(x.detach())
            scale, zp = self.calculate_qparams()
            self.scale.data, self.zero_point.data = scale.data.reshape(-1), zp.data.reshape(-1)
        if not self.fake_quant_enabled:
            return x
        if self.ch_axis is not None:
            return fake_quantize_per_channel_affine(x, self.scale.data, self.zero_point.data, self.ch_axis,
                                                    self.quant_min, self.quant_max)
        return fake_quantize_per_tensor_affine(x, float(self.scale.data[0]), int(self.zero_point.data[0]),
                                               self.quant_min, self.quant_max)

    def extra_repr(self):
        return (f"quant_min={self.quant_min}, quant_max={self.quant_max}, "
                f"scale={self.scale.data}, zero_point={self.zero_point.data}")
