"""Activation statistics, collected layer by layer with forward hooks.

A layer's parameters show up in the data through its activations. Three
summaries tell whether a layer is working (Glorot & Bengio, 2010,
"Understanding the difficulty of training deep feedforward neural networks"):

* **mean and standard deviation** over every value of the layer's output: an
  std that shrinks or grows from layer to layer means signals vanish or explode.
* **dead fraction**: the fraction of units never positive on any input. A unit
  is one output coordinate (a feature of a Linear layer, a channel at one
  position of a convolution). A unit that is never positive gives a ReLU
  output of 0 and a ReLU gradient of 0 for every input: it has stopped
  learning (Lu et al., 2019, "Dying ReLU and initialization"). The count is
  the same whether measured on a ReLU's output or on the pre-activation that
  feeds it, so it is reported for every layer.
* **saturated fraction** of a Tanh or Sigmoid layer: the fraction of values
  within 0.01 of the function's limits (``|tanh| > 0.99``, sigmoid < 0.01 or >
  0.99), where the derivative is below 0.02 and gradients hardly pass.
  ``None`` for other layers.

Statistics are taken over all samples of ``batches``, with gradients off, in
the model's current mode (``model.eval()`` for a trained model's behaviour);
the buffers (BatchNorm's running statistics) are left as they were.
"""
from collections import OrderedDict

import numpy as np

from ..autograd import no_grad
from ..nn import Sigmoid, Tanh
from ..tensor import Tensor, tensor
from ..nn._checks import require_module
from ._batches import buffers_kept

__all__ = ["record_activations", "activation_stats"]


def _inputs(batches):
    """The inputs of ``batches``: (input, target) pairs or bare inputs; one Tensor is one batch."""
    if isinstance(batches, Tensor) or isinstance(batches, np.ndarray):
        batches = [batches]
    elif isinstance(batches, tuple) and len(batches) == 2 and not isinstance(batches[0], (tuple, list)):
        batches = [batches]
    seen = False
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        seen = True
        yield x if isinstance(x, Tensor) else tensor(np.asarray(x))
    if not seen:
        raise ValueError("batches: expected at least one batch of inputs, got none")


def _default_layers(model):
    """Every leaf module (one with no children), plus the model itself if it is a leaf."""
    return [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]


def record_activations(model, batches, layers=None):
    """``{layer name: ndarray (N, ...)}``: every listed layer's output on every sample of ``batches``.

    ``layers`` is a list of module names or one name (default: every leaf module). A
    layer that returns a tuple (attention) is recorded by its first element. A layer
    called k times in one forward pass (a shared layer) is recorded at every call: its
    array has k rows per sample, the calls of each batch one after the other.
    """
    if isinstance(layers, str):
        layers = [layers]   # one name, not a sequence of one-letter names
    named = dict(require_module(model, "record_activations").named_modules())
    unknown = [n for n in (layers or ()) if n not in named]
    if unknown:
        raise ValueError(f"record_activations: {type(model).__name__} has no layers named {unknown}; "
                         f"expected names from named_modules(), such as {list(named)[1:4]}")
    chosen = _default_layers(model) if layers is None else [(n, named[n]) for n in layers]
    outputs = OrderedDict((name, []) for name, _ in chosen)
    handles = []
    for name, module in chosen:
        def hook(module, args, output, name=name):
            out = output[0] if isinstance(output, tuple) else output
            outputs[name].append(np.array(out.data, copy=True))
        handles.append(module.register_forward_hook(hook))
    try:
        with no_grad(), buffers_kept(model):
            for x in _inputs(batches):
                model(x)
    finally:
        for h in handles:
            h.remove()
    return OrderedDict((name, np.concatenate(chunks)) for name, chunks in outputs.items() if chunks)


def _saturated(module, values):
    if isinstance(module, Tanh):
        return float(np.mean(np.abs(values) > 0.99))
    if isinstance(module, Sigmoid):
        return float(np.mean((values < 0.01) | (values > 0.99)))
    return None


def activation_stats(model, batches, layers=None):
    """Per layer ``{mean, std, dead_fraction, saturated_fraction, units}`` of its outputs on ``batches``.

    See the module docstring for the definitions. ``layers`` as in
    :func:`record_activations`.

    >>> import nnlite as nl
    >>> model = nl.nn.Sequential(nl.nn.Linear(4, 8), nl.nn.ReLU(), nl.nn.Linear(8, 2))
    >>> stats = activation_stats(model, nl.randn(100, 4))
    >>> sorted(stats), 0 <= stats["1"]["dead_fraction"] <= 1
    (['0', '1', '2'], True)
    """
    modules = dict(model.named_modules())
    out = OrderedDict()
    for name, values in record_activations(model, batches, layers).items():
        units = values.reshape(len(values), -1)
        v = values.astype(np.float64)
        out[name] = {"mean": float(v.mean()), "std": float(v.std()),
                     "dead_fraction": float(np.mean(~(units > 0).any(0))),
                     "saturated_fraction": _saturated(modules[name], values), "units": int(units.shape[1])}
    return out
