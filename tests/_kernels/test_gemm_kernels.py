"""GEMM-theme kernels: compiled (``_gemm``) against the NumPy twins, PyTorch and finite differences."""
import numpy as np
import pytest
from helpers import run_fresh, same_bytes_across_threads, threads
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlite._kernels import _blas, _gemm, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
LAYOUTS = ["c", "t", "s", "rows"]
dims = st.sampled_from([0, 1, 2, 3, 5, 7, 8, 17, 33])


def make(rng, shape, dtype, layout="c"):
    """A random matrix of ``shape`` stored C-contiguous ("c"), as a transpose ("t"),
    strided every other column ("s") or as a row slice of a wider array ("rows")."""
    rows, cols = shape
    if layout == "t":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "s":
        return rng.standard_normal((rows, 2 * cols)).astype(dtype)[:, ::2]
    if layout == "rows":
        return rng.standard_normal((rows, cols + 3)).astype(dtype)[:, :cols]
    return rng.standard_normal(shape).astype(dtype)


def check_output(out, shape, dtype):
    assert out.shape == shape and out.dtype == dtype and out.flags.c_contiguous


# -------------------------------------------------------------- vs the twin -----

@settings(max_examples=25, deadline=None)
@given(m=dims, k=dims, n=dims, trans_a=st.booleans(), trans_b=st.booleans(),
       layout_a=st.sampled_from(LAYOUTS), layout_b=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from(DTYPES))
def test_gemm_matches_twin(m, k, n, trans_a, trans_b, layout_a, layout_b, dtype):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = make(rng, (k, m) if trans_a else (m, k), dtype, layout_a)
    b = make(rng, (n, k) if trans_b else (k, n), dtype, layout_b)
    out = _gemm.gemm(a, b, trans_a, trans_b)
    check_output(out, (m, n), dtype)
    np.testing.assert_allclose(out, reference.gemm(a, b, trans_a, trans_b), **TOL[dtype])
    if k == 0:
        assert not out.any()


@settings(max_examples=25, deadline=None)
@given(batch=st.sampled_from([0, 1, 3]), m=dims, k=dims, n=dims, trans_a=st.booleans(),
       trans_b=st.booleans(), transposed=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_bmm_matches_twin(batch, m, k, n, trans_a, trans_b, transposed, dtype):
    rng = np.random.default_rng(batch + m * 100 + k * 10 + n)
    a = rng.standard_normal((batch,) + ((k, m) if trans_a else (m, k))).astype(dtype)
    b = rng.standard_normal((batch,) + ((n, k) if trans_b else (k, n))).astype(dtype)
    if transposed:   # same logical operands, stored with the last two axes swapped
        a = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)
        b = rng.standard_normal((batch, 2 * b.shape[1], b.shape[2])).astype(dtype)[:, ::2]
    out = _gemm.bmm(a, b, trans_a, trans_b)
    check_output(out, (batch, m, n), dtype)
    np.testing.assert_allclose(out, reference.bmm(a, b, trans_a, trans_b), **TOL[dtype])


BATCH_LAYOUTS = ["c", "heads", "t", "every_other", "broadcast", "s"]


def make_batched(rng, batch, rows, cols, dtype, layout):
    """A random (*batch, rows, cols) operand for bmm: C-contiguous ("c"); the (N, H, L, d)
    heads view of (N, L, H, d) storage ("heads", 4-D); stored with the last two axes swapped
    ("t"); every other item of a longer batch ("every_other"); one matrix repeated with
    batch stride 0 ("broadcast"); every other column, which BLAS cannot read ("s": copied)."""
    shape = tuple(batch) + (rows, cols)
    if layout == "s":
        return rng.standard_normal(shape[:-1] + (2 * cols,)).astype(dtype)[..., ::2]
    if layout == "heads" and len(batch) == 2:
        return rng.standard_normal((batch[0], rows, batch[1], cols)).astype(dtype).transpose(0, 2, 1, 3)
    if layout == "t":
        return np.swapaxes(rng.standard_normal(tuple(batch) + (cols, rows)).astype(dtype), -1, -2)
    if layout == "every_other":
        return rng.standard_normal((2 * batch[0],) + shape[1:]).astype(dtype)[::2]
    if layout == "broadcast":
        return np.broadcast_to(rng.standard_normal((rows, cols)).astype(dtype), shape)
    return rng.standard_normal(shape).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(outer=st.sampled_from([0, 1, 2]), inner=st.sampled_from([1, 3]), m=dims, k=dims, n=dims,
       trans_a=st.booleans(), trans_b=st.booleans(), layout_a=st.sampled_from(BATCH_LAYOUTS),
       layout_b=st.sampled_from(BATCH_LAYOUTS), dtype=st.sampled_from(DTYPES))
def test_bmm_4d_matches_twin(outer, inner, m, k, n, trans_a, trans_b, layout_a, layout_b, dtype):
    """Two batch dims, each operand with its own batch strides, read in place."""
    rng = np.random.default_rng(outer * 1000 + inner * 100 + m * 10 + n + k)
    a = make_batched(rng, (outer, inner), *((k, m) if trans_a else (m, k)), dtype, layout_a)
    b = make_batched(rng, (outer, inner), *((n, k) if trans_b else (k, n)), dtype, layout_b)
    out = _gemm.bmm(a, b, trans_a, trans_b)
    check_output(out, (outer, inner, m, n), dtype)
    np.testing.assert_allclose(out, reference.bmm(a, b, trans_a, trans_b), **TOL[dtype])


def _items_big_enough_to_share():
    """(m, k, n) of a product the BLAS door splits among threads (not one item per thread)."""
    m = -(-_blas.gemm_blocks()[2] // (130 * 110))
    return m, 130, 110


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", ["attention", "shared"])
def test_bmm_4d_views_give_the_3d_bits_on_every_thread_count(rng, dtype, size):
    """Each item of a 4-D product (a permuted view, and a transposed one) is the same BLAS call as
    in the 3-D product of the same matrices copied contiguous: the same bytes, for 1, 2 and 4 threads."""
    (m, k, n), outer, inner = ((64, 32, 48), 3, 4) if size == "attention" else (_items_big_enough_to_share(), 2, 2)
    a_store = rng.standard_normal((outer, m, inner, k)).astype(dtype)      # heads: (N, L, H, d)
    b_store = rng.standard_normal((outer, inner, n, k)).astype(dtype)      # read transposed
    heads = lambda a: a.transpose(0, 2, 1, 3)
    key_t = lambda b: np.swapaxes(b, -1, -2)
    out = _gemm.bmm(heads(a_store), key_t(b_store))
    flat = _gemm.bmm(np.ascontiguousarray(heads(a_store)).reshape(-1, m, k),
                     np.ascontiguousarray(key_t(b_store)).reshape(-1, k, n))
    assert out.tobytes() == flat.tobytes()
    # (helpers' same_bytes_across_threads copies its arguments contiguous: build the views inside)
    same_bytes_across_threads(lambda a, b: _gemm.bmm(heads(a), key_t(b)), a_store, b_store)
    same_bytes_across_threads(lambda a, b: _gemm.bmm(heads(a), b, False, True), a_store, b_store)
    np.testing.assert_allclose(out, heads(a_store) @ key_t(b_store),
                               rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


OUT_LAYOUTS = ["c", "heads", "padded_rows", "every_other", "reversed"]


def make_out(batch, rows, cols, dtype, layout):
    """An empty (*batch, rows, cols) array BLAS can write as it lies: C-contiguous ("c"); the
    (N, H, L, d) view of an (N, L, H, d) buffer ("heads"); rows cut from wider rows
    ("padded_rows"); every other item of a longer batch ("every_other"); the batch read
    backwards, a negative stride ("reversed")."""
    shape = tuple(batch) + (rows, cols)
    if layout == "heads" and len(batch) == 2:
        return np.full((batch[0], rows, batch[1], cols), np.nan, dtype).transpose(0, 2, 1, 3)
    if layout == "padded_rows":
        return np.full(shape[:-1] + (cols + 3,), np.nan, dtype)[..., :cols]
    if layout == "every_other":
        return np.full((2 * batch[0],) + shape[1:], np.nan, dtype)[::2]
    if layout == "reversed":
        return np.full(shape, np.nan, dtype)[::-1]
    return np.full(shape, np.nan, dtype)


@settings(max_examples=60, deadline=None)
@given(outer=st.sampled_from([None, 0, 1, 2]), inner=st.sampled_from([0, 1, 3]), m=dims, k=dims, n=dims,
       trans_a=st.booleans(), trans_b=st.booleans(), layout_a=st.sampled_from(BATCH_LAYOUTS),
       layout_out=st.sampled_from(OUT_LAYOUTS), dtype=st.sampled_from(DTYPES))
def test_bmm_into_out_gives_the_same_bits(outer, inner, m, k, n, trans_a, trans_b, layout_a, layout_out, dtype):
    """bmm(..., out=out) writes into out, whatever its batch strides and row stride, and returns
    it; the bytes are those of the product without out, and the twin's equal to rounding."""
    rng = np.random.default_rng((outer or 0) * 1000 + inner * 100 + m * 10 + n + k)
    batch = (inner,) if outer is None else (outer, inner)
    a = make_batched(rng, batch, *((k, m) if trans_a else (m, k)), dtype, layout_a)
    b = make_batched(rng, batch, *((n, k) if trans_b else (k, n)), dtype, "c")
    out = make_out(batch, m, n, dtype, layout_out)
    twin_out = make_out(batch, m, n, dtype, layout_out)
    assert _gemm.bmm(a, b, trans_a, trans_b, out) is out
    assert reference.bmm(a, b, trans_a, trans_b, out=twin_out) is twin_out
    plain = _gemm.bmm(a, b, trans_a, trans_b)
    assert np.ascontiguousarray(out).tobytes() == plain.tobytes()
    np.testing.assert_allclose(twin_out, out, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", ["attention", "shared"])
def test_bmm_into_head_views_on_every_thread_count(rng, dtype, size):
    """Attention's gradient dQ = dS K written into the (N, H, L, d) view of an (N, L, H, d)
    buffer: the bytes of the product without out, for 1, 2 and 4 threads, in both the
    items-per-thread path and the path where each product is shared."""
    (m, k, n), outer, inner = ((64, 48, 32), 3, 4) if size == "attention" else (_items_big_enough_to_share(), 2, 2)
    g = rng.standard_normal((outer, inner, m, k)).astype(dtype)
    b_store = rng.standard_normal((outer, k, inner, n)).astype(dtype)
    heads = lambda x: x.transpose(0, 2, 1, 3)

    def into_heads(g, b_store):
        out = np.empty((outer, m, inner, n), dtype)
        _gemm.bmm(g, heads(b_store), out=heads(out))
        return out

    same_bytes_across_threads(into_heads, g, b_store)
    assert np.ascontiguousarray(heads(into_heads(g, b_store))).tobytes() == _gemm.bmm(g, heads(b_store)).tobytes()


def test_bmm_out_errors_name_expected_and_given():
    """A wrong out is refused before anything is written, by the kernel and its twin alike."""
    a, b = np.ones((2, 4, 3)), np.ones((2, 3, 5))
    store = np.ones((2, 4, 3, 5))   # 4-D operands for the overlap cases
    bad = [
        (np.empty((2, 5, 4)), ValueError, r"shape \(2, 4, 5\), got \(2, 5, 4\)"),
        (np.empty((2, 4, 5), np.float32), TypeError, "dtype float64, got float32"),
        (np.empty((2, 4, 5), ">f8"), TypeError, "byte order"),
        ([[0.0]], TypeError, "numpy.ndarray, got list"),
        (np.empty((2, 5, 4)).transpose(0, 2, 1), ValueError, r"row by row.*strides \(160, 8, 32\)"),
        (np.empty((2, 4, 10))[..., ::2], ValueError, r"row by row.*column stride 8 bytes"),
        (np.broadcast_to(np.empty((4, 5)), (2, 4, 5)), ValueError, "writable"),
        (np.lib.stride_tricks.as_strided(np.empty((4, 5)), (2, 4, 5), (0, 40, 8)), ValueError,
         "share memory.*strides \\(0, 40, 8\\)"),
        (np.empty((2, 4, 41), np.uint8)[..., 1:].view(np.float64), ValueError, "aligned"),
    ]
    for kernel in (_gemm, reference):
        for out, error, message in bad:
            with pytest.raises(error, match=message):
                kernel.bmm(a, b, out=out)
        x = store[:, :, :, :3]   # (2, 4, 3, 3) reads of store
        with pytest.raises(ValueError, match="out and a overlap"):
            kernel.bmm(x, np.ones((2, 4, 3, 3)), out=store[:, :, :3, 2:])
        with pytest.raises(ValueError, match="out and b overlap"):
            kernel.bmm(np.ones((2, 4, 3, 3)), x, out=x)
        # rows of one buffer read and written in turn: bounds that meet, no shared element
        buf = np.random.default_rng(0).standard_normal((2, 6, 3))
        a_rows, out_rows = buf[:, 1::2], buf[:, ::2]
        want = _gemm.bmm(a_rows, np.eye(3)[None].repeat(2, 0) * 2)
        assert kernel.bmm(a_rows, np.eye(3)[None].repeat(2, 0) * 2, out=out_rows) is out_rows
        np.testing.assert_array_equal(out_rows, want)


@settings(max_examples=25, deadline=None)
@given(batch=dims, in_features=dims, out_features=dims, has_bias=st.booleans(),
       activation=st.sampled_from([None, "relu"]), layout=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from(DTYPES))
def test_linear_forward_matches_twin(batch, in_features, out_features, has_bias, activation,
                                     layout, dtype):
    rng = np.random.default_rng(batch * 100 + in_features * 10 + out_features)
    x = make(rng, (batch, in_features), dtype, layout)
    weight = make(rng, (out_features, in_features), dtype, "c")
    bias = rng.standard_normal(2 * out_features).astype(dtype)[::2] if has_bias else None
    out = _gemm.linear_forward(x, weight, bias, activation)
    check_output(out, (batch, out_features), dtype)
    np.testing.assert_allclose(out, reference.linear_forward(x, weight, bias, activation), **TOL[dtype])
    if activation == "relu":
        assert (out >= 0).all()


@settings(max_examples=25, deadline=None)
@given(rows=st.sampled_from([0, 1, 5, 255, 256, 257, 600]), cols=st.sampled_from([0, 1, 7, 64, 65, 200]),
       layout=st.sampled_from(LAYOUTS), dtype=st.sampled_from(DTYPES))
def test_bias_grad_bitwise_equals_twin(rows, cols, layout, dtype):
    g = make(np.random.default_rng(rows + cols), (rows, cols), dtype, layout)
    out = _gemm.bias_grad(g)
    check_output(out, (cols,), dtype)
    assert out.tobytes() == reference.bias_grad(g).tobytes()
    np.testing.assert_allclose(out, g.sum(axis=0, dtype=np.float64), rtol=1e-4, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([0, 1, 5, 6, 7, 97, 130]), k=st.sampled_from([0, 1, 3, 255, 257, 300]),
       n=st.sampled_from([0, 1, 8, 15, 17, 40]), layout=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from(DTYPES))
def test_gemm_tiled_matches_twin(m, k, n, layout, dtype):
    rng = np.random.default_rng(m + k + n)
    a = make(rng, (m, k), dtype, layout)
    b = make(rng, (k, n), dtype, "c")
    out = _gemm.gemm_tiled(a, b)
    check_output(out, (m, n), dtype)
    # the twin runs the same blocked loops in the same order: equal bit for bit
    assert out.tobytes() == reference.gemm_tiled(a, b).tobytes()
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else TOL[dtype]
    np.testing.assert_allclose(out, np.matmul(a, b), **tol)


def test_gemm_tiled_1024_float32_close_to_numpy(rng):
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    np.testing.assert_allclose(_gemm.gemm_tiled(a, b), a @ b, rtol=1e-3, atol=2e-3)


# ------------------------------------------------------------------ threads -----

@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bytes_for_1_2_4_threads(rng, dtype):
    a = rng.standard_normal((70, 300)).astype(dtype)
    b = rng.standard_normal((300, 130)).astype(dtype)
    same_bytes_across_threads(_gemm.gemm_tiled, a, b)
    g = rng.standard_normal((700, 150)).astype(dtype)
    same_bytes_across_threads(_gemm.bias_grad, g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(70, 300, 130), (300, 40, 290), (3, 9000, 20), (1, 300, 70)])
def test_blas_kernels_same_bytes_across_threads(rng, dtype, shape):
    """One-thread BLAS on fixed blocks (``_blas.pyx``): row blocks, column blocks, inner-dim
    chunks and the GEMV path all give the same bytes for 1, 2 and 4 threads."""
    m, k, n = shape
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    weight = rng.standard_normal((n, k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    same_bytes_across_threads(_gemm.gemm, a, b)
    same_bytes_across_threads(_gemm.gemm, b, b, True, False)
    same_bytes_across_threads(_gemm.bmm, np.stack([a, a]), np.stack([b, b]))
    same_bytes_across_threads(_gemm.linear_forward, a, weight, bias, "relu")
    same_bytes_across_threads(_gemm.linear_forward, a, weight, None, None)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bmm_of_small_items_shares_items_among_threads(rng, dtype):
    """Attention-sized items are too small to split; the threads take whole items instead."""
    q = rng.standard_normal((24, 64, 32)).astype(dtype)
    k = rng.standard_normal((24, 64, 32)).astype(dtype)
    same_bytes_across_threads(_gemm.bmm, q, k, False, True)
    np.testing.assert_allclose(_gemm.bmm(q, k, False, True), q @ k.transpose(0, 2, 1),
                               rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.parametrize("batch, m", [(7, 160), (8, 160), (8, 300), (9, 330)])
def test_bmm_of_many_mid_sized_items_is_the_same_on_every_thread_count(rng, batch, m):
    """Items above the door's split size: with 8 or more of them, each up to 8 times that size,
    the threads take whole items; fewer or bigger items run one by one, each cut by the door.
    Either way the plan comes from the shape, so the bytes do not depend on the thread count."""
    a = rng.standard_normal((batch, m, 96)).astype(np.float32)
    b = rng.standard_normal((batch, 96, m)).astype(np.float32)
    assert m * m * 96 > 2 ** 21   # the door's split size (min_split_work), unless overridden
    same_bytes_across_threads(_gemm.bmm, a, b)
    np.testing.assert_allclose(_gemm.bmm(a, b), a @ b, rtol=1e-4, atol=1e-3)


def test_scipy_blas_fallback_gives_the_same_products(tmp_path):
    """Without an OpenBLAS found in the process, the door calls SciPy's Cython BLAS (LP64)."""
    pytest.importorskip("scipy.linalg")   # the fallback is optional: SciPy is not a dependency
    code = (
        "import sys; sys.modules['threadpoolctl'] = None\n"
        "import numpy as np\n"
        "from nnlite._kernels import _blas, _gemm\n"
        "assert _blas.blas_library() == 'lp64', _blas.blas_library()\n"
        "rng = np.random.default_rng(0)\n"
        "for dtype in (np.float32, np.float64):\n"
        "    a = rng.standard_normal((300, 70)).astype(dtype)\n"
        "    b = rng.standard_normal((300, 40)).astype(dtype)\n"
        "    np.testing.assert_allclose(_gemm.gemm(a, b, True, False), a.T @ b, rtol=1e-4, atol=1e-4)\n"
        "    x = rng.standard_normal((1, 70)).astype(dtype)\n"
        "    np.testing.assert_allclose(_gemm.gemm(x, a, False, True), x @ a.T, rtol=1e-4, atol=1e-4)\n"
        "print('ok')\n"
    )
    result = run_fresh(["-c", code], tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 40, 290), (70, 300, 130), (20, 9000, 24), (5, 7, 3), (2, 0, 6),
                                   (1, 300, 70), (1, 0, 5)])
def test_linear_forward_epilogue_is_the_separate_passes_bit_for_bit(rng, dtype, shape):
    """Bias and ReLU run inside the product's blocks (row blocks, column blocks, inner-dimension
    chunks, one call). Without a bias the bytes are the product's (gemm); with ReLU they are
    the biased output's clamped at 0; each of the three outputs has the same bytes for 1, 2
    and 4 threads. The biased output is the product added onto the bias by BLAS (beta = 1),
    whose additions BLAS orders as it likes: it equals plain + bias only within rounding."""
    m, k, n = shape
    x = rng.standard_normal((m, k)).astype(dtype)
    weight = rng.standard_normal((n, k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    x[0, :1] = np.nan   # a NaN row stays NaN through the ReLU, as in torch.relu
    outputs = {}
    for count in (1, 2, 4):
        with threads(count):
            plain = _gemm.linear_forward(x, weight, None, None)
            biased = _gemm.linear_forward(x, weight, bias, None)
            fused = _gemm.linear_forward(x, weight, bias, "relu")
            assert plain.tobytes() == _gemm.gemm(x, weight, False, True).tobytes()
        np.testing.assert_allclose(biased, plain + bias, **TOL[dtype])
        relu = np.where(biased < 0, dtype(0), biased)
        assert fused.tobytes() == relu.tobytes()
        assert np.isnan(fused[0]).all() == (k > 0)
        outputs[count] = (plain.tobytes(), biased.tobytes(), fused.tobytes())
    assert outputs[1] == outputs[2] == outputs[4]


def test_weight_gradient_shaped_products_chunk_the_inner_dimension(rng):
    """A small C with a long inner dimension is summed in fixed chunks, in order."""
    x = rng.standard_normal((20000, 32)).astype(np.float32)
    g = rng.standard_normal((20000, 27)).astype(np.float32)
    same_bytes_across_threads(_gemm.gemm, x, g, True, False)
    np.testing.assert_allclose(_gemm.gemm(x, g, True, False), x.astype(np.float64).T @ g,
                               rtol=1e-4, atol=1e-2)


def test_gemm_tiled_does_not_depend_on_panel_split(rng):
    # more threads than column panels, and panels narrower than NR
    a = rng.standard_normal((13, 40)).astype(np.float32)
    b = rng.standard_normal((40, 35)).astype(np.float32)
    with threads(1):
        one = _gemm.gemm_tiled(a, b)
    for n in (2, 3, 4, 8):
        with threads(n):
            assert _gemm.gemm_tiled(a, b).tobytes() == one.tobytes()


# -------------------------------------------------------------------- torch -----

def test_values_match_torch(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((9, 11))
    b = rng.standard_normal((11, 6))
    np.testing.assert_allclose(_gemm.gemm(a, b), torch.matmul(torch.tensor(a), torch.tensor(b)).numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_gemm.gemm_tiled(a, b), torch.matmul(torch.tensor(a), torch.tensor(b)).numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_gemm.gemm(a.T.copy(), b.T.copy(), True, True),
                               torch.matmul(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12, atol=1e-12)
    x3 = rng.standard_normal((4, 5, 7))
    y3 = rng.standard_normal((4, 7, 3))
    np.testing.assert_allclose(_gemm.bmm(x3, y3), torch.bmm(torch.tensor(x3), torch.tensor(y3)).numpy(),
                               rtol=1e-12, atol=1e-12)
    x = rng.standard_normal((8, 11))
    w = rng.standard_normal((6, 11))
    bias = rng.standard_normal(6)
    want = torch.relu(torch.nn.functional.linear(torch.tensor(x), torch.tensor(w), torch.tensor(bias)))
    np.testing.assert_allclose(_gemm.linear_forward(x, w, bias, "relu"), want.numpy(), rtol=1e-12, atol=1e-12)
    # the weight/bias gradients nnlite builds from these kernels
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    g = rng.standard_normal((8, 6))
    torch.nn.functional.linear(xt, wt, bt).backward(torch.tensor(g))
    np.testing.assert_allclose(_gemm.bias_grad(g), bt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_gemm.gemm(g, x, trans_a=True), wt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_gemm.gemm(g, w), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------- finite differences -----

def test_linear_gradients_match_finite_differences(rng):
    """The backward of y = x W^T + b is dW = g^T x, dx = g W, db = bias_grad(g)."""
    x = rng.standard_normal((5, 4))
    weight = rng.standard_normal((3, 4))
    bias = rng.standard_normal(3)
    g = rng.standard_normal((5, 3))
    loss = lambda x_, w_, b_: float(np.sum(g * _gemm.linear_forward(x_, w_, b_, None)))
    analytic = {"x": _gemm.gemm(g, weight), "weight": _gemm.gemm(g, x, trans_a=True),
                "bias": _gemm.bias_grad(g)}
    h = 1e-6
    for name, arr in (("x", x), ("weight", weight), ("bias", bias)):
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args = {"x": x.copy(), "weight": weight.copy(), "bias": bias.copy()}
            args[name][idx] += h
            up = loss(args["x"], args["weight"], args["bias"])
            args[name][idx] -= 2 * h
            down = loss(args["x"], args["weight"], args["bias"])
            numeric[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------- bad input -----

def test_bad_inputs_raise_clear_errors():
    a32 = np.ones((2, 3), np.float32)
    a64 = np.ones((3, 4), np.float64)
    with pytest.raises(TypeError, match="float32.*float64"):
        _gemm.gemm(a32, a64)
    with pytest.raises(TypeError, match="int64"):
        _gemm.gemm(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))
    with pytest.raises(TypeError, match="ndarray"):
        _gemm.gemm([[1.0]], [[1.0]])
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        _gemm.gemm(a32, a32)
    with pytest.raises(ValueError, match="2-D.*\\(3,\\)"):
        _gemm.gemm(np.ones(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match="3-D"):
        _gemm.bmm(a32, a32)
    with pytest.raises(ValueError, match=r"\(2, 2, 3\)"):
        _gemm.bmm(np.ones((2, 2, 3)), np.ones((3, 2, 3)))
    for kernel in (_gemm, reference):   # 4-D: both operands, the same batch dims
        with pytest.raises(ValueError, match=r"both be 3-D or both 4-D.*\(2, 2, 3\) and \(1, 2, 3, 2\)"):
            kernel.bmm(np.ones((2, 2, 3)), np.ones((1, 2, 3, 2)))
        with pytest.raises(ValueError, match=r"both be 3-D or both 4-D.*\(1, 1, 1, 2, 3\)"):
            kernel.bmm(np.ones((1, 1, 1, 2, 3)), np.ones((1, 1, 1, 3, 2)))
        with pytest.raises(ValueError, match=r"op\(a\) of shape \(2, 4, 2, 3\).*op\(b\) of shape \(2, 3, 3, 2\)"):
            kernel.bmm(np.ones((2, 4, 2, 3)), np.ones((2, 3, 3, 2)))
        with pytest.raises(TypeError, match="byte order"):
            kernel.bmm(np.ones((2, 4, 2, 3), ">f8"), np.ones((2, 4, 3, 2)))
    with pytest.raises(ValueError, match=r"in_features=4.*\(2, 3\)"):
        _gemm.linear_forward(np.ones((2, 3)), np.ones((5, 4)), None, None)
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        _gemm.linear_forward(np.ones((2, 4)), np.ones((5, 4)), np.ones(4), None)
    for bias in (np.ones((1, 5)), np.ones(())):   # the right size, the wrong number of dims
        with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
            _gemm.linear_forward(np.ones((1, 4)), np.ones((5, 4)), bias, None)
    with pytest.raises(TypeError, match="float64.*float32"):
        _gemm.linear_forward(np.ones((2, 4)), np.ones((5, 4)), np.ones(5, np.float32), None)
    with pytest.raises(ValueError, match="activation"):
        _gemm.linear_forward(np.ones((2, 4)), np.ones((5, 4)), None, "tanh")
    with pytest.raises(ValueError, match=r"2-D.*\(3,\)"):
        _gemm.bias_grad(np.ones(3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        _gemm.gemm_tiled(a32, a32)
    with pytest.raises(TypeError, match="float32.*float64"):
        _gemm.gemm_tiled(a32, a64)
    for kernel in (_gemm, reference):   # the twin says the same
        with pytest.raises(TypeError, match="float32.*float64"):
            kernel.gemm(a32, a64)


def test_blas_door_reads_the_integer_width_from_the_library_itself(tmp_path):
    """The OpenBLAS used is the one threadpoolctl lists; its own config string decides ILP64.
    (In a fresh process, where NumPy's OpenBLAS is the only one loaded.)"""
    code = (
        "import ctypes\n"
        "from nnlite._kernels import _blas\n"
        "dll, prefix, suffix = _blas._openblas_libraries()[0]\n"
        "config = getattr(dll, f'{prefix}openblas_get_config{suffix}')\n"
        "config.restype = ctypes.c_char_p\n"
        "expected = 'ilp64' if b'USE64BITINT' in config() else 'lp64'\n"
        "assert _blas.blas_library() == expected and _blas.blas_threads_pinned(), expected\n"
        "print('ok')\n"
    )
    result = run_fresh(["-c", code], tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
