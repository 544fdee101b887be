"""The Transformer encoder: self-attention and a feed-forward network, each with a residual.

One layer (post-norm, Vaswani et al., 2017; the default, ``norm_first=False``):

    x = norm1(x + dropout1(self_attn(x, x, x)))
    x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))

Pre-norm (``norm_first=True``, Xiong et al., 2020, "On Layer Normalization in
the Transformer Architecture") normalises the branch input instead, leaving the
residual path a clean sum, which trains deep stacks without learning-rate warmup:

    x = x + dropout1(self_attn(norm1(x)))
    x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))

Submodule names are PyTorch's (``self_attn``, ``linear1``, ``dropout``,
``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2``; an encoder's
layers are ``layers.0``, ``layers.1``, ...), so state dicts move unchanged.
"""
import copy

import numpy as np

from ..tensor import Tensor, get_default_dtype
from . import functional as F
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["TransformerEncoderLayer", "TransformerEncoder", "generate_square_subsequent_mask"]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a position-wise feed-forward network (d_model -> dim_feedforward -> d_model).

    Input (S, N, d_model), or (N, S, d_model) with ``batch_first``, or
    unbatched (S, d_model). ``activation`` is "relu", "gelu" or any callable.
    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``
    takes masks in MultiheadAttention's convention (bool True = may not attend).
    ``device`` is accepted and ignored (CPU only).

    >>> import nnlite as nl
    >>> layer = TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
    >>> layer(nl.randn(2, 5, 16)).shape
    (2, 5, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                                 f"callable, got {activation!r}")
            activation = _ACTIVATIONS[activation]
        elif not callable(activation):
            raise TypeError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                            f"callable, got {type(activation).__name__}")
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` independent copies of ``encoder_layer`` in sequence, then ``norm`` if given.

    Each copy is a deep copy: same initial values, separate parameters (as in
    PyTorch, so all layers start equal; re-initialise them if that matters).
    ``enable_nested_tensor`` and ``mask_check`` are accepted for PyTorch
    compatibility and ignored (they select PyTorch's fast inference paths).

    >>> import nnlite as nl
    >>> layer = TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    >>> encoder = TransformerEncoder(layer, num_layers=3)
    >>> [name for name, _ in encoder.named_children()], len(encoder.layers)
    (['layers'], 3)
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"TransformerEncoder: encoder_layer must be a Module, got {type(encoder_layer).__name__}")
        if num_layers < 1:
            raise ValueError(f"TransformerEncoder: num_layers must be >= 1, got {num_layers}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        if is_causal is None:   # PyTorch's rule: the hint is on when the mask given is the causal one
            is_causal = _is_causal_mask(mask, src.shape[1 if self.layers[0].self_attn.batch_first
                                                        and src.ndim == 3 else 0])
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)


def generate_square_subsequent_mask(sz, dtype=None):
    """The causal mask for a sequence of ``sz``: 0 on and below the diagonal, -inf above.

    Position i may attend to positions 0..i only, so a model trained with it
    can generate left to right (PyTorch: ``nn.Transformer.generate_square_subsequent_mask``).

    >>> generate_square_subsequent_mask(3).data.tolist()
    [[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]
    """
    future = np.triu(np.ones((sz, sz), dtype=bool), k=1)
    return Tensor(np.where(future, -np.inf, 0.0), dtype=dtype or get_default_dtype())


def _is_causal_mask(mask, size):
    if mask is None or mask.ndim != 2 or tuple(mask.shape) != (size, size):
        return False
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    future = np.triu(np.ones((size, size), dtype=bool), k=1)
    blocked = m if m.dtype == np.bool_ else np.isneginf(m)
    return bool(np.array_equal(blocked, future) and (m.dtype == np.bool_ or not m[~future].any()))
