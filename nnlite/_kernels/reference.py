"""NumPy reference twins of every compiled kernel.

Each function here has exactly the signature and results of the compiled kernel
of the same name in ``nnlite/_kernels/_<theme>.pyx``. They are the readable,
obviously-correct version of each loop: tests hold the compiled kernels equal
to them, and ``nl.set_backend("reference")`` runs whole models on them so a
reader can step through plain NumPy.

Reductions here follow the same fixed-block order as the compiled kernels where
bitwise equality is promised; elsewhere they are equal to rounding.
"""
import numpy as np

from . import checks

# ---------------------------------------------------------------- gemm -----

_GEMM_BIAS_GRAD_BLOCK = 256   # rows per partial sum in bias_grad (fixed: thread-count independent)


def _gemm_float_operands(op, arrays, names):
    """Check that ``arrays`` are float32/float64 ndarrays of one dtype; return that dtype."""
    return checks.float_operands(op, arrays, names)


def _gemm_ndim(op, arr, name, ndim):
    if arr.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {arr.shape}")


def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D ``a``, ``b``; ``op`` transposes when its flag is set."""
    _gemm_float_operands("gemm", (a, b), ("a", "b"))
    _gemm_ndim("gemm", a, "a", 2)
    _gemm_ndim("gemm", b, "b", 2)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    if opa.shape[1] != opb.shape[0]:
        raise ValueError(f"gemm: inner dimensions differ: op(a) has shape {opa.shape} "
                         f"(a {a.shape}, trans_a={bool(trans_a)}), op(b) has shape {opb.shape} "
                         f"(b {b.shape}, trans_b={bool(trans_b)})")
    return np.ascontiguousarray(np.matmul(opa, opb))


def bmm(a, b, trans_a=False, trans_b=False):
    """Batched gemm over the leading dimension of 3-D ``a`` and ``b``."""
    _gemm_float_operands("bmm", (a, b), ("a", "b"))
    _gemm_ndim("bmm", a, "a", 3)
    _gemm_ndim("bmm", b, "b", 3)
    opa = a.transpose(0, 2, 1) if trans_a else a
    opb = b.transpose(0, 2, 1) if trans_b else b
    if a.shape[0] != b.shape[0] or opa.shape[2] != opb.shape[1]:
        raise ValueError(f"bmm: cannot multiply op(a) of shape {opa.shape} (a {a.shape}, "
                         f"trans_a={bool(trans_a)}) by op(b) of shape {opb.shape} "
                         f"(b {b.shape}, trans_b={bool(trans_b)})")
    return np.ascontiguousarray(np.matmul(opa, opb))


def linear_forward(x, weight, bias, activation):
    """act(x @ weight.T + bias): x (N, in_features), weight (out_features, in_features)."""
    arrays, names = (x, weight), ("x", "weight")
    if bias is not None:
        arrays, names = arrays + (bias,), names + ("bias",)
    _gemm_float_operands("linear_forward", arrays, names)
    _gemm_ndim("linear_forward", x, "x", 2)
    _gemm_ndim("linear_forward", weight, "weight", 2)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"linear_forward: weight of shape {weight.shape} expects "
                         f"in_features={weight.shape[1]}, input has shape {x.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear_forward: bias must have shape ({weight.shape[0]},) to match "
                         f"weight {weight.shape}, got {bias.shape}")
    if activation not in (None, "relu"):
        raise ValueError(f"linear_forward: activation must be None or 'relu', got {activation!r}")
    y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    if activation == "relu":
        y = np.where(y < 0, y.dtype.type(0), y)
    return np.ascontiguousarray(y)


def bias_grad(g):
    """Column sums of 2-D ``g``: rows summed in fixed blocks of 256, blocks added in order."""
    _gemm_float_operands("bias_grad", (g,), ("g",))
    _gemm_ndim("bias_grad", g, "g", 2)
    total = np.zeros(g.shape[1], dtype=g.dtype)
    for start in range(0, g.shape[0], _GEMM_BIAS_GRAD_BLOCK):
        block = np.ascontiguousarray(g[start:start + _GEMM_BIAS_GRAD_BLOCK])
        partial = np.zeros(g.shape[1], dtype=g.dtype)
        for row in block:           # row after row, as the compiled loop does
            partial += row
        total += partial
    return total


def gemm_tiled(a, b):
    """a @ b for 2-D operands (the cache-blocked teaching kernel's twin)."""
    _gemm_float_operands("gemm_tiled", (a, b), ("a", "b"))
    _gemm_ndim("gemm_tiled", a, "a", 2)
    _gemm_ndim("gemm_tiled", b, "b", 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"gemm_tiled: cannot multiply a of shape {a.shape} by b of shape {b.shape}")
    return np.ascontiguousarray(np.matmul(a, b))


# ---------------------------------------------------------- elementwise -----

def _elementwise_floats(op, arrays, names):
    """Check float32/float64 ndarrays of one dtype and one shape; return the dtype."""
    dtype = _gemm_float_operands(op, arrays, names)
    for arr, name in zip(arrays[1:], names[1:]):
        if arr.shape != arrays[0].shape:
            raise ValueError(f"{op}: {name} must have the shape of {names[0]} "
                             f"{arrays[0].shape}, got {arr.shape}")
    return dtype


def _elementwise_c_order(a, dtype=None):
    """``a`` as a C-ordered array (0-d stays 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, dtype=dtype, order="C")


def _elementwise_approximate(op, approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{op}: approximate must be 'none' or 'tanh', got {approximate!r}")


def relu_forward(x):
    """max(x, 0); NaN passes through, as in PyTorch."""
    _elementwise_floats("relu_forward", (x,), ("x",))
    return _elementwise_c_order(np.where(x < 0, x.dtype.type(0), x))


def relu_backward(grad, out):
    """grad where the forward output was positive, else 0."""
    _elementwise_floats("relu_backward", (grad, out), ("grad", "out"))
    return _elementwise_c_order(np.where(out > 0, grad, grad.dtype.type(0)))


_GELU_SQRT_2_OVER_PI = 0.7978845608028654      # sqrt(2 / pi)
_GELU_KAPPA = 0.044715
_GELU_INV_SQRT_2 = 0.7071067811865476         # 1 / sqrt(2)
_GELU_INV_SQRT_2PI = 0.3989422804014327       # 1 / sqrt(2 pi): the normal pdf's constant


def gelu_forward(x, approximate):
    """x * Phi(x) ("none": exact, with erf) or PyTorch's tanh approximation ("tanh")."""
    from scipy.special import erf
    _elementwise_floats("gelu_forward", (x,), ("x",))
    _elementwise_approximate("gelu_forward", approximate)
    t = x.dtype.type
    if approximate == "tanh":
        inner = t(_GELU_SQRT_2_OVER_PI) * (x + t(_GELU_KAPPA) * x * x * x)
        y = t(0.5) * x * (t(1) + np.tanh(inner))
    else:
        y = x * t(0.5) * (t(1) + erf(x * t(_GELU_INV_SQRT_2)))
    return _elementwise_c_order(y, dtype=x.dtype)


def gelu_backward(grad, x, approximate):
    """PyTorch's GELU derivative: Phi(x) + x phi(x), or the tanh formula's derivative."""
    from scipy.special import erf
    _elementwise_floats("gelu_backward", (grad, x), ("grad", "x"))
    _elementwise_approximate("gelu_backward", approximate)
    t = x.dtype.type
    if approximate == "tanh":
        x_sq = x * x
        inner = t(_GELU_SQRT_2_OVER_PI) * (x + t(_GELU_KAPPA) * x_sq * x)
        tanh_inner = np.tanh(inner)
        left_derivative = t(0.5) * (t(1) + tanh_inner)
        right_derivative = (t(0.5) * x * (t(1) - tanh_inner * tanh_inner)
                            * (t(_GELU_SQRT_2_OVER_PI) * (t(1) + t(3 * _GELU_KAPPA) * x_sq)))
        dx = grad * (left_derivative + right_derivative)
    else:
        cdf = t(0.5) * (t(1) + erf(x * t(_GELU_INV_SQRT_2)))
        pdf = t(_GELU_INV_SQRT_2PI) * np.exp(t(-0.5) * x * x)
        dx = grad * (cdf + x * pdf)
    return _elementwise_c_order(dx, dtype=x.dtype)


def tanh_forward(x):
    _elementwise_floats("tanh_forward", (x,), ("x",))
    return _elementwise_c_order(np.tanh(x))


def tanh_backward(grad, out):
    """grad * (1 - tanh^2), from the saved output."""
    _elementwise_floats("tanh_backward", (grad, out), ("grad", "out"))
    return _elementwise_c_order(grad * (out.dtype.type(1) - out * out))


def _sigmoid(x):
    # exp of a negative number only, so large |x| never overflows
    t = x.dtype.type
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, t(1) / (t(1) + e), e / (t(1) + e))


def sigmoid_forward(x):
    _elementwise_floats("sigmoid_forward", (x,), ("x",))
    return _elementwise_c_order(_sigmoid(x))


def sigmoid_backward(grad, out):
    """grad * out * (1 - out), from the saved output."""
    _elementwise_floats("sigmoid_backward", (grad, out), ("grad", "out"))
    return _elementwise_c_order(grad * out * (out.dtype.type(1) - out))


def silu_forward(x):
    """x * sigmoid(x) (also called swish)."""
    _elementwise_floats("silu_forward", (x,), ("x",))
    return _elementwise_c_order(x * _sigmoid(x))


def silu_backward(grad, x):
    """grad * s * (1 + x (1 - s)) with s = sigmoid(x)."""
    _elementwise_floats("silu_backward", (grad, x), ("grad", "x"))
    t = x.dtype.type
    s = _sigmoid(x)
    return _elementwise_c_order(grad * (s * (t(1) + x * (t(1) - s))))


def dropout_forward(x, u, p):
    """(y, mask): mask = u >= p keeps each element with probability 1 - p; y = x * mask / (1 - p)."""
    _elementwise_floats("dropout_forward", (x, u), ("x", "u"))
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p!r}")
    scale = x.dtype.type(1.0 / (1.0 - p))
    mask = u >= x.dtype.type(p)
    y = x * np.where(mask, scale, x.dtype.type(0))   # x * noise, as PyTorch computes it
    return _elementwise_c_order(y), _elementwise_c_order(mask)


def _embedding_check_indices(op, indices, num_embeddings):
    checks.index_array(op, "indices", indices)
    if indices.size:
        bad = (indices < 0) | (indices >= num_embeddings)
        if bad.any():
            index = int(indices[bad].flat[0])
            raise IndexError(f"{op}: index {index} is out of range for "
                             f"num_embeddings={num_embeddings}")


def embedding_forward(weight, indices):
    """weight[indices]: one row of the (num_embeddings, embedding_dim) table per index."""
    _gemm_float_operands("embedding_forward", (weight,), ("weight",))
    _gemm_ndim("embedding_forward", weight, "weight", 2)
    _embedding_check_indices("embedding_forward", indices, weight.shape[0])
    return np.ascontiguousarray(weight[indices])


def embedding_backward(grad, indices, num_embeddings, padding_idx):
    """Scatter-add grad rows into a (num_embeddings, dim) table, in index order.

    The padding row (``padding_idx``; -1 for none) gets no gradient.
    """
    _gemm_float_operands("embedding_backward", (grad,), ("grad",))
    if isinstance(num_embeddings, bool) or not isinstance(num_embeddings, (int, np.integer)) \
            or num_embeddings < 0:
        raise ValueError(f"embedding_backward: num_embeddings must be an int >= 0, "
                         f"got {num_embeddings!r}")
    if not isinstance(padding_idx, (int, np.integer)) or not -1 <= padding_idx < num_embeddings:
        raise ValueError(f"embedding_backward: padding_idx must be -1 (none) or in "
                         f"[0, {num_embeddings}), got {padding_idx!r}")
    _embedding_check_indices("embedding_backward", indices, num_embeddings)
    if grad.ndim != indices.ndim + 1 or grad.shape[:-1] != indices.shape:
        raise ValueError(f"embedding_backward: grad must have shape indices.shape + (dim,) = "
                         f"{indices.shape} + (dim,), got {grad.shape}")
    dim = grad.shape[-1]
    table = np.zeros((int(num_embeddings), dim), dtype=grad.dtype)
    # unbuffered: rows hit twice are summed in index order
    np.add.at(table, indices.reshape(-1), grad.reshape(indices.size, dim))
    if padding_idx >= 0:
        table[padding_idx] = 0
    return table


# -------------------------------------------------------------- softmax -----

_SOFTMAX_LOSS_BLOCK = 256     # rows per partial loss sum (fixed: thread-count independent)


def _softmax_2d(op, arrays, names):
    dtype = _elementwise_floats(op, arrays, names)
    if arrays[0].ndim != 2:
        raise ValueError(f"{op}: expected 2-D (rows, cols) input, got shape {arrays[0].shape}")
    return dtype


def _softmax_shifted_exp(x):
    """exp(x - row max) and the row sums; the shift keeps exp from overflowing."""
    if x.shape[1] == 0:
        return np.empty_like(x), np.zeros((x.shape[0], 1), x.dtype)
    with np.errstate(invalid="ignore"):  # an all -inf row gives nan, as in PyTorch
        e = np.exp(x - x.max(axis=1, keepdims=True))
    return e, e.sum(axis=1, keepdims=True, dtype=np.float64)


def softmax_forward(x):
    """exp(x_j - max) / sum_k exp(x_k - max) along the last dimension."""
    _softmax_2d("softmax_forward", (x,), ("x",))
    e, s = _softmax_shifted_exp(x)
    return np.ascontiguousarray(e * (1.0 / s).astype(x.dtype))   # one division per row


def softmax_backward(grad, out):
    """out * (grad - sum(grad * out)) along the last dimension."""
    _softmax_2d("softmax_backward", (grad, out), ("grad", "out"))
    dot = (grad.astype(np.float64) * out).sum(axis=1, keepdims=True)
    return np.ascontiguousarray(out * (grad - dot.astype(grad.dtype)))


def log_softmax_forward(x):
    """x_j - max - log(sum_k exp(x_k - max)) along the last dimension."""
    _softmax_2d("log_softmax_forward", (x,), ("x",))
    if x.shape[1] == 0:
        return np.empty_like(x, order="C")
    m = x.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # an all -inf row gives nan, as in PyTorch
        s = np.exp(x - m).sum(axis=1, keepdims=True, dtype=np.float64)
        lp = (x - m) - np.log(s).astype(x.dtype)
    return np.ascontiguousarray(lp.astype(x.dtype, copy=False))


def log_softmax_backward(grad, out):
    """grad - exp(out) * sum(grad) along the last dimension."""
    _softmax_2d("log_softmax_backward", (grad, out), ("grad", "out"))
    total = grad.sum(axis=1, keepdims=True, dtype=np.float64).astype(grad.dtype)
    return np.ascontiguousarray(grad - np.exp(out) * total)


def _cross_entropy_check(op, logits, target, weight, ignore_index, label_smoothing, reduction):
    arrays, names = (logits,), ("logits",)
    if weight is not None:
        arrays, names = (logits, weight), ("logits", "weight")
    _gemm_float_operands(op, arrays, names)
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must be 2-D (N, C), got shape {logits.shape}")
    n, c = logits.shape
    if c == 0:
        raise ValueError(f"{op}: logits must have at least one class, got shape {logits.shape}")
    checks.index_array(op, "target", target)
    if target.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) for logits {logits.shape}, "
                         f"got {target.shape}")
    if weight is not None and weight.shape != (c,):
        raise ValueError(f"{op}: weight must have shape ({c},) for logits {logits.shape}, "
                         f"got {weight.shape}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    bad = (target != ignore_index) & ((target < 0) | (target >= c))
    if bad.any():
        raise IndexError(f"{op}: target {int(target[bad][0])} is out of bounds for C={c} classes "
                         f"(ignore_index={ignore_index})")


def _cross_entropy_block_sum(values):
    """Sum in fixed blocks of rows, blocks added in order (the compiled kernel's order)."""
    total = 0.0
    for start in range(0, values.shape[0], _SOFTMAX_LOSS_BLOCK):
        total += float(values[start:start + _SOFTMAX_LOSS_BLOCK].sum())
    return total


def _cross_entropy_target_weight(target, weight, ignore_index, dtype):
    """w[target] for every row (0 where the target is ignored), in float64."""
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    w = np.ones(target.shape[0]) if weight is None else weight.astype(np.float64)[safe]
    return np.where(keep, w, 0.0), keep


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing, reduction):
    """(loss, lse): PyTorch's cross_entropy on class-index targets, and the row log-sum-exp.

    ``lse`` is float64 for every logits dtype (the backward needs x - lse exact).

    Per row, with log-probabilities ``lp = logits - lse`` and eps = label_smoothing::

        loss_i = (1 - eps) * (-w[t_i] lp[t_i]) + eps / C * (-sum_c w[c] lp[c])

    ignored rows give 0; "mean" divides the sum by sum_i w[t_i] over kept rows.
    """
    op = "cross_entropy_forward"
    _cross_entropy_check(op, logits, target, weight, ignore_index, label_smoothing, reduction)
    n, c = logits.shape
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True) if n else np.zeros((0, 1))
    with np.errstate(invalid="ignore"):   # an all -inf row gives nan, as in PyTorch
        log_s = np.log(np.exp(x - m).sum(axis=1, keepdims=True))
        lse = (m + log_s)[:, 0]     # float64: the backward's x - lse stays exact
        lp = (x - m) - log_s        # from the exact x - max, not from the rounded lse
    w_t, keep = _cross_entropy_target_weight(target, weight, ignore_index, logits.dtype)
    safe = np.where(keep, target, 0)
    nll = -w_t * lp[np.arange(n), safe]
    loss = (1.0 - label_smoothing) * nll
    if label_smoothing > 0:
        w = np.ones(c) if weight is None else weight.astype(np.float64)
        smooth = -(lp * w).sum(axis=1)
        loss = loss + (label_smoothing / c) * np.where(keep, smooth, 0.0)
    loss = np.where(keep, loss, 0.0)
    if reduction == "none":
        out = loss.astype(logits.dtype)
    else:
        total = _cross_entropy_block_sum(loss)
        if reduction == "mean":
            w_sum = _cross_entropy_block_sum(w_t)
            total = total / w_sum if w_sum != 0 else float("nan")
        out = np.array(total, dtype=logits.dtype)
    return out, np.ascontiguousarray(lse)


def cross_entropy_backward(grad_loss, logits, target, weight, lse, ignore_index,
                           label_smoothing, reduction):
    """d loss / d logits.

    With p = softmax(logits), s_i the incoming gradient of row i::

        grad_ij = s_i [ (1 - eps) w[t_i] (p_ij - [j == t_i]) + eps / C (p_ij sum_c w[c] - w[j]) ]
    """
    op = "cross_entropy_backward"
    _cross_entropy_check(op, logits, target, weight, ignore_index, label_smoothing, reduction)
    _gemm_float_operands(op, (logits, grad_loss), ("logits", "grad_loss"))
    checks.float_operands(op, (lse,), ("lse",))
    if lse.dtype != np.float64:
        raise TypeError(f"{op}: lse must be float64 (cross_entropy_forward's second result), "
                        f"got {lse.dtype}")
    n, c = logits.shape
    if lse.shape != (n,):
        raise ValueError(f"{op}: lse must have shape ({n},) for logits {logits.shape}, got {lse.shape}")
    want = (n,) if reduction == "none" else ()
    if grad_loss.shape != want:
        raise ValueError(f"{op}: grad_loss must have shape {want} for reduction={reduction!r}, "
                         f"got {grad_loss.shape}")
    dt = logits.dtype.type
    w_t, keep = _cross_entropy_target_weight(target, weight, ignore_index, logits.dtype)
    if reduction == "none":
        scale = grad_loss.astype(np.float64)
    elif reduction == "sum":
        scale = np.full(n, float(grad_loss))
    else:
        w_sum = _cross_entropy_block_sum(w_t)
        scale = np.full(n, float(grad_loss) / w_sum if w_sum != 0 else 0.0)
    scale = np.where(keep, scale, 0.0)
    w = np.ones(c, dtype=logits.dtype) if weight is None else weight
    w_total = float(np.sum(w, dtype=np.float64))
    # per-row coefficients in float64, then one pass in the logits' dtype
    a = scale * (1.0 - label_smoothing) * w_t            # multiplies (p - onehot)
    b = scale * (label_smoothing / c)                     # multiplies (p * sum(w) - w)
    p = np.exp((logits - lse[:, None]).astype(logits.dtype))   # x - lse in double, then rounded
    grad = (a + b * w_total).astype(logits.dtype)[:, None] * p - b.astype(logits.dtype)[:, None] * w
    rows = np.nonzero(keep)[0]
    grad[rows, target[rows]] -= a[rows].astype(logits.dtype)
    return np.ascontiguousarray(grad.astype(logits.dtype, copy=False))


# ----------------------------------------------------------------- conv -----
# Convolution and pooling on (N, C, H, W) arrays. Weights use PyTorch's layout
# (out_channels, in_channels / groups, kH, kW); 1-D ops arrive as 2-D with H == 1.
# The compiled kernels gather every output pixel's receptive field into a column
# matrix (im2col) and run one GEMM per group; these twins do the same gather with
# NumPy slicing, one kernel tap (i, j) at a time. Equal to the compiled kernels to
# rounding (BLAS and NumPy sum in different orders), except max pooling: exact.

def _conv_check_dtype(op, **arrays):
    """All float operands are float32 or float64 and share one dtype."""
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(a).__name__}")
    (first_name, first), *rest = arrays.items()
    if first.dtype != np.float32 and first.dtype != np.float64:
        raise TypeError(f"{op}: expected float32 or float64 arrays, got {first_name} of dtype {first.dtype}")
    for name, a in arrays.items():
        checks.native(op, name, a)
    for name, a in rest:
        if a.dtype != first.dtype:
            raise TypeError(f"{op}: all float arrays must share one dtype, got {first_name} "
                            f"{first.dtype} and {name} {a.dtype}")


def _conv_pair(op, name, value, minimum):
    """A (h, w) pair of ints, each >= minimum."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= minimum
        for v in value)
    if not ok:
        raise ValueError(f"{op}: {name} must be a pair of ints >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


def _conv_shape(op, name, shape):
    """A 4-D shape given as a tuple of non-negative ints."""
    ok = isinstance(shape, (tuple, list)) and len(shape) == 4 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v >= 0
        for v in shape)
    if not ok:
        raise ValueError(f"{op}: {name} must be a 4-D shape (N, C, H, W) of non-negative ints, "
                         f"got {shape!r}")
    return tuple(int(v) for v in shape)


def _conv_geometry(op, x_shape, w_shape, stride, padding, dilation, groups):
    """Check a convolution's arguments; return them normalised and the output shape."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D weight (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {tuple(w_shape)}")
    stride = _conv_pair(op, "stride", stride, 1)
    padding = _conv_pair(op, "padding", padding, 0)
    dilation = _conv_pair(op, "dilation", dilation, 1)
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    N, C, H, W = (int(v) for v in x_shape)
    O, Cg, kh, kw = (int(v) for v in w_shape)
    shapes = f"input shape {tuple(x_shape)}, weight shape {tuple(w_shape)}"
    if C % groups:
        raise ValueError(f"{op}: input has {C} channels, not divisible by groups={groups}; {shapes}")
    if O % groups:
        raise ValueError(f"{op}: weight has {O} output channels, not divisible by groups={groups}; {shapes}")
    if Cg * groups != C:
        raise ValueError(f"{op}: input has {C} channels but weight expects {Cg * groups} "
                         f"(groups={groups}); {shapes}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{op}: kernel size must be at least (1, 1), got ({kh}, {kw}); {shapes}")
    out = [(size + 2 * p - d * (k - 1) - 1) // s + 1
           for size, k, s, p, d in zip((H, W), (kh, kw), stride, padding, dilation)]
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size would be ({out[0]}, {out[1]}), expected at least (1, 1); "
                         f"{shapes}, stride={stride}, padding={padding}, dilation={dilation}")
    # the compiled loops multiply these sizes in 64-bit integers: refuse what would wrap
    checks.fits(op, "the zero-padded input", N, C, H + 2 * padding[0], W + 2 * padding[1])
    checks.fits(op, "the multiply-adds (N x O x OH x OW x C/groups x kH x kW)",
                N, O, out[0], out[1], Cg, kh, kw)
    return stride, padding, dilation, groups, (N, O, out[0], out[1])


def _conv_check_grad(op, grad, expected):
    if grad.shape != tuple(expected):
        raise ValueError(f"{op}: grad has shape {grad.shape} but the convolution's output "
                         f"shape is {tuple(expected)}")


def _conv_columns(x, kernel_size, stride, padding, dilation, out_hw):
    """im2col: (N, C, H, W) -> (N, C, kH, kW, OH, OW), the input under tap (i, j) of each window."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW) = kernel_size, stride, padding, dilation, out_hw
    N, C = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((N, C, kh, kw, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh,
                                  j * dw: j * dw + sw * (OW - 1) + 1: sw]
    return cols


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y[n, o] = bias[o] + sum over (c, i, j) in o's group of weight[o, c, i, j] * x[n, c, oh*s + i*d - p, ...]."""
    op = "conv2d"
    if bias is None:
        _conv_check_dtype(op, input=x, weight=weight)
    else:
        _conv_check_dtype(op, input=x, weight=weight, bias=bias)
    stride, padding, dilation, groups, out_shape = _conv_geometry(
        op, x.shape, weight.shape, stride, padding, dilation, groups)
    N, O, OH, OW = out_shape
    if bias is not None and bias.shape != (O,):
        raise ValueError(f"{op}: bias must have shape ({O},), got {bias.shape}")
    G, Og, Kg = groups, O // groups, int(np.prod(weight.shape[1:]))
    cols = _conv_columns(x, weight.shape[2:], stride, padding, dilation, (OH, OW))
    cols = cols.reshape(N, G, Kg, OH * OW)
    w = weight.reshape(G, Og, Kg)
    y = np.empty((N, G, Og, OH * OW), dtype=x.dtype)
    for g in range(G):
        y[:, g] = w[g] @ cols[:, g]
    y = y.reshape(out_shape)
    if bias is not None:
        y += bias[:, None, None]
    return y


def conv2d_backward_input(grad, weight, input_shape, stride, padding, dilation, groups):
    """dL/dx: each output gradient flows back through the weight to every input under its window (col2im)."""
    op = "conv2d_backward_input"
    _conv_check_dtype(op, grad=grad, weight=weight)
    input_shape = _conv_shape(op, "input_shape", input_shape)
    stride, padding, dilation, groups, out_shape = _conv_geometry(
        op, input_shape, weight.shape, stride, padding, dilation, groups)
    _conv_check_grad(op, grad, out_shape)
    N, C, H, W = input_shape
    _, O, OH, OW = out_shape
    kh, kw = weight.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    G, Og, Kg = groups, O // groups, int(np.prod(weight.shape[1:]))
    g_out = grad.reshape(N, G, Og, OH * OW)
    w = weight.reshape(G, Og, Kg)
    cols = np.empty((N, G, Kg, OH * OW), dtype=grad.dtype)
    for g in range(G):
        cols[:, g] = w[g].T @ g_out[:, g]
    cols = cols.reshape(N, C, kh, kw, OH, OW)
    grad_xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            grad_xp[:, :, i * dh: i * dh + sh * (OH - 1) + 1: sh,
                    j * dw: j * dw + sw * (OW - 1) + 1: sw] += cols[:, :, i, j]
    return np.ascontiguousarray(grad_xp[:, :, ph: ph + H, pw: pw + W])


def conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation, groups):
    """dL/dweight[o, c, i, j] = sum over the batch and output pixels of grad[n, o] * (tap (i, j) of x[n, c])."""
    op = "conv2d_backward_weight"
    _conv_check_dtype(op, grad=grad, input=x)
    weight_shape = _conv_shape(op, "weight_shape", weight_shape)
    stride, padding, dilation, groups, out_shape = _conv_geometry(
        op, x.shape, weight_shape, stride, padding, dilation, groups)
    _conv_check_grad(op, grad, out_shape)
    N, O, OH, OW = out_shape
    G, Og, Kg = groups, O // groups, int(np.prod(weight_shape[1:]))
    cols = _conv_columns(x, weight_shape[2:], stride, padding, dilation, (OH, OW))
    cols = cols.reshape(N, G, Kg, OH * OW)
    g_out = grad.reshape(N, G, Og, OH * OW)
    grad_w = np.empty((G, Og, Kg), dtype=x.dtype)
    for g in range(G):
        grad_w[g] = np.tensordot(g_out[:, g], cols[:, g], axes=([0, 2], [0, 2]))
    return grad_w.reshape(weight_shape)


def conv2d_backward_bias(grad):
    """dL/dbias[o] = sum of grad[:, o] over the batch and every output pixel (accumulated in float64)."""
    op = "conv2d_backward_bias"
    _conv_check_dtype(op, grad=grad)
    if grad.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D grad (N, O, OH, OW), got shape {grad.shape}")
    return grad.sum(axis=(0, 2, 3), dtype=np.float64).astype(grad.dtype)


def _pool_out_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length; with ceil_mode a window starting in the right padding is dropped."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(op, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Check a pooling's arguments; return them normalised and the output (OH, OW)."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
    k = _conv_pair(op, "kernel_size", kernel_size, 1)
    s = _conv_pair(op, "stride", stride, 1)
    p = _conv_pair(op, "padding", padding, 0)
    d = _conv_pair(op, "dilation", dilation, 1)
    for ki, pi, di in zip(k, p, d):
        if pi > (di * (ki - 1) + 1) // 2:
            raise ValueError(f"{op}: padding {p} must be at most half the effective kernel size "
                             f"(kernel_size={k}, dilation={d})")
    H, W = (int(v) for v in x_shape[2:])
    planes = int(x_shape[0]) * int(x_shape[1])
    checks.fits(op, "the zero-padded input", planes, H + 2 * p[0], W + 2 * p[1])
    out = (_pool_out_size(H, k[0], s[0], p[0], d[0], ceil_mode),
           _pool_out_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size would be {out}, expected at least (1, 1); input shape "
                         f"{tuple(x_shape)}, kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    # With dilation a window at the left edge can step over the whole input; PyTorch then
    # returns -inf with an index outside the plane. Refuse instead.
    for axis, size in enumerate((H, W)):
        o = 0
        while o * s[axis] - p[axis] < 0:
            start = o * s[axis] - p[axis]
            taps_skipped = (-start + d[axis] - 1) // d[axis]
            if taps_skipped >= k[axis] or start + taps_skipped * d[axis] >= size:
                raise ValueError(f"{op}: window {o} along {'HW'[axis]} covers only padding; input shape "
                                 f"{tuple(x_shape)}, kernel_size={k}, padding={p}, dilation={d}")
            o += 1
    checks.fits(op, "the window taps (planes x OH x OW x kH x kW)", planes, out[0], out[1], k[0], k[1])
    return k, s, p, d, out


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Each window's maximum and its flat index in the (H*W) input plane, like PyTorch's return_indices.

    Ties keep the first position in row-major window order; a NaN wins (the last NaN seen).
    """
    op = "max_pool2d"
    _conv_check_dtype(op, input=x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW) = _pool_geometry(
        op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    N, C, H, W = x.shape
    h0 = np.arange(OH) * sh - ph
    w0 = np.arange(OW) * sw - pw
    # The argmax starts at the window's first tap inside the input, as PyTorch's loop does.
    h_first = np.where(h0 < 0, h0 + (-h0 + dh - 1) // dh * dh, h0)
    w_first = np.where(w0 < 0, w0 + (-w0 + dw - 1) // dw * dw, w0)
    indices = np.empty((N, C, OH, OW), dtype=np.int64)
    indices[...] = h_first[:, None] * W + w_first[None, :]
    y = np.full((N, C, OH, OW), -np.inf, dtype=x.dtype)
    for i in range(kh):
        ih = h0 + i * dh
        for j in range(kw):
            iw = w0 + j * dw
            inside = ((ih >= 0) & (ih < H))[:, None] & ((iw >= 0) & (iw < W))[None, :]
            v = x[:, :, np.clip(ih, 0, H - 1)[:, None], np.clip(iw, 0, W - 1)[None, :]]
            take = inside & ((v > y) | np.isnan(v))
            y = np.where(take, v, y)
            indices = np.where(take, ih[:, None] * W + iw[None, :], indices)
    return y, indices


def max_pool2d_backward(grad, indices, input_shape):
    """Route each output gradient to the input position that won its window (scatter-add by index)."""
    op = "max_pool2d_backward"
    _conv_check_dtype(op, grad=grad)
    input_shape = _conv_shape(op, "input_shape", input_shape)
    N, C, H, W = input_shape
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError(f"{op}: indices must be an int64 array, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    checks.native(op, "indices", indices)
    if grad.ndim != 4 or grad.shape[:2] != (N, C) or indices.shape != grad.shape:
        raise ValueError(f"{op}: grad and indices must have one shape (N, C, OH, OW) with (N, C) = "
                         f"{(N, C)}; got grad {grad.shape}, indices {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= H * W):
        raise ValueError(f"{op}: indices must lie in [0, {H * W}) for input shape {input_shape}, "
                         f"got range [{indices.min()}, {indices.max()}]")
    grad_x = np.zeros((N * C, H * W), dtype=grad.dtype)
    planes = np.arange(N * C)[:, None]
    L = grad.shape[2] * grad.shape[3]
    np.add.at(grad_x, (planes, indices.reshape(N * C, L)), grad.reshape(N * C, L))
    return grad_x.reshape(input_shape)


def _avg_pool_divisors(op, shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, dtype):
    """Geometry of an average pooling plus the (OH, OW) divisor of each window, PyTorch's rule."""
    k, s, p, _, (OH, OW) = _pool_geometry(op, shape, kernel_size, stride, padding, (1, 1), ceil_mode)
    if divisor_override is not None:
        if (isinstance(divisor_override, (bool, np.bool_))
                or not isinstance(divisor_override, (int, np.integer)) or divisor_override == 0):
            raise ValueError(f"{op}: divisor_override must be None or a non-zero int, "
                             f"got {divisor_override!r}")
        return k, s, p, (OH, OW), np.full((OH, OW), divisor_override, dtype=dtype)
    sizes = []
    for size, out, ki, si, pi in zip(shape[2:], (OH, OW), k, s, p):
        start = np.arange(out) * si - pi
        end = np.minimum(start + ki, size + pi)  # with padding, but not past the right padding
        sizes.append((end - start) if count_include_pad
                     else np.minimum(end, size) - np.maximum(start, 0))
    return k, s, p, (OH, OW), (sizes[0][:, None] * sizes[1][None, :]).astype(dtype)


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Each window's sum divided by its divisor: the window size, the in-input part of it, or an override."""
    op = "avg_pool2d"
    _conv_check_dtype(op, input=x)
    (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor = _avg_pool_divisors(
        op, x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, x.dtype)
    N, C, H, W = x.shape
    # Zero padding wide enough for ceil_mode's last window, which may run past the padding.
    extra_h = max(0, (OH - 1) * sh + kh - (H + 2 * ph))
    extra_w = max(0, (OW - 1) * sw + kw - (W + 2 * pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)))
    total = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            total += xp[:, :, i: i + sh * (OH - 1) + 1: sh, j: j + sw * (OW - 1) + 1: sw]
    return total / divisor


def avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    """Each input under a window receives grad / divisor of that window."""
    op = "avg_pool2d_backward"
    _conv_check_dtype(op, grad=grad)
    input_shape = _conv_shape(op, "input_shape", input_shape)
    (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor = _avg_pool_divisors(
        op, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
        grad.dtype)
    N, C, H, W = input_shape
    if grad.shape != (N, C, OH, OW):
        raise ValueError(f"{op}: grad has shape {grad.shape} but the pooling's output shape is "
                         f"{(N, C, OH, OW)}")
    extra_h = max(0, (OH - 1) * sh + kh - (H + 2 * ph))
    extra_w = max(0, (OW - 1) * sw + kw - (W + 2 * pw))
    grad_xp = np.zeros((N, C, H + 2 * ph + extra_h, W + 2 * pw + extra_w), dtype=grad.dtype)
    share = grad / divisor
    for i in range(kh):
        for j in range(kw):
            grad_xp[:, :, i: i + sh * (OH - 1) + 1: sh, j: j + sw * (OW - 1) + 1: sw] += share
    return np.ascontiguousarray(grad_xp[:, :, ph: ph + H, pw: pw + W])


# ----------------------------------------------------------------- norm -----
# Statistics are taken in float64 even for float32 input (as the compiled kernels
# do), then mean/rstd are returned in the input's dtype. Equal to the compiled
# kernels to rounding, not bitwise: NumPy sums pairwise, the kernels in blocks.

def _norm_dtype(kernel, **operands):
    """The shared float dtype of ``operands`` (None entries skipped), or a clear error."""
    first = None
    for name, a in operands.items():
        if a is None:
            continue
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{kernel}: {name} must be float32 or float64, got {a.dtype}")
        checks.native(kernel, name, a)
        if first is None:
            first = (name, a.dtype)
        elif a.dtype != first[1]:
            raise TypeError(f"{kernel}: all float operands must share one dtype; "
                            f"{first[0]} is {first[1]} but {name} is {a.dtype}")
    return first[1]


def _norm_shape(kernel, name, a, shape):
    if a is not None and a.shape != shape:
        raise ValueError(f"{kernel}: {name} must have shape {shape}, got {a.shape}")


def _norm_ndim(kernel, name, a, ndim, layout):
    if a.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D {layout}, got shape {a.shape}")


def _norm_eps(kernel, eps):
    if (not isinstance(eps, (int, float, np.integer, np.floating)) or isinstance(eps, bool)
            or not eps >= 0):
        raise ValueError(f"{kernel}: eps must be a float >= 0, got {eps!r}")
    return float(eps)


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


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Normalise each channel of ``x`` (N, C, L) over N and L; returns (y, save_mean, save_invstd).

    Training: batch mean and ``1/sqrt(biased var + eps)``, and the running stats
    (when given) move towards them in place, with the *unbiased* variance.
    Eval: the running stats normalise instead.
    """
    kernel = "batch_norm_forward"
    dtype = _norm_dtype(kernel, x=x, weight=weight, bias=bias,
                        running_mean=running_mean, running_var=running_var)
    channels, count = _batch_norm_checks(kernel, x, weight, training, [
        ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)])
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
        momentum = float(momentum)
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
    # y = x * scale + shift folds the affine map into one multiply-add per element.
    scale = invstd if weight is None else invstd * weight.astype(np.float64)
    shift = -mean * scale if bias is None else bias.astype(np.float64) - mean * scale
    y = xd * scale[None, :, None] + shift[None, :, None]
    return y.astype(dtype), mean.astype(dtype), invstd.astype(dtype)


def batch_norm_backward(grad, x, weight, save_mean, save_invstd, training):
    """Gradients of batch_norm_forward: (grad_x, grad_weight, grad_bias).

    With ``xhat = (x - mean) * invstd`` and ``g = grad * weight``, training gives
    ``grad_x = invstd * (g - mean(g) - xhat * mean(g * xhat))`` (the batch
    statistics depend on x); eval gives ``grad_x = g * invstd``.
    """
    kernel = "batch_norm_backward"
    dtype = _norm_dtype(kernel, grad=grad, x=x, weight=weight,
                        save_mean=save_mean, save_invstd=save_invstd)
    channels, count = _batch_norm_checks(kernel, x, weight, training, [
        ("save_mean", save_mean), ("save_invstd", save_invstd)])
    if save_mean is None or save_invstd is None:
        raise ValueError(f"{kernel}: save_mean and save_invstd are required")
    _norm_shape(kernel, "grad", grad, x.shape)
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
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
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


# ---------------------------------------------------------------- optim -----
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
        if a is not None and not (a.flags.c_contiguous and a.flags.writeable):
            raise ValueError(f"{kernel}: {name} is updated in place, so it must be C-contiguous "
                             f"and writable (got contiguous={a.flags.c_contiguous}, "
                             f"writable={a.flags.writeable})")
    present = [(n, a) for n, a in list(updated.items()) + [("grad", grad)] if a is not None]
    for i, (name_a, a) in enumerate(present):
        for name_b, b in present[i + 1:]:
            if np.shares_memory(a, b):
                raise ValueError(f"{kernel}: {name_a} and {name_b} overlap in memory; "
                                 f"each buffer must be separate")
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



# Every public function defined in this file is a kernel twin.
__all__ = sorted(name for name, value in list(globals().items())
                 if callable(value) and getattr(value, "__module__", None) == __name__
                 and not name.startswith("_"))
