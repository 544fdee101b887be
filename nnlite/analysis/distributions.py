"""How parameter values and gradients are spread: histograms, norms, gradient statistics, update ratios.

* **Histograms** show the shape of each layer's weights (a trained layer's
  weights spread out from their initial uniform or normal shape) and
  gradients.
* **L2 norms** ‖θ‖₂ = (Σ θ_i²)^½, per parameter or per group (a layer, a kind):
  a group's norm is the root of the sum of its members' squared norms.
  Weight decay shrinks them; exploding training grows them.
* **Gradient statistics** per parameter after a backward pass: the norm, the
  mean and largest ``|g|``, and the root-mean-square, which compares layers of
  different sizes. Layers whose gradients are orders of magnitude smaller
  than others' learn little: the gradient does not flow to them.
* **Update-to-weight ratio** ‖Δθ‖ / ‖θ‖ of one optimizer step. Around 1e-3 is
  the usual healthy range for SGD-like training (a rule of thumb from
  Karpathy's CS231n notes); much larger means a learning rate that is too
  high for that layer, much smaller one that is too low.
"""
from collections import OrderedDict

import numpy as np

from .._kernels.checks import is_int
from ..nn._checks import require_module

__all__ = ["weight_histograms", "gradient_histograms", "parameter_norms", "gradient_stats",
           "parameter_snapshot", "update_ratios"]


def _histograms(named, bins):
    if not is_int(bins) or bins < 1:
        raise ValueError(f"histograms: bins must be a positive integer, got {bins!r}")
    out = OrderedDict()
    for name, values in named:
        values = values.astype(np.float64).ravel()
        if not np.isfinite(values).all():   # NumPy cannot place bins over an infinite or NaN range
            raise ValueError(f"histograms: {name} holds NaN or inf; expected finite values to bin")
        counts, edges = np.histogram(values, bins=bins)
        out[name] = (counts, edges)
    return out


def weight_histograms(model, bins=50):
    """``{name: (counts, bin_edges)}`` of every parameter's values (NumPy's ``histogram``)."""
    model = require_module(model, "weight_histograms")
    return _histograms(((n, p.data) for n, p in model.named_parameters()), bins)


def gradient_histograms(model, bins=50):
    """``{name: (counts, bin_edges)}`` of every parameter's ``.grad`` (parameters without one are left out)."""
    model = require_module(model, "gradient_histograms")
    return _histograms(((n, p.grad.data) for n, p in model.named_parameters() if p.grad is not None), bins)


def _group_key(name, p, by):
    if by == "parameter":
        return name
    if by == "kind":
        return p.kind
    return name.rpartition(".")[0] or "(model)"


def parameter_norms(model, by="parameter", grads=False):
    """L2 norms of the parameters (``grads=True``: of their gradients), grouped ``by``.

    ``by`` is "parameter" (one norm each), "layer" (the module holding them)
    or "kind" (weight, bias, ...). Returns an ordered ``{group: float}``.

    >>> import nnlite as nl
    >>> model = nl.nn.Linear(2, 2)
    >>> _ = nl.nn.init.ones_(model.weight); _ = nl.nn.init.zeros_(model.bias)
    >>> dict(parameter_norms(model, by="kind"))
    {'weight': 2.0, 'bias': 0.0}
    """
    require_module(model, "parameter_norms")
    if by not in ("parameter", "layer", "kind"):
        raise ValueError(f"parameter_norms: by must be 'parameter', 'layer' or 'kind', got {by!r}")
    squares = OrderedDict()
    for name, p in model.named_parameters():
        t = p.grad if grads else p
        if t is None:
            continue
        key = _group_key(name, p, by)
        squares[key] = squares.get(key, 0.0) + float(np.square(t.data, dtype=np.float64).sum())
    return OrderedDict((k, float(np.sqrt(v))) for k, v in squares.items())


def gradient_stats(model):
    """Per parameter with a gradient: ``{norm, rms, mean_abs, max_abs, weight_norm}`` of ``.grad``."""
    out = OrderedDict()
    for name, p in require_module(model, "gradient_stats").named_parameters():
        if p.grad is None:
            continue
        g = p.grad.data.astype(np.float64)
        out[name] = {"norm": float(np.linalg.norm(g)), "rms": float(np.sqrt(np.mean(g ** 2))) if g.size else 0.0,
                     "mean_abs": float(np.abs(g).mean()) if g.size else 0.0,
                     "max_abs": float(np.abs(g).max()) if g.size else 0.0,
                     "weight_norm": float(np.linalg.norm(p.data.astype(np.float64)))}
    return out


def parameter_snapshot(model):
    """A copy of every parameter's values, ``{name: ndarray}``, to compare against after a step."""
    return OrderedDict((n, np.array(p.data, dtype=np.float64, copy=True))
                       for n, p in require_module(model, "parameter_snapshot").named_parameters())


def update_ratios(model, before):
    """``{name: ‖θ_now − θ_before‖ / ‖θ_before‖}`` for a :func:`parameter_snapshot` ``before``.

    Take the snapshot, run ``optimizer.step()``, then call this. A parameter
    whose norm was 0 gets ``inf`` if it moved and 0 otherwise.
    """
    named = list(require_module(model, "update_ratios").named_parameters())
    if not hasattr(before, "items"):
        raise TypeError(f"update_ratios: expected before as a parameter_snapshot {{name: ndarray}}, "
                        f"got {type(before).__name__}")
    if not any(name in before for name, _ in named):
        raise KeyError(f"update_ratios: the snapshot holds none of the model's parameters; expected names such as "
                       f"{[n for n, _ in named[:3]]}, got {list(before)[:3]}")
    out = OrderedDict()
    for name, p in named:
        if name not in before:
            continue  # a parameter added after the snapshot has no earlier value to compare with
        old = np.asarray(before[name])
        if old.shape != tuple(p.shape):   # another shape would broadcast into a wrong difference, or fail inside
            raise ValueError(f"update_ratios: the snapshot of {name!r} has shape {old.shape}, the parameter "
                             f"{tuple(p.shape)}; expected a parameter_snapshot of this model")
        step = float(np.linalg.norm(p.data.astype(np.float64) - old))
        norm = float(np.linalg.norm(old))
        out[name] = step / norm if norm > 0 else (float("inf") if step > 0 else 0.0)
    return out
