"""Normalisation: batch, layer, group, instance and RMS norm, forward and backward side by side.

Each op standardises ``x`` over some axes (``xhat = (x - mean) / sqrt(var + eps)``)
and applies a per-feature affine map (``y = xhat * weight + bias``). Because the
statistics depend on every element they were taken over, the input gradient is
not just ``g / std``; with ``g = grad * weight``::

    grad_x = invstd * (g - mean(g) - xhat * mean(g * xhat))
    grad_weight = sum(grad * xhat),   grad_bias = sum(grad)

First-order backward runs the fused kernels. When the backward itself is being
recorded (``create_graph=True``), the same formulas are evaluated with
differentiable ops, with the statistics recomputed from ``x``, so second
derivatives are exact.
"""
import numpy as np

from .._kernels import K
from .._kernels.checks import is_int
from ..autograd import Function, chosen_by, constant, is_grad_enabled
from ..tensor import Tensor
from .opmath import is_half
from .pointwise import ReluGrad, relu, rsqrt
from .sums import mean as _mean, sum as _sum
from .shape import reshape


def _wants(t):
    return isinstance(t, Tensor) and t.requires_grad


def _standardize(x, axes, eps):
    """(xhat, invstd) with statistics over ``axes``, in differentiable ops."""
    centred = x - _mean(x, axes, keepdim=True)
    invstd = rsqrt(_mean(centred * centred, axes, keepdim=True) + eps)
    return centred * invstd, invstd


def _normalized_grad(g, xhat, invstd, axes):
    """grad_x of a standardisation whose statistics came from x itself."""
    return invstd * (g - _mean(g, axes, keepdim=True) - xhat * _mean(g * xhat, axes, keepdim=True))


def _affine_grads(grad, xhat, weight, bias, axes, shape):
    gw = reshape(_sum(grad * xhat, axes), shape) if _wants(weight) else None
    gb = reshape(_sum(grad, axes), shape) if _wants(bias) else None
    return gw, gb


def _bias_grad(gb, grad, axes, bias):
    """The bias gradient of a kernel backward, as a constant (None without a bias). The kernels
    return it only beside a weight; a bias alone gets ``grad`` summed over ``axes`` here."""
    if bias is None:
        return None
    if gb is None:
        gb = grad.sum(axis=axes, dtype=np.float64).astype(grad.dtype)
    return constant(gb.reshape(bias.shape))


def _per_channel(shape):
    """(N, C, positions) of an (N, C, *spatial) shape: the kernels' layout. The positions are
    counted, not left to reshape's -1, which cannot be solved for an empty batch."""
    return shape[0], shape[1], int(np.prod(shape[2:], dtype=np.int64))


# -------------------------------------------------------------- batch norm ---

class BatchNormFunction(Function):
    """Per channel over (N, *spatial); running statistics move in place during training."""
    activation = None

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        x3 = np.ascontiguousarray(x).reshape(_per_channel(x.shape))
        out = K.batch_norm_forward(x3, weight, bias, running_mean, running_var, training, momentum, eps,
                                   self.activation)
        # with a fused ReLU the kernel also returns the per-channel numbers the output came from
        (y, self.mean, self.invstd), self.relu_terms = out[:3], (out[3] if self.activation else None)
        self.training, self.eps = training, eps
        return y.reshape(x.shape)

    def backward(self, grad):
        if not is_grad_enabled():
            x, weight, bias = self.inputs[:3]
            shape = _per_channel(x.shape)
            g3 = np.ascontiguousarray(grad.data).reshape(shape)
            gx, gw, gb = K.batch_norm_backward(g3, np.ascontiguousarray(x.data).reshape(shape),
                                               None if weight is None else weight.data, self.mean,
                                               self.invstd, self.training, self.relu_terms)
            if gb is None and bias is not None and self.relu_terms is not None:
                g3 = g3 * (self.out.data.reshape(shape) > 0)   # a bias alone sits behind the fused ReLU
            return (constant(gx.reshape(x.shape)), constant(gw), _bias_grad(gb, g3, (0, 2), bias)) + (None,) * 5
        return self._grads(grad)

    def _grads(self, grad):
        """The backward in differentiable ops (create_graph), for the gradient ``grad`` of the
        normalised output."""
        x, weight, bias = self.inputs[:3]
        c = x.shape[1]
        x3, g3 = reshape(x, _per_channel(x.shape)), reshape(grad, _per_channel(x.shape))
        w3 = 1.0 if weight is None else reshape(weight, (1, c, 1))
        if self.training:
            xhat, invstd = _standardize(x3, (0, 2), self.eps)
            gx = _normalized_grad(g3 * w3, xhat, invstd, (0, 2))
        else:
            invstd = constant(self.invstd.reshape(1, c, 1))
            xhat = (x3 - constant(self.mean.reshape(1, c, 1))) * invstd
            gx = g3 * w3 * invstd
        gw, gb = _affine_grads(g3, xhat, weight, bias, (0, 2), (c,))
        return (reshape(gx, x.shape), gw, gb) + (None,) * 5


class BatchNormReLUFunction(BatchNormFunction):
    """relu(batch_norm(x)) with the ReLU inside batch norm's kernels: the forward clamps the
    output as it writes it, the backward masks the gradient where that output was <= 0 as it
    reads it (from x and the forward's per-channel numbers, not from the output), so ReLU's
    own passes over the activations, one forward and one backward, are not made."""
    activation = "relu"
    save_output = True   # the recorded backward's mask comes from the output, as ReLU's does

    def backward(self, grad):
        if not is_grad_enabled():
            return super().backward(grad)
        # the mask comes from the pre-activation, which x, weight and bias all move: zero to each
        return self._grads(chosen_by(ReluGrad.apply(grad, self.out.detach()), self.out))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel of ``input`` ``(N, C, *)``: batch statistics when ``training``
    (and update ``running_mean``/``running_var`` in place with ``momentum``), else the running ones."""
    return _batch_norm("batch_norm", BatchNormFunction, input, running_mean, running_var, weight, bias,
                       training, momentum, eps)


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5):
    """``relu(batch_norm(...))`` with the ReLU fused into batch norm's kernels (an nnlite
    addition, opt-in): the same values and gradients, bit for bit, without ReLU's own pass over
    the activations forward and backward.

    float16 and bfloat16 inputs run as the two operations: their batch norm computes in float32
    and rounds its output, and the ReLU must see the rounded value (a float32 -6e-9 is a float16
    -0, which ReLU keeps). Nothing calls this function behind your back:
    :func:`nnlite.nn.fuse_batch_norm_relu` rewrites a model's BatchNorm + ReLU pairs to use it.
    """
    if is_half(input.dtype):
        return relu(batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps))
    return _batch_norm("batch_norm_relu", BatchNormReLUFunction, input, running_mean, running_var, weight,
                       bias, training, momentum, eps)


def _batch_norm(name, function, input, running_mean, running_var, weight, bias, training, momentum, eps):
    if input.ndim < 2:
        raise ValueError(f"{name}: expected input of shape (N, C, *), got {tuple(input.shape)}")
    n, c, positions = _per_channel(input.shape)
    if training and n * positions == 0:
        out = _empty_batch_norm(name, input, weight, bias, running_mean, running_var)
        return relu(out) if function.activation else out
    rm = None if running_mean is None else running_mean.data
    rv = None if running_var is None else running_var.data
    out = function.apply(input, weight, bias, rm, rv, bool(training),
                         0.0 if momentum is None else float(momentum), float(eps))
    if training and running_mean is not None:
        running_mean._bump_version()
        running_var._bump_version()
    return out


def _empty_batch_norm(name, input, weight, bias, running_mean, running_var):
    """Training on an input with no values per channel: an empty output, as in PyTorch. There
    are no statistics to learn, so the running ones stay as they are. The output is
    ``input * weight + bias`` per channel (``_nothing_to_normalize``), which keeps it in the
    graph and gives weight and bias a zero gradient; the kernels take statistics over at
    least two values."""
    c = input.shape[1]
    for arg, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if a is not None and tuple(a.shape) != (c,):
            raise ValueError(f"{name}: {arg} must have shape ({c},) for an input of {c} channels, "
                             f"got {tuple(a.shape)}")
    per_channel = (c,) + (1,) * (input.ndim - 2)
    return _nothing_to_normalize(input, None if weight is None else reshape(weight, per_channel),
                                 None if bias is None else reshape(bias, per_channel))


# -------------------------------------------------------------- layer norm ---

def _rows(x, normalized_shape, op):
    k = len(normalized_shape)
    if tuple(x.shape[x.ndim - k:]) != tuple(normalized_shape) or x.ndim < k:
        raise ValueError(f"{op}: expected input with trailing shape {tuple(normalized_shape)}, "
                         f"got shape {tuple(x.shape)}")
    return int(np.prod(normalized_shape))


class LayerNormFunction(Function):
    """Per row over the trailing ``normalized_shape`` dims (one sample's features)."""

    def forward(self, x, weight, bias, d, eps):
        self.eps, self.d = eps, d
        w = None if weight is None else weight.reshape(d)
        b = None if bias is None else bias.reshape(d)
        y, self.mean, self.rstd = K.layer_norm_forward(np.ascontiguousarray(x).reshape(-1, d), w, b, eps)
        return y.reshape(x.shape)

    def backward(self, grad):
        x, weight, bias, d = self.inputs[:4]
        if not is_grad_enabled():
            w = None if weight is None else weight.data.reshape(d)
            g2 = np.ascontiguousarray(grad.data).reshape(-1, d)
            gx, gw, gb = K.layer_norm_backward(g2, np.ascontiguousarray(x.data).reshape(-1, d), w,
                                               self.mean, self.rstd)
            return (constant(gx.reshape(x.shape)), None if gw is None else constant(gw.reshape(weight.shape)),
                    _bias_grad(gb, g2, 0, bias), None, None)
        x2, g2 = reshape(x, (-1, d)), reshape(grad, (-1, d))
        w2 = 1.0 if weight is None else reshape(weight, (1, d))
        xhat, rstd = _standardize(x2, (1,), self.eps)
        gx = _normalized_grad(g2 * w2, xhat, rstd, (1,))
        gw, gb = _affine_grads(g2, xhat, weight, bias, (0,), (weight if weight is not None else bias).shape
                               if weight is not None or bias is not None else None)
        return reshape(gx, x.shape), gw, gb, None, None


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Standardise over the last ``len(normalized_shape)`` dims, then ``* weight + bias``."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    d = _rows(input, normalized_shape, "layer_norm")
    if d == 0:
        return _nothing_to_normalize(input, weight, bias)
    return LayerNormFunction.apply(input, weight, bias, d, float(eps))


def _nothing_to_normalize(input, weight, bias):
    """The empty result of normalising over no features, as ``input * weight + bias``: every
    operand still gets its (empty) gradient. The kernels take rows of at least one feature."""
    out = input * 1.0
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


# -------------------------------------------------------------- group norm ---

class GroupNormFunction(Function):
    """Per sample over each group of C / num_groups channels (and all spatial positions)."""

    def forward(self, x, num_groups, weight, bias, eps):
        n, c = x.shape[:2]
        self.eps = eps
        y, self.mean, self.rstd = K.group_norm_forward(
            np.ascontiguousarray(x).reshape(_per_channel(x.shape)), num_groups, weight, bias, eps)
        return y.reshape(x.shape)

    def backward(self, grad):
        x, groups, weight, bias = self.inputs[:4]
        n, c = x.shape[:2]
        if not is_grad_enabled():
            w = None if weight is None else weight.data
            g3 = np.ascontiguousarray(grad.data).reshape(_per_channel(x.shape))
            gx, gw, gb = K.group_norm_backward(g3, np.ascontiguousarray(x.data).reshape(_per_channel(x.shape)),
                                               groups, w, self.mean, self.rstd)
            return constant(gx.reshape(x.shape)), None, constant(gw), _bias_grad(gb, g3, (0, 2), bias), None
        x3, g3 = reshape(x, _per_channel(x.shape)), reshape(grad, _per_channel(x.shape))
        g = g3 if weight is None else g3 * reshape(weight, (1, c, 1))
        xg, inv = _standardize(reshape(x3, (n, groups, x3.shape[1] // groups * x3.shape[2])), (2,), self.eps)
        gx = _normalized_grad(reshape(g, (n, groups, x3.shape[1] // groups * x3.shape[2])), xg, inv, (2,))
        gw, gb = _affine_grads(g3, reshape(xg, x3.shape), weight, bias, (0, 2), (c,))
        return reshape(gx, x.shape), None, gw, gb, None


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Standardise each sample over groups of channels (independent of the batch size)."""
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected input of shape (N, C, *), got {tuple(input.shape)}")
    if not is_int(num_groups):
        raise TypeError(f"group_norm: num_groups must be an int, got {type(num_groups).__name__} {num_groups!r}")
    # PyTorch's rule: an input that gives one value to normalise in all (one sample, one
    # channel per group, one position) is refused, as a lone value standardises to 0
    # whatever it was. A num_groups below 1 is left to the kernel's check.
    n, c, positions = _per_channel(input.shape)
    if num_groups > 0 and n * (c // num_groups) * positions == 1:
        raise ValueError(f"group_norm: expected more than 1 value per group, got input of shape "
                         f"{tuple(input.shape)} with num_groups={num_groups}")
    return GroupNormFunction.apply(input, int(num_groups), weight, bias, float(eps))


# ----------------------------------------------------------- instance norm ---
# Instance norm standardises each channel of each sample over its positions: group norm
# with one channel per group. It runs on the group-norm Function (its kernels, and its
# differentiable backward for second derivatives); only the running statistics, which
# group norm has not, are added here.

def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Standardise each channel of each sample of ``input`` ``(N, C, *)`` over its positions
    (Ulyanov et al., 2016, "Instance Normalization"), then ``* weight + bias`` per channel.

    With ``use_input_stats`` each (sample, channel) uses its own mean and (biased)
    variance; ``running_mean``/``running_var``, if given, move in place towards their
    average over the batch: ``running = momentum * mean_n(stat) + (1 - momentum) * running``,
    the variance unbiased (PyTorch's rule). Without ``use_input_stats`` the running
    statistics normalise every sample, as batch norm does in eval.
    """
    if input.ndim < 2:
        raise ValueError(f"instance_norm: expected input of shape (N, C, *), got {tuple(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"instance_norm: input must be a floating-point tensor, got {input.dtype}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False normalises with running_mean and running_var, "
                             "but they were not given")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    _check_positions("instance_norm", input)
    # an empty batch has no statistics: the running values stay (PyTorch's become NaN)
    if (running_mean is not None or running_var is not None) and input.shape[0] > 0:
        _update_running_stats(input.data, running_mean, running_var, float(momentum))
    if input.shape[1] == 0:   # no channels: nothing to normalise (group norm needs a group)
        return input * 1.0
    return group_norm(input, input.shape[1], weight, bias, eps)


def _check_positions(op, input):
    """An instance's variance needs more than one position (PyTorch's check)."""
    if int(np.prod(input.shape[2:])) <= 1:   # none at all is refused too: no statistics to take
        raise ValueError(f"{op}: expected more than 1 spatial element per channel to take statistics over, "
                         f"got input of shape {tuple(input.shape)}")


def _update_running_stats(x, running_mean, running_var, momentum):
    n, c = x.shape[:2]
    x3 = x.reshape(_per_channel(x.shape))
    # PyTorch runs batch norm on the (1, N*C, *) view with each running statistic repeated N
    # times, then averages the N updated copies: the same as updating with the batch average.
    stats = (running_mean, x3.mean(axis=2, dtype=np.float64)), (running_var, x3.var(axis=2, ddof=1, dtype=np.float64))
    for running, stat in stats:
        if running is not None:
            running.data[...] = (momentum * stat + (1 - momentum) * running.data.astype(np.float64)).mean(axis=0)
            running._bump_version()


# ---------------------------------------------------------------- rms norm ---

class RMSNormFunction(Function):
    """y = x / sqrt(mean(x**2) + eps) * weight: no centring, no bias.

    With ``r = 1/rms`` and ``g = grad * weight``:
    ``grad_x = r g - x r**3 mean(g x)``, ``grad_weight = sum(grad * x * r)``.
    """

    def forward(self, x, weight, d, eps):
        self.eps = eps
        w = None if weight is None else weight.reshape(d)
        y, self.rrms = K.rms_norm_forward(np.ascontiguousarray(x).reshape(-1, d), w, eps)
        return y.reshape(x.shape)

    def backward(self, grad):
        x, weight, d = self.inputs[:3]
        if not is_grad_enabled():
            w = None if weight is None else weight.data.reshape(d)
            gx, gw = K.rms_norm_backward(np.ascontiguousarray(grad.data).reshape(-1, d),
                                         np.ascontiguousarray(x.data).reshape(-1, d), w, self.rrms)
            return (constant(gx.reshape(x.shape)), None if gw is None else constant(gw.reshape(weight.shape)),
                    None, None)
        x2, g2 = reshape(x, (-1, d)), reshape(grad, (-1, d))
        g = g2 if weight is None else g2 * reshape(weight, (1, d))
        r = rsqrt(_mean(x2 * x2, 1, keepdim=True) + self.eps)
        gx = r * g - x2 * (r * r * r) * _mean(g * x2, 1, keepdim=True)
        gw = reshape(_sum(g2 * x2 * r, 0), weight.shape) if _wants(weight) else None
        return reshape(gx, x.shape), gw, None, None


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Scale by the root mean square over the trailing dims (Zhang & Sennrich, 2019)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    d = _rows(input, normalized_shape, "rms_norm")
    eps = float(np.finfo(input.dtype).eps) if eps is None else float(eps)
    if d == 0:
        return _nothing_to_normalize(input, weight, None)
    return RMSNormFunction.apply(input, weight, d, eps)
