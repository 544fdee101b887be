"""NumPy twin of ``_int8.pyx``: the same u8 x s8 GEMM, int32 sums and epilogue, step for step.

The packed weight layout is the kernel's (panels of 8 output columns, four k
at a time); the twin packs and unpacks it with a reshape and a transpose.
Integer products and sums are exact, so the tile order, the dot instruction
and thread splits cannot change them; the twin therefore takes the whole
product at once. The epilogue then performs the kernel's float32 operations
in the kernel's order (convert the corrected sum, multiply, add the bias; for
requantization divide, round half to even, add the zero point, clamp), so the
two agree byte for byte.
"""
import numpy as np

from .. import checks

__all__ = ["pack_int8_weight", "int8_linear", "quantize_u8", "dynamic_qparams", "quantized_linear"]

MAX_IN_FEATURES = 65793


def _checked(name, arr, dtype, ndim, fn="int8_linear"):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray of {np.dtype(dtype)}, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise TypeError(f"{fn}: {name} must be {np.dtype(dtype)}, got {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def _checked_weights(fn, x_name, x, w_q, w_row_sums, scale_name, scale, bias):
    """The weight operands both entry points share, checked against the activations ``x`` (M x K)."""
    w_q = _checked("w_q", w_q, np.int8, 2, fn)
    w_row_sums = _checked("w_row_sums", w_row_sums, np.int32, 1, fn)
    scale = _checked(scale_name, scale, np.float32, 1, fn)
    K, N = x.shape[1], w_q.shape[0]
    if w_q.shape[1] != K:
        raise ValueError(f"{fn}: {x_name} has {K} features (shape {x.shape}) but w_q has "
                         f"{w_q.shape[1]} (shape {w_q.shape})")
    if w_row_sums.shape[0] != N or scale.shape[0] != N:
        raise ValueError(f"{fn}: w_row_sums and {scale_name} need {N} entries (one per row of w_q), "
                         f"got {w_row_sums.shape[0]} and {scale.shape[0]}")
    if bias is not None:
        bias = _checked("bias", bias, np.float32, 1, fn)
        if bias.shape[0] != N:
            raise ValueError(f"{fn}: bias needs {N} entries, got {bias.shape[0]}")
    if K > MAX_IN_FEATURES:
        raise ValueError(f"{fn}: at most {MAX_IN_FEATURES} input features fit int32 sums, got {K}")
    return w_q, w_row_sums, scale, bias


def _panels(n, k):
    """The packed shape of an (n, k) weight: panels of 8 columns, groups of 4 k, 8 x 4 bytes each."""
    return (n + 7) // 8, (k + 3) // 4, 8, 4


def pack_int8_weight(w_q):
    """``packed[p, g, c, j] = w_q[8 p + c, 4 g + j]``, zero past the end (see ``_int8.pyx``)."""
    w_q = _checked("w_q", w_q, np.int8, 2, "pack_int8_weight")
    (N, K), (P, G, _, _) = w_q.shape, _panels(*w_q.shape)
    padded = np.zeros((P * 8, G * 4), np.int8)
    padded[:N, :K] = w_q
    return np.ascontiguousarray(padded.reshape(P, 8, G, 4).transpose(0, 2, 1, 3))


def _unpacked(fn, w_packed, N, x):
    """The (N, K) weight that ``pack_int8_weight`` turned into ``w_packed`` (K from ``x``)."""
    w_packed = _checked("w_packed", w_packed, np.int8, 4, fn)
    K, want = x.shape[1], _panels(N, x.shape[1])
    if w_packed.shape != want:
        raise ValueError(f"{fn}: w_packed has shape {w_packed.shape}, but pack_int8_weight of a ({N}, {K}) "
                         f"weight (N from w_row_sums, K from x of shape {x.shape}) has shape {want}")
    P, G = want[:2]
    return w_packed.transpose(0, 2, 1, 3).reshape(P * 8, G * 4)[:N, :K]


def int8_linear(x_q, x_zero_point, w_q, w_row_sums, multiplier, bias=None, out_scale=None, out_zero_point=0):
    """``multiplier[n] * (x_q @ w_q.T - x_zero_point * w_row_sums)[m, n] + bias[n]`` (see ``_int8.pyx``)."""
    x_q = _checked("x_q", x_q, np.uint8, 2)
    w_q, w_row_sums, multiplier, bias = _checked_weights("int8_linear", "x_q", x_q, w_q, w_row_sums,
                                                         "multiplier", multiplier, bias)
    x_zero_point = checks.integer("int8_linear", "x_zero_point", x_zero_point, 0, 255)
    out_zero_point = checks.integer("int8_linear", "out_zero_point", out_zero_point, 0, 255)
    if out_scale is not None:
        out_scale = checks.float32_number("int8_linear", "out_scale", out_scale, positive=True)
    # int32 accumulation of u8 x s8 products (exact: K <= MAX_IN_FEATURES)
    acc = x_q.astype(np.int32) @ w_q.astype(np.int32).T
    # the activations' zero point, folded in through the weight rows' sums
    acc -= np.int32(x_zero_point) * w_row_sums[None, :]
    # epilogue: scale back to real numbers in float32, add the bias
    v = acc.astype(np.float32) * multiplier[None, :]
    if bias is not None:
        v = v + bias[None, :]
    if out_scale is None:
        return np.ascontiguousarray(v, dtype=np.float32)
    # requantization to the next layer's uint8 codes
    q = np.rint(v / np.float32(out_scale)) + np.float32(out_zero_point)
    return np.clip(q, 0, 255).astype(np.uint8)


def quantize_u8(x, scale, zero_point):
    """uint8 codes ``clamp(rint(x * (1 / scale)) + zero_point, 0, 255)`` of a float32 array (any shape)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise TypeError(f"quantize_u8: x must be a float32 numpy.ndarray, got "
                        f"{x.dtype if isinstance(x, np.ndarray) else type(x).__name__}")
    scale = checks.float32_number("quantize_u8", "scale", scale, positive=True)
    zero_point = checks.integer("quantize_u8", "zero_point", zero_point, 0, 255)
    q = np.rint(x * (np.float32(1.0) / scale)) + np.float32(zero_point)
    q = np.where(q >= 255, np.float32(255), np.where(q >= 0, q, np.float32(0)))   # NaN -> 0
    return q.astype(np.uint8)


_EPS = np.float32(np.finfo(np.float32).eps)


def dynamic_qparams(lo, hi, reduce_range=False):
    """Affine ``(scale, zero_point)`` for codes 0..255 (0..127 with ``reduce_range``), float32 steps (``_int8.pyx``)."""
    lo, hi = (checks.float32_number("dynamic_qparams", "lo", lo),
              checks.float32_number("dynamic_qparams", "hi", hi))
    qmax = np.float32(127 if checks.flag("dynamic_qparams", "reduce_range", reduce_range) else 255)
    lo, hi = min(lo, np.float32(0)), max(hi, np.float32(0))
    scale = max((hi - lo) / qmax, _EPS)
    zero_point = -np.rint(lo / scale)
    return float(scale), int(min(max(zero_point, 0), qmax))


def quantized_linear(x, w_packed, w_row_sums, w_scale, bias=None, x_scale=None, x_zero_point=0, relu=False,
                     reduce_range=False):
    """A quantized Linear on float32 input: quantize, u8 x s8 GEMM, epilogue (see ``_int8.pyx``).

    ``w_packed`` is ``pack_int8_weight(w_q)``.
    """
    name = "quantized_linear"
    x = _checked("x", x, np.float32, 2, name)
    w_row_sums = _checked("w_row_sums", w_row_sums, np.int32, 1, name)
    w_q = _unpacked(name, w_packed, w_row_sums.shape[0], x)
    w_q, w_row_sums, w_scale, bias = _checked_weights(name, "x", x, w_q, w_row_sums, "w_scale", w_scale, bias)
    M, N = x.shape[0], w_q.shape[0]
    relu = checks.flag(name, "relu", relu)
    reduce_range = checks.flag(name, "reduce_range", reduce_range)
    x_zero_point = checks.integer(name, "x_zero_point", x_zero_point, 0, 255)
    if reduce_range and x_scale is not None:
        raise ValueError(f"{name}: reduce_range applies to dynamic quantization (x_scale=None) only")
    if x_scale is None:
        # dynamic: this batch's own range (always containing 0)
        scale, zero_point = 1.0, 0
        if x.size:
            if not np.isfinite(x).all():
                raise ValueError(f"{name}: dynamic quantization needs a finite input, got NaN or inf")
            scale, zero_point = dynamic_qparams(x.min(), x.max(), reduce_range)
            if scale == np.inf:
                raise ValueError(f"{name}: dynamic quantization needs an input range max(x, 0) - min(x, 0) "
                                 f"within float32, got min {float(x.min())!r} and max {float(x.max())!r}, "
                                 f"whose scale overflows to inf")
    else:
        scale, zero_point = checks.float32_number(name, "x_scale", x_scale, positive=True), x_zero_point
    if M == 0 or N == 0:
        return np.empty((M, N), np.float32)
    x_q = quantize_u8(x, scale, zero_point)
    if reduce_range:   # 7-bit codes
        x_q = np.minimum(x_q, np.uint8(127))
    # the multipliers s_x * s_w[n], in float32
    multiplier = np.float32(scale) * w_scale
    out = int8_linear(x_q, zero_point, w_q, w_row_sums, multiplier, bias)
    if relu:
        out[out < 0] = 0      # NaN passes through, as in nn.ReLU
    return out
