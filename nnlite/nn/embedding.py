"""Embeddings: a learned vector per token, and vectors that say where a token is.

``Embedding`` is a lookup table (``weight[i]`` is token i's vector; kind
"embedding"). It is what a one-hot vector times a weight matrix computes,
without the multiplication. Attention by itself ignores order, so transformers
add a *positional* vector to each token: learned (a Parameter of kind
"positional") or the fixed sinusoids of Vaswani et al. (a Buffer). ``device`` is
accepted and ignored (CPU only).
"""
import math

import numpy as np

from .. import ops
from ..autograd import no_grad
from ..parameter import Buffer, Parameter
from ..tensor import get_default_dtype
from . import functional as F
from . import init
from ._checks import require_ints
from .module import Module

__all__ = ["Embedding", "LearnedPositionalEmbedding", "SinusoidalPositionalEncoding"]


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, looked up by integer index.

    Default init N(0, 1), as in PyTorch. The row ``padding_idx`` starts at zero
    and receives no gradient, so padding tokens stay a zero vector. Only
    ``max_norm=None`` (no renormalisation) is supported.

    >>> import nnlite as nl
    >>> emb = nl.nn.Embedding(10, 4, padding_idx=0)
    >>> emb(nl.tensor([[0, 3, 3]])).shape, emb.weight.kind
    ((1, 3, 4), 'embedding')
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None,
                 dtype=None):
        super().__init__()
        require_ints("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise ValueError("Embedding: only max_norm=None, scale_grad_by_freq=False and sparse=False "
                             "are supported")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be within num_embeddings={num_embeddings}, "
                                 f"got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(ops.empty(num_embeddings, embedding_dim, dtype=dtype),
                                    requires_grad=not _freeze, kind="embedding")
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight must have shape ({num_embeddings}, {embedding_dim}), "
                                 f"got {tuple(_weight.shape)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze, kind="embedding")

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        """An Embedding holding ``embeddings`` (a 2-D tensor), frozen unless ``freeze=False``."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{tuple(embeddings.shape)}")
        return cls(*embeddings.shape, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze)

    def forward(self, input):
        idx = np.asarray(input.data if hasattr(input, "data") else input)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding(num_embeddings={self.num_embeddings}): indices must be integers, "
                            f"got {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            bad = int(idx.min() if idx.min() < 0 else idx.max())
            raise IndexError(f"Embedding(num_embeddings={self.num_embeddings}): index {bad} is out of "
                             f"range (input shape {idx.shape})")
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


def _check_positions(name, input, max_len, dim):
    if input.ndim < 2 or input.shape[-1] != dim or input.shape[-2] > max_len:
        raise ValueError(f"{name}: expected input of shape (..., seq_len <= {max_len}, {dim}), got "
                         f"shape {tuple(input.shape)}")


class LearnedPositionalEmbedding(Module):
    """x + weight[:seq_len]: one learned vector per position (BERT, GPT-2).

    ``weight`` has shape (max_len, embedding_dim) and kind "positional"; it is
    initialised N(0, 0.02**2) as in GPT-2. Input: (..., seq_len, embedding_dim).
    Cannot represent positions beyond ``max_len``.
    """

    def __init__(self, max_len, embedding_dim, dtype=None):
        super().__init__()
        self.max_len, self.embedding_dim = int(max_len), int(embedding_dim)
        self.weight = Parameter(ops.empty(max_len, embedding_dim, dtype=dtype), kind="positional")
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight, std=0.02)

    def forward(self, input):
        _check_positions(f"LearnedPositionalEmbedding(max_len={self.max_len}, "
                         f"embedding_dim={self.embedding_dim})", input, self.max_len, self.embedding_dim)
        return input + self.weight[: input.shape[-2]]

    def extra_repr(self):
        return f"{self.max_len}, {self.embedding_dim}"


class SinusoidalPositionalEncoding(Module):
    """x + pe[:seq_len] with fixed ``pe[p, 2i] = sin(p / 10000^(2i/d))``, ``pe[p, 2i+1] = cos(...)``.

    Vaswani et al. (2017), "Attention Is All You Need". Nothing is learned:
    ``pe`` is a Buffer, not a Parameter, and is not saved in the state_dict
    (it is recomputed from ``d_model`` and ``max_len``). Each position gets a
    unique pattern of wavelengths from 2 pi to 10000 * 2 pi, and a fixed offset
    is a linear map of it, which makes relative positions easy to attend to.

    >>> import nnlite as nl
    >>> pe = nl.nn.SinusoidalPositionalEncoding(8, max_len=16)
    >>> pe(nl.zeros(2, 5, 8)).shape, len(list(pe.parameters()))
    ((2, 5, 8), 0)
    """

    def __init__(self, d_model, max_len=5000, dtype=None):
        super().__init__()
        self.d_model, self.max_len = int(d_model), int(max_len)
        position = np.arange(max_len)[:, None]
        div_term = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(position * div_term)
        pe[:, 1::2] = np.cos(position * div_term)[:, : d_model // 2]
        self.pe = Buffer(pe.astype(dtype or get_default_dtype()), persistent=False)

    def forward(self, input):
        _check_positions(f"SinusoidalPositionalEncoding(d_model={self.d_model}, max_len={self.max_len})",
                         input, self.max_len, self.d_model)
        return input + self.pe[: input.shape[-2]].to(input.dtype)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"
