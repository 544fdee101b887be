"""Recurrent step kernels: compiled (``_rnn``) against their twins (``reference/_rnn.py``), across threads."""
import numpy as np
import pytest
from helpers import same_bytes_across_threads

from nnlite._kernels import K, _rnn, checks, reference
from nnlite._kernels.reference import _rnn as twin

STEPS = ["lstm_step_forward", "lstm_step_backward", "gru_step_forward", "gru_step_backward",
         "rnn_step_forward", "rnn_step_backward"]


def _step_case(rng, name, B, H, dtype):
    """Inputs of one step kernel and the shapes of the arrays it writes."""
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    if name == "lstm_step_forward":
        return (r(B, 4 * H), r(B, 4 * H), r(4 * H), r(B, H)), ((B, 4 * H), (B, H), (B, H))
    if name == "lstm_step_backward":
        gates = rng.uniform(-1, 1, (B, 4 * H)).astype(dtype)
        return (r(B, H), r(B, H), gates, r(B, H), r(B, H)), ((B, 4 * H),)
    if name == "gru_step_forward":
        return (r(B, 3 * H), r(B, 3 * H), r(3 * H), r(B, H)), ((B, 4 * H), (B, H))
    if name == "gru_step_backward":
        gates = rng.uniform(-1, 1, (B, 4 * H)).astype(dtype)
        return (r(B, H), gates, r(B, H)), ((B, 3 * H), (B, 3 * H), (B, H))
    if name == "rnn_step_forward":
        return (r(B, H), r(B, H), r(H)), ((B, H),)
    return (r(B, H), r(B, H)), ((B, H),)


def _run_step(module, name, args, out_shapes, dtype, relu=False):
    """Call one step kernel on copies of ``args`` with fresh outputs; return everything it wrote."""
    args = [a.copy() for a in args]
    outs = [np.full(s, np.nan, dtype) for s in out_shapes]
    extra = (relu,) if name.startswith("rnn_") else ()
    getattr(module, name)(*args, *outs, *extra)
    written = outs + ([args[1]] if name == "lstm_step_backward" else [])   # dc is updated in place
    return tuple(written)


SCANS = ["recurrent_scan_forward", "recurrent_scan_backward"]


def test_step_kernels_are_rows_of_the_table():
    assert sorted(_rnn.__all__) == sorted(twin.__all__) == sorted(STEPS + SCANS)
    for name in STEPS + SCANS:
        assert getattr(K, name) is getattr(_rnn, name)
        assert getattr(reference, name) is getattr(twin, name)


@pytest.mark.parametrize("name", STEPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_kernels_equal_their_twins(rng, name, dtype):
    args, shapes = _step_case(rng, name, B=5, H=7, dtype=dtype)
    for relu in ((False, True) if name.startswith("rnn_") else (False,)):
        got = _run_step(_rnn, name, args, shapes, dtype, relu)
        want = _run_step(twin, name, args, shapes, dtype, relu)
        for g, w in zip(got, want):
            assert g.dtype == dtype and not np.isnan(g).any()
            tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("name", STEPS)
def test_step_kernels_same_bytes_on_1_2_4_threads(rng, name):
    args, shapes = _step_case(rng, name, B=33, H=40, dtype=np.float32)

    def step(*a):
        return _run_step(_rnn, name, a, shapes, np.float32)
    same_bytes_across_threads(step, *args)


def test_step_kernel_errors_name_the_argument():
    B, H = 2, 3
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    for module in (_rnn, twin):
        with pytest.raises(ValueError, match=r"lstm_step_forward: gi must have shape \(2, 12\), got \(2, 11\)"):
            module.lstm_step_forward(z(B, 4 * H), z(B, 4 * H - 1), None, z(B, H), z(B, 4 * H), z(B, H), z(B, H))
        with pytest.raises(TypeError, match=r"gru_step_forward: h_prev is float64, expected float32 \(the dtype of gh\)"):
            module.gru_step_forward(z(B, 3 * H), z(B, 3 * H), None, np.zeros((B, H)), z(B, 4 * H), z(B, H))
        with pytest.raises(TypeError, match="rnn_step_backward: dh must be a numpy.ndarray, got list"):
            module.rnn_step_backward([0.0], z(B, H), z(B, H), False)


@pytest.mark.parametrize("module", [_rnn, twin], ids=["compiled", "twin"])
def test_steps_of_empty_rows_return_at_once_however_many_rows(module):
    # 2**40 rows of no hidden units hold no bytes; the compiled steps looped over the rows
    e = lambda: np.empty((2 ** 40, 0), np.float32)  # noqa: E731
    module.lstm_step_forward(e(), e(), None, e(), e(), e(), e())
    module.lstm_step_backward(e(), e(), e(), e(), e(), e())
    module.gru_step_forward(e(), e(), None, e(), e(), e())
    module.gru_step_backward(e(), e(), e(), e(), e(), e())
    module.rnn_step_forward(e(), e(), None, e(), True)
    module.rnn_step_backward(e(), e(), e(), False)


@pytest.mark.parametrize("module", [_rnn, twin], ids=["compiled", "twin"])
def test_a_state_of_the_wrong_rank_is_refused_before_its_shape_is_read(module):
    # (B, H) came from the state's shape before any check: a 1-D state read past its shape
    z = lambda *s: np.zeros(s)  # noqa: E731
    with pytest.raises(ValueError, match=r"rnn_step_forward: h must be a 2-D \(batch, hidden\) numpy.ndarray"):
        module.rnn_step_forward(z(3, 4), z(3, 4), None, z(4), False)
    with pytest.raises(ValueError, match="lstm_step_forward: c_prev must be a 2-D"):
        module.lstm_step_forward(z(3, 16), z(3, 16), None, z(3, 4, 1), z(3, 16), z(3, 4), z(3, 4))
    with pytest.raises(ValueError, match="gru_step_backward: h_prev must be a 2-D"):
        module.gru_step_backward(z(3, 4), z(3, 16), None, z(3, 12), z(3, 12), z(3, 4))


@pytest.mark.parametrize("module", [_rnn, twin], ids=["compiled", "twin"])
def test_step_outputs_must_be_writable_and_apart_from_the_inputs(module):
    rng = np.random.default_rng(0)
    B, H = 2, 3
    read_only = np.zeros((B, H))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="rnn_step_forward: h is updated in place"):
        module.rnn_step_forward(np.ones((B, H)), np.ones((B, H)), None, read_only, False)
    gh = np.ones((B, H))
    with pytest.raises(ValueError, match="rnn_step_forward: h and gh overlap in memory"):
        module.rnn_step_forward(gh, np.ones((B, H)), None, gh, False)
    # dpre written over the gates it reads: the o-gate slot is scratch before the o gate is read.
    # Both backends name the written array first.
    gates = rng.random((B, 4 * H))
    with pytest.raises(ValueError, match="lstm_step_backward: dpre and gates overlap in memory"):
        module.lstm_step_backward(rng.random((B, H)), rng.random((B, H)), gates, rng.random((B, H)),
                                  rng.random((B, H)), gates)


# ------------------------------------------------------------------ scans -----

MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


def _scan_case(rng, mode, T, B, H, dtype):
    """The inputs of a forward scan and of its backward (the forward's states included)."""
    G = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    r = lambda *s: (0.5 * rng.standard_normal(s)).astype(dtype)  # noqa: E731
    gi, w, b = r(T, B, G * H), r(G * H, H), r(G * H)
    h0, c0 = r(B, H), r(B, H)
    g = r(T, 2 if mode == "LSTM" else 1, B, H)
    dh, dc = r(B, H), r(B, H)
    return gi, w, b, h0, c0, g, dh, dc


def _scan(module, mode, gi, w, b, h0, c0, g, dh, dc):
    """Forward and backward scans through ``module``; every array either wrote."""
    T, B, H = gi.shape[0], h0.shape[0], h0.shape[1]
    G, dtype = gi.shape[2] // max(H, 1) if H else {"LSTM": 4, "GRU": 3}.get(mode, 1), gi.dtype
    hs = np.full((T + 1, B, H), np.nan, dtype)
    hs[0] = h0
    cs = gates = dgh = None
    if mode == "LSTM":
        cs = np.full((T + 1, B, H), np.nan, dtype)
        cs[0] = c0
    if mode in ("LSTM", "GRU"):
        gates = np.full((T, B, 4 * H), np.nan, dtype)
    module.recurrent_scan_forward(mode, gi, w, b, hs, cs, gates)
    dgi = np.full((T, B, G * H), np.nan, dtype)
    if mode == "GRU":
        dgh = np.full((T, B, G * H), np.nan, dtype)
    dh, dc = dh.copy(), (dc.copy() if mode == "LSTM" else None)
    module.recurrent_scan_backward(mode, g, w, hs, cs, gates, dgi, dgh, dh, dc)
    return tuple(a for a in (hs, cs, gates, dgi, dgh, dh, dc) if a is not None)


@pytest.fixture
def compiled_steps(monkeypatch):
    """The twin's scans run with the compiled step kernels and K.gemm in place of the twin's own."""
    for name in STEPS:
        monkeypatch.setattr(twin, name, getattr(_rnn, name))
    monkeypatch.setattr(twin, "gemm", K.gemm)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, B, H", [(4, 5, 7), (3, 33, 6), (2, 70, 3), (2, 150, 5), (2, 300, 3), (1, 1, 1),
                                     (0, 4, 3), (3, 0, 3), (3, 4, 0)])
def test_scans_equal_their_twins(rng, mode, dtype, T, B, H):
    case = _scan_case(rng, mode, T, B, H, dtype)
    got, want = _scan(_rnn, mode, *case), _scan(twin, mode, *case)
    for g, w in zip(got, want):
        assert g.dtype == dtype and not np.isnan(g).any()
        tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, B, H, row_blocks", [(6, 70, 33, True), (2, 300, 5, True), (5, 4, 9, False),
                                                 (3, 1, 30, False), (3, 40, 400, False), (3, 40, 150, None)])
def test_scans_are_the_step_kernels_bit_for_bit(rng, compiled_steps, mode, dtype, T, B, H, row_blocks):
    # Row blocks (two of 35 rows here) make one BLAS call a block and step, as K.gemm does for
    # products this small; step by step, every product is K.gemm's. (K.gemm of a larger block cuts
    # it in its own fixed blocks, and OpenBLAS can round a product of another shape differently.)
    # (3, 40, 150): the LSTM's W_hh is 360 KiB in float32 (row blocks) and 720 KiB in float64 (steps)
    G = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    if row_blocks is not None:
        assert checks.scan_row_blocks(B, H, G, np.dtype(dtype).itemsize) == row_blocks
    case = _scan_case(rng, mode, T, B, H, dtype)
    for got, want in zip(_scan(_rnn, mode, *case), _scan(twin, mode, *case)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("B", [8, 9, 31, 32, 40, 64, 65, 70, 97, 128, 1000])
def test_scan_blocks_are_an_even_number_of_near_equal_blocks_covering_the_batch(B):
    blocks = checks.scan_blocks(B)
    sizes = [stop - start for start, stop in blocks]
    assert len(blocks) % 2 == 0 and blocks[0][0] == 0 and blocks[-1][1] == B
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert max(sizes) <= checks.SCAN_ROWS and max(sizes) - min(sizes) <= 1
    assert len(blocks) == 2 or min(sizes) >= checks.SCAN_ROWS // 2   # no more blocks than needed


def test_the_scan_plan_is_made_from_the_shape():
    assert checks.scan_row_blocks(64, 128, 4, 4)               # the LSTM's 256 KiB W_hh: blocks
    assert checks.scan_row_blocks(64, 128, 4, 8)               # 512 KiB, the largest that is cut
    assert not checks.scan_row_blocks(64, 129, 4, 8)
    assert not checks.scan_row_blocks(64, 512, 4, 4)           # a 4 MiB W_hh would be packed per block
    assert not checks.scan_row_blocks(checks.SCAN_MIN_BATCH - 1, 16, 4, 4)   # too few rows to cut
    assert checks.scan_row_blocks(checks.SCAN_MIN_BATCH, 16, 4, 4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, B, H", [(5, 97, 24), (3, 64, 128), (3, 150, 16), (3, 40, 400), (4, 1, 30)])
def test_scans_same_bytes_on_1_2_4_threads(rng, mode, dtype, T, B, H):
    # row blocks (two; 64 x 128: the benchmark's), step by step, one row
    case = _scan_case(rng, mode, T, B, H, dtype)
    same_bytes_across_threads(lambda *a: _scan(_rnn, mode, *a), *case)


def test_scans_without_b_hh_and_with_a_numpy_string_mode_equal_their_twins(rng):
    for mode in MODES:
        gi, w, _, h0, c0, g, dh, dc = _scan_case(rng, mode, 3, 40, 5, np.float64)
        case = (gi, w, None, h0, c0, g, dh, dc)
        for got, want in zip(_scan(_rnn, np.str_(mode), *case), _scan(twin, mode, *case)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_a_reversed_or_strided_input_is_refused_not_misread():
    # the scans read raw memory: a view that is not C-contiguous must be copied by the caller
    T, B, H = 3, 2, 4
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    for module in (_rnn, twin):
        with pytest.raises(ValueError, match="recurrent_scan_forward: gi must be C-contiguous"):
            module.recurrent_scan_forward("RNN_TANH", z(T, B, H)[::-1], z(H, H), None, z(T + 1, B, H), None, None)
        with pytest.raises(ValueError, match="recurrent_scan_backward: g must be C-contiguous"):
            module.recurrent_scan_backward("RNN_TANH", z(T, 2, B, H)[:, :1], z(H, H), z(T + 1, B, H), None, None,
                                           z(T, B, H), None, z(B, H), None)


def test_scan_errors_name_the_argument():
    T, B, H = 3, 2, 4
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    for module in (_rnn, twin):
        fwd, bwd = module.recurrent_scan_forward, module.recurrent_scan_backward
        with pytest.raises(ValueError, match=r"recurrent_scan_forward: mode must be one of .*'LSTM'.*got 'lstm'"):
            fwd("lstm", z(T, B, 4 * H), z(4 * H, H), None, z(T + 1, B, H), z(T + 1, B, H), z(T, B, 4 * H))
        with pytest.raises(ValueError, match=r"hs must have shape \(T \+ 1, batch, hidden\), got \(2, 4\)"):
            fwd("RNN_TANH", z(T, B, H), z(H, H), None, z(B, H), None, None)
        with pytest.raises(ValueError, match=r"gi must have shape \(3, 2, 12\), got \(3, 2, 16\)"):
            fwd("GRU", z(T, B, 4 * H), z(3 * H, H), None, z(T + 1, B, H), None, z(T, B, 4 * H))
        with pytest.raises(ValueError, match="a GRU scan takes no cs; pass None"):
            fwd("GRU", z(T, B, 3 * H), z(3 * H, H), None, z(T + 1, B, H), z(T + 1, B, H), z(T, B, 4 * H))
        with pytest.raises(TypeError, match=r"w_hh is float64, expected float32 \(the dtype of gi\)"):
            fwd("RNN_RELU", z(T, B, H), np.zeros((H, H)), None, z(T + 1, B, H), None, None)
        hs = z(T + 1, B, H)
        hs.flags.writeable = False
        with pytest.raises(ValueError, match="hs is updated in place"):
            fwd("RNN_TANH", z(T, B, H), z(H, H), None, hs, None, None)
        states = z(T + 1, B, H)
        with pytest.raises(ValueError, match="hs and cs overlap in memory"):
            fwd("LSTM", z(T, B, 4 * H), z(4 * H, H), None, states, states, z(T, B, 4 * H))
        with pytest.raises(ValueError, match=r"recurrent_scan_backward: g must have shape \(3, 2, 2, 4\)"):
            bwd("LSTM", z(T, 1, B, H), z(4 * H, H), z(T + 1, B, H), z(T + 1, B, H), z(T, B, 4 * H),
                z(T, B, 4 * H), None, z(B, H), z(B, H))
        with pytest.raises(TypeError, match="recurrent_scan_forward: cs must be a numpy.ndarray, got NoneType"):
            fwd("LSTM", z(T, B, 4 * H), z(4 * H, H), None, z(T + 1, B, H), None, z(T, B, 4 * H))
        with pytest.raises(TypeError, match="recurrent_scan_backward: dgh must be a numpy.ndarray, got NoneType"):
            bwd("GRU", z(T, 1, B, H), z(3 * H, H), z(T + 1, B, H), None, z(T, B, 4 * H), z(T, B, 3 * H), None,
                z(B, H), None)
        with pytest.raises(ValueError, match="an LSTM scan takes no dgh; pass None"):
            bwd("LSTM", z(T, 2, B, H), z(4 * H, H), z(T + 1, B, H), z(T + 1, B, H), z(T, B, 4 * H),
                z(T, B, 4 * H), z(T, B, 4 * H), z(B, H), z(B, H))
        state = z(B, H)
        with pytest.raises(ValueError, match="dh and dc overlap in memory"):
            bwd("LSTM", z(T, 2, B, H), z(4 * H, H), z(T + 1, B, H), z(T + 1, B, H), z(T, B, 4 * H),
                z(T, B, 4 * H), None, state, state)
        with pytest.raises(ValueError, match="dgi and g overlap in memory"):
            g = z(T, 1, B, H)
            bwd("RNN_TANH", g, z(H, H), z(T + 1, B, H), None, None, g[:, 0], None, z(B, H), None)
        dh = z(B, H)
        dh.flags.writeable = False
        with pytest.raises(ValueError, match="dh is updated in place"):
            bwd("GRU", z(T, 1, B, H), z(3 * H, H), z(T + 1, B, H), None, z(T, B, 4 * H), z(T, B, 3 * H),
                z(T, B, 3 * H), dh, None)
