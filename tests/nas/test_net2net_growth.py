"""Net2Net widening and deepening preserve the function; the progressive search grows while validation improves."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.nas import net2deeper, net2wider, progressive_search


def _mlp():
    nl.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


@pytest.mark.parametrize("layer", [0, 1])
def test_widening_preserves_the_function(layer):
    model, x = _mlp(), nl.randn(7, 6)
    wider = net2wider(model, layer, 11, rng=0)
    assert wider.num_parameters() > model.num_parameters()
    np.testing.assert_allclose(wider(x).data, model(x).data, rtol=1e-5, atol=1e-6)
    noisy = net2wider(model, layer, 11, rng=0, noise=0.1)
    assert not np.allclose(noisy(x).data, model(x).data, atol=1e-6)


def test_widening_a_model_without_biases_keeps_none():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False))
    x = nl.randn(7, 6)
    wider = net2wider(model, 0, 9, rng=0)
    assert wider[0].bias is None and wider[2].bias is None
    assert [p.shape for p in wider.parameters()] == [(9, 6), (3, 9)]
    np.testing.assert_allclose(wider(x).data, model(x).data, rtol=1e-5, atol=1e-6)


def test_widening_keeps_frozen_parameters_frozen():
    model = _mlp()
    model[0].requires_grad_(False)
    wider = net2wider(model, 0, 9, rng=0)
    assert [p.requires_grad for p in wider.parameters()] == [False, False, True, True, True, True]
    assert [p.kind for p in wider.parameters()][:4] == ["weight", "bias", "weight", "bias"]


def test_deepening_preserves_the_function_and_model_is_untouched():
    model, x = _mlp(), nl.randn(7, 6)
    before = model(x).data.copy()
    deeper = net2deeper(model, 1)
    assert len(deeper) == len(model) + 2
    np.testing.assert_allclose(deeper(x).data, before, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(model(x).data, before)


def test_deepening_keeps_the_dtype_and_draws_nothing_from_the_global_generator():
    model = _mlp().double()
    x = nl.randn(7, 6).double()
    nl.manual_seed(0)
    expected = nl.rand(3).data
    nl.manual_seed(0)
    deeper = net2deeper(model, 0)
    np.testing.assert_array_equal(nl.rand(3).data, expected)
    assert {p.dtype for p in deeper.parameters()} == {np.dtype(np.float64)}
    np.testing.assert_array_equal(deeper(x).data, model(x).data)


def test_bad_layers_named():
    with pytest.raises(ValueError, match="hidden layer in \\[0, 1\\]"):
        net2wider(_mlp(), 2, 10)
    with pytest.raises(ValueError, match="new_width must be >= the current width 5"):
        net2wider(_mlp(), 0, 3)


def test_progressive_search_grows_and_keeps_only_improvements():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    y = ((x[:, 0] ** 2 + x[:, 1] ** 2) > 1.4).astype(np.int64) + 2 * (x[:, 0] > 0)   # 4 curved classes
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4))
    grown, history = progressive_search(model, (x[:400], y[:400]), (x[400:], y[400:]), rounds=2, epochs=10,
                                        lr=1e-2)
    # Measured (seed 0): 0.55 at the start, 0.905 after two rounds that each added a layer.
    accs = [h["val_accuracy"] for h in history]
    assert accs == sorted(accs) and accs[-1] > accs[0]
    assert grown.num_parameters() > model.num_parameters()


def test_growth_and_split_arguments_are_checked():
    from nnlite.nas import mnist1d_search_split
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="net2wider: noise is a standard deviation and must be >= 0, got -1"):
        net2wider(model, 0, 16, noise=-1)
    with pytest.raises(TypeError, match="nn.Sequential of Linear layers .* got Linear"):
        net2wider(nn.Linear(4, 8), 0, 16)
    with pytest.raises(ValueError, match="mnist1d_search_split: train_size must be >= 2"):
        mnist1d_search_split(train_size=1)
