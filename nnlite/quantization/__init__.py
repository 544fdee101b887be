"""Quantization (``nl.quantization``): int8 codes for weights and activations.

* :mod:`~nnlite.quantization.qtensor` — affine quantization, per tensor and per
  channel, symmetric and asymmetric, with the formulas;
* :mod:`~nnlite.quantization.observer` — how scales and zero points are chosen
  (min-max, moving average, per channel, percentile, MSE-optimal);
* :mod:`~nnlite.quantization.fake_quantize` — quantize-dequantize with the
  straight-through estimator, for quantization-aware training;
* :mod:`~nnlite.quantization.linear` — the int8 Linear (an int8 GEMM kernel
  with int32 sums), its QAT form, and a Linear stored in float16;
* :mod:`~nnlite.quantization.fuse` — ``fuse_modules``: a Linear and the ReLU
  after it quantized as one layer, the ReLU inside the kernel call;
* :mod:`~nnlite.quantization.quantize` — ``quantize_dynamic``, ``prepare_qat``,
  ``convert`` on whole models.

Names follow ``torch.ao.quantization``.
"""
from .fake_quantize import FakeQuantize, fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine
from .fuse import LinearReLU, fuse_modules
from .linear import Float16Linear, QATLinear, QuantizedLinear, QuantizedLinearReLU, int8_linear
from .observer import (MinMaxObserver, MovingAverageMinMaxObserver, MSEObserver, ObserverBase,
                       PercentileObserver, PerChannelMinMaxObserver)
from .qtensor import (QTensor, calculate_qparams, per_channel_affine, per_channel_symmetric, per_tensor_affine,
                      per_tensor_symmetric, qint8, quant_range, quantize_per_channel, quantize_per_tensor, quint8)
from .quantize import convert, model_size_bytes, prepare_qat, quantize_dynamic

__all__ = ["qint8", "quint8", "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
           "per_channel_symmetric", "QTensor", "quantize_per_tensor", "quantize_per_channel", "calculate_qparams",
           "quant_range", "ObserverBase", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "PerChannelMinMaxObserver", "PercentileObserver", "MSEObserver", "FakeQuantize",
           "fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine", "int8_linear",
           "QuantizedLinear", "QuantizedLinearReLU", "LinearReLU", "fuse_modules", "QATLinear", "Float16Linear", "quantize_dynamic", "prepare_qat", "convert", "model_size_bytes"]
