"""Observers: watch the values a tensor takes and choose its scale and zero point.

An observer is a module that returns its input unchanged and records statistics;
``calculate_qparams()`` turns them into ``(scale, zero_point)`` with
:func:`~nnlite.quantization.calculate_qparams`. Which statistics decides how
much of the range is kept:

* :class:`MinMaxObserver` — the extremes seen: nothing is clipped, but one
  outlier stretches the scale for every other value;
* :class:`MovingAverageMinMaxObserver` — extremes averaged over batches
  (:math:`m \\leftarrow m + c\\,(m_{batch} - m)`), the usual choice while training (QAT);
* :class:`PerChannelMinMaxObserver` — one range per slice along ``ch_axis`` (weights);
* :class:`PercentileObserver` — the ``percentile`` and ``100 - percentile``
  quantiles: clips the rare outliers to spend codes on the bulk;
* :class:`MSEObserver` — searches the clipping range that minimises the mean
  squared quantization error on the values seen last.

Names and arguments follow ``torch.ao.quantization``'s observers where torch has them.
"""
import numpy as np

from ..nn.module import Module
from ..parameter import Buffer
from ..tensor import Tensor
from .qtensor import (calculate_qparams, per_channel_affine, per_channel_symmetric, per_tensor_affine,
                      qint8, quant_range, quint8)

__all__ = ["ObserverBase", "MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
           "PercentileObserver", "MSEObserver"]

_EPS = float(np.finfo(np.float32).eps)


class ObserverBase(Module):
    """Records statistics in ``forward`` (returning the input) and computes qparams from them."""

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS):
        super().__init__()
        self.dtype, self.qscheme, self.eps = dtype, qscheme, eps
        self.quant_min, self.quant_max = quant_range(dtype, reduce_range, quant_min, quant_max)
        self.min_val = Buffer(np.array(np.inf, np.float32))
        self.max_val = Buffer(np.array(-np.inf, np.float32))

    def _values(self, x):
        a = (x.data if isinstance(x, Tensor) else np.asarray(x)).astype(np.float32, copy=False)
        # A NaN or inf would become the range itself and give a NaN or infinite scale.
        if not np.isfinite(a).all():
            raise ValueError(f"{type(self).__name__}: expected finite values to observe, got NaN or inf")
        return a

    def _update(self, lo, hi):
        self.min_val.data = np.asarray(lo, np.float32)
        self.max_val.data = np.asarray(hi, np.float32)

    def calculate_qparams(self):
        """``(scale, zero_point)`` as Tensors (float32, int64)."""
        if not np.all(np.isfinite(self.min_val.data)):
            raise RuntimeError(f"{type(self).__name__}: no values observed yet; run data through it first")
        scale, zp = calculate_qparams(self.min_val.data, self.max_val.data, self.dtype, self.qscheme,
                                      self.quant_min, self.quant_max, self.eps)
        return Tensor(scale), Tensor(zp)

    def extra_repr(self):
        return f"min_val={self.min_val.data}, max_val={self.max_val.data}"


class MinMaxObserver(ObserverBase):
    """The running minimum and maximum of everything observed."""

    def forward(self, x):
        a = self._values(x)
        if a.size:
            self._update(np.minimum(self.min_val.data, a.min()), np.maximum(self.max_val.data, a.max()))
        return x


class MovingAverageMinMaxObserver(ObserverBase):
    """Minimum and maximum as exponential moving averages of the batches' extremes."""

    def __init__(self, averaging_constant=0.01, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"MovingAverageMinMaxObserver: averaging_constant must be in (0, 1], "
                             f"got {averaging_constant}")
        self.averaging_constant = averaging_constant

    def forward(self, x):
        a = self._values(x)
        if a.size:
            lo, hi = a.min(), a.max()
            if np.isfinite(self.min_val.data):
                c = np.float32(self.averaging_constant)
                lo = self.min_val.data + c * (lo - self.min_val.data)
                hi = self.max_val.data + c * (hi - self.max_val.data)
            self._update(lo, hi)
        return x


class PerChannelMinMaxObserver(ObserverBase):
    """Minimum and maximum of every slice along ``ch_axis`` (weights: one per output row)."""

    def __init__(self, ch_axis=0, dtype=quint8, qscheme=per_channel_affine, reduce_range=False, quant_min=None,
                 quant_max=None, eps=_EPS):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        self.ch_axis = ch_axis

    def forward(self, x):
        a = self._values(x)
        if a.size == 0:   # nothing to observe, as torch's observer returns an empty input unrecorded
            return x
        a = np.moveaxis(a, self.ch_axis, 0).reshape(a.shape[self.ch_axis], -1)
        lo, hi = a.min(axis=1), a.max(axis=1)
        if self.min_val.data.shape == lo.shape:
            lo, hi = np.minimum(self.min_val.data, lo), np.maximum(self.max_val.data, hi)
        elif self.min_val.data.ndim:   # not the first batch: the ranges seen so far belong to other channels
            raise ValueError(f"PerChannelMinMaxObserver: observed {self.min_val.data.size} channels along axis "
                             f"{self.ch_axis} before, got {lo.size}")
        self._update(lo, hi)
        return x


class PercentileObserver(ObserverBase):
    """The ``100 - percentile`` and ``percentile`` quantiles of each batch, widened over batches."""

    def __init__(self, percentile=99.99, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"PercentileObserver: percentile must be in (50, 100], got {percentile}")
        self.percentile = percentile

    def forward(self, x):
        a = self._values(x)
        if a.size:
            lo, hi = np.percentile(a, [100.0 - self.percentile, self.percentile])
            self._update(np.minimum(self.min_val.data, lo), np.maximum(self.max_val.data, hi))
        return x


class MSEObserver(ObserverBase):
    """The clipping range ``[a * min, a * max]`` (``a`` on a grid in (0, 1]) of least squared error.

    The error is measured on the last observed batch (up to ``max_samples`` of
    its values, evenly spaced); min and max are over everything observed.
    """

    def __init__(self, grid=100, max_samples=65536, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False,
                 quant_min=None, quant_max=None, eps=_EPS):
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, eps)
        if int(grid) < 1 or int(max_samples) < 1:
            raise ValueError(f"MSEObserver: grid and max_samples must be >= 1, got grid={grid}, "
                             f"max_samples={max_samples}")
        self.grid, self.max_samples = int(grid), int(max_samples)
        self._sample = None

    def forward(self, x):
        a = self._values(x).reshape(-1)
        if a.size:
            self._update(np.minimum(self.min_val.data, a.min()), np.maximum(self.max_val.data, a.max()))
            step = max(1, a.size // self.max_samples)
            self._sample = a[::step].copy()
        return x

    def calculate_qparams(self):
        if self._sample is None:
            raise RuntimeError("MSEObserver: no values observed yet; run data through it first")
        best = None
        for a in np.linspace(1.0, 1.0 / self.grid, self.grid):
            scale, zp = calculate_qparams(a * self.min_val.data, a * self.max_val.data, self.dtype, self.qscheme,
                                          self.quant_min, self.quant_max, self.eps)
            q = np.clip(np.rint(self._sample * (np.float32(1) / scale)) + zp, self.quant_min, self.quant_max)
            err = float(np.mean(((q - zp) * scale - self._sample) ** 2))
            if best is None or err < best[0]:
                best = (err, scale, zp)
        return Tensor(best[1]), Tensor(best[2])


def weight_observer():
    """The observer quantized weights use: int8, symmetric, one scale per output row."""
    return PerChannelMinMaxObserver(ch_axis=0, dtype=qint8, qscheme=per_channel_symmetric)
