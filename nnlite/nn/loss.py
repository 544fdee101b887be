"""Loss modules: the functions in ``nnlite.nn.functional`` with their options stored.

Class weights (``weight``, ``pos_weight``) are buffers, as in PyTorch, so they
appear in the ``state_dict`` and follow ``model.double()``. The constructors take
PyTorch's arguments in PyTorch's order, including the deprecated
``size_average``/``reduce`` pair (mapped onto ``reduction`` as PyTorch does).
The margin and embedding losses are in ``margin_loss.py``.
"""
from ..parameter import Buffer
from ..tensor import Tensor
from . import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss",
           "BCEWithLogitsLoss", "KLDivLoss", "BCELoss", "PoissonNLLLoss", "GaussianNLLLoss"]


class _Loss(Module):
    _reductions = ("none", "mean", "sum")
    _options = ()   # attributes the repr shows before the reduction

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        if size_average is not None or reduce is not None:  # PyTorch's legacy pair
            reduction = "none" if reduce is False else ("sum" if size_average is False else "mean")
        if reduction not in self._reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {self._reductions}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def _buffer(self, name, value):
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"{type(self).__name__}: {name} must be a Tensor or None, got "
                            f"{type(value).__name__}")
        self.register_buffer(name, None if value is None else Buffer(value.data))

    def extra_repr(self):
        options = [f"{name}={getattr(self, name)!r}" for name in self._options]
        return ", ".join(options + [f"reduction={self.reduction!r}"])


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (N, C[, ...]) and class indices or class probabilities.

    >>> import nnlite as nl
    >>> loss = nl.nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss(nl.randn(4, 3), nl.tensor([0, 2, 1, 2])).shape
    ()
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (use after LogSoftmax)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Squared error below ``delta``, absolute error (times delta) above it."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """Huber loss divided by ``beta``."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one numerically stable step.

    ``pos_weight`` (one per class) > 1 favours recall on the positives.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)
        self._buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """KL divergence; ``input`` is log-probabilities, ``target`` probabilities (or log with
    ``log_target=True``). Use ``reduction='batchmean'`` for the true KL per sample."""
    _reductions = ("none", "mean", "sum", "batchmean")

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1] (after a Sigmoid); each log is floored at -100.

    Prefer :class:`BCEWithLogitsLoss` on logits: it never rounds a probability to 0 or 1.

    >>> import nnlite as nl
    >>> nl.nn.BCELoss(weight=nl.tensor([1.0, 2.0]))
    BCELoss(reduction='mean')
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self._buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood of counts; ``log_input=True`` takes the log of the rate."""
    _options = ("log_input", "full", "eps")

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                  reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood of ``target`` given a predicted mean and variance.

    >>> import nnlite as nl
    >>> nl.nn.GaussianNLLLoss(full=True)
    GaussianNLLLoss(full=True, eps=1e-06, reduction='mean')
    """
    _options = ("full", "eps")

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)
