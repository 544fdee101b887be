r"""LoRA: fine-tune a large Linear through a small low-rank update (Hu et al. 2021).

Fine-tuning changes a pre-trained weight :math:`W_0` (out × in) by some
:math:`\Delta W`. LoRA bets that the change needs few directions and learns it
as a product of two thin matrices, leaving :math:`W_0` frozen:

.. math::

    y = x W_0^T + b + \frac{\alpha}{r}\, x A^T B^T, \qquad
    A \in \mathbb{R}^{r \times \text{in}},\; B \in \mathbb{R}^{\text{out} \times r}

Only :math:`A` and :math:`B` are trained: :math:`r(\text{in} + \text{out})`
numbers instead of :math:`\text{in} \cdot \text{out}`. :math:`B` starts at zero, so
at step 0 the layer computes exactly what the pre-trained one did; :math:`A`
starts like a Linear weight (Kaiming-uniform), so gradients reach :math:`B`
from the first step. Scaling by :math:`\alpha / r` lets one learning rate work
across ranks. After training, :meth:`LoRALinear.merge` folds the update into
:math:`W_0` and inference costs nothing extra; :meth:`LoRALinear.unmerge`
takes it out again (for instance to swap in another task's adapter).
"""
import math

import numpy as np

from .. import ops
from .._kernels import checks
from ..autograd import no_grad
from ..parameter import Parameter
from . import init
from ._checks import require_ints
from .linear import Linear
from .module import Module

__all__ = ["LoRALinear", "add_lora", "merge_lora"]


class LoRALinear(Module):
    """A frozen ``base`` Linear plus a trainable rank-``r`` update scaled by ``alpha / r``.

    Parameters: ``base.weight`` and ``base.bias`` (frozen), ``lora_A`` (r, in_features)
    and ``lora_B`` (out_features, r), both kind "weight".

    >>> import nnlite as nl
    >>> base = nl.nn.Linear(16, 8)
    >>> layer = nl.nn.LoRALinear(base, r=2, alpha=4)
    >>> layer.num_parameters(trainable_only=True)        # 2 * (16 + 8)
    48
    >>> x = nl.randn(3, 16)
    >>> bool(nl.equal(layer(x), base(x)))                # B = 0 at the start
    True
    """

    def __init__(self, base, r=4, alpha=1.0, dropout=0.0):
        super().__init__()
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear: base must be an nn.Linear, got {type(base).__name__}")
        r, alpha, dropout = _lora_arguments("LoRALinear", r, alpha, dropout)
        self.r, self.alpha = r, alpha
        self.scaling = self.alpha / self.r
        base.requires_grad_(False)
        self.base = base
        dtype = base.weight.dtype
        self.lora_A = Parameter(ops.empty(self.r, base.in_features, dtype=dtype), kind="weight")
        self.lora_B = Parameter(ops.zeros(base.out_features, self.r, dtype=dtype), kind="weight")
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = dropout
        self.merged = False

    @property
    def in_features(self):
        return self.base.in_features

    @property
    def out_features(self):
        return self.base.out_features

    def delta_weight(self):
        """The update :math:`(\\alpha/r) B A`, shaped like the base weight."""
        return ops.matmul(self.lora_B, self.lora_A) * self.scaling

    def forward(self, input):
        out = self.base(input)
        if self.merged:
            return out
        x = ops.dropout(input, self.dropout, self.training) if self.dropout else input
        return out + ops.matmul(ops.matmul(x, self.lora_A.T), self.lora_B.T) * self.scaling

    def merge(self):
        """Add the update into ``base.weight`` (one Linear at inference); no-op if merged."""
        if not self.merged:
            with no_grad():
                self.base.weight.data += self.delta_weight().data
            self.base.weight._bump_version()
            self.merged = True
        return self

    def unmerge(self):
        """Subtract the update from ``base.weight`` again; no-op if not merged."""
        if self.merged:
            with no_grad():
                self.base.weight.data -= self.delta_weight().data
            self.base.weight._bump_version()
            self.merged = False
        return self

    def extra_repr(self):
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _lora_arguments(op, r, alpha, dropout):
    """(r, alpha, dropout) checked: a rank that is an int >= 1, a finite real ``alpha`` (a NaN or
    infinite one would make every output NaN or infinite from the first step on) and a dropout
    probability in [0, 1). A bool is refused for each, as a mistake rather than 1 or 0."""
    require_ints(op, r=r)
    if r < 1:
        raise ValueError(f"{op}: rank r must be a positive integer, got {r!r}")
    for name, value in (("alpha", alpha), ("dropout", dropout)):
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} must be a real number, got bool")
    alpha = checks.real_number(op, "alpha", alpha)
    if not math.isfinite(alpha):
        raise ValueError(f"{op}: alpha must be a finite number, got {alpha!r}")
    return int(r), alpha, checks.real_in(op, "dropout", dropout, 0.0, 1.0, high_open=True)


def _require_module(op, model):
    if not isinstance(model, Module):
        raise TypeError(f"{op}: model must be an nn.Module, got {type(model).__name__}")


def _parent_and_name(model, dotted):
    parent, _, name = dotted.rpartition(".")
    return model.get_submodule(parent), name


def add_lora(model, target_modules=None, r=4, alpha=1.0, dropout=0.0):
    """Freeze ``model`` and wrap Linears in :class:`LoRALinear` (in place); returns ``model``.

    ``target_modules`` lists names (as in ``named_modules()``, e.g. ``["0", "fc.2"]``)
    or name suffixes to match; ``None`` wraps every Linear. Only the LoRA
    matrices, and parameters outside the model's Linears that you unfreeze
    yourself (a new head), are then trained.

    >>> import nnlite as nl
    >>> m = nl.nn.Sequential(nl.nn.Linear(8, 8), nl.nn.ReLU(), nl.nn.Linear(8, 2))
    >>> _ = nl.nn.lora.add_lora(m, target_modules=["0"], r=2)
    >>> type(m[0]).__name__, m.num_parameters(trainable_only=True)
    ('LoRALinear', 32)
    """
    _require_module("add_lora", model)
    if target_modules is not None:
        # a lone string would be read letter by letter, each letter a name suffix to match
        if not (isinstance(target_modules, (list, tuple, set)) and all(isinstance(t, str) for t in target_modules)):
            hint = f" (one name is written [{target_modules!r}])" if isinstance(target_modules, str) else ""
            raise TypeError(f"add_lora: target_modules must be None or a list of module names, got "
                            f"{target_modules!r}{hint}")
        target_modules = list(target_modules)
    r, alpha, dropout = _lora_arguments("add_lora", r, alpha, dropout)
    model.requires_grad_(False)
    chosen = [name for name, m in model.named_modules()
              if type(m) is Linear and name and (target_modules is None or any(
                  name == t or name.endswith("." + t) for t in target_modules))]
    if target_modules is not None and not chosen:
        raise ValueError(f"add_lora: no Linear in the model matches target_modules={list(target_modules)}")
    for name in chosen:
        parent, attr = _parent_and_name(model, name)
        setattr(parent, attr, LoRALinear(getattr(parent, attr), r=r, alpha=alpha, dropout=dropout))
    return model


def merge_lora(model):
    """Merge every :class:`LoRALinear` and put its base Linear back in its place; returns ``model``."""
    _require_module("merge_lora", model)
    names = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        parent, attr = _parent_and_name(model, name)
        lora = getattr(parent, attr)
        lora.merge()
        setattr(parent, attr, lora.base)
    return model
