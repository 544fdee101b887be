r"""Loss landscapes: the loss along a line or over a plane through parameter space.

A network has far too many parameters to see its loss surface, but a slice of
it can be drawn. Two slices are standard:

* **Linear interpolation** (Goodfellow, Vinyals & Saxe, 2015, *Qualitatively
  characterizing neural network optimization problems*): the loss at
  :math:`\theta(\alpha) = (1 - \alpha)\,\theta_0 + \alpha\,\theta_1` between two
  states, typically the initial and the trained parameters. A curve that falls
  without bumps says that nothing in the way had to be climbed over.
* **Filter-normalised random planes** (Li, Xu, Taylor, Studer & Goldstein,
  2018, *Visualizing the Loss Landscape of Neural Nets*): the loss at
  :math:`\theta^* + \alpha\,\delta + \beta\,\eta` for two random Gaussian
  directions :math:`\delta, \eta`. A plain random direction is meaningless
  for networks whose layers can be rescaled without changing the function
  (ReLU networks, batch norm): a step of 1 is a large change to a layer of
  small weights and a small one to a layer of large weights. Li et al. rescale
  the direction *filter by filter*,

  .. math:: d_{i} \leftarrow \frac{d_{i}}{\lVert d_{i} \rVert}\, \lVert \theta_{i} \rVert,

  where :math:`i` runs over the output units of a layer (a convolution's
  output channel, a row of a Linear weight), so a step of 1 changes every
  filter by its own size and planes of different networks can be compared.
  Their 1-D parameters (biases, batch norm's scale and shift) are left out of
  the directions: they stay fixed.

The model is evaluated in eval mode without gradients and is returned exactly
as it was, bit for bit.
"""
import numpy as np

from .._kernels.checks import is_int, real_number
from ..autograd import no_grad
from ..nn._checks import require_module
from ..nn.module import modes_kept
from ..random import Generator
from ..tensor import Tensor
from ._snapshot import restore, snapshot

__all__ = ["LossLandscape", "loss_landscape_1d", "loss_landscape_2d", "random_direction", "average_loss"]


class LossLandscape:
    """The result of a landscape scan.

    ``alphas`` (and ``betas`` for a plane) are the coordinates, ``loss`` the
    losses (shape ``(len(alphas),)`` or ``(len(alphas), len(betas))``, indexed
    ``loss[i, j]`` at ``alphas[i], betas[j]``), ``directions`` the directions
    used (dicts of arrays by parameter name; for a line, the difference
    ``end - start``).
    """

    def __init__(self, alphas, loss, betas=None, directions=()):
        expected = (len(alphas),) if betas is None else (len(alphas), len(betas))
        if np.shape(loss) != expected:
            raise ValueError(f"LossLandscape: expected loss of shape {expected}, one value per point, "
                             f"got {np.shape(loss)}")
        self.alphas, self.betas, self.loss, self.directions = alphas, betas, loss, directions

    @property
    def ndim(self):
        return 1 if self.betas is None else 2

    def __repr__(self):
        shape = "x".join(str(n) for n in self.loss.shape)
        return f"LossLandscape({self.ndim}-D, {shape} points, loss {self.loss.min():.4g}..{self.loss.max():.4g})"


def average_loss(model, loss_fn, batches):
    """Mean of ``loss_fn(model(inputs), targets)`` over ``batches``, weighted by their sizes.

    ``batches`` is anything iterable that yields ``(inputs, targets)`` pairs,
    again each time it is iterated: a list of pairs or a DataLoader. A loader
    that shuffles gives a different sample at every point, so pass a fixed one.
    """
    total, count = 0.0, 0
    with no_grad():
        for inputs, targets in batches:
            n = targets.numel() if isinstance(targets, Tensor) else len(targets)
            total += float(loss_fn(model(inputs), targets).item()) * n
            count += n
    if count == 0:
        raise ValueError("loss landscape: `batches` produced no (inputs, targets) pairs")
    return total / count


def _as_array(value):
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _scan(model, loss_fn, batches, points, set_point):
    """Evaluate the loss at each point, then put the model back as it was."""
    saved = snapshot(model)
    try:
        with modes_kept(model):
            model.eval()
            losses = []
            for point in points:
                set_point(point)
                losses.append(average_loss(model, loss_fn, batches))
        return np.array(losses)
    finally:
        restore(model, saved)


def loss_landscape_1d(model, loss_fn, batches, start_state, end_state, alphas=None):
    r"""Loss along the straight line from ``start_state`` to ``end_state`` (Goodfellow et al. 2015).

    At each :math:`\alpha` the model gets
    :math:`(1 - \alpha)\,\theta_{start} + \alpha\,\theta_{end}` for every
    floating-point entry of the two state dicts (parameters, and buffers such
    as batch norm's running statistics; integer counters are left alone), so
    :math:`\alpha = 0` and :math:`\alpha = 1` give exactly the two states.
    Values of :math:`\alpha` outside [0, 1] extrapolate beyond them.

    Returns a :class:`LossLandscape` with ``alphas`` and ``loss``; see
    the parameters below.

    >>> import nnlite as nl
    >>> model = nl.nn.Linear(2, 1)
    >>> x, y = nl.randn(8, 2), nl.randn(8, 1)
    >>> start = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    >>> end = {k: v * 0 for k, v in start.items()}
    >>> scan = nl.monitor.loss_landscape_1d(model, nl.nn.functional.mse_loss, [(x, y)], start, end, [0.0, 1.0])
    >>> float(scan.loss[1]) == float((y * y).mean().item())
    True

    Parameters
    ----------
    start_state, end_state
        State dicts with the same keys (``model.state_dict()``, as arrays or
        Tensors, copied before training moves the model on).
    alphas
        The points; default 41 points from -0.25 to 1.25.
    """
    alphas = np.linspace(-0.25, 1.25, 41) if alphas is None else np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"loss_landscape_1d: alphas must be a non-empty 1-D sequence, got shape {alphas.shape}")
    if not np.isfinite(alphas).all():
        raise ValueError(f"loss_landscape_1d: alphas must be finite, got {alphas}")
    for name, state in (("start_state", start_state), ("end_state", end_state)):
        if not hasattr(state, "items"):
            raise TypeError(f"loss_landscape_1d: expected {name} as a state dict, got {type(state).__name__}")
    own = dict(_named_floating(model))
    missing = [k for k in own if k not in start_state or k not in end_state]
    if missing:
        raise KeyError(f"loss_landscape_1d: start_state and end_state must hold every entry of the model's "
                       f"state dict; missing {missing}")
    start = {k: _as_array(start_state[k]).astype(np.float64) for k in own}
    end = {k: _as_array(end_state[k]).astype(np.float64) for k in own}
    for k, t in own.items():
        if start[k].shape != t.shape or end[k].shape != t.shape:
            raise ValueError(f"loss_landscape_1d: {k} has shape {t.shape} in the model, {start[k].shape} in "
                             f"start_state and {end[k].shape} in end_state")

    def set_point(alpha):
        for k, t in own.items():
            np.copyto(t.data, (1.0 - alpha) * start[k] + alpha * end[k], casting="unsafe")

    loss = _scan(model, loss_fn, batches, alphas, set_point)
    return LossLandscape(alphas, loss, directions=({k: end[k] - start[k] for k in own},))


def _named_floating(model):
    for name, t in model.state_dict(keep_vars=True).items():
        if t.data.dtype.kind == "f":
            yield name, t


def _fixed_parameters(model, ignore):
    """Names of the parameters that stay fixed (zero direction) under ``ignore``."""
    from ..nn.normalization import _BatchNorm
    fixed = set()
    for module_name, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            prefix = module_name + "." if module_name else ""
            fixed.update(prefix + n for n, p in module._parameters.items() if p is not None)
    if ignore == "biasbn":
        fixed.update(name for name, p in model.named_parameters() if p.ndim <= 1)
    return fixed


def random_direction(model, normalization="filter", ignore="biasbn", generator=None):
    r"""A Gaussian direction in parameter space, one array per parameter name.

    ``normalization``:

    * ``"filter"`` — each filter :math:`d_i` (slice along the first axis: an
      output channel or a row of a weight matrix) gets the norm of the
      parameter's filter :math:`\theta_i` (Li et al. 2018);
    * ``"layer"`` — each parameter's direction gets that parameter's norm;
    * ``None`` — the raw :math:`\mathcal N(0, 1)` sample.

    ``ignore="biasbn"`` (the paper's setting) gives every 1-D parameter —
    biases, normalisation scales and shifts — a zero direction, so they stay
    fixed; ``ignore="bn"`` fixes only BatchNorm's parameters. Frozen
    parameters (``requires_grad=False``) are fixed too.
    """
    if normalization not in ("filter", "layer", None):
        raise ValueError(f"random_direction: normalization must be 'filter', 'layer' or None, got {normalization!r}")
    if ignore not in ("biasbn", "bn"):
        raise ValueError(f"random_direction: ignore must be 'biasbn' or 'bn', got {ignore!r}")
    require_module(model, "random_direction")
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"random_direction: generator must be an nl.Generator or None, got {type(generator).__name__}")
    generator = generator if generator is not None else Generator(0)
    fixed = _fixed_parameters(model, ignore)
    direction = {}
    for name, p in model.named_parameters():
        theta = p.data.astype(np.float64)
        if name in fixed or not p.requires_grad:
            direction[name] = np.zeros_like(theta)
            continue
        d = generator.np.standard_normal(theta.shape)
        if normalization == "filter" and theta.ndim >= 1:
            axes = tuple(range(1, theta.ndim))
            d_norm = np.sqrt((d * d).sum(axis=axes, keepdims=True)) if axes else np.abs(d)
            t_norm = np.sqrt((theta * theta).sum(axis=axes, keepdims=True)) if axes else np.abs(theta)
            d = d / np.maximum(d_norm, 1e-30) * t_norm
        elif normalization == "layer":
            d = d / max(np.linalg.norm(d), 1e-30) * np.linalg.norm(theta)
        direction[name] = d
    return direction


def _direction_arrays(params, direction, which):
    """``direction`` as float64 arrays of exactly the parameters' shapes (a smaller array would broadcast)."""
    if not hasattr(direction, "items"):
        raise TypeError(f"loss_landscape_2d: expected the {which} direction as a dict of arrays by parameter "
                        f"name, got {type(direction).__name__}")
    missing = [k for k in params if k not in direction]
    if missing:
        raise KeyError(f"loss_landscape_2d: the {which} direction must hold every parameter of the model; "
                       f"missing {missing}")
    arrays = {k: _as_array(direction[k]).astype(np.float64) for k in params}
    for k, p in params.items():
        if arrays[k].shape != p.shape:
            raise ValueError(f"loss_landscape_2d: {k} has shape {p.shape} in the model but "
                             f"{arrays[k].shape} in the {which} direction")
    return arrays


def loss_landscape_2d(model, loss_fn, batches, steps=21, span=1.0, normalization="filter", generator=None,
                      *, directions=None, ignore="biasbn"):
    r"""Loss over the plane :math:`\theta^* + \alpha\,\delta + \beta\,\eta` around the model (Li et al. 2018).

    Returns a :class:`LossLandscape` with ``alphas``, ``betas``, ``loss`` of
    shape ``(steps, steps)`` and the two ``directions``. The model is
    unchanged afterwards.

    Parameters
    ----------
    steps
        Grid points per axis: odd, so that the centre :math:`\alpha = \beta = 0`
        is on the grid and equals the model's own loss.
    span
        The grid covers ``[-span, span]`` on both axes.
    normalization, ignore
        How the two random directions are scaled and which parameters they
        leave fixed; see :func:`random_direction`. BatchNorm's parameters are
        always fixed, and its running statistics are buffers, which no
        direction moves.
    generator
        A :class:`nnlite.Generator` for the directions (default ``Generator(0)``).
    directions
        Two direction dicts to use instead of random ones, each with an array
        (or Tensor) of the parameter's own shape for every parameter name.
    """
    if not is_int(steps) or steps < 1 or steps % 2 == 0:   # int(20.5) would quietly make it 20
        raise ValueError(f"loss_landscape_2d: steps must be a positive odd number (the centre on the grid), "
                         f"got {steps!r}")
    steps = int(steps)
    if not real_number("loss_landscape_2d", "span", span) > 0:
        raise ValueError(f"loss_landscape_2d: span must be > 0, got {span}")
    if directions is None:
        generator = generator if generator is not None else Generator(0)
        directions = tuple(random_direction(model, normalization, ignore, generator) for _ in range(2))
    if len(directions) != 2:
        raise ValueError(f"loss_landscape_2d: directions must be two dicts, got {len(directions)}")
    grid = np.linspace(-span, span, steps)
    grid[steps // 2] = 0.0  # exactly zero, so the centre is the model itself
    params = dict(model.named_parameters())
    center = {k: p.data.astype(np.float64) for k, p in params.items()}
    delta, eta = (_direction_arrays(params, d, which) for d, which in zip(directions, ("first", "second")))

    def set_point(point):
        alpha, beta = point
        for k, p in params.items():
            np.copyto(p.data, center[k] + alpha * delta[k] + beta * eta[k], casting="unsafe")

    points = [(a, b) for a in grid for b in grid]
    loss = _scan(model, loss_fn, batches, points, set_point).reshape(steps, steps)
    return LossLandscape(grid, loss, betas=grid.copy(), directions=directions)
