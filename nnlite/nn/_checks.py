"""Checks that several layers, and the tools that take a model, share.

A layer's sizes and counts (``in_features``, ``num_features``, ``hidden_size``...)
shape its parameters, so a float or a bool there is a mistake; PyTorch refuses
it with a TypeError, and nnlite refuses it by name when the layer is made.
"""
from .._kernels.checks import is_int
from .module import Module


def require_ints(layer, **values):
    """Raise TypeError naming the first of ``values`` that is not an int (a bool or a whole
    float is not one either), as ``"<layer>: <name> must be an int, got float 2.5"``."""
    for name, value in values.items():
        if not is_int(value):
            raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__} {value!r}")


def require_module(model, caller):
    """``model`` itself if it is an ``nn.Module``; otherwise a TypeError naming ``caller``
    (an array or a function passed where a model belongs would fail later, deep inside)."""
    if not isinstance(model, Module):
        raise TypeError(f"{caller}: expected an nn.Module, got {type(model).__name__}")
    return model
