"""How much a learner remembers and reuses: the accuracy matrix and its summaries.

After training on task ``i`` (of ``T``) the learner is tested on every task
``j``; the accuracies form the matrix ``R[i, j]`` (Lopez-Paz & Ranzato 2017,
"Gradient Episodic Memory for Continual Learning"). Below the diagonal is
memory, the diagonal is learning, above it is transfer to tasks not yet seen.

.. math::

    \\mathrm{ACC} = \\frac{1}{T}\\sum_{j} R_{T-1,j}, \\qquad
    \\mathrm{BWT} = \\frac{1}{T-1}\\sum_{j<T-1} (R_{T-1,j} - R_{j,j}), \\qquad
    \\mathrm{FWT} = \\frac{1}{T-1}\\sum_{j>0} (R_{j-1,j} - b_j)

where ``b_j`` is the accuracy on task ``j`` of the model before any training.
Negative BWT is forgetting; catastrophic forgetting is BWT close to minus the
accuracy that was learnt.
"""
import numpy as np

__all__ = ["average_accuracy", "backward_transfer", "forward_transfer", "plot_accuracy_matrix"]


def _matrix(R):
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"expected a square accuracy matrix R[i, j] (T x T), got shape {R.shape}")
    return R


def average_accuracy(R):
    """ACC: the mean accuracy over all tasks after training on the last one (last row of R).

    >>> average_accuracy([[0.9, 0.1], [0.5, 0.8]])
    0.65
    """
    return float(_matrix(R)[-1].mean())


def backward_transfer(R):
    """BWT: how accuracy on earlier tasks changed by the end, averaged over tasks 0 .. T-2.

    >>> round(backward_transfer([[0.9, 0.1], [0.5, 0.8]]), 6)
    -0.4
    """
    R = _matrix(R)
    if len(R) < 2:
        return 0.0
    return float(np.mean(R[-1, :-1] - np.diag(R)[:-1]))


def forward_transfer(R, baseline):
    """FWT: accuracy on task j before training on it (R[j-1, j]) minus the untrained model's ``baseline[j]``."""
    R = _matrix(R)
    baseline = np.asarray(baseline, dtype=np.float64)
    if baseline.shape != (len(R),):
        raise ValueError(f"forward_transfer: baseline needs one accuracy per task ({len(R)}), got shape "
                         f"{baseline.shape}")
    if len(R) < 2:
        return 0.0
    return float(np.mean([R[j - 1, j] - baseline[j] for j in range(1, len(R))]))


def plot_accuracy_matrix(R, ax=None, title=None):
    """A heat map of R (rows: after training on task i; columns: tested on task j), values written in."""
    from ..plot import _pyplot   # matplotlib, or an error that names the nnlite[plot] extra
    plt = _pyplot()
    R = _matrix(R)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    image = ax.imshow(R, vmin=0.0, vmax=1.0, cmap="viridis")
    for i in range(len(R)):
        for j in range(len(R)):
            ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if R[i, j] > 0.6 else "white")
    ax.set_xlabel("tested on task j")
    ax.set_ylabel("after training task i")
    ax.set_xticks(range(len(R)))
    ax.set_yticks(range(len(R)))
    if title:
        ax.set_title(title, fontsize=9)
    return image
