"""Softmax-theme kernels: compiled (``_softmax``) against the twins, PyTorch and finite differences."""
from fractions import Fraction

import numpy as np
import pytest
from helpers import central_difference, same_bytes_across_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlite._kernels import _softmax, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
REDUCTIONS = ["none", "mean", "sum"]
rows_st = st.sampled_from([0, 1, 2, 5, 9, 300])
cols_st = st.sampled_from([1, 2, 3, 7, 16, 33])


def make(rng, shape, dtype, layout, scale=3.0):
    if layout == "t":
        return (rng.standard_normal(shape[::-1]) * scale).astype(dtype).T
    if layout == "s":
        return (rng.standard_normal((shape[0], 2 * shape[1])) * scale).astype(dtype)[:, ::2]
    return (rng.standard_normal(shape) * scale).astype(dtype)


def ce_case(rng, n, c, dtype, with_weight, ignore_some):
    logits = make(rng, (n, c), dtype, "c")
    target = rng.integers(0, c, size=n)
    if ignore_some and n:
        target[::3] = -100
    weight = (rng.random(c) + 0.5).astype(dtype) if with_weight else None
    return logits, target, weight


# -------------------------------------------------------------- vs the twin -----

@settings(max_examples=25, deadline=None)
@given(rows=rows_st, cols=cols_st, layout=st.sampled_from(["c", "t", "s"]), dtype=st.sampled_from(DTYPES))
def test_softmax_kernels_match_twin(rows, cols, layout, dtype):
    rng = np.random.default_rng(rows * 100 + cols)
    x = make(rng, (rows, cols), dtype, layout)
    g = make(rng, (rows, cols), dtype, layout)
    for fwd, bwd in (("softmax_forward", "softmax_backward"),
                     ("log_softmax_forward", "log_softmax_backward")):
        out = getattr(_softmax, fwd)(x)
        assert out.shape == (rows, cols) and out.dtype == dtype and out.flags.c_contiguous
        np.testing.assert_allclose(out, getattr(reference, fwd)(x), **TOL[dtype], err_msg=fwd)
        dx = getattr(_softmax, bwd)(g, out)
        assert dx.shape == (rows, cols) and dx.dtype == dtype and dx.flags.c_contiguous
        np.testing.assert_allclose(dx, getattr(reference, bwd)(g, out), **TOL[dtype], err_msg=bwd)
    if rows:
        np.testing.assert_allclose(_softmax.softmax_forward(x).sum(axis=1), 1, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(n=rows_st, c=cols_st, with_weight=st.booleans(), ignore_some=st.booleans(),
       label_smoothing=st.sampled_from([0.0, 0.1, 1.0]), reduction=st.sampled_from(REDUCTIONS),
       dtype=st.sampled_from(DTYPES))
def test_cross_entropy_matches_twin(n, c, with_weight, ignore_some, label_smoothing, reduction, dtype):
    rng = np.random.default_rng(n * 100 + c)
    logits, target, weight = ce_case(rng, n, c, dtype, with_weight, ignore_some)
    args = (logits, target, weight, -100, label_smoothing, reduction)
    loss, lse = _softmax.cross_entropy_forward(*args)
    loss_ref, lse_ref = reference.cross_entropy_forward(*args)
    assert loss.dtype == dtype and lse.dtype == np.float64 and lse.shape == (n,)
    assert loss.shape == ((n,) if reduction == "none" else ())
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == np.float32 else TOL[dtype]
    np.testing.assert_allclose(lse, lse_ref, **tol)
    np.testing.assert_allclose(loss, loss_ref, **tol)    # nan == nan when every target is ignored
    grad_loss = np.asarray(rng.standard_normal(loss.shape), dtype=dtype)
    dx = _softmax.cross_entropy_backward(grad_loss, logits, target, weight, lse, -100,
                                         label_smoothing, reduction)
    assert dx.shape == (n, c) and dx.dtype == dtype and dx.flags.c_contiguous
    np.testing.assert_allclose(dx, reference.cross_entropy_backward(
        grad_loss, logits, target, weight, lse, -100, label_smoothing, reduction), **tol)


def test_non_contiguous_cross_entropy_inputs(rng):
    logits = rng.standard_normal((6, 10))[:, ::2]
    target = rng.integers(0, 5, size=12)[::2]
    weight = rng.random(10)[::2] + 0.5
    loss, lse = _softmax.cross_entropy_forward(logits, target, weight, -100, 0.1, "none")
    loss_ref, lse_ref = reference.cross_entropy_forward(logits, target, weight, -100, 0.1, "none")
    np.testing.assert_allclose(loss, loss_ref, **TOL[np.float64])
    grad = rng.standard_normal(12)[::2]
    np.testing.assert_allclose(
        _softmax.cross_entropy_backward(grad, logits, target, weight, lse, -100, 0.1, "none"),
        reference.cross_entropy_backward(grad, logits, target, weight, lse, -100, 0.1, "none"),
        **TOL[np.float64])


# ------------------------------------------------------------ -inf, +-1e4 -----

@pytest.mark.parametrize("dtype", DTYPES)
def test_infinities_and_large_logits(dtype):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf] * 3, [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype)
    s = _softmax.softmax_forward(x)
    ls = _softmax.log_softmax_forward(x)
    assert s[0, 1] == 0 and ls[0, 1] == -np.inf
    assert np.isnan(s[1]).all() and np.isnan(ls[1]).all()     # an all -inf row is nan, as in torch
    assert np.isfinite(s[2:]).all() and np.isfinite(ls[2:]).all()
    np.testing.assert_allclose(s[2], [1, 0, 0])
    np.testing.assert_allclose(s[3], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(ls[2], [0, -2e4, -1e4])
    loss, lse = _softmax.cross_entropy_forward(x[2:], np.array([1, 0]), None, -100, 0.0, "none")
    assert np.isfinite(loss).all() and np.isfinite(lse).all()
    np.testing.assert_allclose(loss, [2e4, np.log(3)], rtol=1e-6)


def test_infinities_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf] * 3, [1e4, -1e4, 0.0]])
    # nan where torch has nan, 0 / -inf exactly where torch has them
    np.testing.assert_allclose(_softmax.softmax_forward(x), torch.softmax(torch.tensor(x), 1).numpy(),
                               rtol=1e-15, atol=0)
    np.testing.assert_allclose(_softmax.log_softmax_forward(x),
                               torch.log_softmax(torch.tensor(x), 1).numpy(), rtol=1e-15, atol=0)


# ------------------------------------------------------------------ threads -----

@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bytes_for_1_2_4_threads(rng, dtype):
    x = make(rng, (700, 37), dtype, "c")
    g = make(rng, (700, 37), dtype, "c")
    same_bytes_across_threads(_softmax.softmax_forward, x)
    same_bytes_across_threads(_softmax.log_softmax_forward, x)
    same_bytes_across_threads(_softmax.softmax_backward, g, _softmax.softmax_forward(x))
    same_bytes_across_threads(_softmax.log_softmax_backward, g, _softmax.log_softmax_forward(x))
    logits, target, weight = ce_case(rng, 700, 37, dtype, True, True)
    for reduction in REDUCTIONS:
        args = (logits, target, weight, -100, 0.1, reduction)
        same_bytes_across_threads(_softmax.cross_entropy_forward, *args)
        loss, lse = _softmax.cross_entropy_forward(*args)
        grad = np.asarray(np.ones(loss.shape), dtype=dtype)
        same_bytes_across_threads(_softmax.cross_entropy_backward, grad, logits, target, weight, lse,
                                  -100, 0.1, reduction)


# -------------------------------------------------------------------- torch -----

def test_values_match_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((7, 9)) * 3
    g = rng.standard_normal(x.shape)
    for ours, theirs in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt, 1)
        yt.backward(torch.tensor(g))
        y = getattr(_softmax, ours + "_forward")(x)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(getattr(_softmax, ours + "_backward")(g, y), xt.grad.numpy(),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("with_weight", [False, True])
def test_cross_entropy_matches_torch(rng, reduction, label_smoothing, with_weight):
    torch = pytest.importorskip("torch")
    logits, target, weight = ce_case(rng, 11, 5, np.float64, with_weight, False)
    target[::4] = 7   # a custom ignore_index
    xt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(
        xt, torch.tensor(target), weight=None if weight is None else torch.tensor(weight),
        ignore_index=7, label_smoothing=label_smoothing, reduction=reduction)
    grad = np.asarray(rng.standard_normal(tuple(lt.shape)))
    lt.backward(torch.tensor(grad))
    loss, lse = _softmax.cross_entropy_forward(logits, target, weight, 7, label_smoothing, reduction)
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(lse, torch.logsumexp(torch.tensor(logits), 1).numpy(), rtol=1e-12)
    dx = _softmax.cross_entropy_backward(grad, logits, target, weight, lse, 7, label_smoothing, reduction)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_all_targets_ignored_matches_torch():
    torch = pytest.importorskip("torch")
    logits = np.arange(6.0).reshape(2, 3)
    target = np.array([-100, -100])
    for reduction in REDUCTIONS:
        loss, lse = _softmax.cross_entropy_forward(logits, target, None, -100, 0.0, reduction)
        want = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target),
                                                 reduction=reduction).numpy()
        np.testing.assert_array_equal(loss, want)   # mean: 0 / 0 = nan in both
        dx = _softmax.cross_entropy_backward(np.asarray(np.ones(loss.shape)), logits, target, None,
                                             lse, -100, 0.0, reduction)
        assert not dx.any()


# ------------------------------------------------------- finite differences -----

def test_softmax_backward_matches_central_differences(rng):
    x = rng.standard_normal((4, 5))
    g = rng.standard_normal(x.shape)
    for fwd, bwd in ((_softmax.softmax_forward, _softmax.softmax_backward),
                     (_softmax.log_softmax_forward, _softmax.log_softmax_backward)):
        numeric = central_difference(lambda v: float(np.sum(g * fwd(v))), x)
        np.testing.assert_allclose(bwd(g, fwd(x)), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_backward_matches_central_differences(rng, reduction):
    logits, target, weight = ce_case(rng, 6, 4, np.float64, True, True)
    grad = np.asarray(rng.standard_normal((6,) if reduction == "none" else ()))
    loss = lambda v: float(np.sum(grad * _softmax.cross_entropy_forward(
        v, target, weight, -100, 0.2, reduction)[0]))
    numeric = central_difference(loss, logits)
    lse = _softmax.cross_entropy_forward(logits, target, weight, -100, 0.2, reduction)[1]
    analytic = _softmax.cross_entropy_backward(grad, logits, target, weight, lse, -100, 0.2, reduction)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------- bad input -----

def test_bad_inputs_raise_clear_errors():
    S = _softmax
    x64 = np.zeros((2, 3))
    x32 = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="int64"):
        S.softmax_forward(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"2-D.*\(2, 3, 4\)"):
        S.log_softmax_forward(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="float64.*float32"):
        S.softmax_backward(x64, x32)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        S.log_softmax_backward(x64, np.zeros((3, 2)))
    target = np.array([0, 2])
    with pytest.raises(IndexError, match="target 3.*C=3"):
        S.cross_entropy_forward(x64, np.array([0, 3]), None, -100, 0.0, "mean")
    with pytest.raises(IndexError, match="target -1.*C=3"):
        S.cross_entropy_forward(x64, np.array([-1, 0]), None, -100, 0.0, "mean")
    with pytest.raises(TypeError, match="int64.*float64"):
        S.cross_entropy_forward(x64, np.array([0.0, 1.0]), None, -100, 0.0, "mean")
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        S.cross_entropy_forward(x64, np.array([0, 1, 2]), None, -100, 0.0, "mean")
    with pytest.raises(ValueError, match=r"weight.*\(3,\).*\(2,\)"):
        S.cross_entropy_forward(x64, target, np.ones(2), -100, 0.0, "mean")
    with pytest.raises(TypeError, match="float64.*float32"):
        S.cross_entropy_forward(x64, target, np.ones(3, np.float32), -100, 0.0, "mean")
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        S.cross_entropy_forward(x64, target, None, -100, 0.0, "avg")
    with pytest.raises(ValueError, match="label_smoothing.*1.5"):
        S.cross_entropy_forward(x64, target, None, -100, 1.5, "mean")
    loss, lse = S.cross_entropy_forward(x64, target, None, -100, 0.0, "mean")
    with pytest.raises(ValueError, match=r"grad_loss.*\(\).*\(2,\)"):
        S.cross_entropy_backward(np.ones(2), x64, target, None, lse, -100, 0.0, "mean")
    with pytest.raises(ValueError, match=r"lse.*\(2,\).*\(3,\)"):
        S.cross_entropy_backward(np.ones(()), x64, target, None, np.ones(3), -100, 0.0, "mean")
    with pytest.raises(TypeError, match="float64.*float32"):
        S.cross_entropy_backward(np.ones((), np.float32), x64, target, None, lse, -100, 0.0, "mean")
    with pytest.raises(IndexError, match="target 3.*C=3"):   # the twin agrees
        reference.cross_entropy_forward(x64, np.array([0, 3]), None, -100, 0.0, "mean")


def test_float32_softmax_within_a_few_ulp_of_float64(rng):
    """float32 softmax uses nnlite's own vectorisable exp: compare with float64 applied
    to the same float32 shift x - max (that rounding is the input's, not the kernel's)."""
    x = (rng.standard_normal((64, 1000)) * 30).astype(np.float32)
    shifted = (x - x.max(axis=1, keepdims=True)).astype(np.float64)
    e = np.exp(shifted)
    exact = e / e.sum(axis=1, keepdims=True)
    y = _softmax.softmax_forward(x)
    ok = exact > 1e-30
    np.testing.assert_allclose(y[ok], exact[ok], rtol=4 * 2.0 ** -23)
    np.testing.assert_allclose(_softmax.log_softmax_forward(x),
                               shifted - np.log(e.sum(axis=1, keepdims=True)), rtol=1e-6, atol=1e-5)


# ------------------------------------------------------- scaled softmax -----

@settings(max_examples=40, deadline=None)
@given(rows=rows_st, cols=st.sampled_from([0, 1, 2, 3, 7, 16, 33]), period=st.sampled_from([None, 1, 3]),
       layout=st.sampled_from(["c", "t", "s"]), dtype=st.sampled_from(DTYPES))
def test_scaled_softmax_is_softmax_of_the_scaled_biased_scores(rows, cols, period, layout, dtype):
    """One pass computes softmax(x * scale + bias[i % period]); the same bits as the three steps
    (the scores round as NumPy rounds them), and the twin agrees, for any width (0 and 1 too)."""
    rng = np.random.default_rng(rows * 100 + cols)
    if period is not None and rows % period:
        period = 1
    x = make(rng, (rows, cols), dtype, layout)
    bias = None
    scores = x * dtype(0.3)
    if period is not None:
        bias = make(rng, (period, cols), dtype, "c")
        if cols > 1:                                           # (masking the only key would leave none)
            bias[:, ::4] = -np.inf                             # masked keys; column 1 stays open
        scores = (scores.reshape(rows // period, period, cols) + bias).reshape(rows, cols)
    out = _softmax.scaled_softmax_forward(x, 0.3, bias)
    assert out.shape == (rows, cols) and out.dtype == dtype and out.flags.c_contiguous
    assert out.tobytes() == _softmax.softmax_forward(scores).tobytes()
    np.testing.assert_allclose(out, reference.scaled_softmax_forward(x, 0.3, bias), **TOL[dtype])
    same_bytes_across_threads(_softmax.scaled_softmax_forward, x, 0.3, bias)
    if rows and cols == 1:                                     # one key takes all the weight
        assert (out == 1).all()


def test_scaled_softmax_bad_inputs():
    x = np.ones((6, 4), np.float32)
    for kernel in (_softmax.scaled_softmax_forward, reference.scaled_softmax_forward):
        with pytest.raises(ValueError, match=r"bias must be \(period, 4\).*6 rows.*\(4, 4\)"):
            kernel(x, 0.5, np.zeros((4, 4), np.float32))
        with pytest.raises(ValueError, match=r"bias must be.*\(3, 5\)"):
            kernel(x, 0.5, np.zeros((3, 5), np.float32))
        with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
            kernel(x, 0.5, np.zeros((3, 4), np.float64))
        with pytest.raises(ValueError, match="2-D"):
            kernel(np.ones(4, np.float32), 0.5, None)
        with pytest.raises(TypeError, match="non-native|byte order"):
            kernel(x.astype(">f4"), 0.5, None)
    for scale in (None, "0.5", np.ones(1, np.float32), np.array(0.5), 1j):
        with pytest.raises(TypeError) as compiled:
            _softmax.scaled_softmax_forward(x, scale, None)
        with pytest.raises(TypeError) as twin:
            reference.scaled_softmax_forward(x, scale, None)
        assert str(compiled.value) == str(twin.value)
        assert str(compiled.value) == ("scaled_softmax_forward: scale must be a real number (int, float or "
                                       f"NumPy scalar), got {type(scale).__name__}")
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    for kernel in (_softmax.scaled_softmax_forward, reference.scaled_softmax_forward):
        half = kernel(x, 0.5, None).tobytes()
        for scale in (np.float32(0.5), np.float64(0.5), Fraction(1, 2)):   # any real number
            assert kernel(x, scale, None).tobytes() == half
        assert kernel(x, 1, None).tobytes() == kernel(x, 1.0, None).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_backward_with_a_scale_is_the_scaled_gradient(rng, dtype):
    """softmax_backward(g, y, scale) is softmax_backward(g, y) * scale, the same bits, as the twin has it."""
    x, g = make(rng, (37, 19), dtype, "s"), make(rng, (37, 19), dtype, "t")
    y = _softmax.softmax_forward(x)
    plain = _softmax.softmax_backward(g, y)
    scaled = _softmax.softmax_backward(g, y, 0.3)
    assert scaled.tobytes() == (plain * dtype(0.3)).tobytes()
    assert _softmax.softmax_backward(g, y, 1.0).tobytes() == plain.tobytes()
    np.testing.assert_allclose(scaled, reference.softmax_backward(g, y, 0.3), **TOL[dtype])
    same_bytes_across_threads(_softmax.softmax_backward, g, y, 0.3)
    for scale in (None, "0.3", np.ones(1, dtype)):
        with pytest.raises(TypeError) as compiled:
            _softmax.softmax_backward(g, y, scale)
        with pytest.raises(TypeError) as twin:
            reference.softmax_backward(g, y, scale)
        assert str(compiled.value) == str(twin.value)
        assert "softmax_backward: scale must be a real number" in str(compiled.value)


@pytest.mark.parametrize("module", [_softmax, reference], ids=["compiled", "twin"])
@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
def test_a_missing_second_operand_is_refused_by_name(module, name):
    grad = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    with pytest.raises(TypeError, match=rf"{name}: out must be a (numpy.ndarray|NumPy array), got NoneType"):
        getattr(module, name)(grad, None)


@pytest.mark.parametrize("module", [_softmax, reference], ids=["compiled", "twin"])
def test_rows_without_columns_return_at_once_however_many_rows(module):
    # 2**40 rows of no columns hold no bytes; a loop over the rows would run for hours
    x = np.empty((2 ** 40, 0), np.float32)
    assert module.softmax_forward(x).shape == x.shape
    assert module.log_softmax_forward(x).shape == x.shape
    assert module.softmax_backward(x, x).shape == x.shape
    assert module.log_softmax_backward(x, x).shape == x.shape
    assert module.scaled_softmax_forward(x, 0.5, None).shape == x.shape


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("module", [_softmax, reference], ids=["compiled", "twin"])
def test_cross_entropy_smoothing_with_an_infinite_class_weight(module, reduction):
    # sum_j w_j lp_j with w_0 = +-inf is -+inf (lp_0 < 0), not inf - inf
    logits = np.array([[0.5, -1, 0.2]], np.float32)
    weight = np.array([np.inf, 1, 1], np.float32)
    loss, _ = module.cross_entropy_forward(logits, np.array([1]), weight, -100, 0.1, reduction)
    assert np.all(loss == np.inf)
    logits = np.array([[0.3, 1.2], [-0.7, 0.1], [2.0, -1.0]], np.float32)
    weight = np.array([-np.inf, 1.2], np.float32)
    loss, _ = module.cross_entropy_forward(logits, np.array([1, -100, 1]), weight, -100, 0.1, reduction)
    assert np.all(loss[[0, 2]] == -np.inf) if reduction == "none" else loss == -np.inf


@pytest.mark.parametrize("module", [_softmax, reference], ids=["compiled", "twin"])
def test_a_wrong_rank_is_named_by_the_argument_alike(module):
    # the twins said "input" for x, and for a 3-D grad that out's shape differed
    x, rows = np.ones((2, 3, 4), np.float32), np.ones((3, 4), np.float32)
    for kernel in ("softmax_forward", "log_softmax_forward"):
        with pytest.raises(ValueError, match=rf"^{kernel}: expected 2-D \(rows, cols\) x, got shape \(2, 3, 4\)$"):
            getattr(module, kernel)(x)
    with pytest.raises(ValueError, match=r"^scaled_softmax_forward: expected 2-D \(rows, cols\) x"):
        module.scaled_softmax_forward(x, 1.0, None)
    for kernel in ("softmax_backward", "log_softmax_backward"):
        with pytest.raises(ValueError, match=rf"^{kernel}: expected 2-D \(rows, cols\) grad, got shape \(2, 3, 4\)$"):
            getattr(module, kernel)(x, rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("module", [_softmax, reference], ids=["compiled", "twin"])
def test_cross_entropy_smoothing_of_equal_logits_far_from_zero(module, with_weight, dtype):
    # Equal logits give every class lp = -log C, wherever they sit. Taken as
    # sum_j w_j x_j - lse sum_j w_j, the smoothing term cancels: a double holds 1e16 + log C
    # only to the nearest 2, and 1e30 to within 1e14, so the term came out as -8 and 0.
    weight = np.array([0.5, 1.0, 2.0, 1.5], dtype) if with_weight else None
    target = np.array([0, 2, 3])
    expected, _ = module.cross_entropy_forward(np.zeros((3, 4), dtype), target, weight, -100, 0.5, "none")
    for shift in (1e16, -1e16, 1e30):
        loss, _ = module.cross_entropy_forward(np.full((3, 4), shift, dtype), target, weight, -100, 0.5,
                                               "none")
        np.testing.assert_allclose(loss, expected, rtol=1e-6)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("module", [_softmax, reference], ids=["compiled", "twin"])
def test_cross_entropy_backward_of_ignored_rows(module, label_smoothing):
    # an ignored row's gradient is 0 * softmax (NaN where p is NaN, as in PyTorch), whatever
    # grad_loss holds
    logits = np.array([[0.2, -0.4, 1.0], [0.2, -0.4, 1.0], [0.5, 0.1, -2.0]], np.float32)
    lse = np.array([np.nan, 1.5, 1.2])
    grad = np.array([np.nan, np.nan, -1.0], np.float32)
    dx = module.cross_entropy_backward(grad, logits, np.array([-100, -100, 1]), None, lse, -100,
                                       label_smoothing, "none")
    assert np.isnan(dx[0]).all()
    assert (dx[1] == 0).all() and not np.signbit(dx[1]).any()
    assert np.isfinite(dx[2]).all()
