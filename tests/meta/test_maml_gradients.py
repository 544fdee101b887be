"""MAML's meta-gradient against central differences (second order) and the first-order formula."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.meta import MAML, InnerLoop, MetaSGD, Reptile, SinusoidTasks, sinusoid_mlp, task_batched_call
from nnlite.func import functional_call


def _tiny(seed=0):
    nl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    batch = SinusoidTasks(shots=4, query=5, seed=seed, dtype=np.float64).sample(3)
    return model, batch


def _flat(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()])


def _set(model, flat):
    start = 0
    for p in model.parameters():
        p.data[...] = flat[start:start + p.data.size].reshape(p.shape)
        start += p.data.size


def _central_differences(model, loss_of_model, eps=1e-6):
    theta = _flat(model)
    numeric = np.zeros_like(theta)
    for i in range(theta.size):
        for sign in (1, -1):
            shifted = theta.copy()
            shifted[i] += sign * eps
            _set(model, shifted)
            numeric[i] += sign * float(loss_of_model().data) / (2 * eps)
    _set(model, theta)
    return numeric


@pytest.mark.parametrize("task_batched", [False, True])
def test_second_order_meta_gradient_equals_central_differences(task_batched):
    model, batch = _tiny()
    maml = MAML(model, inner_lr=0.3, inner_steps=2, task_batched=task_batched)
    maml.meta_loss(batch).backward()
    analytic = np.concatenate([p.grad.data.ravel() for p in model.parameters()])
    numeric = _central_differences(model, lambda: maml.meta_loss(batch))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_first_order_meta_gradient_is_query_gradient_at_adapted_parameters():
    model, batch = _tiny(1)
    fomaml = MAML(model, inner_lr=0.3, inner_steps=2, first_order=True)
    fomaml.meta_loss(batch).backward()
    got = [p.grad.data.copy() for p in model.parameters()]
    # The documented approximation: (1/T) sum_t grad_phi L^q_t(phi_t), phi_t from plain inner steps.
    expected = [np.zeros_like(g) for g in got]
    for t in range(3):
        phi = {k: p.detach().requires_grad_() for k, p in
               fomaml.adapt(batch.support_x[t], batch.support_y[t]).items()}
        loss = nl.nn.functional.mse_loss(functional_call(model, phi, (batch.query_x[t],)), batch.query_y[t])
        for e, g in zip(expected, nl.grad(loss, list(phi.values()))):
            e += g.data / 3
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    # ... and it is not the true meta-gradient: the Hessian term is missing.
    model.zero_grad()
    MAML(model, inner_lr=0.3, inner_steps=2).meta_loss(batch).backward()
    assert not np.allclose(got[0], model[0].weight.grad.data, rtol=1e-3)


def test_task_batched_call_equals_per_task_functional_call():
    nl.manual_seed(0)
    model = sinusoid_mlp(hidden=5)
    params = {k: nl.randn(4, *p.shape) for k, p in model.named_parameters()}
    x = nl.randn(4, 6, 1)
    batched = task_batched_call(model, params, x).data
    for t in range(4):
        one = functional_call(model, {k: nl.tensor(v.data[t]) for k, v in params.items()}, (x[t],)).data
        np.testing.assert_allclose(batched[t], one, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="Conv1d"):
        task_batched_call(nn.Sequential(nn.Conv1d(1, 1, 3)), {}, x)


def test_adaptation_leaves_the_model_alone_and_lowers_support_loss():
    nl.manual_seed(0)
    model = sinusoid_mlp()
    before = [p.data.copy() for p in model.parameters()]
    batch = SinusoidTasks(shots=10, seed=0).sample(5)
    loop = InnerLoop(model, inner_lr=0.01, task_batched=True)
    start = float(loop.support_loss(loop.initial_parameters(5), batch.support_x, batch.support_y).data) / 5
    fast = loop.adapt(batch.support_x, batch.support_y, steps=20)
    after = float(loop.support_loss(fast, batch.support_x, batch.support_y).data) / 5
    assert after < 0.9 * start
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


@pytest.mark.parametrize("task_batched", [False, True])
def test_reptile_step_returns_the_mean_support_loss_before_adapting(task_batched):
    model, batch = _tiny(4)
    expected = np.mean([float(nl.nn.functional.mse_loss(model(batch.support_x[t]), batch.support_y[t]).data)
                        for t in range(3)])
    got = Reptile(model, inner_lr=0.1, inner_steps=2, task_batched=task_batched).step(batch)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("task_batched", [False, True])
def test_frozen_parameters_are_neither_adapted_nor_moved(task_batched):
    model, batch = _tiny(5)
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.data.copy()
    maml = MAML(model, inner_lr=0.3, inner_steps=2, task_batched=task_batched)
    maml.meta_loss(batch).backward()
    assert model[0].weight.grad is None
    analytic = np.concatenate([p.grad.data.ravel() for p in model.parameters() if p.requires_grad])
    numeric = _central_differences(model, lambda: maml.meta_loss(batch))
    trainable = np.concatenate([np.full(p.data.size, p.requires_grad) for p in model.parameters()])
    np.testing.assert_allclose(analytic, numeric[trainable], rtol=1e-6, atol=1e-9)
    assert set(MetaSGD(model).inner_lrs) == {"0.bias", "2.weight", "2.bias"}
    before = model[2].weight.data.copy()
    Reptile(model, inner_lr=0.1, inner_steps=2, task_batched=task_batched).step(batch)
    np.testing.assert_array_equal(model[0].weight.data, frozen)
    assert not np.array_equal(model[2].weight.data, before)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match=r"Sequential has no parameters to adapt \(none with requires_grad=True\)"):
        MAML(model)


def test_metasgd_learning_rates_are_meta_parameters_with_gradients():
    model, batch = _tiny(2)
    learner = MetaSGD(model, inner_lr=0.1)
    kinds = {p.kind for p in learner.parameters()}
    assert kinds == {"weight", "bias", "meta"}
    learner.meta_loss(batch).backward()
    for name, lr in learner.inner_lrs.items():
        assert lr.grad is not None and lr.grad.shape == model.get_parameter(name).shape
        assert np.abs(lr.grad.data).max() > 0
    # With every rate equal to inner_lr, Meta-SGD's meta-loss is MAML's.
    np.testing.assert_allclose(float(learner.meta_loss(batch).data),
                               float(MAML(model, inner_lr=0.1).meta_loss(batch).data), rtol=1e-12)


def test_bad_settings_named():
    with pytest.raises(ValueError, match="inner_lr must be a finite number > 0"):
        MAML(nn.Linear(1, 1), inner_lr=0.0)
    with pytest.raises(ValueError, match="shots must be >= 1"):
        SinusoidTasks(shots=0)


def test_second_order_meta_gradient_equals_pytorch():
    torch = pytest.importorskip("torch")
    model, batch = _tiny(3)
    MAML(model, inner_lr=0.3, inner_steps=2).meta_loss(batch).backward()
    ours = [p.grad.data for p in model.parameters()]

    theta = [torch.tensor(p.data, requires_grad=True) for p in model.parameters()]

    def forward(params, x):
        h = torch.tanh(x @ params[0].T + params[1])
        return h @ params[2].T + params[3]

    losses = []
    for t in range(3):
        sx, sy, qx, qy = (torch.tensor(a.data[t]) for a in batch[:4])
        phi = theta
        for _ in range(2):
            grads = torch.autograd.grad(torch.mean((forward(phi, sx) - sy) ** 2), phi, create_graph=True)
            phi = [p - 0.3 * g for p, g in zip(phi, grads)]
        losses.append(torch.mean((forward(phi, qx) - qy) ** 2))
    (sum(losses) / 3).backward()
    for a, b in zip(ours, theta):
        np.testing.assert_allclose(a, b.grad.numpy(), rtol=1e-10, atol=1e-12)
