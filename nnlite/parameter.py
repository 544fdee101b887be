"""Parameters and buffers: the two kinds of state a model keeps.

A **parameter** is a tensor the optimizer learns. Besides its values it knows
what it is for (``kind``: weight, bias, scale, shift, embedding, positional,
temperature, gate, architecture, meta, regularization, other), whether it is
trainable, how it was initialised (``init``), and the name the model gave it.

A **buffer** is state that is saved with the model but not learned by gradient
descent, such as batch norm's running statistics or a fixed positional
encoding.
"""
import numpy as np

from .tensor import Tensor, _to_array, get_default_dtype

__all__ = ["Parameter", "Buffer", "KINDS"]

KINDS = ("weight", "bias", "scale", "shift", "embedding", "positional", "temperature",
         "gate", "architecture", "meta", "regularization", "other")


class Parameter(Tensor):
    """A learnable tensor (``requires_grad=True`` unless frozen).

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.zeros(3, 2), kind="weight")
    >>> w.shape, w.kind, w.trainable
    ((3, 2), 'weight', True)

    ``Parameter(tensor)`` shares memory with ``tensor``, as in PyTorch.
    """
    __slots__ = ("name", "kind", "init", "_grad_slot")

    def __init__(self, data=None, requires_grad=True, kind="other", name=None):
        if data is None:
            data = np.empty((0,), get_default_dtype())
        arr = data.data if isinstance(data, Tensor) else _to_array(data, None)
        if arr.dtype.kind != "f":
            if requires_grad:
                raise TypeError(f"Parameter: only floating point data can require gradients, got {arr.dtype}")
        super().__init__(arr)
        self.requires_grad = bool(requires_grad)
        if kind not in KINDS:
            raise ValueError(f"Parameter: kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.name = name
        self.init = None          # {"scheme": ..., plus its arguments}, set by nn.init
        self._grad_slot = None    # a view into an optimizer arena's gradient buffer, if any

    # A parameter is trainable when the optimizer may change it: the same as requires_grad.
    @property
    def trainable(self):
        return self.requires_grad

    @trainable.setter
    def trainable(self, value):
        self.requires_grad = bool(value)

    def _accumulate_grad(self, g, create_graph=False):
        slot = self._grad_slot
        if create_graph or slot is None or self.grad is not None and self.grad.data is not slot:
            return Tensor._accumulate_grad(self, g, create_graph)
        # The gradient lives in the arena, so the optimizer reads it without gathering.
        if self.grad is None:
            np.copyto(slot, g.data, casting="unsafe")
            self.grad = Tensor._make(slot, None)
        else:
            np.add(slot, g.data, out=slot, casting="unsafe")

    def __repr__(self):
        body = super().__repr__()
        return f"Parameter({self.kind}, {body})"


class Buffer(Tensor):
    """Non-learned state saved with the model (``persistent=False``: not saved)."""
    __slots__ = ("persistent",)

    def __init__(self, data, persistent=True):
        arr = data.data if isinstance(data, Tensor) else _to_array(data, None)
        super().__init__(arr)
        self.persistent = persistent
