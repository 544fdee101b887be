"""Normalisation kernels: compiled == twin, both == torch.nn.functional, finite differences,
byte-identical results across thread counts, and clear errors."""
import numpy as np
import pytest
from helpers import same_bytes_across_threads, threads
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlite._kernels import _norm, reference

IMPLS = [pytest.param(_norm, id="compiled"), pytest.param(reference, id="twin")]
DTYPES = [np.float32, np.float64]
FEW = settings(max_examples=25, deadline=None)


def assert_close(got, expected, dtype):
    """Equal to rounding: NumPy sums pairwise, the kernels in fixed blocks."""
    if expected is None:
        assert got is None
        return
    assert got.dtype == dtype and got.shape == expected.shape
    tol = 2e-5 if dtype == np.float32 else 1e-11
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale)


def assert_all_close(got, expected, dtype):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert_close(a, b, dtype)


def strided(a):
    """The same values as ``a`` in a non-contiguous view (every other element of a wider array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
    wide[..., 1::2] = a
    view = wide[..., 1::2]
    assert not view.flags.c_contiguous or view.size <= 1
    return view


def maybe_strided(a, flag):
    return strided(a) if flag and a.ndim and a.shape[-1] > 1 else a


def optional(a, present):
    return a if present else None


# ------------------------------------------------------ compiled == twin -----

@FEW
@given(n=st.integers(1, 4), c=st.integers(0, 5), length=st.integers(0, 7),
       dtype=st.sampled_from(DTYPES), affine=st.booleans(), running=st.booleans(),
       training=st.booleans(), non_contiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_norm_compiled_equals_twin(n, c, length, dtype, affine, running, training,
                                         non_contiguous, seed):
    if training and n * length < 2:
        training = False
    if not training:
        running = True
    r = np.random.default_rng(seed)
    x = maybe_strided(r.standard_normal((n, c, length)).astype(dtype), non_contiguous)
    w, b = (r.standard_normal(c).astype(dtype) for _ in range(2))
    rm, rv = r.standard_normal(c).astype(dtype), (r.random(c) + 0.5).astype(dtype)
    outs, stats = [], []
    for impl in (_norm, reference):
        mean, var = rm.copy(), rv.copy()
        outs.append(impl.batch_norm_forward(x, optional(w, affine), optional(b, affine),
                                            optional(mean, running), optional(var, running),
                                            training, 0.1, 1e-5))
        stats.append((mean, var))
    assert_all_close(outs[0], outs[1], dtype)
    assert_all_close(stats[0], stats[1], dtype)
    grad = maybe_strided(r.standard_normal((n, c, length)).astype(dtype), non_contiguous)
    y, save_mean, save_invstd = outs[1]
    assert_all_close(
        _norm.batch_norm_backward(grad, x, optional(w, affine), save_mean, save_invstd, training),
        reference.batch_norm_backward(grad, x, optional(w, affine), save_mean, save_invstd,
                                      training), dtype)


# ------------------------------------------------- batch norm with a fused ReLU -----

@FEW
@given(n=st.integers(1, 4), c=st.integers(0, 5), length=st.integers(0, 7),
       dtype=st.sampled_from(DTYPES), affine=st.booleans(), training=st.booleans(),
       non_contiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_norm_relu_compiled_equals_twin(n, c, length, dtype, affine, training, non_contiguous, seed):
    if training and n * length < 2:
        training = False
    r = np.random.default_rng(seed)
    x = maybe_strided(r.standard_normal((n, c, length)).astype(dtype), non_contiguous)
    w, b = (optional(r.standard_normal(c).astype(dtype), affine) for _ in range(2))
    rm, rv = r.standard_normal(c).astype(dtype), (r.random(c) + 0.5).astype(dtype)
    outs = [impl.batch_norm_forward(x, w, b, rm.copy(), rv.copy(), training, 0.1, 1e-5, "relu")
            for impl in (_norm, reference)]
    assert_all_close(outs[0], outs[1], dtype)
    assert outs[0][3].shape == (4, c) and (outs[0][0] >= 0).all()
    grad = maybe_strided(r.standard_normal((n, c, length)).astype(dtype), non_contiguous)
    _, save_mean, save_invstd, terms = outs[0]   # both backwards mask with the same terms
    assert_all_close(_norm.batch_norm_backward(grad, x, w, save_mean, save_invstd, training, terms),
                     reference.batch_norm_backward(grad, x, w, save_mean, save_invstd, training, terms), dtype)


def _relu_kernels(impl):
    from nnlite._kernels import _elementwise
    return (_elementwise.relu_forward, _elementwise.relu_backward) if impl is _norm else \
        (reference.relu_forward, reference.relu_backward)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_relu_is_relu_of_batch_norm_bit_for_bit(impl, training, dtype, rng):
    """The fused kernels give the bytes of batch_norm followed by relu_forward / relu_backward,
    at the kink too: channels 0 and 1 hold -1, 1 and 0 about a mean of exactly 0, so some
    outputs are exactly 0 (-0 in channel 0, whose scale and shift are negative and -0); ReLU
    keeps -0, and relu_backward masks both zeros, as it masks every output <= 0."""
    relu_forward, relu_backward = _relu_kernels(impl)
    x = rng.standard_normal((9, 3, 41)).astype(dtype)
    x[:, :2] = np.array([-1.0, 1.0] * 20 + [0.0], dtype)
    w, b = np.array([-0.5, 1.5, 0.7], dtype), np.array([-0.0, 0.0, -0.2], dtype)
    rm, rv = np.array([0.0, 0.0, -0.1], dtype), np.array([1.0, 0.8, 1.3], dtype)
    if not training:
        x[2, 2, 5] = np.nan   # eval: a NaN stays one element's (training would spread it)
    stats_plain, stats_fused = (rm.copy(), rv.copy()), (rm.copy(), rv.copy())
    y, mean, invstd = impl.batch_norm_forward(x, w, b, *stats_plain, training, 0.1, 1e-5)
    fused = impl.batch_norm_forward(x, w, b, *stats_fused, training, 0.1, 1e-5, "relu")
    plain_out = relu_forward(y)
    assert fused[0].tobytes() == plain_out.tobytes()
    assert (fused[1].tobytes(), fused[2].tobytes()) == (mean.tobytes(), invstd.tobytes())
    assert [a.tobytes() for a in stats_fused] == [a.tobytes() for a in stats_plain]
    zeros = plain_out == 0
    assert (zeros & np.signbit(plain_out)).sum() >= 9 and (zeros & ~np.signbit(plain_out)).sum() >= 9
    grad = rng.standard_normal(x.shape).astype(dtype)
    want = impl.batch_norm_backward(relu_backward(grad, plain_out), x, w, mean, invstd, training)
    got = impl.batch_norm_backward(grad, x, w, mean, invstd, training, fused[3])
    assert [a.tobytes() for a in got] == [a.tobytes() for a in want]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_relu_masks_the_outputs_it_clamped_next_to_the_kink(impl, dtype):
    """Inputs a few ulps either side of where the output crosses 0: the backward's recomputed
    sign agrees with the forward's output element by element, as relu_backward's reading of it."""
    relu_forward, relu_backward = _relu_kernels(impl)
    w, b = np.array([1.3, -0.7], dtype), np.array([0.1234, 0.55], dtype)
    rm, rv = np.array([0.3, -2.0], dtype), np.array([0.9, 1.7], dtype)
    kink = (rm - b / (w / np.sqrt(rv + 1e-5))).astype(dtype)   # where the output crosses 0
    ulps = np.arange(-40, 41)
    x = np.stack([kink[c] + ulps * np.spacing(kink[c]) for c in range(2)]).astype(dtype)[None].repeat(3, axis=0)
    y, mean, invstd = impl.batch_norm_forward(x, w, b, rm.copy(), rv.copy(), False, 0.1, 1e-5)
    fused = impl.batch_norm_forward(x, w, b, rm.copy(), rv.copy(), False, 0.1, 1e-5, "relu")
    assert fused[0].tobytes() == relu_forward(y).tobytes()
    assert 0 < (fused[0] > 0).sum() < x.size     # both sides of the kink
    grad = np.ones_like(x)
    want = impl.batch_norm_backward(relu_backward(grad, fused[0]), x, w, mean, invstd, False)
    got = impl.batch_norm_backward(grad, x, w, mean, invstd, False, fused[3])
    assert [a.tobytes() for a in got] == [a.tobytes() for a in want]


@pytest.mark.parametrize("impl", IMPLS)
def test_batch_norm_relu_refuses_bad_activation_and_terms(impl):
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="batch_norm_forward: activation must be None or 'relu', got 'gelu'"):
        impl.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5, "gelu")
    with pytest.raises(ValueError, match="activation must be None or 'relu', got True"):
        impl.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5, True)
    mean, invstd = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"batch_norm_backward: relu_terms must have shape \(4, 3\), got \(3, 3\)"):
        impl.batch_norm_backward(x, x, None, mean, invstd, True, np.zeros((3, 3)))
    with pytest.raises(TypeError, match="relu_terms is float32"):
        impl.batch_norm_backward(x, x, None, mean, invstd, True, np.zeros((4, 3), np.float32))


@FEW
@given(rows=st.integers(0, 6), d=st.integers(1, 17), dtype=st.sampled_from(DTYPES),
       affine=st.booleans(), non_contiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_layer_norm_and_rms_norm_compiled_equal_twin(rows, d, dtype, affine, non_contiguous, seed):
    r = np.random.default_rng(seed)
    x = maybe_strided((3 * r.standard_normal((rows, d)) + 1).astype(dtype), non_contiguous)
    grad = maybe_strided(r.standard_normal((rows, d)).astype(dtype), non_contiguous)
    w = optional(r.standard_normal(d).astype(dtype), affine)
    b = optional(r.standard_normal(d).astype(dtype), affine)
    fast = _norm.layer_norm_forward(x, w, b, 1e-5)
    assert_all_close(fast, reference.layer_norm_forward(x, w, b, 1e-5), dtype)
    _, mean, rstd = fast
    assert_all_close(_norm.layer_norm_backward(grad, x, w, mean, rstd),
                     reference.layer_norm_backward(grad, x, w, mean, rstd), dtype)
    fast = _norm.rms_norm_forward(x, w, 1e-6)
    assert_all_close(fast, reference.rms_norm_forward(x, w, 1e-6), dtype)
    assert_all_close(_norm.rms_norm_backward(grad, x, w, fast[1]),
                     reference.rms_norm_backward(grad, x, w, fast[1]), dtype)


@FEW
@given(n=st.integers(0, 3), groups=st.integers(1, 3), per_group=st.integers(1, 3),
       length=st.integers(1, 6), dtype=st.sampled_from(DTYPES), affine=st.booleans(),
       non_contiguous=st.booleans(), seed=st.integers(0, 2**16))
def test_group_norm_compiled_equals_twin(n, groups, per_group, length, dtype, affine,
                                         non_contiguous, seed):
    r = np.random.default_rng(seed)
    c = groups * per_group
    x = maybe_strided(r.standard_normal((n, c, length)).astype(dtype), non_contiguous)
    grad = maybe_strided(r.standard_normal((n, c, length)).astype(dtype), non_contiguous)
    w = optional(r.standard_normal(c).astype(dtype), affine)
    b = optional(r.standard_normal(c).astype(dtype), affine)
    fast = _norm.group_norm_forward(x, groups, w, b, 1e-5)
    assert_all_close(fast, reference.group_norm_forward(x, groups, w, b, 1e-5), dtype)
    _, mean, rstd = fast
    assert_all_close(_norm.group_norm_backward(grad, x, groups, w, mean, rstd),
                     reference.group_norm_backward(grad, x, groups, w, mean, rstd), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_statistics_merged_across_blocks(dtype, rng):
    # 50 samples of 300 values span several statistics blocks per channel; a large
    # offset makes a careless variance formula lose every digit.
    x = (1000 + rng.standard_normal((50, 2, 300))).astype(dtype)
    rm, rv = np.zeros(2, dtype), np.ones(2, dtype)
    y, mean, invstd = _norm.batch_norm_forward(x, None, None, rm, rv, True, 0.5, 1e-5)
    rm2, rv2 = np.zeros(2, dtype), np.ones(2, dtype)
    expected = reference.batch_norm_forward(x, None, None, rm2, rv2, True, 0.5, 1e-5)
    assert_all_close((y, mean, invstd), expected, dtype)
    assert_all_close((rm, rv), (rm2, rv2), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_moments_survive_offset_and_outlier(dtype, rng):
    # The forward sums x - x[0] and its square in one pass. Rows far from zero, and rows
    # whose first element is their outlier (the worst shift), still match the twin's
    # two-pass statistics in double.
    x = (1000 + 1e-2 * rng.standard_normal((8, 512))).astype(dtype)
    x[4:, 0] += 1.0                     # first element 100 standard deviations out
    y, mean, rstd = _norm.layer_norm_forward(x, None, None, 0.0)
    assert_all_close((y, mean, rstd), reference.layer_norm_forward(x, None, None, 0.0), dtype)


@pytest.mark.parametrize("impl", IMPLS)
def test_normalised_output_has_zero_mean_unit_variance(impl, rng):
    x = 5 * rng.standard_normal((6, 4, 9)) + 3
    y, mean, invstd = impl.batch_norm_forward(x, None, None, None, None, True, 0.1, 0.0)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1, rtol=1e-12)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=1e-12)
    y, _, _ = impl.layer_norm_forward(x.reshape(6, -1), None, None, 0.0)
    np.testing.assert_allclose(y.std(axis=1), 1, rtol=1e-12)
    y, _ = impl.rms_norm_forward(x.reshape(6, -1), None, 0.0)
    np.testing.assert_allclose((y * y).mean(axis=1), 1, rtol=1e-12)


# ------------------------------------------------------- vs torch.nn.functional -----

def _t(torch, a, grad=True):
    return None if a is None else torch.tensor(a, requires_grad=grad)


def _grad(t):
    return None if t is None else t.grad.numpy()


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (7, 5)], ids=["2d", "1d"])
def test_batch_norm_matches_torch(shape, affine, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal(shape) * 2 + 1
    c = shape[1]
    w = optional(rng.standard_normal(c), affine)
    b = optional(rng.standard_normal(c), affine)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.5
    go = rng.standard_normal(shape)
    x3 = x.reshape(shape[0], c, -1)
    for training in (True, False):
        xt, wt, bt = _t(torch, x), _t(torch, w), _t(torch, b)
        rmt, rvt = torch.tensor(rm), torch.tensor(rv)
        yt = F.batch_norm(xt, rmt, rvt, wt, bt, training=training, momentum=0.1, eps=1e-5)
        yt.backward(torch.tensor(go))
        mean, var = rm.copy(), rv.copy()
        y, save_mean, save_invstd = _norm.batch_norm_forward(x3, w, b, mean, var, training, 0.1, 1e-5)
        np.testing.assert_allclose(y.reshape(shape), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(mean, rmt.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(var, rvt.numpy(), rtol=1e-12, atol=1e-14)
        gx, gw, gb = _norm.batch_norm_backward(go.reshape(x3.shape), x3, w, save_mean,
                                               save_invstd, training)
        np.testing.assert_allclose(gx.reshape(shape), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
        for mine, theirs in ((gw, _grad(wt)), (gb, _grad(bt))):
            assert (mine is None) == (theirs is None)
            if mine is not None:
                np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-11)
        rm, rv = mean, var  # eval mode then runs on the updated statistics


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_and_rms_norm_match_torch(affine, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((3, 4, 5)) * 3 - 1
    go = rng.standard_normal(x.shape)
    w = optional(rng.standard_normal((4, 5)), affine)
    b = optional(rng.standard_normal((4, 5)), affine)
    flat = lambda a: None if a is None else a.reshape(-1)  # noqa: E731
    xt, wt, bt = _t(torch, x), _t(torch, w), _t(torch, b)
    yt = F.layer_norm(xt, (4, 5), wt, bt, eps=1e-5)
    yt.backward(torch.tensor(go))
    y, mean, rstd = _norm.layer_norm_forward(x.reshape(3, 20), flat(w), flat(b), 1e-5)
    np.testing.assert_allclose(y.reshape(x.shape), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = _norm.layer_norm_backward(go.reshape(3, 20), x.reshape(3, 20), flat(w), mean, rstd)
    for mine, t in zip(grads, (xt, wt, bt)):
        assert (mine is None) == (t is None)
        if t is not None:
            np.testing.assert_allclose(mine.reshape(t.shape), t.grad.numpy(), rtol=1e-9, atol=1e-11)

    xt, wt = _t(torch, x), _t(torch, w)
    yt = F.rms_norm(xt, (4, 5), wt, eps=None)  # torch's default: finfo(dtype).eps
    yt.backward(torch.tensor(go))
    eps = float(np.finfo(np.float64).eps)
    y, rrms = _norm.rms_norm_forward(x.reshape(3, 20), flat(w), eps)
    np.testing.assert_allclose(y.reshape(x.shape), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = _norm.rms_norm_backward(go.reshape(3, 20), x.reshape(3, 20), flat(w), rrms)
    for mine, t in zip(grads, (xt, wt)):
        assert (mine is None) == (t is None)
        if t is not None:
            np.testing.assert_allclose(mine.reshape(t.shape), t.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(affine, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 6, 3, 4)) * 2 + 0.5
    go = rng.standard_normal(x.shape)
    w = optional(rng.standard_normal(6), affine)
    b = optional(rng.standard_normal(6), affine)
    xt, wt, bt = _t(torch, x), _t(torch, w), _t(torch, b)
    yt = torch.nn.functional.group_norm(xt, 3, wt, bt, eps=1e-5)
    yt.backward(torch.tensor(go))
    y, mean, rstd = _norm.group_norm_forward(x.reshape(2, 6, 12), 3, w, b, 1e-5)
    np.testing.assert_allclose(y.reshape(x.shape), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = _norm.group_norm_backward(go.reshape(2, 6, 12), x.reshape(2, 6, 12), 3, w, mean, rstd)
    for mine, t in zip(grads, (xt, wt, bt)):
        assert (mine is None) == (t is None)
        if t is not None:
            np.testing.assert_allclose(mine.reshape(t.shape), t.grad.numpy(), rtol=1e-9, atol=1e-11)


# ------------------------------------------------------ finite differences -----

def numeric_grad(loss, a, h=1e-6):
    """Central differences of the scalar ``loss()`` with respect to the array ``a`` (in place)."""
    out = np.zeros_like(a)
    flat = a.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = loss()
        flat[i] = old - h
        down = loss()
        flat[i] = old
        out.reshape(-1)[i] = (up - down) / (2 * h)
    return out


def _fused_bn(k, x, w, b, training):
    running = (np.array([0.3, -0.2]), np.array([1.5, 0.7])) if not training else (None, None)
    return k.batch_norm_forward(x, w, b, *running, training, 0.1, 1e-5, "relu")


def _fused_bn_backward(k, g, x, w, b, training):
    _, mean, invstd, terms = _fused_bn(k, x, w, b, training)
    return k.batch_norm_backward(g, x, w, mean, invstd, training, terms)


NORMS = {
    # name: (forward(x, w, b) -> y, backward(grad, x, w, b) -> grads, x shape, affine shape)
    "batch_norm_train": (
        lambda k, x, w, b: k.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5)[0],
        lambda k, g, x, w, b: k.batch_norm_backward(
            g, x, w, *k.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5)[1:], True),
        (3, 2, 4), (2,)),
    "batch_norm_eval": (
        lambda k, x, w, b: k.batch_norm_forward(x, w, b, np.array([0.3, -0.2]),
                                                np.array([1.5, 0.7]), False, 0.1, 1e-5)[0],
        lambda k, g, x, w, b: k.batch_norm_backward(
            g, x, w, *k.batch_norm_forward(x, w, b, np.array([0.3, -0.2]), np.array([1.5, 0.7]),
                                           False, 0.1, 1e-5)[1:], False),
        (3, 2, 4), (2,)),
    # with a fused ReLU (random inputs sit away from the kink, where the difference is smooth)
    "batch_norm_relu_train": (
        lambda k, x, w, b: _fused_bn(k, x, w, b, True)[0],
        lambda k, g, x, w, b: _fused_bn_backward(k, g, x, w, b, True),
        (3, 2, 4), (2,)),
    "batch_norm_relu_eval": (
        lambda k, x, w, b: _fused_bn(k, x, w, b, False)[0],
        lambda k, g, x, w, b: _fused_bn_backward(k, g, x, w, b, False),
        (3, 2, 4), (2,)),
    "layer_norm": (
        lambda k, x, w, b: k.layer_norm_forward(x, w, b, 1e-5)[0],
        lambda k, g, x, w, b: k.layer_norm_backward(g, x, w, *k.layer_norm_forward(x, w, b, 1e-5)[1:]),
        (3, 7), (7,)),
    "group_norm": (
        lambda k, x, w, b: k.group_norm_forward(x, 2, w, b, 1e-5)[0],
        lambda k, g, x, w, b: k.group_norm_backward(
            g, x, 2, w, *k.group_norm_forward(x, 2, w, b, 1e-5)[1:]),
        (2, 4, 3), (4,)),
    "rms_norm": (
        lambda k, x, w, b: k.rms_norm_forward(x, w, 1e-5)[0],
        lambda k, g, x, w, b: k.rms_norm_backward(g, x, w, k.rms_norm_forward(x, w, 1e-5)[1]),
        (3, 7), (7,)),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", sorted(NORMS))
def test_backward_matches_finite_differences(name, impl, rng):
    forward, backward, x_shape, affine_shape = NORMS[name]
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(affine_shape)
    b = rng.standard_normal(affine_shape)
    probe = rng.standard_normal(x_shape)  # loss = sum(y * probe), so dloss/dy = probe

    def loss():
        return float((forward(impl, x, w, b) * probe).sum())

    grads = backward(impl, probe, x, w, b)
    np.testing.assert_allclose(grads[0], numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grads[1], numeric_grad(loss, w), rtol=1e-6, atol=1e-8)
    if len(grads) == 3:
        np.testing.assert_allclose(grads[2], numeric_grad(loss, b), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------- threads -----

@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bytes_across_threads(dtype, rng):
    # Shapes span several statistics blocks and row blocks, so the parallel paths split work.
    x = rng.standard_normal((40, 3, 256)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w, b = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)

    def bn_train(x, w, b, rm, rv):
        return _norm.batch_norm_forward(x, w, b, rm, rv, True, 0.1, 1e-5) + (rm, rv)

    same_bytes_across_threads(bn_train, x, w, b, rm, rv)
    _, mean, invstd = _norm.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5)
    for training in (True, False):
        same_bytes_across_threads(_norm.batch_norm_backward, g, x, w, mean, invstd, training)
    same_bytes_across_threads(_norm.batch_norm_forward, x, w, b, None, None, True, 0.1, 1e-5, "relu")
    terms = _norm.batch_norm_forward(x, w, b, None, None, True, 0.1, 1e-5, "relu")[3]
    for training in (True, False):   # each thread masks its rows in its own scratch row
        same_bytes_across_threads(_norm.batch_norm_backward, g, x, w, mean, invstd, training, terms)

    x2 = rng.standard_normal((100, 33)).astype(dtype)
    g2 = rng.standard_normal(x2.shape).astype(dtype)
    w2, b2 = rng.standard_normal(33).astype(dtype), rng.standard_normal(33).astype(dtype)
    same_bytes_across_threads(_norm.layer_norm_forward, x2, w2, b2, 1e-5)
    _, mean, rstd = _norm.layer_norm_forward(x2, w2, b2, 1e-5)
    same_bytes_across_threads(_norm.layer_norm_backward, g2, x2, w2, mean, rstd)
    same_bytes_across_threads(_norm.rms_norm_forward, x2, w2, 1e-6)
    same_bytes_across_threads(_norm.rms_norm_backward, g2, x2, w2, _norm.rms_norm_forward(x2, w2, 1e-6)[1])

    x3 = rng.standard_normal((5, 6, 40)).astype(dtype)
    g3 = rng.standard_normal(x3.shape).astype(dtype)
    w3, b3 = rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype)
    same_bytes_across_threads(_norm.group_norm_forward, x3, 3, w3, b3, 1e-5)
    _, mean, rstd = _norm.group_norm_forward(x3, 3, w3, b3, 1e-5)
    same_bytes_across_threads(_norm.group_norm_backward, g3, x3, 3, w3, mean, rstd)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_many_row_blocks_on_two_threads_equals_twin(dtype, rng):
    """Long enough that both threads run rows at the same time, so per-row values the
    threads shared by mistake (a race) would show as wrong statistics or gradients."""
    x = (rng.standard_normal((4096, 256)) + 5).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w, b = rng.standard_normal(256).astype(dtype), rng.standard_normal(256).astype(dtype)
    expected = reference.layer_norm_forward(x, w, b, 1e-5)
    with threads(2):
        for _ in range(3):
            y, mean, rstd = _norm.layer_norm_forward(x, w, b, 1e-5)
            assert_all_close((y, mean, rstd), expected, dtype)
            assert_all_close(_norm.layer_norm_backward(g, x, w, mean, rstd),
                             reference.layer_norm_backward(g, x, w, mean, rstd), dtype)


# -------------------------------------------------------------- bad input -----

@pytest.mark.parametrize("impl", IMPLS)
def test_errors_name_what_was_expected(impl):
    x = np.zeros((4, 5))
    with pytest.raises(TypeError, match="x is float64 but weight is float32"):
        impl.layer_norm_forward(x, np.ones(5, np.float32), None, 1e-5)
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        impl.rms_norm_forward(np.zeros((2, 3), np.int64), None, 1e-5)
    with pytest.raises(ValueError, match=r"x must be 2-D \(rows, D\), got shape \(4, 5, 1\)"):
        impl.layer_norm_forward(x[..., None], None, None, 1e-5)
    with pytest.raises(ValueError, match=r"weight must have shape \(5,\), got \(4,\)"):
        impl.rms_norm_forward(x, np.ones(4), 1e-5)
    with pytest.raises(ValueError, match=r"eps must be >= 0, got -1.0"):
        impl.layer_norm_forward(x, None, None, -1.0)
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups \(2\)"):
        impl.group_norm_forward(np.zeros((2, 5, 3)), 2, None, None, 1e-5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        impl.batch_norm_forward(np.zeros((1, 3, 1)), None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="eval mode"):
        impl.batch_norm_forward(np.zeros((2, 3, 1)), None, None, None, None, False, 0.1, 1e-5)
    with pytest.raises(ValueError, match="give both running_mean and running_var"):
        impl.batch_norm_forward(np.zeros((2, 3, 1)), None, None, np.zeros(3), None, True, 0.1, 1e-5)
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="running_var is updated in place"):
        impl.batch_norm_forward(np.zeros((2, 3, 1)), None, None, np.zeros(3), frozen, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"grad must have shape \(4, 5\), got \(4, 4\)"):
        impl.layer_norm_backward(np.zeros((4, 4)), x, None, np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match=r"rrms must have shape \(4,\)"):
        impl.rms_norm_backward(x, x, None, np.ones(5))


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batches(impl):
    y, mean, rstd = impl.layer_norm_forward(np.zeros((0, 4), np.float32), None, None, 1e-5)
    assert y.shape == (0, 4) and mean.shape == (0,) and mean.dtype == np.float32
    y, mean, invstd = impl.batch_norm_forward(np.zeros((0, 3, 2)), None, None, np.zeros(3),
                                              np.ones(3), False, 0.1, 1e-5)
    assert y.shape == (0, 3, 2)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(1 + 1e-5))
    gx, gw, gb = impl.group_norm_backward(np.zeros((0, 4, 2)), np.zeros((0, 4, 2)), 2,
                                          np.ones(4), np.zeros((0, 2)), np.ones((0, 2)))
    assert gx.shape == (0, 4, 2) and not gw.any() and not gb.any()


@pytest.mark.parametrize("_norm", [_norm, reference], ids=["compiled", "twin"])
def test_backward_kernels_refuse_a_missing_array_by_name(_norm):
    # a None gradient or statistic used to be read as a pointer to rows * D numbers
    x = np.random.default_rng(0).random((3, 4))
    _, mean, rstd = _norm.layer_norm_forward(x, None, None, 1e-5)
    with pytest.raises(TypeError, match="layer_norm_backward: grad must be a numpy.ndarray, got None"):
        _norm.layer_norm_backward(None, x, None, mean, rstd)
    with pytest.raises(TypeError, match="layer_norm_backward: rstd must be a numpy.ndarray, got None"):
        _norm.layer_norm_backward(x, x, None, mean, None)
    _, rrms = _norm.rms_norm_forward(x, None, 1e-5)
    with pytest.raises(TypeError, match="rms_norm_backward: rrms must be a numpy.ndarray, got None"):
        _norm.rms_norm_backward(x, x, None, None)
    x3 = x.reshape(3, 2, 2)
    _, gmean, grstd = _norm.group_norm_forward(x3, 2, None, None, 1e-5)
    with pytest.raises(TypeError, match="group_norm_backward: mean must be a numpy.ndarray, got None"):
        _norm.group_norm_backward(x3, x3, 2, None, None, grstd)
    with pytest.raises(TypeError, match="batch_norm_backward: grad must be a numpy.ndarray, got None"):
        _norm.batch_norm_backward(None, x3, None, np.zeros(2), np.ones(2), True)


# ------------------------------------------------------ infinities and NaN -----

def assert_same_specials(got, want):
    """NaN where the twin has NaN, the twin's infinities with their signs, finite values close."""
    for a, b in zip(got, want):
        if b is None:
            assert a is None
            continue
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(b), b, 0))
        finite = np.isfinite(b)
        np.testing.assert_allclose(a[finite], b[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 7, 40])
def test_layer_norm_row_holding_an_infinity_or_a_nan_has_no_finite_rstd(dtype, d):
    # The one-pass moments are taken about the row's first element; an infinite first
    # element made every shifted value -inf or NaN (the mean of a row holding +inf came
    # out NaN), and the variance's clamp at 0 turned a NaN variance into 0, so such a row
    # got rstd = 1/sqrt(eps), a finite number, where the twin and torch have NaN.
    rng = np.random.default_rng(d)
    x = rng.standard_normal((6, d)).astype(dtype)
    x[0, 0] = np.inf
    x[1, d - 1] = np.inf
    x[2, 0] = -np.inf
    x[3, d // 2] = np.nan
    x[4, 0], x[4, d - 1] = np.inf, -np.inf
    got = _norm.layer_norm_forward(x, None, None, 1e-5)
    want = reference.layer_norm_forward(x, None, None, 1e-5)
    assert_same_specials(got, want)
    assert np.isnan(got[2][:5]).all() and np.isfinite(got[2][5])      # rstd
    if d > 1:
        np.testing.assert_array_equal(got[1][:3], [np.inf, np.inf, -np.inf])   # the mean
    torch = pytest.importorskip("torch")
    _, _, rstd = torch.ops.aten.native_layer_norm(torch.from_numpy(x), [d], None, None, 1e-5)
    np.testing.assert_array_equal(np.isnan(got[2]), np.isnan(rstd.numpy().reshape(-1)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_infinite_weight_or_running_mean_gives_the_formulas_infinities(dtype):
    # y = (x - mean) * invstd * weight + bias: an infinite weight gives +-inf by the sign of
    # x - mean, an infinite running mean -inf or +inf. The twin folded the mean into the
    # shift (x * scale + (bias - mean * scale)), inf - inf: NaN everywhere; the compiled
    # kernel split the infinite mean into a high part and an inf - inf low part: NaN too.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5)).astype(dtype)
    weight = np.array([-np.inf, 1.5, 2.0], dtype)
    bias = rng.standard_normal(3).astype(dtype)
    running_mean = np.array([0.5, np.inf, -np.inf], dtype)
    running_var = np.array([1.0, 2.0, 0.5], dtype)
    for training in (True, False):
        got = _norm.batch_norm_forward(x, weight, bias, running_mean.copy(), running_var.copy(),
                                       training, 0.1, 1e-5)
        want = reference.batch_norm_forward(x, weight, bias, running_mean.copy(), running_var.copy(),
                                            training, 0.1, 1e-5)
        assert_same_specials(got, want)
        assert not np.isnan(got[0]).any()
    y = _norm.batch_norm_forward(x, weight, bias, running_mean.copy(), running_var.copy(), False, 0.1,
                                 1e-5)[0]
    np.testing.assert_array_equal(y[:, 1], -np.inf)
    np.testing.assert_array_equal(y[:, 2], np.inf)
    np.testing.assert_array_equal(y[:, 0], np.where(x[:, 0] < 0.5, np.inf, -np.inf))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_mean_of_an_infinite_channel_over_several_blocks(dtype):
    # Blocks of samples are merged with Chan's update: an infinite block mean made the next
    # block's delta infinite and the channel's mean NaN (inf - inf) where it is +inf.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 2, 300)).astype(dtype)    # 13 samples per block: 4 blocks
    x[0, 0, 7] = np.inf
    x[39, 1, 2] = -np.inf
    running_mean, running_var = np.zeros(2, dtype), np.ones(2, dtype)
    y, mean, invstd = _norm.batch_norm_forward(x, None, None, running_mean, running_var, True, 0.1, 1e-5)
    np.testing.assert_array_equal(mean, [np.inf, -np.inf])
    np.testing.assert_array_equal(running_mean, [np.inf, -np.inf])
    assert np.isnan(invstd).all() and np.isnan(y).all()
    assert_same_specials((y, mean, invstd), reference.batch_norm_forward(
        x, None, None, np.zeros(2, dtype), np.ones(2, dtype), True, 0.1, 1e-5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("infinite", ["rstd", "weight"])
def test_group_norm_backward_with_an_infinite_rstd_or_weight_sums_the_infinities(dtype, infinite):
    # The kernel took rstd and the weight out of its sums, sum(g * w * xhat) =
    # w * rstd * sum(g * (x - mean)) and sum(g * w) = w * sum(g): with an infinite rstd or
    # weight that is inf * (a finite sum), where the twin adds up the infinities of both
    # signs element by element and gets NaN (torch, which factors part of the sums, has NaN
    # at most of these places).
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5)).astype(dtype)
    grad = rng.standard_normal((2, 4, 5)).astype(dtype)
    weight = rng.standard_normal(4).astype(dtype)
    _, mean, rstd = reference.group_norm_forward(x, 2, weight, None, 1e-5)
    if infinite == "rstd":
        rstd[1, 0] = np.inf
    else:
        weight[1] = -np.inf
    got = _norm.group_norm_backward(grad, x, 2, weight, mean, rstd)
    want = reference.group_norm_backward(grad, x, 2, weight, mean, rstd)
    assert_same_specials(got, want)
    sample = 1 if infinite == "rstd" else slice(None)
    assert np.isnan(got[0][sample, :2]).all() and np.isfinite(got[0][:, 2:]).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("weight", [None, np.ones(3, np.float32)])
def test_batch_norm_eval_of_empty_rows_returns_at_once_however_many(impl, weight):
    # 2**40 (sample, channel) rows of no values hold no bytes; the compiled kernels looped over
    # them (the backward sized a scratch of partial sums by them too)
    x = np.empty((2 ** 40, 3, 0), np.float32)
    stats = np.zeros(3, np.float32), np.ones(3, np.float32)
    y, mean, invstd = impl.batch_norm_forward(x, weight, weight, *stats, False, 0.1, 1e-5)
    assert y.shape == x.shape and mean.shape == invstd.shape == (3,)
    grad_x, grad_weight, grad_bias = impl.batch_norm_backward(x, x, weight, mean, invstd, False)
    assert grad_x.shape == x.shape
    if weight is not None:
        assert (grad_weight == 0).all() and (grad_bias == 0).all()
