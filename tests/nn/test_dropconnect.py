"""DropConnectLinear: weights (not activations) dropped in training, a plain Linear in eval."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.autograd import gradcheck
from nnlite.nn import functional as F


def _effective_weight(layer):
    """Read the weight a training forward used: feed the identity, subtract the bias."""
    eye = nl.tensor(np.eye(layer.in_features, dtype=layer.weight.dtype))
    return (layer(eye).data - layer.bias.data).T


def test_eval_is_exactly_linear_and_state_dicts_match():
    nl.manual_seed(0)
    layer = nn.DropConnectLinear(6, 4, p=0.4).eval()
    x = nl.randn(3, 5, 6)
    np.testing.assert_array_equal(layer(x).data, F.linear(x, layer.weight, layer.bias).data)
    plain = nn.Linear(6, 4)
    plain.load_state_dict(layer.state_dict())
    assert list(plain.state_dict()) == list(layer.state_dict()) == ["weight", "bias"]
    assert layer.weight.kind == "weight"


def test_training_drops_weights_with_probability_p_and_rescales_the_rest():
    nl.manual_seed(0)
    layer = nn.DropConnectLinear(100, 80, p=0.3, dtype=np.float64)
    w = layer.weight.data
    effective = _effective_weight(layer)
    dropped = effective == 0
    assert abs(dropped.mean() - 0.3) < 0.02
    np.testing.assert_allclose(effective[~dropped], w[~dropped] / 0.7, rtol=1e-12)
    # in expectation the layer is the plain one
    mean = np.mean([_effective_weight(layer) for _ in range(400)], axis=0)
    assert np.abs(mean - w).max() < 0.25 * np.abs(w).max()
    assert abs(float(np.mean(mean - w))) < 1e-3


def test_gradient_reaches_only_the_kept_weights():
    layer = nn.DropConnectLinear(5, 3, p=0.5, generator=nl.Generator(1), dtype=np.float64)
    x = nl.randn(4, 5).double()
    layer(x).sum().backward()
    layer.generator = nl.Generator(1)
    kept = _effective_weight(layer) != 0
    assert (~kept).any() and kept.any()
    assert np.all(layer.weight.grad.data[~kept] == 0) and np.all(layer.weight.grad.data[kept] != 0)


def test_gradcheck_in_float64_with_a_fixed_mask():
    layer = nn.DropConnectLinear(4, 3, p=0.5, dtype=np.float64)

    def forward(x, weight):
        layer.generator = nl.Generator(7)    # the same mask for every evaluation
        return F.linear(x, F.dropout(weight, layer.p, training=True, generator=layer.generator), layer.bias)

    x = nl.randn(2, 4).double().requires_grad_()
    weight = nl.tensor(layer.weight.data.copy(), requires_grad=True)
    assert gradcheck(forward, [x, weight])
    # forward() reproduces the layer's own training forward
    layer.generator = nl.Generator(7)
    np.testing.assert_array_equal(layer(x).data, forward(x, layer.weight).data)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.0"):
        nn.DropConnectLinear(3, 2, p=1.0)
    with pytest.raises(ValueError, match=r"Linear\(in_features=3\): input has 4 features"):
        nn.DropConnectLinear(3, 2)(nl.randn(2, 4))
