"""Fusing a layer with the ReLU after it: one kernel pass instead of two, on request.

A Linear followed by a ReLU runs as two operations: the matrix product writes
its output, then the ReLU reads it back and writes it again. The GEMM kernel
can instead apply bias and ReLU while the output is still in cache
(:func:`nnlite.nn.functional.linear_relu`), which saves a pass over the
activations and one graph node; at batch size 1, where a layer's arithmetic
takes less time than the Python around it, that is a quarter of an MLP's
latency. A Conv2d or Conv1d followed by a ReLU
(:func:`nnlite.nn.functional.conv2d_relu`) has each block of its output clamped
by the convolution kernel as soon as the block is written (the transposed
convolutions are not fused). A
BatchNorm followed by a ReLU is the same story with batch norm's kernels
(:func:`nnlite.nn.functional.batch_norm_relu`): the forward clamps the output
as it writes it, the backward masks the gradient as it reads it, and ReLU's
own passes over the activations are not made (in the small CNN
of the Benchmarks page they took about half as long as the normalisation
itself).

Nothing fuses behind your back: :class:`~nnlite.nn.Sequential` calls its
modules one by one. :func:`fuse_linear_relu`, :func:`fuse_conv_relu` and
:func:`fuse_batch_norm_relu` rewrite a model once, in place, the way
``torch.ao.quantization.fuse_modules`` does: the first layer becomes its fused
class (:class:`LinearReLU`, :class:`ConvReLU1d`, :class:`ConvReLU2d`,
:class:`BatchNormReLU1d`, :class:`BatchNormReLU2d`), holding the same parameters
and buffers, so the same ``state_dict`` keys and the same optimizer, and the
ReLU becomes an :class:`~nnlite.nn.Identity`. Outputs and gradients are
unchanged, bit for bit (float16 and bfloat16 models, which compute in float32
and round, run a fused convolution or batch norm as the two layers).
"""
from ..random import get_rng_state, set_rng_state
from . import functional as F
from .rectifier import ReLU
from .container import Sequential
from .linear import Identity, Linear
from .module import adopt_state
from .conv import Conv1d, Conv2d
from .normalization import BatchNorm1d, BatchNorm2d

__all__ = ["LinearReLU", "fuse_linear_relu", "BatchNormReLU1d", "BatchNormReLU2d", "fuse_batch_norm_relu",
           "ConvReLU1d", "ConvReLU2d", "fuse_conv_relu"]


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
        return _rebuilt(linear, lambda: cls(linear.in_features, linear.out_features,
                                            bias=linear.bias is not None, dtype=linear.weight.dtype))


def _rebuilt(layer, make):
    """``make()``, a fused layer of ``layer``'s configuration, holding ``layer``'s own parameters
    and buffers (adopt_state). Its constructor's initial weights are discarded, so they are drawn
    with the global generator's state put back afterwards: fusing a model leaves every later
    random number (dropout, shuffling, the next layer's weights) as it would have been."""
    state = get_rng_state()
    try:
        fused = make()
    finally:
        set_rng_state(state)
    return adopt_state(fused, layer)


class _ConvReLU:
    """What ConvReLU1d and ConvReLU2d add to their convolution: a constructor from an existing layer
    (their ``forward`` names the fused function)."""

    @classmethod
    def from_conv(cls, conv):
        """A fused layer holding ``conv``'s own Parameter objects (no copy)."""
        plain = cls.__bases__[1]   # Conv1d or Conv2d
        if not isinstance(conv, plain):
            raise TypeError(f"{cls.__name__}.from_conv: expected a {plain.__name__}, got {type(conv).__name__}")
        return _rebuilt(conv, lambda: cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                          conv.padding, conv.dilation, conv.groups, bias=conv.bias is not None,
                                          padding_mode=conv.padding_mode, dtype=conv.weight.dtype))


class ConvReLU1d(_ConvReLU, Conv1d):
    """``relu(Conv1d(x))`` with the ReLU inside the convolution kernel; Conv1d's arguments.

    Made by :func:`fuse_conv_relu`, or directly.

    >>> import nnlite as nl
    >>> layer = nl.nn.ConvReLU1d(1, 2, 3)
    >>> bool((layer(nl.randn(1, 1, 7)).data >= 0).all())
    True
    """

    def forward(self, input):
        return self._convolve(input, F.conv1d_relu)


class ConvReLU2d(_ConvReLU, Conv2d):
    """``relu(Conv2d(x))`` with the ReLU inside the convolution kernel; Conv2d's arguments.

    Made by :func:`fuse_conv_relu`, or directly.

    >>> import nnlite as nl
    >>> layer = nl.nn.ConvReLU2d(1, 2, 3)
    >>> bool((layer(nl.randn(1, 1, 5, 5)).data >= 0).all())
    True
    """

    def forward(self, input):
        return self._convolve(input, F.conv2d_relu)


class _BatchNormReLU:
    """What BatchNormReLU1d and BatchNormReLU2d add to their batch norm: the fused function,
    and a constructor from an existing layer."""

    def forward(self, input):
        return F.batch_norm_relu(input, *self._batch_norm_arguments(input))

    @classmethod
    def from_batch_norm(cls, batch_norm):
        """A fused layer holding ``batch_norm``'s own parameters and buffers (no copy)."""
        plain = cls.__bases__[1]   # BatchNorm1d or BatchNorm2d
        if not isinstance(batch_norm, plain):
            raise TypeError(f"{cls.__name__}.from_batch_norm: expected a {plain.__name__}, "
                            f"got {type(batch_norm).__name__}")
        like = batch_norm.weight if batch_norm.weight is not None else batch_norm.running_mean
        return _rebuilt(batch_norm, lambda: cls(
            batch_norm.num_features, eps=batch_norm.eps, momentum=batch_norm.momentum, affine=batch_norm.affine,
            track_running_stats=batch_norm.track_running_stats, bias=batch_norm.bias is not None,
            dtype=None if like is None else like.dtype))


class BatchNormReLU1d(_BatchNormReLU, BatchNorm1d):
    """``relu(BatchNorm1d(x))`` with the ReLU inside batch norm's kernels; BatchNorm1d's arguments.

    Made by :func:`fuse_batch_norm_relu`, or directly.

    >>> import nnlite as nl
    >>> layer = nl.nn.BatchNormReLU1d(3)
    >>> bool((layer(nl.randn(4, 3)).data >= 0).all())
    True
    """


class BatchNormReLU2d(_BatchNormReLU, BatchNorm2d):
    """``relu(BatchNorm2d(x))`` with the ReLU inside batch norm's kernels; BatchNorm2d's arguments.

    Made by :func:`fuse_batch_norm_relu`, or directly.

    >>> import nnlite as nl
    >>> layer = nl.nn.BatchNormReLU2d(3)
    >>> bool((layer(nl.randn(2, 3, 4, 4)).data >= 0).all())
    True
    """


def _hooked(module):
    return bool(module._forward_pre_hooks or module._forward_hooks or module._backward_hooks)


def _fuse_pairs(model, fusions):
    """In every Sequential of ``model``, replace each module of a type in ``fusions`` (type ->
    fused-from-it) that is directly followed by a ReLU, neither hooked, by its fused module,
    and the ReLU by an Identity. Types are matched exactly: a subclass's forward may do more."""
    for sequential in [m for m in model.modules() if isinstance(m, Sequential)]:
        names = list(sequential._modules)
        for first, second in zip(names, names[1:]):
            layer, relu = sequential._modules[first], sequential._modules[second]
            if type(layer) in fusions and type(relu) is ReLU and not (_hooked(layer) or _hooked(relu)):
                sequential.add_module(first, fusions[type(layer)](layer))
                sequential.add_module(second, Identity())
    return model


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
    return _fuse_pairs(model, {Linear: LinearReLU.from_linear})


def fuse_conv_relu(model):
    """In every Sequential of ``model``, fuse each Conv1d or Conv2d directly followed by a ReLU;
    returns ``model``.

    The pair becomes ``ConvReLU1d`` (or ``2d``) + ``Identity`` under the same names, the fused
    layer holding the convolution's parameters. Pairs with hooks, and subclasses, are left
    alone, as in :func:`fuse_linear_relu` (the transposed convolutions are not fused).

    >>> import nnlite as nl
    >>> cnn = nl.nn.Sequential(nl.nn.Conv2d(1, 4, 3), nl.nn.ReLU(), nl.nn.MaxPool2d(2))
    >>> [type(m).__name__ for m in nl.nn.fuse_conv_relu(cnn)]
    ['ConvReLU2d', 'Identity', 'MaxPool2d']
    """
    return _fuse_pairs(model, {Conv1d: ConvReLU1d.from_conv, Conv2d: ConvReLU2d.from_conv})


def fuse_batch_norm_relu(model):
    """In every Sequential of ``model``, fuse each BatchNorm1d or BatchNorm2d directly followed by
    a ReLU; returns ``model``.

    The pair becomes ``BatchNormReLU1d`` (or ``2d``) + ``Identity`` under the same names, the
    fused layer holding the batch norm's parameters and running statistics. Pairs with hooks,
    and subclasses, are left alone, as in :func:`fuse_linear_relu`.

    >>> import nnlite as nl
    >>> cnn = nl.nn.Sequential(nl.nn.Conv2d(1, 4, 3), nl.nn.BatchNorm2d(4), nl.nn.ReLU())
    >>> [type(m).__name__ for m in nl.nn.fuse_batch_norm_relu(cnn)]
    ['Conv2d', 'BatchNormReLU2d', 'Identity']
    """
    return _fuse_pairs(model, {BatchNorm1d: BatchNormReLU1d.from_batch_norm,
                               BatchNorm2d: BatchNormReLU2d.from_batch_norm})
