"""Multi-head self-attention from one packed projection, as a single graph node.

MultiheadAttention's ``in_proj`` gives Q, K and V side by side in one (N, L, 3E)
array. ``packed_attention`` runs attention (``attention.py``'s computation, with
the same GEMM and softmax kernels) on strided views of that array, without
copying a head, and its backward, written out next to its forward, fills one
(N, L, 3E) gradient: no slice's gradient scattered into zeros, no three input
gradients added.
"""
import math
import numbers

import numpy as np

from .._kernels import K
from ..autograd import Function, constant, is_grad_enabled
from ..tensor import Tensor
from .attention import _blocks_a_whole_row
from .linalg import matmul
from .shape import cat, reshape, transpose
from .softmax import SoftmaxGrad, scaled_softmax

__all__ = ["PackedAttention", "packed_attention"]


def _packed_heads(qkv, num_heads):
    """The (N, H, L, d) heads of Q, K and V as strided views of an (N, L, 3E) array (no copies)."""
    n, length, width = qkv.shape
    rows = qkv.reshape(n, length, 3, num_heads, width // (3 * num_heads))
    return tuple(rows[:, :, i].transpose(0, 2, 1, 3) for i in range(3))


def _merged_heads(out, num_heads):
    """An (N, L, E) array seen as its (N, H, L, d) heads: writing these fills it."""
    n, length, width = out.shape
    return out.reshape(n, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


class PackedAttention(Function):
    """Multi-head self-attention read from one packed projection ``qkv`` = [Q | K | V], (N, L, 3E).

    ``qkv`` is what ``F.linear(x, in_proj_weight, in_proj_bias)`` gives a
    MultiheadAttention: Q, K and V side by side, each E = H * d columns, head h
    of each in its columns h*d .. (h+1)*d. For every batch item and head h:

        S_h = Q_h K_h^T                            (L, L) scores
        P_h = softmax(S_h * scale + bias)          bias: a constant (L, L) mask, or none
        O_h = P_h V_h                              output (N, L, E) = [O_1 | ... | O_H]

    The heads are strided views of ``qkv`` that the batched GEMM (K.bmm) reads
    where they lie, and the output is written with its heads side by side, ready
    for ``out_proj``: one graph node where the composed path has slices,
    reshapes, transposes, two products, a softmax and a merge. With dO_h the
    incoming gradient's head h (a view too), the backward is

        dV_h = P_h^T dO_h,   dP_h = dO_h V_h^T,
        dS_h = scale * P_h * (dP_h - rowsum(dP_h * P_h))          (softmax's Jacobian)
        dQ_h = dS_h K_h,     dK_h = dS_h^T Q_h,

    written into the Q, K and V blocks of one new (N, L, 3E) gradient: every
    element is written once, so nothing is zero-filled or summed. These are the
    products and the softmax kernel the composed path runs, in the same order;
    only dK is formed as dS^T Q where the composed path forms (Q^T dS)^T.

    A recorded backward (``create_graph=True``) writes the same formulas in
    differentiable operations, with P recomputed from ``qkv`` so that its
    dependence on ``qkv`` is in the graph: second derivatives are exact.
    """

    def forward(self, qkv, num_heads, bias, scale):
        self.num_heads, self.bias, self.scale = num_heads, bias, scale
        q, k, v = _packed_heads(qkv, num_heads)
        n, h, length, _ = q.shape
        rows = n * h * length
        scores = K.bmm(q, k, trans_b=True)
        weights = K.scaled_softmax_forward(scores.reshape(rows, length), scale, bias).reshape(scores.shape)
        if self.recording:   # only backward reads the weights
            self.weights = weights
        out = np.empty((n, length, qkv.shape[2] // 3), qkv.dtype)
        K.bmm(weights, v, out=_merged_heads(out, num_heads))   # written with its heads side by side
        return out

    def backward(self, grad):
        if is_grad_enabled():
            return self._recorded_grad(grad), None, None, None
        qkv, h = self.inputs[0].data, self.num_heads
        q, k, v = _packed_heads(qkv, h)
        p = self.weights
        length = p.shape[-1]
        rows = p.shape[0] * p.shape[1] * length   # (not p.size // length: the sequence may be empty)
        d_out = _merged_heads(grad.data, h)
        d_weights = K.bmm(d_out, v, trans_b=True)
        d_scores = K.softmax_backward(d_weights.reshape(rows, length), p.reshape(rows, length),
                                      self.scale).reshape(p.shape)
        d_qkv = np.empty(qkv.shape, qkv.dtype)
        dq, dk, dv = _packed_heads(d_qkv, h)
        K.bmm(p, d_out, trans_a=True, out=dv)   # each product written straight into its block
        K.bmm(d_scores, k, out=dq)
        K.bmm(d_scores, q, trans_a=True, out=dk)
        return constant(d_qkv), None, None, None

    def _recorded_grad(self, grad):
        qkv, h, scale = self.inputs[0], self.num_heads, self.scale
        n, length, width = qkv.shape
        d = width // (3 * h)
        packed = reshape(qkv, (n, length, 3, h, d))
        q, k, v = (transpose(packed[:, :, i], 1, 2) for i in range(3))
        p = scaled_softmax(matmul(q, transpose(k, 2, 3)), scale, self.bias)
        d_out = transpose(reshape(grad, (n, length, h, d)), 1, 2)
        d_scores = SoftmaxGrad.apply(matmul(d_out, transpose(v, 2, 3)), p, 3, scale)
        blocks = (matmul(d_scores, k), matmul(transpose(d_scores, 2, 3), q), matmul(transpose(p, 2, 3), d_out))
        return cat([reshape(transpose(b, 1, 2), (n, length, width // 3)) for b in blocks], 2)


def packed_attention(qkv, num_heads, bias=None, scale=None):
    """Self-attention of ``num_heads`` heads from a packed (N, L, 3E) [Q | K | V], as one graph node.

    ``bias`` is None or a constant (L, L) array added to the scaled scores (a
    causal mask: 0 where a query may attend, -inf where not; a row that is -inf
    everywhere is refused); ``scale`` defaults to 1 / sqrt(E / num_heads).
    Returns the (N, L, E) output with the heads side by side. See
    :class:`PackedAttention` for the math; MultiheadAttention calls this for
    self-attention when nothing asks for the composed path.

    >>> import nnlite as nl
    >>> qkv = nl.randn(2, 5, 3 * 8)                  # (batch, sequence, [Q | K | V]), E = 8
    >>> packed_attention(qkv, num_heads=2).shape
    (2, 5, 8)
    """
    name = "packed_attention"
    if not isinstance(num_heads, numbers.Integral) or isinstance(num_heads, bool):
        raise TypeError(f"{name}: num_heads must be a positive int, got {num_heads!r} "
                        f"({type(num_heads).__name__})")
    if num_heads < 1:
        raise ValueError(f"{name}: num_heads must be a positive int, got {num_heads}")
    if qkv.ndim != 3 or qkv.shape[2] % (3 * num_heads):
        raise ValueError(f"{name}: qkv must be (batch, sequence, 3 * embed_dim) with embed_dim divisible by "
                         f"num_heads={num_heads}, got shape {tuple(qkv.shape)}")
    if qkv.dtype not in (np.float32, np.float64):
        order = "" if qkv.dtype.isnative else " in the machine's byte order"
        raise TypeError(f"{name}: qkv must be float32 or float64{order}, got {qkv.dtype}")
    length = qkv.shape[1]
    if isinstance(bias, Tensor):
        if bias.requires_grad:
            raise TypeError(f"{name}: bias must be a constant (an ndarray or a Tensor that does not require "
                            "grad); for a learned bias use scaled_dot_product_attention")
        bias = bias.data
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.shape != (length, length) or bias.dtype != qkv.dtype:
            raise ValueError(f"{name}: bias must be an ({length}, {length}) {qkv.dtype} array, got "
                             f"{getattr(bias, 'shape', type(bias).__name__)} {getattr(bias, 'dtype', '')}")
        if _blocks_a_whole_row(bias):
            raise ValueError(f"{name}: bias blocks every key for some query (a row of -inf); such a query "
                             "gets zero weights only from scaled_dot_product_attention")
        bias = np.ascontiguousarray(bias)
    scale = 1.0 / math.sqrt(qkv.shape[2] // (3 * num_heads)) if scale is None else scale
    if not isinstance(scale, numbers.Real):
        raise TypeError(f"{name}: scale must be a real number, got {type(scale).__name__}")
    return PackedAttention.apply(qkv, num_heads, bias, scale)
