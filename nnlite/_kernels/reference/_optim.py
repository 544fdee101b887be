"""NumPy twins of the kernels in ``nnlite/_kernels/_optim.pyx``.

Optimizer updates on flat parameter buffers.

Each ``*_step`` function has the signature and results of the compiled kernel of
the same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
A twin here is only the argument checks: after them it runs the update rule
that the optimizer's class holds (``sgd_step`` runs :meth:`nnlite.optim.SGD.update`,
``adagrad_step`` :meth:`nnlite.optim.Adagrad.update`, ``rmsprop_step``
:meth:`nnlite.optim.RMSprop.update`, ``adam_step`` :meth:`nnlite.optim.Adam.update`).

The one upward reference in ``_kernels``. Lower layers do not import higher
ones, and nothing in ``_kernels`` imports :mod:`nnlite.optim` when it loads.
Each twin below imports its optimizer class inside the function, at call time,
so that the rule a student steps through sits in the optimizer's own file,
right under the equations of its docstring, and exists once: the fused kernel
is tested equal to exactly that rule, and the reference backend runs exactly it.
"""
import numpy as np

from .. import checks

__all__ = ["adagrad_step", "adam_step", "rmsprop_step", "sgd_step"]

# One call updates a whole flat buffer (an arena of many parameters) in place.
# In float64 the rules equal the compiled loops bit for bit.
#
# Scalars and dtypes. The checks below (checks.hyperparameter, shared with the
# compiled kernels) turn every hyperparameter into a Python float, so every derived
# scalar in a rule (1 - beta2, lr / bias_correction1, ...) is computed in double.
# NumPy (>= 2) rounds a Python float to the array's dtype where it meets the array,
# which is exactly what torch does with a Python scalar hyperparameter, so a float32
# buffer is updated in float32 throughout. The flags become bools (checks.flag).


def _hyperparameters(kernel, **values):
    """Check each hyperparameter (in the order given); return them as Python floats."""
    return [checks.hyperparameter(kernel, name, value) for name, value in values.items()]


def _optim_buffers(kernel, grad, **updated):
    """Check the in-place buffers and ``grad``; returns ``grad`` as a contiguous array."""
    first = None
    for name, a in list(updated.items()) + [("grad", grad)]:
        if a is None and name not in ("param", "grad"):
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):   # a '>f4' is float32, swapped
            raise TypeError(f"{kernel}: {name} must be float32 or float64, got {a.dtype}")
        checks.native(kernel, name, a)
        if a.ndim != 1:
            raise ValueError(f"{kernel}: {name} must be a flat 1-D buffer, got shape {a.shape}")
        if first is None:
            first = (name, a)
            continue
        if a.dtype != first[1].dtype:
            raise TypeError(f"{kernel}: all buffers must share one dtype; "
                            f"{first[0]} is {first[1].dtype} but {name} is {a.dtype}")
        if a.shape != first[1].shape:
            raise ValueError(f"{kernel}: {name} has {a.shape[0]} elements but "
                             f"{first[0]} has {first[1].shape[0]}")
    for name, a in updated.items():
        if a is not None:
            checks.in_place(kernel, name, a)
    checks.separate(kernel, list(updated.items()) + [("grad", grad)])
    return np.ascontiguousarray(grad)


def _optim_step_count(kernel, step):
    return checks.integer(kernel, "step", step, 1, what=checks.STEP)


# --------------------------------------------------------------------------
# The twins: checks, then the optimizer class's rule.
# --------------------------------------------------------------------------
def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov,
             weight_decay, maximize, first_step):
    """SGD with optional momentum (heavy-ball or Nesterov) and L2 weight decay, in place.

    Checks the arguments, then runs :meth:`nnlite.optim.SGD.update`.
    ``momentum_buffer`` is None when momentum == 0 (and ignored if given then).
    """
    kernel = "sgd_step"
    momentum = checks.hyperparameter(kernel, "momentum", momentum)   # it decides which buffers are read
    use_momentum = momentum != 0
    grad = _optim_buffers(kernel, grad, param=param,
                          momentum_buffer=momentum_buffer if use_momentum else None)
    lr, weight_decay = _hyperparameters(kernel, lr=lr, weight_decay=weight_decay)
    dampening = checks.real_number(kernel, "dampening", dampening)
    nesterov, maximize, first_step = (checks.flag(kernel, "nesterov", nesterov),
                                      checks.flag(kernel, "maximize", maximize),
                                      checks.flag(kernel, "first_step", first_step))
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{kernel}: Nesterov momentum requires a momentum and zero dampening "
                         f"(got momentum={momentum!r}, dampening={dampening!r})")
    if use_momentum and momentum_buffer is None:
        raise ValueError(f"{kernel}: momentum={momentum!r} needs a momentum_buffer")

    from ...optim.sgd import SGD
    SGD.update(param, grad, momentum_buffer if use_momentum else None, lr=lr, momentum=momentum,
               dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
               maximize=maximize, first_step=first_step)


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad: accumulate squared gradients, divide the step by their root, in place.

    Checks the arguments, then runs :meth:`nnlite.optim.Adagrad.update`.
    """
    kernel = "adagrad_step"
    grad = _optim_buffers(kernel, grad, param=param, state_sum=state_sum)
    if state_sum is None:
        raise ValueError(f"{kernel}: state_sum is required")
    step = _optim_step_count(kernel, step)
    lr, lr_decay, weight_decay, eps = _hyperparameters(
        kernel, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)
    maximize = checks.flag(kernel, "maximize", maximize)

    from ...optim.adagrad import Adagrad
    Adagrad.update(param, grad, state_sum, step, lr=lr, lr_decay=lr_decay,
                   weight_decay=weight_decay, eps=eps, maximize=maximize)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    """RMSprop: divide by a running root-mean-square of gradients (optionally centred), in place.

    Checks the arguments, then runs :meth:`nnlite.optim.RMSprop.update`.
    """
    kernel = "rmsprop_step"
    momentum = checks.hyperparameter(kernel, "momentum", momentum)   # these two decide which
    centered = checks.flag(kernel, "centered", centered)             # buffers are read
    use_momentum = momentum > 0
    grad = _optim_buffers(kernel, grad, param=param, square_avg=square_avg,
                          grad_avg=grad_avg if centered else None,
                          momentum_buffer=momentum_buffer if use_momentum else None)
    if square_avg is None:
        raise ValueError(f"{kernel}: square_avg is required")
    lr, eps, weight_decay, alpha = _hyperparameters(
        kernel, lr=lr, eps=eps, weight_decay=weight_decay, alpha=alpha)
    maximize = checks.flag(kernel, "maximize", maximize)
    if centered and grad_avg is None:
        raise ValueError(f"{kernel}: centered=True needs a grad_avg buffer")
    if use_momentum and momentum_buffer is None:
        raise ValueError(f"{kernel}: momentum={momentum!r} needs a momentum_buffer")

    from ...optim.rmsprop import RMSprop
    RMSprop.update(param, grad, square_avg, grad_avg if centered else None,
                   momentum_buffer if use_momentum else None, lr=lr, alpha=alpha, eps=eps,
                   weight_decay=weight_decay, momentum=momentum, centered=centered,
                   maximize=maximize)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, amsgrad, maximize):
    """Adam (L2 decay added to the gradient) or AdamW (decoupled decay), in place.

    Checks the arguments, then runs :meth:`nnlite.optim.Adam.update`, the rule of
    :class:`nnlite.optim.Adam` and :class:`nnlite.optim.AdamW`.
    """
    kernel = "adam_step"
    amsgrad = checks.flag(kernel, "amsgrad", amsgrad)   # it decides which buffers are read
    grad = _optim_buffers(kernel, grad, param=param, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                          max_exp_avg_sq=max_exp_avg_sq if amsgrad else None)
    if exp_avg is None or exp_avg_sq is None:
        raise ValueError(f"{kernel}: exp_avg and exp_avg_sq are required")
    step = _optim_step_count(kernel, step)
    lr, eps, beta1, beta2, weight_decay = _hyperparameters(
        kernel, lr=lr, eps=eps, beta1=beta1, beta2=beta2, weight_decay=weight_decay)
    decoupled_weight_decay = checks.flag(kernel, "decoupled_weight_decay", decoupled_weight_decay)
    maximize = checks.flag(kernel, "maximize", maximize)
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError(f"{kernel}: amsgrad=True needs a max_exp_avg_sq buffer")

    from ...optim.adam import Adam
    Adam.update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None, step,
                lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay, amsgrad=amsgrad, maximize=maximize)
