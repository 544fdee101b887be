"""NumPy twins of the kernels in ``nnlite/_kernels/_softmax.pyx``.

Softmax, log-softmax and cross-entropy over the rows of a 2-D array.

Each public function has the signature and results of the compiled kernel of the
same name; see :mod:`nnlite._kernels.reference` for what "equal" promises.
"""
import numpy as np

from .. import checks
from ._elementwise import _elementwise_floats
from ._gemm import _gemm_float_operands

__all__ = ["cross_entropy_backward", "cross_entropy_forward", "log_softmax_backward", "log_softmax_forward",
           "scaled_softmax_forward", "softmax_backward", "softmax_forward"]

_SOFTMAX_LOSS_BLOCK = 256     # rows per partial loss sum (fixed: thread-count independent)


def _softmax_2d(op, arrays, names):
    """float32/float64 operands of one dtype, the first 2-D and the others of its shape (the
    compiled wrappers' checks, in their order)."""
    dtype = _gemm_float_operands(op, arrays, names)
    if arrays[0].ndim != 2:
        raise ValueError(f"{op}: expected 2-D (rows, cols) {names[0]}, got shape {arrays[0].shape}")
    return _elementwise_floats(op, arrays, names)


def _softmax_shifted_exp(x):
    """exp(x - row max) and the row sums; the shift keeps exp from overflowing."""
    if x.shape[1] == 0:   # rows without columns: sums without rows, however many rows there are
        return np.empty_like(x), np.zeros((x.shape[0], 0), x.dtype)
    with np.errstate(invalid="ignore"):  # an all -inf row gives nan, as in PyTorch
        e = np.exp(x - x.max(axis=1, keepdims=True))
    return e, e.sum(axis=1, keepdims=True, dtype=np.float64)


def softmax_forward(x):
    """exp(x_j - max) / sum_k exp(x_k - max) along the last dimension."""
    _softmax_2d("softmax_forward", (x,), ("x",))
    e, s = _softmax_shifted_exp(x)
    return np.ascontiguousarray(e * (1.0 / s).astype(x.dtype))   # one division per row


def scaled_softmax_forward(x, scale, bias):
    """softmax(x * scale + bias) along the last dimension; bias row i % period for row i."""
    _softmax_2d("scaled_softmax_forward", (x,), ("x",))
    rows, cols = x.shape
    if bias is not None:
        _gemm_float_operands("scaled_softmax_forward", (x, bias), ("x", "bias"))
        if bias.ndim != 2 or bias.shape[1] != cols or bias.shape[0] == 0 or rows % bias.shape[0]:
            raise ValueError(f"scaled_softmax_forward: bias must be (period, {cols}) with period dividing "
                             f"the {rows} rows of x {x.shape}, got {bias.shape}")
    scaled = x * x.dtype.type(checks.real_number("scaled_softmax_forward", "scale", scale))
    if bias is not None:
        scaled = (scaled.reshape(rows // bias.shape[0], bias.shape[0], cols) + bias).reshape(rows, cols)
    return softmax_forward(scaled)


def softmax_backward(grad, out, scale=1.0):
    """out * (grad - sum(grad * out)) * scale along the last dimension."""
    _softmax_2d("softmax_backward", (grad, out), ("grad", "out"))
    if grad.shape[1] == 0:
        return np.empty_like(grad, order="C")
    dot = (grad.astype(np.float64) * out).sum(axis=1, keepdims=True)
    scale = grad.dtype.type(checks.real_number("softmax_backward", "scale", scale))
    return np.ascontiguousarray(out * (grad - dot.astype(grad.dtype)) * scale)


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
    if grad.shape[1] == 0:
        return np.empty_like(grad, order="C")
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
    label_smoothing = checks.real_in(op, "label_smoothing", label_smoothing, 0, 1)
    ignore_index = checks.integer(op, "ignore_index", ignore_index)
    bad = (target != ignore_index) & ((target < 0) | (target >= c))
    if bad.any():
        raise IndexError(f"{op}: target {int(target[bad][0])} is out of bounds for C={c} classes "
                         f"(ignore_index={ignore_index})")
    return ignore_index, label_smoothing


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
    ignore_index, label_smoothing = _cross_entropy_check(op, logits, target, weight, ignore_index,
                                                         label_smoothing, reduction)
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
    ignore_index, label_smoothing = _cross_entropy_check(op, logits, target, weight, ignore_index,
                                                         label_smoothing, reduction)
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
