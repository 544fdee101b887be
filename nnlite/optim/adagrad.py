"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""
import numpy as np

from .._kernels import K
from .optimizer import Optimizer, implementation_flags, number, tensor_hyperparameter

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad: coordinates that have seen large gradients take smaller steps.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`:

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{(weight\_decay } \lambda\text{)} \\
        \tilde\gamma_t &= \gamma / (1 + (t - 1)\,\eta) \quad \text{(lr\_decay } \eta\text{)} \\
        s_t &= s_{t-1} + g_t^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t\, \frac{g_t}{\sqrt{s_t} + \epsilon}

    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization" (JMLR 2011). As in PyTorch, the parameters given
    to the constructor have their ``sum`` from the start (those added later by
    ``add_param_group`` from their first step), and every ``sum`` starts at the
    constructor's ``initial_accumulator_value``: a param group's own value is
    kept in its dict but does not change where its accumulator starts.

    :meth:`update`, just below, is the rule above line by line in plain NumPy.
    :meth:`step` hands every parameter of a group to one fused kernel,
    ``K.adagrad_step``, which is tested equal to :meth:`update`; on the
    reference backend ``K.adagrad_step`` checks its arguments and then runs
    :meth:`update`.
    """
    _eager_state = True
    _filled_when_missing = dict(foreach=None, maximize=False, differentiable=False, fused=None)

    @staticmethod
    def update(param, grad, state_sum, step, *, lr, lr_decay, weight_decay, eps, maximize):
        """The update rule on flat NumPy buffers, in place: one line per equation above.

        ``param`` and ``state_sum`` (:math:`s`) are updated; ``step`` is the
        count after incrementing. The hyperparameters are Python floats: NumPy
        rounds each to the buffers' dtype where it meets them, as torch does.
        No argument checks here; ``K.adagrad_step`` makes them.
        """
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * param                           # g += λ θ
        clr = lr / (1 + (step - 1) * lr_decay)                     # γ̃ = γ / (1 + (t - 1) η)
        state_sum[...] = state_sum + g * g                         # s += g²
        param[...] = param - clr * g / (np.sqrt(state_sum) + eps)  # θ -= γ̃ g / (√s + ε)

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        tensor_hyperparameter("lr", lr)
        # written `not 0.0 <= x`, as in PyTorch, so that NaN is refused too
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize,
                        **implementation_flags(foreach, differentiable, fused=fused))
        super().__init__(params, defaults)

    def _state_names(self, group):
        return {"sum": self.defaults["initial_accumulator_value"]}

    def step(self, closure=None):
        """One update of every parameter that has a gradient: one kernel call per arena buffer."""
        loss = self._closure_loss(closure)
        for group, span in self._spans():
            K.adagrad_step(span.param, span.grad,
                           span.state("sum", self.defaults["initial_accumulator_value"]),
                           span.step,
                           lr=number(group["lr"]), lr_decay=group["lr_decay"],
                           weight_decay=group["weight_decay"], eps=group["eps"],
                           maximize=group["maximize"])
        return loss
