"""Multi-head self-attention from one packed projection, as a single graph node.

MultiheadAttention's ``in_proj`` gives Q, K and V side by side in one (N, L, 3E)
array. ``packed_attention`` runs attention (``attention.py``'s computation) on
that array through one kernel, ``K.packed_attention_forward``, which reads the
heads in place and does all the steps of one head while its scores are in
cache; its backward, written out next to its forward, fills one (N, L, 3E)
gradient: no slice's gradient scattered into zeros, no three input gradients
added.
"""
import math
import numbers

import numpy as np

from .._kernels import K
from ..autograd import Function, constant, is_grad_enabled
from ..tensor import Tensor
from .attention import _blocks_a_whole_row
from .linalg import matmul
from .concatenation import cat
from .permutation import transpose
from .shape import reshape
from .softmax import SoftmaxGrad, scaled_softmax

__all__ = ["PackedAttention", "packed_attention"]


class PackedAttention(Function):
    """Multi-head self-attention read from one packed projection ``qkv`` = [Q | K | V], (N, L, 3E).

    ``qkv`` is what ``F.linear(x, in_proj_weight, in_proj_bias)`` gives a
    MultiheadAttention: Q, K and V side by side, each E = H * d columns, head h
    of each in its columns h*d .. (h+1)*d. For every batch item and head h:

        S_h = Q_h K_h^T                            (L, L) scores
        P_h = softmax(S_h * scale + bias)          bias: a constant (L, L) mask, or none
        O_h = P_h V_h                              output (N, L, E) = [O_1 | ... | O_H]

    The kernel (``K.packed_attention_forward``, ``_attention.pyx``) reads the
    heads where they lie in ``qkv``, takes them one at a time, and writes the
    output with its heads side by side, ready for ``out_proj``: one graph node
    where the composed path has slices, reshapes, transposes, two products, a
    softmax and a merge, and no (N, H, L, L) array of scores. The weights P are
    kept for backward only when a graph is recorded. With dO_h the incoming
    gradient's head h, the backward (``K.packed_attention_backward``) is

        dV_h = P_h^T dO_h,   dP_h = dO_h V_h^T,
        dS_h = scale * P_h * (dP_h - rowsum(dP_h * P_h))          (softmax's Jacobian)
        dQ_h = dS_h K_h,     dK_h = dS_h^T Q_h,

    written into the Q, K and V blocks of one new (N, L, 3E) gradient: every
    element is written once, so nothing is zero-filled or summed. These are the
    products and softmax steps the composed path runs; only dK is formed as
    dS^T Q where the composed path forms (Q^T dS)^T.

    A recorded backward (``create_graph=True``) writes the same formulas in
    differentiable operations, with P recomputed from ``qkv`` so that its
    dependence on ``qkv`` is in the graph: second derivatives are exact.
    """

    def forward(self, qkv, num_heads, bias, scale):
        self.num_heads, self.bias, self.scale = num_heads, bias, scale
        # only backward reads the weights: without a graph they are never stored
        out, self.weights = K.packed_attention_forward(qkv, num_heads, scale, bias, self.recording)
        return out

    def backward(self, grad):
        if is_grad_enabled():
            return self._recorded_grad(grad), None, None, None
        d_qkv = K.packed_attention_backward(grad.data, self.inputs[0].data, self.weights, self.num_heads,
                                            self.scale)
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
