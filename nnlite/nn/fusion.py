"""Fusing a Linear with the ReLU after it: one kernel pass instead of two, on request.

A Linear followed by a ReLU runs as two operations: the matrix product writes
its output, then the ReLU reads it back and writes it again. The GEMM kernel
can instead apply bias and ReLU while the output is still in cache
(:func:`nnlite.nn.functional.linear_relu`), which saves a pass over the
activations and one graph node; at batch size 1, where a layer's arithmetic
takes less time than the Python around it, that is a quarter of an MLP's
latency.

Nothing fuses behind your back: :class:`~nnlite.nn.Sequential` calls its
modules one by one. :func:`fuse_linear_relu` rewrites a model once, in place,
the way ``torch.ao.quantization.fuse_modules`` does: the Linear becomes a
:class:`LinearReLU` (the same parameters, so the same ``state_dict`` keys and
the same optimizer), and the ReLU becomes an :class:`~nnlite.nn.Identity`.
Outputs and gradients are unchanged, bit for bit.
"""
from . import functional as F
from .rectifier import ReLU
from .container import Sequential
from .linear import Identity, Linear

__all__ = ["LinearReLU", "fuse_linear_relu"]


class LinearReLU(Linear):
    """``relu(x W^T + b)`` in one kernel pass: a :class:`~nnlite.nn.Linear` with its ReLU fused.

    Made by :func:`fuse_linear_relu`, or directly with Linear's arguments.

    >>> import nnlite as nl
    >>> layer = nl.nn.LinearReLU(4, 3)
    >>> bool((layer(nl.randn(2, 4)).data >= 0).all())
    True
    """

    def forward(self, input):
        try:
            return F.linear_relu(input, self.weight, self.bias)
        except ValueError:
            self._check_input(input)   # name the layer in the message
            raise

    @classmethod
    def from_linear(cls, linear):
        """A LinearReLU holding ``linear``'s own Parameter objects (no copy)."""
        fused = cls(0, 0, bias=linear.bias is not None, dtype=linear.weight.dtype)
        fused.in_features, fused.out_features = linear.in_features, linear.out_features
        fused.weight = linear.weight
        if linear.bias is not None:
            fused.bias = linear.bias
        fused.train(linear.training)
        return fused


def _hooked(module):
    return bool(module._forward_pre_hooks or module._forward_hooks or module._backward_hooks)


def fuse_linear_relu(model):
    """In every Sequential of ``model``, fuse each Linear directly followed by a ReLU; returns ``model``.

    The pair becomes ``LinearReLU`` + ``Identity`` under the same names.
    A pair with forward or backward hooks on either module is left alone (a hook
    there expects the value or gradient between the two), and so are subclasses of
    Linear or ReLU, whose ``forward`` may do more.

    >>> import nnlite as nl
    >>> mlp = nl.nn.Sequential(nl.nn.Linear(4, 8), nl.nn.ReLU(), nl.nn.Linear(8, 2))
    >>> [type(m).__name__ for m in nl.nn.fuse_linear_relu(mlp)]
    ['LinearReLU', 'Identity', 'Linear']
    """
    for sequential in [m for m in model.modules() if isinstance(m, Sequential)]:
        names = list(sequential._modules)
        for first, second in zip(names, names[1:]):
            linear, relu = sequential._modules[first], sequential._modules[second]
            if type(linear) is Linear and type(relu) is ReLU and not (_hooked(linear) or _hooked(relu)):
                sequential.add_module(first, LinearReLU.from_linear(linear))
                sequential.add_module(second, Identity())
    return model
