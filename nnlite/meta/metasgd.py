r"""Meta-SGD (Li, Zhou, Chen & Li 2017): learn the inner learning rate of every parameter too.

MAML adapts with one scalar step size :math:`\alpha`. Meta-SGD gives every
parameter entry its own, a tensor :math:`\boldsymbol\alpha` of the parameter's
shape, and learns it with the initialisation in the outer loop:

.. math::

    \phi = \theta - \boldsymbol\alpha \odot \nabla_\theta L^{s}(\theta),
    \qquad (\theta, \boldsymbol\alpha) \leftarrow (\theta, \boldsymbol\alpha)
    - \beta \nabla_{(\theta, \boldsymbol\alpha)} \tfrac1T\textstyle\sum_t L^{q}_t(\phi_t).

The learning rates are *meta-parameters*: learned, but parameters of the
learning procedure rather than of the model. They are Parameters of kind
``"meta"`` named ``inner_lr.<parameter name>``, so they can be inspected, saved
and counted like any other.
"""
from ..nn import functional as F
from ..parameter import Parameter
from ..nn import init
from ..ops import empty
from .maml import MAML

__all__ = ["MetaSGD"]


class MetaSGD(MAML):
    """MAML with a learned per-entry inner learning rate for every trainable parameter (initialised to ``inner_lr``).

    >>> import nnlite as nl
    >>> from nnlite.meta import MetaSGD
    >>> learner = MetaSGD(nl.nn.Linear(1, 1), inner_lr=0.01)
    >>> [(p.name, p.kind, p.shape) for p in learner.inner_lrs.values()]
    [('inner_lr.weight', 'meta', (1, 1)), ('inner_lr.bias', 'meta', (1,))]
    """

    def __init__(self, model, inner_lr=0.01, inner_steps=1, first_order=False, loss_fn=F.mse_loss,
                 task_batched=False):
        super().__init__(model, inner_lr, inner_steps, first_order, loss_fn, task_batched)
        self.inner_lrs = {}
        for name, p in model.named_parameters():
            if not p.requires_grad:   # a frozen parameter is not adapted, so it has no inner rate
                continue
            rate = Parameter(empty(p.shape, dtype=p.dtype), kind="meta", name=f"inner_lr.{name}")
            init.constant_(rate, inner_lr)
            self.inner_lrs[name] = rate

    def parameters(self):
        """The initialisation and the learning rates: both are meta-learned."""
        return super().parameters() + list(self.inner_lrs.values())

    def inner_update(self, parameters, gradients):
        return {k: p - self.inner_lrs[k] * g for (k, p), g in zip(parameters.items(), gradients)}
