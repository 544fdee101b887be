"""RMSprop: divide each step by a running root-mean-square of the gradient."""
import numpy as np

from .._kernels import K
from ._torch_rounding import torch_lerp
from .optimizer import Optimizer, implementation_flags, number, tensor_hyperparameter

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, optionally centred and with momentum.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`:

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{(weight\_decay } \lambda\text{)} \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \tilde v_t &= v_t - \bar g_t^2, \quad \bar g_t = \alpha \bar g_{t-1} + (1 - \alpha) g_t
            \quad \text{if centered, else } \tilde v_t = v_t \\
        b_t &= \mu b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon)
            \quad \text{(momentum } \mu > 0\text{)} \\
        \theta_t &= \theta_{t-1} - \gamma b_t
            \quad \text{(without momentum: } \theta_{t-1} - \gamma g_t / (\sqrt{\tilde v_t} + \epsilon))

    Hinton, Srivastava & Swersky, "Neural Networks for Machine Learning",
    lecture 6e (2012); the centred form from Graves, "Generating Sequences With
    Recurrent Neural Networks" (2013).

    :meth:`update`, just below, is the rule above line by line in plain NumPy.
    :meth:`step` hands every parameter of a group to one fused kernel,
    ``K.rmsprop_step``, which is tested equal to :meth:`update`; on the
    reference backend ``K.rmsprop_step`` checks its arguments and then runs
    :meth:`update`. (:math:`\bar g_t` is computed with ``torch_lerp``, the
    same average rounded as ``torch.lerp`` rounds it.)
    """

    @staticmethod
    def update(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps,
               weight_decay, momentum, centered, maximize):
        r"""The update rule on flat NumPy buffers, in place: one line per equation above.

        ``param`` and ``square_avg`` (:math:`v`) are updated, and ``grad_avg``
        (:math:`\bar g`) if centered and ``momentum_buffer`` if momentum > 0
        (None otherwise). The hyperparameters are Python floats: NumPy rounds
        each to the buffers' dtype where it meets them, as torch does. No
        argument checks here; ``K.rmsprop_step`` makes them.
        """
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * param                           # g += λ θ
        v = square_avg
        v[...] = v * alpha + (1 - alpha) * g * g                   # v = α v + (1 - α) g²
        if centered:
            grad_avg[...] = torch_lerp(grad_avg, g, 1 - alpha)     # ḡ = α ḡ + (1 - α) g
            avg = np.sqrt(v - grad_avg * grad_avg) + eps           # √(v - ḡ²) + ε
        else:
            avg = np.sqrt(v) + eps                                 # √v + ε
        if momentum > 0:
            b = momentum_buffer
            b[...] = b * momentum + g / avg                        # b = μ b + g / avg
            param[...] = param - lr * b                            # θ -= γ b
        else:
            param[...] = param - lr * g / avg                      # θ -= γ g / avg

    _filled_when_missing = dict(momentum=0, centered=False, foreach=None, maximize=False, differentiable=False,
                                capturable=False)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        tensor_hyperparameter("lr", lr)
        # written `not 0.0 <= x`, as in PyTorch, so that NaN is refused too
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, maximize=maximize,
                        **implementation_flags(foreach, differentiable, capturable=capturable))
        super().__init__(params, defaults)

    def _state_names(self, group):
        names = {"square_avg": 0.0}
        if group["momentum"] > 0:
            names["momentum_buffer"] = 0.0
        if group["centered"]:
            names["grad_avg"] = 0.0
        return names

    def step(self, closure=None):
        """One update of every parameter that has a gradient: one kernel call per arena buffer."""
        loss = self._closure_loss(closure)
        for group, span in self._spans():
            momentum, centered = group["momentum"], group["centered"]
            K.rmsprop_step(span.param, span.grad, span.state("square_avg"),
                           span.state("grad_avg") if centered else None,
                           span.state("momentum_buffer") if momentum > 0 else None,
                           lr=number(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                           weight_decay=group["weight_decay"], momentum=momentum,
                           centered=centered, maximize=group["maximize"])
        return loss
