"""Calibration: do the predicted probabilities mean what they say?

A classifier is *calibrated* when, among the examples it labels with
confidence 0.8, 80% are right. Networks trained long with cross-entropy are
usually over-confident (Guo, Pleiss, Sun and Weinberger, 2017, "On Calibration
of Modern Neural Networks"): the loss keeps rewarding larger logits after the
training set is classified correctly.

Measuring it. Sort the examples into ``n_bins`` equal-width bins by their
confidence (the largest probability); in bin B compare the accuracy with the
mean confidence. The **expected calibration error** (Naeini, Cooper and
Hauskrecht, 2015, "Obtaining Well Calibrated Probabilities Using Bayesian
Binning") weights the gaps by the bins' sizes::

    ECE = sum_B |B| / N * |accuracy(B) - confidence(B)|

and the **reliability diagram** draws accuracy against confidence per bin (a
calibrated model sits on the diagonal). The negative log-likelihood (the test
cross-entropy) measures calibration and accuracy together.

Fixing it: **temperature scaling**. Divide the logits by one learned scalar
T > 0, fitted on held-out validation data by minimising the NLL with the
network frozen. T > 1 softens over-confident probabilities; the argmax, and so
the accuracy, never changes. The scalar is :class:`nnlite.nn.Temperature`'s
parameter ``log_temperature`` (kind "temperature"), so the calibrated model is
``nn.Sequential(model, temperature)``.
"""
import numpy as np

from ._kernels.checks import is_int
from . import nn
from .autograd import no_grad
from .nn import functional as F
from .tensor import Tensor

__all__ = ["predict_logits", "fit_temperature", "expected_calibration_error", "negative_log_likelihood",
           "reliability_bins", "reliability_diagram"]


def _array(x):
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def _softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _check(probs, labels, what):
    if probs.ndim != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"{what}: expected (N, classes) scores and N labels, got shapes {probs.shape} and "
                         f"{labels.shape}")
    if len(labels) == 0:   # every mean over the samples would be 0 / 0
        raise ValueError(f"{what}: expected at least one sample, got shapes {probs.shape} and {labels.shape}")
    if not np.isfinite(probs).all():
        raise ValueError(f"{what}: expected finite scores, got NaN or inf")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{what}: labels must be integers, got {labels.dtype}")
    # A label outside the score columns would be silently counted as wrong (or index out of range).
    if labels.size and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"{what}: labels must lie in [0, {probs.shape[1]}) for {probs.shape[1]} classes, "
                         f"got {labels.min()}..{labels.max()}")


def predict_logits(model, loader):
    """``(logits, labels)`` as NumPy arrays over ``loader``, in eval mode and without gradients."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"predict_logits: expected an nn.Module, got {type(model).__name__}")
    from .analysis._batches import modes_kept
    logits, labels = [], []
    with modes_kept(model), no_grad():
        model.eval()
        for inputs, targets in loader:
            logits.append(_array(model(inputs)))
            labels.append(_array(targets))
    if not logits:
        raise ValueError("predict_logits: expected a loader with at least one batch, got none")
    return np.concatenate(logits), np.concatenate(labels)


def negative_log_likelihood(logits, labels):
    """Mean -log p(label) under softmax(logits): the cross-entropy, as a float."""
    logits, labels = _array(logits).astype(np.float64), _array(labels)
    _check(logits, labels, "negative_log_likelihood")
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def reliability_bins(probs, labels, n_bins=15):
    """Per confidence bin: ``edges``, ``count``, ``accuracy`` and ``confidence`` (NaN where a bin is empty)."""
    probs, labels = _array(probs).astype(np.float64), _array(labels)
    _check(probs, labels, "reliability_bins")
    if probs.min() < 0 or probs.max() > 1:   # logits here would put every confidence in the top bin
        raise ValueError(f"reliability_bins: expected probabilities in [0, 1], got values in "
                         f"[{probs.min():g}, {probs.max():g}] (apply softmax to logits first)")
    if not is_int(n_bins) or n_bins < 1:
        raise ValueError(f"reliability_bins: n_bins must be a positive integer, got {n_bins!r}")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bins (lo, hi]; a confidence of exactly 0 cannot occur for a probability vector
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / count
        mean_conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
    return {"edges": edges, "count": count, "accuracy": accuracy, "confidence": mean_conf}


def expected_calibration_error(probs, labels, n_bins=15):
    """ECE of the probabilities ``probs`` (N, classes) against integer ``labels``; see the module docstring.

    Four predictions at confidence 0.9 of which two are right: one bin, gap 0.4.

    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1]] * 4)
    >>> round(expected_calibration_error(probs, np.array([0, 0, 1, 1])), 6)
    0.4
    """
    bins = reliability_bins(probs, labels, n_bins)
    full = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][full] - bins["confidence"][full])
    return float((bins["count"][full] * gaps).sum() / bins["count"].sum())


def fit_temperature(logits, labels, init=1.0, steps=200, lr=0.05):
    """Fit a :class:`nnlite.nn.Temperature` to validation ``logits`` by minimising the NLL.

    The only parameter is log T; Adam takes ``steps`` full-batch steps on it.
    Adam moves log T by about ``lr`` a step at most, so the defaults reach a
    temperature a few times ``init`` within a few dozen steps; where the loss is
    flat near its minimum (logits far from calibrated, a large T), the steps
    shrink and 200 may stop short of it: give more ``steps`` or a larger ``lr``
    and compare the validation NLL. The logits are fixed numbers here: the
    network is not touched.
    """
    logits, labels = _array(logits), _array(labels)
    _check(logits, labels, "fit_temperature")
    if not is_int(steps) or steps < 1:
        raise ValueError(f"fit_temperature: steps must be a positive integer, got {steps!r}")
    from .optim import Adam
    temperature = nn.Temperature(init=init, dtype=np.float64)
    x, y = Tensor(logits.astype(np.float64)), Tensor(labels.astype(np.int64))
    opt = Adam(temperature.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(temperature(x), y).backward()
        opt.step()
    dtype = logits.dtype if logits.dtype.kind == "f" else np.float32
    return nn.Temperature(init=float(temperature.temperature.item()), dtype=dtype)


def reliability_diagram(probs, labels, n_bins=15, ax=None, label=None):
    """Bars of accuracy per confidence bin against the diagonal; the ECE in the legend. Returns the axes."""
    bins = reliability_bins(probs, labels, n_bins)
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError('reliability_diagram needs matplotlib: pip install "nnlite[plot]"') from None
        _, ax = plt.subplots(figsize=(4, 4))
    edges, width = bins["edges"], 1.0 / n_bins
    full = bins["count"] > 0
    ece = expected_calibration_error(probs, labels, n_bins)
    ax.bar(edges[:-1][full], bins["accuracy"][full], width=width, align="edge", alpha=0.6,
           edgecolor="k", label=f"{label + ': ' if label else ''}ECE {100 * ece:.1f}%")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8, loc="upper left")
    return ax
