"""float16 and bfloat16 with a number, computed as PyTorch computes them.

PyTorch's CPU kernels compute float16 and bfloat16 elementwise in float32, their
*opmath* type, and round each result once. What happens to a number beside such a
tensor depends on the operation:

* ``*`` and ``/`` (``mul``, ``div``, ``mul_``, ``div_``, ``floor_divide``) keep a number
  on their right (a Python number, a NumPy scalar or a 0-dim tensor) as a float32:
  ``x * 0.1`` is ``x`` times 0.1 rounded to float32, not 0.1 rounded to float16
  (0.0999755859375), so about a third of the products differ by one unit in the last
  place from NumPy's float16 product, and ``x / 4097`` divides by 4097, not by float16's
  4096. A Python number on the left counts too: ``0.1 * x`` is PyTorch's ``x * 0.1``, and
  ``0.1 / x`` its ``x.reciprocal() * 0.1``, the reciprocal rounded to the tensor's dtype
  first. (A 0-dim tensor on the left is read in the tensor's dtype.)
* ``//`` (``floor_divide``, ``div(rounding_mode="floor")``) of two such tensors follows
  CPython's steps for floats, each rounded to their dtype (:func:`floor_divide_half`).
* ``+ - ** % fmod``, the comparisons and ``clamp`` read the number in the tensor's
  dtype (0.1 as 0.0999755859375: ``x < 0.1`` compares against that), as NumPy reads it,
  so NumPy's own float16 loops already give PyTorch's bytes there.
* ``add`` and ``sub`` of two such tensors with ``alpha``: alpha is read in their
  dtype, and ``input + alpha * other`` computed in float32 and rounded once
  (:func:`nnlite.ops.arithmetic.add`).
* ``addcmul``, ``addcdiv`` and ``lerp`` compute in float32 with the number (value,
  weight) as a float32; PyTorch's vector loops (on a CPU with FMA instructions) round
  ``lerp``'s and ``addcmul``'s last multiply-add once, as a fused multiply-add does
  (:func:`fma32`).
  (Where a length is not a multiple of the vector width, PyTorch computes the last few
  elements in a scalar loop that may round differently; nnlite rounds them all alike.)

How the kernels, which have no float16 or bfloat16 loops, compute these dtypes (in
float32, rounding once) is told in :mod:`nnlite.autograd`.
"""
import numpy as np

from ..tensor import Tensor, is_bfloat16


def is_half(dtype):
    """float16 or bfloat16: the dtypes PyTorch computes in float32."""
    return dtype.kind == "f" and dtype.itemsize == 2 or dtype.kind == "V" and is_bfloat16(dtype)


def half_pair(input, other):
    """Two float16, or two bfloat16, tensors."""
    return type(input) is type(other) is Tensor and input.dtype == other.dtype and is_half(input.dtype)


def _number(x):
    """A Python number, a NumPy scalar or a 0-dim array: an operand PyTorch's kernels read as one value."""
    return np.ndim(x) == 0


def with_number(ufunc, a, b, out):
    """``out``, NumPy's ``ufunc(a, b)``, or, where it is float16 or bfloat16 and ``b`` one number,
    ``ufunc(a, b)`` with the number kept in float32 and the result rounded once, as PyTorch's
    ``*`` and ``/`` compute it."""
    if not is_half(out.dtype) or not _number(b):
        return out
    return ufunc(a, np.float32(b), dtype=np.float32).astype(out.dtype)


def product(a, b, out):
    """``a * b`` (``out`` as NumPy computed it) as PyTorch computes it: :func:`with_number`, a
    Python number on the left too (PyTorch's ``0.1 * x`` is ``x * 0.1``; a 0-dim tensor
    there is read in the result's dtype, as PyTorch reads it)."""
    if type(a) in (int, float) and is_half(out.dtype):
        a, b = b, a
    return with_number(np.multiply, a, b, out)


def quotient(a, b, out):
    """``a / b`` (``out`` as NumPy computed it) as PyTorch computes it: :func:`with_number`, and a
    Python number over a tensor as PyTorch's ``x.reciprocal() * number``, the reciprocal
    rounded to the tensor's dtype first."""
    if type(a) in (int, float) and is_half(out.dtype):
        return with_number(np.multiply, np.reciprocal(b), a, out)
    return with_number(np.true_divide, a, b, out)


def fma32(x, y, z):
    """``x * y + z`` in float32 rounded once, as an FMA instruction rounds it: float64 holds the
    product of two float32 numbers exactly, and its sum, rounded to float64 and then to float32,
    is the FMA's result but for the rarest ties."""
    return (np.asarray(x, np.float64) * y + z).astype(np.float32)


def lerp(start, end, weight):
    """``start + weight * (end - start)`` for float16 or bfloat16 arrays, PyTorch's way: in float32,
    with its two forms (:class:`~nnlite.ops.arithmetic.Lerp`) each one FMA, rounded once to the dtype."""
    s, e, w = start.astype(np.float32), end.astype(np.float32), np.asarray(weight, np.float32)
    delta = e - s
    out = np.where(np.abs(w) < 0.5, fma32(w, delta, s), fma32(-delta, 1 - w, e))
    return out.astype(start.dtype)


def floor_divide_half(a, b):
    """floor(a / b) by CPython's steps for floats (``float_floor_div``), each one rounded to the
    operands' dtype: how PyTorch computes it for two float16 or two bfloat16 tensors. NumPy's
    ``floor_divide`` takes the same steps in float32 and rounds once, which differs in the last bit."""
    mod = np.fmod(a, b)
    div = (a - mod) / b
    div = np.where((mod != 0) & ((b < 0) != (mod < 0)), div - 1, div)
    floor = np.floor(div)
    floor = np.where(div - floor > 0.5, floor + 1, floor)   # div was whole but rounded just below it
    return np.where(div == 0, np.copysign(0, a / b), np.where(b == 0, a / b, floor))
