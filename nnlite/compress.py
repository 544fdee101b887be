r"""Low-rank approximation of a layer's weight, and the LoRA helpers (``nl.compress``).

A weight matrix :math:`W` (out × in) with singular values
:math:`\sigma_1 \ge \sigma_2 \ge \dots` is, by the Eckart–Young theorem, best
approximated at rank :math:`r` (in the Frobenius and spectral norms) by its
truncated SVD :math:`W_r = U_r \Sigma_r V_r^T`. Storing :math:`W_r` as two
factors costs :math:`r(\text{in} + \text{out})` numbers instead of
:math:`\text{in} \cdot \text{out}`; so a rank below
:math:`\text{in}\,\text{out} / (\text{in} + \text{out})` saves parameters and
multiply-adds. The relative error is

.. math::

    \frac{\lVert W - W_r \rVert_F}{\lVert W \rVert_F}
      = \sqrt{\frac{\sum_{i > r} \sigma_i^2}{\sum_i \sigma_i^2}}

and the *energy* kept, :math:`\sum_{i \le r} \sigma_i^2 / \sum_i \sigma_i^2`,
is one minus its square: :func:`low_rank` picks the smallest rank that keeps
at least ``energy`` when no ``rank`` is given.

:func:`low_rank` turns a Linear into ``Sequential(Linear(in, r, bias=False),
Linear(r, out))`` with :math:`\sqrt{\Sigma_r} V_r^T` and :math:`U_r \sqrt{\Sigma_r}`
as weights (the square root splits the scale evenly between the factors, which
suits fine-tuning them afterwards). A Conv2d weight (out, in, kh, kw) is the
matrix (out, in·kh·kw) — each row one filter — and becomes a Conv2d with
``r`` filters of the original size followed by a 1×1 Conv2d.
"""
import numpy as np

from ._kernels.checks import is_int
from .analysis.spectra import singular_values as weight_singular_values
from .nn.container import Sequential
from .nn.conv import Conv2d
from .nn.fusion import ConvReLU2d, LinearReLU
from .nn.linear import Linear
from .nn.lora import LoRALinear, add_lora, merge_lora
from .random import get_rng_state, set_rng_state

__all__ = ["low_rank", "low_rank_error", "singular_values", "rank_for_energy", "remove_pruned_units",
           "LoRALinear", "add_lora", "merge_lora"]


def _matrix(layer):
    if isinstance(layer, Linear):
        return layer.weight.data
    if isinstance(layer, Conv2d):
        if layer.groups != 1:
            raise ValueError(f"low_rank: Conv2d with groups={layer.groups} is not one matrix; groups=1 expected")
        return layer.weight.data.reshape(layer.out_channels, -1)
    raise TypeError(f"low_rank: expected an nn.Linear or nn.Conv2d, got {type(layer).__name__}")


def singular_values(layer):
    """The singular values of the layer's weight matrix, largest first (float64).

    :func:`nnlite.analysis.singular_values` of the matrix :func:`low_rank` factors.
    """
    return weight_singular_values(_matrix(layer))


def rank_for_energy(sigma, energy):
    """The smallest rank whose singular values keep at least ``energy`` of :math:`\\sum \\sigma_i^2`."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"rank_for_energy: energy must be in (0, 1], got {energy}")
    sigma = np.asarray(sigma, np.float64)
    if sigma.ndim != 1 or sigma.size == 0 or not np.isfinite(sigma).all():
        raise ValueError(f"rank_for_energy: expected a non-empty 1-D array of finite singular values, "
                         f"got shape {sigma.shape}" + ("" if np.isfinite(sigma).all() else " with NaN or inf"))
    kept = np.cumsum(sigma ** 2)
    if kept[-1] == 0:
        return 1
    return int(np.searchsorted(kept / kept[-1], energy - 1e-12) + 1)


def low_rank_error(layer, rank):
    """Relative Frobenius error :math:`\\lVert W - W_r \\rVert_F / \\lVert W \\rVert_F` at ``rank``."""
    s2 = singular_values(layer) ** 2
    if not is_int(rank) or not 0 <= rank <= len(s2):
        raise ValueError(f"low_rank_error: rank must be an integer in [0, {len(s2)}], got {rank!r}")
    return float(np.sqrt(s2[rank:].sum() / s2.sum())) if s2.sum() else 0.0


def low_rank(layer, rank=None, energy=None):
    """Two layers whose product is the rank-``rank`` truncated SVD of ``layer``'s weight.

    Give ``rank`` or ``energy`` (fraction of :math:`\\sum \\sigma_i^2` to keep).
    Returns a :class:`~nnlite.nn.Sequential` of two Linears (or two Conv2d) in the
    layer's dtype, the bias on the second; fine-tune it afterwards to win back accuracy.
    A layer with a fused ReLU (LinearReLU, ConvReLU2d) keeps it, on the second factor.

    >>> import nnlite as nl
    >>> layer = nl.nn.Linear(64, 32)
    >>> small = nl.compress.low_rank(layer, rank=8)
    >>> layer.num_parameters(), small.num_parameters()
    (2080, 800)
    >>> x = nl.randn(5, 64)
    >>> full = nl.compress.low_rank(layer, rank=32)     # full rank: the same map
    >>> bool(nl.allclose(full(x), layer(x), atol=1e-5))
    True
    """
    if (rank is None) == (energy is None):
        raise ValueError("low_rank: give exactly one of rank or energy")
    w = _matrix(layer)
    if not np.isfinite(w).all():
        raise ValueError(f"low_rank: expected a finite weight, got NaN or inf in {type(layer).__name__}.weight")
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    if rank is None:
        rank = rank_for_energy(s, energy)
    if not is_int(rank) or not 1 <= rank <= len(s):
        raise ValueError(f"low_rank: rank must be an integer in [1, {len(s)}] for a weight of shape "
                         f"{tuple(layer.weight.shape)}, got {rank!r}")
    rank = int(rank)
    root = np.sqrt(s[:rank])
    first_w = (root[:, None] * vt[:rank]).astype(w.dtype)
    second_w = (u[:, :rank] * root[None, :]).astype(w.dtype)
    has_bias = layer.bias is not None
    if isinstance(layer, Linear):
        first, second = _built_without_drawing(lambda: (
            Linear(layer.in_features, rank, bias=False, dtype=w.dtype),
            _with_relu_of(layer)(rank, layer.out_features, bias=has_bias, dtype=w.dtype)))
    else:
        first, second = _built_without_drawing(lambda: (
            Conv2d(layer.in_channels, rank, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                   dilation=layer.dilation, bias=False, padding_mode=layer.padding_mode, dtype=w.dtype),
            _with_relu_of(layer)(rank, layer.out_channels, 1, bias=has_bias, dtype=w.dtype)))
    first.weight.data[...] = first_w.reshape(first.weight.shape)
    second.weight.data[...] = second_w.reshape(second.weight.shape)
    if has_bias:
        second.bias.data[...] = layer.bias.data
    return Sequential(first, second)


def _built_without_drawing(make):
    """``make()``: layers whose initial weights are overwritten at once, so they are drawn with the
    global generator's state put back afterwards. Compressing a layer then leaves every later
    random number (dropout masks, data order, the next layer's weights) as it would have been."""
    state = get_rng_state()
    try:
        return make()
    finally:
        set_rng_state(state)


def _with_relu_of(layer):
    """The class of a layer standing in for ``layer``'s output: its fused class when ``layer``
    applies a ReLU itself (LinearReLU, ConvReLU2d), else plain Linear or Conv2d."""
    for fused, plain in ((LinearReLU, Linear), (ConvReLU2d, Conv2d)):
        if isinstance(layer, plain):
            return fused if isinstance(layer, fused) else plain
    raise TypeError(f"expected an nn.Linear or nn.Conv2d, got {type(layer).__name__}")


def _relu(a):
    return np.maximum(a, 0)


def remove_pruned_units(layer, next_layer, activation=_relu):
    """Cut the output units of ``layer`` whose weight rows are all zero, and ``next_layer``'s matching inputs.

    Structured pruning (``prune.ln_structured(layer, "weight", amount, n, dim=0)``)
    zeroes whole rows, but the layer still computes them; this returns two
    smaller Linears that compute the same function, which is what makes the
    pruned model faster (plain Linears, or LinearReLUs where a layer given was
    one). A removed unit still outputs the constant
    ``activation(bias_i)``; its effect, ``activation(bias_i) * next.weight[:, i]``,
    is folded into ``next_layer``'s bias (``activation`` is the elementwise
    function between the two layers, ReLU by default).

    >>> import nnlite as nl
    >>> from nnlite.nn.utils import prune
    >>> a, b = nl.nn.Linear(8, 6), nl.nn.Linear(6, 3)
    >>> _ = prune.ln_structured(a, "weight", amount=0.5, n=2, dim=0)
    >>> small_a, small_b = nl.compress.remove_pruned_units(a, b)
    >>> small_a.out_features, small_b.in_features
    (3, 3)
    """
    if not isinstance(layer, Linear) or not isinstance(next_layer, Linear):
        raise TypeError(f"remove_pruned_units: expected two nn.Linear, got {type(layer).__name__} and "
                        f"{type(next_layer).__name__}")
    if next_layer.in_features != layer.out_features:
        raise ValueError(f"remove_pruned_units: next_layer has {next_layer.in_features} inputs, layer "
                         f"{layer.out_features} outputs")
    weight = getattr(layer, "weight").data          # the weight in use (orig * mask when pruned)
    next_weight = getattr(next_layer, "weight").data
    keep = np.flatnonzero(np.any(weight != 0, axis=1))
    gone = np.setdiff1d(np.arange(layer.out_features), keep)
    first, second = _built_without_drawing(lambda: (
        _with_relu_of(layer)(layer.in_features, len(keep), bias=layer.bias is not None, dtype=weight.dtype),
        _with_relu_of(next_layer)(len(keep), next_layer.out_features, bias=True, dtype=weight.dtype)))
    first.weight.data[...] = weight[keep]
    second.weight.data[...] = next_weight[:, keep]
    folded = np.zeros(next_layer.out_features, np.float64)
    if layer.bias is not None:
        first.bias.data[...] = layer.bias.data[keep]
        folded = next_weight[:, gone].astype(np.float64) @ activation(layer.bias.data[gone].astype(np.float64))
    base = next_layer.bias.data if next_layer.bias is not None else 0.0
    second.bias.data[...] = base + folded
    return first, second
