"""GLU (module and F.glu) against PyTorch; the learnable Temperature."""
import math

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.autograd import gradcheck



@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_glu_matches_torch(rng, dim):
    torch = torch_or_skip()
    x = rng.standard_normal((4, 6, 2))
    xn, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = nl.nn.GLU(dim)(xn), torch.nn.GLU(dim)(xt)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(nl.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(nl.nn.functional.glu(xn, dim).data, out.data)


def test_glu_gradcheck_and_no_parameters(rng):
    x = nl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda a: nl.nn.functional.glu(a), [x])
    assert nl.nn.GLU().num_parameters() == 0


def test_glu_odd_size_error():
    with pytest.raises(ValueError, match=r"glu: dim -1 must have an even size.*got 5 \(shape \(2, 5\)\)"):
        nl.nn.GLU()(nl.randn(2, 5))


def test_temperature_divides_by_a_positive_learned_scalar(rng):
    torch = torch_or_skip()
    t = nl.nn.Temperature(init=2.0, dtype=nl.float64)
    (name, p), = t.named_parameters()
    assert name == "log_temperature" and p.kind == "temperature" and p.shape == ()
    assert p.init == {"scheme": "constant_", "val": math.log(2.0)}
    logits = rng.standard_normal((3, 5))
    np.testing.assert_allclose(t(nl.tensor(logits)).data, logits / 2.0, rtol=1e-12)
    # d/dlogT (z / e^logT) = -z / T: check against torch with the same parametrisation
    lt = torch.tensor(math.log(2.0), dtype=torch.float64, requires_grad=True)
    z = nl.tensor(logits, requires_grad=True)
    zt = torch.tensor(logits, requires_grad=True)
    (t(z) ** 2).sum().backward()
    ((zt / lt.exp()) ** 2).sum().backward()
    np.testing.assert_allclose(p.grad.data, lt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(z.grad.data, zt.grad.numpy(), rtol=1e-12)
    # A huge step stays positive.
    p.data[...] = -50.0
    assert float(t.temperature.data) > 0


def test_temperature_calibration_fits_overconfident_logits(rng):
    """Logits 4x too sharp: fitting T by cross-entropy on held-out labels recovers T close to 4."""
    n, k = 4000, 5
    true_logits = rng.standard_normal((n, k)) * 1.5
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)      # one draw from each row's distribution
    t = nl.nn.Temperature().double()
    logits = nl.tensor(true_logits * 4.0)
    onehot = np.eye(k)[labels]
    for _ in range(200):
        loss = -(nl.log_softmax(t(logits), dim=-1) * nl.tensor(onehot)).sum() / n
        t.zero_grad()
        loss.backward()
        with nl.no_grad():
            t.log_temperature.data -= 0.5 * t.log_temperature.grad.data
    assert 3.4 < float(t.temperature.data) < 4.6
    assert np.array_equal(np.argmax(t(logits).data, 1), np.argmax(logits.data, 1))   # accuracy unchanged


def test_temperature_errors():
    with pytest.raises(ValueError, match=r"Temperature\(init=0\): the temperature must be positive"):
        nl.nn.Temperature(init=0)
    with pytest.raises(TypeError, match="expected a Tensor"):
        nl.nn.Temperature()([1.0, 2.0])
