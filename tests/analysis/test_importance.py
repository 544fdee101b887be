"""Importance scores against their formulas; removal and perturbation restore the model."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import (effective_dimensionality, effective_parameters, sensitive_parameters, fisher_diagonal, fisher_importance,
                             gradient_importance, loss_after_removal, magnitude_importance, mean_gradient,
                             perturbation_sensitivity, removal_mask, snip_importance, taylor_importance)
from nnlite.nn import functional as F


def _setup():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    rng = np.random.default_rng(0)
    x = nl.tensor(rng.standard_normal((40, 6)))
    y = nl.tensor(rng.integers(0, 3, 40))
    return model, [(x[:25], y[:25]), (x[25:], y[25:])], (x, y)


def test_scores_follow_their_formulas():
    model, batches, whole = _setup()
    model.zero_grad()
    F.cross_entropy(model(whole[0]), whole[1]).backward()
    g = {n: p.grad.data for n, p in model.named_parameters()}
    w = {n: p.data for n, p in model.named_parameters()}
    # The sample-weighted mean over uneven batches is the gradient of the whole data's mean loss.
    for name, t in mean_gradient(model, F.cross_entropy, batches).items():
        np.testing.assert_allclose(t.data, g[name], rtol=1e-10, atol=1e-14)
    for name, t in magnitude_importance(model).items():
        np.testing.assert_array_equal(t.data, np.abs(w[name]))
    for name, t in gradient_importance(model, F.cross_entropy, batches).items():
        np.testing.assert_allclose(t.data, np.abs(g[name]), rtol=1e-10, atol=1e-14)
    taylor = taylor_importance(model, F.cross_entropy, batches)
    for name, t in taylor.items():
        np.testing.assert_allclose(t.data, np.abs(w[name] * g[name]), rtol=1e-10, atol=1e-14)
    snip = snip_importance(model, F.cross_entropy, batches)
    assert sum(t.data.sum() for t in snip.values()) == pytest.approx(1.0)
    total = sum(t.data.sum() for t in taylor.values())
    np.testing.assert_allclose(snip["0.weight"].data, taylor["0.weight"].data / total, rtol=1e-10)
    fisher = fisher_diagonal(model, F.cross_entropy, batches)
    for name, t in fisher_importance(model, F.cross_entropy, batches).items():
        np.testing.assert_allclose(t.data, 0.5 * fisher[name].data * w[name] ** 2, rtol=1e-12)


def test_removal_mask_is_global_and_exact():
    scores = {"a": nl.tensor([[5.0, 1.0], [3.0, 0.5]]), "b": nl.tensor([2.0, 4.0, 0.1, 6.0])}
    masks = removal_mask(scores, 0.5)       # 8 entries: the 4 lowest (0.1, 0.5, 1, 2) go
    np.testing.assert_array_equal(masks["a"], [[True, False], [True, False]])
    np.testing.assert_array_equal(masks["b"], [False, True, False, True])
    with pytest.raises(ValueError, match="between 0 and 1"):
        removal_mask(scores, 1.5)
    # 0.29 * 100 is 28.999... in floating point; its floor removed 28 of 100, not 29
    hundred = {"w": np.arange(100.0)}
    assert [int((~removal_mask(hundred, f)["w"]).sum()) for f in (0.29, 0.57, 0.58, 1 / 3)] == [29, 57, 58, 33]


def test_loss_after_removal_zeroes_then_restores():
    model, batches, whole = _setup()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    scores = {n: s for n, s in magnitude_importance(model).items() if n.endswith("weight")}
    losses = loss_after_removal(model, F.cross_entropy, batches, scores, [0.0, 1.0])
    with nl.no_grad():
        base = F.cross_entropy(model(whole[0]), whole[1]).item()
    assert losses[0] == pytest.approx(base, rel=1e-12)
    # All weights zero: the output is the last bias for every sample.
    b = model[2].bias.data
    expected = -np.mean(b[whole[1].data] - np.log(np.exp(b).sum()))
    assert losses[1] == pytest.approx(expected, rel=1e-10)
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, before[n])


def test_perturbation_sensitivity_of_least_squares_at_its_minimum_is_the_closed_form():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100, 5))
    model = nn.Linear(5, 1, bias=False).double()
    w = model.weight.data[0].copy()
    batches = (nl.tensor(X), nl.tensor(X @ w[:, None]))      # targets fitted exactly: L = 0
    sens = perturbation_sensitivity(model, F.mse_loss, batches, scales=[0.0, 0.1, 1.0], n_draws=400,
                                    generator=nl.Generator(0))["weight"]
    # L(w + e) = mean((X e)^2), so E[dL] = s^2 rms(w)^2 tr(X^T X) / N.
    expected = np.array([0.0, 0.01, 1.0]) * np.mean(w ** 2) * np.trace(X.T @ X) / 100
    assert sens[0] == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_allclose(sens[1:], expected[1:], rtol=0.15)
    np.testing.assert_array_equal(model.weight.data[0], w)    # put back afterwards


def test_effective_parameters_and_dimensionality():
    model, batches, _ = _setup()
    # With many tiny weights added, they can all go without changing the loss.
    with nl.no_grad():
        model[0].weight.data[:, 3:] *= 1e-9
    n = effective_parameters(model, F.cross_entropy, batches, threshold=1e-6)
    total = model.num_parameters()
    assert n <= total - 8 * 3
    assert effective_parameters(model, F.cross_entropy, batches, threshold=1e9) == 0
    assert effective_dimensionality([1e6, 1e6, 1e-6], alpha=1.0) == pytest.approx(2.0, rel=1e-5)
    assert effective_dimensionality([-5.0, 3.0], alpha=1.0) == pytest.approx(0.75)


def test_effective_parameters_removes_the_count_it_tries():
    # y = w . x on x = 1 with w = 1..100: removing the k smallest weights changes the output by
    # k(k+1)/2, so a threshold between 28's and 29's loss keeps exactly 100 - 28 weights. The
    # bisection tries 29, which as the fraction 29 / 100 removed only 28 (29 / 100 * 100 < 29).
    model = nn.Linear(100, 1, bias=False).double()
    model.weight.data[...] = np.arange(1.0, 101.0)
    batch = (nl.ones(1, 100).double(), nl.tensor([[5050.0]]))
    threshold = (28 * 29 / 2) ** 2 + 1
    assert effective_parameters(model, F.mse_loss, batch, threshold=threshold) == 72


def test_sensitive_parameters_of_least_squares_match_the_closed_form():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((200, 6)) * np.array([1.0, 0.1, 2.0, 0.5, 0.01, 1.0])
    model = nn.Linear(6, 1, bias=False).double()
    w = model.weight.data[0].copy()
    batches = (nl.tensor(X), nl.tensor(X @ w[:, None]))
    # At the exact fit, zeroing w_i alone raises the loss by w_i^2 mean(x_i^2).
    removal_cost = w ** 2 * np.mean(X ** 2, 0)
    threshold = np.median(removal_cost)
    masks = sensitive_parameters(model, F.mse_loss, batches, threshold=threshold)
    np.testing.assert_array_equal(masks["weight"][0], removal_cost > threshold)
    # Moving w_i by +-s r raises it by (s r)^2 mean(x_i^2).
    r = np.sqrt(np.mean(w ** 2))
    moved_cost = (0.5 * r) ** 2 * np.mean(X ** 2, 0)
    threshold = np.median(moved_cost)
    masks = sensitive_parameters(model, F.mse_loss, batches, threshold=threshold, perturbation=0.5)
    np.testing.assert_array_equal(masks["weight"][0], moved_cost > threshold)
    np.testing.assert_array_equal(model.weight.data[0], w)
