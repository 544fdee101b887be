r"""Affine quantization: real numbers as 8-bit codes, a scale and a zero point.

A quantized tensor stores integer codes :math:`q` and the map back to reals

.. math::

    x \approx \hat x = s\,(q - z), \qquad
    q = \operatorname{clamp}\big(\operatorname{round}(x / s) + z,\; q_{\min},\; q_{\max}\big)

with scale :math:`s > 0` and zero point :math:`z` (an integer code, so real 0
is represented exactly — zero padding and ReLU zeros stay exact). ``round`` is
half to even and :math:`x / s` is computed as :math:`x \cdot (1/s)` in float32,
as PyTorch does. Codes are ``qint8`` (int8, [-128, 127]) or ``quint8``
(uint8, [0, 255]). Values in the range :math:`[s(q_{\min} - z), s(q_{\max} - z)]`
are off by at most :math:`s/2`; values outside it are *clipped*.

*Per tensor*: one :math:`(s, z)` for the whole tensor. *Per channel*: one
pair per slice along ``axis`` (one per output row of a weight), which matters
when rows have very different ranges. *Symmetric* schemes fix :math:`z` (0 for
qint8) and use :math:`s = \max|x| / ((q_{\max} - q_{\min})/2)`; *affine*
(asymmetric) ones fit :math:`[\min x, \max x]` exactly — see
:func:`calculate_qparams`.
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["qint8", "quint8", "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
           "per_channel_symmetric", "QTensor", "quantize_per_tensor", "quantize_per_channel",
           "calculate_qparams", "quant_range"]


class QDtype:
    """A quantized dtype: the storage type of its codes and their range."""

    def __init__(self, name, storage, quant_min, quant_max):
        self.name, self.storage = name, np.dtype(storage)
        self.quant_min, self.quant_max = quant_min, quant_max

    def __repr__(self):
        return f"nnlite.{self.name}"

    def __reduce__(self):
        # The module's own object, by name: a copy would fail every ``is qint8`` test, so
        # copy.deepcopy (of an observer, of a model being converted) and pickle return it.
        return self.name


class QScheme:
    """How scales and zero points are chosen: per tensor or per channel, affine or symmetric."""

    def __init__(self, name):
        self.name = name
        self.per_channel = name.startswith("per_channel")
        self.symmetric = name.endswith("symmetric")

    def __repr__(self):
        return f"nnlite.{self.name}"

    def __reduce__(self):   # one object per scheme, as for QDtype
        return self.name


qint8 = QDtype("qint8", np.int8, -128, 127)
quint8 = QDtype("quint8", np.uint8, 0, 255)
per_tensor_affine = QScheme("per_tensor_affine")
per_tensor_symmetric = QScheme("per_tensor_symmetric")
per_channel_affine = QScheme("per_channel_affine")
per_channel_symmetric = QScheme("per_channel_symmetric")


def _qdtype(dtype):
    if dtype is qint8 or dtype is quint8:
        return dtype
    raise TypeError(f"expected nl.qint8 or nl.quint8 as the quantized dtype, got {dtype!r}")


def quant_range(dtype, reduce_range=False, quant_min=None, quant_max=None):
    """``(quant_min, quant_max)`` of ``dtype``; ``reduce_range`` drops one bit (as torch)."""
    dtype = _qdtype(dtype)
    if quant_min is not None or quant_max is not None:
        if quant_min is None or quant_max is None or not dtype.quant_min <= quant_min < quant_max <= dtype.quant_max:
            raise ValueError(f"quant_min and quant_max must satisfy {dtype.quant_min} <= quant_min < quant_max "
                             f"<= {dtype.quant_max} for {dtype!r}, got {quant_min}, {quant_max}")
        return int(quant_min), int(quant_max)
    if reduce_range:
        return dtype.quant_min // 2, dtype.quant_max // 2
    return dtype.quant_min, dtype.quant_max


def calculate_qparams(min_val, max_val, dtype=None, qscheme=per_tensor_affine, quant_min=None, quant_max=None,
                      eps=float(np.finfo(np.float32).eps)):
    r"""Scale and zero point (arrays, float32 and int64) for values in ``[min_val, max_val]``.

    The range is first widened to include 0. Affine:
    :math:`s = (\max - \min) / (q_{\max} - q_{\min})`,
    :math:`z = q_{\min} - \operatorname{round}(\min / s)` (clamped into the code range).
    Symmetric: :math:`s = \max(|\min|, |\max|) / ((q_{\max} - q_{\min}) / 2)` and
    :math:`z = 0` for qint8 (128 for quint8). :math:`s` is at least ``eps``. These are
    PyTorch's formulas, so observers give the same parameters; the affine
    scheme is the one of Jacob et al., "Quantization and Training of Neural
    Networks for Efficient Integer-Arithmetic-Only Inference" (CVPR 2018).

    >>> scale, zero_point = calculate_qparams(-1.0, 3.0)   # quint8: codes 0..255
    >>> round(float(scale), 6), int(zero_point)
    (0.015686, 64)
    """
    dtype = quint8 if dtype is None else _qdtype(dtype)
    if not isinstance(qscheme, QScheme):
        raise TypeError(f"calculate_qparams: expected qscheme to be one of nl.per_tensor_affine, "
                        f"nl.per_tensor_symmetric, nl.per_channel_affine, nl.per_channel_symmetric, got {qscheme!r}")
    if not 0 < eps < np.inf:   # eps keeps the scale of a constant range above 0, which codes divide by
        raise ValueError(f"calculate_qparams: eps must be a finite number > 0, got {eps}")
    if not (np.isfinite(min_val).all() and np.isfinite(max_val).all()):
        raise ValueError(f"calculate_qparams: expected a finite range, got min_val={min_val} and max_val={max_val}")
    if (quant_min is None) != (quant_max is None):   # one bound alone would be compared with None
        raise ValueError(f"calculate_qparams: give both quant_min and quant_max or neither, got {quant_min} "
                         f"and {quant_max}")
    qmin, qmax = (dtype.quant_min, dtype.quant_max) if quant_min is None else (quant_min, quant_max)
    if not qmin < qmax:
        raise ValueError(f"calculate_qparams: expected quant_min < quant_max, got {qmin} and {qmax}")
    if np.any(np.asarray(min_val) > np.asarray(max_val)):
        raise ValueError(f"calculate_qparams: min_val must not exceed max_val, got {min_val} and {max_val}")
    min_neg = np.minimum(np.asarray(min_val, np.float32), np.float32(0))
    max_pos = np.maximum(np.asarray(max_val, np.float32), np.float32(0))
    if qscheme.symmetric:
        max_pos = np.maximum(-min_neg, max_pos)
        scale = (max_pos / np.float32((qmax - qmin) / 2)).astype(np.float32)
        scale = np.maximum(scale, np.float32(eps))
        zero_point = np.full(scale.shape, (qmin + qmax + 1) // 2 if dtype is quint8 else 0, np.int64)
    else:
        scale = ((max_pos - min_neg) / np.float32(qmax - qmin)).astype(np.float32)
        scale = np.maximum(scale, np.float32(eps))
        zero_point = qmin - np.rint(min_neg / scale).astype(np.int64)
        zero_point = np.clip(zero_point, qmin, qmax)
    return scale, zero_point


def _quantize(x, scale, zero_point, qmin, qmax, storage):
    inv_scale = np.float32(1.0) / scale.astype(np.float32)
    q = np.rint(x.astype(np.float32) * inv_scale) + zero_point
    return np.clip(q, qmin, qmax).astype(storage)


class QTensor:
    """Integer codes with their scale(s) and zero point(s); ``dequantize()`` gives floats back.

    Made by :func:`quantize_per_tensor` or :func:`quantize_per_channel`; the
    accessors are PyTorch's (``int_repr``, ``q_scale``, ``q_per_channel_scales``...).
    """

    def __init__(self, codes, scale, zero_point, dtype, axis=None):
        dtype = _qdtype(dtype)
        # Codes in another storage type would wrap around or keep fractions the dtype cannot hold.
        if not isinstance(codes, np.ndarray) or codes.dtype != dtype.storage:
            raise TypeError(f"QTensor: codes of {dtype!r} must be a NumPy array of {dtype.storage}, got "
                            f"{codes.dtype if isinstance(codes, np.ndarray) else type(codes).__name__}")
        _check_scales(scale, "QTensor")
        self._codes, self.dtype, self._axis = codes, dtype, axis
        self._scale = np.asarray(scale, np.float32)
        self._zero_point = np.asarray(zero_point, np.int64)

    @property
    def shape(self):
        return self._codes.shape

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return int(self._codes.size)

    def qscheme(self):
        return per_channel_affine if self._axis is not None else per_tensor_affine

    def int_repr(self):
        """The codes as an integer Tensor (int8 for qint8, uint8 for quint8)."""
        return Tensor(self._codes.copy())

    def q_scale(self):
        return float(self._scale)

    def q_zero_point(self):
        return int(self._zero_point)

    def q_per_channel_scales(self):
        return Tensor(self._scale.astype(np.float64))

    def q_per_channel_zero_points(self):
        return Tensor(self._zero_point.copy())

    def q_per_channel_axis(self):
        return self._axis

    def _broadcast(self, a):
        if self._axis is None:
            return a
        shape = [1] * self._codes.ndim
        shape[self._axis] = -1
        return a.reshape(shape)

    def dequantize(self):
        r""":math:`s (q - z)` as a float32 Tensor."""
        scale, zp = self._broadcast(self._scale), self._broadcast(self._zero_point)
        return Tensor(((self._codes.astype(np.int32) - zp).astype(np.float32) * scale).astype(np.float32))

    def __repr__(self):
        what = (f"scale={self.q_scale():.6g}, zero_point={self.q_zero_point()}" if self._axis is None
                else f"axis={self._axis}, {self._scale.size} scales")
        return f"QTensor(shape={self.shape}, dtype={self.dtype!r}, {what})"


def _data(t, name):
    if isinstance(t, Tensor):
        return t.data
    if isinstance(t, np.ndarray):
        return t
    raise TypeError(f"{name}: input must be a Tensor, got {type(t).__name__}")


def _check_scales(scale, name):
    """Every scale a finite number > 0: codes are values divided by it."""
    scale = np.asarray(scale, np.float64)
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError(f"{name}: every scale must be a finite number > 0, got {scale}")


def _input(t, name):
    """The float values to quantize; NaN has no code (its cast to an integer is undefined)."""
    x = _data(t, name)
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise ValueError(f"{name}: expected values without NaN; NaN has no quantized code")
    return x


def _zero_points(zero_point, name):
    z = np.asarray(zero_point)
    if z.dtype.kind not in "iu" and not (z.dtype.kind == "f" and np.all(z == np.rint(z))):
        raise TypeError(f"{name}: zero points must be integers, got {zero_point}")
    return z.astype(np.int64)


def quantize_per_tensor(input, scale, zero_point, dtype):
    """Quantize ``input`` with one ``scale`` and ``zero_point`` (see the module docstring).

    >>> import nnlite as nl
    >>> q = nl.quantization.quantize_per_tensor(nl.tensor([-1.0, 0.0, 0.26, 2.0]), 0.1, 10, nl.quint8)
    >>> q.int_repr().tolist(), q.dequantize().tolist()
    ([0, 10, 13, 30], [-1.0, 0.0, 0.30000001192092896, 2.0])
    """
    dtype = _qdtype(dtype)
    x = _input(input, "quantize_per_tensor")
    _check_scales(scale, "quantize_per_tensor")
    scale, zero_point = np.float32(scale), int(_zero_points(zero_point, "quantize_per_tensor"))
    if not dtype.quant_min <= zero_point <= dtype.quant_max:
        raise ValueError(f"quantize_per_tensor: zero_point must be in [{dtype.quant_min}, {dtype.quant_max}] "
                         f"for {dtype!r}, got {zero_point}")
    codes = _quantize(x, scale, zero_point, dtype.quant_min, dtype.quant_max, dtype.storage)
    return QTensor(codes, scale, zero_point, dtype)


def quantize_per_channel(input, scales, zero_points, axis, dtype):
    """Quantize each slice of ``input`` along ``axis`` with its own scale and zero point."""
    dtype = _qdtype(dtype)
    x = _input(input, "quantize_per_channel")
    scales = np.asarray(_data(scales, "quantize_per_channel") if isinstance(scales, Tensor) else scales,
                        np.float32).reshape(-1)
    zero_points = _zero_points(_data(zero_points, "quantize_per_channel") if isinstance(zero_points, Tensor)
                               else zero_points, "quantize_per_channel").reshape(-1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"quantize_per_channel: axis {axis} is out of range for a {x.ndim}-D input")
    axis = axis % x.ndim
    n = x.shape[axis]
    if scales.size != n or zero_points.size != n:
        raise ValueError(f"quantize_per_channel: expected {n} scales and zero points (the size of axis {axis}), "
                         f"got {scales.size} and {zero_points.size}")
    _check_scales(scales, "quantize_per_channel")
    shape = [1] * x.ndim
    shape[axis] = n
    codes = _quantize(x, scales.reshape(shape), zero_points.reshape(shape), dtype.quant_min, dtype.quant_max,
                      dtype.storage)
    return QTensor(codes, scales, zero_points, dtype, axis=axis)
