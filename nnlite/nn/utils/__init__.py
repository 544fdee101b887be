"""Gradient utilities and regularisation penalties.

* ``clip_grad_norm_`` rescales all gradients together so their joint norm is
  at most ``max_norm`` (the direction is kept); ``clip_grad_value_`` clamps
  each gradient element. Both work in place, so gradients that live in an
  optimizer's arena stay there.
* ``l1_penalty`` and ``l2_penalty`` are differentiable terms to add to a loss.
  ``lam * l2_penalty(params)`` has gradient ``lam * p``: the same as SGD's
  ``weight_decay=lam`` (but not AdamW's decoupled decay, see ``nnlite.optim``).
* ``parameters_to_vector`` / ``vector_to_parameters`` flatten parameters into
  one vector and back.

Gradient accumulation (a large batch that does not fit at once): run backward
on each of N micro-batches, with each micro-batch loss divided by N, and step
once. Gradients add up in ``.grad`` (in the optimizer's arena), so the result
is the gradient of the mean loss over the whole batch::

    optimizer.zero_grad()
    for x, y in micro_batches:                 # N of them
        loss = loss_fn(model(x), y) / N
        loss.backward()                        # adds into each .grad
    optimizer.step()
"""
import math

import numpy as np

from ...ops import abs as _abs
from ...ops import cat, sum as _sum
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "l1_penalty", "l2_penalty",
           "parameters_to_vector", "vector_to_parameters", "get_total_norm"]


def _as_list(parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _grads(parameters):
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _vector_norm(a, norm_type):
    """The p-norm of an array's elements, accumulated in its own dtype (as PyTorch does)."""
    a = np.abs(a.ravel())
    if a.size == 0:
        return a.dtype.type(0)
    if norm_type == math.inf:
        return a.max()
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return a.dtype.type(np.count_nonzero(a))
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return np.sqrt(np.dot(a, a))
    return np.sum(a ** norm_type) ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the norms of ``tensors`` (equivalently, of all their elements joined)."""
    norm_type = float(norm_type)
    arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in _as_list(tensors)]
    if not arrays:
        return Tensor(np.array(0.0, np.float32))
    dtype = np.result_type(*arrays)
    norms = np.array([_vector_norm(a, norm_type) for a in arrays], dtype=dtype)
    total = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    return Tensor(np.array(total, dtype=dtype))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    r"""Scale all gradients by :math:`\min(1, \text{max\_norm} / (\lVert g \rVert + 10^{-6}))`, in place.

    :math:`\lVert g \rVert` is the ``norm_type`` norm of all gradients taken as
    one vector (``inf`` for the largest magnitude). Returns that total norm
    (before clipping) as a Tensor. ``foreach`` is accepted for PyTorch
    compatibility; NumPy always works tensor by tensor.

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.tensor([3.0, 4.0]))
    >>> w.grad = nl.tensor([3.0, 4.0])
    >>> float(nl.nn.utils.clip_grad_norm_([w], max_norm=1.0))
    5.0
    >>> [round(v, 4) for v in w.grad.tolist()]
    [0.6, 0.8]
    """
    grads = _grads(parameters)
    max_norm = float(max_norm)
    if not grads:
        return Tensor(np.array(0.0, np.float32))
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_coef = max_norm / (float(total.data) + 1e-6)
    # Multiplying by exactly 1.0 when no clipping is needed keeps the code branch-free, as torch.
    clip_coef_clamped = min(clip_coef, 1.0)
    for g in grads:
        np.multiply(g.data, g.data.dtype.type(clip_coef_clamped), out=g.data)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g.data, -clip_value, clip_value, out=g.data)


def l1_penalty(parameters):
    r""":math:`\sum_p \sum_i |p_i|` (differentiable): pushes weights to exactly zero (sparsity).

    Add ``lam * l1_penalty(params)`` to the loss (the lasso penalty).
    """
    terms = [_sum(_abs(p)) for p in _as_list(parameters)]
    if not terms:
        raise ValueError("l1_penalty: expected at least one parameter, got none")
    return sum(terms[1:], terms[0])


def l2_penalty(parameters):
    r""":math:`\tfrac12 \sum_p \sum_i p_i^2` (differentiable); its gradient is ``p`` itself.

    So ``loss + lam * l2_penalty(params)`` under SGD equals ``SGD(weight_decay=lam)``
    (ridge regression / Tikhonov regularisation).
    """
    terms = [_sum(p * p) for p in _as_list(parameters)]
    if not terms:
        raise ValueError("l2_penalty: expected at least one parameter, got none")
    return sum(terms[1:], terms[0]) * 0.5


def parameters_to_vector(parameters):
    """All parameters flattened and joined into one 1-D Tensor (differentiable)."""
    params = _as_list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: expected at least one parameter, got none")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of ``vec`` into the parameters, in place (storage is kept).

    In place rather than re-pointing ``.data``, so parameters that live in an
    optimizer's arena stay there.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got {type(vec).__name__}")
    data = vec.data
    params = _as_list(parameters)
    total = sum(p.data.size for p in params)
    if data.ndim != 1 or data.size != total:
        raise ValueError(f"vector_to_parameters: vec must be 1-D with {total} elements "
                         f"(the parameters' total), got shape {data.shape}")
    offset = 0
    for p in params:
        n = p.data.size
        np.copyto(p.data, data[offset:offset + n].reshape(p.data.shape), casting="same_kind")
        p._bump_version()
        offset += n
from . import prune  # noqa: E402,F401  (nn.utils.prune, as torch.nn.utils.prune)
from . import parametrize, parametrizations  # noqa: E402,F401  (as torch.nn.utils.parametrize, .parametrizations)
