"""Packed attention kernels: compiled (``_attention``) against the twin, the product and softmax kernels
they are made of, thread counts, layouts, bad input, finite differences and PyTorch."""
import re

import numpy as np
import pytest
from helpers import central_difference, packed_heads, same_bytes_across_threads, torch_or_skip

import nnlite as nl
from nnlite._kernels import K, _attention, _gemm, _softmax, checks, compiled_kernels, reference
from nnlite._kernels.reference import _attention as twin
from nnlite._kernels.table import KERNELS

NAMES = ["packed_attention_backward", "packed_attention_forward"]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
MASKS = [None, "causal", "random"]
MODULES = pytest.mark.parametrize("module", [_attention, twin], ids=["compiled", "twin"])


def causal(length, dtype):
    """0 on and below the diagonal, -inf above it: a position sees itself and the ones before."""
    return np.triu(np.full((length, length), -np.inf, dtype), 1)


def case(rng, N, L, H, d, dtype, mask):
    """qkv (N, L, 3 H d), a bias of the kind ``mask`` names, and the forward's scale."""
    qkv = rng.standard_normal((N, L, 3 * H * d)).astype(dtype)
    bias = {None: None, "causal": causal(L, dtype),
            "random": rng.standard_normal((L, L)).astype(dtype)}[mask]
    return qkv, bias, 1 / np.sqrt(max(d, 1))


# ------------------------------------------- the same steps by the compiled kernels ---

def _merged(x, H):
    N, L, width = x.shape
    return x.reshape(N, L, H, width // H).transpose(0, 2, 1, 3)


def composed_forward(qkv, H, scale, bias):
    """K.bmm and K.scaled_softmax_forward of the compiled backend, as the twin runs its own."""
    N, L, width = qkv.shape
    q, k, v = packed_heads(qkv, H)
    scores = _gemm.bmm(q, k, trans_b=True)
    weights = _softmax.scaled_softmax_forward(scores.reshape(N * H * L, L), scale,
                                              bias if L else None).reshape(scores.shape)
    out = np.empty((N, L, width // 3), qkv.dtype)
    _gemm.bmm(weights, v, out=_merged(out, H))
    return out, weights


def composed_backward(grad, qkv, weights, H, scale):
    """K.bmm and K.softmax_backward of the compiled backend, as the twin runs its own."""
    N, L, _ = qkv.shape
    q, k, v = packed_heads(qkv, H)
    d_out = _merged(grad, H)
    d_weights = _gemm.bmm(d_out, v, trans_b=True)
    d_scores = _softmax.softmax_backward(d_weights.reshape(N * H * L, L),
                                         weights.reshape(N * H * L, L), scale).reshape(weights.shape)
    d_qkv = np.empty(qkv.shape, qkv.dtype)
    dq, dk, dv = packed_heads(d_qkv, H)
    _gemm.bmm(weights, d_out, trans_a=True, out=dv)
    _gemm.bmm(d_scores, k, out=dq)
    _gemm.bmm(d_scores, q, trans_a=True, out=dk)
    return d_qkv


# ------------------------------------------------------------------- the table -----

def test_attention_kernels_are_rows_of_the_table():
    assert sorted(_attention.__all__) == sorted(twin.__all__) == NAMES
    rows = {name: (where, module) for name, where, module in KERNELS}
    for name in NAMES:
        assert rows[name] == ("_attention", twin)
        assert name in compiled_kernels()
        assert getattr(reference, name) is getattr(twin, name)
        nl.set_backend("cython")          # the autouse backend fixture puts the backend back
        assert getattr(K, name) is getattr(_attention, name)
        nl.set_backend("reference")
        assert getattr(K, name) is getattr(twin, name)


# ------------------------------------------------------------------- vs the twin -----

@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, L, H, d", [(0, 3, 2, 2), (2, 0, 2, 2), (2, 3, 2, 0), (2, 1, 2, 3), (3, 7, 1, 5),
                                        (3, 7, 3, 5), (4, 33, 2, 8)])
def test_compiled_equals_twin(rng, N, L, H, d, dtype, mask):
    # L = 0 runs with bias None and with a (0, 0) bias; d = 0 is a qkv of width 0
    qkv, bias, scale = case(rng, N, L, H, d, dtype, mask)
    out, weights = _attention.packed_attention_forward(qkv, H, scale, bias, True)
    out_ref, weights_ref = twin.packed_attention_forward(qkv, H, scale, bias, True)
    assert out.shape == (N, L, H * d) and out.dtype == dtype and out.flags.c_contiguous
    assert weights.shape == (N, H, L, L) and weights.dtype == dtype and weights.flags.c_contiguous
    assert out_ref.shape == out.shape and weights_ref.shape == weights.shape
    assert not np.isnan(out).any() and not np.isnan(weights).any()
    np.testing.assert_allclose(out, out_ref, **TOL[dtype])
    np.testing.assert_allclose(weights, weights_ref, **TOL[dtype])
    np.testing.assert_allclose(weights.sum(axis=-1), np.ones((N, H, L)), rtol=1e-5)
    if mask == "causal":
        assert not np.triu(weights, 1).any()
    grad = rng.standard_normal(out.shape).astype(dtype)
    d_qkv = _attention.packed_attention_backward(grad, qkv, weights, H, scale)
    assert d_qkv.shape == qkv.shape and d_qkv.dtype == dtype and d_qkv.flags.c_contiguous
    assert not np.isnan(d_qkv).any()
    np.testing.assert_allclose(d_qkv, twin.packed_attention_backward(grad, qkv, weights, H, scale),
                               **TOL[dtype])


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, L, H, d", [(3, 7, 3, 5), (5, 40, 4, 16), (2, 0, 2, 2)])
def test_without_saved_weights_the_output_is_the_same(rng, module, dtype, N, L, H, d):
    qkv, bias, scale = case(rng, N, L, H, d, dtype, "causal")
    out, weights = module.packed_attention_forward(qkv, H, scale, bias, False)
    assert weights is None
    saved, weights = module.packed_attention_forward(qkv, H, scale, bias, True)
    assert weights.shape == (N, H, L, L)
    assert out.shape == saved.shape and out.dtype == dtype
    assert out.tobytes() == saved.tobytes()


# ------------------------------------ the product and softmax kernels, bit for bit -----

@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, L, H, d", [(2, 3, 2, 2), (3, 7, 3, 5), (4, 33, 2, 8), (2, 64, 2, 64),
                                        (2, 100, 3, 32)])
def test_the_kernel_is_the_product_and_softmax_kernels_bit_for_bit(rng, N, L, H, d, dtype, mask):
    # heads this size are below K.bmm's split size: K.bmm makes one serial BLAS call per head,
    # as the attention kernel does, and the softmax rows are the softmax kernels' own
    assert L * L * d < 2 ** 21
    qkv, bias, scale = case(rng, N, L, H, d, dtype, mask)
    out, weights = _attention.packed_attention_forward(qkv, H, scale, bias, True)
    out_ref, weights_ref = composed_forward(qkv, H, scale, bias)
    np.testing.assert_array_equal(weights, weights_ref)
    np.testing.assert_array_equal(out, out_ref)
    assert out.tobytes() == out_ref.tobytes() and weights.tobytes() == weights_ref.tobytes()
    grad = rng.standard_normal(out.shape).astype(dtype)
    d_qkv = _attention.packed_attention_backward(grad, qkv, weights, H, scale)
    assert d_qkv.tobytes() == composed_backward(grad, qkv, weights, H, scale).tobytes()


# --------------------------------------------------------------------- threads -----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, L, H, d", [(5, 40, 4, 16), (3, 24, 3, 8)])
def test_same_bytes_on_1_2_4_threads(rng, restore_threads, dtype, N, L, H, d):
    # 20 heads, and 9 (more than the threads, and odd)
    qkv, bias, scale = case(rng, N, L, H, d, dtype, "causal")
    for save_weights in (True, False):
        same_bytes_across_threads(_attention.packed_attention_forward, qkv, H, scale, bias, save_weights)
        same_bytes_across_threads(_attention.packed_attention_forward, qkv, H, scale, None, save_weights)
    out, weights = _attention.packed_attention_forward(qkv, H, scale, bias, True)
    grad = rng.standard_normal(out.shape).astype(dtype)
    same_bytes_across_threads(_attention.packed_attention_backward, grad, qkv, weights, H, scale)


def test_fewer_heads_than_threads(rng, restore_threads):
    """One head on up to 8 threads: the same bytes, with or without weights kept (the threads
    are capped at the heads, so the no-weights path keeps one (L, L) block, not one a thread)."""
    qkv, bias, scale = case(rng, 1, 50, 1, 8, np.float32, "causal")
    for save_weights in (True, False):
        same_bytes_across_threads(_attention.packed_attention_forward, qkv, 1, scale, bias, save_weights,
                                  counts=(1, 2, 8))


@MODULES
def test_no_work_for_heads_without_positions_or_width(module):
    """Heads of width 0 (an empty qkv) or sequences of length 0 give empty results at once,
    however many heads are named: no loop over heads that have nothing to compute."""
    out, weights = module.packed_attention_forward(np.zeros((1, 1, 0), np.float32), 2 ** 40, 1.0, None, False)
    assert out.shape == (1, 1, 0) and weights is None
    out, weights = module.packed_attention_forward(np.zeros((1, 0, 0), np.float32), 2 ** 40, 1.0, None, True)
    assert out.shape == (1, 0, 0) and weights.shape == (1, 2 ** 40, 0, 0)
    d_qkv = module.packed_attention_backward(np.zeros((1, 1, 0)), np.zeros((1, 1, 0)), np.zeros((1, 2 ** 20, 1, 1)),
                                             2 ** 20, 1.0)
    assert d_qkv.shape == (1, 1, 0)


@MODULES
def test_nan_and_infinity_propagate_as_in_the_product_and_softmax_kernels(module):
    """A NaN in one query makes that query's row NaN and nothing else; a row of scores with an
    infinite key gives NaN weights (inf - inf), as the composed kernels give."""
    qkv = np.random.default_rng(1).standard_normal((1, 4, 6))
    qkv[0, 1, 0] = np.nan                      # query 1 of the one head
    with np.errstate(invalid="ignore"):        # NumPy's products (the twin's) warn of the NaN
        out, weights = module.packed_attention_forward(qkv, 1, 0.5, causal(4, np.float64), True)
    want_out, want_weights = composed_forward(qkv, 1, 0.5, causal(4, np.float64))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want_out))
    np.testing.assert_array_equal(np.isnan(weights), np.isnan(want_weights))
    assert np.isnan(out[0, 1]).all() and not np.isnan(out[0, [0, 2, 3]]).any()
    qkv[0, 1, 0] = 0.0
    qkv[0, 2, 2] = np.inf                      # key 2
    with np.errstate(invalid="ignore"):
        out, weights = module.packed_attention_forward(qkv, 1, 0.5, None, True)
    np.testing.assert_array_equal(np.isnan(weights), np.isnan(composed_forward(qkv, 1, 0.5, None)[1]))
    assert np.isnan(weights).any()


# ---------------------------------------------------------------------- layouts -----

def strided(a):
    """A view of ``a``'s values that is every other element of a bigger array along the last axis."""
    bigger = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    bigger[..., ::2] = a
    view = bigger[..., ::2]
    assert not view.flags.c_contiguous or view.size <= 1
    return view


@MODULES
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_and_fortran_inputs_read_as_their_contiguous_copies(rng, module, dtype):
    N, L, H, d = 3, 7, 3, 5
    qkv, bias, scale = case(rng, N, L, H, d, dtype, "random")
    out, weights = module.packed_attention_forward(qkv, H, scale, bias, True)
    grad = rng.standard_normal(out.shape).astype(dtype)
    d_qkv = module.packed_attention_backward(grad, qkv, weights, H, scale)
    for layout in (strided, np.asfortranarray):
        q, b, g, w = layout(qkv), layout(bias), layout(grad), layout(weights)
        assert not (q.flags.c_contiguous or b.flags.c_contiguous or g.flags.c_contiguous
                    or w.flags.c_contiguous)
        got_out, got_weights = module.packed_attention_forward(q, H, scale, b, True)
        got_d_qkv = module.packed_attention_backward(g, q, w, H, scale)
        if module is _attention:     # the compiled kernel reads a contiguous copy
            assert got_out.tobytes() == out.tobytes() and got_weights.tobytes() == weights.tobytes()
            assert got_d_qkv.tobytes() == d_qkv.tobytes()
        else:                        # NumPy's products may round another layout differently
            np.testing.assert_allclose(got_out, out, **TOL[dtype])
            np.testing.assert_allclose(got_weights, weights, **TOL[dtype])
            np.testing.assert_allclose(got_d_qkv, d_qkv, **TOL[dtype])
        assert got_out.flags.c_contiguous and got_d_qkv.flags.c_contiguous


# -------------------------------------------------------------------- bad input -----

_QKV = np.zeros((2, 3, 12), np.float32)        # N=2, L=3, H=2, d=2, E=4
_BIAS = np.zeros((3, 3), np.float32)
_GRAD = np.zeros((2, 3, 4), np.float32)
_WEIGHTS = np.full((2, 2, 3, 3), 1 / 3, np.float32)
_FWD, _BWD = "packed_attention_forward", "packed_attention_backward"
_SHAPE = "qkv must be (batch, sequence, 3 * embed_dim) with embed_dim divisible by num_heads={}, got shape {}"
_HEADS = "num_heads must be a positive int, got {}"
_SCALE = "scale must be a real number (int, float or NumPy scalar), got {}"
_BAD = [
    # (kernel, arguments, exception, message after "<kernel>: ")
    (_FWD, (_QKV[0], 2, 0.5, None, True), ValueError, _SHAPE.format(2, (3, 12))),
    (_BWD, (_GRAD, _QKV[..., None], _WEIGHTS, 2, 0.5), ValueError, _SHAPE.format(2, (2, 3, 12, 1))),
    (_FWD, (_QKV, 3, 0.5, None, True), ValueError, _SHAPE.format(3, (2, 3, 12))),
    (_FWD, (_QKV[..., :10], 2, 0.5, None, True), ValueError, _SHAPE.format(2, (2, 3, 10))),
    (_FWD, (_QKV, 0, 0.5, None, True), ValueError, _HEADS.format(0)),
    (_BWD, (_GRAD, _QKV, _WEIGHTS, -1, 0.5), ValueError, _HEADS.format(-1)),
    (_FWD, (_QKV, 2.0, 0.5, None, True), TypeError, _HEADS.format("float")),
    (_BWD, (_GRAD, _QKV, _WEIGHTS, True, 0.5), TypeError, _HEADS.format("bool")),
    (_FWD, (_QKV, 2, 0.5, _BIAS[:, :2], True), ValueError,
     "bias must have shape (3, 3) for qkv (2, 3, 12) and num_heads=2, got (3, 2)"),
    (_FWD, (_QKV, 2, 0.5, _BIAS[None], True), ValueError,
     "bias must have shape (3, 3) for qkv (2, 3, 12) and num_heads=2, got (1, 3, 3)"),
    (_BWD, (_GRAD[..., :3], _QKV, _WEIGHTS, 2, 0.5), ValueError,
     "grad must have shape (2, 3, 4) for qkv (2, 3, 12) and num_heads=2, got (2, 3, 3)"),
    (_BWD, (_GRAD, _QKV, _WEIGHTS[:, :1], 2, 0.5), ValueError,
     "weights must have shape (2, 2, 3, 3) for qkv (2, 3, 12) and num_heads=2, got (2, 1, 3, 3)"),
    (_BWD, (_GRAD, _QKV, _WEIGHTS[0], 2, 0.5), ValueError,
     "weights must have shape (2, 2, 3, 3) for qkv (2, 3, 12) and num_heads=2, got (2, 3, 3)"),
    (_FWD, (_QKV, 2, 0.5, _BIAS.astype(np.float64), True), TypeError,
     "all float operands must share one dtype; qkv is float32 but bias is float64"),
    (_BWD, (_GRAD.astype(np.float64), _QKV, _WEIGHTS, 2, 0.5), TypeError,
     "all float operands must share one dtype; qkv is float32 but grad is float64"),
    (_BWD, (_GRAD, _QKV, _WEIGHTS.astype(np.float64), 2, 0.5), TypeError,
     "all float operands must share one dtype; qkv is float32 but weights is float64"),
    (_FWD, (_QKV.astype(np.int64), 2, 0.5, None, True), TypeError, "qkv must be float32 or float64, got int64"),
    (_BWD, (_GRAD.astype(np.int32), _QKV, _WEIGHTS, 2, 0.5), TypeError,
     "grad must be float32 or float64, got int32"),
    (_FWD, (_QKV.tolist(), 2, 0.5, None, True), TypeError, "qkv must be a NumPy array, got list"),
    (_BWD, (_GRAD, _QKV, _WEIGHTS.tolist(), 2, 0.5), TypeError, "weights must be a NumPy array, got list"),
    (_FWD, (_QKV, 2, "0.5", None, True), TypeError, _SCALE.format("str")),
    (_FWD, (_QKV, 2, np.ones(1, np.float32), None, True), TypeError, _SCALE.format("ndarray")),
    (_BWD, (_GRAD, _QKV, _WEIGHTS, 2, "0.5"), TypeError, _SCALE.format("str")),
    (_BWD, (_GRAD, _QKV, _WEIGHTS, 2, np.ones(1)), TypeError, _SCALE.format("ndarray")),
    # a missing array is named, never read as a NULL pointer
    (_FWD, (None, 2, 0.5, _BIAS, True), TypeError, "qkv must be a NumPy array, got NoneType"),
    (_BWD, (None, _QKV, _WEIGHTS, 2, 0.5), TypeError, "grad must be a NumPy array, got NoneType"),
    (_BWD, (_GRAD, _QKV, None, 2, 0.5), TypeError, "weights must be a NumPy array, got NoneType"),
    # bytes in the other order: the same dtype kind, garbage to a C loop
    (_FWD, (_QKV.astype(">f4"), 2, 0.5, None, True), TypeError,
     "qkv has non-native byte order (dtype '>f4'); convert it first, e.g. a.astype(a.dtype.newbyteorder('='))"),
    (_BWD, (_GRAD, _QKV, _WEIGHTS.astype(">f4"), 2, 0.5), TypeError,
     "weights has non-native byte order (dtype '>f4'); convert it first, e.g. a.astype(a.dtype.newbyteorder('='))"),
]


@pytest.mark.parametrize("kernel, args, exc, message", _BAD, ids=[f"{k[7:]}-{m[:40]}" for k, _, _, m in _BAD])
def test_bad_inputs_raise_the_same_error_from_both_backends(kernel, args, exc, message):
    pattern = "^" + re.escape(f"{kernel}: {message}") + "$"
    with pytest.raises(exc, match=pattern) as compiled:
        getattr(_attention, kernel)(*args)
    with pytest.raises(exc, match=pattern) as reference_error:
        getattr(twin, kernel)(*args)
    assert str(compiled.value) == str(reference_error.value)


def test_the_shared_check_reads_the_heads_off_the_shape():
    assert checks.attention_operands(_FWD, _QKV, 2, _BIAS) == (np.float32, 2, 3, 2, 2)
    assert checks.attention_operands(_BWD, _QKV, 1, None, np.zeros((2, 3, 4), np.float32),
                                     np.zeros((2, 1, 3, 3), np.float32), backward=True) == (np.float32, 2, 3, 1, 4)
    for scale in (np.float32(0.5), np.float64(0.5), 1):     # any real number is a scale
        out, _ = _attention.packed_attention_forward(_QKV, 2, scale, None, False)
        assert out.tobytes() == _attention.packed_attention_forward(_QKV, 2, float(scale), None, False)[0].tobytes()


# ---------------------------------------------------------- finite differences -----

@MODULES
@pytest.mark.parametrize("mask", [None, "causal"])
def test_backward_matches_central_differences(rng, module, mask):
    N, L, H, d = 2, 3, 2, 2
    qkv, bias, scale = case(rng, N, L, H, d, np.float64, mask)
    g = rng.standard_normal((N, L, H * d))
    loss = lambda x: float(np.sum(module.packed_attention_forward(x, H, scale, bias, False)[0] * g))  # noqa: E731
    numeric = central_difference(loss, qkv)
    _, weights = module.packed_attention_forward(qkv, H, scale, bias, True)
    analytic = module.packed_attention_backward(g, qkv, weights, H, scale)
    assert np.abs(numeric).max() > 1e-3                      # the check has something to check
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------ torch -----

@MODULES
@pytest.mark.parametrize("mask", [None, "causal"])
def test_matches_torch_scaled_dot_product_attention(rng, module, mask):
    torch = torch_or_skip()
    N, L, H, d = 2, 5, 3, 4
    qkv, bias, scale = case(rng, N, L, H, d, np.float64, mask)
    qkv_t = torch.tensor(qkv, requires_grad=True)
    q, k, v = (t.transpose(1, 2) for t in qkv_t.reshape(N, L, 3, H, d).unbind(2))   # (N, H, L, d)
    bias_t = None if bias is None else torch.tensor(bias)
    out_t = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias_t, scale=scale)
    out_t = out_t.transpose(1, 2).reshape(N, L, H * d)
    scores_t = q @ k.transpose(-1, -2) * scale + (0 if bias_t is None else bias_t)
    g = rng.standard_normal((N, L, H * d))
    out_t.backward(torch.tensor(g))
    out, weights = module.packed_attention_forward(qkv, H, scale, bias, True)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights, torch.softmax(scores_t, -1).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(module.packed_attention_backward(g, qkv, weights, H, scale),
                               qkv_t.grad.numpy(), rtol=1e-10, atol=1e-12)
