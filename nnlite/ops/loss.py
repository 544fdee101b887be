"""Loss functions: one number that says how wrong the model is.

Cross-entropy runs on a fused kernel (log-softmax, pick, smoothing and the
reduction in one pass); its backward is the closed form
``softmax(logits) - target`` (weighted and smoothed), evaluated by a kernel for
first-order training and by differentiable ops when the backward itself is
recorded. The other losses are short compositions of differentiable ops; the
margin losses are in ``margin.py``, the likelihoods of Bernoulli probabilities,
Poisson rates and Gaussian means and variances in ``likelihood.py``.
"""
import numpy as np

from .._kernels import K
from .._kernels.checks import integer
from ..autograd import Function, constant, is_grad_enabled
from ..tensor import Tensor, is_floating_dtype
from .casting import cast
from .elementary import xlogy
from .elementwise_choice import where
from .indexing import gather
from .pointwise import exp, softplus
from .permutation import movedim
from .promotion import DTypeMismatchError, promoted_dtype, writable_dtype
from .shape import reshape
from .sums import mean as _mean, sum as _sum
from .softmax import log_softmax, softmax

_REDUCTIONS = ("none", "mean", "sum")


def _data(t):
    return None if t is None else (t.data if isinstance(t, Tensor) else np.asarray(t))


def _check_reduction(op, reduction, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _legacy(reduction, size_average, reduce):
    """PyTorch's deprecated (size_average, reduce) pair, mapped onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    return "none" if reduce is False else ("sum" if size_average is False else "mean")


def _weighted(op, loss, weight, reduction):
    """Elementwise ``weight`` (the input's shape); "mean" divides by ``sum(weight)``, as PyTorch does."""
    if tuple(weight.shape) != tuple(loss.shape):
        raise ValueError(f"{op}: weight must have the input's shape {tuple(loss.shape)}, got {tuple(weight.shape)}")
    loss = loss * weight
    if reduction == "mean":
        return _sum(loss) / _sum(weight)
    return _reduce(loss, reduction)


def _reduce(loss, reduction):
    if reduction == "mean":
        return _mean(loss)
    if reduction == "sum":
        return _sum(loss)
    return loss


def _broadcasts_to(op, name, t, shape):
    """Refuse ``t`` unless it broadcasts to ``shape`` without growing it."""
    try:
        fits = np.broadcast_shapes(tuple(t.shape), tuple(shape)) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} must broadcast to the input's shape "
                         f"{tuple(shape)}")


def _float_target(target, input):
    """A target of labels or counts (integers, bools, arrays) as a constant of a floating input's
    dtype; beside an integer or bool input, a target tensor is left to promote with it."""
    if isinstance(target, Tensor) and (is_floating_dtype(target.dtype) or not is_floating_dtype(input.dtype)):
        return target
    return constant(np.asarray(_data(target), dtype=input.dtype))


def _input_dtype(op, name, t, input):
    """Refuse the tensor ``t`` unless it has the input's dtype, as PyTorch's kernel for ``op`` does."""
    if isinstance(t, Tensor) and t.dtype != input.dtype:
        raise DTypeMismatchError(f"{op}: expected {name} of the input's dtype {input.dtype}, got {t.dtype}, "
                                 f"as in PyTorch; convert it ({name}.to(nl.{input.dtype}))")


def _same_shape(op, input, target):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: input has shape {tuple(input.shape)} but target has shape "
                         f"{tuple(target.shape)}; they must match (nnlite does not broadcast losses)")


def _class_rows(op, input, target):
    """(rows, C) logits and (rows,) int64 targets from (N, C, *) / (N, *) or (C,) / ()."""
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dim, got a 0-d tensor")
    t = np.asarray(_data(target))
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be integers, got {t.dtype}")
    class_dim = 1 if input.ndim > 1 else 0   # an unbatched (C,) input holds its classes in dim 0
    expect = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if t.shape != expect:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} (class dim {class_dim}) needs a target of "
                         f"shape {expect}, got {t.shape}")
    c = input.shape[class_dim]
    if input.ndim > 2:
        rows = reshape(movedim(input, 1, -1), (-1, c))
    else:   # (N, C) already is the rows: no reshape node in the graph
        rows = input if input.ndim == 2 else reshape(input, (1, c))
    return rows, np.ascontiguousarray(t.reshape(-1), dtype=np.int64), expect


# ----------------------------------------------------------- cross-entropy ---

class CrossEntropy(Function):
    """loss_i = (1 - eps) * w[t_i] * -log p[i, t_i] + eps / C * sum_c w[c] * -log p[i, c].

    d loss_i / d logits_ij = (1 - eps) w[t_i] (p_ij - [j == t_i]) + eps / C (p_ij sum_c w[c] - w[j]),
    with p = softmax(logits); "mean" divides by sum_i w[t_i] over non-ignored rows.
    """

    def forward(self, logits, target, weight, ignore_index, label_smoothing, reduction):
        self.opts = (ignore_index, label_smoothing, reduction)
        loss, self.lse = K.cross_entropy_forward(np.ascontiguousarray(logits), target, weight,
                                                 ignore_index, label_smoothing, reduction)
        return loss

    def backward(self, grad):
        logits, target, weight = self.inputs[:3]
        ignore_index, eps, reduction = self.opts
        w_arr = _data(weight)
        if not is_grad_enabled():
            g = K.cross_entropy_backward(np.array(grad.data, order="C"), np.ascontiguousarray(logits.data),
                                         target, w_arr, self.lse, ignore_index, eps, reduction)
            return constant(g), None, None, None, None, None
        n, c = logits.shape
        keep = target != ignore_index
        safe = np.where(keep, target, 0)
        w = np.ones(c, logits.dtype) if w_arr is None else w_arr
        w_t = np.where(keep, w[safe], 0).astype(logits.dtype)
        if reduction == "none":
            s = reshape(grad, (n, 1)) * constant(keep[:, None].astype(logits.dtype))
        else:
            scale = 1.0 / w_t.sum() if reduction == "mean" and w_t.sum() != 0 else float(reduction == "sum")
            s = reshape(grad * scale, (1, 1)) * constant(keep[:, None].astype(logits.dtype))
        onehot = np.zeros((n, c), logits.dtype)
        onehot[np.arange(n), safe] = 1
        a = s * constant(((1 - eps) * w_t)[:, None])
        b = s * (eps / c)
        p = softmax(logits, 1)
        g = (a + b * float(w.sum())) * p - b * constant(w[None, :]) - a * constant(onehot)
        return g, None, None, None, None, None


def _soft_cross_entropy(input, target, weight, reduction, label_smoothing):
    """Class-probability targets: loss_i = -sum_c w[c] t[i, c] log p[i, c]; "mean" divides by N."""
    _same_shape("cross_entropy", input, target)
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    dim = 1 if input.ndim > 1 else 0
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    terms = log_softmax(input, dim) * target
    if weight is not None:
        shape = (1, c) + (1,) * (input.ndim - 2) if input.ndim > 1 else (c,)
        terms = terms * reshape(weight, shape)
    loss = -_sum(terms, dim)
    return _reduce(loss, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """-log softmax(input)[target], averaged: the loss of classification.

    ``input`` holds logits of shape (N, C), (N, C, d1, ...) or (C,); ``target``
    holds class indices of shape (N,), (N, d1, ...) or (), or class
    probabilities of ``input``'s shape. ``weight`` (C,) rescales classes;
    targets equal to ``ignore_index`` (an int) contribute nothing; ``label_smoothing``
    mixes the target with the uniform distribution (Szegedy et al., 2016).
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("cross_entropy", reduction)
    ignore_index = integer("cross_entropy", "ignore_index", ignore_index)   # 1.5 or True: a TypeError
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if isinstance(target, Tensor) and is_floating_dtype(target.dtype):
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    rows, t, shape = _class_rows("cross_entropy", input, target)
    _input_dtype("cross_entropy", "weight", weight, input)
    if weight is not None and tuple(weight.shape) != (rows.shape[1],):
        raise ValueError(f"cross_entropy: weight must have shape ({rows.shape[1]},), got {tuple(weight.shape)}")
    w = None if weight is None else np.ascontiguousarray(_data(weight), dtype=input.dtype)
    loss = CrossEntropy.apply(rows, t, w, ignore_index, float(label_smoothing), reduction)
    return reshape(loss, shape) if reduction == "none" else loss


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-input[target] for log-probabilities ``input`` (pair it with log_softmax).

    "mean" divides by the summed weights of the non-ignored targets.
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("nll_loss", reduction)
    ignore_index = integer("nll_loss", "ignore_index", ignore_index)
    rows, t, shape = _class_rows("nll_loss", input, target)
    _input_dtype("nll_loss", "weight", weight, input)
    n, c = rows.shape
    keep = t != ignore_index
    if np.any(keep & ((t < 0) | (t >= c))):
        bad = int(t[keep & ((t < 0) | (t >= c))][0])
        raise IndexError(f"nll_loss: target {bad} is out of bounds for C={c} classes")
    safe = np.where(keep, t, 0)
    w = np.ones(c, input.dtype) if weight is None else _data(weight).astype(input.dtype)
    w_t = np.where(keep, w[safe], 0).astype(input.dtype)
    picked = reshape(gather(rows, 1, safe[:, None]), (n,))
    loss = -picked * constant(w_t)
    if reduction == "none":
        return reshape(loss, shape)
    if reduction == "sum":
        return _sum(loss)
    total_weight = float(w_t.sum())
    if total_weight == 0:
        # 0 / 0: the loss is NaN, as in PyTorch, and so is the gradient of a target weighted 0;
        # an ignored target still gets none (0, not 0 * inf)
        loss = where(keep, loss, np.zeros((), loss.dtype))
    return _sum(loss) / total_weight


# ------------------------------------------------------------- regression ---

def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """(input - target)**2: the Gaussian negative log-likelihood up to constants."""
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("mse_loss", reduction)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction) if weight is None else _weighted("mse_loss", d * d, weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """``|input - target|``: robust to outliers, its minimiser is the median."""
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("l1_loss", reduction)
    _same_shape("l1_loss", input, target)
    loss = abs(input - target)
    return _reduce(loss, reduction) if weight is None else _weighted("l1_loss", loss, weight, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``: quadratic near 0, linear far away."""
    _check_reduction("huber_loss", reduction)
    _same_shape("huber_loss", input, target)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    mixed = input.is_floating_point() and isinstance(target, Tensor) and target.is_floating_point() \
        and target.dtype != input.dtype
    if mixed and is_grad_enabled() and (input.requires_grad or target.requires_grad):
        # PyTorch computes two float dtypes only where no gradient is wanted, and refuses them otherwise
        _input_dtype("huber_loss", "target", target, input)
    d = input - target
    a = abs(d)
    loss = where(_data(a) < delta, d * d * 0.5, (a - 0.5 * delta) * delta)
    if mixed:   # computed in the promoted dtype and written in the input's, as PyTorch writes it
        loss = cast(loss, input.dtype)
    if weight is not None:  # PyTorch averages the weighted losses over elements here, not over weights
        if tuple(weight.shape) != tuple(loss.shape):
            raise ValueError(f"huber_loss: weight must have the input's shape {tuple(loss.shape)}, "
                             f"got {tuple(weight.shape)}")
        loss = loss * weight
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Huber loss divided by ``beta`` (``beta = 0`` is the L1 loss)."""
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("smooth_l1_loss", reduction)
    _same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    d = input - target
    a = abs(d)
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(where(_data(a) < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


# ----------------------------------------------------------- probabilities ---

def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """-[p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], with p = pos_weight, computed stably.

    Written as ``(1 - t) x + (1 + (p - 1) t) softplus(-x)``, which never takes
    the log of a rounded-to-zero probability. As in PyTorch, the loss has the
    target's dtype: PyTorch builds it in place in ``1 - t``, so each step is computed
    in the promoted dtype and written in the target's (a float64 input with a float32
    target gives a float32 loss, and an integer target is refused).
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction(op, reduction)
    _same_shape(op, input, target)
    if not isinstance(target, Tensor):   # an array of labels
        target = _float_target(target, input)
    not_target = 1 - target   # 1 an int, as PyTorch writes it: a bool target is refused here, as there
    writable_dtype(op, not_target, promoted_dtype(op, not_target, input),   # and an integer target here
                   hint="the loss is built in the target's dtype; give a float target (target.float())")
    dtype = not_target.dtype
    # No linear cut-off (threshold=inf): logaddexp is exact for any logit, as BCE needs.
    log_term = softplus(-input, 1.0, float("inf"))   # -log sigmoid(x), in the input's dtype
    if pos_weight is not None:
        log_term = cast(((pos_weight - 1) * target + 1) * log_term, input.dtype)
    loss = cast(cast(not_target * input, dtype) + log_term, dtype)
    if weight is not None:
        loss = cast(loss * weight, dtype)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || q) pointwise: target * (log target - input), with ``input = log q``.

    Written as ``xlogy(target, target) - target * input``, as PyTorch writes it: a
    zero target contributes 0 (its target gradient is NaN, 0 / 0, as in PyTorch) and a
    negative target gives NaN, the log of a negative number.

    ``reduction='batchmean'`` (sum / batch size) is the mathematical KL
    divergence per sample; 'mean' divides by every element, as PyTorch does.
    """
    reduction = _legacy(reduction, size_average, reduce)
    _check_reduction("kl_div", reduction, _REDUCTIONS + ("batchmean",))
    _same_shape("kl_div", input, target)
    if log_target:
        loss = exp(target) * (target - input)
    else:   # 0 log 0 = 0, as PyTorch holds it; a negative target gives NaN, as there
        loss = xlogy(target, target) - target * input
    if reduction == "batchmean":
        return _sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss",
           "binary_cross_entropy_with_logits", "kl_div"]
