"""Which parameters matter: importance scores, perturbation sensitivity, and the loss after removal.

Each score ranks the parameters by how much the loss L would change if they
were set to zero. Scores are ``{name: Tensor}`` of the parameters' shapes
(trainable parameters only), where bigger means more important. ḡ is the
gradient of the loss averaged over the samples of ``batches``.

* **magnitude** ``|θ_i|``: small weights carry little signal (Han et al., 2015,
  "Learning both weights and connections for efficient neural networks").
* **gradient** ``|ḡ_i|``: how fast the loss moves with θ_i; it ignores how far
  θ_i would move, so on its own it is a weak pruning criterion.
* **first-order Taylor** ``|θ_i ḡ_i|``: setting θ_i to 0 changes the loss by about
  −θ_i ḡ_i (Molchanov et al., 2017, "Pruning convolutional neural networks
  for resource efficient inference").
* **SNIP** connection sensitivity ``|θ_i ḡ_i| / Σ_j |θ_j ḡ_j|``, the same product
  normalised, meant to be computed once at initialisation to prune before
  training (Lee, Ajanthan & Torr, 2019, "SNIP: single-shot network pruning
  based on connection sensitivity").
* **Fisher** ½ F_ii θ_i²: the second-order change of the loss when θ_i is
  removed, with the empirical Fisher F (see :func:`~nnlite.analysis.fisher_diagonal`) in place
  of the Hessian — at a minimum ḡ ≈ 0 and the first-order term vanishes
  (LeCun, Denker & Solla, 1990, "Optimal brain damage"; Theis et al., 2018,
  "Faster gaze prediction with dense networks and Fisher pruning").
"""
from collections import OrderedDict

import numpy as np

from .._kernels.checks import is_int
from ..autograd import grad, no_grad
from ..tensor import Tensor
from ._batches import as_batch_list, batch_size, buffers_kept, mean_loss, numpy_generator, trainable_parameters
from .fisher import fisher_diagonal

__all__ = ["mean_gradient", "magnitude_importance", "gradient_importance", "taylor_importance",
           "snip_importance", "fisher_importance", "removal_mask", "loss_after_removal",
           "perturbation_sensitivity"]


def mean_gradient(model, loss_fn, batches):
    """ḡ = ∂L/∂θ of the loss averaged over all samples: ``{name: Tensor}``, not accumulated into ``.grad``."""
    named = trainable_parameters(model)
    params = [p for _, p in named]
    pairs = as_batch_list(batches)
    total = sum(batch_size(x) for x, _ in pairs)
    sums = [np.zeros(p.shape, np.float64) for p in params]
    for x, y in pairs:
        with buffers_kept(model):
            loss = loss_fn(model(x), y)
        grads = grad(loss, params, allow_unused=True)
        for s, g in zip(sums, grads):
            if g is not None:
                s += g.data * (batch_size(x) / total)
    return OrderedDict((name, Tensor(s.astype(p.dtype))) for (name, p), s in zip(named, sums))


def _scores(named, values):
    return OrderedDict((name, Tensor(np.asarray(v, np.float64).astype(p.dtype))) for (name, p), v in zip(named, values))


def magnitude_importance(model):
    """``|θ|`` for every trainable parameter."""
    named = trainable_parameters(model)
    return _scores(named, [np.abs(p.data) for _, p in named])


def gradient_importance(model, loss_fn, batches):
    """``|ḡ|``, the size of the mean gradient."""
    g = mean_gradient(model, loss_fn, batches)
    named = trainable_parameters(model)
    return _scores(named, [np.abs(g[name].data) for name, _ in named])


def taylor_importance(model, loss_fn, batches):
    """``|θ ḡ|``, the first-order Taylor estimate of the loss change on removal (Molchanov et al., 2017)."""
    g = mean_gradient(model, loss_fn, batches)
    named = trainable_parameters(model)
    return _scores(named, [np.abs(p.data.astype(np.float64) * g[name].data) for name, p in named])


def snip_importance(model, loss_fn, batches):
    """``|θ ḡ| / Σ|θ ḡ|`` over all trainable parameters: SNIP's connection sensitivity (Lee et al., 2019)."""
    taylor = taylor_importance(model, loss_fn, batches)
    total = sum(float(t.data.astype(np.float64).sum()) for t in taylor.values())
    named = trainable_parameters(model)
    return _scores(named, [taylor[name].data.astype(np.float64) / (total or 1.0) for name, _ in named])


def fisher_importance(model, loss_fn, batches):
    """½ F_ii θ_i², the Fisher (Optimal Brain Damage) saliency; F from :func:`fisher_diagonal`."""
    fisher = fisher_diagonal(model, loss_fn, batches)
    named = trainable_parameters(model)
    return _scores(named, [0.5 * fisher[name].data.astype(np.float64) * p.data.astype(np.float64) ** 2
                           for name, p in named])


def removal_mask(scores, fraction):
    """``{name: bool ndarray}``, False at the ``fraction`` of entries with the lowest scores over all of ``scores``.

    The ranking is global (one threshold for every tensor in ``scores``), ties
    broken by position, and exactly ⌊fraction · total⌋ entries are removed.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"removal_mask: fraction must be between 0 and 1, got {fraction}")
    arrays = _score_arrays(scores, "removal_mask")
    return _mask_lowest(arrays, _count_of(fraction, sum(a.size for a in arrays.values())))


def _count_of(fraction, total):
    """⌊fraction · total⌋ of the number the caller means: 0.29 is stored as 0.28999..., and
    0.29 * 100 as 28.999..., whose floor would be 28. The product is exact to a few parts in
    1e16, so lifting it by one part in 1e12 gives the intended count and no other."""
    return int(np.floor(fraction * total * (1 + 1e-12)))


def _score_arrays(scores, caller):
    """``scores`` as float64 arrays, refused when they cannot be ranked."""
    if not hasattr(scores, "items"):
        raise TypeError(f"{caller}: expected scores as a mapping {{name: Tensor}}, got {type(scores).__name__}")
    if not scores:
        raise ValueError(f"{caller}: expected at least one score, got an empty mapping")
    arrays = OrderedDict((name, np.asarray(s.data if isinstance(s, Tensor) else s, np.float64))
                         for name, s in scores.items())
    with_nan = [name for name, a in arrays.items() if np.isnan(a).any()]
    if with_nan:   # NaN has no place in the ranking: argsort would put it last, as the most important
        raise ValueError(f"{caller}: expected scores without NaN, got NaN in {with_nan}")
    return arrays


def _mask_lowest(arrays, count):
    """The masks that remove the ``count`` lowest-scored entries of ``arrays``."""
    flat = np.concatenate([a.ravel() for a in arrays.values()])
    keep = np.ones(flat.size, bool)
    keep[np.argsort(flat, kind="stable")[:count]] = False
    masks, start = OrderedDict(), 0
    for name, a in arrays.items():
        masks[name] = keep[start:start + a.size].reshape(a.shape)
        start += a.size
    return masks


def _checked_scores(model, scores, caller):
    """``scores`` as float64 arrays (see :func:`_score_arrays`), each naming a parameter of ``model``
    and shaped like it."""
    params = dict(model.named_parameters())
    arrays = _score_arrays(scores, caller)
    for name, s in arrays.items():
        if name not in params or s.shape != tuple(params[name].shape):
            given = "missing" if name not in params else f"shape {tuple(params[name].shape)}"
            raise ValueError(f"{caller}: scores[{name!r}] has shape {s.shape}, but the model's parameter is "
                             f"{given}; expected scores shaped like parameters from {list(params)[:6]}")
    return arrays


def _with_values(model, values, fn):
    """Run ``fn()`` with some parameters replaced by ``values`` ({name: ndarray}), then put them back."""
    params = dict(model.named_parameters())
    saved = {name: params[name].data.copy() for name in values}
    try:
        with no_grad():
            for name, v in values.items():
                params[name].data[...] = v
        return fn()
    finally:
        for name, v in saved.items():
            params[name].data[...] = v


def loss_after_removal(model, loss_fn, batches, scores, fractions):
    """The mean loss after zeroing, for each f in ``fractions``, the fraction f of least important entries.

    Only the parameters named in ``scores`` are candidates (pass the weights'
    scores alone to leave biases in place). The model's values are restored
    afterwards. Returns a float64 array, one loss per fraction.
    """
    arrays = _checked_scores(model, scores, "loss_after_removal")
    total = sum(a.size for a in arrays.values())
    for f in fractions:
        if not 0 <= f <= 1:
            raise ValueError(f"loss_after_removal: fractions must be between 0 and 1, got {f}")
    return _losses_after_removing(model, loss_fn, batches, arrays, [_count_of(f, total) for f in fractions])


def _losses_after_removing(model, loss_fn, batches, arrays, counts):
    """The mean loss after zeroing the ``count`` lowest-scored entries of ``arrays``, for each count.

    The counts are exact: a count turned into a fraction and back can lose one
    (29 / 100 * 100 is 28.999..., whose floor is 28).
    """
    params = dict(model.named_parameters())
    losses = []
    for count in counts:
        masks = _mask_lowest(arrays, count)
        zeroed = {name: np.where(mask, params[name].data, 0) for name, mask in masks.items()}
        losses.append(_with_values(model, zeroed, lambda: mean_loss(model, loss_fn, batches)))
    return np.array(losses)


def perturbation_sensitivity(model, loss_fn, batches, scales, n_draws=5, generator=None):
    """Loss increase when one parameter at a time gets Gaussian noise: ``{name: array over scales}``.

    For parameter θ with root-mean-square value r = ‖θ‖/√n and each scale s,
    θ is replaced by θ + ε with ε ~ N(0, (s r)²), the loss is measured and θ is
    put back; the entry is the mean over ``n_draws`` draws of L(θ + ε) − L(θ).
    Scaling the noise by each layer's own size makes layers of different
    magnitudes comparable: the result says which layers the loss is sensitive
    to at a given *relative* precision (the question quantization asks).
    """
    if not is_int(n_draws) or n_draws < 1:
        raise ValueError(f"perturbation_sensitivity: n_draws must be a positive integer, got {n_draws!r}")
    scales = list(scales)
    if not all(isinstance(s, (int, float, np.number)) and not isinstance(s, bool) and 0 <= s < np.inf
               for s in scales):
        raise ValueError(f"perturbation_sensitivity: scales must be finite numbers >= 0, got {scales}")
    rng = numpy_generator(generator, "perturbation_sensitivity")
    base = mean_loss(model, loss_fn, batches)
    out = OrderedDict()
    for name, p in trainable_parameters(model):
        values = p.data.astype(np.float64)
        rms = float(np.sqrt(np.mean(values ** 2))) if values.size else 0.0
        increases = []
        for s in scales:
            total = 0.0
            for _ in range(n_draws):
                noisy = values + rng.standard_normal(values.shape) * (s * rms)
                total += _with_values(model, {name: noisy}, lambda: mean_loss(model, loss_fn, batches)) - base
            increases.append(total / n_draws)
        out[name] = np.array(increases)
    return out
