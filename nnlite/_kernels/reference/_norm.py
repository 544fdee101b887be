"""NumPy twins of the kernels in ``nnlite/_kernels/_norm.pyx``.

Batch, layer, group and RMS normalisation.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks

__all__ = ["batch_norm_backward", "batch_norm_forward", "group_norm_backward", "group_norm_forward",
           "layer_norm_backward", "layer_norm_forward", "rms_norm_backward", "rms_norm_forward"]

# Statistics are taken in float64 even for float32 input (as the compiled kernels
# do), then mean/rstd are returned in the input's dtype. Equal to the compiled
# kernels to rounding, not bitwise: NumPy sums pairwise, the kernels in blocks.

def _norm_dtype(kernel, **operands):
    """The shared float dtype of ``operands``, or a clear error: only the affine parameters
    and the running statistics may be None (checks.NORM_OPTIONAL)."""
    checks.norm_required(kernel, operands.items())
    return checks.float_dtype(kernel, operands.items())


def _norm_shape(kernel, name, a, shape):
    if a is not None and a.shape != shape:
        raise ValueError(f"{kernel}: {name} must have shape {shape}, got {a.shape}")


def _norm_ndim(kernel, name, a, ndim, layout):
    if a.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D {layout}, got shape {a.shape}")


def _norm_eps(kernel, eps):
    """eps as a float: a real number >= 0, not a bool, not NaN (checks.quantity)."""
    return checks.quantity(kernel, "eps", eps)


def _norm_in_place(kernel, name, a):
    if not (a.flags.c_contiguous and a.flags.writeable):
        raise ValueError(f"{kernel}: {name} is updated in place, so it must be C-contiguous "
                         f"and writable (got contiguous={a.flags.c_contiguous}, "
                         f"writable={a.flags.writeable})")


def _batch_norm_checks(kernel, x, weight, training, extra):
    _norm_ndim(kernel, "x", x, 3, "(N, C, L)")
    channels = x.shape[1]
    for name, a in [("weight", weight)] + extra:
        _norm_shape(kernel, name, a, (channels,))
    count = x.shape[0] * x.shape[2]
    if training and count < 2:
        raise ValueError(f"{kernel}: training needs more than 1 value per channel, "
                         f"got x of shape {x.shape}")
    return channels, count


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                       activation=None):
    """Normalise each channel of ``x`` (N, C, L) over N and L; returns (y, save_mean, save_invstd).

    Training: batch mean and ``1/sqrt(biased var + eps)``, and the running stats
    (when given) move towards them in place, with the *unbiased* variance.
    Eval: the running stats normalise instead.

    ``activation="relu"`` clamps y at 0 and returns a fourth array, ``relu_terms``
    (4, C): each channel's mean in two parts (hi, the mean in x's dtype, and lo, the
    rest), scale and shift, from which ``batch_norm_backward`` recomputes where y was
    positive.
    """
    kernel = "batch_norm_forward"
    dtype = _norm_dtype(kernel, x=x, weight=weight, bias=bias,
                        running_mean=running_mean, running_var=running_var)
    training = checks.flag(kernel, "training", training)
    relu = checks.fused_relu(kernel, activation)
    channels, count = _batch_norm_checks(kernel, x, weight, training, [
        ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)])
    # a float in [0, 1], as PyTorch's functional batch_norm takes it (its module's None, a
    # cumulative average, is the caller's 1 / batches seen)
    momentum = checks.quantity(kernel, "momentum", momentum, 0.0, 1.0)
    eps = _norm_eps(kernel, eps)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{kernel}: give both running_mean and running_var, or neither")
    if running_mean is not None:
        _norm_in_place(kernel, "running_mean", running_mean)
        _norm_in_place(kernel, "running_var", running_var)
        checks.separate(kernel, [("running_mean", running_mean), ("running_var", running_var),
                                 ("x", x), ("weight", weight), ("bias", bias)],
                        written={"running_mean", "running_var"})
    xd = x.astype(np.float64)
    if training:
        mean = xd.mean(axis=(0, 2))
        var = ((xd - mean[None, :, None]) ** 2).mean(axis=(0, 2))
        invstd = 1.0 / np.sqrt(var + eps)
        if running_mean is not None:
            unbiased = var * count / (count - 1)
            running_mean[...] = momentum * mean + (1.0 - momentum) * running_mean.astype(np.float64)
            running_var[...] = momentum * unbiased + (1.0 - momentum) * running_var.astype(np.float64)
    else:
        if running_mean is None:
            raise ValueError(f"{kernel}: eval mode (training=False) needs running_mean and running_var")
        mean = running_mean.astype(np.float64)
        invstd = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    # y = (x - mean) * scale + shift: one subtraction and one multiply-add per element.
    # (Folding the mean into the shift, x * scale + (bias - mean * scale), would add two
    # infinities of opposite signs where scale or mean is infinite: NaN for every x.)
    scale = invstd if weight is None else invstd * weight.astype(np.float64)
    shift = np.zeros(channels) if bias is None else bias.astype(np.float64)
    hi = mean.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):   # an infinite mean has no low part: 0
        lo = np.nan_to_num((mean - hi).astype(dtype), nan=0.0)
        terms = np.stack([hi, lo, scale.astype(dtype), shift.astype(dtype)])
    y = _affine_map(x, terms)
    if not relu:
        return y, hi, invstd.astype(dtype)
    return np.where(y < 0, dtype.type(0), y), hi, invstd.astype(dtype), terms


def _affine_map(x, terms):
    """((x - hi) - lo) * scale + shift per channel, in x's dtype: the kernel's steps
    (_norm_steps.h), where the mean's two parts keep the precision of x - mean."""
    hi, lo, scale, shift = (t[None, :, None] for t in terms)
    with np.errstate(invalid="ignore", over="ignore"):
        return ((x - hi) - lo) * scale + shift


def _relu_masked(grad, x, terms):
    """``grad`` zeroed where the fused ReLU's output was <= 0, as relu_backward does; that
    output recomputed from ``x`` by the forward's own steps."""
    return np.where(_affine_map(x, terms) <= 0, grad.dtype.type(0), grad)


def batch_norm_backward(grad, x, weight, save_mean, save_invstd, training, relu_terms=None):
    """Gradients of batch_norm_forward: (grad_x, grad_weight, grad_bias).

    With ``xhat = (x - mean) * invstd`` and ``g = grad * weight``, training gives
    ``grad_x = invstd * (g - mean(g) - xhat * mean(g * xhat))`` (the batch
    statistics depend on x); eval gives ``grad_x = g * invstd``. With
    ``relu_terms`` (from ``activation="relu"``), ``grad`` is first zeroed where the
    fused ReLU's output was <= 0.
    """
    kernel = "batch_norm_backward"
    dtype = _norm_dtype(kernel, grad=grad, x=x, weight=weight,
                        save_mean=save_mean, save_invstd=save_invstd, relu_terms=relu_terms)
    training = checks.flag(kernel, "training", training)
    channels, count = _batch_norm_checks(kernel, x, weight, training, [
        ("save_mean", save_mean), ("save_invstd", save_invstd)])
    if save_mean is None or save_invstd is None:
        raise ValueError(f"{kernel}: save_mean and save_invstd are required")
    _norm_shape(kernel, "grad", grad, x.shape)
    _norm_shape(kernel, "relu_terms", relu_terms, (4, channels))
    if relu_terms is not None:
        grad = _relu_masked(grad, x, relu_terms)
    g = grad.astype(np.float64)
    xmu = x.astype(np.float64) - save_mean.astype(np.float64)[None, :, None]
    invstd = save_invstd.astype(np.float64)
    w = np.ones(channels) if weight is None else weight.astype(np.float64)
    sum_g = g.sum(axis=(0, 2))
    dotp = (g * xmu).sum(axis=(0, 2))
    if training:
        k = dotp * invstd * invstd / count
        grad_mean = sum_g / count
        grad_x = (g - xmu * k[None, :, None] - grad_mean[None, :, None]) * (invstd * w)[None, :, None]
    else:
        grad_x = g * (invstd * w)[None, :, None]
    if weight is None:
        return grad_x.astype(dtype), None, None
    return grad_x.astype(dtype), (dotp * invstd).astype(dtype), sum_g.astype(dtype)


def _rows_stats(kernel, x, eps):
    """Mean and 1/sqrt(biased var + eps) of each row of 2-D ``x``, in float64."""
    xd = x.astype(np.float64)
    mean = xd.mean(axis=1)
    var = ((xd - mean[:, None]) ** 2).mean(axis=1)
    return xd, mean, 1.0 / np.sqrt(var + eps)


def _rows_grad_x(g, xhat, rstd):
    """grad_x of a per-row normalisation: ``rstd * (g - mean(g) - xhat * mean(g * xhat))``."""
    c1 = (g * xhat).mean(axis=1)
    c2 = g.mean(axis=1)
    return rstd[:, None] * (g - c2[:, None] - xhat * c1[:, None])


def layer_norm_forward(x, weight, bias, eps):
    """Normalise each row of ``x`` (rows, D); returns (y, mean, rstd), mean/rstd of shape (rows,)."""
    kernel = "layer_norm_forward"
    dtype = _norm_dtype(kernel, x=x, weight=weight, bias=bias)
    _norm_ndim(kernel, "x", x, 2, "(rows, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{kernel}: the normalized size D must be positive, got x of shape {x.shape}")
    _norm_shape(kernel, "weight", weight, (x.shape[1],))
    _norm_shape(kernel, "bias", bias, (x.shape[1],))
    eps = _norm_eps(kernel, eps)
    xd, mean, rstd = _rows_stats(kernel, x, eps)
    y = (xd - mean[:, None]) * rstd[:, None]
    if weight is not None:
        y = y * weight.astype(np.float64)
    if bias is not None:
        y = y + bias.astype(np.float64)
    return y.astype(dtype), mean.astype(dtype), rstd.astype(dtype)


def layer_norm_backward(grad, x, weight, mean, rstd):
    """Gradients of layer_norm_forward: (grad_x, grad_weight, grad_bias); None for absent affine."""
    kernel = "layer_norm_backward"
    dtype = _norm_dtype(kernel, grad=grad, x=x, weight=weight, mean=mean, rstd=rstd)
    _norm_ndim(kernel, "x", x, 2, "(rows, D)")
    _norm_shape(kernel, "grad", grad, x.shape)
    _norm_shape(kernel, "weight", weight, (x.shape[1],))
    _norm_shape(kernel, "mean", mean, (x.shape[0],))
    _norm_shape(kernel, "rstd", rstd, (x.shape[0],))
    gd = grad.astype(np.float64)
    rstd = rstd.astype(np.float64)
    xhat = (x.astype(np.float64) - mean.astype(np.float64)[:, None]) * rstd[:, None]
    g = gd if weight is None else gd * weight.astype(np.float64)
    grad_x = _rows_grad_x(g, xhat, rstd).astype(dtype)
    if weight is None:
        return grad_x, None, None
    return grad_x, (gd * xhat).sum(axis=0).astype(dtype), gd.sum(axis=0).astype(dtype)


def _group_norm_checks(kernel, x, num_groups, weight, bias):
    _norm_ndim(kernel, "x", x, 3, "(N, C, L)")
    n, channels, length = x.shape
    if not checks.is_int(num_groups) or num_groups < 1:
        raise ValueError(f"{kernel}: num_groups must be a positive int, got {num_groups!r}")
    if channels % num_groups:
        raise ValueError(f"{kernel}: num_channels ({channels}) must be divisible by "
                         f"num_groups ({num_groups})")
    if channels // num_groups * length == 0:
        raise ValueError(f"{kernel}: each group must hold at least one value, got x of shape "
                         f"{x.shape} with num_groups={num_groups}")
    _norm_shape(kernel, "weight", weight, (channels,))
    _norm_shape(kernel, "bias", bias, (channels,))
    return n, channels, length, int(num_groups)


def group_norm_forward(x, num_groups, weight, bias, eps):
    """Normalise ``x`` (N, C, L) over each group of C/num_groups channels and L; (y, mean, rstd).

    mean and rstd have shape (N, num_groups); the affine map is per channel.
    """
    kernel = "group_norm_forward"
    dtype = _norm_dtype(kernel, x=x, weight=weight, bias=bias)
    n, channels, length, groups = _group_norm_checks(kernel, x, num_groups, weight, bias)
    eps = _norm_eps(kernel, eps)
    rows = (n * groups, channels // groups * length)
    xd, mean, rstd = _rows_stats(kernel, x.reshape(rows), eps)
    y = ((xd - mean[:, None]) * rstd[:, None]).reshape(n, channels, length)
    if weight is not None:
        y = y * weight.astype(np.float64)[None, :, None]
    if bias is not None:
        y = y + bias.astype(np.float64)[None, :, None]
    return y.astype(dtype), mean.reshape(n, groups).astype(dtype), rstd.reshape(n, groups).astype(dtype)


def group_norm_backward(grad, x, num_groups, weight, mean, rstd):
    """Gradients of group_norm_forward: (grad_x, grad_weight, grad_bias); None for absent affine."""
    kernel = "group_norm_backward"
    dtype = _norm_dtype(kernel, grad=grad, x=x, weight=weight, mean=mean, rstd=rstd)
    n, channels, length, groups = _group_norm_checks(kernel, x, num_groups, weight, None)
    _norm_shape(kernel, "grad", grad, x.shape)
    _norm_shape(kernel, "mean", mean, (n, groups))
    _norm_shape(kernel, "rstd", rstd, (n, groups))
    gd = grad.astype(np.float64)
    rstd_rows = rstd.astype(np.float64).reshape(-1)
    rows = (n * groups, channels // groups * length)
    xhat = ((x.astype(np.float64).reshape(rows) - mean.astype(np.float64).reshape(-1, 1))
            * rstd_rows[:, None]).reshape(n, channels, length)
    g = gd if weight is None else gd * weight.astype(np.float64)[None, :, None]
    grad_x = _rows_grad_x(g.reshape(rows), xhat.reshape(rows), rstd_rows)
    grad_x = grad_x.reshape(x.shape).astype(dtype)
    if weight is None:
        return grad_x, None, None
    return grad_x, (gd * xhat).sum(axis=(0, 2)).astype(dtype), gd.sum(axis=(0, 2)).astype(dtype)


def rms_norm_forward(x, weight, eps):
    """Scale each row of ``x`` (rows, D) by ``rrms = 1/sqrt(mean(x**2) + eps)``; returns (y, rrms)."""
    kernel = "rms_norm_forward"
    dtype = _norm_dtype(kernel, x=x, weight=weight)
    _norm_ndim(kernel, "x", x, 2, "(rows, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{kernel}: the normalized size D must be positive, got x of shape {x.shape}")
    _norm_shape(kernel, "weight", weight, (x.shape[1],))
    eps = _norm_eps(kernel, eps)
    xd = x.astype(np.float64)
    rrms = 1.0 / np.sqrt((xd * xd).mean(axis=1) + eps)
    y = xd * rrms[:, None]
    if weight is not None:
        y = y * weight.astype(np.float64)
    return y.astype(dtype), rrms.astype(dtype)


def rms_norm_backward(grad, x, weight, rrms):
    """Gradients of rms_norm_forward: (grad_x, grad_weight).

    With ``g = grad * weight``: ``grad_x = rrms * g - x * rrms**3 * mean(g * x)``.
    """
    kernel = "rms_norm_backward"
    dtype = _norm_dtype(kernel, grad=grad, x=x, weight=weight, rrms=rrms)
    _norm_ndim(kernel, "x", x, 2, "(rows, D)")
    _norm_shape(kernel, "grad", grad, x.shape)
    _norm_shape(kernel, "weight", weight, (x.shape[1],))
    _norm_shape(kernel, "rrms", rrms, (x.shape[0],))
    gd = grad.astype(np.float64)
    xd = x.astype(np.float64)
    r = rrms.astype(np.float64)[:, None]
    g = gd if weight is None else gd * weight.astype(np.float64)
    c = (g * xd).mean(axis=1)[:, None]
    grad_x = (r * g - xd * (r * r * r) * c).astype(dtype)
    if weight is None:
        return grad_x, None
    return grad_x, (gd * xd * r).sum(axis=0).astype(dtype)
