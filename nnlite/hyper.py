"""Learned regularisation strengths: weight decay tuned by hypergradients.

A weight-decay strength is usually a hyperparameter: chosen before training,
by hand or by a search (:mod:`nnlite.tune`). It can instead be a *parameter*,
learned during training, if we can say how the loss we care about — the loss
on held-out data — changes when the strength changes. The training loss cannot
say it: on the training set a smaller penalty is always better.

Luketina, Berglund, Greff & Raiko (2016), "Scalable Gradient-Based Tuning of
Continuous Regularization Hyperparameters", look one training step ahead. With
the strength of layer ``l`` written ``lambda_l = exp(s_l)`` (so it stays
positive and moves by factors), one SGD step on the regularised training loss
gives the weights

.. math::

    w' = w - \\eta \\, \\nabla_w \\Big[ L_\\text{train}(w) + \\tfrac12 \\sum_l \\lambda_l \\|w_l\\|^2 \\Big],

and the validation loss after the step, :math:`L_\\text{val}(w')`, depends on
every :math:`s_l` through :math:`w'`. Its derivative, the *hypergradient*, is

.. math::

    \\frac{\\partial L_\\text{val}(w')}{\\partial s_l}
      = -\\eta \\, \\lambda_l \\, \\nabla_{w'_l} L_\\text{val}(w') \\cdot w_l ,

positive (raise no strength) when shrinking ``w_l`` would have hurt on held-out
data. nnlite computes it without the closed form: :func:`unrolled_step` builds
``w'`` with ``nl.grad(..., create_graph=True)``, so the step itself is part of
the graph, and :func:`hypergradient` differentiates the validation loss through
it — any differentiable penalty works the same way. :func:`hyper_step` then
applies the training step to the model and one optimizer step to the strengths:
the two alternate, one hypergradient per training step, at the cost of about
three forward/backward passes.

The strengths are the Parameter ``log_strength`` of :class:`LearnedWeightDecay`,
kind ``"regularization"``; they are saved in its ``state_dict`` like any other.
"""
import math

from . import ops
from ._kernels.checks import real_number
from .autograd import grad, no_grad
from .func import functional_call
from .nn import init
from .nn._checks import require_module
from .nn.module import Module
from .parameter import Parameter

__all__ = ["LearnedWeightDecay", "unrolled_step", "hypergradient", "hyper_step"]


def _default_groups(model):
    """One group per module that owns parameters of kind "weight" (biases and norm scales are not decayed)."""
    groups = {}
    for name, p in model.named_parameters():
        if p.kind == "weight":
            groups.setdefault(name.rpartition(".")[0] or "(top)", []).append(name)
    return groups


class LearnedWeightDecay(Module):
    """L2 penalties ``0.5 * lambda_g * sum ||w||^2`` over groups of a model's parameters, lambda learned.

    ``groups`` maps a group name to the names of the parameters it decays; by
    default there is one group per layer that owns weights (parameters of kind
    ``"weight"``; biases and normalisation scales are left undecayed, as is
    usual). The strengths are ``lambda = exp(log_strength)``, ``log_strength``
    a Parameter of shape ``(num_groups,)`` and kind ``"regularization"``,
    every entry starting at ``log(init)``.

    The module holds no reference to the model: :meth:`penalty` takes the
    parameters it should decay, the model's own or the unrolled ones.

    >>> import nnlite as nl
    >>> model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.ReLU(), nl.nn.Linear(4, 2))
    >>> decay = LearnedWeightDecay(model, init=1e-3)
    >>> decay.group_names, decay.log_strength.kind
    (('0', '2'), 'regularization')
    >>> round(float(decay.strengths.data[0]), 6)
    0.001
    """

    def __init__(self, model, init=1e-4, groups=None, dtype=None):
        super().__init__()
        if not 0 < real_number("LearnedWeightDecay", "init", init) < math.inf:
            raise ValueError(f"LearnedWeightDecay(init={init}): the strength must be a finite number > 0")
        require_module(model, "LearnedWeightDecay")
        if groups is not None:
            if not hasattr(groups, "items"):
                raise TypeError(f"LearnedWeightDecay: groups must map group names to lists of parameter names, "
                                f"got {type(groups).__name__}")
            for group, names in groups.items():
                if isinstance(names, str):   # list("0.weight") would be eight one-letter names
                    raise TypeError(f"LearnedWeightDecay: group {group!r} must map to a list of parameter "
                                    f"names, got the string {names!r}")
        groups = _default_groups(model) if groups is None else {str(k): list(v) for k, v in groups.items()}
        known = dict(model.named_parameters())
        for group, names in groups.items():
            if not names:
                raise ValueError(f"LearnedWeightDecay: group {group!r} names no parameters; "
                                 f"the model has {sorted(known)}")
            missing = [n for n in names if n not in known]
            if missing:
                raise ValueError(f"LearnedWeightDecay: group {group!r} names parameters {missing} "
                                 f"the model does not have; it has {sorted(known)}")
        decayed_by = {}   # a parameter named twice would be decayed twice, by two strengths or one
        for group, names in groups.items():
            for name in names:
                if name in decayed_by:
                    raise ValueError(f"LearnedWeightDecay: parameter {name!r} is named by group {group!r} and "
                                     f"already by group {decayed_by[name]!r}; each parameter belongs to one group")
                decayed_by[name] = group
        if not groups:
            raise ValueError("LearnedWeightDecay: the model has no parameters of kind 'weight' to decay")
        self.group_names = tuple(groups)
        self.parameter_names = tuple(tuple(names) for names in groups.values())
        self.log_strength = Parameter(ops.empty(len(groups), dtype=dtype), kind="regularization")
        self._init_value = float(init)
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.log_strength, math.log(self._init_value))

    @property
    def strengths(self):
        """lambda = exp(log_strength), one per group (differentiable)."""
        return ops.exp(self.log_strength)

    def penalty(self, parameters):
        """``0.5 * sum_g lambda_g * sum_{w in g} ||w||^2`` for ``parameters`` (a name -> Tensor dict, or the model)."""
        if isinstance(parameters, Module):
            parameters = dict(parameters.named_parameters())
        missing = [n for names in self.parameter_names for n in names if n not in parameters]
        if missing:
            raise ValueError(f"LearnedWeightDecay.penalty: the parameters hold no {missing}; expected the "
                             f"parameters of the model the decay was made for")
        strengths = self.strengths
        total = None
        for g, names in enumerate(self.parameter_names):
            squares = sum((parameters[n] * parameters[n]).sum() for n in names)
            term = 0.5 * strengths[g] * squares
            total = term if total is None else total + term
        return total

    def forward(self, parameters):
        return self.penalty(parameters)

    def extra_repr(self):
        values = ", ".join(f"{name}={float(v):.3g}" for name, v in zip(self.group_names, self.strengths.data))
        return f"strengths: {values}"


def _batch(batch, which):
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError(f"{which}: expected an (inputs, targets) pair, got {type(batch).__name__}")
    return batch


def unrolled_step(model, loss_fn, train_batch, weight_decay, lr):
    """One SGD step on the regularised training loss, kept in the graph.

    Returns ``(train_loss, new_parameters)``: ``new_parameters`` maps every
    trainable parameter name of ``model`` to ``w - lr * grad(L_train + penalty)``,
    a Tensor that still depends on ``weight_decay.log_strength`` (and on ``w``),
    so a loss computed with it (:func:`nnlite.func.functional_call`) can be
    differentiated with respect to the strengths. The model's parameters are not
    changed (a batch norm in training mode updates its running statistics, as
    in any training forward pass).
    """
    if not 0 < real_number("unrolled_step", "lr", lr) < math.inf:
        raise ValueError(f"unrolled_step: the inner learning rate lr must be a finite number > 0, got {lr!r}")
    if not isinstance(weight_decay, LearnedWeightDecay):
        raise TypeError(f"unrolled_step: expected weight_decay to be a LearnedWeightDecay, "
                        f"got {type(weight_decay).__name__}")
    inputs, targets = _batch(train_batch, "unrolled_step")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    train_loss = loss_fn(model(inputs), targets)
    objective = train_loss + weight_decay.penalty(model)   # frozen parameters add a constant
    grads = grad(objective, [p for _, p in named], create_graph=True, allow_unused=True)
    new = {n: p if g is None else p - lr * g for (n, p), g in zip(named, grads)}
    return train_loss, new


def hypergradient(model, loss_fn, train_batch, val_batch, weight_decay, lr):
    """The derivative of the validation loss after one training step with respect to ``log_strength``.

    Returns ``(val_loss, hypergrad)``: the validation loss at the unrolled
    weights (:func:`unrolled_step`) and its gradient with respect to
    ``weight_decay.log_strength``, a Tensor of shape ``(num_groups,)``.
    Nothing is changed or accumulated, the buffers (running statistics) included.
    """
    from .analysis._batches import buffers_kept
    with buffers_kept(model):
        _, _, val_loss, g = _through_the_step(model, loss_fn, train_batch, val_batch, weight_decay, lr,
                                              "hypergradient")
    return val_loss.detach(), g


def _through_the_step(model, loss_fn, train_batch, val_batch, weight_decay, lr, caller):
    """``(train_loss, new_parameters, val_loss, hypergrad)``: the unrolled step and L_val(w')'s gradient."""
    train_loss, new = unrolled_step(model, loss_fn, train_batch, weight_decay, lr)
    val_inputs, val_targets = _batch(val_batch, caller)
    val_loss = loss_fn(functional_call(model, new, (val_inputs,)), val_targets)
    (g,) = grad(val_loss, [weight_decay.log_strength], allow_unused=True)
    if g is None:   # no decayed weight reaches the validation loss
        g = ops.zeros_like(weight_decay.log_strength)
    return train_loss, new, val_loss, g


def hyper_step(model, loss_fn, train_batch, val_batch, weight_decay, *, lr, hyper_optimizer):
    """One training step of ``model`` and one step of the strengths (Luketina et al.'s T1-T2).

    1. ``w' = w - lr * grad(L_train(w) + penalty(w))`` is built in the graph;
    2. the hypergradient of ``L_val(w')`` is written to ``log_strength.grad``
       and ``hyper_optimizer`` (an optimizer over ``weight_decay.parameters()``)
       takes its step;
    3. the model's parameters take the values ``w'`` (the step made with the
       strengths from before this update).

    Returns ``{"train_loss": float, "val_loss": float}`` (the validation loss
    measured at ``w'``). Both forward passes run in the model's current mode:
    a batch norm in training mode normalises the validation batch with its own
    statistics and updates its running statistics twice per step.
    """
    from .optim.optimizer import Optimizer
    if not isinstance(hyper_optimizer, Optimizer):
        raise TypeError(f"hyper_step: expected hyper_optimizer to be an nl.optim.Optimizer over the strengths, "
                        f"got {type(hyper_optimizer).__name__}")
    train_loss, new, val_loss, g = _through_the_step(model, loss_fn, train_batch, val_batch, weight_decay, lr,
                                                     "hyper_step")
    hyper_optimizer.zero_grad()
    weight_decay.log_strength.grad = g.detach()
    hyper_optimizer.step()
    with no_grad():
        for name, p in model.named_parameters():
            if name in new and new[name] is not p:
                p.copy_(new[name].detach())
    return {"train_loss": float(train_loss.data), "val_loss": float(val_loss.data)}
