"""Scaled dot-product attention, built from matmul and softmax.

    scores  = Q K^T * scale + bias          scale = 1 / sqrt(d_k) unless given
    weights = softmax(scores, dim=-1)       one distribution over keys per query
    output  = dropout(weights) V

No kernel of its own: both products are GEMMs and the softmax is the softmax
kernel (``scaled_softmax``: scaling the scores and adding a fixed (L, S) mask in
the same pass, when scale and mask are constants and the scores float32 or
float64), so the gradient is the chain rule through those differentiable
ops (and second derivatives come for free). Dividing by sqrt(d_k) keeps the scores at
unit variance when Q and K have unit-variance entries, so the softmax does not
saturate as the head size grows (Vaswani et al., 2017).

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a bool mask
is True where a query MAY attend to a key; a float mask is added to the scores
(0 keeps, -inf removes, anything else biases). ``is_causal`` lets query i see
keys 0..i (top-left aligned). A query that may see no key at all gets zero
weights and a zero output, as in PyTorch, instead of the NaN a plain softmax of
all -inf would give.

``packed_attention.py`` holds the same computation for self-attention from one
packed (N, L, 3E) projection, as a single graph node.
"""
import math
import numbers

import numpy as np

from ..tensor import Tensor, is_floating_dtype
from .elementwise_choice import where
from .linalg import matmul
from .dropout import dropout
from .broadcasting import expand
from .permutation import transpose
from .shape import reshape, unsqueeze
from .softmax import scaled_softmax, softmax

__all__ = ["scaled_dot_product_attention", "attention_with_weights"]

OP = "scaled_dot_product_attention"


def _check(query, key, value):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 2:
            raise ValueError(f"{OP}: {name} needs at least 2 dims (..., sequence, features), "
                             f"got shape {tuple(t.shape)}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{OP}: query has {query.shape[-1]} features but key has {key.shape[-1]} "
                         f"(shapes {tuple(query.shape)} and {tuple(key.shape)})")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{OP}: key has {key.shape[-2]} positions but value has {value.shape[-2]} "
                         f"(shapes {tuple(key.shape)} and {tuple(value.shape)})")


def _additive_bias(attn_mask, is_causal, L, S, dtype):
    """The mask as something to add to the scores: an ndarray (fixed) or a Tensor (learned bias)."""
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{OP}: pass either attn_mask or is_causal=True, not both")
        allowed = np.tril(np.ones((L, S), dtype=bool))
        return np.where(allowed, dtype.type(0), dtype.type(-np.inf))
    if attn_mask is None:
        return None
    m = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
    try:
        fits = np.broadcast_shapes(m.shape, (L, S))[-2:] == (L, S)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{OP}: attn_mask of shape {m.shape} does not broadcast to the "
                         f"(queries, keys) = ({L}, {S}) scores")
    if m.dtype == np.bool_:
        return np.where(m, dtype.type(0), dtype.type(-np.inf))
    if not is_floating_dtype(m.dtype):
        raise TypeError(f"{OP}: attn_mask must be bool or float, got {m.dtype}")
    if isinstance(attn_mask, Tensor):   # may be a learned bias: keep it in the graph
        return attn_mask if m.dtype == dtype else attn_mask.to(dtype)
    return m.astype(dtype, copy=False)


def _fits_one_pass(scores, scale, bias, L, S):
    """Whether the weights may come from one ``scaled_softmax`` pass, not three steps.

    The pass treats scale and bias as constants, so a learned one (a Tensor scale, a
    bias that requires grad) goes step by step, ``softmax(scores * scale + bias)``, to
    get its gradient; so does a bias per batch or head, which is not one (L, S) block.
    The pass rounds the scores as the steps do only in float32 and float64: float16 and
    bfloat16 scores, which the steps round to the narrow dtype after each one, go step
    by step as well. (The pass rounds a scale to the scores' dtype, a NumPy float64 one
    for float32 scores too, as PyTorch does with its float scale; the steps would
    promote those scores to float64.)
    """
    if not (scores.dtype == np.float32 or scores.dtype == np.float64):
        return False
    if not isinstance(scale, numbers.Real):
        return False
    return bias is None or (type(bias) is np.ndarray and bias.shape == (L, S) and bias.dtype == scores.dtype)


def attention_with_weights(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                           scale=None, generator=None):
    """(output, weights): the attention output and the (post-dropout) weights it used."""
    _check(query, key, value)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{OP}: dropout_p must be in [0, 1), got {dropout_p}")
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = matmul(query, transpose(key, -2, -1))
    bias = _additive_bias(attn_mask, is_causal, L, S, query.dtype)
    if isinstance(bias, Tensor) and not bias.requires_grad:
        bias = bias.data          # a fixed mask: no gradient to send it
    # Rows where every key is masked: softmax would be 0/0; give them zero weight instead.
    # Only a user's mask can do that (a causal row always sees key 0), so only then look,
    # and at the mask itself: it is (L, S), or a few of those, where the scores are N*H of them.
    dead = None
    if attn_mask is not None:
        dead = np.isneginf(bias.data if isinstance(bias, Tensor) else bias).all(axis=-1, keepdims=True)
    if dead is not None and dead.any():
        scores = scores * scale + bias
        zero = np.zeros((), scores.dtype)
        weights = where(dead, zero, softmax(where(dead, zero, scores), dim=-1))
    elif _fits_one_pass(scores, scale, bias, L, S):
        weights = scaled_softmax(scores, scale, bias)    # scale, mask and softmax in one pass
    else:
        scores = scores * scale
        weights = softmax(scores if bias is None else scores + bias, dim=-1)
    weights = dropout(weights, dropout_p, training=True, generator=generator)
    return matmul(weights, value), weights


def _repeat_heads(x, groups):
    """(..., H, S, E) -> (..., H * groups, S, E), each head repeated ``groups`` times in a row."""
    shape = tuple(x.shape)
    x = expand(unsqueeze(x, -3), shape[:-2] + (groups,) + shape[-2:])
    return reshape(x, shape[:-3] + (shape[-3] * groups,) + shape[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """softmax(Q K^T / sqrt(d_k) + mask) V over the last two dims; leading dims broadcast.

    Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).
    ``dropout_p`` drops attention weights whenever it is > 0 (as in PyTorch,
    this function has no train/eval mode: pass 0.0 when evaluating).
    ``enable_gqa``: grouped-query attention (Ainslie et al., 2023): key and value
    have fewer heads (dim -3) than the query; each is shared by a group of
    query heads, which shrinks the key/value projections and cache.

    >>> import nnlite as nl
    >>> q = k = v = nl.randn(2, 4, 5, 8)          # (batch, heads, sequence, head_dim)
    >>> scaled_dot_product_attention(q, k, v, is_causal=True).shape
    (2, 4, 5, 8)
    """
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.ndim < 3 or value.shape[-3] != hk:
            raise ValueError(f"{OP}: with enable_gqa, query heads ({hq}) must be a multiple of key heads "
                             f"({hk}), and value must have as many heads as key "
                             f"(shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)})")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
    return attention_with_weights(query, key, value, attn_mask, dropout_p, is_causal, scale)[0]


def _blocks_a_whole_row(bias):
    """Whether some query of the (L, S) additive mask may attend to no key (its row all -inf)."""
    return bool(np.isneginf(bias).all(axis=-1).any())
