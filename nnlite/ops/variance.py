"""Variance and standard deviation over any dims: ``var`` and ``std``.

``var`` is the mean squared distance from the mean, divided by ``n - correction``
(Bessel's correction, 1 by default as in PyTorch). It is written with ``mean`` and
``sum``, so its gradient, ``2 (x - mean) / (n - correction)`` times the incoming
one, comes from theirs. ``std`` is its square root, taken by
:class:`~nnlite.ops.vector_norm.Root`, whose gradient is 0 where the variance is 0
(equal numbers), as in PyTorch, rather than inf times 0.
"""
import numpy as np

from .opmath import is_half
from .reduction import _reduced_dims
from .sums import in_float32, mean, sum  # noqa: A004
from .vector_norm import Root


def var(input, dim=None, correction=1, keepdim=False, unbiased=None):
    """Variance with Bessel's ``correction`` (1 = unbiased, PyTorch's default).

    ``dim=()`` reduces every dim, as in PyTorch; its gradient is the one of ``dim=None``
    (PyTorch 2.13 gives inf there, dividing by n - 1 with n taken as 1).
    """
    if unbiased is not None:
        correction = 1 if unbiased else 0
    if is_half(input.dtype):
        return in_float32(var, input, dim, correction=correction, keepdim=keepdim)
    dims = _reduced_dims(dim, input.ndim)
    n = int(np.prod([input.shape[d] for d in dims])) if dims else 1
    centered = input - mean(input, dims, keepdim=True)
    return sum(centered * centered, dims, keepdim) * (1.0 / (n - correction) if n - correction > 0 else np.inf)


def std(input, dim=None, correction=1, keepdim=False, unbiased=None):
    if is_half(input.dtype):
        return in_float32(std, input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased)
    return Root.apply(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased), 2)
