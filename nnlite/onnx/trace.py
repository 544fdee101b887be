"""Record the graph of Functions one forward pass builds.

Autograd already writes down every operation a forward pass runs: each result
Tensor remembers the :class:`~nnlite.autograd.Function` that made it and that
Function's inputs (Tensors, arrays and plain options such as a convolution's
stride). Exporting a model is reading that record back, so the tracer runs the
model once in ``eval`` mode with graph recording forced on, and returns the
Functions from inputs to outputs.

A few layers compute outside autograd (the int8 :class:`~nnlite.quantization.QuantizedLinear`
runs an integer kernel and returns a plain Tensor). For the layer types named in
``MODULE_TYPES`` a forward hook records each call — the module, its input and its
output — and the walk steps from such an output to the module's input as if the
module were one Function.

Recording needs at least one input that requires a gradient. The example input
is given one when it is floating point; every parameter is made to require one
for the duration of the trace (frozen layers included) and restored afterwards,
so integer inputs (token ids) trace too.
"""
import numpy as np

from ..autograd import enable_grad
from ..tensor import Tensor

__all__ = ["Trace", "trace", "MODULE_TYPES"]

#: Layers traced as a whole (by class name), because they compute outside autograd.
MODULE_TYPES = ("QuantizedLinear",)


class ModuleCall:
    """One call of a layer traced as a whole: stands in the walk where a Function would."""

    def __init__(self, module, inputs):
        self.module, self.inputs = module, inputs


class Trace:
    """What one forward pass did: the input, the outputs and the Functions in between."""

    def __init__(self, inputs, outputs, functions, names):
        self.inputs = inputs          # the input Tensors, as the model saw them
        self.outputs = outputs        # the output Tensors
        self.functions = functions    # (function, result Tensor) pairs, inputs before results
        self.names = names            # id(parameter or buffer data) -> its dotted name

    def op_names(self):
        return [op_name(fn) for fn, _ in self.functions]


def op_name(fn):
    """The operation a Function computes: its class name without a ``Function`` suffix."""
    if isinstance(fn, ModuleCall):
        return type(fn.module).__name__
    name = type(fn).__name__
    return name[:-len("Function")] if name.endswith("Function") and name != "Function" else name


def _as_input(x):
    if isinstance(x, Tensor):
        x = x.data
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        # int64 and contiguous: embedding() then passes this very array on, so the
        # tracer can tell the model's token ids from an index array the model built itself.
        return Tensor(np.ascontiguousarray(x, dtype=np.int64))
    if x.dtype.kind != "f":
        raise TypeError(f"onnx export: example inputs must be floating point or integer, got {x.dtype}")
    return Tensor(np.array(x), requires_grad=True)


def trace(model, example_inputs):
    """Run ``model(*example_inputs)`` in eval mode and return its :class:`Trace`."""
    inputs = [_as_input(x) for x in example_inputs]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was_training = model.training
    names = {id(p): n for n, p in model.named_parameters()}
    names.update({id(b.data): n for n, b in model.named_buffers()})
    names.update({id(b): n for n, b in model.named_buffers()})
    calls = {}

    def record(module, args, output):
        if isinstance(output, Tensor):
            # A fresh leaf that requires a gradient, so the operations after the layer are
            # recorded too (its own output comes from outside autograd and would not be).
            output = Tensor(output.data, requires_grad=output.dtype.kind == "f")
            calls[id(output)] = ModuleCall(module, tuple(args))
            keep.append(output)   # ids stay unique while the trace lives
            return output
        return None

    keep = []
    hooks = [m.register_forward_hook(record) for m in model.modules() if type(m).__name__ in MODULE_TYPES]
    try:
        model.eval()
        for p in params:
            p.requires_grad = True
        with enable_grad():
            result = model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
        for p, flag in zip(params, flags):
            p.requires_grad = flag
        model.train(was_training)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"onnx export: the model must return Tensors, got {type(out).__name__}")
    return Trace(inputs, outputs, _functions_in_order(outputs, calls), names)


def _functions_in_order(outputs, calls=None):
    """Every (Function, result) reachable from ``outputs``, each after the results it reads.

    ``calls`` maps id(output) -> :class:`ModuleCall` for the layers traced as a whole.
    """
    calls = calls or {}
    order, seen = [], set()
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        t, expanded = stack.pop()
        fn = t._ctx if t._ctx is not None else calls.get(id(t))
        if fn is None:
            continue
        if expanded:
            order.append((fn, t))
            continue
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        stack.append((t, True))
        for a in reversed(_tensor_args(fn)):
            producer = a._ctx if a._ctx is not None else calls.get(id(a))
            if producer is not None and id(producer) not in seen:
                stack.append((a, False))
    return order


def _tensor_args(fn):
    args = []
    for a in fn.inputs:
        if isinstance(a, Tensor):
            args.append(a)
        elif isinstance(a, (tuple, list)):
            args.extend(x for x in a if isinstance(x, Tensor))
    return args
