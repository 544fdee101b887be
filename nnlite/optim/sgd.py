"""Stochastic gradient descent, with momentum (heavy-ball or Nesterov) and weight decay."""
from .._kernels import K
from .optimizer import Optimizer, implementation_flags, number, tensor_hyperparameter

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum).

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`:

    .. math::

        g_t &\leftarrow -g_t \quad \text{if maximize} \\
        g_t &\leftarrow g_t + \lambda \theta_{t-1} \quad \text{(weight\_decay } \lambda\text{)} \\
        b_t &= \begin{cases} g_t & t = 1 \\ \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases}
            \quad \text{(momentum } \mu\text{, dampening } \tau\text{)} \\
        g_t &\leftarrow g_t + \mu b_t \ \text{if nesterov, else } b_t \\
        \theta_t &= \theta_{t-1} - \gamma g_t

    Momentum: Polyak, "Some methods of speeding up the convergence of iteration
    methods" (1964); Nesterov form as in Sutskever et al., "On the importance of
    initialization and momentum in deep learning" (ICML 2013). Like PyTorch,
    :math:`\gamma` multiplies the momentum buffer (not the gradient inside it).

    :meth:`update`, just below, is the rule above line by line in plain NumPy.
    :meth:`step` hands every parameter of a group to one fused kernel,
    ``K.sgd_step``, which is tested equal to :meth:`update`; on the reference
    backend ``K.sgd_step`` checks its arguments and then runs :meth:`update`.

    >>> import nnlite as nl
    >>> w = nl.nn.Parameter(nl.tensor([1.0, -2.0]))
    >>> opt = nl.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data.tolist()
    [0.800000011920929, -1.600000023841858]
    """

    @staticmethod
    def update(param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov,
               weight_decay, maximize, first_step):
        """The update rule on flat NumPy buffers, in place: one line per equation above.

        ``param`` (and ``momentum_buffer`` when momentum != 0; None otherwise)
        are updated; ``first_step`` is :math:`t = 1`. The hyperparameters are
        Python floats: NumPy rounds each to the buffers' dtype where it meets
        them, as torch does. No argument checks here; ``K.sgd_step`` makes them.
        """
        g = -grad if maximize else grad
        if weight_decay != 0:
            g = g + weight_decay * param                           # g += λ θ
        if momentum != 0:
            b = momentum_buffer
            if first_step:
                b[...] = g                                         # b_1 = g_1
            else:
                b[...] = b * momentum + (1 - dampening) * g        # b = μ b + (1 - τ) g
            g = g + momentum * b if nesterov else b
        param[...] = param - lr * g                                # θ -= γ g

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        tensor_hyperparameter("lr", lr)
        tensor_hyperparameter("weight_decay", weight_decay)
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize,
                        **implementation_flags(foreach, differentiable, fused=fused))
        super().__init__(params, defaults)

    _saves_step = False
    _filled_when_missing = dict(nesterov=False, maximize=False, foreach=None, differentiable=False, fused=False)

    def _state_names(self, group):
        return {"momentum_buffer": 0.0} if group["momentum"] != 0 else {}

    def step(self, closure=None):
        """One update of every parameter that has a gradient: one kernel call per arena buffer."""
        loss = self._closure_loss(closure)
        for group, span in self._spans():
            momentum = group["momentum"]
            K.sgd_step(span.param, span.grad,
                       span.state("momentum_buffer") if momentum != 0 else None,
                       lr=number(group["lr"]), momentum=momentum, dampening=group["dampening"],
                       nesterov=group["nesterov"], weight_decay=number(group["weight_decay"]),
                       maximize=group["maximize"], first_step=span.step == 1)
        return loss
