"""Activation modules and Dropout against PyTorch; dropout's masks and statistics."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck
from helpers import compare

nn = nl.nn
F = nn.functional


@pytest.mark.parametrize("name, args", [("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("Tanh", ()),
                                        ("Sigmoid", ()), ("SiLU", ()), ("Softmax", (1,)), ("Softmax", (-1,)),
                                        ("LogSoftmax", (1,)), ("LogSoftmax", (0,))])
def test_activation_modules_match_torch(name, args):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 3
    compare(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x)
    compare(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x, train=False)


def test_activation_reprs_and_errors():
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")


def test_dropout_statistics_and_scaling():
    nl.manual_seed(0)
    x = nl.ones(200, 500)
    y = nn.Dropout(0.3)(x).data
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 6 * np.sqrt(0.21 / kept.size)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01


def test_dropout_eval_identity_and_edge_probabilities():
    x = nl.randn(4, 5)
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert np.all(nn.Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2, inplace=False)"


def test_dropout_seeded_and_generator():
    nl.manual_seed(7)
    a = F.dropout(nl.ones(100), 0.5).data
    nl.manual_seed(7)
    b = F.dropout(nl.ones(100), 0.5).data
    np.testing.assert_array_equal(a, b)
    c = F.dropout(nl.ones(100), 0.5, generator=nl.Generator(1)).data
    d = F.dropout(nl.ones(100), 0.5, generator=nl.Generator(1)).data
    np.testing.assert_array_equal(c, d)


def test_dropout_gradient_is_the_mask():
    x = nl.tensor(np.random.default_rng(1).standard_normal((6, 7)), requires_grad=True)
    nl.manual_seed(3)
    y = F.dropout(x, 0.4)
    y.backward(nl.ones(6, 7, dtype=nl.float64))
    np.testing.assert_allclose(x.grad.data, (y.data != 0) / 0.6)
    gen = nl.Generator(4)
    state = gen.get_state()

    def fn(x):  # the same mask on every call
        gen.set_state(state)
        return F.dropout(x, 0.4, generator=gen)
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_keeps_its_saved_part_only_when_recorded(approximate, monkeypatch):
    """Phi(x) (or tanh(u)) is kept for backward only when the result enters a graph: not under
    no_grad, and not for an input that wants no gradient; the gradient is the same bits either way."""
    from nnlite._kernels import K
    kernel, saves = K.gelu_forward, []

    def gelu_forward(x, approximate, save=False):
        saves.append(save)
        return kernel(x, approximate, save)

    monkeypatch.setattr(K, "gelu_forward", gelu_forward)
    data = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    x = nl.tensor(data, requires_grad=True)
    F.gelu(x, approximate=approximate).sum().backward()
    F.gelu(nl.tensor(data), approximate=approximate)
    with nl.no_grad():
        F.gelu(x, approximate=approximate)
    assert saves == [True, False, False]
    want = K.gelu_backward(np.ones_like(data), data, approximate)   # erf (or tanh) computed again
    assert x.grad.data.tobytes() == want.tobytes()
