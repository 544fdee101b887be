"""NumPy twins of the kernels in ``nnlite/_kernels/_optim.pyx``.

Optimizer updates on flat parameter buffers.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks

# One call updates a whole flat buffer (an arena of many parameters) in place.
# Each line is one torch.optim single-tensor (foreach=False) operation, in
# torch's order, with every hyperparameter first rounded to the buffer's dtype
# (as torch does): in float64 these twins equal the compiled loops bit for bit.

def _optim_buffers(kernel, grad, **updated):
    """Check the in-place buffers and ``grad``; returns (grad as contiguous, scalar type)."""
    first = None
    for name, a in list(updated.items()) + [("grad", grad)]:
        if a is None and name not in ("param", "grad"):
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype not in (np.float32, np.float64):
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
    return np.ascontiguousarray(grad), first[1].dtype.type


def _optim_check(kernel, condition, what, value):
    if not condition:
        raise ValueError(f"{kernel}: invalid {what}: {value!r}")


def _optim_step_count(kernel, step):
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"{kernel}: step must be an int >= 1 (the count after incrementing), "
                         f"got {step!r}")
    return int(step)


def _lerp(start, end, weight, s):
    """torch.lerp's scalar rule: stable from whichever end ``weight`` is closer to."""
    w = s(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (s(1) - w)


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov,
             weight_decay, maximize, first_step):
    """SGD with optional momentum (heavy-ball or Nesterov) and L2 weight decay, in place.

    ``momentum_buffer`` is None when momentum == 0 (and ignored if given then).
    """
    kernel = "sgd_step"
    use_momentum = momentum != 0
    grad, s = _optim_buffers(kernel, grad, param=param,
                             momentum_buffer=momentum_buffer if use_momentum else None)
    _optim_check(kernel, lr >= 0, "learning rate", lr)
    _optim_check(kernel, momentum >= 0, "momentum value", momentum)
    _optim_check(kernel, weight_decay >= 0, "weight_decay value", weight_decay)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{kernel}: Nesterov momentum requires a momentum and zero dampening "
                         f"(got momentum={momentum!r}, dampening={dampening!r})")
    if use_momentum and momentum_buffer is None:
        raise ValueError(f"{kernel}: momentum={momentum!r} needs a momentum_buffer")
    d_p = -grad if maximize else grad
    if weight_decay != 0:
        d_p = d_p + s(weight_decay) * param
    if use_momentum:
        buf = momentum_buffer
        if first_step:
            buf[...] = d_p
        else:
            buf[...] = buf * s(momentum) + s(1 - dampening) * d_p
        d_p = d_p + s(momentum) * buf if nesterov else buf
    param[...] = param + s(-lr) * d_p


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad: accumulate squared gradients, divide the step by their root, in place."""
    kernel = "adagrad_step"
    grad, s = _optim_buffers(kernel, grad, param=param, state_sum=state_sum)
    if state_sum is None:
        raise ValueError(f"{kernel}: state_sum is required")
    step = _optim_step_count(kernel, step)
    _optim_check(kernel, lr >= 0, "learning rate", lr)
    _optim_check(kernel, lr_decay >= 0, "lr_decay value", lr_decay)
    _optim_check(kernel, weight_decay >= 0, "weight_decay value", weight_decay)
    _optim_check(kernel, eps >= 0, "epsilon value", eps)
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + s(weight_decay) * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum[...] = state_sum + g * g
    std = np.sqrt(state_sum) + s(eps)
    param[...] = param + s(-clr) * g / std


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    """RMSprop: divide by a running root-mean-square of gradients (optionally centred), in place."""
    kernel = "rmsprop_step"
    use_momentum = momentum > 0
    grad, s = _optim_buffers(kernel, grad, param=param, square_avg=square_avg,
                             grad_avg=grad_avg if centered else None,
                             momentum_buffer=momentum_buffer if use_momentum else None)
    if square_avg is None:
        raise ValueError(f"{kernel}: square_avg is required")
    _optim_check(kernel, lr >= 0, "learning rate", lr)
    _optim_check(kernel, eps >= 0, "epsilon value", eps)
    _optim_check(kernel, momentum >= 0, "momentum value", momentum)
    _optim_check(kernel, weight_decay >= 0, "weight_decay value", weight_decay)
    _optim_check(kernel, alpha >= 0, "alpha value", alpha)
    if centered and grad_avg is None:
        raise ValueError(f"{kernel}: centered=True needs a grad_avg buffer")
    if use_momentum and momentum_buffer is None:
        raise ValueError(f"{kernel}: momentum={momentum!r} needs a momentum_buffer")
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + s(weight_decay) * param
    square_avg[...] = square_avg * s(alpha) + s(1 - alpha) * g * g
    if centered:
        grad_avg[...] = _lerp(grad_avg, g, 1 - alpha, s)
        avg = np.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg = avg + s(eps)
    if use_momentum:
        momentum_buffer[...] = momentum_buffer * s(momentum) + g / avg
        param[...] = param + s(-lr) * momentum_buffer
    else:
        param[...] = param + s(-lr) * g / avg


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, amsgrad, maximize):
    """Adam (L2 decay added to the gradient) or AdamW (decoupled decay), in place.

    ``m = lerp(m, g, 1 - beta1)``; ``v = beta2 v + (1 - beta2) g²``;
    ``param -= lr / (1 - beta1**step) * m / (sqrt(v) / sqrt(1 - beta2**step) + eps)``.
    """
    kernel = "adam_step"
    grad, s = _optim_buffers(kernel, grad, param=param, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                             max_exp_avg_sq=max_exp_avg_sq if amsgrad else None)
    if exp_avg is None or exp_avg_sq is None:
        raise ValueError(f"{kernel}: exp_avg and exp_avg_sq are required")
    step = _optim_step_count(kernel, step)
    _optim_check(kernel, lr >= 0, "learning rate", lr)
    _optim_check(kernel, eps >= 0, "epsilon value", eps)
    _optim_check(kernel, 0 <= beta1 < 1, "beta parameter at index 0", beta1)
    _optim_check(kernel, 0 <= beta2 < 1, "beta parameter at index 1", beta2)
    _optim_check(kernel, weight_decay >= 0, "weight_decay value", weight_decay)
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError(f"{kernel}: amsgrad=True needs a max_exp_avg_sq buffer")
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param[...] = param * s(1 - lr * weight_decay)
        else:
            g = g + s(weight_decay) * param
    exp_avg[...] = _lerp(exp_avg, g, 1 - beta1, s)
    exp_avg_sq[...] = exp_avg_sq * s(beta2) + s(1 - beta2) * g * g
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq) / s(bias_correction2_sqrt) + s(eps)
    else:
        denom = np.sqrt(exp_avg_sq) / s(bias_correction2_sqrt) + s(eps)
    param[...] = param + s(-step_size) * exp_avg / denom


__all__ = sorted(n for n, v in list(globals().items())
                 if callable(v) and getattr(v, "__module__", None) == __name__ and not n.startswith("_"))
