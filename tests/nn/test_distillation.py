"""F.distillation_loss: finite-difference gradient in float64, equal to the formula built from torch."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck


def _inputs(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    s = nl.tensor(rng.standard_normal((6, 5)).astype(dtype), requires_grad=True)
    t = nl.tensor(3 * rng.standard_normal((6, 5)).astype(dtype))
    y = nl.tensor(rng.integers(0, 5, 6))
    return s, t, y


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 1.0), (3.0, 0.0)])
def test_gradient_matches_finite_differences(T, alpha):
    s, t, y = _inputs()
    assert gradcheck(lambda z: nl.nn.functional.distillation_loss(z, t, y, T=T, alpha=alpha), [s])


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (8.0, 0.3)])
def test_equals_hinton_loss_in_torch(T, alpha):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    s, t, y = _inputs(np.float32, seed=1)
    ours = nl.nn.functional.distillation_loss(s, t, y, T=T, alpha=alpha)
    ours.backward()
    S = torch.tensor(s.detach().numpy(), requires_grad=True)
    Tt, Y = torch.tensor(t.numpy()), torch.tensor(y.numpy())
    soft = F.kl_div(F.log_softmax(S / T, -1), F.softmax(Tt / T, -1), reduction="batchmean") * T * T
    theirs = alpha * soft + (1 - alpha) * F.cross_entropy(S, Y)
    theirs.backward()
    np.testing.assert_allclose(float(ours), theirs.item(), rtol=1e-5)
    np.testing.assert_allclose(s.grad.numpy(), S.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_teacher_gets_no_gradient_and_module_form():
    s, t, y = _inputs()
    t.requires_grad_(True)
    loss = nl.nn.DistillationLoss(T=2.0, alpha=0.7)(s, t, y)
    loss.backward()
    assert t.grad is None and s.grad is not None
    # identical logits and alpha = 1: nothing to learn
    assert float(nl.nn.functional.distillation_loss(s, s, y, alpha=1.0)) == pytest.approx(0.0, abs=1e-12)


def test_bad_input():
    s, t, y = _inputs()
    with pytest.raises(ValueError, match="T must be > 0"):
        nl.nn.functional.distillation_loss(s, t, y, T=0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        nl.nn.functional.distillation_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="same shape"):
        nl.nn.functional.distillation_loss(s, t[:, :4], y)
