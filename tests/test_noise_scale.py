"""The gradient noise scale estimate matches tr(Sigma)/|G|^2 computed from per-example gradients."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader, TensorDataset
from nnlite.nn import functional as F


def _regression(noise, n=4096, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    y = x @ rng.standard_normal(6) + 1.0 + noise * rng.standard_normal(n)
    return x, y[:, None]


def _exact(model, x, y):
    """tr(Sigma) and |G|^2 from per-example gradients of 1/2 (w.x + b - y)^2... in mse_loss's scale."""
    w, b = model.weight.data[0].astype(np.float64), float(model.bias.data[0])
    r = 2 * (x @ w + b - y[:, 0])                       # d/dpred of (pred - y)^2
    per_example = np.concatenate([r[:, None] * x, r[:, None]], axis=1)
    g = per_example.mean(0)
    trace = per_example.var(0, ddof=1).sum()
    return trace, g @ g


@pytest.mark.parametrize("noise", [0.1, 1.0])
def test_estimate_matches_per_example_gradients(noise):
    x, y = _regression(noise)
    nl.manual_seed(0)
    model = nn.Linear(6, 1).double()
    trace, norm_sq = _exact(model, x, y)
    loader = DataLoader(TensorDataset(nl.tensor(x), nl.tensor(y)), batch_size=16, shuffle=True)
    est = nl.train.gradient_noise_scale(model, F.mse_loss, loader)
    assert est.batch_size == 16 and est.num_batches == 256
    assert est.trace_covariance == pytest.approx(trace, rel=0.15)
    assert est.gradient_norm_sq == pytest.approx(norm_sq, rel=0.15)
    assert est.b_simple == pytest.approx(trace / norm_sq, rel=0.3)
    assert model.weight.grad is None                      # measured without writing .grad


def test_noise_scale_grows_as_training_approaches_the_minimum():
    # Near the optimum the mean gradient vanishes but per-example gradients do not.
    x, y = _regression(1.0)
    nl.manual_seed(0)
    model = nn.Linear(6, 1).double()
    loader = DataLoader(TensorDataset(nl.tensor(x), nl.tensor(y)), batch_size=32)
    before = nl.train.gradient_noise_scale(model, F.mse_loss, loader).b_simple
    opt = nl.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        for xb, yb in loader:
            opt.zero_grad()
            F.mse_loss(model(xb), yb).backward()
            opt.step()
    after = nl.train.gradient_noise_scale(model, F.mse_loss, loader).b_simple
    assert after > 20 * before


def test_needs_two_full_batches():
    x, y = _regression(1.0, n=40)
    loader = DataLoader(TensorDataset(nl.tensor(x), nl.tensor(y)), batch_size=32)
    with pytest.raises(ValueError, match="at least 2 full batches"):
        nl.train.gradient_noise_scale(nn.Linear(6, 1).double(), F.mse_loss, loader)


def test_a_plain_list_of_batches_is_a_loader_too():
    x, y = _regression(1.0, n=96)
    batches = [(nl.tensor(x[i:i + 32]), nl.tensor(y[i:i + 32])) for i in range(0, 96, 32)]
    est = nl.train.gradient_noise_scale(nn.Linear(6, 1).double(), F.mse_loss, batches)
    assert est.num_batches == 3 and est.batch_size == 32
    with pytest.raises(ValueError, match="at least 2 full batches, got 1"):
        nl.train.gradient_noise_scale(nn.Linear(6, 1).double(), F.mse_loss, batches[:1])


@pytest.mark.parametrize("num_batches", [0, 1, -1, 2.5])
def test_num_batches_must_allow_two_batches(num_batches):
    x, y = _regression(1.0, n=96)
    loader = DataLoader(TensorDataset(nl.tensor(x), nl.tensor(y)), batch_size=32)
    with pytest.raises(ValueError, match="num_batches must be None or an integer >= 2"):
        nl.train.gradient_noise_scale(nn.Linear(6, 1).double(), F.mse_loss, loader, num_batches=num_batches)


def test_vanishing_gradients_and_a_non_model_are_named():
    x, y = _regression(1.0, n=96)
    batches = [(nl.tensor(x[i:i + 32]), nl.tensor(np.zeros((32, 1)))) for i in range(0, 96, 32)]
    model = nn.Linear(6, 1).double()
    nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)
    with pytest.raises(ValueError, match=r"the estimate of \|G\|\^2 is 0"):
        nl.train.gradient_noise_scale(model, F.mse_loss, batches)
    with pytest.raises(TypeError, match="gradient_noise_scale: expected an nn.Module, got ndarray"):
        nl.train.gradient_noise_scale(np.zeros(3), F.mse_loss, batches)


def test_running_statistics_are_put_back():
    x, y = _regression(1.0, n=96)
    batches = [(nl.tensor(x[i:i + 32]), nl.tensor(y[i:i + 32])) for i in range(0, 96, 32)]
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).double()
    nl.train.gradient_noise_scale(model, F.mse_loss, batches)
    np.testing.assert_array_equal(model[1].running_mean.data, np.zeros(4))
    assert int(model[1].num_batches_tracked.data) == 0


def test_a_parameter_the_loss_does_not_reach_adds_nothing():
    # A second head the loss never uses has gradient 0 in every batch: the estimate is the one
    # of the head that is used (nl.grad without allow_unused stopped with a RuntimeError).
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(6, 1).double(), nn.Linear(6, 3).double()

        def forward(self, x):
            return self.used(x)

    x, y = _regression(1.0, n=96)
    batches = [(nl.tensor(x[i:i + 32]), nl.tensor(y[i:i + 32])) for i in range(0, 96, 32)]
    model = TwoHeads()
    both = nl.train.gradient_noise_scale(model, F.mse_loss, batches)
    alone = nl.train.gradient_noise_scale(model.used, F.mse_loss, batches)
    assert both.b_simple == pytest.approx(alone.b_simple, rel=1e-12)
    assert both.trace_covariance == pytest.approx(alone.trace_covariance, rel=1e-12)
