r"""Grouped-query attention: fewer key/value heads than query heads (Ainslie et al., 2023).

In multi-head attention every one of the :math:`H` heads has its own query,
key and value projection, :math:`3 E^2` weights for width :math:`E`. Keys and
values turn out to be far more alike across heads than queries are, so
*grouped-query attention* (GQA) gives the :math:`H` query heads only
:math:`G` key/value heads, each shared by a group of :math:`H / G` query
heads. The key and value projections shrink from :math:`E \times E` to
:math:`E \times G d` (:math:`d = E / H`), and so does the cache of keys and
values a decoder keeps per token:

.. math::

    \text{parameters} = \underbrace{E^2}_{W_q} + \underbrace{2 E G d}_{W_k, W_v}
                        + \underbrace{E^2}_{W_o} \;(+\text{biases})

:math:`G = H` is ordinary multi-head attention (MHA); :math:`G = 1` is
*multi-query attention* (MQA, Shazeer 2019), one key and one value head for
all. The attention itself is ``F.scaled_dot_product_attention(...,
enable_gqa=True)``, which repeats each key/value head for its group.
"""
from .. import ops
from . import functional as F
from .linear import Linear
from .module import Module

__all__ = ["GroupedQueryAttention"]


class GroupedQueryAttention(Module):
    """Self- or cross-attention with ``num_kv_heads`` key/value heads for ``num_heads`` query heads.

    Layers: ``q_proj`` Linear(E, E), ``k_proj`` and ``v_proj`` Linear(kdim, G·d)
    and Linear(vdim, G·d), ``out_proj`` Linear(E, E), with ``d = E / num_heads``
    and ``G = num_kv_heads`` (which must divide ``num_heads``). Inputs are
    batch-first ``(N, L, E)``; ``forward(query, key=None, value=None)`` attends
    from ``query`` to ``key``/``value`` (to ``query`` itself when they are None)
    and returns the output ``(N, L, E)``. ``attn_mask`` and ``is_causal`` are
    those of :func:`~nnlite.nn.functional.scaled_dot_product_attention` (a bool
    True means *may* attend).

    >>> import nnlite as nl
    >>> gqa = nl.nn.GroupedQueryAttention(64, num_heads=8, num_kv_heads=2)
    >>> gqa(nl.randn(3, 10, 64)).shape
    (3, 10, 64)
    >>> gqa.k_proj.weight.shape            # 2 key heads of 8 dims, not 8 of them
    (16, 64)
    """

    def __init__(self, embed_dim, num_heads, num_kv_heads=None, dropout=0.0, bias=True, kdim=None, vdim=None,
                 dtype=None):
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if embed_dim <= 0 or num_heads <= 0 or num_kv_heads <= 0:
            raise ValueError(f"GroupedQueryAttention: embed_dim, num_heads and num_kv_heads must be positive, "
                             f"got {embed_dim}, {num_heads}, {num_kv_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"GroupedQueryAttention: embed_dim {embed_dim} is not divisible by "
                             f"num_heads {num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(f"GroupedQueryAttention: num_heads {num_heads} is not a multiple of "
                             f"num_kv_heads {num_kv_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GroupedQueryAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim, self.dropout = embed_dim // num_heads, float(dropout)
        kv_dim = num_kv_heads * self.head_dim
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.k_proj = Linear(kdim or embed_dim, kv_dim, bias=bias, dtype=dtype)
        self.v_proj = Linear(vdim or embed_dim, kv_dim, bias=bias, dtype=dtype)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)

    def _heads(self, t, heads):
        """(N, S, heads * d) -> (N, heads, S, d)."""
        return ops.transpose(ops.reshape(t, (t.shape[0], t.shape[1], heads, self.head_dim)), 1, 2)

    def _check_key_value(self, query, key, value):
        """Keys and values are batch-first like the query, one per key position (before any
        projection, so that a wrong shape is named here and not deep inside a reshape)."""
        for name, t in (("key", key), ("value", value)):
            if t.ndim != 3 or t.shape[0] != query.shape[0]:
                raise ValueError(f"GroupedQueryAttention(embed_dim={self.embed_dim}): expected a batch-first "
                                 f"{name} (N, S, features) with the query's N = {query.shape[0]}, got shape "
                                 f"{tuple(t.shape)}")
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"GroupedQueryAttention(embed_dim={self.embed_dim}): key and value must have "
                             f"the same number of positions, got shapes {tuple(key.shape)} and "
                             f"{tuple(value.shape)}")

    def forward(self, query, key=None, value=None, attn_mask=None, is_causal=False):
        if query.ndim != 3 or query.shape[-1] != self.embed_dim:
            raise ValueError(f"GroupedQueryAttention(embed_dim={self.embed_dim}): expected a batch-first "
                             f"query (N, L, {self.embed_dim}), got shape {tuple(query.shape)}")
        key = query if key is None else key
        value = key if value is None else value
        self._check_key_value(query, key, value)
        N, L = query.shape[0], query.shape[1]
        q = self._heads(self.q_proj(query), self.num_heads)
        k = self._heads(self.k_proj(key), self.num_kv_heads)
        v = self._heads(self.v_proj(value), self.num_kv_heads)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p, is_causal=is_causal,
                                             enable_gqa=True)
        return self.out_proj(ops.reshape(ops.transpose(out, 1, 2), (N, L, self.embed_dim)))

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}"
