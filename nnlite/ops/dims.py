"""dim arguments: one dim, or a tuple of them, checked and made non-negative.

PyTorch's rule: a tensor with n dims takes dims in [-n, n); a 0-dim tensor takes
0 and -1 (as if it had one dim). This module imports nothing from the other ops,
so every op file can use it.
"""
import numbers
import operator

import numpy as np


def int_argument(op, name, value):
    """``value`` (a count, an offset, a size) as an int: a Python or NumPy integer, or an integer
    tensor of one element, as in PyTorch. A float or a bool is refused, not cut down by int()
    (``narrow(0, 1.5, 2)`` started at 1 without a word)."""
    if isinstance(value, (bool, np.bool_)) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__} {value!r}")
    return operator.index(value)


def _dim(op, dim, ndim):
    """One ``dim`` as an axis in [0, ndim); a 0-dim tensor takes 0 and -1, as in PyTorch."""
    n = ndim or 1
    if type(dim) is int and -n <= dim < n:   # the common case, before the slower checks
        return dim % n
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims "
                         f"(expected a dim in [{-n}, {n - 1}])")
    return int(dim) % n


def _dims(dim, ndim, op="dim"):
    """Normalise ``dim`` (None, int or tuple) to a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim) if isinstance(dim, (tuple, list)) else None
    if dims is None or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in dims):
        raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, got {type(dim).__name__} {dim!r}")
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dims")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        # PyTorch refuses sum(x, (0, 0)) rather than read it as sum(x, 0)
        raise ValueError(f"{op}: dims {dim} name the same dim more than once (for {ndim} dims)")
    return tuple(sorted(out)) if ndim else ()
