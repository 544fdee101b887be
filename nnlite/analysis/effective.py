"""Effective parameters: how many of a model's parameters the loss really depends on.

Two answers to the question, one by removal and one by curvature.

**By removal.** Rank the parameters by an importance score (magnitude by
default, see :mod:`nnlite.analysis.importance`) and zero the least important
ones. The effective number of parameters is the number that must be kept so
that the loss rises by no more than ``threshold``: P minus the largest number
of lowest-ranked parameters that can be removed together. It is found by
bisection on that number, which assumes the loss grows as more are removed
(true in practice, not guaranteed).

**By curvature** (MacKay, 1992, "Bayesian interpolation"; Maddox, Benton &
Wilson, 2020, "Rethinking parameter counting in deep models: effective
dimensionality revisited"): with the Hessian's eigenvalues λ_i and a prior
precision α > 0,

    N_eff = Σ_i λ_i / (λ_i + α).

A direction with λ_i ≫ α is determined by the data and counts about 1; a flat
direction with λ_i ≪ α is left to the prior and counts about 0. Pass the top
eigenvalues from :func:`hessian_top_eigenvalues`: the directions left out are
the flattest and add little. Negative eigenvalues (away from a minimum) count 0.
"""
import numpy as np

from ._batches import mean_loss
from .importance import loss_after_removal, magnitude_importance

__all__ = ["effective_parameters", "effective_dimensionality"]


def effective_parameters(model, loss_fn, batches, threshold=0.01, scores=None):
    """How many parameters must be kept for the loss to rise by at most ``threshold`` (an int).

    ``scores`` ({name: Tensor}, default :func:`magnitude_importance` of all
    trainable parameters) decides the order of removal; parameters without a
    score are always kept and not counted. ``threshold`` is in the loss's own
    units (nats for cross-entropy).
    """
    if threshold < 0:
        raise ValueError(f"effective_parameters: threshold must be >= 0, got {threshold}")
    scores = magnitude_importance(model) if scores is None else scores
    total = int(sum(np.size(s.data if hasattr(s, "data") else s) for s in scores.values()))
    base = mean_loss(model, loss_fn, batches)

    def acceptable(removed):
        return loss_after_removal(model, loss_fn, batches, scores, [removed / total])[0] - base <= threshold

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


def effective_dimensionality(eigenvalues, alpha=1.0):
    """N_eff = Σ λ_i / (λ_i + α) over the given Hessian eigenvalues (negative ones count 0), a float.

    >>> round(effective_dimensionality([100.0, 1.0, 0.0], alpha=1.0), 4)
    1.4901
    """
    if alpha <= 0:
        raise ValueError(f"effective_dimensionality: alpha must be > 0, got {alpha}")
    lam = np.clip(np.asarray(eigenvalues, np.float64), 0, None)
    return float((lam / (lam + alpha)).sum())


