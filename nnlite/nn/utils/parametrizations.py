"""Weight norm, spectral norm and orthogonal weights as parametrizations
(``torch.nn.utils.parametrizations``'s API).

Each rewrites a layer's weight as a function of other tensors with
:func:`~nnlite.nn.utils.parametrize.register_parametrization`, so the layer's
``state_dict`` has PyTorch's keys and loads into the same PyTorch layer:

* :func:`weight_norm` stores each output row ``w`` as a length ``g`` and a
  direction ``v``: ``w = g v / ||v||`` (keys ``parametrizations.weight.original0``
  for g and ``original1`` for v);
* :func:`spectral_norm` divides the weight by an estimate of its largest
  singular value, refined by one step of power iteration per forward in
  training mode (keys ``parametrizations.weight.original`` and the iteration's
  vectors ``parametrizations.weight.0._u``, ``parametrizations.weight.0._v``);
* :func:`orthogonal` computes the weight as an orthogonal matrix from an
  unconstrained one (keys ``parametrizations.weight.original`` and the fixed
  ``parametrizations.weight.0.base``), so it stays orthogonal while it trains.

Everything with a gradient is written in nnlite's differentiable operations
(the Cayley map's linear solve is one Function, whose backward is again solves
and products), so first and second derivatives are exact.
"""
import numpy as np

from ... import ops
from ...autograd import Function, constant, no_grad
from ...parameter import Buffer
from ...random import _gen
from ...ops.vector_norm import norm
from ...tensor import Tensor
from ..module import Module
from . import parametrize

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


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
    (default: the output channels, 0, or 1 for a transposed convolution).
    A 1-D weight is divided by its norm. ``eps`` keeps the normalisations
    away from zero. Returns ``module``.

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
    if dim is None:   # the output axis: 1 in a transposed convolution's weight, 0 elsewhere
        from ..conv import _ConvTransposeNd
        dim = 1 if isinstance(module, _ConvTransposeNd) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


# ------------------------------------------------------------------ orthogonal --

_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _tril(x, diagonal=0):
    """``x`` with every entry above its ``diagonal``-th diagonal set to 0 (the last two axes)."""
    keep = np.tri(*x.shape[-2:], k=diagonal, dtype=bool)
    return ops.where(constant(keep), x, 0.0)


def _matrix_exp(a):
    """``e^A`` by scaling and squaring: a Taylor polynomial of ``B = A / 2^s`` (1-norm at most
    1/2), then squared ``s`` times. Written in matrix products, so its gradient is the derivative
    of these same steps; the polynomial's degree (18 in float64, 10 in float32) leaves a truncation
    error below the dtype's rounding, so that derivative is e^A's to rounding too."""
    n = a.shape[-1]
    magnitudes = np.abs(a.data)
    with np.errstate(over="ignore"):
        norm1 = float(magnitudes.sum(axis=-2).max()) if a.data.size else 0.0
    if np.isinf(norm1):   # the sum overflowed, or an entry is infinite: bound the norm in logs
        norm1_log2 = np.log2(float(magnitudes.max())) + np.log2(n)
    else:
        norm1_log2 = np.log2(norm1) if norm1 > 0 else -np.inf
    # NaN or infinite entries: no squarings, and the polynomial gives NaN, as torch.linalg.matrix_exp
    squarings = int(np.ceil(norm1_log2 + 1)) if np.isfinite(norm1_log2) and norm1_log2 > -1 else 0
    b = a * (0.5 ** squarings)
    eye = constant(np.eye(n, dtype=a.dtype))
    q = eye
    for j in range(18 if a.dtype == np.float64 else 10, 0, -1):   # I + B (I + B/2 (I + B/3 (...)))
        q = eye + ops.matmul(b, q) * (1.0 / j)
    for _ in range(squarings):
        q = ops.matmul(q, q)
    return q


class _Solve(Function):
    """``X = A^-1 B`` (``torch.linalg.solve`` for square A and matrix B). Gradients: ``gB = A^-T g``
    and ``gA = -gB X^T``, themselves solves and products, so higher derivatives follow."""
    save_output = True

    def forward(self, a, b):
        return np.linalg.solve(a, b)

    def backward(self, grad):
        a = self.inputs[0]
        grad_b = _Solve.apply(a.transpose(-2, -1), grad)
        return -ops.matmul(grad_b, self.out.transpose(-2, -1)), grad_b


def _householder_product(a, tau):
    """The first ``k`` columns of ``H_1 H_2 ... H_k`` (``torch.linalg.householder_product``):
    ``H_i = I - tau_i v_i v_i^T`` with ``v_i`` column i of ``a`` below the diagonal, 1 on it
    and 0 above. Each reflector is applied to ``eye(n, k)``, the last one first."""
    n, k = a.shape[-2:]
    v = _tril(a, -1) + constant(np.eye(n, k, dtype=a.dtype))
    q = constant(np.broadcast_to(np.eye(n, k, dtype=a.dtype), a.shape).copy())
    for i in reversed(range(k)):
        vi = v[..., :, i:i + 1]
        q = q - ops.matmul(vi * ops.unsqueeze(tau[..., i:i + 1], -1), ops.matmul(vi.transpose(-2, -1), q))
    return q


def _make_orthogonal(a):
    """The Q of A's QR decomposition, its columns' signs set so that R's diagonal is positive
    (an array; A is n x k, n >= k)."""
    q, r = np.linalg.qr(a)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def _is_orthogonal(q):
    """Whether the columns of ``q`` (n x k, an array) are orthonormal to ``10 n eps``, PyTorch's test."""
    n, k = q.shape[-2:]
    eps = 10.0 * n * np.finfo(q.dtype).eps
    return np.allclose(np.swapaxes(q, -2, -1) @ q, np.eye(k, dtype=q.dtype), rtol=1e-5, atol=eps)


class _Orthogonal(Module):
    """A matrix with orthonormal columns (or rows, when it is wide), computed from an
    unconstrained one ``X``: the map of ``X``'s lower triangle into the orthogonal matrices,
    times a fixed orthogonal ``base`` (the "trivialization": ``X = -I``, where training
    starts, gives ``base`` under every map, its first k columns when the weight is tall).

    * ``matrix_exp``: ``Q = e^A`` with ``A = L - L^T`` skew-symmetric (L: X's lower triangle, the
      diagonal included, padded with zero columns to n x n); the first k columns;
    * ``cayley``: ``Q = (I - A/2)^-1 (I + A/2)``, the same A; the first k columns;
    * ``householder``: the product of the Householder reflectors stored below X's diagonal, each
      column multiplied by the integer part of X's diagonal, as in PyTorch (a sign while that
      diagonal stays at -1 or 1, where it starts).
    """

    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x):
        n, k = x.shape[-2:]
        transposed = n < k
        if transposed:
            x = x.transpose(-2, -1)
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            lower = _tril(x)
            if n != k:
                lower = ops.cat([lower, constant(np.zeros(x.shape[:-1] + (n - k,), dtype=x.dtype))], dim=-1)
            a = lower - lower.transpose(-2, -1)
            if self.orthogonal_map == "matrix_exp":
                q = _matrix_exp(a)
            else:
                eye = constant(np.eye(n, dtype=x.dtype))
                q = _Solve.apply(eye - a * 0.5, eye + a * 0.5)
            if n != k:
                q = q[..., :, :k]
        else:
            a = _tril(x, -1)
            tau = 2.0 / (1.0 + ops.sum(a * a, dim=-2))
            q = _householder_product(a, tau)
            signs = np.trunc(np.diagonal(x.data, axis1=-2, axis2=-1))   # .int(): no gradient
            q = q * constant(signs[..., None, :].astype(x.dtype))
        if self._buffers.get("base") is not None:
            q = ops.matmul(self.base, q)
        return q.transpose(-2, -1) if transposed else q

    def right_inverse(self, q):
        """The X whose forward is ``q`` (made orthogonal first if it is not): with a base, ``q``
        (completed to an orthogonal n x n matrix with random columns when it is tall) becomes the
        base and X is ``-I``; without one, Householder only, X holds q's reflectors."""
        if tuple(q.shape) != self.shape:
            raise ValueError(f"orthogonal: expected a matrix or batch of matrices of shape {self.shape}, "
                             f"got a tensor of shape {tuple(q.shape)}")
        dtype = q.dtype
        value = np.asarray(q.data)
        if not np.isfinite(value).all():   # QR would quietly step around a NaN: say so with NaN instead
            value = np.full(value.shape, np.nan, dtype=value.dtype)
        n, k = value.shape[-2:]
        transposed = n < k
        if transposed:
            value = np.swapaxes(value, -2, -1)
            n, k = k, n
        if "base" not in self._buffers:
            if self.orthogonal_map != "householder":
                raise NotImplementedError("It is not possible to assign to the matrix exponential or the Cayley "
                                          "parametrizations when use_trivialization=False.")
            raw = _householder_reflectors(value)
            return Tensor(np.swapaxes(raw, -2, -1).copy() if transposed else raw)
        if n == k:
            base = value.copy() if _is_orthogonal(value) else _make_orthogonal(value)
        else:
            filler = _gen(None).standard_normal(value.shape[:-1] + (n - k,)).astype(value.dtype)
            base = _make_orthogonal(np.concatenate([value, filler], axis=-1))
        self.register_buffer("base", Buffer(base.astype(dtype, copy=False)))
        # -I, so that the Householder map of it (the reflectors' part is 0) is eye(n, k): Q = base
        neg_eye = np.zeros(self.shape, dtype=dtype)
        diagonal = np.arange(k)
        neg_eye[..., diagonal, diagonal] = -1.0
        return Tensor(neg_eye)


def _householder_reflectors(q):
    """``torch.geqrf``'s reflectors for X with forward ``q`` (n x k, n >= k): below the diagonal
    the vectors ``v_i`` of q's QR decomposition, on it the sign of R's diagonal (made -1 where
    LAPACK's tau is 0, as PyTorch does), so that the Householder map gives q back."""
    out = np.empty_like(q)
    for index in np.ndindex(q.shape[:-2]):
        h, tau = np.linalg.qr(q[index], mode="raw")   # h is the transposed LAPACK array
        a = h.T.astype(q.dtype)
        diag = np.sign(np.diagonal(a)).copy()
        diag[tau == 0] *= -1
        np.fill_diagonal(a, diag)
        out[index] = a
    return out


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    r"""Keep ``module.<name>`` orthogonal: ``Q^T Q = I`` (or ``Q Q^T = I`` for a wide matrix)
    through every optimizer step (Lezcano-Casado & Martínez-Rubio, 2019).

    The optimizer updates an unconstrained matrix ``X``; the layer reads ``Q = base @ map(X)``.
    ``map`` sends X into the orthogonal matrices (``"matrix_exp"``, ``"cayley"`` or
    ``"householder"``; by default ``"matrix_exp"`` for a square weight and ``"householder"``
    otherwise), and ``base`` is the weight the layer had when the parametrization was
    registered, replaced by the Q of its QR decomposition if it was not orthogonal (a buffer,
    ``parametrizations.<name>.0.base``); X starts at ``-I``, where ``map`` gives the identity.
    With ``use_trivialization=False`` there is no base; only ``"householder"`` can then be
    assigned to (``module.<name> = Q``).

    ``"matrix_exp"`` and ``"cayley"`` are orthogonal whatever X holds. ``"householder"``
    takes each column's sign from the integer part of X's diagonal, as PyTorch does, so it
    is orthogonal only while that diagonal stays at -1 or 1: its gradient is zero there, but
    weight decay on the original (kind ``"weight"``) would shrink it, so leave the original
    out of decay (``param_groups_by_kind(..., no_decay_kinds=...)`` or a group of its own).

    ``orthogonal_`` only starts a weight orthogonal; gradient steps then leave the set. This
    keeps it there, so a recurrent weight's every singular value stays 1 for the whole of
    training: a linear recurrence keeps its state's length at every step, however many.

    >>> import numpy as np, nnlite as nl
    >>> from nnlite.nn.utils.parametrizations import orthogonal
    >>> layer = orthogonal(nl.nn.Linear(6, 6))
    >>> w = layer.weight.detach().numpy()
    >>> bool(np.allclose(w.T @ w, np.eye(6), atol=1e-5))
    True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"orthogonal: {type(module).__name__} has no parameter or buffer named {name!r} "
                         f"({parametrize._tensor_names(module)})")
    if weight.ndim < 2:
        raise ValueError(f"orthogonal: expected a matrix or batch of matrices, got a tensor of "
                         f"{weight.ndim} dimensions")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError(f'orthogonal: orthogonal_map has to be one of "matrix_exp", "cayley", "householder", '
                         f"got {orthogonal_map!r}")
    parametrize.register_parametrization(
        module, name, _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization), unsafe=True)
    return module
