r"""Quantized Linear layers: int8 inference (:class:`QuantizedLinear`) and its QAT form (:class:`QATLinear`).

:class:`QuantizedLinear` keeps the weight as int8 codes with one scale per
output row (symmetric, zero point 0) — a quarter of float32's bytes — and the
bias in float32. Each call is one call of the compiled kernel
(``quantized_linear`` in ``nnlite/_kernels/_int8.pyx``, or its NumPy twin
``reference/_int8.py`` on the reference backend): it quantizes the input with
an affine scale and zero point — computed from that batch's min and max
(*dynamic* quantization, the default; the input must be finite) or fixed ones
learned during QAT (*static*) — to uint8 codes, sums the products exactly in
int32 and scales back to float32. The layer hands the kernel its codes
rearranged once, when it is made (``K.pack_int8_weight``: the layout the
kernel's register tile reads), with their row sums. A dynamic layer made with
``reduce_range=True`` uses 7-bit codes (0..127), as PyTorch's x86 dynamic
Linear does: two u8 x s8 products then fit an int16 lane, so on a CPU without
VNNI the kernel multiplies 32 bytes per ``vpmaddubsw`` (faster on large
batches, twice the rounding step on the activations; with VNNI both widths
run the same ``vpdpbusd``):

.. math::

    y_{mn} = s_x\, s_w[n] \Big(\sum_k x_q[m,k]\, w_q[n,k] - z_x \sum_k w_q[n,k]\Big) + b_n
"""
import numpy as np

from .._kernels import K
from ..autograd import no_grad
from ..nn import functional as F
from ..nn.fusion import _rebuilt
from ..nn.linear import Linear
from ..nn.module import Module
from ..parameter import Buffer
from ..tensor import Tensor
from .fake_quantize import FakeQuantize
from .fuse import LinearReLU
from .observer import MovingAverageMinMaxObserver, PerChannelMinMaxObserver, weight_observer
from .qtensor import per_channel_symmetric, qint8, quint8

_FLOAT32 = np.dtype(np.float32)   # native float32: the one dtype object NumPy uses for it

__all__ = ["int8_linear", "QuantizedLinear", "QuantizedLinearReLU", "QATLinear", "Float16Linear"]


def int8_linear(x_q, x_zero_point, w_q, w_row_sums, multiplier, bias=None, out_scale=None, out_zero_point=0):
    """The u8 x s8 GEMM with its epilogue (see ``nnlite/_kernels/_int8.pyx``)."""
    return K.int8_linear(x_q, x_zero_point, w_q, w_row_sums, multiplier, bias, out_scale, out_zero_point)


class QuantizedLinear(Module):
    """A Linear whose weight is int8 (per output row) and whose product runs in integers.

    Buffers (saved in ``state_dict``): ``weight_int8`` (int8, out x in),
    ``weight_scale`` (float32, out), ``bias`` (float32, out, if any), and for a
    static layer ``input_scale`` and ``input_zero_point``. Made by
    :meth:`from_float`, :func:`~nnlite.quantization.quantize_dynamic` or
    :func:`~nnlite.quantization.convert`. Inference only (no gradients).
    ``reduce_range=True`` (dynamic layers only) quantizes the input to 7-bit
    codes; it is a way of computing, not a parameter, so ``state_dict`` does
    not hold it: set it again when rebuilding the layer.
    """

    _relu = False   # QuantizedLinearReLU applies max(y, 0) in the kernel's epilogue

    def __init__(self, in_features, out_features, bias=True, dynamic=True, reduce_range=False):
        super().__init__()
        if reduce_range and not dynamic:
            raise ValueError("QuantizedLinear: reduce_range applies to dynamic layers only")
        self.in_features, self.out_features, self.dynamic = int(in_features), int(out_features), dynamic
        self.reduce_range = bool(reduce_range)
        self.weight_int8 = Buffer(np.zeros((out_features, in_features), np.int8))
        self.weight_scale = Buffer(np.ones(out_features, np.float32))
        self.bias = Buffer(np.zeros(out_features, np.float32)) if bias else None
        if not dynamic:
            self.input_scale = Buffer(np.array([1.0], np.float32))
            self.input_zero_point = Buffer(np.array([0], np.int64))
        self._packed = None

    @classmethod
    def from_float(cls, linear, input_qparams=None, weight_scale=None, reduce_range=False):
        """Quantize ``linear``'s weight per output row (symmetric int8).

        ``input_qparams=(scale, zero_point)`` makes a static layer, ``None`` a dynamic
        one (with 7-bit activation codes if ``reduce_range``). ``weight_scale`` (one
        per row) defaults to ``max|w_row| / 127.5``.
        """
        if not isinstance(linear, Linear):
            raise TypeError(f"{cls.__name__}.from_float: expected an nn.Linear, got {type(linear).__name__}")
        weight = linear.weight.data.astype(np.float32)
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, input_qparams is None,
                    reduce_range)
        if weight_scale is None and weight.size == 0:   # no codes to scale (in_features or out_features 0)
            weight_scale = np.ones(linear.out_features, np.float32)
        elif weight_scale is None:
            observer = weight_observer()
            observer(weight)
            weight_scale = observer.calculate_qparams()[0].data
        scale = np.asarray(weight_scale, np.float32).reshape(-1)
        # A single scale would broadcast over every row, and a zero one would turn the codes into +-inf.
        if scale.shape != (linear.out_features,) or not (np.isfinite(scale) & (scale > 0)).all():
            raise ValueError(f"{cls.__name__}.from_float: weight_scale needs {linear.out_features} positive finite "
                             f"entries (one per output row), got {np.asarray(weight_scale).tolist()}")
        codes = np.clip(np.rint(weight * (np.float32(1.0) / scale[:, None])), -128, 127).astype(np.int8)
        layer.weight_int8.data, layer.weight_scale.data = codes, scale
        if linear.bias is not None:
            layer.bias.data = linear.bias.data.astype(np.float32).copy()
        if input_qparams is not None:
            layer.input_scale.data = np.asarray(input_qparams[0], np.float32).reshape(1)
            layer.input_zero_point.data = np.asarray(input_qparams[1], np.int64).reshape(1)
        layer._kernel_weight()   # packed now, when the layer is made, not on its first call
        return layer

    def _kernel_weight(self):
        """``(packed codes, row sums)``: the codes in the kernel's layout (``K.pack_int8_weight``)
        and their row sums, made once and remade only when the codes change: a new array, or
        new values written in place (``load_state_dict`` copies into the buffer and bumps its
        version, as every in-place operation does)."""
        codes, cache = self.weight_int8, self._packed
        if cache is None or cache[0] is not codes.data or cache[1] != codes._version[0]:
            cache = self._packed = (codes.data, codes._version[0], K.pack_int8_weight(codes.data),
                                    codes.data.sum(axis=1, dtype=np.int32))
        return cache[2:]

    def dequantized_weight(self):
        """The float32 weight the codes stand for: ``weight_scale[n] * weight_int8[n, k]``."""
        return Tensor(self.weight_int8.data.astype(np.float32) * self.weight_scale.data[:, None])

    def forward(self, input):
        x = input.data if isinstance(input, Tensor) else np.asarray(input)
        lead = None   # the leading dimensions of an input that is not (batch, in_features)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            if x.ndim == 0 or x.shape[-1] != self.in_features:
                raise ValueError(f"QuantizedLinear(in_features={self.in_features}): input has "
                                 f"{x.shape[-1] if x.ndim else 'no'} features (shape {tuple(x.shape)})")
            lead, x = x.shape[:-1], x.reshape(-1, self.in_features)
        if x.dtype is not _FLOAT32:   # also a byte-swapped float32, which astype makes native
            x = x.astype(np.float32)
        packed, row_sums = self._kernel_weight()
        bias = None if self.bias is None else self.bias.data
        # One kernel call: the input's range (dynamic) or fixed qparams (static), its uint8
        # codes, the integer product and the float32 epilogue.
        if self.dynamic:
            out = K.quantized_linear(x, packed, row_sums, self.weight_scale.data, bias,
                                     relu=self._relu, reduce_range=self.reduce_range)
        else:
            out = K.quantized_linear(x, packed, row_sums, self.weight_scale.data, bias,
                                     float(self.input_scale.data[0]),
                                     int(self.input_zero_point.data[0]), self._relu)
        # an operation's result, wrapped without Tensor()'s conversions
        return Tensor._make(out if lead is None else out.reshape(lead + (self.out_features,)), None)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dynamic={self.dynamic}"
                + (", reduce_range=True" if self.reduce_range else ""))


class QuantizedLinearReLU(QuantizedLinear):
    """:class:`QuantizedLinear` followed by a ReLU, applied in the same kernel call.

    Made by :func:`~nnlite.quantization.quantize_dynamic` from a
    :class:`~nnlite.quantization.LinearReLU` (see
    :func:`~nnlite.quantization.fuse_modules`); the same buffers and
    ``state_dict`` keys as :class:`QuantizedLinear`. ``from_float`` takes the
    ``LinearReLU`` or its Linear.
    """

    _relu = True

    @classmethod
    def from_float(cls, linear, input_qparams=None, weight_scale=None, reduce_range=False):
        if isinstance(linear, LinearReLU):   # quantize its Linear
            linear = linear[0]
        return super().from_float(linear, input_qparams, weight_scale, reduce_range)


class QATLinear(Linear):
    """A Linear trained with fake-quantized input (uint8, affine) and weight (int8 per row, symmetric).

    Shares the float Linear's parameters; :func:`~nnlite.quantization.convert`
    turns it into a static :class:`QuantizedLinear` with the input qparams it learned.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__(in_features, out_features, bias, dtype=dtype)
        self.input_fake_quant = FakeQuantize(MovingAverageMinMaxObserver, dtype=quint8)
        self.weight_fake_quant = FakeQuantize(PerChannelMinMaxObserver, ch_axis=0, dtype=qint8,
                                              qscheme=per_channel_symmetric)

    @classmethod
    def from_float(cls, linear):
        """A QATLinear holding ``linear``'s own parameters, in its training mode. The initial weights
        its constructor makes are discarded, and drawn without using up the global generator."""
        if not isinstance(linear, Linear):
            raise TypeError(f"{cls.__name__}.from_float: expected an nn.Linear, got {type(linear).__name__}")
        if "weight" not in linear._parameters:
            # A pruned (or parametrized) weight is computed from other tensors before each call; the
            # QAT layer would hold them but train its own constructor's weight.
            raise ValueError(f"{cls.__name__}.from_float: expected a Linear whose weight is a parameter, got one "
                             f"whose weight is computed (its parameters: {list(linear._parameters)}); make it a "
                             f"parameter first (nn.utils.prune.remove(layer, 'weight') for a pruned layer)")
        return _rebuilt(linear, lambda: cls(linear.in_features, linear.out_features, linear.bias is not None,
                                            dtype=linear.weight.dtype))

    def forward(self, input):
        x = self.input_fake_quant(input)
        return F.linear(x, self.weight_fake_quant(self.weight), self.bias)

    def to_quantized(self):
        """The static int8 layer with the input qparams this layer trained with.

        The weight is observed once more first, as torch's ``convert`` does: the last optimizer
        step came after the last forward pass, whose weight qparams would clip the weight it
        left (and a layer never run has none yet).
        """
        with no_grad():
            self.weight_fake_quant(self.weight)
        return QuantizedLinear.from_float(self, input_qparams=(self.input_fake_quant.scale.data,
                                                               self.input_fake_quant.zero_point.data),
                                          weight_scale=self.weight_fake_quant.scale.data)



class Float16Linear(Module):
    """A Linear whose weight and bias are stored in float16: half the bytes of float32.

    The product runs in float32 (the weight is widened at each call: the
    kernels have no float16 loops) and the output is float32, as in PyTorch's
    float16 dynamic quantization, so the next layer needs no change. float16 keeps 11
    significant bits, so each stored weight is within a relative
    :math:`2^{-11}` of the float32 one. PyTorch's counterpart is
    ``quantize_dynamic(model, {nn.Linear}, dtype=torch.float16)``.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Buffer(np.zeros((out_features, in_features), np.float16))
        self.bias = Buffer(np.zeros(out_features, np.float16)) if bias else None

    @classmethod
    def from_float(cls, linear):
        if not isinstance(linear, Linear):
            raise TypeError(f"{cls.__name__}.from_float: expected an nn.Linear, got {type(linear).__name__}")
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None)
        layer.weight.data = linear.weight.data.astype(np.float16)
        if linear.bias is not None:
            layer.bias.data = linear.bias.data.astype(np.float16)
        return layer

    def forward(self, input):
        x = input.data if isinstance(input, Tensor) else np.asarray(input)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Float16Linear(in_features={self.in_features}): input has "
                             f"{x.shape[-1] if x.ndim else 'no'} features (shape {tuple(x.shape)})")
        bias = None if self.bias is None else Tensor(self.bias.data.astype(np.float32))
        out = F.linear(Tensor(x.astype(np.float32, copy=False)), Tensor(self.weight.data.astype(np.float32)), bias)
        return out

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
