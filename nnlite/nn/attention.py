"""Multi-head attention with PyTorch's parameter layout.

Each of ``num_heads`` heads attends in its own ``head_dim = embed_dim / num_heads``
subspace; their outputs are concatenated and mixed by ``out_proj``:

    Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v
    head_h = softmax(Q_h K_h^T / sqrt(head_dim) + mask) V_h
    output = concat(head_1..head_H) W_o^T + b_o

Parameters (PyTorch's names, so state dicts move unchanged):
``in_proj_weight`` (3*embed_dim, embed_dim) stacks W_q, W_k, W_v when keys and
values have embed_dim features; otherwise ``q_proj_weight`` (E, E),
``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim). ``in_proj_bias``
(3E,) stacks b_q, b_k, b_v. ``out_proj`` is a Linear(E, E) (PyTorch's
NonDynamicallyQuantizableLinear, a Linear subclass, with the same keys). With
``add_bias_kv``, ``bias_k`` and ``bias_v`` (1, 1, E) are one extra learned
key and value appended to every sequence. ``device`` is accepted and ignored
(CPU only).
"""
import numpy as np

from .. import ops
from ..ops.attention import _blocks_a_whole_row, attention_with_weights
from ..ops.packed_attention import packed_attention
from ..parameter import Parameter
from ..tensor import Tensor, is_floating_dtype
from . import functional as F
from . import init
from .linear import Linear
from .module import Module

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al., 2017, "Attention Is All You Need").

    ``forward(query, key, value)`` takes (L, N, E) queries and (S, N, kdim/vdim)
    keys and values — (N, L, E) with ``batch_first`` — or unbatched (L, E), and
    returns ``(output, weights)``: output like the query; weights (N, L, S)
    averaged over heads, (N, num_heads, L, S) with
    ``average_attn_weights=False``, or None with ``need_weights=False``.

    Masks (PyTorch's MultiheadAttention convention, the *opposite* of
    F.scaled_dot_product_attention's bool masks): a bool True means "may NOT
    attend". ``attn_mask`` is (L, S) or (N*num_heads, L, S); ``key_padding_mask``
    is (N, S) and marks padding keys. Float masks are added to the scores.
    ``is_causal=True`` applies the causal mask itself when ``attn_mask`` is
    None (PyTorch insists on being given the mask as well; here it is built).
    A query with every key masked gets zero weights (PyTorch: NaN or zero,
    depending on its code path).

    Two paths compute the same attention. Self-attention (``query``, ``key``
    and ``value`` the same Tensor) with ``need_weights=False`` runs *packed*
    when nothing needs the other path (see ``_packs``: no kdim/vdim,
    ``bias_k`` or ``add_zero_attn``, no dropout in effect, float32/float64, no
    ``key_padding_mask``, and no mask or one constant (L, L) mask that leaves
    every query a key): one (N, L, 3E) product with ``in_proj_weight`` and one
    :func:`~nnlite.ops.packed_attention.packed_attention` node that reads the heads
    in place. Every other call runs *composed*: three projections with slices
    of the packed weight, the heads as views, matmul, softmax, matmul, and the
    heads merged. The two agree to rounding (the one product can round Q, K
    and V differently from three).

    Initialization as PyTorch: ``xavier_uniform_`` for the input projections,
    zeros for ``in_proj_bias`` and ``out_proj.bias``, ``xavier_normal_`` for
    ``bias_k``/``bias_v``; ``out_proj.weight`` keeps Linear's default.

    >>> import nnlite as nl
    >>> mha = MultiheadAttention(16, 4, batch_first=True)
    >>> out, w = mha(nl.randn(2, 5, 16), nl.randn(2, 7, 16), nl.randn(2, 7, 16))
    >>> out.shape, w.shape
    ((2, 5, 16), (2, 5, 7))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, "
                             f"got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim, self.batch_first = embed_dim // num_heads, batch_first
        self.add_zero_attn = add_zero_attn

        def weight(*shape):
            return Parameter(ops.empty(*shape, dtype=dtype), kind="weight")

        if self._qkv_same_embed_dim:
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
            self.in_proj_weight = weight(3 * embed_dim, embed_dim)
        else:
            self.q_proj_weight = weight(embed_dim, embed_dim)
            self.k_proj_weight = weight(embed_dim, self.kdim)
            self.v_proj_weight = weight(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(ops.empty(3 * embed_dim, dtype=dtype), kind="bias")
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(ops.empty(1, 1, embed_dim, dtype=dtype), kind="bias")
            self.bias_v = Parameter(ops.empty(1, 1, embed_dim, dtype=dtype), kind="bias")
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if getattr(self, name) is not None:
                init.xavier_uniform_(getattr(self, name))
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _describe(self):
        return f"MultiheadAttention(embed_dim={self.embed_dim})"

    def _projections(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None,) * 3 if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def _check(self, query, key, value):
        batched = query.ndim == 3
        for name, t, size in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if t.ndim not in (2, 3) or t.ndim != query.ndim:
                like = "" if name == "query" else f" like the query (shape {tuple(query.shape)})"
                raise ValueError(f"{self._describe()}: expected {name} of 3 dims (batched) or 2 "
                                 f"(unbatched){like}, got shape {tuple(t.shape)}")
            if t.shape[-1] != size:
                raise ValueError(f"{self._describe()}: {name} has {t.shape[-1]} features, expected "
                                 f"{size} (shape {tuple(t.shape)})")
        seq = 1 if batched and self.batch_first else 0
        if key.shape[seq] != value.shape[seq] or key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{self._describe()}: key and value must have the same sequence and batch "
                             f"dims, got shapes {tuple(key.shape)} and {tuple(value.shape)}")
        if batched and query.shape[1 - seq] != key.shape[1 - seq]:
            raise ValueError(f"{self._describe()}: query and key have different batch sizes "
                             f"(shapes {tuple(query.shape)} and {tuple(key.shape)})")

    def _mask(self, mask, shapes, name, dtype):
        """A MHA-convention mask (bool True = blocked) as an additive float mask of one of ``shapes``."""
        if mask is None:
            return None
        m = mask if isinstance(mask, Tensor) else ops.as_tensor(mask)
        if tuple(m.shape) not in shapes:
            raise ValueError(f"{self._describe()}: {name} has shape {tuple(m.shape)}, expected "
                             + " or ".join(str(s) for s in shapes))
        if m.dtype.kind == "b":
            return Tensor._make(np.where(m.data, dtype.type(-np.inf), dtype.type(0)), None)
        if not is_floating_dtype(m.dtype):
            raise TypeError(f"{self._describe()}: {name} must be bool or float, got {m.dtype}")
        return m if m.dtype == dtype else m.to(dtype)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        self._check(query, key, value)
        self_attention = query is key and key is value
        batched = query.ndim == 3
        # Work batch-first: (N, L, E).
        if not batched:
            query, key, value = (ops.unsqueeze(t, 0) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (ops.transpose(t, 0, 1) for t in (query, key, value))
        N, L, S, H = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        if is_causal and attn_mask is None:
            attn_mask = np.triu(np.ones((L, S), dtype=bool), k=1)   # True above the diagonal: the future
        mask = self._mask(attn_mask, [(L, S), (N * H, L, S)] if batched else [(L, S), (H, L, S)],
                          "attn_mask", query.dtype)
        if mask is not None and mask.ndim == 3:
            mask = ops.reshape(mask, (N, H, L, S))
        pad = self._mask(key_padding_mask, [(N, S)] if batched else [(S,)], "key_padding_mask", query.dtype)
        if pad is not None:
            pad = ops.reshape(pad, (N, 1, 1, S))
            mask = pad if mask is None else mask + pad

        if self_attention and not need_weights and pad is None and self._packs(query, mask):
            # One (N, L, 3E) projection and one attention node: see _packs.
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            out, weights = self.out_proj(packed_attention(qkv, H, None if mask is None else mask.data)), None
        else:
            out, weights = self._attend(query, key, value, mask)

        if not batched:
            out = ops.squeeze(out, 0)
        elif not self.batch_first:
            out = ops.transpose(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = ops.mean(weights, 1)
        return out, (weights if batched else ops.squeeze(weights, 0))

    def _packs(self, query, mask):
        """Whether this self-attention call may run packed: Q, K, V from one product, one attention node.

        ``F.linear(query, in_proj_weight, in_proj_bias)`` gives [Q | K | V] as one
        (N, L, 3E) array and :func:`~nnlite.ops.packed_attention.packed_attention` reads the
        heads from it in place: fewer graph nodes and copies than three projections of
        weight slices, per-head reshapes and a merge, whose gradients must be summed
        back. It computes what the composed path does, so it is taken whenever nothing
        needs that path: the packed ``in_proj_weight`` (no kdim/vdim), no ``bias_k``
        or ``add_zero_attn``, no dropout in effect, float32 or float64, and no mask or
        one constant (L, L) mask that leaves every query some key (the caller has
        already asked for self-attention, ``need_weights=False`` and no
        ``key_padding_mask``).
        """
        if not self._qkv_same_embed_dim or self.bias_k is not None or self.add_zero_attn:
            return False
        if (self.training and self.dropout > 0) or query.dtype not in (np.float32, np.float64):
            return False
        return mask is None or (mask.ndim == 2 and not mask.requires_grad
                                and not _blocks_a_whole_row(mask.data))

    def _attend(self, query, key, value, mask):
        """The composed path: three projections, the heads as views, attention, the heads merged.

        Returns (output before the batch layout is restored, weights (N, H, L, S) with S
        counting the keys ``bias_k`` and ``add_zero_attn`` append).
        """
        N, L, S, H = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        q, k, v = self._projections(query, key, value)
        if self.bias_k is not None:   # one learned key/value every query may attend to
            k = ops.cat([k, ops.expand(self.bias_k, (N, 1, self.embed_dim))], 1)
            v = ops.cat([v, ops.expand(self.bias_v, (N, 1, self.embed_dim))], 1)
        if self.add_zero_attn:        # an all-zero key/value: somewhere to put "no attention"
            zeros = ops.zeros(N, 1, self.embed_dim, dtype=q.dtype)
            k, v = ops.cat([k, zeros], 1), ops.cat([v, zeros], 1)
        extra = k.shape[1] - S
        if extra and mask is not None:
            mask = ops.cat([mask, ops.zeros(*mask.shape[:-1], extra, dtype=mask.dtype)], -1)

        def heads(t):    # (N, seq, E) -> (N, H, seq, head_dim)
            # A view, not a copy: the batched products (K.bmm) read each head's (seq, head_dim)
            # block where it lies, a strided matrix that BLAS takes as it is.
            return ops.transpose(ops.reshape(t, (N, t.shape[1], H, self.head_dim)), 1, 2)

        p = self.dropout if self.training else 0.0
        out, weights = attention_with_weights(heads(q), heads(k), heads(v), mask, p)
        # The heads side by side again, (N, L, E): one copy; its gradient is only a view.
        return self.out_proj(ops.reshape(ops.transpose(out, 1, 2), (N, L, self.embed_dim))), weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"
