"""Making tensors: zeros, ones, ranges, identity and random draws.

Random draws come from the seeded global generator (``nl.manual_seed``) or
from a ``generator=`` argument, so results are reproducible.
"""
import numpy as np

from .._kernels.allocator import aligned_empty
from ..random import _gen
from ..tensor import Tensor, as_dtype, get_default_dtype, _to_array
from .dims import int_argument
from .shape import _normalize_shape


def _shape(size):
    shape = _normalize_shape(size)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimension in size {shape}")
    return shape


def _float(dtype):
    return as_dtype(dtype) or get_default_dtype()


def _filled(shape, dtype, value):
    """New storage on a cache line (``aligned_empty``), set to ``value`` unless it is None."""
    array = aligned_empty(shape, dtype)
    if value is not None:
        np.copyto(array, value, casting="unsafe")
    return array


def _new(array, requires_grad):
    t = Tensor._make(array, None)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size, dtype=None, requires_grad=False):
    return _new(_filled(_shape(size), _float(dtype), 0), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return _new(_filled(_shape(size), _float(dtype), 1), requires_grad)


def empty(*size, dtype=None, requires_grad=False):
    return _new(_filled(_shape(size), _float(dtype), None), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, bool) else
                 np.int64 if isinstance(fill_value, int) else get_default_dtype())
    return _new(_filled(_shape((size,)), as_dtype(dtype), fill_value), requires_grad)


def zeros_like(input, dtype=None, requires_grad=False):
    return _new(_filled(input.shape, as_dtype(dtype) or input.dtype, 0), requires_grad)


def ones_like(input, dtype=None, requires_grad=False):
    return _new(_filled(input.shape, as_dtype(dtype) or input.dtype, 1), requires_grad)


def empty_like(input, dtype=None, requires_grad=False):
    return _new(_filled(input.shape, as_dtype(dtype) or input.dtype, None), requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False):
    return _new(_filled(input.shape, as_dtype(dtype) or input.dtype, fill_value), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) * step < 0:   # PyTorch refuses a range the step walks away from, rather than return nothing
        raise ValueError(f"arange: start={start}, end={end} and step={step} are inconsistent: "
                         f"the step must point from start towards end")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else get_default_dtype()
    return _new(np.arange(start, end, step, dtype=as_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    return _new(np.linspace(start, end, int_argument("linspace", "steps", steps), dtype=_float(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    return _new(np.eye(n, m, dtype=_float(dtype)), requires_grad)


def rand(*size, generator=None, dtype=None, requires_grad=False):
    """Uniform on [0, 1)."""
    dtype = _float(dtype)
    return _new(_gen(generator).random(dtype=dtype, out=_filled(_shape(size), dtype, None)), requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False):
    """Standard normal."""
    dtype = _float(dtype)
    return _new(_gen(generator).standard_normal(dtype=dtype, out=_filled(_shape(size), dtype, None)), requires_grad)


def randint(low, high=None, size=(), generator=None, dtype=None):
    """Integers drawn uniformly from [low, high); ``randint(high, size)`` starts at 0, as in PyTorch."""
    if isinstance(high, (tuple, list)) and size == ():
        high, size = None, high
    if high is None:
        low, high = 0, low
    if not low < high:
        raise ValueError(f"randint: expected low < high, got low={low} and high={high}")
    return _new(_gen(generator).integers(low, high, size=_shape((size,)), dtype=as_dtype(dtype) or np.int64), False)


def randperm(n, generator=None):
    return _new(_gen(generator).permutation(n).astype(np.int64), False)


def rand_like(input, generator=None, dtype=None):
    return rand(input.shape, generator=generator, dtype=dtype or input.dtype)


def randn_like(input, generator=None, dtype=None):
    return randn(input.shape, generator=generator, dtype=dtype or input.dtype)


def as_tensor(data, dtype=None):
    """A Tensor sharing memory with ``data`` when possible (no copy for a matching ndarray)."""
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == as_dtype(dtype) else data.to(dtype)
    return Tensor._make(_to_array(data, as_dtype(dtype)), None)


def from_numpy(array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    if not array.dtype.isnative:   # shared memory cannot be converted; PyTorch refuses too
        raise TypeError(f"from_numpy: the array has non-native byte order (dtype {array.dtype.str!r}); "
                        f"use nl.tensor(array) to copy it, or array.astype(array.dtype.newbyteorder('='))")
    return Tensor._make(array, None)
