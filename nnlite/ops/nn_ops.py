"""Layer operations: linear, dropout, embedding and pad, each with its backward beside it.

``linear`` runs on the fused GEMM kernel (``act(x @ W.T + b)`` in one pass) and
sums its bias gradient with the blocked ``bias_grad`` kernel, so the result is
the same for any thread count. Every backward is written with differentiable
operations (or with Functions whose own backward is stated), so second
derivatives come out exact; linear's, when nothing records it, calls the same
kernels directly.
"""
import math
import numbers
import warnings

import numpy as np

from .._kernels import K
from ..autograd import Function, _mode, chosen_by, constant, is_grad_enabled
from ..random import _gen
from ..tensor import Tensor
from .indexing import GetItem
from .inplace import apply_in_place
from .linalg import _array, _wants_grad, matmul
from .pointwise import SELU_ALPHA, SELU_SCALE, ReluGrad
from .shape import expand, reshape


# ------------------------------------------------------------------ linear ---

class LinearFunction(Function):
    """y = x W^T + b on 2-D x (rows, in_features).

    dy/dx = g W,   dy/dW = g^T x,   dy/db = sum of g over rows,
    where g is the incoming gradient.

    When create_graph is off (``backward()``, the usual training step), the
    backward's own operations are not recorded (grad mode is off), and it calls
    the kernels directly (``_unrecorded_grads``): the same numbers, without the
    Python dispatch of the differentiable ops, which would record no node either.
    """
    activation = None

    def forward(self, x, weight, bias):
        # No ascontiguousarray here: the kernel reads any row- or column-major layout
        # (a transposed weight included) in place and copies only what BLAS cannot read.
        return K.linear_forward(x, weight, bias, self.activation)

    def backward(self, grad):
        if not is_grad_enabled():
            return _unrecorded_grads(self.inputs, grad.data)
        return self._grads(grad)

    def _grads(self, grad):
        x, weight, bias = self.inputs
        grad_x = matmul(grad, weight) if _wants_grad(x) else None
        grad_w = matmul(grad.mT, x) if _wants_grad(weight) else None
        grad_b = BiasGrad.apply(grad) if _wants_grad(bias) else None
        return grad_x, grad_w, grad_b


def _unrecorded_grads(inputs, g):
    """Linear's three gradients from the array ``g``, straight from the kernels.

    For a backward that is not recorded (create_graph off): the same products
    as ``LinearFunction._grads``, with dW = g^T x read by BLAS with g
    transposed in place (trans_a).
    """
    x, weight, bias = inputs
    return (constant(K.gemm(g, _array(weight))) if _wants_grad(x) else None,
            constant(K.gemm(g, _array(x), True)) if _wants_grad(weight) else None,
            constant(K.bias_grad(g)) if _wants_grad(bias) else None)


class LinearReLUFunction(LinearFunction):
    """relu(x W^T + b) in one kernel pass; the gradient is first masked where the output is 0."""
    activation = "relu"
    save_output = True   # the mask comes from the output; plain Linear saves nothing extra

    def backward(self, grad):
        if not is_grad_enabled():
            return _unrecorded_grads(self.inputs, K.relu_backward(grad.data, self.out.data))
        # the mask comes from the pre-activation, which x, W and b all move: zero to each of them
        return self._grads(chosen_by(ReluGrad.apply(grad, self.out.detach()), self.out))


class BiasGrad(Function):
    """Column sums of 2-D g (the bias gradient); its adjoint copies a row back to every row."""
    saves_inputs = False

    def forward(self, g):
        self.rows = g.shape[0]
        return K.bias_grad(np.ascontiguousarray(g))

    def backward(self, gg):
        return expand(reshape(gg, (1, gg.shape[0])), (self.rows, gg.shape[0]))


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` over any leading dims (PyTorch's ``F.linear``)."""
    return _linear(LinearFunction, input, weight, bias)


def linear_relu(input, weight, bias=None):
    """``relu(linear(input, weight, bias))`` in one kernel pass (an nnlite addition, opt-in).

    The bias and the ReLU are applied in the GEMM's epilogue, while the output
    is still in cache, and the graph gets one node instead of two. Nothing calls
    it behind your back: ``nn.Linear`` followed by ``nn.ReLU`` runs as two
    operations; a ``forward`` that wants the fused pass calls this function.
    """
    return _linear(LinearReLUFunction, input, weight, bias)


def _linear(function, input, weight, bias):
    if not _mode.enabled:
        # Nothing is recorded (no_grad, inference): the kernel's result without a graph node
        # and without Function.apply. At batch size 1 the Python around a small product (a
        # few microseconds a layer) is a large part of its latency. The kernel checks its
        # operands; anything it refuses (a float16 model, a shape mistake) takes the general
        # path below, which handles it or names the mistake in F.linear's words.
        x, w, b = _array(input), _array(weight), _array(bias)
        try:
            if x.ndim == 2:
                return Tensor._make(K.linear_forward(x, w, b, function.activation), None)
            return _unrecorded_linear(function.activation, x, w, b)
        except (TypeError, ValueError):
            pass
    # One shape read and one comparison on the way in, for the same reason.
    shape, weight_shape = input.shape, weight.shape
    if len(weight_shape) != 2 or not shape or shape[-1] != weight_shape[1]:
        _raise_linear_shapes(input, weight)
    if input.dtype != weight.dtype:
        raise TypeError(f"linear: input is {input.dtype} but weight is {weight.dtype}; convert one "
                        "(e.g. model.double() or x.float())")
    if len(shape) == 2:
        return function.apply(input, weight, bias)
    # Any leading dims: run on (rows, in_features) and give the leading dims back.
    y = function.apply(reshape(input, (-1, shape[-1])), weight, bias)
    return reshape(y, shape[:-1] + y.shape[-1:])


def _unrecorded_linear(activation, x, w, b):
    """act(x @ w.T + b) for arrays ``x`` of any number of leading dims; no graph."""
    if x.ndim == 0:
        raise ValueError("linear: a 0-dim input")   # the general path words the message
    y = K.linear_forward(x.reshape(-1, x.shape[-1]), w, b, activation)
    return Tensor._make(y.reshape(x.shape[:-1] + y.shape[-1:]), None)


def _raise_linear_shapes(input, weight):
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    got = input.shape[-1] if input.ndim else "no"
    raise ValueError(f"linear: weight {weight.shape} expects {weight.shape[1]} input features, "
                     f"input has {got} (shape {input.shape})")


# ----------------------------------------------------------------- dropout ---

class DropoutFunction(Function):
    """y = x * mask / (1 - p): zeroing is rescaled so the expected value stays x."""
    saves_inputs = False

    def forward(self, x, u, p):
        y, mask = K.dropout_forward(np.ascontiguousarray(x), u, p)
        self.noise = mask.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
        return y

    def backward(self, grad):
        return grad * constant(self.noise), None, None


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability ``p`` (in training) and scale the rest by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        if inplace:
            return apply_in_place(input, "dropout_", lambda x: x * 0.0)
        return input * 0.0
    u = _gen(generator).random(input.shape, dtype=input.dtype)
    if inplace:
        return apply_in_place(input, "dropout_", DropoutFunction.apply, u, float(p))
    return DropoutFunction.apply(input, u, float(p))


def _probability(op, p):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability must be in [0, 1], got {p!r}")
    return float(p)


def _times_noise(op, input, inplace, noise, shift=None):
    """``input * noise (+ shift)``, the noise (and shift) constants broadcast over ``input``;
    ``inplace=True`` writes the result into ``input``. Its gradient is ``grad * noise``."""
    noise, shift = constant(noise), constant(shift)

    def apply(x):
        return x * noise if shift is None else x * noise + shift
    return apply_in_place(input, op + "_", apply) if inplace else apply(input)


def _channel_dropout(op, input, p, training, inplace, generator, noise_shape):
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _times_noise(op, input, inplace, np.zeros((), input.dtype))
    keep = _gen(generator).random(noise_shape, dtype=input.dtype) >= p
    return _times_noise(op, input, inplace, keep.astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p)))


def dropout1d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels of (N, C, L) or unbatched (C, L) input with probability ``p``; scale the rest by 1/(1-p).

    Each channel ``input[n, c, :]`` is kept or dropped as a whole (Tompson et al.,
    2015): neighbouring positions of a feature map are correlated, so dropping
    single elements of one regularises little. ``generator`` (an nnlite addition)
    is the source of the masks; by default the seeded global one.
    """
    p = _probability("dropout1d", p)
    if input.ndim not in (2, 3):
        raise ValueError(f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape {tuple(input.shape)}")
    return _channel_dropout("dropout1d", input, p, training, inplace, generator, input.shape[:-1] + (1,))


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero whole channels ``input[n, c]`` of (N, C, H, W) input with probability ``p``; scale the rest by 1/(1-p).

    PyTorch's reading of other ranks is kept, with its warnings: a 3-D input is
    taken as (N, C, L), so each ``input[n, c, :]`` is one channel (for unbatched
    (C, H, W) input, add the batch dim: ``x.unsqueeze(0)``); any rank from 2
    drops ``input[i, j, ...]`` as a whole.
    """
    p = _probability("dropout2d", p)
    if input.ndim < 2:
        raise ValueError(f"dropout2d: expected a 4-D (N, C, H, W) input, got shape {tuple(input.shape)}: "
                         "channel dropout needs at least 2 dims")
    if input.ndim == 3:
        warnings.warn("dropout2d: a 3-D input is read as (N, C, L) and each input[n, c, :] is dropped as a "
                      "whole (1-D channel dropout); for an unbatched (C, H, W) image, add the batch dim or "
                      "use dropout1d for (N, C, L)", UserWarning, stacklevel=2)
    elif input.ndim != 4:
        warnings.warn(f"dropout2d: expected a 4-D (N, C, H, W) input, got {input.ndim}-D; PyTorch will refuse "
                      "this in a future release", UserWarning, stacklevel=2)
    noise_shape = input.shape[:2] + (1,) * (input.ndim - 2)
    return _channel_dropout("dropout2d", input, p, training, inplace, generator, noise_shape)


# The negative saturation value of SELU: what it gives as x -> -inf.
SELU_SATURATION = -SELU_SCALE * SELU_ALPHA


def alpha_dropout(input, p=0.5, training=False, inplace=False, generator=None):
    """Dropout that keeps SELU's mean 0 and variance 1 (Klambauer et al., 2017).

    A dropped element is set to SELU's saturation ``alpha' = -scale * alpha``
    instead of 0, and then ``y = a * (x * m + alpha' * (1 - m)) + b`` with
    ``a = ((1 - p) (1 + p alpha'^2))^(-1/2)`` and ``b = -a alpha' p`` restores
    mean and variance. PyTorch's default is ``training=False``.
    """
    p = _probability("alpha_dropout", p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _times_noise("alpha_dropout", input, inplace, np.zeros((), input.dtype))
    keep = (_gen(generator).random(input.shape, dtype=input.dtype) >= p).astype(input.dtype)
    a = 1.0 / math.sqrt((1.0 - p) * (1.0 + p * SELU_SATURATION ** 2))
    shift = a * SELU_SATURATION * (1.0 - keep) - a * SELU_SATURATION * p
    return _times_noise("alpha_dropout", input, inplace, keep * input.dtype.type(a), shift.astype(input.dtype))


# --------------------------------------------------------------- embedding ---

class EmbeddingFunction(Function):
    """out[...] = weight[indices[...]]: a row lookup (a one-hot matmul, without the matmul)."""
    saves_inputs = False

    def forward(self, weight, indices, padding_idx):
        self.indices, self.padding_idx, self.num = indices, padding_idx, weight.shape[0]
        return K.embedding_forward(np.ascontiguousarray(weight), indices)

    def backward(self, grad):
        return EmbeddingGrad.apply(grad, self.indices, self.num, self.padding_idx), None, None


class EmbeddingGrad(Function):
    """Scatter-add each gradient row into its table row (padding row excluded).

    Linear in grad; its adjoint is the lookup again, with padding positions zeroed.
    """
    saves_inputs = False

    def forward(self, grad, indices, num, padding_idx):
        self.indices, self.padding_idx = indices, padding_idx
        return K.embedding_backward(np.ascontiguousarray(grad), indices, num, padding_idx)

    def backward(self, gg):
        out = EmbeddingFunction.apply(gg, self.indices, -1)
        if self.padding_idx >= 0:
            keep = (self.indices != self.padding_idx)[..., None].astype(gg.dtype)
            out = out * constant(keep)
        return out, None, None, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` picked by the integer tensor ``input``; the padding row gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError("embedding: nnlite supports max_norm=None, scale_grad_by_freq=False and "
                         f"sparse=False only; got max_norm={max_norm}, "
                         f"scale_grad_by_freq={scale_grad_by_freq}, sparse={sparse}")
    idx = input.data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    num = weight.shape[0]
    if padding_idx is None:
        padding_idx = -1
    elif not -num <= padding_idx < num:
        raise ValueError(f"embedding: padding_idx must be within num_embeddings={num}, got {padding_idx}")
    else:
        padding_idx %= num
    return EmbeddingFunction.apply(weight, np.ascontiguousarray(idx, dtype=np.int64), padding_idx)


# --------------------------------------------------------------------- pad ---

class ConstantPad(Function):
    """Surround x with ``value``; the gradient is the centre cut back out."""
    saves_inputs = False

    def forward(self, x, widths, value):
        self.key = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=value)

    def backward(self, grad):
        return GetItem.apply(grad, self.key), None, None


def _pad_widths(ndim, pad):
    """PyTorch's pad tuple (last dim first: left, right, then the dim before...) as np.pad widths."""
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"pad: expected an even-length tuple covering at most {ndim} dims, got {pad}")
    for width in pad:
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)):
            raise TypeError(f"pad: widths must be ints, got {type(width).__name__} {width!r} in {pad}")
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return widths


def _crop(input, widths):
    """``input`` with the negative widths cut off its ends (PyTorch's negative padding)."""
    if all(lo >= 0 and hi >= 0 for lo, hi in widths):
        return input
    for d, ((lo, hi), size) in enumerate(zip(widths, input.shape)):
        if size + min(lo, 0) + min(hi, 0) < 0:
            raise ValueError(f"pad: negative widths ({lo}, {hi}) cut more than the {size} positions of dim {d} "
                             f"(shape {input.shape})")
    key = tuple(slice(max(-lo, 0), size - max(-hi, 0)) for (lo, hi), size in zip(widths, input.shape))
    return GetItem.apply(input, key)


def _pad_index(size, lo, hi, mode):
    """Source position of every output position along one dim for the non-constant modes.

    A negative width cuts positions off that end. Reflect and replicate read the
    input as it was (the cut positions can still be reflected or replicated);
    circular, as PyTorch does, cuts first and wraps around what is left.
    """
    if mode == "circular":
        start, kept = max(-lo, 0), size - max(-lo, 0) - max(-hi, 0)
        if kept < 0:
            raise ValueError(f"pad: negative widths ({lo}, {hi}) cut more than the {size} positions of the dim")
        if max(lo, hi, 0) > kept:
            raise ValueError(f"pad: circular padding ({lo}, {hi}) wraps around more than once: at most "
                             f"{kept} positions (of {size}, after the cropping) can be repeated at each end")
        return start + np.arange(-max(lo, 0), kept + max(hi, 0)) % max(kept, 1)
    if size + lo + hi <= 0:
        raise ValueError(f"pad: {mode} padding ({lo}, {hi}) of a dim of size {size} leaves "
                         f"{size + lo + hi} positions")
    pos = np.arange(-lo, size + hi)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    if lo >= size or hi >= size:
        raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than the dim size {size}")
    period = 2 * (size - 1)
    pos = np.abs(pos) % period if period else np.zeros_like(pos)
    return np.where(pos >= size, period - pos, pos)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dims; ``pad = (left, right, top, bottom, ...)`` as in PyTorch.

    Modes: 'constant' (with ``value``, default 0), 'reflect', 'replicate', 'circular'.
    A negative width removes that many positions from its end instead, as in PyTorch.
    Reflect widths must be smaller than the dim; circular ones at most its size.

    >>> import nnlite as nl
    >>> x = nl.tensor([[1.0, 2.0, 3.0]])
    >>> pad(x, (2, 1), mode="reflect").data.tolist(), pad(x, (-1, 1)).data.tolist()
    ([[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]], [[2.0, 3.0, 0.0]])
    """
    widths = _pad_widths(input.ndim, tuple(pad))
    if mode == "constant":
        input = _crop(input, widths)
        grown = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        return ConstantPad.apply(input, grown, 0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if value is not None and value != 0:
        raise ValueError(f"pad: value is only used with mode='constant', got value={value} with mode={mode!r}")
    dims = [d for d, w in enumerate(widths) if w != (0, 0)]
    index = [np.arange(n) for n in input.shape]
    for d in dims:
        if input.shape[d] == 0:
            raise ValueError(f"pad: cannot {mode}-pad dim {d} of size 0 (shape {input.shape})")
        index[d] = _pad_index(input.shape[d], *widths[d], mode)
    return GetItem.apply(input, np.ix_(*index))
