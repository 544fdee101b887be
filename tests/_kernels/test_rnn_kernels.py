"""Recurrent step kernels: compiled (``_rnn``) against their twins (``reference/_rnn.py``), across threads."""
import numpy as np
import pytest
from helpers import same_bytes_across_threads

from nnlite._kernels import K, _rnn, reference
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


def _steps(mode, gi, w, b, h0, c0, g, dh, dc):
    """The same scans as one K.gemm and one compiled step kernel per step."""
    gi, h0, c0, dh, dc = (np.ascontiguousarray(a) for a in (gi, h0, c0, dh, dc))
    T, B, H = gi.shape[0], h0.shape[0], h0.shape[1]
    dtype = gi.dtype
    hs = np.empty((T + 1, B, H), dtype)
    hs[0] = h0
    cs = np.empty((T + 1, B, H), dtype)
    cs[0] = c0
    gates = np.empty((T, B, 4 * H), dtype)
    for s in range(T):
        gh = K.gemm(hs[s], w, trans_b=True)
        if mode == "LSTM":
            _rnn.lstm_step_forward(gh, gi[s], b, cs[s], gates[s], cs[s + 1], hs[s + 1])
        elif mode == "GRU":
            _rnn.gru_step_forward(gh, gi[s], b, hs[s], gates[s], hs[s + 1])
        else:
            _rnn.rnn_step_forward(gh, gi[s], b, hs[s + 1], mode == "RNN_RELU")
    dgi = np.empty(gi.shape, dtype)
    dgh = np.empty(gi.shape, dtype)
    dh, dc = dh.copy(), dc.copy()
    through_z = np.empty((B, H), dtype)
    for s in range(T - 1, -1, -1):
        dh_s = g[s, 0] + dh
        if mode == "LSTM":
            dc += g[s, 1]
            _rnn.lstm_step_backward(dh_s, dc, gates[s], cs[s], cs[s + 1], dgi[s])
            dh = K.gemm(dgi[s], w)
        elif mode == "GRU":
            _rnn.gru_step_backward(dh_s, gates[s], hs[s], dgi[s], dgh[s], through_z)
            dh = K.gemm(dgh[s], w) + through_z
        else:
            _rnn.rnn_step_backward(dh_s, hs[s + 1], dgi[s], mode == "RNN_RELU")
            dh = K.gemm(dgi[s], w)
    if mode == "LSTM":
        return hs, cs, gates, dgi, dh, dc
    if mode == "GRU":
        return hs, gates, dgi, dgh, dh
    return hs, dgi, dh


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, B, H", [(4, 5, 7), (3, 33, 6), (2, 70, 3), (1, 1, 1), (0, 4, 3), (3, 0, 3), (3, 4, 0)])
def test_scans_equal_their_twins(rng, mode, dtype, T, B, H):
    case = _scan_case(rng, mode, T, B, H, dtype)
    got, want = _scan(_rnn, mode, *case), _scan(twin, mode, *case)
    for g, w in zip(got, want):
        assert g.dtype == dtype and not np.isnan(g).any()
        tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scans_are_the_step_kernels_on_each_block_bit_for_bit(rng, mode, dtype):
    # 70 rows: blocks of 32, 32 and 6 rows, each carried through the sequence on its own.
    # (One product over all 70 rows would round some sums differently: BLAS's order of
    # adding can depend on the product's shape, which is why the blocks are fixed.)
    gi, w, b, h0, c0, g, dh, dc = _scan_case(rng, mode, 6, 70, 33, dtype)
    got = _scan(_rnn, mode, gi, w, b, h0, c0, g, dh, dc)
    for r0 in range(0, 70, 32):
        rows = slice(r0, r0 + 32)
        want = _steps(mode, gi[:, rows], w, b, h0[rows], c0[rows], np.ascontiguousarray(g[:, :, rows]),
                      dh[rows], dc[rows])
        for got_all, want_block in zip(got, want):
            block = got_all[rows] if got_all.ndim == 2 else got_all[:, rows]   # dh, dc: (B, H)
            np.testing.assert_array_equal(block, want_block)


@pytest.mark.parametrize("mode", MODES)
def test_scans_same_bytes_on_1_2_4_threads(rng, mode):
    case = _scan_case(rng, mode, 5, 97, 24, np.float32)   # four blocks, the last of one row
    same_bytes_across_threads(lambda *a: _scan(_rnn, mode, *a), *case)


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
        with pytest.raises(ValueError, match="a LSTM scan takes no dgh; pass None"):
            bwd("LSTM", z(T, 2, B, H), z(4 * H, H), z(T + 1, B, H), z(T + 1, B, H), z(T, B, 4 * H),
                z(T, B, 4 * H), z(T, B, 4 * H), z(B, H), z(B, H))
