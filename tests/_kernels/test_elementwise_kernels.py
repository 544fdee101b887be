"""Elementwise kernels: compiled (``_elementwise``) against the twins, PyTorch and finite differences."""
import numpy as np
import pytest
from helpers import same_bytes_across_threads
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlite._kernels import _elementwise, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

# name -> (arguments built from x, g; whether compiled and twin must agree bit for bit).
# Kernels that call exp/erf/tanh differ from NumPy's SIMD versions in the last bit.
CASES = {
    "relu_forward": (lambda x, g: (x,), True),
    "relu_backward": (lambda x, g: (g, reference.relu_forward(x)), True),
    "gelu_forward/none": (lambda x, g: (x, "none"), False),
    "gelu_forward/tanh": (lambda x, g: (x, "tanh"), False),
    "gelu_backward/none": (lambda x, g: (g, x, "none"), False),
    "gelu_backward/tanh": (lambda x, g: (g, x, "tanh"), False),
    "erf_forward": (lambda x, g: (x,), True),
    "tanh_forward": (lambda x, g: (x,), False),
    "tanh_backward": (lambda x, g: (g, np.asarray(np.tanh(x))), True),
    "sigmoid_forward": (lambda x, g: (x,), False),
    "sigmoid_backward": (lambda x, g: (g, reference.sigmoid_forward(x)), True),
    "silu_forward": (lambda x, g: (x,), False),
    "silu_backward": (lambda x, g: (g, x), False),
}

shapes = st.sampled_from([(), (0,), (1,), (7,), (0, 3), (1, 1), (3, 5), (4, 7), (2, 3, 5), (65, 9)])


def make(rng, shape, dtype, layout):
    """Random values of ``shape``: C-contiguous, a transpose, or every other element."""
    if layout == "t" and len(shape) >= 2:
        return (rng.standard_normal(shape[::-1]) * 3).astype(dtype).T
    if layout == "s" and len(shape) >= 1:
        wide = shape[:-1] + (2 * shape[-1],)
        return (rng.standard_normal(wide) * 3).astype(dtype)[..., ::2]
    return np.asarray(rng.standard_normal(shape) * 3, dtype=dtype)


def kernel(name):
    return name.split("/")[0]


# -------------------------------------------------------------- vs the twin -----

@settings(max_examples=25, deadline=None)
@given(shape=shapes, layout=st.sampled_from(["c", "t", "s"]), dtype=st.sampled_from(DTYPES))
def test_activations_match_twin(shape, layout, dtype):
    rng = np.random.default_rng(len(shape))
    x = make(rng, shape, dtype, layout)
    g = make(rng, shape, dtype, layout)
    for name, (build, bitwise) in CASES.items():
        args = build(x, g)
        out = getattr(_elementwise, kernel(name))(*args)
        want = getattr(reference, kernel(name))(*args)
        assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous, name
        if bitwise:
            assert out.tobytes() == want.tobytes(), name
        elif name == "gelu_backward/tanh" and dtype == np.float32:
            # 0.5 (1 + tanh(u)) cancels for x << 0: one ulp of tanh is 6e-8 absolute,
            # times |x| up to ~10 from the product rule term
            np.testing.assert_allclose(out, want, rtol=1e-5, atol=2e-5, err_msg=name)
        else:
            np.testing.assert_allclose(out, want, **TOL[dtype], err_msg=name)


@settings(max_examples=25, deadline=None)
@given(shape=shapes, layout=st.sampled_from(["c", "t", "s"]), dtype=st.sampled_from(DTYPES),
       p=st.sampled_from([0.0, 0.1, 0.5, 0.9]))
def test_dropout_matches_twin(shape, layout, dtype, p):
    rng = np.random.default_rng(len(shape))
    x = make(rng, shape, dtype, layout)
    u = np.asarray(make(rng, shape, dtype, layout) % 1)
    y, mask = _elementwise.dropout_forward(x, u, p)
    y_ref, mask_ref = reference.dropout_forward(x, u, p)
    assert mask.dtype == np.bool_ and mask.shape == shape and y.dtype == dtype
    assert y.tobytes() == y_ref.tobytes() and mask.tobytes() == mask_ref.tobytes()
    np.testing.assert_array_equal(mask, u >= p)
    np.testing.assert_allclose(y, np.where(mask, x / (1 - p), 0), **TOL[dtype])


@settings(max_examples=25, deadline=None)
@given(num_embeddings=st.sampled_from([1, 2, 7, 30]), dim=st.sampled_from([0, 1, 5, 64, 70, 130]),
       index_shape=st.sampled_from([(0,), (1,), (5,), (3, 4), (2, 1, 3)]),
       padding_idx=st.sampled_from([-1, 0]), transposed=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_embedding_matches_twin(num_embeddings, dim, index_shape, padding_idx, transposed, dtype):
    rng = np.random.default_rng(num_embeddings + dim)
    weight = make(rng, (num_embeddings, dim), dtype, "t" if transposed else "c")
    indices = rng.integers(0, num_embeddings, size=index_shape)   # repeats on purpose
    if transposed and len(index_shape) >= 2:
        indices = np.ascontiguousarray(indices.T).T
    out = _elementwise.embedding_forward(weight, indices)
    assert out.shape == index_shape + (dim,) and out.flags.c_contiguous
    assert out.tobytes() == reference.embedding_forward(weight, indices).tobytes()
    g = make(rng, index_shape + (dim,), dtype, "s" if transposed else "c")
    table = _elementwise.embedding_backward(g, indices, num_embeddings, padding_idx)
    assert table.shape == (num_embeddings, dim) and table.dtype == dtype
    assert table.tobytes() == reference.embedding_backward(g, indices, num_embeddings,
                                                           padding_idx).tobytes()
    if padding_idx >= 0:
        assert not table[padding_idx].any()


# ------------------------------------------------------------------ threads -----

@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bytes_for_1_2_4_threads(rng, dtype):
    x = (rng.standard_normal((301, 67)) * 3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    for name, (build, _) in CASES.items():
        same_bytes_across_threads(getattr(_elementwise, kernel(name)), *build(x, g))
    same_bytes_across_threads(_elementwise.dropout_forward, x, rng.random(x.shape).astype(dtype), 0.3)
    indices = rng.integers(0, 50, size=(40, 30))
    weight = rng.standard_normal((50, 200)).astype(dtype)
    same_bytes_across_threads(_elementwise.embedding_forward, weight, indices)
    grad = rng.standard_normal((40, 30, 200)).astype(dtype)
    same_bytes_across_threads(_elementwise.embedding_backward, grad, indices, 50, 3)


# -------------------------------------------------------------------- torch -----

def test_values_match_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((20, 30)) * 4
    g = rng.standard_normal(x.shape)
    ops = {
        "relu": (F.relu, lambda: (x,), lambda y: (g, y)),
        "gelu/none": (lambda t: F.gelu(t, approximate="none"), lambda: (x, "none"), lambda y: (g, x, "none")),
        "gelu/tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda: (x, "tanh"), lambda y: (g, x, "tanh")),
        "tanh": (torch.tanh, lambda: (x,), lambda y: (g, y)),
        "sigmoid": (torch.sigmoid, lambda: (x,), lambda y: (g, y)),
        "silu": (F.silu, lambda: (x,), lambda y: (g, x)),
    }
    for name, (torch_fn, fwd_args, bwd_args) in ops.items():
        op = name.split("/")[0]
        xt = torch.tensor(x, requires_grad=True)
        yt = torch_fn(xt)
        yt.backward(torch.tensor(g))
        y = getattr(_elementwise, op + "_forward")(*fwd_args())
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
        dx = getattr(_elementwise, op + "_backward")(*bwd_args(y))
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    # embedding and its scatter-add gradient, with a padding row
    weight = rng.standard_normal((10, 4))
    indices = np.array([[1, 2, 1], [9, 0, 1]])
    wt = torch.tensor(weight, requires_grad=True)
    et = F.embedding(torch.tensor(indices), wt, padding_idx=1)
    ge = rng.standard_normal((2, 3, 4))
    et.backward(torch.tensor(ge))
    np.testing.assert_array_equal(_elementwise.embedding_forward(weight, indices), et.detach().numpy())
    np.testing.assert_allclose(_elementwise.embedding_backward(ge, indices, 10, 1), wt.grad.numpy(),
                               rtol=1e-15, atol=0)


def test_extreme_values():
    big = np.array([-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4])
    with np.errstate(all="raise"):
        s = _elementwise.sigmoid_forward(big)
    assert np.isfinite(s).all() and s[0] == 0 and s[-1] == 1 and s[3] == 0.5
    s32 = _elementwise.sigmoid_forward(big.astype(np.float32))
    assert np.isfinite(s32).all() and s32[-1] == 1
    assert np.isfinite(_elementwise.silu_backward(np.ones_like(big), big)).all()
    for approximate in ("none", "tanh"):
        assert np.isfinite(_elementwise.gelu_backward(np.ones_like(big), big, approximate)).all()
    nan = np.array([np.nan, -1.0, 2.0])
    assert np.isnan(_elementwise.relu_forward(nan)[0])           # NaN passes through, like torch
    np.testing.assert_array_equal(_elementwise.relu_forward(nan)[1:], [0.0, 2.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_passes_the_gradient_of_nan(dtype):
    out = np.array([np.nan, 0.0, -0.0, 2.0, np.inf], dtype)     # relu's outputs are never negative
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype)
    for kernels in (_elementwise, reference):
        np.testing.assert_array_equal(kernels.relu_backward(g, out), [1.0, 0.0, 0.0, 4.0, 5.0])


# ------------------------------------------------------- finite differences -----

def test_backward_kernels_match_central_differences(rng):
    x = rng.uniform(-3, 3, size=(6, 7))
    x[np.abs(x) < 1e-3] = 0.5          # keep relu's kink away from the stencil
    g = rng.standard_normal(x.shape)
    h = 1e-6
    central = lambda f: (f(x + h) - f(x - h)) / (2 * h)
    E = _elementwise
    checks = {
        "relu": (E.relu_backward(g, E.relu_forward(x)), central(E.relu_forward)),
        "tanh": (E.tanh_backward(g, E.tanh_forward(x)), central(E.tanh_forward)),
        "sigmoid": (E.sigmoid_backward(g, E.sigmoid_forward(x)), central(E.sigmoid_forward)),
        "silu": (E.silu_backward(g, x), central(E.silu_forward)),
    }
    for approximate in ("none", "tanh"):
        checks["gelu/" + approximate] = (E.gelu_backward(g, x, approximate),
                                         central(lambda v: E.gelu_forward(v, approximate)))
    for name, (analytic, derivative) in checks.items():
        np.testing.assert_allclose(analytic, g * derivative, rtol=1e-6, atol=1e-8, err_msg=name)


def test_embedding_backward_matches_central_differences(rng):
    weight = rng.standard_normal((5, 3))
    indices = np.array([[0, 3, 3], [4, 0, 2]])
    g = rng.standard_normal((2, 3, 3))
    loss = lambda w: float(np.sum(g * _elementwise.embedding_forward(w, indices)))
    numeric = np.zeros_like(weight)
    h = 1e-6
    for idx in np.ndindex(weight.shape):
        up, down = weight.copy(), weight.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(_elementwise.embedding_backward(g, indices, 5, -1), numeric,
                               rtol=1e-7, atol=1e-8)


# --------------------------------------------------------------- bad input -----

@pytest.mark.parametrize("module", [_elementwise, reference], ids=["compiled", "twin"])
def test_embedding_forward_names_a_weight_of_the_wrong_rank_alike(module):
    with pytest.raises(ValueError, match=r"^embedding_forward: weight must be 2-D \(num_embeddings, "
                                         r"embedding_dim\), got shape \(5,\)$"):
        module.embedding_forward(np.ones(5, np.float32), np.array([0]))


@pytest.mark.parametrize("module", [_elementwise, reference], ids=["compiled", "twin"])
@pytest.mark.parametrize("dim", [3, 0])
def test_embedding_backward_refuses_a_table_numpy_cannot_make(module, dim):
    # num_embeddings is the one size of the result no array carries: 2**62 rows of float32
    # are 2**64 bytes (NumPy counts them even with dim 0), refused with NumPy's own words
    grad = np.ones((2, dim), np.float32)
    with pytest.raises(ValueError, match=r"embedding_backward: the gradient table would be an array of "
                                         rf"shape \(4611686018427387904, {dim}\) with 4-byte elements"):
        module.embedding_backward(grad, np.array([0, 1]), 2 ** 62, -1)


def test_bad_inputs_raise_clear_errors():
    E = _elementwise
    x32 = np.ones((2, 3), np.float32)
    x64 = np.ones((2, 3), np.float64)
    with pytest.raises(TypeError, match="int32"):
        E.relu_forward(np.ones(3, np.int32))
    with pytest.raises(TypeError, match="ndarray"):
        E.tanh_forward([1.0, 2.0])
    with pytest.raises(TypeError, match="float32.*float64"):
        E.relu_backward(x32, x64)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        E.silu_backward(x64, x64.T.copy())
    with pytest.raises(ValueError, match="approximate.*'erf'"):
        E.gelu_forward(x64, "erf")
    for p in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            E.dropout_forward(x64, x64 * 0.5, p)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        E.dropout_forward(x64, np.ones(3), 0.5)
    weight = np.ones((4, 2))
    with pytest.raises(IndexError, match="index 4.*num_embeddings=4"):
        E.embedding_forward(weight, np.array([0, 4]))
    with pytest.raises(IndexError, match="index -1.*num_embeddings=4"):
        E.embedding_forward(weight, np.array([-1]))
    with pytest.raises(TypeError, match="int64.*int32"):
        E.embedding_forward(weight, np.array([0, 1], np.int32))
    with pytest.raises(ValueError, match="2-D.*\\(4,\\)"):
        E.embedding_forward(np.ones(4), np.array([0]))
    with pytest.raises(ValueError, match=r"indices.shape.*\(2,\).*\(3, 2\)"):
        E.embedding_backward(np.ones((3, 2)), np.array([0, 1]), 4, -1)
    with pytest.raises(ValueError, match="padding_idx.*7"):
        E.embedding_backward(np.ones((2, 2)), np.array([0, 1]), 4, 7)
    with pytest.raises(IndexError, match="index 9.*num_embeddings=4"):
        E.embedding_backward(np.ones((2, 2)), np.array([0, 9]), 4, -1)
    with pytest.raises(IndexError, match="index 9.*num_embeddings=4"):   # the twin agrees
        reference.embedding_backward(np.ones((2, 2)), np.array([0, 9]), 4, -1)


def test_float32_tanh_and_sigmoid_within_a_few_ulp():
    """float32 tanh/sigmoid use nnlite's own vectorisable exp, not libm: check them
    against float64 over a wide range, zeros' signs and the infinities."""
    x = np.concatenate([np.linspace(-30, 30, 200001), np.logspace(-30, 1.5, 2001),
                        -np.logspace(-30, 1.5, 2001)]).astype(np.float32)
    x64 = x.astype(np.float64)
    for ours, exact in ((_elementwise.tanh_forward, np.tanh(x64)),
                        (_elementwise.sigmoid_forward, 1 / (1 + np.exp(-x64)))):
        y = ours(x)
        ok = np.abs(exact) > 1e-37                      # leave out float32's subnormals
        ulp = np.abs(y[ok] - exact[ok]) / np.spacing(np.abs(exact[ok]).astype(np.float32))
        assert ulp.max() <= 4, ours.__name__
    special = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan], np.float32)
    t = _elementwise.tanh_forward(special)
    assert np.signbit(t[0]) and not np.signbit(t[1]) and t[2] == 1 and t[3] == -1 and np.isnan(t[4])
    s = _elementwise.sigmoid_forward(special)
    assert s[0] == 0.5 and s[2] == 1 and s[3] == 0 and np.isnan(s[4])


def test_float32_erf_within_1_06_ulp_of_erf_in_float64():
    """float32 erf (K.erf_forward and GELU's) is nnlite's own polynomial, not libm: its error
    against erf in float64, in units in the last place, on every 64th float32 from 2^-30 to 4
    (erf rounds to 1 above), at the worst point of an exhaustive search, and at the pieces' seams;
    on all of them, and their negatives, the twin (special.erf_float32) gives the same bits."""
    from nnlite._kernels import special
    bits = np.arange(np.float32(2.0 ** -30).view(np.uint32), np.float32(4.0).view(np.uint32), 64,
                     dtype=np.uint32)
    seams = np.array([0.8125, 3.9375], np.float32)
    x = np.concatenate([bits.view(np.float32), np.float32([1.0559913]),
                        np.nextafter(seams, np.float32(0)), seams, np.nextafter(seams, np.float32(9))])
    y = _elementwise.erf_forward(x)
    exact = special.erf(x.astype(np.float64))
    ulp = np.abs(y - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulp.max() <= 1.062 and ulp[-7] > 1.0    # the documented 1.06, reached at 1.0559913
    np.testing.assert_array_equal(_elementwise.erf_forward(-x), -y)   # odd
    assert y.tobytes() == special.erf_float32(x).tobytes()
    assert _elementwise.erf_forward(-x).tobytes() == special.erf_float32(-x).tobytes()


def test_float32_erf_edges_and_twin_bit_for_bit():
    from nnlite._kernels import special
    tiny = np.float32(1e-40)                            # subnormal: erf(x) ~ 2x/sqrt(pi)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 10.0, -10.0, 3.9375, 1e-30, tiny,
                  np.finfo(np.float32).max], np.float32)
    y = _elementwise.erf_forward(x)
    assert y.tobytes() == special.erf_float32(x).tobytes() == reference.erf_forward(x).tobytes()
    assert y[0] == 0 and not np.signbit(y[0]) and np.signbit(y[1])
    assert y[2] == 1 and y[3] == -1 and np.isnan(y[4]) and y[5] == 1 and y[6] == -1 and y[7] == 1
    near_zero = x[8:10].astype(np.float64) * (2 / np.sqrt(np.pi))
    assert np.all(np.abs(y[8:10] - near_zero) <= np.spacing(near_zero.astype(np.float32))) and y[-1] == 1
    # GELU's float32 forward goes through the same erf, so its twin matches it bit for bit too
    rng = np.random.default_rng(5)
    v = (rng.standard_normal(10007) * 4).astype(np.float32)
    assert _elementwise.gelu_forward(v, "none").tobytes() == reference.gelu_forward(v, "none").tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward_from_the_saved_part_is_the_same_bits(rng, dtype, approximate):
    """gelu_forward(save=True) hands backward Phi(x) (or tanh(u)); the gradient from it equals the
    one that computes it again, bit for bit, for any thread count, and the twin agrees."""
    x = (rng.standard_normal((301, 67)) * 3).astype(dtype)[:, ::2]      # not contiguous
    g = rng.standard_normal(x.shape).astype(dtype)
    y, saved = _elementwise.gelu_forward(x, approximate, save=True)
    assert y.tobytes() == _elementwise.gelu_forward(x, approximate).tobytes()
    dx = _elementwise.gelu_backward(g, x, approximate, saved)
    assert dx.tobytes() == _elementwise.gelu_backward(g, x, approximate).tobytes()
    y_ref, saved_ref = reference.gelu_forward(x, approximate, save=True)
    np.testing.assert_allclose(saved, saved_ref, **TOL[dtype])
    np.testing.assert_allclose(dx, reference.gelu_backward(g, x, approximate, saved_ref), rtol=1e-5, atol=2e-5)
    same_bytes_across_threads(lambda a: _elementwise.gelu_forward(a, approximate, save=True), x)
    same_bytes_across_threads(_elementwise.gelu_backward, g, x, approximate, saved)
    with pytest.raises(ValueError, match="saved.*shape"):
        _elementwise.gelu_backward(g, x, approximate, saved[:-1])
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match="share one dtype.*saved"):
        _elementwise.gelu_backward(g, x, approximate, saved.astype(other))


@pytest.mark.parametrize("module", [_elementwise, reference], ids=["compiled", "twin"])
def test_tanh_gelu_backward_of_an_infinite_grad_where_the_slope_rounds_to_0(module):
    # tanh(u) rounds to -1 in float32 at x = -5.368 (and the slope to 0): inf * 0 is NaN, as in
    # PyTorch; where the slope is a float above 0, -inf
    x = np.array([-5.368, -4.5, 5.368], np.float32)
    dx = module.gelu_backward(np.full(3, np.inf, np.float32), x, "tanh")
    assert np.isnan(dx[0]) and dx[1] == -np.inf and dx[2] == np.inf


def test_tanh_gelu_twin_rounds_tanh_as_the_kernel_does(rng):
    x = np.concatenate([rng.standard_normal(20000) * 4, np.linspace(-8, 8, 40001)]).astype(np.float32)
    g = np.ones_like(x)
    for fn in (lambda m: m.gelu_forward(x, "tanh", save=True)[1], lambda m: m.gelu_backward(g, x, "tanh")):
        assert fn(_elementwise).tobytes() == fn(reference).tobytes()

