"""Normalisation layers: a learned scale and shift after standardising activations.

Each layer's ``weight`` is a Parameter of kind "scale" (initialised to 1) and
its ``bias`` of kind "shift" (initialised to 0), so at initialisation the layer
outputs standardised values. Batch norm's running statistics are *buffers*:
saved in the ``state_dict``, never touched by the optimizer.
Constructor arguments are PyTorch's; ``device`` is accepted and ignored (CPU only).
"""
import warnings

import numpy as np

from .. import ops
from ..parameter import Buffer, Parameter
from . import functional as F
from . import init
from ._checks import require_ints
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "RMSNorm"]


def _affine(module, shape, enabled, bias=True, dtype=None):
    """Give ``module`` a learned scale (``weight``) and shift (``bias``) of ``shape``, or None."""
    module.register_parameter("weight", Parameter(ops.empty(*shape, dtype=dtype), kind="scale")
                              if enabled else None)
    module.register_parameter("bias", Parameter(ops.empty(*shape, dtype=dtype), kind="shift")
                              if enabled and bias else None)


def _reset_affine(module):
    """Scale 1, shift 0: at initialisation the layer outputs the standardised values."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


def _running_stats(module, num_features, enabled, dtype=None):
    """Give ``module`` the buffers ``running_mean`` (zeros), ``running_var`` (ones) and
    ``num_batches_tracked``, or register them as None (not in the state_dict)."""
    if enabled:
        module.running_mean = Buffer(ops.zeros(num_features, dtype=dtype))
        module.running_var = Buffer(ops.ones(num_features, dtype=dtype))
        module.num_batches_tracked = Buffer(np.array(0, dtype=np.int64))
    else:
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            module.register_buffer(name, None)


def _reset_running_stats(module):
    if module.running_mean is not None:
        module.running_mean.data[...] = 0
        module.running_var.data[...] = 1
        module.num_batches_tracked.data[...] = 0


def _normalized_shape(layer, normalized_shape):
    """``normalized_shape`` as a tuple of ints, at least one of them: the trailing dims to normalise."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    for i, size in enumerate(shape):
        require_ints(layer, **{f"normalized_shape[{i}]": size})
    if not shape:
        raise ValueError(f"{layer}: normalized_shape must have at least one element, got {normalized_shape!r}")
    return shape


def _check_trailing(layer, normalized_shape, input):
    k = len(normalized_shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != normalized_shape:
        raise ValueError(f"{layer}(normalized_shape={normalized_shape}): input has trailing "
                         f"shape {tuple(input.shape[-k:])} (shape {tuple(input.shape)})")


class _ChannelNorm(Module):
    """What batch norm and instance norm share: a per-channel scale and shift (``affine``) and
    running statistics (``track_running_stats``), each optional, and their repr."""
    # As in PyTorch, a checkpoint without the batch count (one saved before PyTorch kept it)
    # loads, and the count keeps its current value.
    _optional_state_keys = ("num_batches_tracked",)

    def _setup(self, num_features, eps, momentum, affine, track_running_stats, bias, dtype):
        if affine or track_running_stats:   # then it sizes tensors, which PyTorch needs an int for
            require_ints(type(self).__name__, num_features=num_features)
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _affine(self, (self.num_features,), affine, bias, dtype)
        _running_stats(self, self.num_features, track_running_stats, dtype)
        self.reset_parameters()

    def reset_running_stats(self):
        _reset_running_stats(self)

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_ChannelNorm):
    """Ioffe & Szegedy (2015), "Batch Normalization".

    Training: normalise with the batch's mean and (biased) variance, and move
    ``running_mean``/``running_var`` towards them: ``running = (1 - momentum) *
    running + momentum * batch`` (the variance unbiased). ``momentum=None``
    gives the cumulative average ``1 / num_batches_tracked`` instead.
    Eval: normalise with the running statistics, so one sample's output does
    not depend on the others in its batch.
    """
    _input_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 device=None, dtype=None, bias=True):
        super().__init__()
        self._setup(num_features, eps, momentum, affine, track_running_stats, bias, dtype)

    def forward(self, input):
        return F.batch_norm(input, *self._batch_norm_arguments(input))

    def _batch_norm_arguments(self, input):
        """Check ``input`` and count the batch; returns the arguments of ``F.batch_norm`` after the
        input: running statistics, weight, bias, training, momentum and eps."""
        name = f"{type(self).__name__}(num_features={self.num_features})"
        if input.ndim not in self._input_dims:
            raise ValueError(f"{name}: expected a {' or '.join(map(str, self._input_dims))}-D input, "
                             f"got shape {tuple(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {input.shape[1]} channels (shape {tuple(input.shape)})")
        use_batch_stats = self.training or self.running_mean is None
        values_per_channel = input.shape[0] * int(np.prod(input.shape[2:]))
        if use_batch_stats and values_per_channel == 1:
            raise ValueError(f"{name}: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(input.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            self.num_batches_tracked._bump_version()
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # Hand batch_norm the running stats when evaluating (it normalises with them, if any)
        # or when they are tracked (in training it updates them); training with
        # track_running_stats=False passes None, so they are neither used nor changed.
        track = not self.training or self.track_running_stats
        return (self.running_mean if track else None, self.running_var if track else None, self.weight,
                self.bias, use_batch_stats, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs; statistics per channel C."""
    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) images; statistics per channel C."""
    _input_dims = (4,)


class LayerNorm(Module):
    """Standardise each sample over its last dims (Ba, Kiros & Hinton, 2016).

    Independent of the batch, so it behaves the same in training and eval;
    the norm of choice in transformers. ``weight``/``bias`` have shape
    ``normalized_shape``.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None,
                 dtype=None):
        super().__init__()
        self.normalized_shape, self.eps = _normalized_shape("LayerNorm", normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        _affine(self, self.normalized_shape, elementwise_affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        _check_trailing("LayerNorm", self.normalized_shape, input)
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Standardise each sample over groups of channels (Wu & He, 2018).

    Works with any batch size (even 1), where batch norm's statistics are noisy.
    ``num_groups=1`` is layer norm over ``(C, *)``; ``num_groups=C`` is instance norm.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, bias=True):
        super().__init__()
        require_ints("GroupNorm", num_groups=num_groups, num_channels=num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine(self, (num_channels,), affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        channels = input.shape[1] if input.ndim >= 2 else "no"
        if channels != self.num_channels:
            message = (f"GroupNorm(num_channels={self.num_channels}): input has {channels} channels "
                       f"(shape {tuple(input.shape)})")
            if self.affine or input.ndim < 2:
                raise ValueError(message)
            # Nothing is sized by num_channels, so the layer works, as PyTorch's does, with a warning
            # (group_norm still needs the channels to split into num_groups groups).
            warnings.warn(message + "; num_channels is unused when affine=False", stacklevel=3)
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, bias={self.bias is not None}"


class RMSNorm(Module):
    """x / sqrt(mean(x**2) + eps) * weight (Zhang & Sennrich, 2019): no centring, no shift.

    Cheaper than LayerNorm and used by LLaMA-style models. ``eps=None`` uses the
    machine epsilon of the input's dtype, as PyTorch does.
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape, self.eps = _normalized_shape("RMSNorm", normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        _affine(self, self.normalized_shape, elementwise_affine, bias=False, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, x):   # PyTorch's RMSNorm names its input x
        _check_trailing("RMSNorm", self.normalized_shape, x)
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
