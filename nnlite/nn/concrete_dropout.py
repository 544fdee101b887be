"""Concrete dropout: a dropout rate learned by gradient descent.

Gal, Hron & Kendall (2017), "Concrete Dropout". Ordinary dropout's rate ``p``
is a hyperparameter: Bernoulli masks have no gradient with respect to it. Concrete
dropout replaces each drop decision by its continuous relaxation (the
*Concrete* or Gumbel-softmax distribution, Maddison et al., 2017): with
``u ~ U(0, 1)`` and temperature ``t``,

.. math::

    z = \\sigma\\Big(\\tfrac{1}{t}\\big(\\log p - \\log(1 - p) + \\log u - \\log(1 - u)\\big)\\Big),
    \\qquad \\tilde x = x \\odot (1 - z) / (1 - p),

so ``z`` is nearly 0 or 1 (drop) for small ``t``, drops with probability
``p``, and is differentiable in ``p``. Learning ``p`` by the training loss
alone would drive it to 0 (noise never helps the fit), so the variational
objective adds, for the wrapped layer with weight ``W`` and ``K`` inputs,

.. math::

    \\frac{\\text{weight\\_regularizer}}{1 - p} \\lVert W\\rVert^2
      + \\text{dropout\\_regularizer}\\cdot K \\big(p\\log p + (1-p)\\log(1-p)\\big),

the first pulling ``p`` down, the second (a negative entropy) towards 1/2. With
``N`` training examples the paper sets ``weight_regularizer = l**2 / N`` (``l``
a prior length-scale) and ``dropout_regularizer = 2 / (tau * N)`` (``tau`` the
model precision): with more data both shrink and the data term wins, so ``p``
falls — the model becomes more certain as it sees more examples.

The rate is stored as ``p_logit = log(p / (1 - p))``, a Parameter of kind
``"regularization"``, so any real value is a valid rate, and every quantity
above is a smooth function of it (``log p = -softplus(-p_logit)``).
"""
import math

from .. import ops
from ..parameter import Parameter
from . import init
from .module import Module

__all__ = ["ConcreteDropout"]


class ConcreteDropout(Module):
    """``layer(concrete_dropout(input))`` with a learned drop rate ``p``; add :meth:`regularization` to the loss.

    ``layer`` is the wrapped module (its parameters of kind ``"weight"`` are the
    ``W`` of the penalty, its input size the ``K``); ``p`` starts at ``init_p``.
    In eval mode the input passes unchanged (the rescaling by ``1 / (1 - p)``
    keeps expectations equal), like :class:`~nnlite.nn.Dropout`. Masks come
    from the seeded generator (``nl.manual_seed``).

    >>> import nnlite as nl
    >>> layer = ConcreteDropout(nl.nn.Linear(4, 2), init_p=0.2)
    >>> round(float(layer.p.data), 6), layer.p_logit.kind
    (0.2, 'regularization')
    >>> layer(nl.randn(3, 4)).shape
    (3, 2)
    """

    def __init__(self, layer, init_p=0.1, temperature=0.1, weight_regularizer=1e-6, dropout_regularizer=1e-5,
                 dtype=None):
        super().__init__()
        if not isinstance(layer, Module):
            raise TypeError(f"ConcreteDropout: layer must be an nn.Module, got {type(layer).__name__}")
        if not 0.0 < init_p < 1.0:
            raise ValueError(f"ConcreteDropout: init_p must be in (0, 1), got {init_p}")
        if not temperature > 0:
            raise ValueError(f"ConcreteDropout: temperature must be positive, got {temperature}")
        # A negative weight or entropy term would reward large weights or a certain rate.
        for name, value in (("weight_regularizer", weight_regularizer), ("dropout_regularizer", dropout_regularizer)):
            if not value >= 0:
                raise ValueError(f"ConcreteDropout: {name} must be >= 0, got {value}")
        self.layer = layer
        self.init_p, self.temperature = float(init_p), float(temperature)
        self.weight_regularizer, self.dropout_regularizer = float(weight_regularizer), float(dropout_regularizer)
        self.p_logit = Parameter(ops.empty((), dtype=dtype), kind="regularization")
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.p_logit, math.log(self.init_p / (1.0 - self.init_p)))

    @property
    def p(self):
        """The drop rate sigmoid(p_logit), as a Tensor (differentiable)."""
        return ops.sigmoid(self.p_logit)

    def forward(self, input):
        if not self.training:
            return self.layer(input)
        u = ops.rand_like(input)
        eps = 1e-7   # keeps log u and log(1 - u) finite when u lands on 0
        noise = ops.log(u + eps) - ops.log(1.0 - u + eps)
        drop = ops.sigmoid((self.p_logit + noise) / self.temperature)
        return self.layer(input * (1.0 - drop) / ops.sigmoid(-self.p_logit))

    def regularization(self):
        """The penalty to add to the loss: the weight term plus the (negative) entropy term."""
        squares = sum((w * w).sum() for w in self.layer.parameters() if w.kind == "weight")
        keep = ops.sigmoid(-self.p_logit)                               # 1 - p
        log_p, log_keep = -ops.softplus(-self.p_logit), -ops.softplus(self.p_logit)
        negative_entropy = self.p * log_p + keep * log_keep
        input_dim = self._input_dim()
        return self.weight_regularizer * squares / keep + self.dropout_regularizer * input_dim * negative_entropy

    def _input_dim(self):
        for name in ("in_features", "in_channels", "embed_dim", "input_size"):
            if hasattr(self.layer, name):
                return int(getattr(self.layer, name))
        raise TypeError(f"ConcreteDropout: cannot tell the input size of {type(self.layer).__name__}; "
                        "it needs one of in_features, in_channels, embed_dim or input_size")

    def extra_repr(self):
        return (f"p={float(self.p.data):.4g}, temperature={self.temperature}, "
                f"weight_regularizer={self.weight_regularizer}, dropout_regularizer={self.dropout_regularizer}")
