"""NumPy twins of the kernels in ``nnlite/_kernels/_optim.pyx``.

Optimizer updates on flat parameter buffers.

Each ``*_step`` function has the signature and results of the compiled kernel of
the same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
:func:`torch_lerp` is not a kernel: it is the one place where a twin rounds the
way torch does rather than as the plain formula would.
"""
import numpy as np

from .. import checks

# One call updates a whole flat buffer (an arena of many parameters) in place.
# Each function first checks its arguments (the helpers just below), then reads
# as the update rule in the optimizer's docstring: one line per equation, in
# torch.optim's single-tensor (foreach=False) order. In float64 the twins equal
# the compiled loops bit for bit.
#
# Scalars and dtypes. Hyperparameters become Python floats, and every derived
# scalar (1 - beta2, lr / bias_correction1, ...) is computed in double. NumPy
# (>= 2) rounds a Python float to the array's dtype where it meets the array,
# which is exactly what torch does with a Python scalar hyperparameter, so a
# float32 buffer is updated in float32 throughout. The one torch-parity trick
# that is not the plain formula is torch_lerp, below.

_WHAT = {"lr": "learning rate", "lr_decay": "lr_decay value", "eps": "epsilon value",
         "weight_decay": "weight_decay value", "momentum": "momentum value",
         "alpha": "alpha value", "beta1": "beta parameter at index 0",
         "beta2": "beta parameter at index 1"}


def _hyperparameters(kernel, **values):
    """Range-check each hyperparameter (in the order given); return them as Python floats."""
    out = []
    for name, value in values.items():
        ok = 0 <= value < 1 if name.startswith("beta") else value >= 0
        if not ok:
            raise ValueError(f"{kernel}: invalid {_WHAT[name]}: {value!r}")
        out.append(float(value))
    return out


def _optim_buffers(kernel, grad, **updated):
    """Check the in-place buffers and ``grad``; returns ``grad`` as a contiguous array."""
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
    return np.ascontiguousarray(grad)


def _optim_step_count(kernel, step):
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"{kernel}: step must be an int >= 1 (the count after incrementing), "
                         f"got {step!r}")
    return int(step)


# --------------------------------------------------------------------------
# TORCH-PARITY ROUNDING. Not part of any algorithm; here only so the twins,
# the compiled kernels and torch.optim agree to the last bit.
# --------------------------------------------------------------------------
def torch_lerp(start, end, weight):
    """``start + weight * (end - start)``, rounded the way ``torch.lerp`` rounds it.

    Mathematically this is the running average ``(1 - weight) * start + weight * end``
    (Adam's first moment, centred RMSprop's mean gradient). torch evaluates it
    from whichever end ``weight`` is closer to, with ``weight`` and ``1 - weight``
    rounded to the buffers' dtype, so the result is exact at ``weight = 0`` and
    ``weight = 1``. The plain formula differs from it in the last bit.
    """
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (start.dtype.type(1) - w)


# --------------------------------------------------------------------------
# The update rules.
# --------------------------------------------------------------------------
def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov,
             weight_decay, maximize, first_step):
    """SGD with optional momentum (heavy-ball or Nesterov) and L2 weight decay, in place.

    The rule of :class:`nnlite.optim.SGD`. ``momentum_buffer`` is None when
    momentum == 0 (and ignored if given then).
    """
    kernel = "sgd_step"
    use_momentum = momentum != 0
    grad = _optim_buffers(kernel, grad, param=param,
                          momentum_buffer=momentum_buffer if use_momentum else None)
    lr, momentum, weight_decay = _hyperparameters(kernel, lr=lr, momentum=momentum,
                                                  weight_decay=weight_decay)
    dampening = float(dampening)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{kernel}: Nesterov momentum requires a momentum and zero dampening "
                         f"(got momentum={momentum!r}, dampening={dampening!r})")
    if use_momentum and momentum_buffer is None:
        raise ValueError(f"{kernel}: momentum={momentum!r} needs a momentum_buffer")

    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param                           # g += λ θ
    if use_momentum:
        b = momentum_buffer
        if first_step:
            b[...] = g                                         # b_1 = g_1
        else:
            b[...] = b * momentum + (1 - dampening) * g        # b = μ b + (1 - τ) g
        g = g + momentum * b if nesterov else b
    param[...] = param - lr * g                                # θ -= γ g


def adagrad_step(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad: accumulate squared gradients, divide the step by their root, in place.

    The rule of :class:`nnlite.optim.Adagrad`.
    """
    kernel = "adagrad_step"
    grad = _optim_buffers(kernel, grad, param=param, state_sum=state_sum)
    if state_sum is None:
        raise ValueError(f"{kernel}: state_sum is required")
    step = _optim_step_count(kernel, step)
    lr, lr_decay, weight_decay, eps = _hyperparameters(
        kernel, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)

    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g + weight_decay * param                           # g += λ θ
    clr = lr / (1 + (step - 1) * lr_decay)                     # decayed learning rate
    state_sum[...] = state_sum + g * g                         # s += g²
    param[...] = param - clr * g / (np.sqrt(state_sum) + eps)  # θ -= γ̃ g / (√s + ε)


def rmsprop_step(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                 weight_decay, momentum, centered, maximize):
    """RMSprop: divide by a running root-mean-square of gradients (optionally centred), in place.

    The rule of :class:`nnlite.optim.RMSprop`.
    """
    kernel = "rmsprop_step"
    use_momentum = momentum > 0
    grad = _optim_buffers(kernel, grad, param=param, square_avg=square_avg,
                          grad_avg=grad_avg if centered else None,
                          momentum_buffer=momentum_buffer if use_momentum else None)
    if square_avg is None:
        raise ValueError(f"{kernel}: square_avg is required")
    lr, eps, momentum, weight_decay, alpha = _hyperparameters(
        kernel, lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
    if centered and grad_avg is None:
        raise ValueError(f"{kernel}: centered=True needs a grad_avg buffer")
    if use_momentum and momentum_buffer is None:
        raise ValueError(f"{kernel}: momentum={momentum!r} needs a momentum_buffer")

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
    if use_momentum:
        b = momentum_buffer
        b[...] = b * momentum + g / avg                        # b = μ b + g / avg
        param[...] = param - lr * b                            # θ -= γ b
    else:
        param[...] = param - lr * g / avg                      # θ -= γ g / avg


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, amsgrad, maximize):
    """Adam (L2 decay added to the gradient) or AdamW (decoupled decay), in place.

    The rule of :class:`nnlite.optim.Adam` and :class:`nnlite.optim.AdamW`:
    ``m = β1 m + (1 - β1) g``; ``v = β2 v + (1 - β2) g²``;
    ``θ -= lr / (1 - β1**step) * m / (sqrt(v) / sqrt(1 - β2**step) + eps)``.
    """
    kernel = "adam_step"
    grad = _optim_buffers(kernel, grad, param=param, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
                          max_exp_avg_sq=max_exp_avg_sq if amsgrad else None)
    if exp_avg is None or exp_avg_sq is None:
        raise ValueError(f"{kernel}: exp_avg and exp_avg_sq are required")
    step = _optim_step_count(kernel, step)
    lr, eps, beta1, beta2, weight_decay = _hyperparameters(
        kernel, lr=lr, eps=eps, beta1=beta1, beta2=beta2, weight_decay=weight_decay)
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError(f"{kernel}: amsgrad=True needs a max_exp_avg_sq buffer")

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


__all__ = sorted(n for n, v in list(globals().items())
                 if callable(v) and getattr(v, "__module__", None) == __name__ and not n.startswith("_"))
