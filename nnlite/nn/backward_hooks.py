"""Backward hooks of a module call: the gradients of all its inputs and outputs at once.

:meth:`~nnlite.nn.Module.register_full_backward_hook` and
:meth:`~nnlite.nn.Module.register_full_backward_pre_hook` register the hooks;
:class:`_BackwardHookCall` runs them for one call of the module, through
identity nodes around the call (its docstring draws the graph).
"""
import warnings

import numpy as np

from ..autograd import Function
from ..tensor import Tensor


class _Gather(Function):
    """The one node a group of wrapped tensors depends on (see :class:`_BackwardHookCall`).

    ``apply(*tensors, side)``: its output is a dummy scalar; each wrapped tensor is a
    :class:`_Pass` of it. Its backward runs once every wrapped tensor's gradient has
    been left in ``side.stash``, and returns those gradients (as ``side.finish``
    decides) to the tensors, plus None for ``side``.
    """
    saves_inputs = False

    def forward(self, *arrays):
        return np.zeros((), np.float32)

    def backward(self, grad):
        side = self.inputs[-1]
        stash, side.stash = side.stash, {}
        return side.finish(stash) + (None,)


class _Pass(Function):
    """``value`` unchanged, as the ``index``-th output of a :class:`_Gather` node.

    Backward leaves the gradient with the group and sends the gather node zero:
    the gradient goes on only when the whole group's is known.
    """
    saves_inputs = False

    def forward(self, token, value, index):
        return value

    def backward(self, grad):
        token, _, index = self.inputs
        token._ctx.inputs[-1].stash[index] = grad
        return Tensor._make(np.zeros((), np.float32), None), None, None


class _Side:
    """One side (inputs or outputs) of a hooked call: where its tensors sit, and their gradients."""

    def __init__(self, finish):
        self.finish = finish   # finish(stash) -> one gradient per wrapped tensor
        self.stash = {}
        self.positions = []    # where the wrapped tensors sit among the arguments (or outputs)
        self.wrapped = []

    def wrap(self, values):
        """``values`` with each Tensor that requires grad replaced by its wrapped twin."""
        tensors = [v for v in values if isinstance(v, Tensor) and v.requires_grad]
        if not tensors:
            return values
        token = _Gather.apply(*tensors, self)
        values = list(values)
        for i, v in enumerate(values):
            if isinstance(v, Tensor) and v.requires_grad:
                twin = _Pass.apply(token, v.data, len(self.positions))
                # One memory, one version counter: a Function that saved v sees a change
                # made through the twin.
                twin._version = v._version
                self.positions.append(i)
                self.wrapped.append((twin, v._version[0]))
                values[i] = twin
        return values


class _BackwardHookCall:
    """The backward hooks of one call of a module.

    Backward hooks need the gradients of *all* the module's inputs at once (and
    those of all its outputs before any of them goes on into the module), but the
    graph walk hands each tensor its gradient separately, one node at a time. So
    the call joins each group of tensors through one node, as PyTorch does with
    its ``BackwardHookFunction``::

        inputs  x1 x2 --> Gather --> token --> Pass -> x1' , Pass -> x2'  --> forward
        forward --> y1 y2 --> Gather --> token --> Pass -> y1' , Pass -> y2'  --> the caller

    Each ``Pass`` is the identity; its backward leaves its tensor's gradient in the
    group's stash and sends zero on to the token. The walk visits the ``Gather``
    node only after every ``Pass`` of its group (they all read its token), so its
    backward sees the whole group's gradients: on the output side it runs the
    pre-hooks on ``grad_output`` and keeps it; on the input side it runs the hooks
    on ``grad_input`` and the kept ``grad_output``. Each returns the (possibly
    replaced) gradients to the tensors it gathered, and the walk goes on.

    Being identities, the nodes change no value and no gradient, and backward
    through them is differentiable (``create_graph=True``) as any other.
    """

    def __init__(self, module):
        self.module = module
        self.inputs = _Side(self._finish_inputs)
        self.outputs = _Side(self._finish_outputs)
        self.args = ()
        self.n_outputs = 0
        self.grad_outputs = None

    def hooks(self, kind):
        return [hook for k, hook in list(self.module._backward_hooks.values()) if k == kind]

    def wrap_inputs(self, args):
        self.args = args
        return tuple(self.inputs.wrap(args))

    def check_inputs_unchanged(self):
        for twin, version in self.inputs.wrapped:
            if twin._version[0] != version:
                raise RuntimeError(
                    f"{type(self.module).__name__}: forward changed an input (shape {twin.shape}) in place, "
                    "which a module with backward hooks cannot allow (the hooks' gradients would be for "
                    "the changed value, and the caller's tensor changed behind its back, as PyTorch "
                    "refuses too); clone() the input inside forward before changing it")

    def wrap_outputs(self, out):
        if not isinstance(out, (Tensor, tuple)):
            warnings.warn("For backward hooks to be called, module output should be a Tensor or a tuple "
                          f"of Tensors but received {type(out)}", stacklevel=3)
            return out
        outputs = (out,) if isinstance(out, Tensor) else out
        self.n_outputs = len(outputs)
        wrapped = self.outputs.wrap(outputs)
        return wrapped[0] if isinstance(out, Tensor) else tuple(wrapped)

    def _finish_outputs(self, stash):
        grad_outputs = [None] * self.n_outputs
        for k, position in enumerate(self.outputs.positions):
            grad_outputs[position] = stash.get(k)
        grad_outputs = tuple(grad_outputs)
        grad_outputs = _replaced_by_hooks(self.hooks("pre"), lambda hook, current: hook(self.module, current),
                                          grad_outputs, "Backward pre hook", "grad_output")
        if not self.inputs.positions:   # no input requires grad: no later node to run the hooks at
            self._run_hooks_without_inputs(grad_outputs)
        else:
            self.grad_outputs = grad_outputs
        return tuple(grad_outputs[position] for position in self.outputs.positions)

    def _run_hooks_without_inputs(self, grad_outputs):
        hooks = self.hooks("full")
        if hooks:
            warnings.warn("Full backward hook is firing when gradients are computed with respect to module "
                          "outputs since no inputs require gradients.", stacklevel=2)
        grad_inputs = (None,) * len(self.args)
        for hook in hooks:
            result = hook(self.module, grad_inputs, grad_outputs)
            if result is not None and not all(g is None for g in _as_tuple(result)):
                raise RuntimeError("Backward hook for Modules where no input requires gradient should always "
                                   "return None or None for all gradients.")

    def _finish_inputs(self, stash):
        grads = [stash.get(k) for k in range(len(self.inputs.positions))]
        if self.grad_outputs is None:
            # The gradient reached the inputs without passing through the outputs (PyTorch skips too)
            return tuple(grads)
        grad_inputs = [None if not isinstance(a, Tensor) else Tensor._make(np.zeros_like(a.data), None)
                       for a in self.args]
        for k, position in enumerate(self.inputs.positions):
            if grads[k] is not None:
                grad_inputs[position] = grads[k]
        grad_inputs = tuple(grad_inputs)
        grad_inputs = _replaced_by_hooks(self.hooks("full"),
                                         lambda hook, current: hook(self.module, current, self.grad_outputs),
                                         grad_inputs, "Backward hook", "grad_input")
        self.grad_outputs = None
        return tuple(grad_inputs[position] for position in self.inputs.positions)


def _replaced_by_hooks(hooks, call, grads, who, what):
    """Pass the tuple ``grads`` through ``call(hook, grads)`` for each hook in turn; a hook that
    returns something replaces it, with a tuple of the same length (PyTorch's messages)."""
    for hook in hooks:
        result = call(hook, grads)
        if result is None:
            continue
        result = _as_tuple(result)
        if len(result) != len(grads):
            raise RuntimeError(f"{who} returned an invalid number of {what}, got {len(result)}, "
                               f"but expected {len(grads)}")
        grads = result
    return grads


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)
