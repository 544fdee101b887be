"""SyncBatchNorm: batch normalisation over the whole global batch, not each rank's share.

Plain BatchNorm on ``W`` ranks normalises with the mean and variance of each
rank's ``B / W`` examples, so data-parallel training with BatchNorm is not the
one-process training with batch ``B``. SyncBatchNorm all-reduces the
per-channel statistics instead. With ``M`` values per channel over all ranks:

.. math::

   \\mu = \\frac{1}{M} \\sum_{\\text{all ranks}} x, \\qquad
   \\sigma^2 = \\frac{1}{M} \\sum_{\\text{all ranks}} (x - \\mu)^2, \\qquad
   \\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}, \\qquad y = \\gamma \\hat x + \\beta .

(two all-reduces: the sums, then the squared deviations from the global mean,
which is exact where the one-pass :math:`E[x^2] - \\mu^2` cancels). Every
rank's output depends on every rank's input, so the backward pass needs two
global sums too. With :math:`g = \\partial L / \\partial y`,

.. math::

   \\frac{\\partial L}{\\partial x} = \\frac{\\gamma}{\\sqrt{\\sigma^2 + \\epsilon}}
   \\Big(g - \\frac{1}{M} \\sum_{\\text{all}} g - \\hat x \\, \\frac{1}{M} \\sum_{\\text{all}} g \\hat x\\Big),

while :math:`\\partial L / \\partial \\gamma = \\sum g \\hat x` and
:math:`\\partial L / \\partial \\beta = \\sum g` are summed over the rank's own
examples and then averaged with the other gradients by
:class:`~nnlite.distributed.DistributedDataParallel`. The statistics are
computed in float64. PyTorch's name and behaviour; in eval mode, or alone, it is
BatchNorm. Synchronising the statistics across devices is described in Peng et
al., "MegDet: A Large Mini-Batch Object Detector" (CVPR 2018).
"""
import numpy as np

from ..autograd import Function, constant
from ..nn.fusion import BatchNormReLU1d, BatchNormReLU2d
from ..nn.module import adopt_state
from ..nn.normalization import _BatchNorm
from . import process_group as pg

__all__ = ["SyncBatchNorm", "sync_batch_norm"]


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


class _SyncBatchNormFunction(Function):
    """Batch norm with statistics and gradient sums all-reduced over the ranks (first order)."""
    saves_inputs = False

    def forward(self, x, weight, bias, eps):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = _channel_shape(x)
        x64 = x.astype(np.float64)
        sums = np.append(x64.sum(axis=axes), x.size // x.shape[1])   # per-channel sums and the count
        pg._reduce_(sums, pg.ReduceOp.SUM)
        count, mean = sums[-1], sums[:-1] / sums[-1]
        centred = x64 - mean.reshape(shape)
        squares = (centred * centred).sum(axis=axes)
        pg._reduce_(squares, pg.ReduceOp.SUM)
        var = squares / count
        self.invstd = 1.0 / np.sqrt(var + eps)
        self.xhat = centred * self.invstd.reshape(shape)
        self.count, self.mean, self.var = count, mean, var
        self.weight64 = None if weight is None else weight.astype(np.float64)
        y = self.xhat if weight is None else self.xhat * self.weight64.reshape(shape)
        if bias is not None:
            y = y + bias.astype(np.float64).reshape(shape)
        return y.astype(x.dtype)

    def backward(self, grad):
        x, weight, bias = self.inputs[:3]
        axes = (0,) + tuple(range(2, self.xhat.ndim))
        shape = _channel_shape(self.xhat)
        g = grad.data.astype(np.float64)
        local_sum, local_dot = g.sum(axis=axes), (g * self.xhat).sum(axis=axes)
        sums = np.concatenate([local_sum, local_dot])
        pg._reduce_(sums, pg.ReduceOp.SUM)
        c = local_sum.size
        mean_g, mean_gx = sums[:c] / self.count, sums[c:] / self.count
        scale = self.invstd if self.weight64 is None else self.invstd * self.weight64
        gx = scale.reshape(shape) * (g - mean_g.reshape(shape) - self.xhat * mean_gx.reshape(shape))
        grad_x = constant(gx.astype(x.dtype)) if x.requires_grad else None
        grad_w = constant(local_dot.astype(weight.dtype)) if weight is not None and weight.requires_grad else None
        grad_b = constant(local_sum.astype(bias.dtype)) if bias is not None and bias.requires_grad else None
        return grad_x, grad_w, grad_b, None


def sync_batch_norm(input, weight=None, bias=None, eps=1e-5):
    """Normalise ``input`` ``(N, C, *)`` per channel with the statistics of every rank's batch.

    Returns ``(output, mean, var, count)``: the global batch mean and biased
    variance per channel (float64) and the number of values per channel over
    all ranks, from which running statistics are updated (the unbiased
    variance is ``var * count / (count - 1)``).

    >>> import nnlite as nl
    >>> x = nl.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> out, mean, var, count = nl.distributed.sync_batch_norm(x)   # a world of one: BatchNorm's statistics
    >>> mean.tolist(), var.tolist(), float(count)
    ([2.0, 20.0], [1.0, 100.0], 2.0)
    """
    if input.ndim < 2:
        raise ValueError(f"sync_batch_norm: expected input of shape (N, C, *), got {tuple(input.shape)}")
    fn_out = _SyncBatchNormFunction.apply(input, weight, bias, float(eps))
    ctx = fn_out.grad_fn
    if ctx is None:   # no graph (no_grad): recompute the statistics for the caller
        x64 = input.data.astype(np.float64)
        axes = (0,) + tuple(range(2, x64.ndim))
        sums = np.append(x64.sum(axis=axes), x64.size // x64.shape[1])
        pg._reduce_(sums, pg.ReduceOp.SUM)
        mean = sums[:-1] / sums[-1]
        squares = ((x64 - mean.reshape(_channel_shape(x64))) ** 2).sum(axis=axes)
        pg._reduce_(squares, pg.ReduceOp.SUM)
        return fn_out, mean, squares / sums[-1], sums[-1]
    return fn_out, ctx.mean, ctx.var, ctx.count


class SyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics cover the batches of all ranks (PyTorch's ``nn.SyncBatchNorm``).

    Same arguments, parameters, buffers and ``state_dict`` keys as
    :class:`~nnlite.nn.BatchNorm1d`/:class:`~nnlite.nn.BatchNorm2d`; any input
    ``(N, C, *)``. :meth:`convert_sync_batchnorm` swaps it into an existing
    model. In eval mode, and in a world of one process, it is BatchNorm.
    """
    _input_dims = (2, 3, 4, 5)

    def forward(self, input):
        if not self.training or pg.get_world_size() == 1:
            return super().forward(input)
        name = f"SyncBatchNorm(num_features={self.num_features})"
        if input.ndim < 2 or input.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input of shape (N, {self.num_features}, *), "
                             f"got {tuple(input.shape)}")
        out, mean, var, count = sync_batch_norm(input, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            self.num_batches_tracked._bump_version()
            momentum = (1.0 / float(self.num_batches_tracked.data) if self.momentum is None
                        else self.momentum)
            unbiased = var * count / max(count - 1, 1)
            for buffer, batch in ((self.running_mean, mean), (self.running_var, unbiased)):
                buffer.data[...] = (1 - momentum) * buffer.data + momentum * batch
                buffer._bump_version()
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every batch norm in ``module`` by a SyncBatchNorm with the same tensors; returns it.

        As in PyTorch, every instance of the batch norm classes is replaced, a subclass of
        BatchNorm2d too (its own forward is not kept: left alone, its statistics would stay
        unsynchronised without a word).

        A model holding a batch norm fused with its ReLU (``nn.fuse_batch_norm_relu``) is refused,
        before anything is replaced: SyncBatchNorm has no ReLU, and leaving the layer as it is
        would leave its statistics unsynchronised. Convert first, then fuse (SyncBatchNorm layers
        are not fused).
        """
        for name, layer in module.named_modules():
            if isinstance(layer, (BatchNormReLU1d, BatchNormReLU2d)):
                raise TypeError(f"convert_sync_batchnorm: {type(layer).__name__} {name!r} is a batch norm fused "
                                "with its ReLU, which SyncBatchNorm cannot replace; convert the model before "
                                "nn.fuse_batch_norm_relu")
        return cls._convert(module)

    @classmethod
    def _convert(cls, module):
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            return adopt_state(cls(module.num_features, module.eps, module.momentum, module.affine,
                                   module.track_running_stats), module)
        for name, child in list(module._modules.items()):
            module.add_module(name, cls._convert(child))
        return module
