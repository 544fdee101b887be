"""Initialization schemes (``nl.nn.init``): where training starts.

A layer's output variance is ``fan_in * Var(w) * Var(x)`` (for zero-mean,
independent weights and inputs). Pick ``Var(w)`` badly and activations shrink
or blow up geometrically with depth; the schemes below choose it so the signal
keeps its scale. The fans are PyTorch's: for a weight of shape
``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.

Every function fills its tensor in place under ``no_grad``, draws from the
seeded global generator (``nl.manual_seed``) unless given ``generator=``, and,
when given a :class:`~nnlite.nn.Parameter`, records what it did in
``param.init``, e.g. ``{"scheme": "kaiming_uniform_", "a": 0, "mode": "fan_in",
"nonlinearity": "leaky_relu"}``.
"""
import math

import numpy as np

from .._kernels.special import ndtr, ndtri
from ..autograd import no_grad
from ..parameter import Parameter
from ..random import _gen

__all__ = ["calculate_gain", "zeros_", "ones_", "constant_", "uniform_", "normal_", "trunc_normal_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "lecun_uniform_", "lecun_normal_", "orthogonal_", "eye_", "dirac_"]


def _fill(tensor, values, scheme, **args):
    """Write ``values`` into ``tensor`` (no graph), and record the scheme on a Parameter."""
    with no_grad():
        np.copyto(tensor.data, values, casting="unsafe")
        tensor._bump_version()
    if isinstance(tensor, Parameter):
        tensor.init = {"scheme": scheme, **args}
    return tensor


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) as PyTorch computes them; needs at least 2 dims."""
    if tensor.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for a tensor with fewer than 2 "
                         f"dimensions (shape {tuple(tensor.shape)})")
    receptive_field = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def calculate_gain(nonlinearity, param=None):
    """The factor by which ``nonlinearity`` shrinks the standard deviation, inverted.

    ReLU zeroes half its input, halving the second moment, so its gain is
    ``sqrt(2)``; tanh's is 5/3; leaky ReLU with slope ``a`` has
    ``sqrt(2 / (1 + a**2))``; SELU 3/4; linear layers and sigmoid 1.

    >>> round(calculate_gain("relu"), 4)
    1.4142
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def zeros_(tensor):
    """Fill with 0 (biases, the last layer of a residual branch)."""
    return _fill(tensor, 0, "zeros_")


def ones_(tensor):
    """Fill with 1 (normalisation scales start as the identity)."""
    return _fill(tensor, 1, "ones_")


def constant_(tensor, val):
    """Fill with ``val``."""
    return _fill(tensor, val, "constant_", val=val)


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Draw from U(a, b): variance ``(b - a)**2 / 12``.

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.empty(3, 4))
    >>> _ = uniform_(w, -0.1, 0.1)
    >>> w.init["scheme"], bool((w.data.min() >= -0.1) & (w.data.max() <= 0.1))
    ('uniform_', True)
    """
    return _fill(tensor, _gen(generator).uniform(a, b, tensor.shape), "uniform_", a=a, b=b)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Draw from N(mean, std**2) (embeddings: N(0, 1); GPT-2 uses std 0.02)."""
    values = _gen(generator).standard_normal(tensor.shape) * std + mean
    return _fill(tensor, values, "normal_", mean=mean, std=std)


def _trunc_normal(shape, mean, std, a, b, generator):
    """Inverse-CDF sampling: uniform between Phi(a') and Phi(b'), mapped back through Phi^-1.

    Phi and Phi^-1 are ``ndtr`` and ``ndtri`` from ``nnlite/_kernels/special.py``.
    """
    lo, hi = ndtr((a - mean) / std), ndtr((b - mean) / std)
    u = _gen(generator).uniform(lo, hi, shape)
    return np.clip(ndtri(u) * std + mean, a, b)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std**2) conditioned on [a, b] (bounds are absolute values, as in PyTorch).

    No far outliers: Vision Transformers initialise with ``std=0.02``, truncated at 2 std.

    >>> import nnlite as nl
    >>> w = trunc_normal_(nl.empty(1000), std=1.0, a=-1.0, b=1.0)
    >>> bool(abs(w.data).max() <= 1.0)
    True
    """
    values = _trunc_normal(tensor.shape, mean, std, a, b, generator)
    return _fill(tensor, values, "trunc_normal_", mean=mean, std=std, a=a, b=b)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-bound, bound) with ``bound = gain * sqrt(6 / (fan_in + fan_out))``.

    Glorot & Bengio (2010), "Understanding the difficulty of training deep
    feedforward neural networks": the variance ``2 / (fan_in + fan_out)``
    compromises between keeping activations (forward, fan_in) and gradients
    (backward, fan_out) at scale. Prefer it for tanh/sigmoid/linear layers.

    >>> import nnlite as nl
    >>> w = xavier_uniform_(nl.empty(300, 200))
    >>> bool(abs(w.data).max() <= (6 / 500) ** 0.5)
    True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _gen(generator).uniform(-bound, bound, tensor.shape), "xavier_uniform_", gain=gain)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))`` (Glorot & Bengio, 2010).

    >>> import nnlite as nl
    >>> w = xavier_normal_(nl.empty(400, 400))
    >>> round(float(w.data.std()), 2)
    0.05
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    values = _gen(generator).standard_normal(tensor.shape) * std
    return _fill(tensor, values, "xavier_normal_", gain=gain)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound) with ``bound = gain * sqrt(3 / fan)``, gain from :func:`calculate_gain`.

    He, Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers": a ReLU keeps
    half of the second moment, so ``Var(w) = 2 / fan_in`` keeps it constant
    through depth. Prefer it (or ``kaiming_normal_``) for ReLU networks;
    ``mode="fan_out"`` preserves the backward pass instead. PyTorch's Linear and
    Conv default is ``a=sqrt(5)``, which works out to ``bound = 1/sqrt(fan_in)``.

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.empty(64, 27))
    >>> _ = kaiming_uniform_(w, nonlinearity="relu")
    >>> w.init
    {'scheme': 'kaiming_uniform_', 'a': 0, 'mode': 'fan_in', 'nonlinearity': 'relu'}
    """
    fan = _calculate_correct_fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return _fill(tensor, _gen(generator).uniform(-bound, bound, tensor.shape), "kaiming_uniform_",
                 a=a, mode=mode, nonlinearity=nonlinearity)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std**2) with ``std = gain / sqrt(fan)`` (He et al., 2015; see ``kaiming_uniform_``).

    >>> import nnlite as nl
    >>> w = kaiming_normal_(nl.empty(512, 512), nonlinearity="relu")
    >>> round(float(w.data.std() * 512 ** 0.5), 1)
    1.4
    """
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    values = _gen(generator).standard_normal(tensor.shape) * std
    return _fill(tensor, values, "kaiming_normal_", a=a, mode=mode, nonlinearity=nonlinearity)


def lecun_uniform_(tensor, generator=None):
    """U(-bound, bound) with ``bound = sqrt(3 / fan_in)``: variance ``1 / fan_in``.

    LeCun, Bottou, Orr & Mueller (1998), "Efficient BackProp": keeps the
    variance of a linear (or tanh-like) layer's output equal to its input's.
    The natural choice for SELU networks (Klambauer et al., 2017).

    >>> import nnlite as nl
    >>> w = lecun_uniform_(nl.empty(10, 300))
    >>> bool(abs(w.data).max() <= 0.1)
    True
    """
    fan_in, _ = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0 / fan_in) if fan_in else 0.0
    return _fill(tensor, _gen(generator).uniform(-bound, bound, tensor.shape), "lecun_uniform_")


def lecun_normal_(tensor, generator=None):
    """N(0, 1 / fan_in) (LeCun et al., 1998; the SELU paper's choice).

    A plain (not truncated) normal, unlike JAX's ``lecun_normal``.

    >>> import nnlite as nl
    >>> w = lecun_normal_(nl.empty(400, 100))
    >>> round(float(w.data.std()), 2)
    0.1
    """
    fan_in, _ = _calculate_fan_in_and_fan_out(tensor)
    std = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    return _fill(tensor, _gen(generator).standard_normal(tensor.shape) * std, "lecun_normal_")


def orthogonal_(tensor, gain=1.0, generator=None):
    """A (semi-)orthogonal matrix times ``gain``; extra dims are flattened into columns.

    Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear
    dynamics of learning in deep linear neural networks": orthogonal weights
    preserve every direction's norm, so deep linear stacks and recurrent
    weights neither explode nor vanish. The QR factor of a Gaussian matrix,
    with signs fixed so the draw is uniform over orthogonal matrices.

    >>> import nnlite as nl
    >>> w = orthogonal_(nl.empty(3, 5)).data
    >>> bool(abs(w @ w.T - nl.eye(3).data).max() < 1e-5)
    True
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(tensor.shape)}")
    if tensor.data.size == 0:
        return _fill(tensor, 0, "orthogonal_", gain=gain)
    rows = tensor.shape[0]
    cols = tensor.data.size // rows
    flat = _gen(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape), "orthogonal_", gain=gain)


def eye_(tensor):
    """The identity matrix (2-D only): a linear layer that starts as a pass-through.

    >>> import nnlite as nl
    >>> eye_(nl.empty(2, 3)).data.tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return _fill(tensor, np.eye(*tensor.shape), "eye_")


def dirac_(tensor, groups=1):
    """The Dirac delta for a 3-, 4- or 5-D conv weight: the convolution passes its input through.

    Channel ``i`` of each group maps to output channel ``i`` with a single 1 at the
    kernel centre, so identity-initialised conv layers keep their input (as in
    Zagoruyko & Komodakis, 2017, "DiracNets").

    >>> import nnlite as nl
    >>> w = dirac_(nl.empty(2, 2, 3, 3)).data
    >>> w[:, :, 1, 1].tolist(), float(w.sum())
    ([[1.0, 0.0], [0.0, 1.0]], 2.0)
    """
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only 3, 4 or 5-D tensors are supported, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups={groups}")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, values, "dirac_", groups=groups)
