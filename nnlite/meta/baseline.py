"""The pre-trained baseline of the MAML paper: one network trained on all tasks at once.

It sees the same task distribution as the meta-learners, but is trained to fit
every task's points with *one* set of parameters (ordinary multi-task
training). On sinusoids with random phase the best such network predicts
roughly the average wave, close to zero everywhere; fine-tuned on K points of
a new wave it then moves slowly — the behaviour MAML's learned initialisation
is compared against.
"""
from .._kernels.checks import is_int
from .. import optim
from ..nn import functional as F

__all__ = ["pretrain"]


def pretrain(model, tasks, iterations, lr=1e-3, meta_batch_size=25, loss_fn=F.mse_loss):
    """Train ``model`` with Adam on the support and query points of freshly sampled tasks.

    ``tasks`` is a sampler with ``sample(n)`` returning a TaskBatch. Returns the
    loss per iteration (floats).
    """
    if not is_int(iterations) or iterations < 0:
        raise ValueError(f"pretrain: iterations must be an integer >= 0, got {iterations!r}")
    if not callable(getattr(tasks, "sample", None)):
        raise TypeError(f"pretrain: expected tasks to be a sampler with sample(n), such as SinusoidTasks, "
                        f"got {type(tasks).__name__}")
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(iterations):
        batch = tasks.sample(meta_batch_size)
        loss = (loss_fn(model(batch.support_x), batch.support_y) + loss_fn(model(batch.query_x), batch.query_y)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(float(loss.data))
    return history
