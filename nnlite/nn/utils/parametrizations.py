"""Weight norm and spectral norm as parametrizations (``torch.nn.utils.parametrizations``'s API).

Both rewrite a layer's weight as a function of other tensors with
:func:`~nnlite.nn.utils.parametrize.register_parametrization`, so the layer's
``state_dict`` has PyTorch's keys and loads into the same PyTorch layer:

* :func:`weight_norm` stores each output row ``w`` as a length ``g`` and a
  direction ``v``: ``w = g v / ||v||`` (keys ``parametrizations.weight.original0``
  for g and ``original1`` for v);
* :func:`spectral_norm` divides the weight by an estimate of its largest
  singular value, refined by one step of power iteration per forward in
  training mode (keys ``parametrizations.weight.original`` and the iteration's
  vectors ``parametrizations.weight.0._u``, ``parametrizations.weight.0._v``).

Everything with a gradient is written in nnlite's differentiable operations,
so first and second derivatives are exact.
"""
import numpy as np

from ... import ops
from ...autograd import no_grad
from ...parameter import Buffer
from ...random import _gen
from ...ops.reduction import norm
from ...tensor import Tensor
from ..module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm"]


def _norm_except_dim(v, dim):
    """The 2-norm of ``v`` over every axis but ``dim``, kept as size-1 axes; ``dim=-1``: over all of ``v``.

    ``dim=-1`` means "no dim kept" here, not "the last axis", as in PyTorch's
    ``norm_except_dim`` (weight_norm's ``dim=None`` becomes -1).
    """
    if dim == -1:
        return norm(v)
    keep = dim % v.ndim
    return norm(v, dim=tuple(a for a in range(v.ndim) if a != keep), keepdim=True)


class _WeightNorm(Module):
    """``w = g * v / ||v||``, the norm taken over every axis but ``dim`` (Salimans & Kingma, 2016)."""

    # g is one length per output row, a multiplier on the row as LayerNorm's
    # weight is on a feature: kind "scale", which param_groups_by_kind keeps out
    # of weight decay (decay would shrink the layer's outputs, not simplify it).
    # v is the row's direction, stored at any length: kind "weight", decayed like
    # any weight. Its length does not change w, so decay only shortens v, which
    # lengthens the steps the optimizer takes in direction (the gradient on v
    # scales as g / ||v||).
    original_kinds = ("scale", "weight")

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight):
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    r"""Split ``module.<name>`` into a magnitude and a direction (Salimans & Kingma, 2016).

    .. math:: \mathbf{w} = g \, \frac{\mathbf{v}}{\lVert \mathbf{v} \rVert}

    for each slice along ``dim`` (each output row of a Linear, each output
    channel of a Conv, with ``dim=0``); ``dim=None`` takes one norm over the
    whole tensor. The gradient then reaches the length ``g`` and the direction
    ``v`` separately: the gradient on ``v`` is orthogonal to ``v``, so
    gradient steps turn the row without (to first order) changing ``||v||``.
    Returns ``module``; ``g`` (kind "scale") and ``v`` (kind "weight") are
    new Parameters, ``parametrizations.<name>.original0`` and ``original1``,
    starting at ``||w||`` and ``w``, so the layer computes what it did before.

    >>> import nnlite as nl
    >>> from nnlite.nn.utils.parametrizations import weight_norm
    >>> layer = weight_norm(nl.nn.Linear(20, 40))
    >>> layer.parametrizations.weight.original0.shape, layer.parametrizations.weight.original1.shape
    ((40, 1), (40, 20))
    >>> layer.parametrizations.weight.original0.kind
    'scale'
    """
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def _normalize(x, eps):
    """``x / max(||x||, eps)`` on an array (F.normalize of a vector)."""
    return x / max(float(np.linalg.norm(x)), eps)


class _SpectralNorm(Module):
    """``W / sigma(W)``, sigma the largest singular value, estimated by power iteration (Miyato et al., 2018)."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.ndim
        if not -ndim <= dim < max(ndim, 1):
            raise IndexError(f"spectral_norm: dim must be in [-{ndim}, {ndim - 1}] for a weight of shape "
                             f"{tuple(weight.shape)}, got {dim}")
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be positive, got {n_power_iterations}")
        self.dim = dim % ndim if ndim else 0
        self.eps = eps
        if ndim > 1:   # a vector is divided by its exact norm, nothing to estimate
            self.n_power_iterations = n_power_iterations
            matrix = self._reshape_weight_to_matrix(weight).data
            h, w = matrix.shape
            rng = _gen(None)
            self._u = Buffer(_normalize(rng.standard_normal(h).astype(matrix.dtype), eps))
            self._v = Buffer(_normalize(rng.standard_normal(w).astype(matrix.dtype), eps))
            # Start from good estimates of the singular vectors rather than random ones.
            self._power_method(matrix, 15)

    def _reshape_weight_to_matrix(self, weight):
        """The weight as a matrix with one row per slice along ``dim`` (output units)."""
        if self.dim != 0:
            weight = ops.permute(weight, (self.dim, *(d for d in range(weight.ndim) if d != self.dim)))
        return ops.flatten(weight, 1)

    def _power_method(self, matrix, n_power_iterations):
        """Move ``_u``, ``_v`` towards the top left and right singular vectors of ``matrix`` (an array).

        Each step is ``u = W v / ||W v||``, ``v = W^T u / ||W^T u||``; then
        ``u^T W v`` approaches the largest singular value. The vectors are
        updated in place (they are buffers, saved with the model) and carry no
        gradient.
        """
        u, v = self._u.data, self._v.data
        for _ in range(n_power_iterations):
            np.copyto(u, _normalize(matrix @ v, self.eps))
            np.copyto(v, _normalize(matrix.conj().T @ u, self.eps))
        self._u._bump_version()
        self._v._bump_version()

    def forward(self, weight):
        if weight.ndim == 1:
            return weight / ops.clamp(norm(weight), min=self.eps)
        matrix = self._reshape_weight_to_matrix(weight)
        if self.training:
            with no_grad():
                self._power_method(np.asarray(matrix.data), self.n_power_iterations)
        # Copies, held fixed: the gradient of sigma = u^T W v is u v^T, as in PyTorch, and
        # a later forward that moves the buffers cannot change what this graph saved.
        u = Tensor(self._u.data.copy())
        v = Tensor(self._v.data.copy())
        sigma = ops.dot(u, ops.matmul(matrix, v))
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    r"""Divide ``module.<name>`` by its largest singular value (Miyato et al., 2018).

    .. math:: W_{SN} = \frac{W}{\sigma(W)}, \qquad \sigma(W) = \max_{h \ne 0} \frac{\lVert W h \rVert}{\lVert h \rVert}

    A layer ``x -> W x`` stretches no input difference by more than
    ``sigma(W)``, so with ``sigma = 1`` each layer is 1-Lipschitz, and so is a
    stack of them with 1-Lipschitz activations (ReLU, tanh): the model's
    output cannot jump when its input moves a little. This is how a GAN's
    discriminator is kept smooth.

    Computing ``sigma`` exactly needs an SVD; instead two vectors ``_u``,
    ``_v`` (buffers) follow the top singular vectors by power iteration:
    15 steps when registered, then ``n_power_iterations`` at every read of
    the weight in training mode, and none in eval mode (the weight is then
    fixed). ``sigma`` is estimated as ``u^T W v``. A weight with more than two
    dimensions is read as a matrix with one row per slice along ``dim``
    (default 0, the output channels). A 1-D weight is divided by its norm.
    ``eps`` keeps the normalisations away from zero. Returns ``module``.

    >>> import numpy as np, nnlite as nl
    >>> from nnlite.nn.utils.parametrizations import spectral_norm
    >>> nl.manual_seed(0)  # doctest: +ELLIPSIS
    <...>
    >>> layer = spectral_norm(nl.nn.Linear(20, 40))
    >>> sorted(layer.state_dict())
    ['bias', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v', 'parametrizations.weight.original']
    >>> round(float(np.linalg.norm(layer.weight.detach().numpy(), 2)), 2)
    1.0
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter or buffer named {name!r} "
                         f"({parametrize._tensor_names(module)})")
    if dim is None:
        dim = 0   # the output axis; nnlite has no transposed convolutions, whose outputs are axis 1
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
