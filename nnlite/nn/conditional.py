"""Conditional normalisation: a scale and shift chosen by another input.

A normalisation layer's affine map ``y = xhat * weight + bias`` has one
``weight`` and one ``bias`` per feature, the same for every example. In
*conditional* (or *adaptive*) normalisation the scale ``gamma`` and shift
``beta`` are instead computed per example from a second input ``c`` — a
class label, a task code, a question embedding, a style — so one network
behaves differently depending on ``c``::

    y[n, k, ...] = gamma(c[n])[k] * x[n, k, ...] + beta(c[n])[k]

* :class:`~nnlite.nn.FiLM` (Perez et al., 2018, "FiLM: Visual Reasoning with a General
  Conditioning Layer"): ``gamma`` and ``beta`` are linear maps of a
  conditioning vector, applied to any features (no normalisation of its own).
* :class:`~nnlite.nn.ConditionalBatchNorm1d` / :class:`~nnlite.nn.ConditionalBatchNorm2d` (de Vries
  et al., 2017; Dumoulin et al., 2017): batch norm without its own affine map,
  followed by a scale and a shift looked up per class label.
* :func:`~nnlite.nn.functional.adaptive_instance_norm` (AdaIN; Huang & Belongie, 2017, "Arbitrary
  Style Transfer in Real-time with Adaptive Instance Normalization"): each
  channel of ``content`` takes the mean and standard deviation of the same
  channel of ``style``; it has no parameters.
  :class:`~nnlite.nn.AdaptiveInstanceNorm` is the learned form used by StyleGAN (Karras et
  al., 2019): instance norm, then a FiLM from a style vector.

The parameters that produce ``gamma`` have kind ``"scale"`` and those that
produce ``beta`` kind ``"shift"``, like the affine parameters of
``nnlite/nn/normalization.py``. Every layer starts as the identity on its
normalised input (``gamma = 1``, ``beta = 0`` for every condition), as plain
batch norm does, so conditioning is learned, not imposed by the initial values.
Forward and backward are compositions of differentiable ops (``linear``,
``embedding``, ``batch_norm``, ``group_norm``), so higher derivatives work.
The functional forms ``film`` and ``adaptive_instance_norm`` are written in
``nnlite/nn/functional.py``, which Linear and BatchNorm call, so this file
imports them rather than the other way round.
"""
import numpy as np

from .. import ops
from ..ops.normalization import _check_positions
from ..parameter import Parameter
from ..tensor import Tensor, tensor
from . import functional as F
from . import init
from .functional import adaptive_instance_norm, film, instance_norm
from .linear import Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d

__all__ = ["film", "adaptive_instance_norm", "FiLM", "ConditionalBatchNorm1d", "ConditionalBatchNorm2d",
           "AdaptiveInstanceNorm"]


class FiLM(Module):
    """Scale and shift ``num_features`` channels by linear maps of a condition vector.

    ``forward(input, condition)`` with input ``(N, num_features, *)`` and
    condition ``(N, cond_features)`` returns ``gamma * input + beta``, where
    ``gamma = scale(condition)`` and ``beta = shift(condition)`` are two
    :class:`~nnlite.nn.Linear` maps. Their parameters have kinds ``"scale"``
    (``scale.weight``, ``scale.bias``) and ``"shift"`` (``shift.weight``,
    ``shift.bias``). They start at weight 0, ``scale.bias = 1`` and
    ``shift.bias = 0``: the identity for every condition.

    A one-hot ``condition`` makes FiLM a per-condition lookup of gamma and beta;
    a dense one (an embedding, the output of another network) lets related
    conditions share what they learn.

    >>> import nnlite as nl
    >>> import numpy as np
    >>> layer = FiLM(4, cond_features=2)
    >>> x = nl.randn(3, 4, 5)
    >>> bool(np.array_equal(layer(x, nl.randn(3, 2)).data, x.data))
    True
    """

    def __init__(self, num_features, cond_features, device=None, dtype=None):
        super().__init__()
        if num_features < 1 or cond_features < 1:
            raise ValueError(f"FiLM: num_features and cond_features must be >= 1, got "
                             f"num_features={num_features}, cond_features={cond_features}")
        self.num_features, self.cond_features = int(num_features), int(cond_features)
        self.scale = Linear(cond_features, num_features, dtype=dtype)
        self.shift = Linear(cond_features, num_features, dtype=dtype)
        for p in self.scale.parameters():
            p.kind = "scale"
        for p in self.shift.parameters():
            p.kind = "shift"
        self.reset_parameters()

    def reset_parameters(self):
        init.zeros_(self.scale.weight)
        init.ones_(self.scale.bias)
        init.zeros_(self.shift.weight)
        init.zeros_(self.shift.bias)

    def forward(self, input, condition):
        if not isinstance(condition, Tensor) or condition.ndim != 2 or condition.shape[1] != self.cond_features:
            shape = tuple(condition.shape) if isinstance(condition, Tensor) else type(condition).__name__
            raise ValueError(f"FiLM(cond_features={self.cond_features}): condition must have shape "
                             f"(N, {self.cond_features}), got {shape}")
        if input.ndim < 2 or input.shape[1] != self.num_features or input.shape[0] != condition.shape[0]:
            raise ValueError(f"FiLM(num_features={self.num_features}): input must have shape "
                             f"({condition.shape[0]}, {self.num_features}, *), got {tuple(input.shape)}")
        return film(input, self.scale(condition), self.shift(condition))

    def extra_repr(self):
        return f"{self.num_features}, cond_features={self.cond_features}"


class _ConditionalBatchNorm(Module):
    """Batch norm without affine map, then a scale and a shift per class label."""
    _batch_norm = None

    def __init__(self, num_features, num_classes, eps=1e-5, momentum=0.1, track_running_stats=True,
                 device=None, dtype=None):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be >= 1, got {num_classes}")
        self.num_features, self.num_classes = int(num_features), int(num_classes)
        self.bn = self._batch_norm(num_features, eps=eps, momentum=momentum, affine=False,
                                   track_running_stats=track_running_stats, dtype=dtype)
        self.weight = Parameter(ops.empty(num_classes, num_features, dtype=dtype), kind="scale")
        self.bias = Parameter(ops.empty(num_classes, num_features, dtype=dtype), kind="shift")
        self.reset_parameters()

    def reset_parameters(self):
        self.bn.reset_running_stats()
        init.ones_(self.weight)
        init.zeros_(self.bias)

    def forward(self, input, y):
        name = f"{type(self).__name__}(num_features={self.num_features}, num_classes={self.num_classes})"
        labels = y.data if isinstance(y, Tensor) else np.asarray(y)
        if getattr(labels, "ndim", None) != 1 or labels.dtype.kind not in "iu" or len(labels) != input.shape[0]:
            raise ValueError(f"{name}: y must be a 1-D integer tensor of {input.shape[0]} class labels, got "
                             f"{getattr(labels, 'dtype', type(labels).__name__)} of shape "
                             f"{tuple(getattr(labels, 'shape', ()))}")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{name}: class labels must lie in [0, {self.num_classes}), "
                             f"got {int(labels.min())}..{int(labels.max())}")
        y = y if isinstance(y, Tensor) else tensor(labels)
        return film(self.bn(input), F.embedding(y, self.weight), F.embedding(y, self.bias))

    def extra_repr(self):
        return f"{self.num_features}, num_classes={self.num_classes}"


class ConditionalBatchNorm1d(_ConditionalBatchNorm):
    """Conditional batch norm over (N, C) or (N, C, L) inputs; ``forward(input, y)``, y the class labels.

    >>> import nnlite as nl
    >>> cbn = ConditionalBatchNorm1d(3, num_classes=2)
    >>> cbn(nl.randn(8, 3), nl.tensor([0, 1] * 4)).shape
    (8, 3)

    Parameters and buffers as in :class:`~nnlite.nn.ConditionalBatchNorm2d`.
    """
    _batch_norm = BatchNorm1d


class ConditionalBatchNorm2d(_ConditionalBatchNorm):
    """Conditional batch norm over (N, C, H, W) images; ``forward(input, y)``, y the class labels.

    Parameters: ``weight`` (num_classes, num_features), kind "scale",
    initialised to 1, and ``bias`` (num_classes, num_features), kind "shift",
    initialised to 0: row ``y`` is the affine map used for examples of class
    ``y``. The running statistics are shared by all classes (buffers of the
    inner ``bn``, a :class:`~nnlite.nn.BatchNorm2d` with ``affine=False``), so
    in evaluation the layer is plain batch norm followed by the class's map.
    """
    _batch_norm = BatchNorm2d


class AdaptiveInstanceNorm(Module):
    """Instance norm, then a :class:`~nnlite.nn.FiLM` from a style vector (StyleGAN's AdaIN).

    ``forward(input, style)`` with input ``(N, num_features, *)`` (at least one
    position axis) and style ``(N, style_features)``: each channel of each
    example is standardised over its positions, then scaled and shifted by
    ``style.scale(style)`` and ``style.shift(style)``; the learned maps are the
    submodule ``style`` (a FiLM, kinds "scale" and "shift").
    """

    def __init__(self, num_features, style_features, eps=1e-5, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps = int(num_features), eps
        self.style = FiLM(num_features, style_features, dtype=dtype)

    def forward(self, input, style):
        if input.ndim < 3 or input.shape[1] != self.num_features:
            raise ValueError(f"AdaptiveInstanceNorm(num_features={self.num_features}): expected input of "
                             f"shape (N, {self.num_features}, *) with positions, got {tuple(input.shape)}")
        _check_positions(f"AdaptiveInstanceNorm(num_features={self.num_features})", input)
        normalized = instance_norm(input, eps=self.eps)
        return self.style(normalized, style)

    def extra_repr(self):
        return f"{self.num_features}, style_features={self.style.cond_features}, eps={self.eps}"
