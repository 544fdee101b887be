"""The fused recurrent scan (nnlite/ops/recurrent.py); its step kernels are tested in tests/_kernels/test_rnn_kernels.py."""
import numpy as np
import pytest

import nnlite as nl
from helpers import threads, torch_or_skip
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.ops import recurrent as R

MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


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


def test_an_unknown_mode_is_named():
    gi, h0, w_hh = nl.zeros(5, 2, 16), nl.zeros(2, 4), nl.zeros(16, 4)
    with pytest.raises(ValueError, match=r"recurrent_scan: mode must be one of 'RNN_TANH'.*got 'lstm'"):
        R.recurrent_scan(gi, h0, nl.zeros(2, 4), w_hh, None, "lstm")
    with pytest.raises(ValueError, match=r"gate_math: mode must be one of .*'GRU', got 'gru'"):
        R.gate_math(nl.zeros(2, 12), nl.zeros(2, 12), (h0,), "gru")
