r"""Progressive search: grow a model while validation improves, reusing the parameters it has.

A toy version of progressive and evolutionary searches: start small, and at
every round try a few larger *children* of the current model — wider hidden
layers or one more layer — train each briefly, and keep the best child if it
beats its parent on validation data; stop when no child does.

Children start from the parent's function, not from scratch, with Net2Net's
function-preserving transformations (Chen, Goodfellow & Shlens 2016):

* **Net2WiderNet** (:func:`~nnlite.nas.net2wider`) widens a hidden layer from :math:`n` to
  :math:`m` units by copying random existing units: new unit :math:`j` copies
  unit :math:`g(j)` (its incoming weights and bias), and every outgoing weight
  of a unit that now has :math:`c` copies is divided by :math:`c`. Each copy
  computes the same activation, so the next layer receives exactly the same
  sum. With ``noise`` > 0 every outgoing weight of the widened layer is
  scaled by :math:`1 + \epsilon`, :math:`\epsilon \sim N(0, \mathrm{noise}^2)`: the copies'
  weights then differ, which breaks their symmetry so they can learn different
  things, at the price of a function that is no longer exactly the parent's.
* **Net2DeeperNet** (:func:`~nnlite.nas.net2deeper`) inserts a Linear layer initialised to
  the identity after a ReLU: :math:`\mathrm{relu}(I h) = h` for :math:`h \ge 0`,
  so the output does not change.
"""
import copy

import numpy as np

from .. import nn, optim
from .._kernels.checks import real_number
from ..nn import functional as F
from ..parameter import Parameter
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor
from ..train import accuracy

__all__ = ["net2wider", "net2deeper", "progressive_search"]


def _linears(model):
    layers = [m for m in model if isinstance(m, nn.Linear)] if isinstance(model, nn.Sequential) else []
    if len(layers) < 2:
        raise TypeError("progressive search works on an nn.Sequential of Linear layers and activations "
                        f"with at least one hidden layer, got {type(model).__name__}")
    return layers


def net2wider(model, layer, new_width, rng=None, noise=0.0):
    """A copy of ``model`` (a Sequential of Linear layers and ReLUs) with hidden layer ``layer`` widened.

    ``layer`` counts the Linear layers whose output is hidden (0 = the first).
    With ``noise=0`` the widened network computes exactly the same function.
    """
    if not real_number("net2wider", "noise", noise) >= 0:
        raise ValueError(f"net2wider: noise is a standard deviation and must be >= 0, got {noise}")
    rng = np.random.default_rng(rng)
    model = copy.deepcopy(model)
    linears = _linears(model)
    if not 0 <= layer < len(linears) - 1:
        raise ValueError(f"net2wider: layer must be a hidden layer in [0, {len(linears) - 2}], got {layer}")
    first, second = linears[layer], linears[layer + 1]
    old = first.out_features
    if new_width < old:
        raise ValueError(f"net2wider: new_width must be >= the current width {old}, got {new_width}")
    mapping = np.concatenate([np.arange(old), rng.integers(0, old, new_width - old)])
    copies = np.bincount(mapping, minlength=old)
    w_in = first.weight.data[mapping]
    b_in = None if first.bias is None else first.bias.data[mapping]
    w_out = (second.weight.data[:, mapping] / copies[mapping]).astype(second.weight.data.dtype)
    if noise:
        w_out = w_out * (1 + noise * rng.standard_normal(w_out.shape)).astype(w_out.dtype)
    _replace(first, w_in, b_in)
    _replace(second, w_out, None if second.bias is None else second.bias.data.copy())
    first.out_features = second.in_features = int(new_width)
    return model


def _replace(linear, weight, bias):
    """New Parameters for ``linear``, frozen where the old ones were (a layer without bias keeps none)."""
    for name, values in (("weight", weight), ("bias", bias)):
        if values is None:
            continue
        old = getattr(linear, name)
        new = Parameter(Tensor(np.ascontiguousarray(values)), kind=name,
                        requires_grad=old is None or old.requires_grad)
        new.init = {"scheme": "net2net"}
        setattr(linear, name, new)


def net2deeper(model, layer):
    """A copy of ``model`` with an identity-initialised Linear + ReLU after hidden layer ``layer``."""
    model = copy.deepcopy(model)
    linears = _linears(model)
    if not 0 <= layer < len(linears) - 1:
        raise ValueError(f"net2deeper: layer must be a hidden layer in [0, {len(linears) - 2}], got {layer}")
    children = list(model)
    at = children.index(linears[layer])
    if at + 1 >= len(children) or not isinstance(children[at + 1], nn.ReLU):
        raise TypeError("net2deeper: the hidden layer must be followed by a ReLU (identity is preserved only "
                        "for non-negative inputs)")
    width = linears[layer].out_features
    # The constructor's random weights are replaced at once: draw them with the global
    # generator put back, so deepening a model leaves every later random number as it was.
    state = get_rng_state()
    try:
        new = nn.Linear(width, width, dtype=linears[layer].weight.dtype)
    finally:
        set_rng_state(state)
    _replace(new, np.eye(width, dtype=new.weight.data.dtype), np.zeros(width, new.bias.data.dtype))
    children[at + 2:at + 2] = [new, nn.ReLU()]
    return nn.Sequential(*children)


def _train_classifier(model, x, y, epochs, lr, batch_size, rng, schedule=None):
    """Adam on the cross-entropy over shuffled minibatches of the arrays ``x, y`` (``rng`` shuffles).

    ``schedule(optimizer)``, if given, makes a learning-rate scheduler that is
    stepped after every epoch. Every candidate of a search trains this way, so
    their accuracies differ by architecture, not by training recipe.
    """
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = schedule(optimizer) if schedule is not None else None
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(Tensor(x[idx])), Tensor(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()


def progressive_search(model, train, val, rounds=4, epochs=3, lr=3e-3, batch_size=64, widen_factor=2,
                       noise=0.01, seed=0):
    """Grow ``model`` greedily: each round, children that widen each hidden layer or add one; keep the best.

    ``train`` and ``val`` are (x, y) NumPy arrays. Every model is trained
    ``epochs`` epochs after it is created. Returns the final model and the
    history: one dict per round with the candidates' validation accuracies,
    the choice and the parameter count.
    """
    rng = np.random.default_rng(seed)
    _train_classifier(model, *train, epochs, lr, batch_size, rng)
    best = accuracy(model, *val)
    history = [{"round": 0, "choice": "start", "val_accuracy": best, "parameters": model.num_parameters()}]
    for r in range(1, rounds + 1):
        hidden = len(_linears(model)) - 1
        candidates = {}
        for i in range(hidden):
            width = _linears(model)[i].out_features
            candidates[f"widen layer {i} to {widen_factor * width}"] = net2wider(model, i, widen_factor * width,
                                                                                   rng, noise)
        candidates[f"deepen after layer {hidden - 1}"] = net2deeper(model, hidden - 1)
        scores = {}
        for name, child in candidates.items():
            _train_classifier(child, *train, epochs, lr, batch_size, rng)
            scores[name] = accuracy(child, *val)
        choice = max(scores, key=scores.get)
        improved = scores[choice] > best
        history.append({"round": r, "candidates": scores, "choice": choice if improved else "stop",
                        "val_accuracy": max(best, scores[choice]),
                        "parameters": candidates[choice].num_parameters() if improved else model.num_parameters()})
        if not improved:
            break
        model, best = candidates[choice], scores[choice]
    return model, history
