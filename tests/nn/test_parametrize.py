"""nn.utils.parametrize and nn.utils.parametrizations: torch's keys, values and gradients; the mechanism.

Side by side with torch.nn.utils.parametrize / parametrizations (skipped per test
without torch): state_dict keys in order, outputs in train and eval mode,
gradients of the originals, spectral norm's power-iteration vectors after
several training forwards, and checkpoints loaded both ways. Then float64
finite differences, the mechanism (chains, right_inverse on assignment,
unsafe, removal), and what the rest of nnlite does with a parametrized model
(optimizer arena, kinds, nl.io, deepcopy, the no-grad fast path).
"""
import copy
import doctest

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.nn.utils import parametrizations, parametrize
from nnlite.nn.utils.parametrizations import spectral_norm, weight_norm
from nnlite.nn.utils.parametrize import (cached, is_parametrized, register_parametrization,
                                         remove_parametrizations, type_before_parametrizations)

from helpers import torch_or_skip as _torch


def torch_or_skip():
    """torch with torch.nn.utils.parametrizations loaded."""
    torch = _torch()
    import torch.nn.utils.parametrizations  # noqa: F401
    import torch.nn.utils.parametrize  # noqa: F401
    return torch


def _layers(torch, kind, seed=0):
    """An nnlite layer and a torch layer holding the same weights."""
    nl.manual_seed(seed)
    if kind == "linear":
        ours, theirs = nn.Linear(7, 5), torch.nn.Linear(7, 5)
    elif kind == "conv_transpose":   # its weight is (in, out, kH, kW): spectral norm's rows are axis 1
        ours, theirs = nn.ConvTranspose2d(3, 6, 3), torch.nn.ConvTranspose2d(3, 6, 3)
    else:
        ours, theirs = nn.Conv2d(3, 6, 3), torch.nn.Conv2d(3, 6, 3)
    theirs.load_state_dict(_to_torch(torch, ours.state_dict()))
    return ours, theirs


def _to_torch(torch, state):
    return {k: torch.from_numpy(v.detach().numpy().copy()) for k, v in state.items()}


def _to_nnlite(state):
    return {k: v.detach().numpy().copy() for k, v in state.items()}


def _input(kind, seed=1):
    shape = (4, 7) if kind == "linear" else (2, 3, 8, 8)
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _assert_state_equal(ours, theirs, atol=1e-6):
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_allclose(a[k].detach().numpy(), b[k].detach().numpy(), atol=atol, rtol=1e-5, err_msg=k)


def _grads(model):
    return {n: p.grad.detach().numpy() for n, p in model.named_parameters()}


def _compare_step(torch, ours, theirs, x, atol=1e-5):
    """Outputs equal, then gradients of every parameter (the originals) equal."""
    ours.zero_grad(), theirs.zero_grad()
    a, b = ours(nl.tensor(x)), theirs(torch.from_numpy(x))
    r = np.random.default_rng(2).standard_normal(a.shape).astype(np.float32)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol, rtol=1e-5)
    (a * nl.tensor(r)).sum().backward()
    (b * torch.from_numpy(r)).sum().backward()
    ga, gb = _grads(ours), {n: p.grad.detach().numpy() for n, p in theirs.named_parameters()}
    assert list(ga) == list(gb)
    for n in ga:
        np.testing.assert_allclose(ga[n], gb[n], atol=atol, rtol=1e-4, err_msg=n)


# ------------------------------------------------------------ against torch --
@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("dim", [0, 1, -2, None])
def test_weight_norm_matches_torch(kind, dim):
    torch = torch_or_skip()
    ours, theirs = _layers(torch, kind)
    weight_norm(ours, dim=dim)
    torch.nn.utils.parametrizations.weight_norm(theirs, dim=dim)
    assert type(ours).__name__ == type(theirs).__name__
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    _assert_state_equal(ours, theirs)
    x = _input(kind)
    _compare_step(torch, ours, theirs, x)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "conv", "conv_transpose"])
@pytest.mark.parametrize("n_power_iterations", [1, 3])
def test_spectral_norm_matches_torch_in_train_and_eval(kind, n_power_iterations):
    torch = torch_or_skip()
    ours, theirs = _layers(torch, kind)
    spectral_norm(ours, n_power_iterations=n_power_iterations)
    torch.nn.utils.parametrizations.spectral_norm(theirs, n_power_iterations=n_power_iterations)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == [
        "bias", "parametrizations.weight.original", "parametrizations.weight.0._u",
        "parametrizations.weight.0._v"]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    # The random starting vectors differ between the two generators: start torch from ours.
    theirs.load_state_dict(_to_torch(torch, ours.state_dict()), strict=True)
    x = _input(kind)
    for _ in range(4):   # every training-mode forward moves _u and _v, in both
        _compare_step(torch, ours, theirs, x)
    _assert_state_equal(ours, theirs, atol=1e-5)
    ours.eval(), theirs.eval()
    u_before = ours.parametrizations.weight[0]._u.detach().numpy().copy()
    for _ in range(2):
        _compare_step(torch, ours, theirs, x)
    np.testing.assert_array_equal(ours.parametrizations.weight[0]._u.detach().numpy(), u_before)   # eval: fixed
    _assert_state_equal(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_state_dicts_load_both_ways_strictly(kind):
    torch = torch_or_skip()
    # nnlite -> torch
    ours, theirs = _layers(torch, kind, seed=3)
    spectral_norm(weight_norm(ours))      # a chain: weight_norm's output, spectrally normalised
    torch.nn.utils.parametrizations.spectral_norm(torch.nn.utils.parametrizations.weight_norm(theirs))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "parametrizations.weight.1._u" in ours.state_dict()
    theirs.load_state_dict(_to_torch(torch, ours.state_dict()), strict=True)
    _compare_step(torch, ours, theirs, _input(kind))
    ours.eval(), theirs.eval()
    _compare_step(torch, ours, theirs, _input(kind, seed=5))
    # torch -> nnlite, on fresh layers with other weights (weight_norm takes two originals, so it can
    # only come first in a chain, in both frameworks)
    for parametrization in ("weight_norm", "spectral_norm"):
        ours, theirs = _layers(torch, kind, seed=4)
        torch.manual_seed(4)
        torch.nn.init.normal_(theirs.weight)
        getattr(parametrizations, parametrization)(ours)
        getattr(torch.nn.utils.parametrizations, parametrization)(theirs)
        ours.load_state_dict(_to_nnlite(theirs.state_dict()), strict=True)
        _assert_state_equal(ours, theirs)
        _compare_step(torch, ours, theirs, _input(kind))
        ours.eval(), theirs.eval()
        _compare_step(torch, ours, theirs, _input(kind, seed=6))


def test_repr_and_class_match_torch():
    torch = torch_or_skip()
    ours = nn.Sequential(weight_norm(nn.Conv2d(3, 4, 3)), spectral_norm(nn.Linear(3, 4)))
    theirs = torch.nn.Sequential(torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv2d(3, 4, 3)),
                                 torch.nn.utils.parametrizations.spectral_norm(torch.nn.Linear(3, 4)))
    assert repr(ours) == repr(theirs)


def test_weight_norm_of_a_1d_and_spectral_norm_of_a_vector_match_torch():
    torch = torch_or_skip()
    nl.manual_seed(0)
    ours, theirs = nn.LayerNorm(6), torch.nn.LayerNorm(6)
    with nl.no_grad():
        ours.weight.data[:] = np.linspace(-1, 2, 6, dtype=np.float32)
    theirs.load_state_dict(_to_torch(torch, ours.state_dict()))
    spectral_norm(ours)
    torch.nn.utils.parametrizations.spectral_norm(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())   # no _u, _v for a vector
    _compare_step(torch, ours, theirs, np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32))


# ---------------------------------------------------------- finite differences --
def test_weight_norm_gradients_are_exact_float64():
    rng = np.random.default_rng(0)
    for dim, g_shape in ((0, (4, 1, 1)), (1, (1, 3, 1)), (None, ())):
        wn = parametrizations._WeightNorm(dim)
        g = nl.tensor(rng.uniform(0.5, 2, g_shape), dtype=nl.float64, requires_grad=True)
        v = nl.tensor(rng.standard_normal((4, 3, 2)), dtype=nl.float64, requires_grad=True)
        assert gradcheck(wn, [g, v])
        assert gradgradcheck(wn, [g, v])


def test_spectral_norm_gradients_are_exact_with_the_vectors_held_fixed():
    nl.manual_seed(0)
    W = nl.tensor(np.random.default_rng(1).standard_normal((5, 3, 2)), dtype=nl.float64, requires_grad=True)
    sn = parametrizations._SpectralNorm(W, dim=1).eval()   # eval: _u, _v do not move between evaluations
    assert gradcheck(sn, [W])
    assert gradgradcheck(sn, [W])
    vector = nl.tensor(np.random.default_rng(2).standard_normal(5), dtype=nl.float64, requires_grad=True)
    assert gradcheck(parametrizations._SpectralNorm(vector), [vector])


def test_gradient_through_a_weight_normed_layer_float64():
    nl.manual_seed(0)
    layer = weight_norm(nn.Linear(4, 3).double())
    x = nl.randn(2, 4, dtype=nl.float64)
    g, v = layer.parametrizations.weight.original0, layer.parametrizations.weight.original1

    def f(g_, v_):
        with nl.no_grad():
            g.data, v.data = g_.data, v_.data   # finite differences perturb these arrays in place
        return parametrizations._WeightNorm(0)(g_, v_) @ x.T

    assert gradcheck(f, [nl.tensor(g.data.copy(), requires_grad=True), nl.tensor(v.data.copy(), requires_grad=True)])


# ----------------------------------------------------------------- mechanism --
def test_spectral_norm_estimate_converges_to_the_largest_singular_value():
    nl.manual_seed(0)
    layer = spectral_norm(nn.Linear(30, 20))
    W = layer.parametrizations.weight.original.detach().numpy()
    sigma = np.linalg.svd(W, compute_uv=False)[0]
    for _ in range(20):
        layer.weight
    assert np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0] == pytest.approx(1, abs=1e-3)
    u, v = layer.parametrizations.weight[0]._u.detach().numpy(), layer.parametrizations.weight[0]._v.detach().numpy()
    assert float(u @ W @ v) == pytest.approx(sigma, rel=1e-3)


def test_a_custom_parametrization_trains_and_keeps_its_constraint():
    class Symmetric(nn.Module):
        def forward(self, X):
            upper = nl.tensor(np.triu(np.ones(X.shape, X.dtype)))
            strict = nl.tensor(np.triu(np.ones(X.shape, X.dtype), 1))
            return X * upper + (X * strict).T

    nl.manual_seed(0)
    layer = register_parametrization(nn.Linear(5, 5), "weight", Symmetric())
    opt = nl.optim.Adam(layer.parameters(), lr=0.05)
    x = nl.randn(16, 5)
    target = x @ nl.tensor(np.diag(np.arange(1.0, 6.0, dtype=np.float32)))
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((layer(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    W = layer.weight.detach().numpy()
    np.testing.assert_array_equal(W, W.T)
    assert losses[-1] < 0.2 * losses[0]


class Positive(nn.Module):
    """A positive tensor: softplus of the original; right_inverse is softplus's inverse."""

    def forward(self, X):
        return nl.ops.softplus(X)

    def right_inverse(self, Y):
        return nl.tensor(np.log(np.expm1(Y.data)))


def test_right_inverse_on_assignment_and_a_chain():
    layer = nn.Linear(3, 2)
    with nl.no_grad():
        layer.weight.data[:] = np.abs(layer.weight.data) + 0.1
    before = layer.weight.detach().numpy().copy()
    original = layer.weight
    register_parametrization(layer, "weight", Positive())
    assert layer.parametrizations.weight.original is original        # the same object, new values
    np.testing.assert_allclose(layer.weight.detach().numpy(), before, rtol=1e-5)
    value = np.full((2, 3), 1.5, np.float32)
    layer.weight = nl.tensor(value)
    np.testing.assert_allclose(original.detach().numpy(), np.log(np.expm1(value)), rtol=1e-6)
    np.testing.assert_allclose(layer.weight.detach().numpy(), value, rtol=1e-6)
    with pytest.raises(KeyError, match="cannot assign a Parameter to 'weight'"):
        layer.weight = nn.Parameter(nl.ones(2, 3))
    # A second parametrization on the same name runs after the first.
    register_parametrization(layer, "weight", Positive())
    assert len(layer.parametrizations.weight) == 2
    np.testing.assert_allclose(layer.weight.detach().numpy(), np.log1p(np.exp(value)), rtol=1e-6)
    layer.weight = nl.tensor(value)
    np.testing.assert_allclose(layer.weight.detach().numpy(), value, rtol=1e-5)


def test_unsafe_allows_a_change_of_shape():
    class Double(nn.Module):
        def forward(self, X):
            return nl.ops.cat([X, X], 0)

    layer = nn.Linear(3, 4, bias=False)
    with pytest.raises(ValueError, match=r"may not change the shape unless unsafe=True: the tensor has "
                                         r"shape \(4, 3\), the parametrization returned \(8, 3\)"):
        register_parametrization(layer, "weight", Double())
    assert not is_parametrized(layer) and type(layer) is nn.Linear   # nothing changed
    register_parametrization(layer, "weight", Double(), unsafe=True)
    assert layer.weight.shape == (8, 3)
    assert layer(nl.randn(5, 3)).shape == (5, 8)


def test_errors_name_what_was_expected_and_given():
    layer = nn.Linear(3, 2, bias=False)
    with pytest.raises(ValueError, match=r"Linear has no parameter, buffer or parametrized tensor named "
                                         r"'wieght' \(parameters: weight; buffers: none"):
        register_parametrization(layer, "wieght", Positive())
    with pytest.raises(ValueError, match="Linear.bias is None"):
        register_parametrization(layer, "bias", Positive())
    with pytest.raises(TypeError, match="must be an nn.Module, got function"):
        register_parametrization(layer, "weight", lambda w: w)
    with pytest.raises(ValueError, match="Linear has no parametrization on 'weight'"):
        remove_parametrizations(layer, "weight")

    class ToDouble(nn.Module):
        def forward(self, X):
            return X.double()

    with pytest.raises(ValueError, match="may not change the dtype unless unsafe=True: the tensor is float32, "
                                         "the parametrization returned float64"):
        register_parametrization(layer, "weight", ToDouble())
    weight_norm(layer)
    with pytest.raises(ValueError, match=r"register_parametrization\(ToDouble\) on 'weight'.*Tensor of shape "
                                         r"\(2, 3\) and dtype float32.*dtype float64"):
        register_parametrization(layer, "weight", ToDouble())
    with pytest.raises(ValueError, match="computed from 2 originals"):
        remove_parametrizations(layer, "weight", leave_parametrized=False)
    with pytest.raises(ValueError, match="has no parameter or buffer named 'kernel'"):
        spectral_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(ValueError, match="n_power_iterations must be positive, got 0"):
        spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match=r"dim must be in \[-2, 1\].*got 2"):
        spectral_norm(nn.Linear(2, 2), dim=2)


@pytest.mark.parametrize("leave_parametrized", [True, False])
def test_remove_parametrizations_with_one_original(leave_parametrized):
    nl.manual_seed(0)
    layer = nn.Linear(4, 3)
    original = layer.weight
    spectral_norm(layer)
    layer.eval()
    computed = layer.weight.detach().numpy().copy()
    stored = original.detach().numpy().copy()
    remove_parametrizations(layer, "weight", leave_parametrized=leave_parametrized)
    assert type(layer) is nn.Linear and not hasattr(layer, "parametrizations")
    assert layer.weight is original and isinstance(layer.weight, nn.Parameter)   # an optimizer keeps it
    np.testing.assert_array_equal(layer.weight.detach().numpy(), computed if leave_parametrized else stored)
    assert list(layer.state_dict()) == ["bias", "weight"]   # as torch: re-registered last


def test_remove_parametrizations_with_two_originals_gives_a_new_weight_parameter():
    layer = weight_norm(nn.Linear(4, 3))
    with nl.no_grad():
        layer.parametrizations.weight.original0.data *= 2
    computed = layer.weight.detach().numpy().copy()
    remove_parametrizations(layer, "weight")
    assert layer.weight.kind == "weight" and layer.weight.requires_grad
    np.testing.assert_allclose(layer.weight.detach().numpy(), computed)


def test_two_parametrized_names_and_type_before_parametrizations():
    layer = nn.Linear(4, 3)
    with nl.no_grad():
        layer.bias.data[:] = np.abs(layer.bias.data) + 0.1   # in Positive's range
    register_parametrization(layer, "bias", Positive(), unsafe=True)
    weight_norm(layer)
    cls = type(layer)
    assert cls.__name__ == "ParametrizedLinear" and type_before_parametrizations(layer) is nn.Linear
    assert is_parametrized(layer) and is_parametrized(layer, "bias") and not is_parametrized(layer, "x")
    assert list(layer.parametrizations.keys()) == ["bias", "weight"]
    remove_parametrizations(layer, "bias")
    assert type(layer) is cls and is_parametrized(layer, "weight")
    remove_parametrizations(layer, "weight")
    assert type(layer) is nn.Linear and type_before_parametrizations(layer) is nn.Linear
    assert not hasattr(nn.Linear, "weight")                      # the class of every Linear is untouched


def test_cached_computes_once_per_block():
    calls = []

    class Counted(nn.Module):
        def forward(self, X):
            calls.append(1)
            return X * 1

    layer = register_parametrization(nn.Linear(3, 3), "weight", Counted())
    calls.clear()
    with cached():
        a, b = layer.weight, layer.weight
        with cached():
            assert layer.weight is a
    assert a is b and len(calls) == 1
    layer.weight
    assert len(calls) == 2


def test_spectral_norm_moves_its_vectors_only_in_training_mode():
    nl.manual_seed(0)
    layer = spectral_norm(nn.Linear(6, 4))
    u = layer.parametrizations.weight[0]._u
    layer.eval()
    before = u.detach().numpy().copy()
    layer(nl.randn(2, 6))
    np.testing.assert_array_equal(u.detach().numpy(), before)
    layer.train()
    with nl.no_grad():
        layer.parametrizations.weight.original.data[:] = nl.randn(4, 6).data
    layer(nl.randn(2, 6))
    assert not np.array_equal(u.detach().numpy(), before)


# --------------------------------------------------------- with the rest of nnlite --
def _model(seed=0):
    nl.manual_seed(seed)
    return nn.Sequential(weight_norm(nn.Linear(6, 16)), nn.ReLU(), spectral_norm(nn.Linear(16, 3)))


def test_a_parametrized_model_trains_in_the_optimizer_arena():
    model = _model()
    opt = nl.optim.Adam(model.parameters(), lr=0.02)
    originals = {n: p for n, p in model.named_parameters() if "original" in n}
    assert list(originals) == ["0.parametrizations.weight.original0", "0.parametrizations.weight.original1",
                               "2.parametrizations.weight.original"]
    start = {n: p.detach().numpy().copy() for n, p in originals.items()}
    x, y = nl.randn(32, 6), nl.tensor(np.random.default_rng(0).integers(0, 3, 32))
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    for n, p in originals.items():
        assert p._grad_slot is not None, n                     # its gradient lives in the arena
        assert not np.allclose(p.detach().numpy(), start[n]), n        # and the optimizer moved it
    assert losses[-1] < 0.8 * losses[0]
    s = np.linalg.svd(model[2].weight.detach().numpy(), compute_uv=False)[0]
    assert s == pytest.approx(1, abs=0.05)


def test_kinds_put_the_originals_in_sensible_decay_groups():
    model = _model()
    g = model[0].parametrizations.weight.original0
    v = model[0].parametrizations.weight.original1
    w = model[2].parametrizations.weight.original
    assert (g.kind, v.kind, w.kind) == ("scale", "weight", "weight")
    decay, no_decay = nl.optim.param_groups_by_kind(model, weight_decay=0.1)
    assert {id(p) for p in decay["params"]} == {id(v), id(w)}
    assert any(p is g for p in no_decay["params"])


def test_no_grad_fast_path_uses_the_computed_weight():
    nl.manual_seed(0)
    for layer in (weight_norm(nn.Linear(5, 4)), weight_norm(nn.LinearReLU(5, 4))):
        with nl.no_grad():
            layer.parametrizations.weight.original0.data[:] = 3.0      # the stored v alone would be wrong
        x = nl.randn(3, 5)
        expected = x.detach().numpy() @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
        if isinstance(layer, nn.LinearReLU):
            expected = np.maximum(expected, 0)
        with nl.no_grad():
            out = layer(x)
        np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_checkpoints_round_trip(tmp_path):
    model = _model()
    opt = nl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(nl.randn(2, 6)).sum().backward()
    opt.step()
    nl.io.save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=opt, step=1)
    nl.io.save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    other = _model(seed=5)
    other_opt = nl.optim.SGD(other.parameters(), lr=0.1, momentum=0.9)
    nl.io.load_checkpoint(tmp_path / "c.safetensors", model=other, optimizer=other_opt)
    _same_model(model, other)
    third = _model(seed=6)
    third.load_state_dict(nl.io.load_state_dict(tmp_path / "w.safetensors"))
    _same_model(model, third)
    info = nl.io.read_checkpoint(tmp_path / "c.safetensors")
    assert info.model["parameters"]["0.parametrizations.weight.original0"]["kind"] == "scale"


def _same_model(a, b):
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.detach().numpy(), vb.detach().numpy())
    a.eval(), b.eval()
    x = nl.randn(3, 6)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_deepcopy_is_independent():
    model = _model()
    clone = copy.deepcopy(model)
    assert type(clone[0]).__name__ == "ParametrizedLinear" and type(clone[0]) is not type(model[0])
    _same_model(model, clone)
    with nl.no_grad():
        clone[0].parametrizations.weight.original1.data[:] = 0.5
    assert not np.allclose(model[0].weight.detach().numpy(), clone[0].weight.detach().numpy())
    remove_parametrizations(clone[0], "weight")
    assert model[0].weight.shape == (16, 6) and is_parametrized(model[0], "weight")
    with pytest.raises(RuntimeError, match="saved through its state_dict"):
        model[0].__getstate__()


def test_double_casts_the_originals_and_buffers():
    model = _model().double()
    assert model[0].weight.dtype == nl.float64 and model[2].weight.dtype == nl.float64
    assert model[2].parametrizations.weight[0]._u.dtype == nl.float64
    assert model(nl.randn(2, 6, dtype=nl.float64)).dtype == nl.float64


def test_doctests():
    for module in (parametrize, parametrizations):
        failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert failed == 0, module.__name__
