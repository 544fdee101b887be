"""The candidate operations of a DARTS edge on 1-D signals, and the MixedOp that blends them.

Every candidate maps (N, C, L) to (N, C, L), so any of them can sit on any
edge of a cell:

========================  ==================================================
``conv_3``, ``conv_5``    ReLU, Conv1d (kernel 3 or 5), BatchNorm
``dil_conv_3``            ReLU, Conv1d kernel 3 with dilation 2 (sees 5 inputs with 3 weights), BatchNorm
``sep_conv_3``            ReLU, depthwise Conv1d kernel 3, pointwise Conv1d, BatchNorm
``max_pool_3``            MaxPool1d(3, stride 1)
``avg_pool_3``            AvgPool1d(3, stride 1)
``skip_connect``          identity
``none``                  zero: the edge is absent
========================  ==================================================

As in the DARTS paper the BatchNorms of the search network have no learnable
affine part (``affine=False``): a learnable scale would let an operation's
output grow or shrink and confuse it with its architecture weight.
"""
from collections import OrderedDict

from .. import nn

__all__ = ["PRIMITIVES", "make_operation", "MixedOp"]


def _conv(channels, kernel_size, dilation=1, affine=False):
    padding = dilation * (kernel_size - 1) // 2   # keeps the length
    return nn.Sequential(nn.ReLU(), nn.Conv1d(channels, channels, kernel_size, padding=padding, dilation=dilation,
                                              bias=False), nn.BatchNorm1d(channels, affine=affine))


def _sep_conv(channels, kernel_size, affine=False):
    return nn.Sequential(nn.ReLU(),
                         nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels,
                                   bias=False),
                         nn.Conv1d(channels, channels, 1, bias=False), nn.BatchNorm1d(channels, affine=affine))


class Zero(nn.Module):
    """The ``none`` operation: an edge that carries nothing."""

    def forward(self, x):
        return x * 0.0


_FACTORIES = OrderedDict([
    ("none", lambda c, affine: Zero()),
    ("max_pool_3", lambda c, affine: nn.MaxPool1d(3, stride=1, padding=1)),
    ("avg_pool_3", lambda c, affine: nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False)),
    ("skip_connect", lambda c, affine: nn.Identity()),
    ("conv_3", lambda c, affine: _conv(c, 3, affine=affine)),
    ("conv_5", lambda c, affine: _conv(c, 5, affine=affine)),
    ("dil_conv_3", lambda c, affine: _conv(c, 3, dilation=2, affine=affine)),
    ("sep_conv_3", lambda c, affine: _sep_conv(c, 3, affine=affine)),
])

#: The candidate operation names, in the order of the columns of the architecture parameters.
PRIMITIVES = tuple(_FACTORIES)


def make_operation(name, channels, affine=False):
    """A fresh ``name`` operation on ``channels`` channels (one of :data:`PRIMITIVES`)."""
    if name not in _FACTORIES:
        raise ValueError(f"make_operation: unknown operation {name!r}; expected one of {PRIMITIVES}")
    return _FACTORIES[name](channels, affine)


class MixedOp(nn.Module):
    r"""All candidates on one edge, blended by the softmax of that edge's architecture parameters.

    .. math:: \bar o(x) = \sum_{o \in \mathcal O} \frac{\exp \alpha_o}{\sum_{o'} \exp \alpha_{o'}}\, o(x)

    The weights are passed in (``forward(x, weights)``): the architecture
    parameters belong to the network, shared by all its cells, not to the edge.
    The ``none`` operation adds nothing to the sum and is not computed, but its
    weight still takes its share of the softmax.
    """

    def __init__(self, channels, primitives=PRIMITIVES):
        super().__init__()
        self.primitives = tuple(primitives)
        if not self.primitives:
            raise ValueError("MixedOp: expected at least one primitive, got none")
        self.ops = nn.ModuleList([make_operation(p, channels) for p in self.primitives])

    def forward(self, x, weights):
        out = None
        for i, (name, op) in enumerate(zip(self.primitives, self.ops)):
            if name == "none":
                continue
            term = weights[i] * op(x)
            out = term if out is None else out + term
        return x * 0.0 if out is None else out
