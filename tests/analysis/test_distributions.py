"""Histograms, norms, gradient statistics and update ratios against NumPy."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import (gradient_histograms, gradient_stats, parameter_norms, parameter_snapshot,
                             update_ratios, weight_histograms)
from nnlite.nn import functional as F


def _trained_step():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    F.cross_entropy(model(nl.randn(16, 4)), nl.tensor(np.arange(16) % 2)).backward()
    return model


def test_histograms_count_every_value():
    model = _trained_step()
    hist = weight_histograms(model, bins=7)
    counts, edges = hist["0.weight"]
    assert counts.sum() == 20 and len(edges) == 8
    np.testing.assert_array_equal(counts, np.histogram(model[0].weight.data, bins=7)[0])
    g_counts, _ = gradient_histograms(model, bins=5)["2.bias"]
    assert g_counts.sum() == 2


def test_norms_per_parameter_layer_and_kind():
    model = _trained_step()
    w0, b0, w2, b2 = (p.data.astype(np.float64) for p in model.parameters())
    per = parameter_norms(model)
    assert per["0.weight"] == pytest.approx(np.linalg.norm(w0))
    layer = parameter_norms(model, by="layer")
    assert layer["2"] == pytest.approx(np.sqrt(np.sum(w2 ** 2) + np.sum(b2 ** 2)))
    kind = parameter_norms(model, by="kind")
    assert kind["bias"] == pytest.approx(np.sqrt(np.sum(b0 ** 2) + np.sum(b2 ** 2)))
    grads = parameter_norms(model, grads=True)
    assert grads["0.weight"] == pytest.approx(np.linalg.norm(model[0].weight.grad.data))
    with pytest.raises(ValueError, match="by must be"):
        parameter_norms(model, by="module")


def test_gradient_stats_against_numpy():
    model = _trained_step()
    g = model[0].weight.grad.data.astype(np.float64)
    s = gradient_stats(model)["0.weight"]
    assert s["rms"] == pytest.approx(np.sqrt(np.mean(g ** 2)))
    assert s["max_abs"] == pytest.approx(np.abs(g).max())
    assert s["mean_abs"] == pytest.approx(np.abs(g).mean())


def test_update_ratio_of_an_sgd_step_is_lr_times_gradient_over_weight():
    model = _trained_step()
    before = parameter_snapshot(model)
    opt = nl.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    ratios = update_ratios(model, before)
    g, w = model[0].weight.grad.data, before["0.weight"]
    assert ratios["0.weight"] == pytest.approx(0.1 * np.linalg.norm(g) / np.linalg.norm(w), rel=1e-5)
