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

from .tensor import Tensor, _to_array, get_default_dtype, is_floating_dtype

__all__ = ["Parameter", "Buffer", "KINDS", "adopt_storage", "mark_updated"]

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
        if not is_floating_dtype(arr.dtype):
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
        self.requires_grad_(bool(value))   # refuses integer data, as requires_grad_ does

    def _accumulate_grad(self, g, create_graph=False):
        slot, grad = self._grad_slot, self._grad
        if create_graph or slot is None or grad is not None and grad.data is not slot:
            return Tensor._accumulate_grad(self, g, create_graph)
        # The gradient lives in the arena, so the optimizer reads it without gathering.
        if grad is None:
            np.copyto(slot, g.data, casting="unsafe")
            self._grad = Tensor._make(slot, None)   # the arena's view has the parameter's shape and dtype
        else:
            np.add(slot, g.data, out=slot, casting="unsafe")

    def __repr__(self):
        body = super().__repr__()
        return f"Parameter({self.kind}, {body})"

    _UNPICKLED = Tensor._UNPICKLED + ("_grad_slot",)   # the arena stays with the original too

    def __deepcopy__(self, memo):
        """A new parameter with copies of the values and of what it knows about itself, and no
        gradient, as PyTorch's: an optimizer made for a copied model must not step on gradients
        the original computed. Hooks and a place in an optimizer's arena stay with the original."""
        return self._copy_slots(memo, fresh=("_grad", "_hooks", "_grad_slot"))


# ---------------------------------------------------------------------------
# The optimizer arena's contract with a parameter (see nnlite.optim.arena).
#
# An optimizer keeps its parameters in flat, aligned buffers. Three invariants
# make that invisible to the model, and these two functions are the only code
# outside this file and tensor.py that maintains them:
#
# 1. ``param.data`` is a view into the arena's param buffer        (adopt_storage)
# 2. a Parameter's gradient accumulates straight into its grad slot,
#    the matching view of the arena's grad buffer                  (adopt_storage)
# 3. after an in-place update of ``param.data`` the parameter's
#    version counter moves on, so a graph that saved the old
#    values refuses to backward instead of giving wrong gradients  (mark_updated)

def adopt_storage(param, data, grad):
    """Move ``param`` into arena storage: ``data`` and ``grad`` are its views of the two buffers.

    The current values are copied into ``data``, which then becomes
    ``param.data``. A :class:`Parameter` also takes ``grad`` as the slot
    autograd accumulates into; a plain Tensor keeps its own ``.grad``
    (the optimizer copies it in before each step). A gradient the parameter
    already has is copied into ``grad`` and ``param.grad`` becomes that view.
    Both views must have the parameter's shape and dtype (TypeError or
    ValueError otherwise, before anything is moved).

    >>> import numpy as np, nnlite as nl
    >>> w = nl.nn.Parameter(nl.ones(2))
    >>> data, grad = np.zeros(2, np.float32), np.zeros(2, np.float32)
    >>> adopt_storage(w, data, grad)
    >>> (w * 3).sum().backward()
    >>> w.data is data, grad.tolist()
    (True, [3.0, 3.0])
    """
    # np.copyto would broadcast a one-element parameter over a longer view, or
    # widen float32 into a float64 buffer, and the parameter would silently
    # change shape or dtype; the arena's views must match it exactly.
    for name, view in (("data", data), ("grad", grad)):
        if not isinstance(view, np.ndarray) or view.dtype != param.data.dtype:
            got = view.dtype if isinstance(view, np.ndarray) else type(view).__name__
            raise TypeError(f"adopt_storage: {name} must be a {param.data.dtype} numpy.ndarray "
                            f"(the parameter's dtype), got {got}")
        if view.shape != param.data.shape:
            raise ValueError(f"adopt_storage: {name} must have the parameter's shape "
                             f"{param.data.shape}, got {view.shape}")
    np.copyto(data, param.data)
    param.data = data
    if isinstance(param, Parameter):
        param._grad_slot = grad
    if param.grad is not None:
        np.copyto(grad, param.grad.data, casting="unsafe")
        param.grad = Tensor._make(grad, None)


def mark_updated(param):
    """Record that ``param.data`` was changed in place (by an optimizer step).

    Autograd compares version counters when it backpropagates: a graph built
    before the update, which saved the old values, then raises instead of
    returning gradients for values the parameter no longer has.
    """
    param._bump_version()


class Buffer(Tensor):
    """Non-learned state saved with the model (``persistent=False``: not saved)."""
    __slots__ = ("persistent",)

    def __init__(self, data, persistent=True):
        arr = data.data if isinstance(data, Tensor) else _to_array(data, None)
        super().__init__(arr)
        self.persistent = persistent
