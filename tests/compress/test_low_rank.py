"""nl.compress.low_rank: the truncated SVD as two layers, its error formula, energy, conv."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn


def test_error_formula_and_eckart_young():
    nl.manual_seed(0)
    layer = nl.nn.Linear(40, 24)
    w = layer.weight.detach().numpy().astype(np.float64)
    for rank in (1, 5, 12, 24):
        small = nl.compress.low_rank(layer, rank=rank)
        w_r = small[1].weight.detach().numpy() @ small[0].weight.detach().numpy()
        measured = np.linalg.norm(w - w_r) / np.linalg.norm(w)
        assert measured == pytest.approx(nl.compress.low_rank_error(layer, rank), abs=1e-5)
        assert small.num_parameters() == rank * (40 + 24) + 24
        assert np.linalg.matrix_rank(w_r, tol=1e-5) == rank
    # no other rank-5 matrix does better than the SVD's, e.g. not a random projection of W
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((40, 5)))
    assert np.linalg.norm(w - w @ q @ q.T) / np.linalg.norm(w) > nl.compress.low_rank_error(layer, 5)


def test_energy_picks_smallest_rank():
    rng = np.random.default_rng(1)
    layer = nl.nn.Linear(20, 20, bias=False)
    u, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    v, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    sigma = np.array([10, 5, 2, 1] + [0.01] * 16)
    layer.weight.data[...] = (u * sigma) @ v.T
    assert nl.compress.rank_for_energy(sigma, 0.99) == 3       # (100 + 25 + 4) / 130.0016 > 0.99
    assert nl.compress.rank_for_energy(sigma, 0.999) == 4
    small = nl.compress.low_rank(layer, energy=0.99)
    assert small[0].out_features == 3 and small[1].bias is None
    np.testing.assert_allclose(nl.compress.singular_values(layer)[:4], sigma[:4], rtol=1e-5)


def test_conv_as_reshaped_matrix():
    nl.manual_seed(3)
    conv = nl.nn.Conv2d(3, 8, 3, padding=1)
    x = nl.randn(2, 3, 6, 6)
    full = nl.compress.low_rank(conv, rank=8)      # rank = out_channels: exact
    np.testing.assert_allclose(full(x).detach().numpy(), conv(x).detach().numpy(), rtol=1e-4, atol=1e-5)
    small = nl.compress.low_rank(conv, rank=3)
    assert small[0].weight.shape == (3, 3, 3, 3) and small[1].weight.shape == (8, 3, 1, 1)
    assert small(x).shape == conv(x).shape


def test_bad_input():
    with pytest.raises(ValueError, match="exactly one of rank or energy"):
        nl.compress.low_rank(nl.nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"rank must be an integer in \[1, 3\]"):
        nl.compress.low_rank(nl.nn.Linear(4, 3), rank=4)
    with pytest.raises(TypeError, match="expected an nn.Linear or nn.Conv2d"):
        nl.compress.low_rank(nl.nn.ReLU(), rank=1)


def test_remove_pruned_units_computes_the_same_function():
    from nnlite.nn.utils import prune
    nl.manual_seed(4)
    model = nl.nn.Sequential(nl.nn.Linear(12, 16), nl.nn.ReLU(), nl.nn.Linear(16, 5))
    prune.ln_structured(model[0], "weight", amount=0.5, n=2, dim=0)
    x = nl.randn(7, 12)
    want = model(x).detach().numpy()
    first, second = nl.compress.remove_pruned_units(model[0], model[2])
    assert first.out_features == 8 and second.in_features == 8
    assert type(first) is nl.nn.Linear and "weight" in first._parameters       # plain, unpruned layers
    small = nl.nn.Sequential(first, nl.nn.ReLU(), second)
    np.testing.assert_allclose(small(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert small.num_parameters() < model.num_parameters()
    with pytest.raises(ValueError, match="next_layer has 4 inputs"):
        nl.compress.remove_pruned_units(nl.nn.Linear(3, 5), nl.nn.Linear(4, 2))
    with pytest.raises(TypeError, match="expected two nn.Linear"):
        nl.compress.remove_pruned_units(nl.nn.Linear(3, 5), nl.nn.ReLU())


@pytest.mark.parametrize("make", [
    lambda: nn.LinearReLU(6, 5),
    lambda: nn.ConvReLU2d(3, 4, 3, padding=1),
    lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
])
def test_full_rank_keeps_the_layers_function_its_fused_relu_and_padding_mode(make):
    nl.manual_seed(0)
    layer = make().double()
    x = nl.randn(2, 6, dtype="float64") if isinstance(layer, nn.Linear) else nl.randn(2, 3, 5, 5, dtype="float64")
    full = nl.compress.low_rank(layer, rank=min(layer.weight.shape[0], int(np.prod(layer.weight.shape[1:]))))
    np.testing.assert_allclose(full(x).data, layer(x).data, atol=1e-12)
    assert type(full[1]) is type(layer)   # the ReLU, if any, on the second factor


def test_remove_pruned_units_keeps_a_fused_relu():
    nl.manual_seed(1)
    a, b = nn.LinearReLU(8, 6).double(), nn.LinearReLU(6, 3).double()
    a.weight.data[::2] = 0
    small_a, small_b = nl.compress.remove_pruned_units(a, b)
    assert (type(small_a), type(small_b)) == (nn.LinearReLU, nn.LinearReLU)
    x = nl.randn(4, 8, dtype="float64")
    np.testing.assert_allclose(small_b(small_a(x)).data, b(a(x)).data, atol=1e-12)


def test_compressing_a_layer_draws_no_random_numbers():
    """The factor layers' constructors make initial weights that are overwritten at once: drawing
    them from the global generator would change every later random number (dropout, data order)."""
    layer, following = nn.Linear(8, 6), nn.Linear(6, 3)
    layer.weight.data[2] = 0
    conv = nn.Conv2d(3, 4, 3)
    state = nl.random.get_rng_state()
    expected = nl.randn(5).data
    for compress in (lambda: nl.compress.low_rank(layer, rank=2), lambda: nl.compress.low_rank(conv, rank=2),
                     lambda: nl.compress.remove_pruned_units(layer, following)):
        nl.random.set_rng_state(state)
        compress()
        np.testing.assert_array_equal(nl.randn(5).data, expected)
