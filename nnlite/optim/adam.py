"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""
import numpy as np

from .._kernels import K
from ..tensor import Tensor
from ._torch_rounding import torch_lerp
from .optimizer import Optimizer, implementation_flags, number, tensor_hyperparameter

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam: per-coordinate steps scaled by running moments of the gradient.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`:

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{(L2 weight decay } \lambda\text{)} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{if amsgrad, else } v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015);
    amsgrad: Reddi et al., "On the Convergence of Adam and Beyond" (ICLR 2018).
    With ``weight_decay`` the decay term enters the gradient, so it is divided
    by :math:`\sqrt{\hat v_t}` like everything else (coordinates with large
    gradients are barely decayed); ``decoupled_weight_decay=True`` is AdamW.

    :meth:`update`, just below, is the rule above line by line in plain NumPy.
    :meth:`step` hands every parameter of a group to one fused kernel,
    ``K.adam_step``, which is tested equal to :meth:`update`; on the reference
    backend ``K.adam_step`` checks its arguments and then runs :meth:`update`.
    (:math:`m_t` is computed with ``torch_lerp``, the same average rounded as
    ``torch.lerp`` rounds it.)

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.tensor([1.0, -2.0]))
    >>> opt = nl.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> [round(v, 4) for v in w.data.tolist()]   # the first step is lr * sign(g)
    [0.9, -1.9]
    """

    @staticmethod
    def update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2, eps,
               weight_decay, decoupled_weight_decay, amsgrad, maximize):
        """The update rule on flat NumPy buffers, in place: one line per equation above.

        ``param``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq`` with
        amsgrad) are updated; ``step`` is the count after incrementing. The
        hyperparameters are Python floats: NumPy rounds each to the buffers'
        dtype where it meets them, as torch does, so a float32 buffer is
        updated in float32. No argument checks here; ``K.adam_step`` makes them.
        """
        g = -grad if maximize else grad
        if weight_decay != 0:
            if decoupled_weight_decay:
                param[...] = param * (1 - lr * weight_decay)       # AdamW: θ *= 1 - γ λ
            else:
                g = g + weight_decay * param                       # Adam: g += λ θ
        m, v = exp_avg, exp_avg_sq
        m[...] = torch_lerp(m, g, 1 - beta1)                       # m = β1 m + (1 - β1) g
        v[...] = v * beta2 + (1 - beta2) * g * g                   # v = β2 v + (1 - β2) g²
        if amsgrad:
            np.maximum(max_exp_avg_sq, v, out=max_exp_avg_sq)      # v̂ = max(v̂, v)
            v = max_exp_avg_sq
        step_size = lr / (1 - beta1 ** step)                       # γ / (1 - β1^t)
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5         # √(1 - β2^t)
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
        param[...] = param - step_size * m / denom                 # θ -= step_size m / denom

    _filled_when_missing = dict(amsgrad=False, maximize=False, foreach=None, capturable=False,
                                differentiable=False, decoupled_weight_decay=False, fused=None)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        tensor_hyperparameter("lr", lr)
        tensor_hyperparameter("betas[0]", betas[0])
        tensor_hyperparameter("betas[1]", betas[1])
        # written `not 0.0 <= x`, as in PyTorch, so that NaN is refused too
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not (all(isinstance(b, float) for b in betas[:2])
                or all(isinstance(b, Tensor) for b in betas[:2])):
            raise ValueError("betas must be either both floats or both Tensors, got "
                             f"({type(betas[0]).__name__}, {type(betas[1]).__name__})")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        **implementation_flags(foreach, differentiable, capturable=capturable,
                                               fused=fused),
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _state_names(self, group):
        names = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if group["amsgrad"]:
            names["max_exp_avg_sq"] = 0.0
        return names

    def step(self, closure=None):
        """One update of every parameter that has a gradient: one kernel call per arena buffer."""
        loss = self._closure_loss(closure)
        for group, span in self._spans():
            beta1, beta2 = (number(beta) for beta in group["betas"])
            K.adam_step(span.param, span.grad, span.state("exp_avg"), span.state("exp_avg_sq"),
                        span.state("max_exp_avg_sq") if group["amsgrad"] else None,
                        span.step, lr=number(group["lr"]), beta1=beta1, beta2=beta2,
                        eps=group["eps"],
                        weight_decay=group["weight_decay"],
                        decoupled_weight_decay=group["decoupled_weight_decay"],
                        amsgrad=group["amsgrad"], maximize=group["maximize"])
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (AdamW).

    The same moments as :class:`Adam`, but the decay shrinks the weights
    directly, before the adaptive step, instead of entering the gradient:

    .. math::

        \theta_{t-1} &\leftarrow (1 - \gamma \lambda)\, \theta_{t-1} \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    so every coordinate decays at the same rate :math:`\gamma\lambda`, whatever
    its gradient scale. Loshchilov & Hutter, "Decoupled Weight Decay
    Regularization" (ICLR 2019). Default ``weight_decay=1e-2`` as in PyTorch.
    The kernel and the rule are Adam's (``K.adam_step`` and :meth:`Adam.update`
    with ``decoupled_weight_decay=True``).
    """

    _filled_when_missing = dict(Adam._filled_when_missing, decoupled_weight_decay=True)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
