"""Per-sample gradients against single-sample backward passes; the empirical Fisher against its closed form."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import fisher_diagonal, per_sample_gradients
from nnlite.nn import functional as F


def _cnn():
    nl.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4, 3)).double()


def test_per_sample_gradients_equal_a_loop_of_single_sample_backward_passes():
    model = _cnn()
    rng = np.random.default_rng(1)
    x = nl.tensor(rng.standard_normal((6, 1, 10)))
    y = nl.tensor(rng.integers(0, 3, 6))
    got = per_sample_gradients(model, F.cross_entropy, x, y)
    for n in range(6):
        model.zero_grad()
        F.cross_entropy(model(x[n:n + 1]), y[n:n + 1]).backward()
        for name, p in model.named_parameters():
            np.testing.assert_allclose(got[name].numpy()[n], p.grad.data, rtol=1e-12, atol=1e-14)
    # Their mean is the gradient of the batch's mean loss.
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(got[name].numpy().mean(0), p.grad.data, rtol=1e-10, atol=1e-13)


def test_fisher_of_logistic_regression_is_the_analytic_diagonal():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 4))
    Y = (rng.random(50) < 0.5).astype(np.float64)
    model = nn.Linear(4, 1).double()
    batches = [(nl.tensor(X[:20]), nl.tensor(Y[:20, None])), (nl.tensor(X[20:]), nl.tensor(Y[20:, None]))]
    fisher = fisher_diagonal(model, F.binary_cross_entropy_with_logits, batches)
    w, b = model.weight.data[0], model.bias.data[0]
    p = 1 / (1 + np.exp(-(X @ w + b)))
    # d loss_n / d w = (p_n - y_n) x_n, so the diagonal of E[(y - p)^2 x x^T] is E[(y - p)^2 x_j^2].
    np.testing.assert_allclose(fisher["weight"].numpy()[0], np.mean((Y - p)[:, None] ** 2 * X ** 2, 0), rtol=1e-10)
    np.testing.assert_allclose(fisher["bias"].numpy()[0], np.mean((Y - p) ** 2), rtol=1e-10)


def test_fisher_is_not_the_square_of_the_mean_gradient():
    model = _cnn()
    rng = np.random.default_rng(3)
    x, y = nl.tensor(rng.standard_normal((8, 1, 10))), nl.tensor(rng.integers(0, 3, 8))
    fisher = fisher_diagonal(model, F.cross_entropy, (x, y))
    rows = per_sample_gradients(model, F.cross_entropy, x, y)
    for name in fisher:
        g = rows[name].numpy()
        np.testing.assert_allclose(fisher[name].numpy(), (g ** 2).mean(0), rtol=1e-12)
        # Jensen: the mean of squares is at least the square of the mean, here strictly.
        assert (fisher[name].numpy() + 1e-15 >= g.mean(0) ** 2).all()
        assert fisher[name].numpy().sum() > (g.mean(0) ** 2).sum()


def test_frozen_parameters_are_left_out_and_bad_batches_are_named():
    model = _cnn()
    model[0].freeze()
    x, y = nl.randn(3, 1, 10, dtype=nl.float64), nl.tensor([0, 1, 2])
    assert set(fisher_diagonal(model, F.cross_entropy, (x, y))) == {"3.weight", "3.bias"}
    # A pair given as a list, as some loaders yield it, is one batch.
    assert fisher_diagonal(model, F.cross_entropy, [x, y])["3.bias"].shape == (3,)
    with pytest.raises(TypeError, match="pairs"):
        fisher_diagonal(model, F.cross_entropy, [x])
    with pytest.raises(ValueError, match="at least one"):
        fisher_diagonal(model, F.cross_entropy, [])
