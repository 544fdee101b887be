r"""MAML and first-order MAML (Finn, Abbeel & Levine 2017, "Model-Agnostic Meta-Learning").

MAML learns an *initialisation* :math:`\theta` from which a few gradient steps
on a new task's K examples already give a good model. For one task with
support loss :math:`L^{s}` and query loss :math:`L^{q}`, one inner step is

.. math::

    \phi = \theta - \alpha \nabla_\theta L^{s}(\theta),

and the meta-objective is the query loss after adaptation, averaged over a
meta-batch of tasks, :math:`\frac1T\sum_t L^{q}_t(\phi_t)`. Its gradient runs
*through* the inner step:

.. math::

    \nabla_\theta L^{q}(\phi) = \bigl(I - \alpha \nabla^2_\theta L^{s}(\theta)\bigr)\,
    \nabla_\phi L^{q}(\phi),

which contains the Hessian of the support loss. nnlite gets it honestly: the
inner gradients are computed with ``nl.grad(..., create_graph=True)``, so they
are themselves differentiable, and ``meta_loss(...).backward()`` carries the
second-order term. With several inner steps the product of such factors is
differentiated the same way.

**First-order MAML** (``first_order=True``) drops the Hessian: the inner
gradients are detached, :math:`\partial\phi/\partial\theta = I`, so the
meta-gradient is simply the query-loss gradient at the adapted parameters,
:math:`\frac1T\sum_t \nabla_\phi L^{q}_t(\phi_t)`. Cheaper, and on the
sinusoids nearly as good.

The model is used statelessly (:func:`nnlite.func.functional_call`): the
adapted :math:`\phi` are plain tensors, the module keeps :math:`\theta`. With
``task_batched=True`` (a Sequential of Linear layers and activations) the whole
meta-batch is adapted in one pass with one parameter copy per task
(:func:`~nnlite.meta.task_batched_call`).
"""
import math

from .. import autograd
from .._kernels.checks import real_number
from ..autograd import no_grad
from ..func import functional_call
from ..nn import functional as F
from ..nn._checks import require_module
from .sinusoid import task_batched_call

__all__ = ["InnerLoop", "MAML"]


class InnerLoop:
    """Fine-tuning by plain gradient descent from a model's parameters, without changing the model.

    The part every gradient-based meta-learner shares, and the test-time
    procedure for all of them (and for the pre-trained baseline): ``steps``
    steps of :math:`\\phi \\leftarrow \\phi - \\alpha\\nabla_\\phi L^{s}(\\phi)`.
    """

    def __init__(self, model, inner_lr=0.01, inner_steps=1, loss_fn=F.mse_loss, task_batched=False):
        require_module(model, type(self).__name__)
        real_number(type(self).__name__, "inner_lr", inner_lr)
        real_number(type(self).__name__, "inner_steps", inner_steps)
        if not 0 < inner_lr < math.inf or inner_steps < 1 or int(inner_steps) != inner_steps:
            raise ValueError(f"{type(self).__name__}: inner_lr must be a finite number > 0 and inner_steps an "
                             f"integer >= 1, got inner_lr={inner_lr}, inner_steps={inner_steps}")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"{type(self).__name__}: {type(model).__name__} has no parameters to adapt "
                             "(none with requires_grad=True)")
        self.model, self.inner_lr, self.inner_steps = model, float(inner_lr), int(inner_steps)
        self.loss_fn, self.task_batched = loss_fn, bool(task_batched)

    def forward(self, parameters, x):
        """The model's output for ``x`` with ``parameters`` (a dict of Tensors) in place of its own."""
        if self.task_batched:
            return task_batched_call(self.model, parameters, x)
        return functional_call(self.model, parameters, (x,))

    def initial_parameters(self, num_tasks=None):
        """The model's own trainable parameters by name (one broadcast copy per task when task-batched).

        Frozen parameters (``requires_grad=False``) are not adapted: the forward
        pass reads the model's own.
        """
        params = {k: p for k, p in self.model.named_parameters() if p.requires_grad}
        if self.task_batched:
            params = {k: p.expand((num_tasks,) + p.shape) for k, p in params.items()}
        return params

    def inner_update(self, parameters, gradients):
        """One step of gradient descent: :math:`\\phi - \\alpha g`."""
        return {k: p - self.inner_lr * g for (k, p), g in zip(parameters.items(), gradients)}

    def support_loss(self, parameters, x, y):
        loss = self.loss_fn(self.forward(parameters, x), y)
        # A mean over T tasks' points is 1/T of the sum of the per-task means; scaling by T
        # gives each task's parameters exactly its own task's gradient.
        return loss * x.shape[0] if self.task_batched else loss

    def adapt(self, x, y, steps=None, create_graph=False, parameters=None):
        """Adapted parameters after ``steps`` (default ``inner_steps``) steps on the support set ``(x, y)``.

        ``create_graph=True`` keeps the inner gradients differentiable (MAML's
        second-order meta-gradient); otherwise they are constants.
        """
        if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 0):
            raise ValueError(f"{type(self).__name__}.adapt: steps must be an integer >= 0, got {steps!r}")
        # Adapting needs gradients even where the caller only evaluates (inside no_grad).
        with autograd.enable_grad():
            params = parameters if parameters is not None else self.initial_parameters(x.shape[0])
            for _ in range(self.inner_steps if steps is None else steps):
                # retain_graph: the path from the initial parameters to the model's own
                # (the task broadcast) is used again by the outer loss.
                grads = autograd.grad(self.support_loss(params, x, y), list(params.values()),
                                      create_graph=create_graph, retain_graph=True)
                params = self.inner_update(params, grads)
        return params

    def adaptation_curve(self, batch, steps=10):
        """Query loss (mean over the batch's tasks) after 0, 1, ..., ``steps`` inner steps, as floats.

        ``batch`` has ``support_x, support_y, query_x, query_y`` with a leading
        task dimension (a :class:`~nnlite.meta.TaskBatch`).
        """
        per_task = self._per_task(batch)
        curve = []
        for support_x, support_y, query_x, query_y in per_task:
            params = {k: p.detach().requires_grad_() for k, p in self.initial_parameters(support_x.shape[0]).items()}
            losses = []
            for step in range(steps + 1):
                if step:
                    params = {k: p.detach().requires_grad_() for k, p in
                              self.adapt(support_x, support_y, steps=1, parameters=params).items()}
                with no_grad():
                    losses.append(float(self.loss_fn(self.forward(params, query_x), query_y).data))
            curve.append(losses)
        return [sum(c[i] for c in curve) / len(curve) for i in range(steps + 1)]

    def _per_task(self, batch):
        """The batch as one batched task, or as T single tasks when not task-batched."""
        sx, sy, qx, qy = batch[:4]
        if self.task_batched:
            return [(sx, sy, qx, qy)]
        return [(sx[t], sy[t], qx[t], qy[t]) for t in range(sx.shape[0])]


class MAML(InnerLoop):
    """Model-agnostic meta-learning: learn an initialisation that adapts in a few steps.

    ``meta_loss(batch)`` is the query loss after ``inner_steps`` steps on each
    task's support set, averaged over the tasks; ``backward()`` on it gives the
    model's parameters their meta-gradient (second order unless
    ``first_order``), and any optimizer (the paper: Adam) takes the meta-step.

    >>> import nnlite as nl
    >>> from nnlite.meta import MAML, SinusoidTasks, sinusoid_mlp
    >>> maml = MAML(sinusoid_mlp(), inner_lr=0.01, task_batched=True)
    >>> meta_opt = nl.optim.Adam(maml.parameters(), lr=1e-3)
    >>> loss = maml.meta_loss(SinusoidTasks(shots=10).sample(25))
    >>> meta_opt.zero_grad(); loss.backward(); meta_opt.step()
    """

    def __init__(self, model, inner_lr=0.01, inner_steps=1, first_order=False, loss_fn=F.mse_loss,
                 task_batched=False):
        super().__init__(model, inner_lr, inner_steps, loss_fn, task_batched)
        self.first_order = bool(first_order)

    def parameters(self):
        """What the meta-optimizer learns: the initialisation :math:`\\theta`."""
        return list(self.model.parameters())

    def meta_loss(self, batch):
        """Mean over the batch's tasks of the query loss after adapting on the support set."""
        losses = []
        for support_x, support_y, query_x, query_y in self._per_task(batch):
            fast = self.adapt(support_x, support_y, create_graph=not self.first_order)
            losses.append(self.loss_fn(self.forward(fast, query_x), query_y))
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        return total / len(losses)
