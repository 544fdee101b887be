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
from ..nn.module import Module, modes_kept
from ..tensor import Tensor

__all__ = ["Trace", "trace", "MODULE_TYPES", "GROUPED_TYPES"]

#: Layers traced as a whole (by class name), because they compute outside autograd.
MODULE_TYPES = ("QuantizedLinear", "QuantizedLinearReLU")

#: Layers whose operations are written as one ONNX function each (see :mod:`nnlite.onnx.functions`).
GROUPED_TYPES = ("MultiheadAttention", "TransformerEncoderLayer")


class GroupedCall:
    """One call of a grouped layer: the layer, its dotted name, and the Functions it ran."""

    def __init__(self, module, name, inputs, outputs):
        self.module, self.name, self.inputs, self.outputs = module, name, inputs, outputs
        self.functions = set()   # ids of the Functions between its inputs and its outputs


class ModuleCall:
    """One call of a layer traced as a whole: stands in the walk where a Function would."""

    def __init__(self, module, inputs):
        self.module, self.inputs = module, inputs


class Trace:
    """What one forward pass did: the input, the outputs and the Functions in between."""

    def __init__(self, inputs, outputs, functions, names, groups=()):
        self.inputs = inputs          # the input Tensors, as the model saw them
        self.outputs = outputs        # the output Tensors
        self.functions = functions    # (function, result Tensor) pairs, inputs before results
        self.names = names            # id(parameter or buffer data) -> its dotted name
        self.groups = list(groups)    # GroupedCall per call of a grouped layer

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
    if not isinstance(model, Module):
        raise TypeError(f"onnx: expected an nn.Module to export, got {type(model).__name__}")
    inputs = [_as_input(x) for x in example_inputs]
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
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

    groups = []
    module_names = {id(m): n for n, m in model.named_modules()}

    def record_group(module, args, output):
        results = output if isinstance(output, (tuple, list)) else (output,)
        groups.append(GroupedCall(module, module_names.get(id(module), type(module).__name__),
                                  [a for a in args if isinstance(a, Tensor)],
                                  [r for r in results if isinstance(r, Tensor)]))
        return None

    keep = []
    hooks = [m.register_forward_hook(record) for m in model.modules() if type(m).__name__ in MODULE_TYPES]
    hooks += [m.register_forward_hook(record_group) for m in model.modules()
              if type(m).__name__ in GROUPED_TYPES]
    try:
        with modes_kept(model), enable_grad():
            model.eval()
            for p in params:
                p.requires_grad = True
            result = model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
        for p, flag in zip(params, flags):
            p.requires_grad = flag
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"onnx export: the model must return Tensors, got {type(out).__name__}")
    for group in groups:
        stop = {id(t) for t in group.inputs}
        group.functions = {id(fn) for fn, _ in _functions_in_order(group.outputs, calls, stop)}
    return Trace(inputs, outputs, _functions_in_order(outputs, calls), names, groups)


def _functions_in_order(outputs, calls=None, stop=()):
    """Every (Function, result) reachable from ``outputs``, each after the results it reads.

    ``calls`` maps id(output) -> :class:`ModuleCall` for the layers traced as a whole;
    the walk does not go past tensors whose id is in ``stop``.
    """
    calls = calls or {}
    order, seen = [], set()
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        t, expanded = stack.pop()
        if id(t) in stop:
            continue
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
            if producer is not None and id(producer) not in seen and id(a) not in stop:
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
