r"""Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms").

Reptile needs no meta-gradient at all. For each task of a batch it runs
``inner_steps`` steps of gradient descent from the current initialisation
:math:`\theta` to adapted parameters :math:`\phi_t`, then moves :math:`\theta`
part of the way towards their mean:

.. math::

    \theta \leftarrow \theta + \epsilon\,\Bigl(\tfrac1T\textstyle\sum_t \phi_t - \theta\Bigr).

With one inner step this is joint training on all tasks; with several, the
paper shows the update contains the same term as first-order MAML's (it
favours initialisations where the gradients of different mini-batches of a
task agree), which is why it meta-learns.
"""
from .._kernels.checks import real_number
from ..autograd import no_grad
from ..nn import functional as F
from .maml import InnerLoop

__all__ = ["Reptile"]


def _outer_lr(outer_lr):
    real_number("Reptile", "outer_lr", outer_lr)
    if not 0 < outer_lr < float("inf"):
        raise ValueError(f"Reptile: outer_lr must be a finite number > 0, got {outer_lr!r}")
    return float(outer_lr)


class Reptile(InnerLoop):
    """``step(batch)`` adapts to every task of the batch and moves the model towards the result.

    ``outer_lr`` is :math:`\\epsilon` (the paper anneals it linearly to 0; pass
    ``outer_lr=`` to ``step`` to do so).
    """

    def __init__(self, model, inner_lr=0.01, inner_steps=5, outer_lr=0.1, loss_fn=F.mse_loss,
                 task_batched=False):
        super().__init__(model, inner_lr, inner_steps, loss_fn, task_batched)
        self.outer_lr = _outer_lr(outer_lr)

    def step(self, batch, outer_lr=None):
        """One Reptile meta-step on ``batch``; returns the mean support loss before adapting."""
        epsilon = self.outer_lr if outer_lr is None else _outer_lr(outer_lr)
        names = [k for k, p in self.model.named_parameters() if p.requires_grad]   # frozen ones stay as they are
        mean_phi = {k: 0.0 for k in names}
        count, first_loss = 0, 0.0
        for support_x, support_y, _, _ in self._per_task(batch):
            start = {k: p.detach().requires_grad_() for k, p in self.initial_parameters(support_x.shape[0]).items()}
            with no_grad():
                first_loss += float(self.support_loss(start, support_x, support_y).data)
            phi = self.adapt(support_x, support_y, parameters=start)
            tasks = support_x.shape[0] if self.task_batched else 1
            for k in names:
                # The inner gradients are constants, so phi is data; sum it over the task dimension.
                data = phi[k].data
                mean_phi[k] = mean_phi[k] + (data.sum(axis=0) if self.task_batched else data)
            count += tasks
        with no_grad():
            for k, p in self.model.named_parameters():
                if k not in mean_phi:
                    continue
                p.data += epsilon * (mean_phi[k] / count - p.data)
                p._bump_version()
        # A task-batched support loss is already the sum of the T tasks' means (see support_loss),
        # as the per-task losses added up are: either way, divide by the number of tasks.
        return first_loss / count
