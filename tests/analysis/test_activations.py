"""Activation statistics against NumPy on the recorded activations."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.analysis import activation_stats, record_activations


def _model():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid())
    with nl.no_grad():
        model[0].bias.data[:2] = -100.0   # two units that are never positive: dead
        model[2].weight.data *= 20.0      # drive tanh into saturation
    return model


def test_recorded_activations_are_the_layer_outputs_on_every_batch():
    model = _model()
    x = nl.randn(30, 5)
    acts = record_activations(model, [(x[:10], None), (x[10:], None)])
    assert list(acts) == ["0", "1", "2", "3", "4", "5"]
    np.testing.assert_allclose(acts["1"], np.maximum(model[0](x).data, 0), rtol=1e-6)
    assert acts["5"].shape == (30, 3)
    assert not model[0]._forward_hooks


def test_activation_stats_against_numpy():
    model = _model()
    x = nl.randn(200, 5)
    acts = record_activations(model, x)
    stats = activation_stats(model, x)
    for name, a in acts.items():
        assert stats[name]["mean"] == pytest.approx(a.astype(np.float64).mean(), rel=1e-9, abs=1e-12)
        assert stats[name]["std"] == pytest.approx(a.astype(np.float64).std(), rel=1e-9)
        assert stats[name]["dead_fraction"] == pytest.approx(np.mean((a <= 0).all(0)))
    assert stats["1"]["dead_fraction"] >= 2 / 6          # the two units with bias -100
    assert stats["0"]["dead_fraction"] == stats["1"]["dead_fraction"]   # before or after the ReLU
    assert stats["3"]["saturated_fraction"] == pytest.approx(np.mean(np.abs(acts["3"]) > 0.99))
    assert stats["3"]["saturated_fraction"] > 0.3
    s = acts["5"]
    assert stats["5"]["saturated_fraction"] == pytest.approx(np.mean((s < 0.01) | (s > 0.99)))
    assert stats["1"]["saturated_fraction"] is None


def test_chosen_layers_only_and_unknown_names_are_named():
    model = _model()
    stats = activation_stats(model, nl.randn(10, 5), layers=["2"])
    assert list(stats) == ["2"] and stats["2"]["units"] == 4
    with pytest.raises(ValueError, match=r"no layers named \['9'\]"):
        activation_stats(model, nl.randn(10, 5), layers=["9"])


def test_a_shared_layer_is_recorded_at_every_call():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    x = nl.randn(4, 3)
    acts = record_activations(model, [(x[:2], None), (x[2:], None)], layers="0")
    first, second = shared(x[:2]).data, shared(np.tanh(shared(x[:2]).data)).data
    assert acts["0"].shape == (8, 3)     # two calls per batch of 2, then the next batch
    np.testing.assert_allclose(acts["0"][:4], np.concatenate([first, second]), rtol=1e-6)
