"""Write a traced nnlite model as an ONNX graph.

Each Function of the trace (see :mod:`nnlite.onnx.trace`) becomes one or a few
ONNX nodes; parameters and buffers become initializers under their dotted
names (a tied weight is one initializer read twice); arrays and numbers the
model made along the way (a causal mask, an attention scale) become constant
initializers. A Function the table below does not know stops the export with
its name, rather than writing a graph that computes something else.

Layers arrive as the operations they are made of: ``nn.Linear`` as ``Gemm``
(after the reshapes that ``F.linear`` itself does over more than two dims),
``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` as their
projections, ``MatMul``, ``Softmax``, ``LayerNormalization`` and residual
``Add`` (a self-attention that ran packed, as one ``PackedAttention``, is
written out as those operators too) — gathered into one ONNX function per layer type, so each layer is one
node of the graph (:mod:`nnlite.onnx.functions`). Because the graph is the record of
one pass, Python control flow is frozen at the branch the example input took.
A value computed from the input outside autograd (``detach()``, a comparison,
``.item()``) would be frozen the same way; the export therefore
runs the model again on random input values like the example's (and, when
``dynamic_axes`` leaves dimensions free, one longer along each of them), writes
each pass as a graph too, and stops, naming the operation, where a graph differs
from the example's.
An int8 :class:`~nnlite.quantization.QuantizedLinear` becomes quantize and
``DequantizeLinear`` nodes around a ``MatMul``: ``QuantizeLinear`` for a static
layer, ``DynamicQuantizeLinear`` for a dynamic one with 8-bit codes
(``reduce_range=False``). The 7-bit codes of a ``reduce_range=True`` layer
(:func:`~nnlite.quantization.quantize_dynamic`'s default, as PyTorch's) are
beyond ``DynamicQuantizeLinear``, so their batch range, scale, zero point and
codes are written out with ``ReduceMin``/``ReduceMax``, ``Round`` and ``Clip``
to 0..127.

Reshapes keep the leading (batch) dimension free (``-1``), and broadcasts use
ONNX's two-way broadcasting, so a graph exported with ``dynamic_axes`` on the
batch dimension runs on other batch sizes.

Indexing becomes ``Slice`` (ints and slices) or ``Gather``: one index array
among full slices (``index_select``, nearest and bilinear ``interpolate``), or
an ``np.ix_`` grid (``F.pad``'s reflect, replicate and circular modes), as one
``Gather`` per axis that is not read whole. Other advanced indexing stops the
export.
"""
import math

import numpy as np

from ..io.format import atomic_write
from ..tensor import Tensor
from .functions import DOMAIN, outline_groups
from .trace import op_name, trace

__all__ = ["export", "SUPPORTED_OPERATIONS", "ExportError"]


class ExportError(ValueError):
    """The model uses an operation (or an option of one) that has no ONNX translation here."""


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError('nnlite.onnx needs the onnx package: pip install "nnlite[onnx]"') from None
    return onnx, helper, numpy_helper


class GraphBuilder:
    """Names, nodes and initializers of the graph being written."""

    def __init__(self, traced, dtype, opset):
        self.onnx, self.helper, self.numpy_helper = _onnx()
        self.traced, self.dtype, self.opset = traced, dtype, opset
        self.values = {}          # id(Tensor) -> ONNX value name
        self.arrays = {}          # id(ndarray) -> ONNX value name (inputs and shared constants)
        self.nodes, self.initializers = [], []
        self.used = set()
        self.parameter_names = set()   # initializers holding the model's parameters and buffers
        self.operation = None          # the operation being written, and which one wrote what:
        self.node_operations, self.initializer_operations = [], []   # one entry a node, an initializer

    def fresh(self, hint):
        name, k = hint, 1
        while name in self.used:
            name, k = f"{hint}_{k}", k + 1
        self.used.add(name)
        return name

    def constant(self, array, hint="const"):
        name = self.fresh(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        self.initializer_operations.append(self.operation)
        return name

    def ints(self, values, hint="shape"):
        return self.constant(np.asarray(values, dtype=np.int64), hint)

    def node(self, op_type, inputs, hint=None, outputs=1, **attrs):
        names = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, **attrs))
        self.node_operations.append(self.operation)
        return names[0] if outputs == 1 else names

    def value(self, arg, like=None):
        """The ONNX name of a Function argument: a traced result, an input, a parameter or a constant."""
        if isinstance(arg, Tensor):
            if id(arg) in self.values:
                return self.values[id(arg)]
            if id(arg.data) in self.arrays:
                return self.arrays[id(arg.data)]
            name = self.traced.names.get(id(arg)) or self.traced.names.get(id(arg.data))
            out = self.constant(arg.data, name or "const")
            if name is not None:
                self.parameter_names.add(out)
            self.values[id(arg)] = out
            return out
        if isinstance(arg, np.ndarray):
            if id(arg) in self.arrays:
                return self.arrays[id(arg)]
            name = self.traced.names.get(id(arg))
            array = arg.astype(like) if name is None and arg.dtype.kind == "f" and like is not None else arg
            out = self.constant(array, name or "const")
            if name is not None:
                self.parameter_names.add(out)
            self.arrays[id(arg)] = out
            return out
        if isinstance(arg, (bool, int, float, np.number)):
            return self.constant(np.asarray(arg, dtype=like if like is not None else self.dtype), "scalar")
        raise ExportError(f"onnx export: cannot turn an argument of type {type(arg).__name__} into a graph value")


# ------------------------------------------------------------- converters ---
# Each converter gets the builder, the Function, and the result Tensor, and returns the
# ONNX name of the result. ``fn.inputs`` are the arguments the Function was applied to.

def _same(op_type):
    def convert(b, fn, out):
        return b.node(op_type, [b.value(a, out.dtype) for a in fn.inputs if a is not None])
    return convert


def _binary(op_type):
    def convert(b, fn, out):
        x, y = fn.inputs[:2]
        return b.node(op_type, [b.value(x, out.dtype), b.value(y, out.dtype)])
    return convert


def _identity(b, fn, out):
    return b.node("Identity", [b.value(fn.inputs[0])])


def _linear(b, fn, out):
    x, weight, bias = fn.inputs[:3]
    args = [b.value(x), b.value(weight)] + ([b.value(bias)] if bias is not None else [])
    y = b.node("Gemm", args, transB=1)
    return b.node("Relu", [y]) if op_name(fn) == "LinearReLU" else y


def _rsqrt(b, fn, out):
    return b.node("Reciprocal", [b.node("Sqrt", [b.value(fn.inputs[0])])])


def _silu(b, fn, out):
    x = b.value(fn.inputs[0])
    return b.node("Mul", [x, b.node("Sigmoid", [x])])


def _leaky_relu(b, fn, out):
    return b.node("LeakyRelu", [b.value(fn.inputs[0])], alpha=float(fn.inputs[1]))


def _elu(b, fn, out):
    # EluFunction(x, alpha, scale): ELU when scale is 1, else SELU (ONNX calls the scale gamma).
    x, alpha, scale = b.value(fn.inputs[0]), float(fn.inputs[1]), float(fn.inputs[2])
    if scale == 1.0:
        return b.node("Elu", [x], alpha=alpha)
    return b.node("Selu", [x], alpha=alpha, gamma=scale)


def _softplus(b, fn, out):
    # log(1 + e^(beta x)) / beta, and x itself where beta x > threshold, as nnlite computes it
    x, beta, threshold = b.value(fn.inputs[0]), float(fn.inputs[1]), float(fn.inputs[2])
    scaled = b.node("Mul", [x, b.value(beta, out.dtype)]) if beta != 1.0 else x
    curve = b.node("Softplus", [scaled])
    if beta != 1.0:
        curve = b.node("Div", [curve, b.value(beta, out.dtype)])
    return b.node("Where", [b.node("Greater", [scaled, b.value(threshold, out.dtype)]), x, curve])


def _clamp(b, fn, out):
    # Max then Min, not Clip: they broadcast tensor bounds and keep +-inf (Clip puts the
    # float type's largest value in for a bound left out)
    x, lo, hi = fn.inputs
    y = b.value(x)
    if lo is not None:
        y = b.node("Max", [y, b.value(lo, out.dtype)])
    if hi is not None:
        y = b.node("Min", [y, b.value(hi, out.dtype)])
    return y


def _sign(b, fn, out):
    return b.node("Sign", [b.value(fn.inputs[0])])


def _prelu(b, fn, out):
    return b.node("PRelu", [b.value(fn.inputs[0]), b.value(fn.inputs[1])])


def _hardtanh(b, fn, out):
    # hardtanh and relu6 (hardtanh with bounds 0 and 6) are a Clip with the bounds as inputs
    x, min_val, max_val = fn.inputs
    return b.node("Clip", [b.value(x), b.value(min_val, out.dtype), b.value(max_val, out.dtype)])


def _hardsigmoid(b, fn, out):
    return b.node("HardSigmoid", [b.value(fn.inputs[0])], alpha=1 / 6, beta=0.5)


def _logsigmoid(b, fn, out):
    # log(sigmoid(x)) = -softplus(-x); ONNX has no LogSigmoid operator
    return b.node("Neg", [b.node("Softplus", [b.node("Neg", [b.value(fn.inputs[0])])])])


def _mish(b, fn, out):
    # Mish is an ONNX operator from opset 18; before that, its formula x * tanh(softplus(x))
    x = b.value(fn.inputs[0])
    if b.opset >= 18:
        return b.node("Mish", [x])
    return b.node("Mul", [x, b.node("Tanh", [b.node("Softplus", [x])])])


def _gelu(b, fn, out):
    # GELU is an ONNX operator only from opset 20: write its formula.
    x, approximate = b.value(fn.inputs[0]), fn.inputs[1]
    half = b.node("Mul", [x, b.value(0.5, out.dtype)])
    if approximate == "tanh":
        cube = b.node("Mul", [b.node("Mul", [x, x]), x])
        inner = b.node("Add", [x, b.node("Mul", [cube, b.value(0.044715, out.dtype)])])
        t = b.node("Tanh", [b.node("Mul", [inner, b.value(math.sqrt(2 / math.pi), out.dtype)])])
    else:
        t = b.node("Erf", [b.node("Mul", [x, b.value(1 / math.sqrt(2), out.dtype)])])
    return b.node("Mul", [half, b.node("Add", [t, b.value(1.0, out.dtype)])])


def _softmax(op_type):
    def convert(b, fn, out):
        return b.node(op_type, [b.value(fn.inputs[0])], axis=int(fn.inputs[1]))
    return convert


def _scaled_softmax(b, fn, out):
    x, scale, bias = fn.inputs[:3]
    return _softmax_of_scaled(b, b.value(x), scale, bias, out.dtype)


def _softmax_of_scaled(b, scores, scale, bias, dtype):
    # attention's softmax(scores * scale + mask): the three ONNX operators it stands for
    scores = b.node("Mul", [scores, b.value(scale, dtype)])
    if bias is not None:
        scores = b.node("Add", [scores, b.value(bias, dtype)])
    return b.node("Softmax", [scores], axis=-1)


def _packed_attention(b, fn, out):
    # MultiheadAttention's packed self-attention: the heads of Q, K and V out of the one
    # (N, L, 3E) projection, softmax(Q K^T * scale + mask) V per head, the heads merged again.
    qkv, heads, bias, scale = fn.inputs[:4]
    length, width = qkv.shape[1], qkv.shape[2]
    e = width // 3
    x = b.value(qkv)

    def head_block(i, perm):   # columns i*E .. (i+1)*E as (N, L, H, d), then permuted
        block = b.node("Slice", [x, b.ints([i * e]), b.ints([(i + 1) * e]), b.ints([2])])
        return b.node("Transpose", [b.node("Reshape", [block, b.ints([-1, length, heads, e // heads])])],
                      perm=perm)

    q, k_t, v = head_block(0, [0, 2, 1, 3]), head_block(1, [0, 2, 3, 1]), head_block(2, [0, 2, 1, 3])
    weights = _softmax_of_scaled(b, b.node("MatMul", [q, k_t]), scale, bias, out.dtype)
    heads_out = b.node("MatMul", [weights, v])
    merged = b.node("Transpose", [heads_out], perm=[0, 2, 1, 3])
    return b.node("Reshape", [merged, b.ints([-1, length, e])])


def _sum(b, fn, out):
    x, dims, keepdim = fn.inputs
    if not dims:   # a 0-dim tensor: nothing to sum over
        return b.node("Identity", [b.value(x)])
    return b.node("ReduceSum", [b.value(x), b.ints(list(dims))], keepdims=int(bool(keepdim)))


def _root(b, fn, out):
    # a norm's s ** (1/p); only its gradient at s = 0 is special, and a graph has none
    x, p = b.value(fn.inputs[0]), float(fn.inputs[1])
    if p == 2.0:
        return b.node("Sqrt", [x])
    return b.node("Pow", [x, b.value(1.0 / p, out.dtype)])


def _reshape(b, fn, out):
    shape = list(out.shape)
    if shape:
        shape[0] = -1   # the batch dimension stays free; the others are fixed by the trace
    return b.node("Reshape", [b.value(fn.inputs[0]), b.ints(shape)])


def _permute(b, fn, out):
    ndim = out.ndim
    return b.node("Transpose", [b.value(fn.inputs[0])], perm=[int(d) % ndim for d in fn.inputs[1]])


def _expand(b, fn, out):
    x = fn.inputs[0]
    in_shape = (1,) * (out.ndim - x.ndim) + tuple(x.shape)
    # ONNX broadcasts both ways: a 1 keeps the input's size, so a free batch size survives.
    shape = [1 if i == o else o for i, o in zip(in_shape, out.shape)]
    return b.node("Expand", [b.value(x), b.ints(shape)])


def _cast(b, fn, out):
    return b.node("Cast", [b.value(fn.inputs[0])], to=b.helper.np_dtype_to_tensor_dtype(np.dtype(fn.inputs[1])))


def _cat(b, fn, out):
    return b.node("Concat", [b.value(a) for a in fn.inputs], axis=int(fn.dim))


def _gathers(x, items):
    """[(axis, indices)] when ``items`` read whole positions along some axes, each axis on its own:
    one integer array among full slices (``index_select``), or an ``np.ix_`` grid of them
    (F.pad's reflect and replicate modes); None for any other advanced index."""
    arrays = [(i, k) for i, k in enumerate(items) if isinstance(k, np.ndarray)]
    if not arrays or len(items) > x.ndim or any(k.dtype.kind not in "iu" for _, k in arrays) or any(
            not isinstance(k, np.ndarray) and k != slice(None) for k in items):
        return None
    if len(arrays) == 1:
        return [(arrays[0][0], arrays[0][1])]
    grid = len(arrays)   # np.ix_: the j-th array has its values along its own dim j, size 1 elsewhere
    if any(k.ndim != grid or any(n != 1 for d, n in enumerate(k.shape) if d != j)
           for j, (_, k) in enumerate(arrays)) or [i for i, _ in arrays] != list(range(grid)):
        return None
    return [(i, k.reshape(-1)) for i, k in arrays]


def _getitem(b, fn, out):
    x, key = fn.inputs[0], fn.key
    items = key if isinstance(key, tuple) else (key,)
    gathers = _gathers(x, items)
    if gathers is not None:
        y = b.value(x)
        for axis, indices in gathers:
            if not np.array_equal(indices, np.arange(x.shape[axis])):   # an axis read whole needs no node
                y = b.node("Gather", [y, b.ints(indices % x.shape[axis])], axis=axis)
        return y if y != b.value(x) else b.node("Identity", [y])
    if not all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in items):
        raise ExportError(f"onnx export: indexing with {key!r} (advanced indexing) is not supported")
    if Ellipsis in items:
        i = items.index(Ellipsis)
        used = sum(1 for k in items if k is not None and k is not Ellipsis)
        items = items[:i] + (slice(None),) * (x.ndim - used) + items[i + 1:]
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = 0
    for k in items:
        if k is None:
            unsqueeze.append(dim + len(unsqueeze) - len(squeeze))
            continue
        size = x.shape[dim]
        if isinstance(k, slice):
            start, stop, step = k.indices(size)
            if (start, stop, step) != (0, size, 1):
                if step < 0 and stop < 0:
                    stop = -size - 1   # "to the front", which indices() spells -1
                starts.append(start), ends.append(stop), axes.append(dim), steps.append(step)
        else:
            i = int(k) % size
            starts.append(i), ends.append(i + 1), axes.append(dim), steps.append(1)
            squeeze.append(dim)
        dim += 1
    y = b.value(x)
    if axes:
        y = b.node("Slice", [y, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    if squeeze:
        y = b.node("Squeeze", [y, b.ints(squeeze)])
    if unsqueeze:
        y = b.node("Unsqueeze", [y, b.ints(unsqueeze)])
    return y if y != b.value(x) else b.node("Identity", [y])


def _embedding(b, fn, out):
    weight, indices = fn.inputs[:2]
    return b.node("Gather", [b.value(weight), b.value(indices)], axis=0)


def _conv2d(b, fn, out):
    x, weight, bias, (stride, padding, dilation, groups) = fn.inputs
    args = [b.value(x), b.value(weight)] + ([b.value(bias)] if bias is not None else [])
    if weight.ndim == 3:   # a 1-D convolution: its geometry is (height 1, length) for the 2-D kernels
        y = b.node("Conv", args, kernel_shape=list(weight.shape[2:]), strides=[stride[1]],
                   pads=[padding[1], padding[1]], dilations=[dilation[1]], group=groups)
    else:
        y = b.node("Conv", args, kernel_shape=list(weight.shape[2:]), strides=list(stride),
                   pads=[padding[0], padding[1], padding[0], padding[1]], dilations=list(dilation), group=groups)
    return b.node("Relu", [y]) if op_name(fn) == "Conv2dReLU" else y


def _conv_transpose2d(b, fn, out):
    x, weight, out_shape, (stride, padding, dilation, groups) = fn.inputs
    # the output size ONNX would give without output_padding, and what the recorded call asked for
    kernel, spatial, wanted = weight.shape[2:], x.shape[2:], out_shape[2:]
    if weight.ndim == 3:   # a 1-D transposed convolution: its geometry is (height 1, length)
        stride, padding, dilation = stride[1:], padding[1:], dilation[1:]
    smallest = [(i - 1) * s - 2 * p + d * (k - 1) + 1
                for i, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)]
    return b.node("ConvTranspose", [b.value(x), b.value(weight)], kernel_shape=list(kernel),
                  strides=list(stride), pads=list(padding) * 2, dilations=list(dilation), group=groups,
                  output_padding=[w - m for w, m in zip(wanted, smallest)])


def _constant_pad(b, fn, out):
    x, widths, value = fn.inputs
    args = [b.value(x), b.ints([lo for lo, _ in widths] + [hi for _, hi in widths], "pads")]
    if value != 0:
        args.append(b.constant(np.asarray(value, dtype=out.dtype), "pad_value"))
    return b.node("Pad", args)


def _pool_geometry(x, kernel, stride, padding, dilation, ceil_mode, opset, count_include_pad=False):
    """``(zeros, pads, ceil_mode)`` of an ONNX pool with PyTorch's windows: ``zeros`` (None, or
    the begin and end widths of a zero ``Pad`` written before the pool) and the pool's own
    ``pads`` and ``ceil_mode``.

    In ceil mode PyTorch drops a last window that would start in the right padding; ONNX
    pools drop it only from opset 22 and before that make one window more. Such a pool is
    written with the end padding its last window reaches, in ceil or in floor mode
    (onnxruntime wants every pad shorter than the kernel). Max pooling never picks the
    padding and an average that counts no padding never sees it; an average that counts it
    counts it only up to ``padding`` past the input, so that part becomes real zeros first.
    """
    if not ceil_mode or opset >= 22:
        return None, list(padding) * 2, ceil_mode
    reaches, dropped = [], False
    for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation):
        windows = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1   # ceil mode as ONNX counts before opset 22
        if (windows - 1) * s >= n + p:                         # PyTorch: that last window starts in the padding
            windows, dropped = windows - 1, True
        reaches.append((windows - 1) * s - p + d * (k - 1) + 1 - n)   # how far past the input the last one ends
    if not dropped:
        return None, list(padding) * 2, ceil_mode
    begin = list(padding)
    zeros = None
    if count_include_pad:
        right = [max(0, min(p, r)) for p, r in zip(padding, reaches)]
        zeros, begin = (list(padding), right), [0] * len(padding)
        reaches = [r - z for r, z in zip(reaches, right)]
    for mode in (True, False):
        # ceil mode counts the windows PyTorch does for an end pad in [reach - stride + 1, reach],
        # floor mode for one in [reach, reach + stride - 1]
        ends = [max(r - s + 1 if mode else r, 0) for r, s in zip(reaches, stride)]
        if all(e <= (r if mode else r + s - 1) and e < k for e, r, s, k in zip(ends, reaches, stride, kernel)):
            return zeros, begin + ends, mode
    raise ExportError(f"onnx export: a ceil_mode pool (kernel {tuple(kernel)}, stride {tuple(stride)}, padding "
                      f"{tuple(padding)}) on {tuple(x.shape[2:])} has no ONNX form before opset 22; "
                      "export with opset=22")


def _max_pool2d(b, fn, out):
    kernel, stride, padding, dilation, ceil_mode = fn.inputs[1]
    x = fn.inputs[0]
    _, pads, ceil_mode = _pool_geometry(x, kernel, stride, padding, dilation, ceil_mode, b.opset)
    return b.node("MaxPool", [b.value(x)], kernel_shape=list(kernel), strides=list(stride), pads=pads,
                  dilations=list(dilation), ceil_mode=int(ceil_mode))


def _avg_pool2d(b, fn, out):
    kernel, stride, padding, ceil_mode, count_include_pad, divisor_override = fn.inputs[1]
    if divisor_override is not None:
        raise ExportError("onnx export: avg_pool2d with divisor_override has no ONNX AveragePool equivalent")
    x = fn.inputs[0]
    zeros, pads, ceil_mode = _pool_geometry(x, kernel, stride, padding, (1, 1), ceil_mode, b.opset,
                                            count_include_pad)
    xv = b.value(x)
    if zeros is not None:   # the padding PyTorch counts, as real zeros; the pool counts none
        before, after = zeros
        xv = b.node("Pad", [xv, b.ints([0, 0] + before + [0, 0] + after, "pads")])
        count_include_pad = False
    return b.node("AveragePool", [xv], kernel_shape=list(kernel), strides=list(stride), pads=pads,
                  ceil_mode=int(ceil_mode), count_include_pad=int(count_include_pad))


def _batch_norm(b, fn, out):
    x, weight, bias, running_mean, running_var, training, _, eps = fn.inputs
    if training or running_mean is None:
        raise ExportError("onnx export: batch norm with batch statistics (training mode or "
                          "track_running_stats=False) cannot be exported; the model is traced in eval mode")
    c = x.shape[1]
    scale = b.value(weight) if weight is not None else b.constant(np.ones(c, out.dtype), "bn_scale")
    shift = b.value(bias) if bias is not None else b.constant(np.zeros(c, out.dtype), "bn_shift")
    y = b.node("BatchNormalization", [b.value(x), scale, shift, b.value(running_mean), b.value(running_var)],
               epsilon=float(eps))
    return b.node("Relu", [y]) if op_name(fn) == "BatchNormReLU" else y


def _normalized_dims(x, d):
    k, size = 0, 1
    while size < d:
        k += 1
        size *= x.shape[-k]
    return max(k, 1)


def _layer_norm(b, fn, out):
    x, weight, bias, d, eps = fn.inputs
    k = _normalized_dims(x, d)
    shape = tuple(x.shape[-k:])
    scale = (b.node("Reshape", [b.value(weight), b.ints(shape)]) if weight is not None
             else b.constant(np.ones(shape, out.dtype), "ln_scale"))
    args = [b.value(x), scale]
    if bias is not None:
        args.append(b.node("Reshape", [b.value(bias), b.ints(shape)]))
    return b.node("LayerNormalization", args, axis=-k, epsilon=float(eps))


def _group_norm(b, fn, out):
    # (N, C, *) -> (N, G, C/G * spatial), normalised per row, back, then the per-channel affine.
    x, groups, weight, bias, eps = fn.inputs
    n, c = x.shape[:2]
    row = int(np.prod(x.shape[1:])) // groups
    xv = b.value(x)
    rows = b.node("Reshape", [xv, b.ints([-1, groups, row])])
    normed = b.node("LayerNormalization", [rows, b.constant(np.ones(row, out.dtype), "gn_ones")],
                    axis=-1, epsilon=float(eps))
    y = b.node("Reshape", [normed, b.node("Shape", [xv])])
    channel = [c] + [1] * (x.ndim - 2)
    if weight is not None:
        y = b.node("Mul", [y, b.node("Reshape", [b.value(weight), b.ints(channel)])])
    if bias is not None:
        y = b.node("Add", [y, b.node("Reshape", [b.value(bias), b.ints(channel)])])
    return y


def _quantized_linear(b, fn, out):
    # The int8 layer as ONNX's quantize/dequantize pair around a float product: the input
    # quantized to uint8 with its batch's range (DynamicQuantizeLinear, the same formula as
    # nnlite's dynamic layers) or with the learned scale (QuantizeLinear), and the int8 weight
    # codes dequantized per output row. Mathematically the same sum nnlite forms in int32.
    layer, (x,) = fn.module, fn.inputs[:1]
    xv = b.value(x)
    if layer.dynamic and layer.reduce_range:
        x_float = _dynamic_7bit_input(b, xv)
    else:
        if layer.dynamic:
            q, scale, zero_point = b.node("DynamicQuantizeLinear", [xv], outputs=3)
        else:
            scale = b.constant(layer.input_scale.data.astype(np.float32).reshape(()), "input_scale")
            zero_point = b.constant(layer.input_zero_point.data.astype(np.uint8).reshape(()), "input_zero_point")
            q = b.node("QuantizeLinear", [xv, scale, zero_point])
        x_float = b.node("DequantizeLinear", [q, scale, zero_point])
    codes = b.value(layer.weight_int8)
    weight = b.node("DequantizeLinear", [codes, b.value(layer.weight_scale),
                                         b.constant(np.zeros(layer.out_features, np.int8), "weight_zero_point")],
                    axis=0)
    y = b.node("MatMul", [x_float, b.node("Transpose", [weight], perm=[1, 0])])
    if layer.bias is not None:
        y = b.node("Add", [y, b.value(layer.bias)])
    return b.node("Relu", [y]) if layer._relu else y   # QuantizedLinearReLU's ReLU runs in its kernel call


def _dynamic_7bit_input(b, xv):
    # DynamicQuantizeLinear always uses codes 0..255, so a reduce_range layer's 7-bit codes
    # (0..127) are written out as nnlite's kernel forms them, each step in float32:
    #   lo = min(min(x), 0), hi = max(max(x), 0), scale = max((hi - lo) / 127, eps),
    #   zero_point = clamp(-rint(lo / scale), 0, 127), codes = clamp(rint(x * (1 / scale)) + zero_point, 0, 127),
    # and the codes go to DequantizeLinear as uint8, as the 8-bit path's do. (A float input
    # to the MatMul would not do: onnxruntime fuses a MatMul of a dequantized int8 weight
    # with an 8-bit dynamic quantization of its other operand.)
    zero, top = b.constant(np.float32(0), "zero"), b.constant(np.float32(127), "qmax_7bit")
    lo = b.node("Min", [b.node("ReduceMin", [xv], keepdims=0), zero])
    hi = b.node("Max", [b.node("ReduceMax", [xv], keepdims=0), zero])
    eps = b.constant(np.finfo(np.float32).eps.astype(np.float32), "eps")
    scale = b.node("Max", [b.node("Div", [b.node("Sub", [hi, lo]), top]), eps], hint="input_scale")
    zero_point = b.node("Clip", [b.node("Neg", [b.node("Round", [b.node("Div", [lo, scale])])]), zero, top],
                        hint="input_zero_point")
    scaled = b.node("Mul", [xv, b.node("Reciprocal", [scale])])
    codes = b.node("Clip", [b.node("Add", [b.node("Round", [scaled]), zero_point]), zero, top])
    uint8 = b.onnx.TensorProto.UINT8
    return b.node("DequantizeLinear", [b.node("Cast", [codes], hint="input_codes", to=uint8), scale,
                                       b.node("Cast", [zero_point], to=uint8)])


def _dropout(b, fn, out):
    raise ExportError("onnx export: a dropout ran during the trace; dropout must be off (p=0 or eval mode)")


CONVERTERS = {
    "Linear": _linear, "LinearReLU": _linear, "MatMul": _binary("MatMul"),
    "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _binary("Mul"), "Div": _binary("Div"),
    "Pow": _binary("Pow"), "Neg": _same("Neg"), "Abs": _same("Abs"),
    "Exp": _same("Exp"), "Log": _same("Log"), "Sqrt": _same("Sqrt"), "Rsqrt": _rsqrt, "Sin": _same("Sin"),
    "Cos": _same("Cos"), "Erf": _same("Erf"),
    "Relu": _same("Relu"), "Tanh": _same("Tanh"), "Sigmoid": _same("Sigmoid"), "Silu": _silu,
    "Gelu": _gelu, "Softplus": _softplus, "LeakyRelu": _leaky_relu, "Elu": _elu,
    "Hardtanh": _hardtanh, "Hardsigmoid": _hardsigmoid, "Hardswish": _same("HardSwish"),
    "LogSigmoid": _logsigmoid, "Mish": _mish,
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"), "ScaledSoftmax": _scaled_softmax,
    "PackedAttention": _packed_attention,
    "Sum": _sum, "Root": _root, "Clamp": _clamp, "PRelu": _prelu, "Sign": _sign,
    "Reshape": _reshape, "Permute": _permute, "Expand": _expand, "Contiguous": _identity, "Clone": _identity,
    "Cast": _cast, "Cat": _cat, "GetItem": _getitem, "Embedding": _embedding,
    "Conv2d": _conv2d, "Conv2dReLU": _conv2d, "ConvTranspose2d": _conv_transpose2d, "ConstantPad": _constant_pad,
    "MaxPool2d": _max_pool2d, "AvgPool2d": _avg_pool2d,
    "BatchNorm": _batch_norm, "BatchNormReLU": _batch_norm, "LayerNorm": _layer_norm, "GroupNorm": _group_norm,
    "Dropout": _dropout,
    "QuantizedLinear": _quantized_linear, "QuantizedLinearReLU": _quantized_linear,
}

#: The nnlite operations the exporter translates (Conv1d and pooling in 1-D run as their 2-D forms).
SUPPORTED_OPERATIONS = tuple(sorted(k for k in CONVERTERS if k != "Dropout"))


def _dims(shape, axes):
    return [axes[i] if i in axes else int(s) for i, s in enumerate(shape)]


def _axis_names(spec):
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {int(k): str(v) for k, v in spec.items()}
    return {int(i): f"dim_{i}" for i in spec}   # a list of axes, as torch.onnx.export accepts


# ------------------------------------------------------ frozen input values ---
# A graph is the record of one pass. What the model computed from its input inside
# autograd is in the record as operations; what it computed outside (a detached
# tensor, a mask from a comparison, a number or an index read with .item())
# reaches the record only as constants: the example's values, frozen. So the model
# runs again on other input values and that pass is written as a graph too: it must
# be the same graph, node for node and constant for constant. When dimensions are left
# free (dynamic_axes: the batch, or any other), one more pass is one longer along each of
# them, so a constant or a shape that follows the example's sizes is found too.

def _other_values(example, longer_axes, rng):
    """Random input values of the example's dtype and shape, one longer along each axis in
    ``longer_axes``. Floats are drawn from the example's own values (so an input that is never
    negative stays so), each scaled by a random factor in [0.5, 1.5]; from a standard
    normal when the example is all zeros. Token ids are drawn between the example's
    smallest and largest id, from 0 to one more than the id when all are one id."""
    x = np.asarray(example.data if isinstance(example, Tensor) else example)
    shape = tuple(n + 1 if axis in longer_axes else n for axis, n in enumerate(x.shape))
    flat = x.ravel()
    if x.dtype.kind == "f":
        if not flat.size or not np.any(flat):
            return rng.standard_normal(shape).astype(x.dtype)
        return (rng.choice(flat, size=shape) * rng.uniform(0.5, 1.5, size=shape)).astype(x.dtype)
    low, high = (int(flat.min()), int(flat.max())) if flat.size else (0, 0)
    if low == high:
        low, high = min(low, 0), high + 1
    return rng.integers(low, high + 1, size=shape).astype(x.dtype)


def _first_difference(ours, theirs):
    """Where two written graphs (GraphBuilders) differ, in words; None when they are the same."""
    types = [[n.op_type for n in b.nodes] for b in (ours, theirs)]
    if types[0] != types[1]:
        at = next((i for i, (a, b) in enumerate(zip(*types)) if a != b), min(map(len, types)))
        return (f"the model ran other operations (from ONNX node {at} on: {types[0][at:at + 3]} against "
                f"{types[1][at:at + 3]}); control flow that follows the input cannot be one graph")
    for node, other, operation in zip(ours.nodes, theirs.nodes, ours.node_operations):
        if node.SerializeToString() != other.SerializeToString():
            return f"the operation {operation} was written with other attributes ({node.op_type})"
    if len(ours.initializers) != len(theirs.initializers):
        return "the model made another number of constants"
    for init, other, operation in zip(ours.initializers, theirs.initializers, ours.initializer_operations):
        if init.SerializeToString() != other.SerializeToString():
            where = f"the operation {operation}" if operation else "the model's output"
            return (f"a constant of {where} (shape {tuple(init.dims)}) changed: it was computed from the input "
                    "outside autograd (detach(), a comparison, .item(), no_grad), from its batch size "
                    "or another size dynamic_axes leaves free, or drawn at random, and the graph would "
                    "hold the example's")
    return None


def _refuse_what_the_example_decides(model, first, examples, free_axes, write):
    """Trace ``model`` on other input values (and, when ``free_axes`` — one set of axes per
    input — leaves any free, once more one longer along each of them), write each pass with
    ``write`` and stop the export where a graph differs from ``first``, the example's. The
    model's state (a buffer a layer moves in eval mode) is put back afterwards."""
    state = {name: value.data.copy() for name, value in model.state_dict().items()}
    rng = np.random.default_rng(0)
    only_batch = all(axes <= {0} for axes in free_axes)
    try:
        for longer in (False, True) if any(free_axes) else (False,):
            others = [_other_values(x, axes if longer else (), rng) for x, axes in zip(examples, free_axes)]
            how = "a batch left free by dynamic_axes, one row more" if only_batch else \
                "one longer along each axis dynamic_axes leaves free"
            what = f"input values of shapes {[o.shape for o in others]}" + (f" ({how})" if longer else "")
            try:
                other = write(trace(model, others))
            except Exception as error:
                raise ExportError(f"onnx export: on other {what} the model or its graph failed: "
                                  f"{type(error).__name__}: {error}") from error
            difference = _first_difference(first, other)
            if difference:
                raise ExportError(f"onnx export: on other {what}, {difference}")
    finally:
        for name, value in model.state_dict().items():
            value.data[...] = state[name]


def _write(traced, dtype, opset, input_names, output_names, dynamic_axes, functions):
    """The GraphBuilder of one trace, every operation converted, with the graph's inputs and
    outputs and, per node, the groups (layers written as ONNX functions) that made it."""
    helper = _onnx()[1]
    b = GraphBuilder(traced, dtype, int(opset))
    b.used.update(output_names)   # reserved: no operation's value may take a graph output's name
    graph_inputs = []
    for name, t in zip(input_names, traced.inputs):
        b.used.add(name)
        b.values[id(t)] = name
        b.arrays[id(t.data)] = name
        graph_inputs.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(t.data.dtype), _dims(t.shape, _axis_names(dynamic_axes.get(name)))))
    membership = {}
    for index, group in enumerate(traced.groups if functions else ()):
        for fn_id in group.functions:
            membership.setdefault(fn_id, set()).add(index)
    tags = []   # per node: the groups (layers written as functions) whose operations made it
    for fn, result in traced.functions:
        b.operation = name = op_name(fn)
        if name not in CONVERTERS:
            raise ExportError(f"onnx export: no ONNX translation for the operation {name}; supported: "
                              f"{', '.join(SUPPORTED_OPERATIONS)}")
        start = len(b.nodes)
        b.values[id(result)] = CONVERTERS[name](b, fn, result)
        tags.extend([membership.get(id(fn), set())] * (len(b.nodes) - start))
    b.operation = None
    graph_outputs = []
    for name, t in zip(output_names, traced.outputs):
        b.used.add(name)
        b.nodes.append(helper.make_node("Identity", [b.value(t)], [name]))
        b.node_operations.append(None)
        graph_outputs.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(t.data.dtype), _dims(t.shape, _axis_names(dynamic_axes.get(name)))))
    tags.extend([set()] * (len(b.nodes) - len(tags)))
    b.graph_inputs, b.graph_outputs, b.tags = graph_inputs, graph_outputs, tags
    return b


def export(model, example_input, path, opset=17, dynamic_axes=None, input_names=None, output_names=None,
           functions=True, *, opset_version=None):
    """Export ``model`` to the ONNX file ``path`` by tracing one forward pass on ``example_input``.

    ``example_input`` is a Tensor or array (or a tuple of them for a model with
    several inputs); integer inputs (token ids) become ``int64`` graph inputs.
    ``dynamic_axes`` follows ``torch.onnx.export``: ``{"input": {0: "batch"},
    "output": {0: "batch"}}`` leaves those dimensions free in the graph's
    signature. ``opset`` (``opset_version``, torch.onnx.export's name, is taken
    too) must be 17 or newer (``LayerNormalization``) and no newer than the
    installed ``onnx`` package's newest opset. The graph is checked with
    ``onnx.checker`` before it is written, and written atomically (an export that
    fails while writing leaves the previous file). Returns the ``onnx.ModelProto``.

    With ``functions=True`` (the default) every ``MultiheadAttention`` and
    ``TransformerEncoderLayer`` becomes one node calling an ONNX function of
    the ``nnlite`` domain (see :mod:`nnlite.onnx.functions`); ``False`` leaves
    their operations in the main graph.

    The model runs in eval mode on the example, which the graph records, and
    again on random values like it (and one longer along each dimension
    ``dynamic_axes`` leaves free), which must give the same graph: a value computed
    from the input outside autograd would otherwise be frozen into it. The
    model's state is put back after those passes. See :mod:`nnlite.onnx.exporter` for how
    each operation is written and :data:`SUPPORTED_OPERATIONS` for the list.
    """
    onnx, helper, _ = _onnx()
    if opset_version is not None:
        if opset not in (17, opset_version):   # 17: the default, not a choice
            raise TypeError(f"onnx export: got opset={opset} and opset_version={opset_version}; give one")
        opset = opset_version
    given, opset = opset, int(opset)
    if opset < 17:
        raise ValueError(f"onnx export: opset must be 17 or newer (LayerNormalization), got {given}")
    # An opset newer than the installed onnx package's is not yet released: onnx.checker
    # accepts it, but onnxruntime refuses to load the file.
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"onnx export: opset must be at most {newest} (the newest the installed onnx "
                         f"{onnx.__version__} knows), got {given}")
    examples = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    traced = trace(model, examples)
    dtype = next((p.data.dtype for p in model.parameters()), np.dtype(np.float32))
    input_names = list(input_names or (["input"] if len(examples) == 1 else
                                       [f"input_{i}" for i in range(len(examples))]))
    output_names = list(output_names or (["output"] if len(traced.outputs) == 1 else
                                         [f"output_{i}" for i in range(len(traced.outputs))]))
    if len(input_names) != len(examples) or len(output_names) != len(traced.outputs):
        raise ValueError(f"onnx export: {len(examples)} inputs and {len(traced.outputs)} outputs, but "
                         f"{len(input_names)} input_names and {len(output_names)} output_names")
    names = input_names + output_names
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"onnx export: every input and output needs its own name, but input_names "
                         f"{input_names} and output_names {output_names} repeat {repeated}")
    dynamic_axes = dynamic_axes or {}
    unknown = set(dynamic_axes) - set(input_names) - set(output_names)
    if unknown:
        raise ValueError(f"onnx export: dynamic_axes names {sorted(unknown)}, but the graph's inputs are "
                         f"{input_names} and its outputs {output_names}")
    for name, t in zip(input_names + output_names, list(traced.inputs) + list(traced.outputs)):
        outside = sorted(axis for axis in _axis_names(dynamic_axes.get(name)) if not 0 <= axis < t.ndim)
        if outside:
            raise ValueError(f"onnx export: dynamic_axes gives {name!r} axes {outside}, but it has "
                             f"{t.ndim} dimensions (shape {tuple(t.shape)}): axes 0..{t.ndim - 1}")

    def write(tr):
        return _write(tr, dtype, opset, input_names, output_names, dynamic_axes, functions)

    b = write(traced)
    _refuse_what_the_example_decides(model, b, examples,
                                     [set(_axis_names(dynamic_axes.get(name))) for name in input_names], write)
    nodes, onnx_functions = outline_groups(b, b.tags, traced.groups, input_names, output_names, opset) \
        if functions and traced.groups else (b.nodes, [])
    graph = helper.make_graph(nodes, type(model).__name__, b.graph_inputs, b.graph_outputs, b.initializers)
    opsets = [helper.make_opsetid("", int(opset))] + ([helper.make_opsetid(DOMAIN, 1)] if onnx_functions else [])
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="nnlite", functions=onnx_functions)
    onnx.checker.check_model(proto, full_check=True)
    # Written as checkpoints are (temporary file, fsync, rename): an export that fails or is
    # killed while writing leaves the previous file whole, not a truncated model.
    atomic_write(path, proto.SerializeToString())
    return proto
