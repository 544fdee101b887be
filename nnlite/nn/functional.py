"""``nnlite.nn.functional`` (import as F): the stateless form of every layer.

Layers in ``nnlite.nn`` hold parameters and call these functions; the functions
call the differentiable operations in ``nnlite.ops``. Names, arguments and
defaults are PyTorch's.
"""
import numpy as np

from ..ops import (gelu, log_softmax, one_hot, relu, sigmoid, silu, softmax, softplus,  # noqa: F401
                   tanh)
from .. import ops
from ..ops.inplace import elu_, leaky_relu_, selu_

# ------------------------------------------------------------- activations ---
# PyTorch's leaky_relu, elu and selu take ``inplace``: the operation itself is in
# nnlite/ops/pointwise.py, its in-place form (which overwrites the input and
# moves its history) in nnlite/ops/inplace.py, and these choose between them.


def _inplace_flag(op, inplace):
    if not isinstance(inplace, (bool, np.bool_)):   # F.selu(x, 1.0) meant something else
        raise TypeError(f"{op}: inplace must be True or False, got {type(inplace).__name__} {inplace!r}")
    return inplace


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


# ------------------------------------------------------------------ layers ---
# Each function below is the stateless form of a layer in nnlite.nn; the ops it
# calls (nnlite/ops/nn_ops.py, conv.py, norm.py, loss.py) hold forward and backward.
from ..ops.nn_ops import dropout, embedding, linear, linear_relu, pad  # noqa: F401,E402
from ..ops.norm import batch_norm, group_norm, layer_norm, rms_norm  # noqa: F401,E402
from ..ops.conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d,  # noqa: F401,E402
                        conv1d, conv2d, lp_pool1d, lp_pool2d, max_pool1d, max_pool2d)
from ..ops.loss import (binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,  # noqa: F401,E402
                        l1_loss, mse_loss, nll_loss, smooth_l1_loss)

# --------------------------------------------------------------- attention ---
# softmax(Q K^T / sqrt(d) + mask) V from matmul and softmax ops (nnlite/ops/attention.py);
# glu, the gate of gated linear units, lives with its module in nnlite/nn/gating.py.
from ..ops.attention import scaled_dot_product_attention  # noqa: F401,E402
from .gating import glu  # noqa: F401,E402

# ------------------------------------------------------------ distillation ---
# A student matching a teacher's softened outputs (nnlite/nn/distillation.py).
from .distillation import distillation_loss  # noqa: F401,E402

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


def _instance_norm(input, eps, op):
    """Standardise each channel of each example over its positions (instance norm, no affine map)."""
    if input.data.size // max(input.shape[0] * input.shape[1], 1) < 2:
        raise ValueError(f"{op}: expected more than 1 position per channel, got shape {tuple(input.shape)}")
    # Group norm with one channel per group is exactly instance norm.
    return group_norm(input, input.shape[1], eps=eps)


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
    normalized = _instance_norm(content, eps, "adaptive_instance_norm")
    return film(normalized, style_std, style_mean)
