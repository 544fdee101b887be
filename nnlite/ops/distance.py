"""Distances and similarities between vectors: p-norms of differences, cosines, unit vectors.

Each function reduces along one dim of broadcast inputs and is composed of
differentiable ops (``norm``, ``sum``, division), so first and second
derivatives come from those ops. Two guards keep a near-zero vector from
dividing by zero, and PyTorch uses them differently:

* ``normalize`` clamps the norm to at least ``eps`` as an ordinary clamp, so
  a clamped norm has no gradient;
* ``cosine_similarity`` (like ``gaussian_nll_loss``'s variance) raises the
  value to ``eps`` but lets the gradient through as if nothing had been
  clamped. :class:`FloorValue` is that step.
"""
import numpy as np

from ..autograd import Function
from .elementwise_choice import clamp
from .promotion import broadcast_shape
from .sums import sum as _sum
from .broadcasting import broadcast_to
from .dims import _dim
from .vector_norm import norm


class FloorValue(Function):
    """``max(x, floor)`` in value, the identity in the backward pass.

    PyTorch clamps the norms of ``cosine_similarity`` and the variance of
    ``gaussian_nll_loss`` without recording the clamp, so gradients flow to
    the clamped entries as if they had not been clamped.
    """
    saves_inputs = False

    def forward(self, x, floor):
        return np.maximum(x, floor).astype(x.dtype, copy=False)

    def backward(self, grad):
        return grad, None


def vector_norm(input, p, dim, keepdim=False):
    """The p-norm along ``dim`` for any real ``p``: 0 counts the nonzeros, -inf takes min ``|x|``."""
    return norm(input, p, dim, keepdim)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """``x / max(||x||_p, eps)`` along ``dim``: vectors scaled to unit p-norm.

    A vector shorter than ``eps`` is divided by ``eps`` (so the zero vector
    stays zero); the clamp is an ordinary one, as in PyTorch. PyTorch's
    ``out=`` argument is not offered.

    >>> import nnlite as nl
    >>> normalize(nl.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=nl.float64)).data.tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    dim = _dim("normalize", dim, input.ndim)
    return input / clamp(vector_norm(input, p, dim, keepdim=True), min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps))`` along ``dim`` of the broadcast shape.

    ``x1`` and ``x2`` broadcast together; ``dim`` counts in the common shape and
    is removed from the result. As in PyTorch, each norm is raised to ``eps``
    in value only (:class:`FloorValue`): the gradient is that of the
    unclamped norms.

    >>> import nnlite as nl
    >>> cosine_similarity(nl.tensor([[1.0, 0.0], [1.0, 1.0]]), nl.tensor([[0.0, 2.0], [3.0, 3.0]])).data.tolist()
    [0.0, 1.0]
    """
    shape = broadcast_shape("cosine_similarity", x1=x1, x2=x2)
    dim = _dim("cosine_similarity", dim, len(shape))
    x1 = x1 if tuple(x1.shape) == shape else broadcast_to(x1, shape)
    x2 = x2 if tuple(x2.shape) == shape else broadcast_to(x2, shape)
    n1 = FloorValue.apply(norm(x1, 2, dim, keepdim=True), eps)
    n2 = FloorValue.apply(norm(x2, 2, dim, keepdim=True), eps)
    return _sum((x1 / n1) * (x2 / n2), dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` along the last dim of the broadcast shape.

    PyTorch adds ``eps`` to every component of the difference (not to the
    norm), which keeps the 2-norm's gradient finite when ``x1 == x2``.

    >>> import nnlite as nl
    >>> round(pairwise_distance(nl.tensor([[0.0, 0.0]]), nl.tensor([[3.0, 4.0]]), eps=0.0).item(), 6)
    5.0
    """
    broadcast_shape("pairwise_distance", x1=x1, x2=x2)
    last = max(x1.ndim, x2.ndim) - 1
    return vector_norm(x1 - x2 + eps, p, last, keepdim)


__all__ = ["normalize", "cosine_similarity", "pairwise_distance"]
