"""Instance normalisation: each sample's channels standardised over their own positions.

Batch norm takes a channel's statistics over the whole batch; instance norm
(Ulyanov, Vedaldi & Lempitsky, 2016, "Instance Normalization: The Missing
Ingredient for Fast Stylization") takes them over one sample's positions only,
so an image's contrast is removed image by image — what style transfer wants.
It is group norm with one channel per group, and runs on the same kernels.

Unlike batch norm, by default it learns nothing and keeps nothing
(``affine=False``, ``track_running_stats=False``, PyTorch's defaults): the layer
has no parameters and no buffers, and behaves the same in training and eval.
``affine=True`` adds a scale (``weight``, kind "scale") and a shift (``bias``,
kind "shift") per channel; ``track_running_stats=True`` adds batch norm's
buffers, moved during training by the batch average of the per-sample
statistics and used in eval instead of the sample's own.
"""
import math
import warnings

from .. import ops
from . import functional as F
from .normalization import _ChannelNorm

__all__ = ["InstanceNorm1d", "InstanceNorm2d"]


class _InstanceNorm(_ChannelNorm):
    _unbatched_ndim = None   # 2 for (C, L), 3 for (C, H, W); one more with a batch dim

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False,
                 device=None, dtype=None, *, bias=True):
        super().__init__()
        # num_batches_tracked is kept (PyTorch's state_dict has it) but, as in PyTorch, never counts:
        # momentum=None means momentum 0 here, not a cumulative average.
        self._setup(num_features, eps, momentum, affine, track_running_stats, bias, dtype)

    def forward(self, input):
        self._check_input(input)
        batched = input.ndim == self._unbatched_ndim + 1
        x = input if batched else ops.unsqueeze(input, 0)
        use_input_stats = self.training or not self.track_running_stats
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out if batched else ops.squeeze(out, 0)

    def _check_input(self, input):
        name, shape = f"{type(self).__name__}(num_features={self.num_features})", tuple(input.shape)
        dims = (self._unbatched_ndim, self._unbatched_ndim + 1)
        if input.ndim not in dims:
            raise ValueError(f"{name}: expected a {dims[0]}-D (unbatched) or {dims[1]}-D input, got shape {shape}")
        channel_dim = input.ndim - self._unbatched_ndim
        channels = shape[channel_dim]
        if channels != self.num_features:
            message = f"{name}: input has {channels} channels in dim {channel_dim} (shape {shape})"
            if self.affine or self.track_running_stats:
                raise ValueError(message)
            # Nothing is sized by num_features, so the layer works, as PyTorch's does, with a warning.
            warnings.warn(message + "; num_features is unused when affine=False and track_running_stats=False",
                          stacklevel=4)
        if (self.training or not self.track_running_stats) and math.prod(shape[channel_dim + 1:]) <= 1:
            raise ValueError(f"{name}: expected more than 1 spatial element per channel to take statistics "
                             f"over, got shape {shape}")



class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L) sequences or one (C, L) sequence: statistics per sample and
    channel, over the L positions.

    >>> import nnlite as nl
    >>> y = nl.nn.InstanceNorm1d(2)(nl.tensor([[[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]]))
    >>> y.data.mean(axis=2).round(6).tolist(), nl.nn.InstanceNorm1d(2).num_parameters()
    ([[0.0, 0.0]], 0)
    """
    _unbatched_ndim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W) images or one (C, H, W) image: statistics per sample and
    channel, over the H * W positions.

    >>> import nnlite as nl
    >>> norm = nl.nn.InstanceNorm2d(3, affine=True)
    >>> norm(nl.randn(2, 3, 4, 4)).shape, [p.kind for p in norm.parameters()]
    ((2, 3, 4, 4), ['scale', 'shift'])
    """
    _unbatched_ndim = 3
