"""The gradient noise scale (McCandlish, Kaplan, Amodei et al., 2018, "An Empirical Model of
Large-Batch Training").

A minibatch gradient of batch size B is the true gradient G plus noise whose
covariance is Sigma / B (Sigma: the covariance of per-example gradients). The
*simple noise scale*::

    B_simple = tr(Sigma) / |G|^2

is the batch size at which the noise is as large as the signal. Far below it,
doubling the batch nearly halves the steps needed (and the linear scaling rule
holds: double the batch, double the learning rate); far above it, a larger
batch only spends more computation per step for the same progress.

Neither ``tr(Sigma)`` nor ``|G|^2`` is known, but both follow from squared
gradient norms at two batch sizes, because ``E|g_B|^2 = |G|^2 + tr(Sigma) / B``. Here the
small batch is the loader's batch b (k of them, gradients g_1..g_k) and the
big batch is their union, of size k b, whose gradient is their mean. With
``small = mean_i |g_i|^2`` and ``big = |mean_i g_i|^2`` the unbiased estimates
are::

    |G|^2     = (k b * big - b * small) / (k b - b)
    tr(Sigma) = (small - big) / (1 / b - 1 / (k b))
"""
import numpy as np

from ._kernels.checks import is_int
from .autograd import grad
from .lr_finder import _loader_position, _set_loader_position
from .random import get_rng_state, set_rng_state

__all__ = ["gradient_noise_scale", "NoiseScale"]


class NoiseScale:
    """``b_simple`` = ``trace_covariance`` / ``gradient_norm_sq``, measured with ``num_batches`` of ``batch_size``."""

    def __init__(self, b_simple, gradient_norm_sq, trace_covariance, batch_size, num_batches):
        self.b_simple, self.gradient_norm_sq, self.trace_covariance = b_simple, gradient_norm_sq, trace_covariance
        self.batch_size, self.num_batches = batch_size, num_batches

    def __repr__(self):
        return (f"NoiseScale(b_simple={self.b_simple:.4g}, |G|^2={self.gradient_norm_sq:.4g}, "
                f"tr(Sigma)={self.trace_covariance:.4g}; {self.num_batches} batches of {self.batch_size})")


def gradient_noise_scale(model, loss_fn, loader, num_batches=None):
    """Estimate the simple noise scale of ``model`` at its current parameters; see the module docstring.

    Uses the first ``num_batches`` full batches of ``loader`` (all of them by
    default; a shorter last batch is left out, the formula needs one size).
    Nothing changes: no ``.grad`` is written (gradients come from
    :func:`nnlite.grad`), and the loader's position, the random generator and
    the buffers (BatchNorm's running statistics) are put back afterwards.
    """
    from .analysis._batches import buffers_kept
    from .nn._checks import require_module
    if num_batches is not None and (not is_int(num_batches)
                                    or num_batches < 2):
        raise ValueError(f"gradient_noise_scale: num_batches must be None or an integer >= 2, got {num_batches!r}")
    params = [p for p in require_module(model, "gradient_noise_scale").parameters() if p.requires_grad]
    if not params:
        raise ValueError("gradient_noise_scale: the model has no trainable parameters")
    position = _loader_position(loader)
    rng = get_rng_state()
    batch_size, flat, squares = None, None, []
    try:
        for inputs, targets in loader:
            n = int(targets.shape[0])
            batch_size = n if batch_size is None else batch_size
            if n != batch_size:
                continue
            with buffers_kept(model):
                loss = loss_fn(model(inputs), targets)
            # A parameter the loss does not reach (an unused head) has gradient 0 in every batch.
            grads = grad(loss, params, allow_unused=True)
            g = np.concatenate([np.zeros(p.data.size) if x is None else x.data.astype(np.float64).ravel()
                                for x, p in zip(grads, params)])
            squares.append(float(g @ g))
            flat = g if flat is None else flat + g
            if num_batches is not None and len(squares) == num_batches:
                break
    finally:
        _set_loader_position(loader, position)
        set_rng_state(rng)
    k = len(squares)
    if k < 2:
        raise ValueError(f"gradient_noise_scale: needs at least 2 full batches, got {k}")
    b, big_b = batch_size, batch_size * k
    small = float(np.mean(squares))
    mean = flat / k
    big = float(mean @ mean)
    norm_sq = (big_b * big - b * small) / (big_b - b)
    trace = (small - big) / (1.0 / b - 1.0 / big_b)
    if norm_sq == 0:
        raise ValueError("gradient_noise_scale: the estimate of |G|^2 is 0 (the gradients vanish), so the noise "
                         "scale tr(Sigma) / |G|^2 is undefined")
    return NoiseScale(trace / norm_sq, norm_sq, trace, b, k)
