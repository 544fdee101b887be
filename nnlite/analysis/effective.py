"""Effective parameters: how many of a model's parameters the loss really depends on.

Three answers to the question: by joint removal, one parameter at a time,
and by curvature.

**By removal.** Rank the parameters by an importance score (magnitude by
default, see :mod:`nnlite.analysis.importance`) and zero the least important
ones. The effective number of parameters is the number that must be kept so
that the loss rises by no more than ``threshold``: P minus the largest number
of lowest-ranked parameters that can be removed together. It is found by
bisection on that number, which assumes the loss grows as more are removed
(true in practice, not guaranteed).

**One at a time.** :func:`~nnlite.analysis.sensitive_parameters` changes each parameter alone —
sets it to zero, or moves it by ± a fraction of its tensor's root-mean-square
value — and marks it when the loss changes by more than ``threshold``. This
misses parameters that matter only together, and costs one or two loss
evaluations per parameter: meant for small models.

**By curvature** (MacKay, 1992, "Bayesian interpolation"; Maddox, Benton &
Wilson, 2020, "Rethinking parameter counting in deep models: effective
dimensionality revisited"): with the Hessian's eigenvalues λ_i and a prior
precision α > 0,

    N_eff = Σ_i λ_i / (λ_i + α).

A direction with λ_i ≫ α is determined by the data and counts about 1; a flat
direction with λ_i ≪ α is left to the prior and counts about 0. Pass the top
eigenvalues from :func:`~nnlite.analysis.hessian_top_eigenvalues`; the directions left out are
the flattest, each adds less than λ_k / α (λ_k the smallest eigenvalue
passed), so the result is a lower bound. Negative eigenvalues (away from a
minimum) count 0.
"""
import numpy as np

from collections import OrderedDict

from ._batches import mean_loss, trainable_parameters
from .importance import _checked_scores, _losses_after_removing, _with_values, magnitude_importance

__all__ = ["effective_parameters", "sensitive_parameters", "effective_dimensionality"]


def effective_parameters(model, loss_fn, batches, threshold=0.01, scores=None):
    """How many parameters must be kept for the loss to rise by at most ``threshold`` (an int).

    ``scores`` ({name: Tensor}, default :func:`magnitude_importance` of all
    trainable parameters) decides the order of removal; parameters without a
    score are always kept and not counted. ``threshold`` is in the loss's own
    units (nats for cross-entropy).
    """
    if not threshold >= 0:   # also refuses NaN, which no loss change would ever exceed
        raise ValueError(f"effective_parameters: threshold must be >= 0, got {threshold}")
    scores = magnitude_importance(model) if scores is None else scores
    arrays = _checked_scores(model, scores, "effective_parameters")
    total = sum(a.size for a in arrays.values())
    base = mean_loss(model, loss_fn, batches)

    def acceptable(removed):   # a count, not a fraction: removed / total * total can floor to removed - 1
        return _losses_after_removing(model, loss_fn, batches, arrays, [removed])[0] - base <= threshold

    low, high = 0, total   # removing `low` is acceptable; find the largest such number
    if acceptable(high):
        return 0
    while high - low > 1:
        middle = (low + high) // 2
        if acceptable(middle):
            low = middle
        else:
            high = middle
    return total - low


def sensitive_parameters(model, loss_fn, batches, threshold=0.01, perturbation=None):
    """``{name: bool ndarray}``: True where changing that one parameter alone moves the loss by > ``threshold``.

    With ``perturbation=None`` each parameter is set to zero; with a float s
    it is moved by +s·r and by −s·r, r the root-mean-square of its tensor, and
    the larger change counts. The count of effective parameters is the number
    of True entries. Every trainable parameter is tried, one loss evaluation
    (two with a perturbation) each; the model is restored afterwards.
    """
    if not threshold >= 0:
        raise ValueError(f"sensitive_parameters: threshold must be >= 0, got {threshold}")
    if perturbation is not None and not (isinstance(perturbation, (int, float, np.floating)) and perturbation > 0
                                         and np.isfinite(perturbation)):
        raise ValueError(f"sensitive_parameters: perturbation must be None or a finite number > 0, "
                         f"got {perturbation!r}")
    base = mean_loss(model, loss_fn, batches)
    masks = OrderedDict()
    for name, p in trainable_parameters(model):
        values = p.data.astype(np.float64)
        rms = float(np.sqrt(np.mean(values ** 2))) if values.size else 0.0
        steps = [None] if perturbation is None else [perturbation * rms, -perturbation * rms]
        mask = np.zeros(values.shape, bool)
        for index in np.ndindex(*values.shape):
            change = 0.0
            for step in steps:
                moved = values.copy()
                moved[index] = 0.0 if step is None else moved[index] + step
                loss = _with_values(model, {name: moved}, lambda: mean_loss(model, loss_fn, batches))
                change = max(change, abs(loss - base))
            mask[index] = change > threshold
        masks[name] = mask
    return masks


def effective_dimensionality(eigenvalues, alpha=1.0):
    """N_eff = Σ λ_i / (λ_i + α) over the given Hessian eigenvalues (negative ones count 0), a float.

    >>> round(effective_dimensionality([100.0, 1.0, 0.0], alpha=1.0), 4)
    1.4901
    """
    if not 0 < alpha < np.inf:
        raise ValueError(f"effective_dimensionality: alpha must be a finite number > 0, got {alpha}")
    lam = np.asarray(eigenvalues, np.float64)
    if lam.ndim != 1:
        raise ValueError(f"effective_dimensionality: expected a 1-D array of eigenvalues, got shape {lam.shape}")
    if np.isnan(lam).any():
        raise ValueError("effective_dimensionality: expected real eigenvalues, got NaN")
    lam = np.clip(lam, 0, None)
    return float((lam / (lam + alpha)).sum())


