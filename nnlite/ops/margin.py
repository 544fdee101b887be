"""Margin losses: a score, a cosine or a distance must clear a margin, or pay the shortfall.

The hinge ``max(0, margin - score)`` is the common shape: zero loss (and zero
gradient) once the margin is met, a linear (or, for ``p=2``, quadratic) cost
before. Labels are +1 / -1 (``y``), except for the multi-class hinge, which
takes class indices. Every loss here is a composition of differentiable ops.

Where the hinge is exactly at its kink, PyTorch's gradient depends on how each
loss is written, and so does nnlite's: ``clamp(min=0)`` passes the gradient at
0 (margin_ranking, hinge_embedding, cosine_embedding, triplet_margin), ``relu``
does not (multi_margin).
"""
import numpy as np

from ..autograd import constant
from .elementwise_choice import clamp, minimum, where
from .distance import pairwise_distance
from .indexing import gather, index_select
from .casting import cast
from .loss import _check_reduction, _data, _float_target, _input_dtype, _legacy, _reduce
from .promotion import broadcast_shape, writable_dtype
from .pointwise import logsigmoid, relu, softplus, sqrt
from .sums import sum as _sum
from .shape import reshape


def _zero(t):
    return np.zeros((), t.dtype)


def _labels(target):
    """The +1 / -1 labels as a NumPy array (they select terms; they are never differentiated)."""
    return np.asarray(_data(target))


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """``max(0, -y (x1 - x2) + margin)``: y = 1 asks x1 to rank above x2 by ``margin``, y = -1 below.

    The three tensors must have the same number of dims and broadcast together
    (PyTorch's rule).

    >>> import nnlite as nl
    >>> margin_ranking_loss(nl.tensor([2.0, 0.0]), nl.tensor([1.0, 1.0]), nl.tensor([1.0, 1.0]), margin=0.5,
    ...                     reduction="none").data.tolist()
    [0.0, 1.5]
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("margin_ranking_loss", reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise ValueError(f"margin_ranking_loss: input1, input2 and target must have the same number of dims, got "
                         f"shapes {tuple(input1.shape)}, {tuple(input2.shape)} and {tuple(target.shape)}")
    broadcast_shape("margin_ranking_loss", input1=input1, input2=input2, target=target)
    y = _float_target(target, input1)
    return _reduce(clamp(-y * (input1 - input2) + margin, min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """``x`` where y = 1, ``max(0, margin - x)`` where y = -1: for ``x`` a distance between a pair.

    Similar pairs (y = 1) pay their distance; dissimilar ones (y = -1) pay
    until they are ``margin`` apart. As in PyTorch, a label that is neither
    pays both terms. ``input`` and ``target`` broadcast.

    >>> import nnlite as nl
    >>> hinge_embedding_loss(nl.tensor([0.25, 0.25, 2.0]), nl.tensor([1, -1, -1]), reduction="none").data.tolist()
    [0.25, 0.75, 0.0]
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("hinge_embedding_loss", reduction)
    broadcast_shape("hinge_embedding_loss", input=input, target=target)
    y, zero = _labels(target), _zero(input)
    apart = where(y != 1, clamp(margin - input, min=0), zero)
    close = where(y != -1, input, zero)
    return _reduce(apart + close, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-y x))``: logistic loss on +1 / -1 labels, a smooth hinge.

    ``target`` broadcasts to the input's shape. Computed as ``softplus(-y x)``,
    which stays finite where PyTorch's ``log1p(exp(-y x))`` overflows
    (``-y x`` above about 709 in float64).

    >>> import nnlite as nl
    >>> round(soft_margin_loss(nl.tensor([0.0]), nl.tensor([1.0])).item(), 6)   # log 2
    0.693147
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("soft_margin_loss", reduction)
    if broadcast_shape("soft_margin_loss", input=input, target=target) != tuple(input.shape):
        raise ValueError(f"soft_margin_loss: target of shape {tuple(target.shape)} must broadcast to the input's "
                         f"shape {tuple(input.shape)}")
    y = _float_target(target, input)
    # PyTorch forms -y x in place in a tensor of the input's dtype (an integer input is refused)
    margin = -y * input
    writable_dtype("soft_margin_loss", input, margin.dtype, hint="give a float input (input.float())")
    return _reduce(softplus(cast(margin, input.dtype), 1.0, float("inf")), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """``-mean_c w_c [y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)]`` per sample, for 0/1 labels ``y``.

    One binary logistic loss per class, averaged over the classes (the last
    dim), so ``reduction='none'`` gives one loss per sample. ``target`` and
    ``weight`` (a class weight, usually of shape (C,)) broadcast against the input.

    >>> import nnlite as nl
    >>> round(multilabel_soft_margin_loss(nl.tensor([[0.0, 0.0]]), nl.tensor([[1.0, 0.0]])).item(), 6)   # log 2
    0.693147
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("multilabel_soft_margin_loss", reduction)
    if input.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have a class dim (last), got a 0-d tensor")
    named = dict(input=input, target=target) if weight is None else dict(input=input, target=target, weight=weight)
    broadcast_shape("multilabel_soft_margin_loss", **named)
    y = _float_target(target, input)
    loss = -(y * logsigmoid(input) + (1.0 - y) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    return _reduce(_sum(loss, -1) / input.shape[-1], reduction)


def _check_multi_margin(input, target, p, weight):
    """Class indices (one per sample, in range) and the sample count, or a clear error."""
    op = "multi_margin_loss"
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"{op}: p must be 1 or 2, got {p!r}")
    if input.ndim > 2 or (input.ndim and input.shape[-1] == 0):
        raise ValueError(f"{op}: input must be (N, C) or (C,) with C >= 1, got shape {tuple(input.shape)}")
    t = np.asarray(_data(target))
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got {t.dtype}")
    n = input.shape[0] if input.ndim == 2 else 1
    if t.ndim > 1 or t.size != n:
        raise ValueError(f"{op}: target must be 1-D with one class index per sample ({n}) for input of shape "
                         f"{tuple(input.shape)}, got shape {t.shape}")
    c = input.shape[-1] if input.ndim else 1
    if t.size and (t.min() < 0 or t.max() >= c):
        bad = int(t[(t < 0) | (t >= c)][0])
        raise IndexError(f"{op}: target {bad} is out of bounds for C={c} classes")
    if weight is not None and tuple(weight.shape) != (c,):
        raise ValueError(f"{op}: weight must be 1-D with one weight per class, shape ({c},), got "
                         f"{tuple(weight.shape)}")
    return t.reshape(n).astype(np.int64), n, c


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """``sum_{j != y} w_y max(0, margin - x_y + x_j)**p / C``: the multi-class hinge (p = 1 or 2).

    Every wrong class ``j`` must score at least ``margin`` below the true
    class ``y``. ``input`` is (N, C) or (C,); ``target`` holds class indices,
    (N,) or a 0-d index; ``weight`` (C,) rescales by the true class. "mean"
    divides by N (not by the weights), as PyTorch does.

    >>> import nnlite as nl
    >>> round(multi_margin_loss(nl.tensor([[0.1, 0.2, 0.4, 0.8]]), nl.tensor([3])).item(), 6)   # (.3 + .4 + .6) / 4
    0.325
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("multi_margin_loss", reduction)
    t, n, c = _check_multi_margin(input, target, p, weight)
    _input_dtype("multi_margin_loss", "weight", weight, input)
    rows = reshape(input, (n, c))
    shortfall = relu(margin - gather(rows, 1, t[:, None]) + rows)   # relu: no gradient at 0, as in PyTorch
    if p == 2:
        shortfall = shortfall * shortfall
    if weight is not None:
        shortfall = shortfall * reshape(index_select(weight, 0, t), (n, 1))
    wrong = constant((np.arange(c)[None, :] != t[:, None]).astype(input.dtype))
    loss = _sum(shortfall * wrong, 1) / c
    if reduction == "none":
        return loss if np.ndim(_data(target)) == 1 else reshape(loss, ())
    return _reduce(loss, reduction)


# PyTorch adds this to each squared norm, so a zero vector has cosine 0; it is 1e-12 rounded to
# float32, as PyTorch stores it
_COSINE_EPS = float(np.float32(1e-12))


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """``1 - cos(x1, x2)`` where y = 1, ``max(0, cos(x1, x2) - margin)`` where y = -1.

    ``input1`` and ``input2`` are (N, D) with a target (N,), or (D,) with a 0-d
    target; labels other than +1 / -1 cost nothing (PyTorch's rule). The
    cosine is ``x1 . x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12))``.

    >>> import nnlite as nl
    >>> x1, x2 = nl.tensor([[1.0, 0.0], [1.0, 0.0]]), nl.tensor([[0.0, 1.0], [-1.0, 0.0]])
    >>> cosine_embedding_loss(x1, x2, nl.tensor([1, -1]), reduction="none").data.tolist()
    [1.0, 0.0]
    """
    reduction = _legacy(reduction, size_average, reduce)
    op = "cosine_embedding_loss"
    _check_reduction(op, reduction)
    if target.ndim > 1:
        raise ValueError(f"{op}: target must be 1-D (N,) or 0-d, got shape {tuple(target.shape)}")
    dims = target.ndim + 1
    if input1.ndim != dims or input2.ndim != dims:
        raise ValueError(f"{op}: a {target.ndim}-D target needs {dims}-D inputs, got shapes {tuple(input1.shape)} "
                         f"and {tuple(input2.shape)}")
    broadcast_shape(op, input1=input1, input2=input2)
    d = target.ndim   # the feature dim
    dot = _sum(input1 * input2, d)
    cos = dot / sqrt((_sum(input1 * input1, d) + _COSINE_EPS) * (_sum(input2 * input2, d) + _COSINE_EPS))
    y, zero = _labels(target), _zero(cos)
    broadcast_shape(op, cosines=cos, target=target)
    loss = where(y == 1, 1.0 - cos, zero) + where(y == -1, clamp(cos - margin, min=0), zero)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """``max(0, d(a, p) - d(a, n) + margin)``, d the ``pairwise_distance``: pull the positive in, push the negative out.

    ``swap=True`` uses ``min(d(a, n), d(p, n))`` for the negative distance
    (Balntas et al., 2016). The three inputs have the same number of dims and
    broadcast; distances are taken along the last dim.

    >>> import nnlite as nl
    >>> a, pos, neg = nl.tensor([[0.0, 0.0]]), nl.tensor([[3.0, 4.0]]), nl.tensor([[3.0, 0.0]])
    >>> triplet_margin_loss(a, pos, neg, eps=0.0).item()   # max(0, 5 - 3 + 1)
    3.0
    """
    reduction = _legacy(reduction, size_average, reduce)
    op = "triplet_margin_loss"
    _check_reduction(op, reduction)
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ValueError(f"{op}: anchor, positive and negative must have the same number of dims, got shapes "
                         f"{tuple(anchor.shape)}, {tuple(positive.shape)} and {tuple(negative.shape)}")
    broadcast_shape(op, anchor=anchor, positive=positive, negative=negative)
    to_positive = pairwise_distance(anchor, positive, p, eps)
    to_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        to_negative = minimum(to_negative, pairwise_distance(positive, negative, p, eps))
    return _reduce(clamp(margin + to_positive - to_negative, min=0), reduction)


__all__ = ["margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "cosine_embedding_loss", "triplet_margin_loss"]
