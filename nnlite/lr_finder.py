"""The learning-rate range test (Smith, 2017, "Cyclical Learning Rates for Training Neural Networks").

Train for a few hundred steps while the learning rate grows exponentially from
``start_lr`` to ``end_lr``, and record the loss at each step::

    lr_k = start_lr * (end_lr / start_lr) ** (k / (num_iters - 1))

At first the rate is too small to change anything and the loss stays flat; then
it falls, fastest where the rate is well matched to the curvature of the loss;
then the steps overshoot and the loss climbs and diverges. A good rate for
training sits on the falling slope, below the bottom of the curve: this module
suggests the rate where the smoothed loss falls fastest per factor of lr, on
its last descent into its minimum.

The loss of single batches is noisy, so the sweep watches an exponential moving
average with bias correction (as Adam corrects its moments) and stops once it
exceeds a multiple of its minimum::

    avg_k = beta * avg_{k-1} + (1 - beta) * loss_k,   running_k = avg_k / (1 - beta ** (k + 1))

That average only looks back, so it lags: with beta = 0.98 a change shows in
it about beta / (1 - beta) = 49 steps late, a third of a 150-step sweep, which
would move a slope read from it towards larger rates than the ones that made
it. The reported curve and the suggestion come from a smoothing that looks both
ways instead, a Gaussian-weighted average of the batch losses with a width of
4% of the steps, which the finished sweep can afford. The descent is taken to
start where this curve last stood near its early level (within a tenth of the
way down to its minimum): before that, the curve is flat and its wiggles are
batch-to-batch noise, whose local slopes can be as steep as the real descent.

The test is a measurement, not training: afterwards the model's parameters and
buffers, every module's training or eval mode, the optimizer's state and
hyperparameters, the data loader's position and the random generator are put
back exactly as they were, bit for bit.
"""
import copy
import math

import numpy as np

from ._kernels.checks import is_int
from .random import get_rng_state, set_rng_state
from .tensor import Tensor

__all__ = ["lr_finder", "LRFinderResult"]


class LRFinderResult:
    """The swept ``lrs``, the batch ``raw_losses``, their centred smoothing ``losses``, the ``suggestion``."""

    def __init__(self, lrs, losses, raw_losses, suggestion, diverged):
        self.lrs, self.losses, self.raw_losses = lrs, losses, raw_losses
        self.suggestion, self.diverged = suggestion, diverged

    def __repr__(self):
        return (f"LRFinderResult({len(self.lrs)} steps from {self.lrs[0]:.2g} to {self.lrs[-1]:.2g}, "
                f"suggestion={self.suggestion:.3g}, diverged={self.diverged})")

    def plot(self, ax=None):
        """The loss against the learning rate (log axis), with the suggestion marked; returns the axes."""
        if ax is None:
            try:
                import matplotlib.pyplot as plt
            except ImportError:
                raise ImportError('LRFinderResult.plot needs matplotlib: pip install "nnlite[plot]"') from None
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.lrs, self.raw_losses, color="0.75", lw=0.8, label="batch loss")
        ax.plot(self.lrs, self.losses, color="C0", lw=2, label="smoothed")
        ax.axvline(self.suggestion, color="C3", ls="--", label=f"suggestion {self.suggestion:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
        return ax


def _centred_smoothing(raw, width=0.04):
    """Gaussian-weighted averages of the batch losses, sigma = ``width`` of the steps (at least 1.5 steps)."""
    raw = np.asarray(raw, dtype=np.float64)
    steps = np.arange(len(raw))
    sigma = max(1.5, width * len(raw))
    weights = np.exp(-0.5 * ((steps[:, None] - steps[None, :]) / sigma) ** 2)
    return weights @ raw / weights.sum(axis=1)


def _steepest_descent(lrs, losses, skip_start, skip_end):
    """The lr where the loss falls fastest against log(lr), on its last descent to its minimum.

    Only the part before the minimum counts: past it the steps overshoot, and a
    loss that bounces back from a spike there is not a rate to train at. The
    descent starts at the last point that still stood within a tenth of the way
    from the early level (the median of the first third before the minimum) down
    to the minimum; ``skip_start``/``skip_end`` points at either end do not count,
    unless fewer than two points are left between them (a sweep that stopped
    early), when the whole way from the first point down to the minimum does.
    """
    lrs, losses = np.asarray(lrs), np.asarray(losses)
    n = len(lrs)
    lo = min(skip_start, n - 2)
    bottom = lo + int(np.argmin(losses[lo:]))
    early = float(np.median(losses[lo:lo + max(3, (bottom - lo) // 3)]))
    near_early = np.flatnonzero(losses[lo:bottom + 1] >= early - 0.1 * (early - losses[bottom]))
    if near_early.size:
        lo += int(near_early[-1])
    hi = min(n - skip_end, bottom + 1)
    if hi - lo < 2:   # too few points left for a slope: the whole way down to the minimum
        lo, hi = 0, max(bottom + 1, 2)
    slope = np.gradient(losses[lo:hi], np.log(lrs[lo:hi]))
    return float(lrs[lo + int(np.argmin(slope))])


def lr_finder(model, loss_fn, loader, start_lr=1e-7, end_lr=10.0, num_iters=100, *, optimizer=None,
              beta=0.98, diverge_factor=4.0, skip_start=5, skip_end=3):
    """Run the range test and return an :class:`LRFinderResult`; the model and optimizer end as they began.

    ``optimizer`` defaults to ``SGD(model.parameters(), lr=start_lr, momentum=0.9)``;
    every parameter group's ``lr`` is set to the swept value at each step. The
    loader is cycled if it has fewer than ``num_iters`` batches. The sweep stops
    early once the running average of the loss (smoothing factor ``beta``)
    exceeds ``diverge_factor`` times its minimum (or a loss is not finite).
    ``skip_start``/``skip_end`` leave the flat start and the diverging end out
    of the suggestion.

    >>> import nnlite as nl
    >>> from nnlite.data import DataLoader, TensorDataset
    >>> x = nl.randn(256, 4); y = x @ nl.tensor([[1.0], [-2.0], [0.5], [3.0]])
    >>> model = nl.nn.Linear(4, 1)
    >>> result = nl.train.lr_finder(model, nl.nn.functional.mse_loss,
    ...                             DataLoader(TensorDataset(x, y), batch_size=32), num_iters=60)
    >>> 1e-4 < result.suggestion < 1.0
    True
    """
    from .nn._checks import require_module
    from .optim import SGD
    require_module(model, "lr_finder")
    if not 0 < start_lr < end_lr < math.inf:
        raise ValueError(f"lr_finder: need 0 < start_lr < end_lr < inf, got start_lr={start_lr}, end_lr={end_lr}")
    if not is_int(num_iters) or num_iters < 2:
        raise ValueError(f"lr_finder: num_iters must be an integer >= 2, got {num_iters!r}")
    if not 0 <= beta < 1:
        raise ValueError(f"lr_finder: the smoothing factor beta must be in [0, 1), got {beta}")
    # At a factor <= 1 the first step's loss, which is its own minimum, would already count as diverged.
    if not diverge_factor > 1:
        raise ValueError(f"lr_finder: diverge_factor must be > 1, got {diverge_factor}")
    for name, value in (("skip_start", skip_start), ("skip_end", skip_end)):
        if not is_int(value) or value < 0:
            raise ValueError(f"lr_finder: {name} must be an integer >= 0, got {value!r}")
    if optimizer is None and not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"lr_finder: {type(model).__name__} has no trainable parameters to sweep")
    if not hasattr(loader, "__len__"):   # an iterator: it cannot start another pass, nor be put back
        raise TypeError(f"lr_finder: expected a loader with a length that can be iterated again (a DataLoader, "
                        f"a list of batches), got {type(loader).__name__}")
    if len(loader) == 0:
        raise ValueError("lr_finder: the loader has no batches")
    if optimizer is None:
        optimizer = SGD(model.parameters(), lr=start_lr, momentum=0.9)

    saved = _save(model, optimizer, loader)
    lrs, raw, diverged = [], [], False
    avg, best = 0.0, math.inf
    ratio = (end_lr / start_lr) ** (1.0 / (num_iters - 1))
    try:
        model.train()   # every sub-module's own mode comes back in _restore
        batches = iter(loader)
        for k in range(num_iters):
            try:
                inputs, targets = next(batches)
            except StopIteration:   # a short loader: start another pass
                batches = iter(loader)
                inputs, targets = next(batches)
            lr = start_lr * ratio ** k
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            value = float(loss.item())
            if not math.isfinite(value):
                diverged = True
                break
            loss.backward()
            optimizer.step()
            avg = beta * avg + (1 - beta) * value
            running = avg / (1 - beta ** (k + 1))
            lrs.append(lr)
            raw.append(value)
            best = min(best, running)
            if running > diverge_factor * best:
                diverged = True
                break
    finally:
        _restore(model, optimizer, loader, saved)
    if len(lrs) < 2:
        raise RuntimeError(f"lr_finder: the loss was not finite from the first step (lr={start_lr:g}); "
                           "check the data for NaN or inf, or lower start_lr")
    smoothed = [float(v) for v in _centred_smoothing(raw)]
    return LRFinderResult(lrs, smoothed, raw, _steepest_descent(lrs, smoothed, skip_start, skip_end), diverged)


# --------------------------------------------------------- saving the state --
def _save(model, optimizer, loader):
    # The optimizer may also step tensors outside the model (a learned weight inside loss_fn).
    params = list({id(p): p for p in list(model.parameters())
                   + [p for group in optimizer.param_groups for p in group["params"]]}.values())
    tensors = [(t, t.data.copy()) for t in params + list(model.buffers())]
    grads = [(p, None if p.grad is None else p.grad.data.copy()) for p in params]
    return {
        "tensors": tensors, "grads": grads, "modes": [(m, m.training) for m in model.modules()],
        # state_dict() copies; loading it back also empties the state of parameters that had
        # none before (a fresh optimizer), so the sweep's moments do not survive it.
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "loader": _loader_position(loader),
        "rng": get_rng_state(),
    }


def _restore(model, optimizer, loader, saved):
    from .analysis._batches import put_back
    for t, data in saved["tensors"]:
        put_back(t, data)            # in place where it can be: the optimizer's arena keeps its views
    for p, grad in saved["grads"]:
        if grad is None:
            p.grad = None
        elif p.grad is not None:
            p.grad.data[...] = grad
        else:
            p.grad = Tensor(grad)
    optimizer.load_state_dict(saved["optimizer"])
    for module, mode in saved["modes"]:   # parents before children: each child's own mode is set last
        module.train(mode)
    _set_loader_position(loader, saved["loader"])
    set_rng_state(saved["rng"])


def _loader_position(loader):
    """Everything that decides the loader's next batch: its attributes and its own generator.

    ``state_dict()`` is not enough here: loading it makes the next ``iter()``
    continue the saved epoch, where the untouched loader would have begun a new one.
    """
    if not hasattr(loader, "__dict__"):
        return None  # a list or tuple of batches: iterating it changes nothing
    generator = getattr(loader, "generator", None)
    return dict(vars(loader)), (generator.get_state() if hasattr(generator, "get_state") else None)


def _set_loader_position(loader, saved):
    if saved is None:
        return
    attributes, generator_state = saved
    vars(loader).clear()
    vars(loader).update(attributes)
    if generator_state is not None:
        loader.generator.set_state(generator_state)

