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


def test_step_kernels_are_rows_of_the_table():
    assert sorted(_rnn.__all__) == sorted(twin.__all__) == sorted(STEPS)
    for name in STEPS:
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
