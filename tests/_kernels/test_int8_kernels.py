"""The int8 GEMM kernel (_int8.pyx) against its NumPy twin (reference/_int8.py): the same bytes
on random shapes (empty, size 1, odd, non-contiguous, tails of the 4 x 16 tile and of the four-k
groups), for 1, 2 and 4 threads, at the extremes of the codes, and clear errors."""
import numpy as np
import pytest

from helpers import same_bytes_across_threads
from nnlite._kernels.reference import _int8 as reference_int8



def compiled():
    """The compiled module; skips the calling test on a build without it."""
    return pytest.importorskip("nnlite._kernels._int8")


def _operands(rng, M, N, K, bias=True):
    x = rng.integers(0, 256, (M, K), dtype=np.uint8)
    w = rng.integers(-128, 128, (N, K), dtype=np.int8)
    sums = w.astype(np.int32).sum(axis=1).astype(np.int32)
    mult = (rng.random(N) * 1e-3 + 1e-5).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32) if bias else None
    return x, int(rng.integers(0, 256)), w, sums, mult, b


SHAPES = [(0, 3, 4), (3, 0, 4), (2, 3, 0), (1, 1, 1), (1, 7, 13), (5, 4, 8), (3, 9, 31), (17, 33, 65),
          (64, 10, 256), (2, 258, 784), (6, 8, 4), (13, 17, 19), (12, 16, 6), (9, 24, 9)]


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_equals_twin_float_output(M, N, K, bias):
    k = compiled()
    args = _operands(np.random.default_rng(M * 1000 + N * 10 + K), M, N, K, bias)
    ours, twin = k.int8_linear(*args), reference_int8.int8_linear(*args)
    assert ours.dtype == twin.dtype == np.float32 and ours.shape == (M, N)
    assert ours.tobytes() == twin.tobytes()
    # and the twin is the formula, in float64 to within float32 rounding
    x, zp, w, sums, mult, b = args
    exact = (x.astype(np.int64) - zp) @ w.astype(np.int64).T * mult.astype(np.float64)
    if b is not None:
        exact = exact + b
    np.testing.assert_allclose(twin, exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("M,N,K", SHAPES)
def test_equals_twin_requantized_output(M, N, K):
    k = compiled()
    rng = np.random.default_rng(7 + M + N + K)
    args = _operands(rng, M, N, K)
    ours = k.int8_linear(*args, out_scale=0.05, out_zero_point=100)
    twin = reference_int8.int8_linear(*args, out_scale=0.05, out_zero_point=100)
    assert ours.dtype == np.uint8 and ours.tobytes() == twin.tobytes()


def test_non_contiguous_inputs():
    k = compiled()
    rng = np.random.default_rng(1)
    x, zp, w, sums, mult, b = _operands(rng, 6, 10, 40)
    x_strided = np.repeat(x, 2, axis=1)[:, ::2]          # a strided view with the same values
    w_t = np.asfortranarray(w)
    assert not x_strided.flags.c_contiguous and not w_t.flags.c_contiguous
    want = reference_int8.int8_linear(x, zp, w, sums, mult, b)
    assert k.int8_linear(x_strided, zp, w_t, sums, mult[::1], b).tobytes() == want.tobytes()
    assert reference_int8.int8_linear(x_strided, zp, w_t, sums, mult, b).tobytes() == want.tobytes()


@pytest.mark.parametrize("M,N,K", [(1, 256, 784), (64, 257, 784), (33, 10, 256)])
def test_same_bytes_for_1_2_4_threads(M, N, K):
    k = compiled()
    args = _operands(np.random.default_rng(3), M, N, K)
    same_bytes_across_threads(k.int8_linear, *args)
    same_bytes_across_threads(lambda *a: k.int8_linear(*a, out_scale=0.02, out_zero_point=3), *args)


@pytest.mark.parametrize("impl", ["compiled", "twin"])
def test_bad_input_errors(impl):
    k = compiled() if impl == "compiled" else reference_int8
    x, zp, w, sums, mult, b = _operands(np.random.default_rng(0), 2, 3, 4)
    with pytest.raises(TypeError, match="x_q must be uint8, got int8"):
        k.int8_linear(x.view(np.int8), zp, w, sums, mult, b)
    with pytest.raises(TypeError, match="w_q must be int8, got float32"):
        k.int8_linear(x, zp, w.astype(np.float32), sums, mult, b)
    with pytest.raises(TypeError, match="x_q must be a numpy.ndarray"):
        k.int8_linear([[1, 2, 3, 4]], zp, w, sums, mult, b)
    with pytest.raises(ValueError, match=r"x_q has 4 features .* but w_q has 5"):
        k.int8_linear(x, zp, np.zeros((3, 5), np.int8), sums, mult, b)
    with pytest.raises(ValueError, match="need 3 entries"):
        k.int8_linear(x, zp, w, sums[:2], mult, b)
    with pytest.raises(ValueError, match="bias needs 3 entries"):
        k.int8_linear(x, zp, w, sums, mult, b[:1])
    with pytest.raises(ValueError, match="x_q must be 2-D"):
        k.int8_linear(x[0], zp, w, sums, mult, b)
    with pytest.raises(ValueError, match=r"x_zero_point must be an int in \[0, 255\], got 300"):
        k.int8_linear(x, 300, w, sums, mult, b)
    with pytest.raises(ValueError, match="out_scale must be > 0"):
        k.int8_linear(x, zp, w, sums, mult, b, out_scale=0.0)
    with pytest.raises(ValueError, match="input features fit int32"):
        k.int8_linear(np.zeros((1, 70000), np.uint8), 0, np.zeros((1, 70000), np.int8),
                      np.zeros(1, np.int32), mult[:1], None)


def test_the_kernels_are_rows_of_the_table():
    k = compiled()
    import nnlite._kernels as kernels
    names = ["pack_int8_weight", "int8_linear", "quantize_u8", "dynamic_qparams", "quantized_linear"]
    assert sorted(k.__all__) == sorted(reference_int8.__all__) == sorted(names)
    for name in names:
        assert getattr(kernels.K, name) is getattr(k, name)
        assert getattr(kernels.reference, name) is getattr(reference_int8, name)


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 7), (64, 784), (2, 3, 5)])
def test_quantize_u8_equals_twin(shape):
    k = compiled()
    x = (np.random.default_rng(5).standard_normal(shape) * 40).astype(np.float32)
    if x.size > 3:
        x.reshape(-1)[:3] = [np.nan, np.inf, -np.inf]
    for scale, zp in [(0.37, 100), (1.0, 0), (0.01, 255)]:
        ours, twin = k.quantize_u8(x, scale, zp), reference_int8.quantize_u8(x, scale, zp)
        assert ours.dtype == np.uint8 and ours.shape == x.shape and ours.tobytes() == twin.tobytes()
    if x.ndim == 2 and x.shape[1] > 1:
        assert k.quantize_u8(x[:, ::2], 0.5, 7).tobytes() == reference_int8.quantize_u8(x[:, ::2], 0.5, 7).tobytes()


@pytest.mark.parametrize("impl", ["compiled", "twin"])
def test_quantize_u8_errors(impl):
    k = compiled() if impl == "compiled" else reference_int8
    with pytest.raises(TypeError, match="x must be a float32 numpy.ndarray, got float64"):
        k.quantize_u8(np.zeros(3), 1.0, 0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        k.quantize_u8(np.zeros(3, np.float32), 0.0, 0)
    with pytest.raises(ValueError, match=r"zero_point must be an int in \[0, 255\]"):
        k.quantize_u8(np.zeros(3, np.float32), 1.0, -1)


def test_reports_the_path_it_was_built_with():
    k = compiled()
    assert k.simd_path() in ("AVX-VNNI", "AVX512-VNNI", "AVX2", "portable")


# ------------------------------------------------------------------ the packed weight layout ---

@pytest.mark.parametrize("N,K", [(0, 4), (3, 0), (1, 1), (7, 13), (8, 4), (9, 31), (33, 65), (256, 784)])
def test_pack_equals_twin_and_is_the_documented_layout(N, K):
    k = compiled()
    w = np.random.default_rng(N + K).integers(-128, 128, (N, K), dtype=np.int8)
    ours, twin = k.pack_int8_weight(w), reference_int8.pack_int8_weight(w)
    assert ours.shape == twin.shape == ((N + 7) // 8, (K + 3) // 4, 8, 4) and ours.dtype == np.int8
    assert ours.tobytes() == twin.tobytes()
    for n, kk in [(0, 0), (N - 1, K - 1), (N // 2, K // 3)]:
        if 0 <= n < N and 0 <= kk < K:
            assert ours[n // 8, kk // 4, n % 8, kk % 4] == w[n, kk]
    padded = np.zeros((ours.shape[0] * 8, ours.shape[1] * 4), np.int8)
    padded[:N, :K] = w                    # every byte past the weight is zero
    assert (ours.transpose(0, 2, 1, 3).reshape(padded.shape) == padded).all()
    if N > 1 and K > 1:
        w_f = np.asfortranarray(w)
        assert k.pack_int8_weight(w_f).tobytes() == ours.tobytes()


@pytest.mark.parametrize("impl", ["compiled", "twin"])
def test_pack_of_an_empty_weight_returns_at_once_however_many_rows(impl):
    # 2**40 rows of no columns hold no bytes; a loop over their panels would run for minutes
    k = compiled() if impl == "compiled" else reference_int8
    packed = k.pack_int8_weight(np.empty((2 ** 40, 0), np.int8))
    assert packed.shape == (2 ** 37, 0, 8, 4) and packed.dtype == np.int8


@pytest.mark.parametrize("impl", ["compiled", "twin"])
def test_pack_errors(impl):
    k = compiled() if impl == "compiled" else reference_int8
    with pytest.raises(TypeError, match="pack_int8_weight: w_q must be int8, got int16"):
        k.pack_int8_weight(np.zeros((2, 3), np.int16))
    with pytest.raises(ValueError, match="pack_int8_weight: w_q must be 2-D"):
        k.pack_int8_weight(np.zeros(3, np.int8))


@pytest.mark.parametrize("mode", ["static", "dynamic", "dynamic 7-bit"])
def test_extreme_codes_are_exact(mode):
    """Codes 255 (127 with 7 bits) against weights -128 and 127 over a long row: the largest sums.
    A dot step that saturated in int16 (vpmaddubsw on 8-bit codes) would give other numbers."""
    k = compiled()
    M, N, K = 7, 11, 784
    w = np.where(np.arange(N * K).reshape(N, K) % 3 == 0, 127, -128).astype(np.int8)
    sums, w_scale = w.astype(np.int32).sum(axis=1).astype(np.int32), np.full(N, 1e-4, np.float32)
    x = np.full((M, K), 1000.0, np.float32)        # static: every code clamps to 255
    if mode != "static":
        x[:, ::5] = -1000.0                        # dynamic: the range's ends, codes 0 and q_max
    qparams = ({"x_scale": 0.5, "x_zero_point": 0} if mode == "static"
               else {"reduce_range": mode == "dynamic 7-bit"})
    for impl in (k, reference_int8):
        got = impl.quantized_linear(x, impl.pack_int8_weight(w), sums, w_scale, **qparams)
        if impl is k:
            ours = got
    assert ours.tobytes() == got.tobytes()
    if mode == "static":    # and it is the exact sum, 255 * sum(w), scaled
        want = (np.float32(0.5) * w_scale) * (255 * sums.astype(np.int64)).astype(np.float32)
        np.testing.assert_array_equal(ours, np.broadcast_to(want, (M, N)))


# ----------------------------------- quantized_linear: quantize + GEMM + epilogue in one call ---

def _float_operands(rng, M, N, K, bias=True):
    x = (rng.standard_normal((M, K)) * 3 + 0.5).astype(np.float32)
    w = rng.integers(-128, 128, (N, K), dtype=np.int8)
    sums = w.astype(np.int32).sum(axis=1).astype(np.int32)
    w_scale = (rng.random(N) * 1e-2 + 1e-4).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32) if bias else None
    return x, w, sums, w_scale, b


FUSED_SHAPES = SHAPES + [(1, 256, 784), (64, 256, 256), (7, 5, 17), (5, 6, 48), (2, 4, 16)]


@pytest.mark.parametrize("M,N,K", FUSED_SHAPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("mode", ["dynamic", "dynamic 7-bit", "static"])
def test_quantized_linear_equals_twin(M, N, K, relu, mode):
    k = compiled()
    x, w, sums, w_scale, b = _float_operands(np.random.default_rng(M * 7 + N * 3 + K), M, N, K, bias=M % 2 == 0)
    static, seven = mode == "static", mode == "dynamic 7-bit"
    qparams = {"x_scale": 0.04, "x_zero_point": 117} if static else {"reduce_range": seven}
    ours = k.quantized_linear(x, k.pack_int8_weight(w), sums, w_scale, b, relu=relu, **qparams)
    twin = reference_int8.quantized_linear(x, reference_int8.pack_int8_weight(w), sums, w_scale, b, relu=relu,
                                           **qparams)
    assert ours.dtype == twin.dtype == np.float32 and ours.shape == twin.shape == (M, N)
    assert ours.tobytes() == twin.tobytes()
    if relu and ours.size:
        assert ours.min() >= 0
    # the twin is the two-step path: uint8 codes from the batch's own range, then int8_linear
    if M * K and N:
        scale, zp = (0.04, 117) if static else reference_int8.dynamic_qparams(x.min(), x.max(), seven)
        x_q = reference_int8.quantize_u8(x, scale, zp)
        if seven:                                            # 7-bit codes: 0..127
            x_q = np.minimum(x_q, 127)
        two_step = reference_int8.int8_linear(x_q, zp, w, sums, np.float32(scale) * w_scale, b)
        np.testing.assert_array_equal(twin, np.maximum(two_step, 0) if relu else two_step)


def test_quantized_linear_non_contiguous_input():
    k = compiled()
    x, w, sums, w_scale, b = _float_operands(np.random.default_rng(2), 6, 10, 40)
    x_strided = np.repeat(x, 2, axis=1)[:, ::2]
    assert not x_strided.flags.c_contiguous
    packed = reference_int8.pack_int8_weight(w)
    want = reference_int8.quantized_linear(x, packed, sums, w_scale, b)
    packed_strided = np.repeat(packed, 2, axis=1)[:, ::2]
    assert not packed_strided.flags.c_contiguous
    assert k.quantized_linear(x_strided, packed_strided, sums, w_scale, b).tobytes() == want.tobytes()
    assert reference_int8.quantized_linear(x_strided, packed, sums, w_scale, b).tobytes() == want.tobytes()


@pytest.mark.parametrize("M,N,K", [(1, 256, 784), (64, 257, 784), (33, 10, 256)])
def test_quantized_linear_same_bytes_for_1_2_4_threads(M, N, K):
    k = compiled()
    x, w, sums, w_scale, b = _float_operands(np.random.default_rng(4), M, N, K)
    args = (x, k.pack_int8_weight(w), sums, w_scale, b)
    same_bytes_across_threads(k.quantized_linear, *args)
    same_bytes_across_threads(lambda *a: k.quantized_linear(*a, relu=True), *args)
    same_bytes_across_threads(lambda *a: k.quantized_linear(*a, reduce_range=True), *args)


@pytest.mark.parametrize("lo,hi", [(-1.3, 2.7), (0.5, 3.0), (-3.0, -1.0), (0.0, 0.0), (-1e-9, 1e-9),
                                   (-1e-3, 100.0), (-7.25, 0.125)])
@pytest.mark.parametrize("reduce_range", [False, True])
def test_dynamic_qparams_are_calculate_qparams(lo, hi, reduce_range):
    from nnlite.quantization import calculate_qparams
    # 7-bit activation codes: quint8 with quant_max 127, PyTorch's reduce_range
    want_scale, want_zp = calculate_qparams(np.float32(lo), np.float32(hi), quant_min=0,
                                            quant_max=127 if reduce_range else 255)
    for impl in (compiled(), reference_int8):
        scale, zp = impl.dynamic_qparams(lo, hi, reduce_range)
        assert np.float32(scale) == np.float32(want_scale) and zp == int(want_zp)


@pytest.mark.parametrize("impl", ["compiled", "twin"])
def test_quantized_linear_errors(impl):
    k = compiled() if impl == "compiled" else reference_int8
    x, w, sums, w_scale, b = _float_operands(np.random.default_rng(0), 2, 3, 4)
    w = k.pack_int8_weight(w)
    with pytest.raises(TypeError, match="quantized_linear: x must be float32, got float64"):
        k.quantized_linear(x.astype(np.float64), w, sums, w_scale, b)
    with pytest.raises(TypeError, match="quantized_linear: x must be a numpy.ndarray"):
        k.quantized_linear(x.tolist(), w, sums, w_scale, b)
    with pytest.raises(ValueError, match="quantized_linear: x must be 2-D"):
        k.quantized_linear(x[0], w, sums, w_scale, b)
    with pytest.raises(TypeError, match="w_scale must be float32, got float64"):
        k.quantized_linear(x, w, sums, w_scale.astype(np.float64), b)
    with pytest.raises(ValueError, match="quantized_linear: w_packed must be 4-D, got shape"):
        k.quantized_linear(x, np.zeros((3, 4), np.int8), sums, w_scale, b)    # a weight not packed
    with pytest.raises(ValueError, match=r"w_packed has shape \(1, 2, 8, 4\), but pack_int8_weight of a "
                                         r"\(3, 4\) weight .* has shape \(1, 1, 8, 4\)"):
        k.quantized_linear(x, k.pack_int8_weight(np.zeros((3, 5), np.int8)), sums, w_scale, b)
    with pytest.raises(ValueError, match=r"w_packed has shape \(1, 1, 8, 4\), but pack_int8_weight of a \(9, 4\)"):
        k.quantized_linear(x, w, np.zeros(9, np.int32), w_scale, b)
    with pytest.raises(ValueError, match="w_row_sums and w_scale need 3 entries"):
        k.quantized_linear(x, w, sums, w_scale[:2], b)
    with pytest.raises(ValueError, match="bias needs 3 entries"):
        k.quantized_linear(x, w, sums, w_scale, b[:2])
    with pytest.raises(ValueError, match="x_scale must be > 0"):
        k.quantized_linear(x, w, sums, w_scale, b, x_scale=0.0)
    with pytest.raises(ValueError, match=r"x_zero_point must be an int in \[0, 255\], got 256"):
        k.quantized_linear(x, w, sums, w_scale, b, x_scale=0.1, x_zero_point=256)
    with pytest.raises(ValueError, match="reduce_range applies to dynamic quantization"):
        k.quantized_linear(x, w, sums, w_scale, b, x_scale=0.1, reduce_range=True)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 2] = bad
        with pytest.raises(ValueError, match="dynamic quantization needs a finite input"):
            k.quantized_linear(y, w, sums, w_scale, b)
    # a long row puts the NaN in the vector loop's body, not its tail
    y = np.zeros((1, 64), np.float32)
    y[0, 5] = np.nan
    with pytest.raises(ValueError, match="finite input"):
        k.quantized_linear(y, k.pack_int8_weight(np.zeros((2, 64), np.int8)), np.zeros(2, np.int32),
                           np.ones(2, np.float32))
    # static qparams take any input: NaN gets code 0, +-inf the ends, as quantize_u8 does
    y = x.copy()
    y[0, :3] = [np.nan, np.inf, -np.inf]
    got = k.quantized_linear(y, w, sums, w_scale, b, x_scale=0.1, x_zero_point=9)
    assert got.tobytes() == reference_int8.quantized_linear(y, w, sums, w_scale, b, x_scale=0.1,
                                                            x_zero_point=9).tobytes()


def test_range_of_long_rows_is_exact():
    """The vector min/max: extremes anywhere in a long row (body or tail) give the twin's qparams."""
    k = compiled()
    rng = np.random.default_rng(8)
    w = rng.integers(-128, 128, (3, 1000), dtype=np.int8)
    w_packed = reference_int8.pack_int8_weight(w)
    sums, w_scale = w.astype(np.int32).sum(axis=1).astype(np.int32), np.full(3, 0.01, np.float32)
    for pos in (0, 7, 15, 16, 500, 991, 999):
        x = rng.random((1, 1000)).astype(np.float32)
        x[0, pos] = -50.0
        x[0, (pos + 3) % 1000] = 80.0
        for seven in (False, True):
            assert (k.quantized_linear(x, w_packed, sums, w_scale, reduce_range=seven).tobytes()
                    == reference_int8.quantized_linear(x, w_packed, sums, w_scale, reduce_range=seven).tobytes())


@pytest.mark.parametrize("bias", [True, False])
def test_epilogue_keeps_nan_and_signed_zeros_as_the_twin(bias):
    """The vector epilogue: NaN multipliers stay NaN through the ReLU, -0.0 stays -0.0 (no bias
    means no add), as in the twin's float32 steps; 11 columns, so one panel is partial."""
    k = compiled()
    rng = np.random.default_rng(11)
    x, w, sums, w_scale, b = _float_operands(rng, 9, 11, 12, bias)
    w[3] = 0                                           # sums of exactly 0: +-0.0 after the multiply
    sums = w.astype(np.int32).sum(axis=1).astype(np.int32)
    w_scale[[1, 3, 9]] = [np.nan, -0.5, -1e-3]
    for relu in (False, True):
        ours = k.quantized_linear(x, k.pack_int8_weight(w), sums, w_scale, b, relu=relu)
        twin = reference_int8.quantized_linear(x, reference_int8.pack_int8_weight(w), sums, w_scale, b, relu=relu)
        assert ours.tobytes() == twin.tobytes()
        assert np.isnan(ours[:, 1]).all()
        if not bias:
            assert np.signbit(ours[:, 3]).all()         # (0 * -0.5) = -0.0, kept by ReLU too


@pytest.mark.parametrize("impl", ["compiled", "twin"])
def test_dynamic_quantized_linear_refuses_a_range_beyond_float32(impl):
    # max - min = 6e38 overflows float32: the scale would be inf; both refuse it by name
    k = compiled()
    module = k if impl == "compiled" else reference_int8
    w_q = np.ones((9, 5), np.int8)
    x = np.array([[3e38, -3e38, 0, 1, 2]], np.float32)
    with pytest.raises(ValueError, match=r"quantized_linear: dynamic quantization needs an input range "
                                         r"max\(x, 0\) - min\(x, 0\) within float32"):
        module.quantized_linear(x, k.pack_int8_weight(w_q), w_q.sum(1, dtype=np.int32),
                                np.ones(9, np.float32))
