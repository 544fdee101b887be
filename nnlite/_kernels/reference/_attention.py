"""NumPy twins of the kernels in ``nnlite/_kernels/_attention.pyx``.

Multi-head self-attention read from one packed (N, L, 3E) array [Q | K | V]:
for every batch item and head, scores ``Q_h K_h^T``, their scaled and masked
softmax, and the weighted sum of ``V_h``; the backward gives the gradient of all
three blocks at once. The compiled kernel does these steps one (item, head) at a
time, so that a head's scores never leave the cache; here they run over all
heads at once, with the twins of the same product and softmax kernels.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises (the
products are equal to rounding).
"""
import numpy as np

from .. import checks
from ._gemm import bmm
from ._softmax import scaled_softmax_forward, softmax_backward

__all__ = ["packed_attention_backward", "packed_attention_forward"]


def _heads(qkv, num_heads):
    """The (N, H, L, d) heads of Q, K and V: strided views of the (N, L, 3E) array."""
    n, length, width = qkv.shape
    rows = qkv.reshape(n, length, 3, num_heads, width // (3 * num_heads))
    return tuple(rows[:, :, i].transpose(0, 2, 1, 3) for i in range(3))


def _merged(x, num_heads):
    """An (N, L, E) array seen as its (N, H, L, d) heads (a view: writing these fills it)."""
    n, length, width = x.shape
    return x.reshape(n, length, num_heads, width // num_heads).transpose(0, 2, 1, 3)


def packed_attention_forward(qkv, num_heads, scale, bias, save_weights):
    """Self-attention of ``num_heads`` heads from packed ``qkv``; returns (out, weights).

    For each item and head h: ``P_h = softmax(Q_h K_h^T * scale + bias)`` and
    ``O_h = P_h V_h``. ``out`` is (N, L, E) with the heads side by side;
    ``weights`` the (N, H, L, L) array of the P_h when ``save_weights``
    (backward reads it), else None. ``bias``: None or an (L, L) mask added to
    every head's scaled scores.
    """
    op = "packed_attention_forward"
    dtype, n, length, heads, d = checks.attention_operands(op, qkv, num_heads, bias)
    scale = checks.real_number(op, "scale", scale)
    save_weights = checks.flag(op, "save_weights", save_weights)
    out = np.empty((n, length, heads * d), dtype)
    if n * heads * length == 0 or (d == 0 and not save_weights):
        # no head has a position, or heads of width 0 and no weights asked for: nothing to compute
        return out, (np.empty((n, heads, length, length), dtype) if save_weights else None)
    q, k, v = _heads(qkv, heads)
    scores = bmm(q, k, trans_b=True)
    rows = n * heads * length
    weights = scaled_softmax_forward(scores.reshape(rows, length), scale, bias).reshape(scores.shape)
    bmm(weights, v, out=_merged(out, heads))
    return out, (weights if save_weights else None)


def packed_attention_backward(grad, qkv, weights, num_heads, scale):
    """The gradient of ``packed_attention_forward``'s output with respect to ``qkv``, (N, L, 3E).

    With dO_h the gradient's head h and P_h the saved weights:
    ``dV_h = P_h^T dO_h``, ``dP_h = dO_h V_h^T``,
    ``dS_h = scale * P_h * (dP_h - rowsum(dP_h * P_h))``,
    ``dQ_h = dS_h K_h``, ``dK_h = dS_h^T Q_h``, each written into its block.
    """
    op = "packed_attention_backward"
    dtype, n, length, heads, d = checks.attention_operands(op, qkv, num_heads, None, grad, weights, backward=True)
    scale = checks.real_number(op, "scale", scale)
    d_qkv = np.empty(qkv.shape, dtype)
    if d_qkv.size == 0:
        return d_qkv          # no batch item, no position, or heads of width 0
    q, k, v = _heads(qkv, heads)
    d_out = _merged(grad, heads)
    rows = n * heads * length
    d_weights = bmm(d_out, v, trans_b=True)
    d_scores = softmax_backward(d_weights.reshape(rows, length), weights.reshape(rows, length),
                                scale).reshape(weights.shape)
    dq, dk, dv = _heads(d_qkv, heads)
    bmm(weights, d_out, trans_a=True, out=dv)
    bmm(d_scores, k, out=dq)
    bmm(d_scores, q, trans_a=True, out=dk)
    return d_qkv
