"""``nnlite.nn.functional`` (import as F): the stateless form of every layer.

Layers in ``nnlite.nn`` hold parameters and call these functions; the functions
call the differentiable operations in ``nnlite.ops``. Names, arguments and
defaults are PyTorch's.
"""
import math

import numpy as np

from ..ops import gelu, log_softmax, logsigmoid, one_hot, sigmoid, softmax, softplus, softsign, tanh  # noqa: F401
from .. import ops
from ..ops.piecewise import PReluFunction
from ..ops.inplace import inplace_flag as _inplace_flag
from ..ops.inplace import (elu_, hardsigmoid_, hardswish_, hardtanh_, leaky_relu_, mish_, relu6_, relu_, selu_,
                           silu_)

# ------------------------------------------------------------- activations ---
# PyTorch's relu, silu, leaky_relu, elu, selu, mish, hardtanh, relu6, hardsigmoid and
# hardswish take ``inplace``: the operation itself is in nnlite/ops/pointwise.py (or
# piecewise.py), its in-place form (which overwrites the input and moves its history)
# in nnlite/ops/inplace.py, and these choose between them.


def relu(input, inplace=False):
    """``max(0, x)``; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("relu", inplace):
        return relu_(input)
    return ops.relu(input)


def silu(input, inplace=False):
    """``x * sigmoid(x)``; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("silu", inplace):
        return silu_(input)
    return ops.silu(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, ``negative_slope * x`` otherwise; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("leaky_relu", inplace):
        return leaky_relu_(input, negative_slope)
    return ops.leaky_relu(input, negative_slope)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, ``alpha * (e^x - 1)`` otherwise; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("elu", inplace):
        return elu_(input, alpha)
    return ops.elu(input, alpha)


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with SELU's constants; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("selu", inplace):
        return selu_(input)
    return ops.selu(input)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("mish", inplace):
        return mish_(input)
    return ops.mish(input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to ``[min_val, max_val]`` (slope 0 at the bounds); ``inplace=True`` overwrites ``input``."""
    if _inplace_flag("hardtanh", inplace):
        return hardtanh_(input, min_val, max_val)
    return ops.hardtanh(input, min_val, max_val)


def relu6(input, inplace=False):
    """``min(max(0, x), 6)``; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("relu6", inplace):
        return relu6_(input)
    return ops.relu6(input)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("hardsigmoid", inplace):
        return hardsigmoid_(input)
    return ops.hardsigmoid(input)


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``; ``inplace=True`` overwrites ``input`` and returns it."""
    if _inplace_flag("hardswish", inplace):
        return hardswish_(input)
    return ops.hardswish(input)


def prelu(input, weight):
    """``max(0, x) + weight * min(0, x)``: a leaky ReLU whose negative slope is a tensor.

    ``weight`` is 0-D or 1-D. One slope serves every element; more than one must
    match the channels, dim 1 of the input, and each slope serves its channel at
    every position after it. An input of fewer than 2 dims has no channel dim and
    takes a single slope (PyTorch's rule).

    >>> import nnlite as nl
    >>> prelu(nl.tensor([[-2.0, 3.0], [-1.0, -4.0]]), nl.tensor([0.5, 0.25])).data.tolist()
    [[-1.0, 3.0], [-0.5, -1.0]]
    """
    _check_prelu(input, weight)
    if weight.ndim == 1 and input.ndim != 1:
        # (C,) -> (C, 1, ..., 1): a channel's slope broadcasts over the positions after dim 1;
        # a 0-D input keeps its shape, so its one slope becomes 0-D too.
        shape = (weight.shape[0],) + (1,) * (input.ndim - 2) if input.ndim >= 2 else ()
        if shape != tuple(weight.shape):
            weight = ops.reshape(weight, shape)
    return PReluFunction.apply(input, weight)


def _check_prelu(input, weight):
    if weight.ndim > 1:
        raise ValueError(f"prelu: weight must be 0-D or 1-D (one slope, or one per channel), "
                         f"got shape {tuple(weight.shape)}")
    slopes = weight.shape[0] if weight.ndim else 1
    if slopes != 1:
        if input.ndim < 2:
            raise ValueError(f"prelu: weight has {slopes} slopes, but a {input.ndim}-D input has no "
                             f"channel dim and takes 1 (shape {tuple(input.shape)})")
        if input.shape[1] != slopes:
            raise ValueError(f"prelu: weight has {slopes} slopes, one per channel, but input has "
                             f"{input.shape[1]} channels in dim 1 (shape {tuple(input.shape)})")
    if input.dtype != weight.dtype:
        raise TypeError(f"prelu: input is {input.dtype} but weight is {weight.dtype}; convert one "
                        "to the other's dtype (e.g. x.to(model.weight.dtype) or model.float())")


# threshold, the shrinkage functions, celu, softmin and rrelu are compositions of other
# operations (nnlite/ops/composed_activations.py); threshold, celu and rrelu take inplace.
from ..ops import composed_activations as _composed  # noqa: E402
from ..ops.composed_activations import (celu, hardshrink, rrelu, softmin, softshrink,  # noqa: F401,E402
                                        tanhshrink, threshold)


def threshold_(input, threshold, value):
    """``threshold(input, threshold, value, inplace=True)``: overwrites ``input`` and returns it."""
    return _composed.threshold(input, threshold, value, inplace=True)   # (the argument hides the function)


def celu_(input, alpha=1.0):
    """``celu(input, alpha, inplace=True)``: overwrites ``input`` and returns it."""
    return celu(input, alpha, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """``rrelu(..., inplace=True)``: overwrites ``input`` and returns it."""
    return rrelu(input, lower, upper, training, inplace=True, generator=generator)

# ------------------------------------------------------------------ layers ---
# Each function below is the stateless form of a layer in nnlite.nn; the ops it calls
# (nnlite/ops/nn_ops.py, dropout.py, padding.py, conv.py, norm.py, loss.py) hold forward and backward.
from ..ops.nn_ops import embedding, linear, linear_relu  # noqa: F401,E402
from ..ops.dropout import dropout  # noqa: F401,E402
from ..ops.padding import pad  # noqa: F401,E402
from ..ops.normalization import (_check_positions, batch_norm, batch_norm_relu, group_norm,  # noqa: F401,E402
                                 instance_norm, layer_norm, rms_norm)
from ..ops.conv import (avg_pool1d, avg_pool2d, conv1d, conv1d_relu, conv2d, conv2d_relu,  # noqa: F401,E402
                        conv_transpose1d, conv_transpose2d, lp_pool1d, lp_pool2d, max_pool1d, max_pool2d)
from ..ops.adaptive_pool import adaptive_avg_pool1d, adaptive_avg_pool2d  # noqa: F401,E402
from ..ops.loss import (binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,  # noqa: F401,E402
                        l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from ..ops.likelihood import binary_cross_entropy, gaussian_nll_loss, poisson_nll_loss  # noqa: F401,E402
from ..ops.margin import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss,  # noqa: F401,E402
                          multi_margin_loss, multilabel_soft_margin_loss, soft_margin_loss, triplet_margin_loss)
from ..ops.distance import cosine_similarity, normalize, pairwise_distance  # noqa: F401,E402

# ---------------------------------------------------------------- bilinear ---
# The stateless form of nn.Bilinear (nnlite/nn/linear.py), written with reshape,
# permute and matmul, whose backward passes are differentiable themselves.


def bilinear(input1, input2, weight, bias=None):
    """The bilinear map ``y[..., k] = x1 @ weight[k] @ x2 + bias[k]``, that is x1^T A_k x2 + b_k.

    ``input1`` has shape ``(*, in1_features)`` and ``input2`` ``(*, in2_features)``
    with the same leading dims ``*`` (none at all is allowed); ``weight`` has shape
    ``(out_features, in1_features, in2_features)``, one matrix A_k per output;
    ``bias``, if given, ``(out_features,)``. The result has shape ``(*, out_features)``.

    >>> import nnlite as nl
    >>> A = nl.tensor([[[1.0, 2.0], [0.0, 1.0]]])            # one output, A_0 is 2 x 2
    >>> bilinear(nl.tensor([1.0, 3.0]), nl.tensor([2.0, -1.0]), A).data.tolist()   # [1, 3] A_0 [2, -1]
    [-3.0]
    """
    _check_bilinear(input1, input2, weight, bias)
    out_features, in1_features, in2_features = weight.shape
    leading = tuple(input1.shape[:-1])
    rows = math.prod(leading)
    x1 = ops.reshape(input1, (rows, in1_features))
    x2 = ops.reshape(input2, (rows, in2_features, 1))
    # x1^T A_k for every k at once: lay the matrices side by side, (in1, out * in2), for one product ...
    side_by_side = ops.reshape(ops.permute(weight, (1, 0, 2)), (in1_features, out_features * in2_features))
    x1_a = ops.reshape(ops.matmul(x1, side_by_side), (rows, out_features, in2_features))
    # ... then each row's (out, in2) block times its x2: a batch of matrix-vector products.
    y = ops.reshape(ops.matmul(x1_a, x2), leading + (out_features,))
    return y if bias is None else y + bias


def _check_bilinear(input1, input2, weight, bias):
    if weight.ndim != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out_features, in1_features, in2_features), "
                         f"got shape {tuple(weight.shape)}")
    for name, t, features in (("input1", input1, weight.shape[1]), ("input2", input2, weight.shape[2])):
        got = t.shape[-1] if t.ndim else "no"
        if got != features:
            raise ValueError(f"bilinear: weight {tuple(weight.shape)} expects {features} features in {name}, "
                             f"{name} has {got} (shape {tuple(t.shape)})")
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ValueError(f"bilinear: input1 and input2 must have the same leading dims, got shapes "
                         f"{tuple(input1.shape)} and {tuple(input2.shape)}")
    if bias is not None and tuple(bias.shape) != weight.shape[:1]:
        raise ValueError(f"bilinear: bias must have shape ({weight.shape[0]},), one per output feature, "
                         f"got {tuple(bias.shape)}")
    dtypes = {t.dtype for t in (input1, input2, weight, bias) if t is not None}
    if len(dtypes) > 1:
        given = ", ".join(f"{name} {t.dtype}" for name, t in
                          (("input1", input1), ("input2", input2), ("weight", weight), ("bias", bias)) if t is not None)
        raise TypeError(f"bilinear: all tensors must have one dtype, got {given}; convert them "
                        "to one (e.g. x.to(model.weight.dtype) or model.float())")


# --------------------------------------------------------------- attention ---
# softmax(Q K^T / sqrt(d) + mask) V from matmul and softmax ops (nnlite/ops/attention.py);
# glu, the gate of gated linear units, lives with its module in nnlite/nn/gating.py.
from ..ops.attention import scaled_dot_product_attention  # noqa: F401,E402
from .gating import glu  # noqa: F401,E402

# ------------------------------------------------------------ distillation ---
# A student matching a teacher's softened outputs (nnlite/nn/distillation.py).
from .distillation import distillation_loss  # noqa: F401,E402

# ------------------------------------------- resizing, channel dropout, adaptive max ---
# Channel and alpha dropout sit beside dropout (nnlite/ops/dropout.py); pixel shuffle and
# interpolate are in nnlite/ops/pixel_shuffle.py and nnlite/ops/interpolate.py.
from ..ops.dropout import alpha_dropout, dropout1d, dropout2d  # noqa: F401,E402
from ..ops.adaptive_pool import adaptive_max_pool1d, adaptive_max_pool2d  # noqa: F401,E402
from ..ops.pixel_shuffle import pixel_shuffle, pixel_unshuffle  # noqa: F401,E402
from ..ops.interpolate import interpolate  # noqa: F401,E402

# ---------------------------------------------------- conditional normalisation ---
# A scale and shift chosen by another input: FiLM and AdaIN. Their layers in
# nnlite/nn/conditional.py are built from Linear and BatchNorm, which call this
# module, so the functions are written here, below the layers, not beside them.


def _per_channel(t, ndim):
    """(N, C) -> (N, C, 1, ..., 1) so it broadcasts over the ``ndim - 2`` trailing axes."""
    return ops.reshape(t, tuple(t.shape) + (1,) * (ndim - 2))


def film(input, gamma, beta):
    """Feature-wise linear modulation: ``gamma[n, k] * input[n, k, ...] + beta[n, k]``.

    ``input`` has shape ``(N, C, *)``; ``gamma`` and ``beta`` have shape ``(N, C)``.

    >>> import nnlite as nl
    >>> x = nl.ones(2, 3, 4)
    >>> y = film(x, nl.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), nl.full((2, 3), 0.5))
    >>> y[:, :, 0].data.tolist()
    [[1.5, 2.5, 3.5], [0.5, 0.5, 0.5]]
    """
    if input.ndim < 2:
        raise ValueError(f"film: expected input of shape (N, C, *), got {tuple(input.shape)}")
    expected = tuple(input.shape[:2])
    for name, t in (("gamma", gamma), ("beta", beta)):
        if tuple(t.shape) != expected:
            raise ValueError(f"film: {name} must have shape (N, C) = {expected} for input of shape "
                             f"{tuple(input.shape)}, got {tuple(t.shape)}")
    return input * _per_channel(gamma, input.ndim) + _per_channel(beta, input.ndim)


def adaptive_instance_norm(content, style, eps=1e-5):
    """AdaIN: ``std(style) * (content - mean(content)) / std(content) + mean(style)``.

    Means and (biased) variances are taken per example and per channel over the
    positions; ``eps`` is added to both variances before the square root.
    ``content`` and ``style`` have shapes ``(N, C, *)`` with equal N and C (the
    positions may differ). No parameters: the style is another input.
    """
    if content.ndim < 3 or style.ndim < 3 or tuple(content.shape[:2]) != tuple(style.shape[:2]):
        raise ValueError(f"adaptive_instance_norm: expected content and style of shape (N, C, *) with the "
                         f"same N and C, got {tuple(content.shape)} and {tuple(style.shape)}")
    axes = tuple(range(2, style.ndim))
    style_mean = ops.mean(style, axes)
    style_std = ops.sqrt(ops.var(style, axes, correction=0) + eps)
    _check_positions("adaptive_instance_norm", content)   # (instance_norm would name itself)
    normalized = instance_norm(content, eps=eps)
    return film(normalized, style_std, style_mean)
