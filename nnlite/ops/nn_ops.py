"""Layer operations: linear and embedding, each with its backward beside it (dropout is in
``dropout.py``, padding in ``padding.py``).

``linear`` runs on the fused GEMM kernel (``act(x @ W.T + b)`` in one pass) and
sums its bias gradient with the blocked ``bias_grad`` kernel, so the result is
the same for any thread count. Every backward is written with differentiable
operations (or with Functions whose own backward is stated), so second
derivatives come out exact; linear's, when nothing records it, calls the same
kernels directly.
"""
import math

import numpy as np

from .._kernels import K
from ..autograd import Function, _mode, chosen_by, constant, is_grad_enabled, product_saved_versions
from ..tensor import Tensor
from .linalg import _array, _wants_grad, matmul
from .pointwise import ReluGrad
from .promotion import DTypeMismatchError
from .broadcasting import expand
from .shape import reshape


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
    _saved_versions = staticmethod(product_saved_versions)   # dx reads W, dW reads x, db reads neither

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
        # (_array's one line, written out: three calls of it were a tenth of this path's Python)
        x = input.data if isinstance(input, Tensor) else input
        w = weight.data if isinstance(weight, Tensor) else weight
        b = bias.data if isinstance(bias, Tensor) else bias
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
        raise DTypeMismatchError(f"linear: input is {input.dtype} but weight is {weight.dtype}; convert one "
                        "to the other's dtype (e.g. x.to(model.weight.dtype) or model.float())")
    if len(shape) == 2:
        return function.apply(input, weight, bias)
    # Any leading dims: run on (rows, in_features) and give the leading dims back (rows counted,
    # not -1, which NumPy cannot infer for 0 in_features).
    y = function.apply(reshape(input, (math.prod(shape[:-1]), shape[-1])), weight, bias)
    return reshape(y, shape[:-1] + y.shape[-1:])


def _unrecorded_linear(activation, x, w, b):
    """act(x @ w.T + b) for arrays ``x`` of any number of leading dims; no graph."""
    if x.ndim == 0:
        raise ValueError("linear: a 0-dim input")   # the general path words the message
    y = K.linear_forward(x.reshape(math.prod(x.shape[:-1]), x.shape[-1]), w, b, activation)
    return Tensor._make(y.reshape(x.shape[:-1] + y.shape[-1:]), None)


def _raise_linear_shapes(input, weight):
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    got = input.shape[-1] if input.ndim else "no"
    raise ValueError(f"linear: weight {weight.shape} expects {weight.shape[1]} input features, "
                     f"input has {got} (shape {input.shape})")


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
    if idx.ndim == 0:   # one index: one row, shape (embedding_dim,) as in PyTorch
        row = EmbeddingFunction.apply(weight, np.ascontiguousarray(idx, dtype=np.int64).reshape(1), padding_idx)
        return reshape(row, weight.shape[1:])
    return EmbeddingFunction.apply(weight, np.ascontiguousarray(idx, dtype=np.int64), padding_idx)
