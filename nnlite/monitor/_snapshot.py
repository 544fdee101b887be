"""Copies of a model's values, taken and put back without touching autograd or provenance.

Loss landscapes and the divergence guard both move a model's parameters and must
return them exactly as they were. Writing into the existing arrays (rather than
rebinding ``.data``) keeps optimizer arenas and tied parameters intact, and
skips :meth:`~nnlite.nn.Module.load_state_dict`'s provenance records, which
would wrongly say the values were loaded from somewhere.
"""
import numpy as np


def named_state(model):
    """(name, tensor) for every parameter and buffer of ``model``, tied tensors once."""
    yield from model.named_parameters()
    yield from model.named_buffers()


def snapshot(model):
    """A dict of copies of every parameter and buffer, by name."""
    return {name: np.array(t.data, copy=True) for name, t in named_state(model)}


def restore(model, saved):
    """Write ``saved`` (from :func:`snapshot`) back into the model's own arrays, bit for bit."""
    for name, t in named_state(model):
        np.copyto(t.data, saved[name])
        t._bump_version()
