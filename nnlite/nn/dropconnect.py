"""DropConnect: dropout applied to a layer's weights instead of its outputs.

Wan, Zeiler, Zhang, LeCun and Fergus (2013), "Regularization of Neural Networks
using DropConnect". Dropout zeroes *activations*; DropConnect zeroes
*parameters* — each weight of the layer is kept with probability 1 - p and
the kept ones are scaled by 1/(1 - p)::

    y = x (M * W)^T / (1 - p) + b,     M_ij ~ Bernoulli(1 - p)

so that E[y] is the plain layer's output, and in eval mode the layer is exactly
``nn.Linear``. The gradient reaches only the weights that were kept in that
forward pass (the mask multiplies them). One mask is drawn per forward call and
shared by every example of the batch, the cheap variant used in practice (the
paper's per-example masks cost a weight matrix per example). The bias is not
dropped.

The concept map's "dropout: random parameter zeroing" is this layer;
:class:`~nnlite.nn.Dropout` zeroes activations.
"""
from . import functional as F
from .linear import Linear

__all__ = ["DropConnectLinear"]


class DropConnectLinear(Linear):
    """A :class:`~nnlite.nn.Linear` whose weights are dropped with probability ``p`` in training.

    Same parameters and ``state_dict`` keys as ``Linear`` (a checkpoint moves
    between the two). ``generator`` (an :class:`nnlite.Generator`) fixes the
    masks; by default they come from the global seeded generator.

    >>> import nnlite as nl
    >>> layer = nl.nn.DropConnectLinear(4, 3, p=0.5).eval()
    >>> x = nl.randn(2, 4)
    >>> bool((layer(x).data == nl.nn.functional.linear(x, layer.weight, layer.bias).data).all())
    True
    """

    def __init__(self, in_features, out_features, bias=True, p=0.5, generator=None, device=None, dtype=None):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropConnectLinear: p must be in [0, 1), got {p}")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.p, self.generator = float(p), generator

    def forward(self, input):
        if not self.training or self.p == 0.0:
            return super().forward(input)
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            self._check_input(input)   # raises, naming the layer
        weight = F.dropout(self.weight, self.p, training=True, generator=self.generator)
        return F.linear(input, weight, self.bias)

    def extra_repr(self):
        return super().extra_repr() + f", p={self.p}"
