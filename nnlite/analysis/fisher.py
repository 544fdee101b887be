"""Per-sample gradients and the diagonal of the empirical Fisher information.

The **Fisher information** of a model p(y | x, θ) is the expected outer product
of the score, F = E[∇_θ log p(y|x,θ) ∇_θ log p(y|x,θ)ᵀ]; near a minimum of the
negative log-likelihood it approximates the Hessian of the loss, so a large
F_ii means the loss is sensitive to θ_i (Fisher 1925; Amari 1998, "Natural
gradient works efficiently in learning"). The **empirical Fisher** takes the
expectation over the training pairs (x_n, y_n) with their true labels:

    F_ii ≈ (1/N) Σ_n (∂ℓ(x_n, y_n; θ) / ∂θ_i)²

where ℓ is the loss of one sample. Its diagonal is the importance weight of
elastic weight consolidation (Kirkpatrick et al., 2017, "Overcoming
catastrophic forgetting in neural networks"). Kunstner, Hennig & Balles (2019,
"Limitations of the empirical Fisher approximation") explain when it differs
from the true Fisher.

The square must be taken of each sample's own gradient: the square of a batch's
mean gradient is a different (and much smaller) number. Here each sample gets
its own forward and backward pass, which is exact whatever the model does
(batch norm in training mode would mix samples; call ``model.eval()`` first
for the usual Fisher of a trained model).
"""
import numpy as np

from ..autograd import grad
from ..tensor import Tensor
from ._batches import as_batch_list, batch_size, buffers_kept, trainable_parameters

__all__ = ["per_sample_gradients", "fisher_diagonal"]


def _sample_gradients(model, loss_fn, params, input, target):
    """Yield, for each sample of the batch, the list of its gradients (NumPy arrays)."""
    for i in range(batch_size(input)):
        with buffers_kept(model):
            loss = loss_fn(model(input[i:i + 1]), target[i:i + 1])
        grads = grad(loss, params, allow_unused=True)
        yield [np.zeros(p.shape, p.dtype) if g is None else g.data for g, p in zip(grads, params)]


def per_sample_gradients(model, loss_fn, input, target):
    """The gradient of each sample's loss: ``{name: Tensor of shape (N, *parameter.shape)}``.

    Row n holds ∂ℓ(x_n, y_n)/∂θ, computed from a forward and a backward pass of
    sample n alone (``loss_fn(model(input[n:n+1]), target[n:n+1])``). The mean
    of the rows is the gradient of the batch's mean loss. Only trainable
    parameters are included; gradients are returned, not accumulated into
    ``.grad``.

    >>> import nnlite as nl
    >>> model = nl.nn.Linear(3, 2)
    >>> g = per_sample_gradients(model, nl.nn.functional.mse_loss, nl.randn(5, 3), nl.randn(5, 2))
    >>> g["weight"].shape
    (5, 2, 3)
    """
    named = trainable_parameters(model)
    params = [p for _, p in named]
    (input, target), = as_batch_list((input, target))
    rows = list(_sample_gradients(model, loss_fn, params, input, target))
    return {name: Tensor(np.stack([r[j] for r in rows])) for j, (name, _) in enumerate(named)}


def fisher_diagonal(model, loss_fn, batches):
    """Diagonal of the empirical Fisher: ``{name: Tensor}``, the mean over samples of (∂ℓ_n/∂θ)².

    ``loss_fn(output, target)`` returns the mean loss of a batch (as
    ``F.cross_entropy`` does); it is called on one sample at a time, so each
    sample's gradient is exact. ``batches`` is an iterable of ``(input,
    target)`` pairs or one pair; the mean runs over all their samples. Each
    entry has its parameter's shape; only trainable parameters are included.
    The squares are summed in float64 and returned in the parameter's dtype.

    >>> import nnlite as nl
    >>> model = nl.nn.Linear(4, 3)
    >>> x, y = nl.randn(8, 4), nl.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    >>> fisher = fisher_diagonal(model, nl.nn.functional.cross_entropy, (x, y))
    >>> fisher["weight"].shape, bool((fisher["weight"].numpy() >= 0).all())
    ((3, 4), True)
    """
    named = trainable_parameters(model)
    params = [p for _, p in named]
    sums = [np.zeros(p.shape, np.float64) for p in params]
    count = 0
    for input, target in as_batch_list(batches):
        for grads in _sample_gradients(model, loss_fn, params, input, target):
            for s, g in zip(sums, grads):
                s += np.square(g, dtype=np.float64)
            count += 1
    return {name: Tensor((s / count).astype(p.dtype)) for (name, p), s in zip(named, sums)}
