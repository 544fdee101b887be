"""RNN/LSTM/GRU layers and cells against PyTorch (float64), gradcheck of the cells, errors."""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.autograd import gradcheck


def _pair(nl_cls, torch_name, **kw):
    """The nnlite layer and the torch.nn layer of the same name, with torch's weights in both."""
    m, t = nl_cls(**kw).double(), getattr(torch_or_skip().nn, torch_name)(**kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return m, t


def _states(out):
    """The final state(s) as a list of tensors: [h_n] or [h_n, c_n]."""
    return list(out) if isinstance(out, tuple) else [out]


def _compare(m, t, x, hx=None):
    torch = torch_or_skip()
    xn, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hn = None if hx is None else [nl.tensor(h, requires_grad=True) for h in hx]
    ht = None if hx is None else [torch.tensor(h, requires_grad=True) for h in hx]
    pack = (lambda s: tuple(s) if len(s) == 2 else s[0]) if hx is not None else (lambda s: None)
    out, state = m(xn, pack(hn)) if hx is not None else m(xn)
    ref, state_t = t(xt, pack(ht)) if hx is not None else t(xt)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    loss, loss_t = (out * out).sum(), (ref * ref).sum()
    for i, (a, b) in enumerate(zip(_states(state), _states(state_t))):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
        loss, loss_t = loss + (i + 2) * a.sum(), loss_t + (i + 2) * b.sum()
    loss.backward()
    loss_t.backward()
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for a, b in zip(hn or [], ht or []):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(t.named_parameters())
    assert [n for n, _ in m.named_parameters()] == list(tp)
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, tp[n].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


LAYERS = {"LSTM": (nl.nn.LSTM, "LSTM"), "GRU": (nl.nn.GRU, "GRU"), "RNN": (nl.nn.RNN, "RNN")}


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("initial_state", [False, True])
def test_two_layer_matches_torch(rng, name, batch_first, initial_state):
    m, t = _pair(*LAYERS[name], input_size=3, hidden_size=4, num_layers=2, batch_first=batch_first)
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    hx = None
    if initial_state:
        hx = [rng.standard_normal((2, 2, 4)) for _ in range(2 if name == "LSTM" else 1)]
    _compare(m, t, x, hx)


@pytest.mark.parametrize("kw", [dict(bias=False), dict(bidirectional=True), dict(num_layers=3, bidirectional=True),
                                dict(proj_size=2), dict(proj_size=2, bidirectional=True, num_layers=2)])
def test_lstm_variants_match_torch(rng, kw):
    m, t = _pair(nl.nn.LSTM, "LSTM", **{"input_size": 3, "hidden_size": 4, **kw})
    _compare(m, t, rng.standard_normal((4, 2, 3)))


@pytest.mark.parametrize("kw", [dict(bidirectional=True, num_layers=2), dict(nonlinearity="relu")])
def test_gru_and_rnn_variants_match_torch(rng, kw):
    nl_cls, torch_name = LAYERS["RNN" if "nonlinearity" in kw else "GRU"]
    m, t = _pair(nl_cls, torch_name, **{"input_size": 3, "hidden_size": 4, **kw})
    _compare(m, t, rng.standard_normal((4, 2, 3)))


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_unbatched_input_matches_torch(rng, name):
    m, t = _pair(*LAYERS[name], input_size=3, hidden_size=4, num_layers=2)
    hx = [rng.standard_normal((2, 4)) for _ in range(2 if name == "LSTM" else 1)]
    _compare(m, t, rng.standard_normal((5, 3)), hx)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_dropout_between_layers_train_and_eval(rng, name):
    torch = torch_or_skip()
    m = LAYERS[name][0](input_size=3, hidden_size=4, num_layers=2, dropout=0.5).double()
    x = nl.tensor(rng.standard_normal((5, 2, 3)))
    nl.manual_seed(0)
    a = m(x)[0]
    nl.manual_seed(0)
    b = m(x)[0]
    c = m(x)[0]
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, c.data)
    m.eval()
    t = getattr(torch.nn, LAYERS[name][1])(input_size=3, hidden_size=4, num_layers=2, dropout=0.5).double().eval()
    t.load_state_dict({k: torch.tensor(v.data) for k, v in m.state_dict().items()})
    np.testing.assert_allclose(m(x)[0].data, t(torch.tensor(x.data))[0].detach().numpy(), rtol=1e-10, atol=1e-12)


CELLS = {"LSTMCell": (nl.nn.LSTMCell, "LSTMCell"), "GRUCell": (nl.nn.GRUCell, "GRUCell"),
         "RNNCell": (nl.nn.RNNCell, "RNNCell")}


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("initial_state", [True, False])
def test_cells_match_torch(rng, name, batched, initial_state):
    torch = torch_or_skip()
    m, t = _pair(*CELLS[name], input_size=3, hidden_size=4)
    lead = (2,) if batched else ()
    x = rng.standard_normal(lead + (3,))
    xn, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if initial_state:
        hs = [rng.standard_normal(lead + (4,)) for _ in range(2 if name == "LSTMCell" else 1)]
        hn = [nl.tensor(h) for h in hs]
        ht = [torch.tensor(h) for h in hs]
        out = m(xn, tuple(hn) if name == "LSTMCell" else hn[0])
        ref = t(xt, tuple(ht) if name == "LSTMCell" else ht[0])
    else:
        out, ref = m(xn), t(xt)
    loss, loss_t = 0, 0
    for i, (a, b) in enumerate(zip(_states(out), _states(ref))):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
        loss, loss_t = loss + (i + 1) * (a * a).sum(), loss_t + (i + 1) * (b * b).sum()
    loss.backward()
    loss_t.backward()
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    tp = dict(t.named_parameters())
    for n, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, tp[n].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_cell_step_gradcheck(rng, mode):
    """The cell's step, differentiated with respect to input, state and all four weights."""
    from nnlite.nn.recurrent import _rnn_step
    gates = 4 if mode == "LSTM" else 3
    shapes = [(2, 3), (2, 2), (2, 2), (gates * 2, 3), (gates * 2, 2), (gates * 2,), (gates * 2,)]
    inputs = [nl.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]

    def step(x, h, c, w_ih, w_hh, b_ih, b_hh):
        state = _rnn_step(nl.nn.functional.linear(x, w_ih, b_ih), (h, c) if mode == "LSTM" else (h,),
                          w_hh, b_hh, mode)
        return state[0] * 1.5 + (state[1] if mode == "LSTM" else 0 * c)

    assert gradcheck(step, inputs)


def test_parameter_names_shapes_kinds_and_init():
    nl.manual_seed(0)
    lstm = nl.nn.LSTM(10, 20, num_layers=2)
    shapes = {n: p.shape for n, p in lstm.named_parameters()}
    assert shapes == {"weight_ih_l0": (80, 10), "weight_hh_l0": (80, 20), "bias_ih_l0": (80,),
                      "bias_hh_l0": (80,), "weight_ih_l1": (80, 20), "weight_hh_l1": (80, 20),
                      "bias_ih_l1": (80,), "bias_hh_l1": (80,)}
    for n, p in lstm.named_parameters():
        assert p.kind == ("weight" if n.startswith("weight") else "bias")
        assert p.init == {"scheme": "uniform_", "a": -20 ** -0.5, "b": 20 ** -0.5}
        assert np.abs(p.data).max() <= 20 ** -0.5
    all_values = np.concatenate([p.data.ravel() for p in lstm.parameters()])
    assert abs(all_values.std() - 20 ** -0.5 / 3 ** 0.5) < 0.01     # U(-b, b) has std b/sqrt(3)
    assert nl.nn.GRU(10, 20).weight_ih_l0.shape == (60, 10)
    assert nl.nn.GRUCell(10, 20).weight_hh.shape == (60, 20)
    assert [n for n, _ in nl.nn.LSTMCell(3, 4, bias=False).named_parameters()] == ["weight_ih", "weight_hh"]
    nl.manual_seed(0)
    np.testing.assert_array_equal(nl.nn.LSTM(10, 20, num_layers=2).weight_hh_l1.data, lstm.weight_hh_l1.data)


def test_lstm_gate_layout_is_i_f_g_o():
    """With every weight zero, the biases alone set the gates: check which block is which."""
    cell = nl.nn.LSTMCell(1, 1).double()
    for p in cell.parameters():
        p.data[...] = 0
    big = 50.0
    # i open, f closed, g = tanh(1), o open
    cell.bias_ih.data[:] = [big, -big, 1.0, big]
    h, c = cell(nl.zeros(1, 1, dtype=nl.float64), (nl.zeros(1, 1, dtype=nl.float64), nl.ones(1, 1, dtype=nl.float64)))
    np.testing.assert_allclose(c.data, np.tanh(1.0), rtol=1e-12)      # f closed: old c = 1 forgotten
    np.testing.assert_allclose(h.data, np.tanh(np.tanh(1.0)), rtol=1e-12)


def test_errors():
    lstm = nl.nn.LSTM(10, 20, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM\(input_size=10, hidden_size=20\): input has 8 features, "
                                         r"expected 10 \(shape \(5, 3, 8\)\)"):
        lstm(nl.randn(5, 3, 8))
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(2, 3, 20\), got \(1, 3, 20\)"):
        lstm(nl.randn(5, 3, 10), (nl.zeros(1, 3, 20), nl.zeros(2, 3, 20)))
    with pytest.raises(ValueError, match=r"expected c_0 of shape \(2, 3, 20\), got \(2, 3, 19\)"):
        lstm(nl.randn(5, 3, 10), (nl.zeros(2, 3, 20), nl.zeros(2, 3, 19)))
    with pytest.raises(ValueError, match=r"expected hx = \(h_0, c_0\)"):
        lstm(nl.randn(5, 3, 10), (nl.zeros(2, 3, 20),))
    with pytest.raises(ValueError, match=r"expected hx = \(h_0, c_0\), got 1 tensors"):
        lstm(nl.randn(5, 3, 10), nl.zeros(2, 3, 20))
    with pytest.raises(ValueError, match=r"LSTMCell: expected hx = \(h, c\), got Tensor"):
        nl.nn.LSTMCell(3, 4)(nl.randn(2, 3), nl.zeros(2, 4))
    with pytest.raises(ValueError, match=r"GRU\(input_size=10, hidden_size=20\): expected input of 3 dims"):
        nl.nn.GRU(10, 20)(nl.randn(2, 5, 3, 10))
    with pytest.raises(ValueError, match="sequence is empty"):
        nl.nn.GRU(10, 20)(nl.randn(0, 3, 10))
    with pytest.raises(ValueError, match=r"GRUCell\(input_size=3, hidden_size=4\): expected a hidden state "
                                         r"of shape \(2, 4\), got \(2, 5\)"):
        nl.nn.GRUCell(3, 4)(nl.randn(2, 3), nl.randn(2, 5))
    with pytest.raises(ValueError, match=r"LSTMCell\(input_size=3, hidden_size=4\): input has 2 features"):
        nl.nn.LSTMCell(3, 4)(nl.randn(2, 2))
    with pytest.raises(ValueError, match="proj_size"):
        nl.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="nonlinearity"):
        nl.nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout"):
        nl.nn.GRU(3, 4, dropout=1.5)


@pytest.mark.parametrize("make", [lambda nn: nn.LSTM(3, 4, num_layers=2, proj_size=2, batch_first=True),
                                  lambda nn: nn.RNNCell(3, 4, nonlinearity="relu", bias=False),
                                  lambda nn: nn.RNNCell(3, 4), lambda nn: nn.GRUCell(3, 4, bias=False)])
def test_recurrent_reprs_are_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nl.nn)) == repr(make(torch.nn))
