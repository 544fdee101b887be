"""What every analysis walks over: a model's trainable parameters and a few batches of data.

``batches`` is an iterable of ``(input, target)`` pairs (a DataLoader, a list of
pairs) or a single ``(input, target)`` pair. The quantities that average over
data (the loss, the Fisher, the Hessian) average over *samples*: a batch of n
samples weighs n / N, so the result does not depend on how the data was cut
into batches.
"""
from contextlib import contextmanager

import numpy as np

from ..random import Generator, default_generator
from ..nn._checks import require_module
from ..nn.module import modes_kept  # noqa: F401  (shared with the analyses' callers)
from ..tensor import Tensor, tensor

__all__ = ["as_batch_list", "trainable_parameters", "batch_size", "numpy_generator", "buffers_kept", "modes_kept",
           "put_back"]


def numpy_generator(generator, caller):
    """The NumPy generator behind an ``nl.Generator`` (the global one for None)."""
    if generator is None:
        return default_generator().np
    if not isinstance(generator, Generator):
        raise TypeError(f"{caller}: generator must be an nl.Generator or None, got {type(generator).__name__}")
    return generator.np


@contextmanager
def buffers_kept(model):
    """Run a block's forward passes without leaving a trace in the buffers (BatchNorm's running statistics).

    An analysis measures the model; in training mode a forward pass also
    updates the running statistics, which would change the model it measures.
    """
    saved = [(b, b.data.copy()) for _, b in model.named_buffers()]
    try:
        yield
    finally:
        for b, data in saved:
            put_back(b, data)


def put_back(t, data):
    """Give ``t`` the values ``data`` it had: in place, for anything holding a view of its array
    (an optimizer's arena), unless it has since been given an array of another shape or dtype
    (an observer's first per-channel range), which the old values cannot fill."""
    if t.data.shape == data.shape and t.data.dtype == data.dtype:
        t.data[...] = data
    else:
        t.data = data



def _as_tensor(x):
    return x if isinstance(x, Tensor) else tensor(np.asarray(x))


def as_batch_list(batches):
    """A list of ``(input, target)`` Tensor pairs; a single pair is wrapped in a list."""
    # One pair, as a DataLoader yields it, rather than a sequence of pairs.
    if isinstance(batches, (tuple, list)) and len(batches) == 2 and isinstance(batches[0], (Tensor, np.ndarray)):
        batches = [batches]
    pairs = []
    for i, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError(f"batches: expected (input, target) pairs, got {type(batch).__name__} at position {i}")
        pairs.append((_as_tensor(batch[0]), _as_tensor(batch[1])))
        if not pairs[-1][0].ndim or pairs[-1][0].shape[0] == 0:
            raise ValueError(f"batches: expected inputs with at least one sample, got an input of shape "
                             f"{pairs[-1][0].shape} at position {i}")
    if not pairs:
        raise ValueError("batches: expected at least one (input, target) pair, got none")
    return pairs


def batch_size(input):
    """How many samples a batch holds: the length of its first dimension."""
    return int(input.shape[0])


def trainable_parameters(model):
    """``[(name, parameter)]`` of the parameters the optimizer would change (tied ones once)."""
    named = list(require_module(model, "analysis").named_parameters(trainable_only=True))
    if not named:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to analyse")
    return named


def mean_loss(model, loss_fn, batches):
    """The loss averaged over every sample of ``batches`` (a float; no gradients are recorded)."""
    from ..autograd import no_grad
    pairs = as_batch_list(batches)
    total = sum(batch_size(x) for x, _ in pairs)
    with no_grad(), buffers_kept(model):
        return sum(float(loss_fn(model(x), y).item()) * batch_size(x) for x, y in pairs) / total
