"""The fused recurrent scan (nnlite/ops/recurrent.py, _kernels/_rnn.pyx and its twin reference_rnn.py)."""
import numpy as np
import pytest

import nnlite as nl
from helpers import same_bytes_across_threads, threads, torch_or_skip
from nnlite._kernels import reference_rnn
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.ops import recurrent as R

MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


def _compiled_steps():
    if R._compiled_rnn is None:
        pytest.fail("nnlite/_kernels/_rnn.pyx is not built")   # the build makes every kernel module
    return R._compiled_rnn


def _scan_inputs(rng, mode, T=5, B=3, I=4, H=6, bias=True, dtype=np.float64):
    G = R.GATES[mode]
    t = lambda *s: nl.tensor(rng.standard_normal(s).astype(dtype) * 0.5, requires_grad=True)  # noqa: E731
    return (t(T, B, G * H), t(B, H), t(B, H) if mode == "LSTM" else None, t(G * H, H),
            t(G * H) if bias else None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_scan_equals_the_readable_loop(rng, mode, reverse, bias):
    inputs = _scan_inputs(rng, mode, bias=bias)
    fused = R.RecurrentScan.apply(*inputs, mode=mode, reverse=reverse)
    readable = R._readable_scan(*inputs, mode, reverse)
    np.testing.assert_allclose(fused.data, readable.data, rtol=1e-12, atol=1e-14)
    v = nl.tensor(rng.standard_normal(fused.shape))
    wanted = [a for a in inputs if a is not None]
    g_fused = nl.grad([(fused * v).sum()], wanted)
    g_readable = nl.grad([(readable * v).sum()], wanted)
    for a, b in zip(g_fused, g_readable):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_fused_scan_gradcheck(rng, mode):
    inputs = [a for a in _scan_inputs(rng, mode, T=3, B=2, H=3)]
    present = [a for a in inputs if a is not None]

    def scan(*args):
        it = iter(args)
        full = [next(it) if a is not None else None for a in inputs]
        return R.RecurrentScan.apply(*full, mode=mode, reverse=False)
    assert gradcheck(scan, present)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_second_derivatives_go_through_the_readable_loop(rng, mode):
    inputs = [a for a in _scan_inputs(rng, mode, T=2, B=2, H=2)]

    def scan(gi, w_hh):
        return R.RecurrentScan.apply(gi, inputs[1], inputs[2], w_hh, inputs[4], mode=mode, reverse=True)
    assert gradgradcheck(scan, [inputs[0], inputs[3]])


def _step_case(rng, name, B, H, dtype):
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


STEPS = ["lstm_step_forward", "lstm_step_backward", "gru_step_forward", "gru_step_backward",
         "rnn_step_forward", "rnn_step_backward"]


def _run_step(module, name, args, out_shapes, dtype, relu=False):
    """Call one step kernel on copies of ``args`` with fresh outputs; return everything it wrote."""
    args = [a.copy() for a in args]
    outs = [np.full(s, np.nan, dtype) for s in out_shapes]
    extra = (relu,) if name.startswith("rnn_") else ()
    getattr(module, name)(*args, *outs, *extra)
    written = outs + ([args[1]] if name == "lstm_step_backward" else [])   # dc is updated in place
    return tuple(written)


@pytest.mark.parametrize("name", STEPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_kernels_equal_their_twins(rng, name, dtype):
    compiled = _compiled_steps()
    args, shapes = _step_case(rng, name, B=5, H=7, dtype=dtype)
    for relu in ((False, True) if name.startswith("rnn_") else (False,)):
        got = _run_step(compiled, name, args, shapes, dtype, relu)
        want = _run_step(reference_rnn, name, args, shapes, dtype, relu)
        for g, w in zip(got, want):
            assert g.dtype == dtype and not np.isnan(g).any()
            tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(g, w, **tol)


@pytest.mark.parametrize("name", STEPS)
def test_step_kernels_same_bytes_on_1_2_4_threads(rng, name):
    compiled = _compiled_steps()
    args, shapes = _step_case(rng, name, B=33, H=40, dtype=np.float32)

    def step(*a):
        return _run_step(compiled, name, a, shapes, np.float32)
    same_bytes_across_threads(step, *args)


def test_layers_equal_their_twins_on_the_reference_backend(rng):
    x = nl.tensor(rng.standard_normal((6, 4, 5)).astype(np.float32))
    for cls in (nl.nn.LSTM, nl.nn.GRU, nl.nn.RNN):
        nl.manual_seed(0)
        layer = cls(5, 8, num_layers=2, bidirectional=True)
        results = []
        for backend in ("cython", "reference"):
            nl.set_backend(backend)
            layer.zero_grad()
            out, _ = layer(x)
            (out * out).sum().backward()
            results.append([out.data] + [p.grad.data.copy() for p in layer.parameters()])
        nl.set_backend("cython")
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_float32_training_step_matches_torch(rng, name):
    torch = torch_or_skip()
    m, t = getattr(nl.nn, name)(16, 32, batch_first=True), getattr(torch.nn, name)(16, 32, batch_first=True)
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = rng.standard_normal((8, 20, 16)).astype(np.float32)
    out, _ = m(nl.tensor(x))
    ref, _ = t(torch.tensor(x))
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    out[:, -1].sum().backward()
    ref[:, -1].sum().backward()
    tp = dict(t.named_parameters())
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, tp[n].grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=n)


def test_step_kernel_errors_name_the_argument():
    compiled = _compiled_steps()
    B, H = 2, 3
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    for module in (compiled, reference_rnn):
        with pytest.raises(ValueError, match=r"lstm_step_forward: gi must have shape \(2, 12\), got \(2, 11\)"):
            module.lstm_step_forward(z(B, 4 * H), z(B, 4 * H - 1), None, z(B, H), z(B, 4 * H), z(B, H), z(B, H))
        with pytest.raises(TypeError, match="gru_step_forward: h_prev is float64, expected the dtype of gh"):
            module.gru_step_forward(z(B, 3 * H), z(B, 3 * H), None, np.zeros((B, H)), z(B, 4 * H), z(B, H))
        with pytest.raises(TypeError, match="rnn_step_backward: dh must be a numpy.ndarray, got list"):
            module.rnn_step_backward([0.0], z(B, H), z(B, H), False)


def test_threads_do_not_change_a_layer_step(rng):
    x = nl.tensor(rng.standard_normal((7, 40, 5)).astype(np.float32))
    results = []
    for n in (1, 2, 4):
        with threads(n):
            nl.manual_seed(0)
            layer = nl.nn.LSTM(5, 64)
            out, (h, c) = layer(x)
            (out.sum() + c.sum()).backward()
            results.append([out.data.tobytes()] + [p.grad.data.tobytes() for p in layer.parameters()])
    assert results[0] == results[1] == results[2]
