"""Truth over dims: ``all`` and ``any``.

``all`` tells whether every element over ``dim`` is nonzero, ``any`` whether
some element is. They answer with bool tensors (uint8 ones for a uint8 input,
as in PyTorch) and carry no gradient.
"""
import numpy as np

from ..tensor import Tensor
from .dims import _dims
from .promotion import tensor_input


def _truth(op, reduce, input, dim, keepdim):
    """``reduce`` (np.all or np.any) over ``dim``: bool, or uint8 for a uint8 tensor, as in PyTorch."""
    out = np.asarray(reduce(tensor_input(op, input).data, axis=_dims(dim, input.ndim, op), keepdims=keepdim))
    return Tensor._make(out.astype(np.uint8) if input.dtype == np.uint8 else out, None)


def all(input, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """True where every element over ``dim`` (int, tuple or None: all) is nonzero; NaN counts as
    nonzero and an empty reduction gives True. No gradient."""
    return _truth("all", np.all, input, dim, keepdim)


def any(input, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """True where some element over ``dim`` (int, tuple or None: all) is nonzero; NaN counts as
    nonzero and an empty reduction gives False. No gradient."""
    return _truth("any", np.any, input, dim, keepdim)
