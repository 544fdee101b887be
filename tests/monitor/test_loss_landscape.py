"""Loss landscapes: endpoints, centre, filter normalisation, fixed BatchNorm, and a model left untouched."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.monitor import average_loss, loss_landscape_1d, loss_landscape_2d, random_direction


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(nn.functional.relu(self.bn(self.conv(x))).reshape(x.shape[0], -1))


def _batches():
    g = np.random.default_rng(0)
    x = nl.tensor(g.normal(size=(12, 1, 4, 4)).astype(np.float32))
    y = nl.tensor(g.integers(0, 4, size=12))
    return [(x[:8], y[:8]), (x[8:], y[8:])]


def _model():
    nl.manual_seed(1)
    model = SmallCNN()
    model.train()
    with nl.no_grad():  # running statistics that are not the initial zeros and ones
        model(_batches()[0][0])
    return model


def _values(model):
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def _loss_at(state, batches):
    model = _model()
    for k, t in model.state_dict(keep_vars=True).items():
        np.copyto(t.data, state[k])
    model.eval()
    return average_loss(model, nn.functional.cross_entropy, batches)


def test_1d_endpoints_are_the_losses_of_the_two_states():
    batches = _batches()
    model = _model()
    start = _values(model)
    opt = nl.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(5):
        for x, y in batches:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    end = _values(model)
    scan = loss_landscape_1d(model, nn.functional.cross_entropy, batches, start, end,
                             alphas=[0.0, 0.5, 1.0])
    assert scan.loss[0] == _loss_at(start, batches)
    assert scan.loss[2] == _loss_at(end, batches)
    assert scan.loss[2] < scan.loss[0]
    assert all(np.array_equal(v, end[k]) for k, v in _values(model).items())  # the model is back at `end`
    assert model.training


def test_2d_centre_is_the_models_loss_and_the_model_is_unchanged():
    batches = _batches()
    model = _model()
    before = _values(model)
    model.eval()
    own = average_loss(model, nn.functional.cross_entropy, batches)
    model.train()
    scan = loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=5, span=0.5,
                             generator=nl.Generator(3))
    assert scan.loss.shape == (5, 5) and scan.alphas[2] == 0.0 and scan.betas[2] == 0.0
    assert scan.loss[2, 2] == own
    assert scan.loss.min() < scan.loss.max()  # the directions really moved the model
    after = _values(model)
    assert all(np.array_equal(after[k], before[k]) and after[k].dtype == before[k].dtype for k in before)
    assert model.training


def test_filter_normalisation_gives_each_filter_the_weights_filter_norm():
    model = _model()
    direction = random_direction(model, normalization="filter", generator=nl.Generator(0))
    for name in ("conv.weight", "fc.weight"):
        w = model.get_parameter(name).data.astype(np.float64)
        d = direction[name]
        axes = tuple(range(1, w.ndim))
        assert np.allclose(np.sqrt((d * d).sum(axis=axes)), np.sqrt((w * w).sum(axis=axes)), rtol=1e-12)
        assert not np.allclose(d, w)  # a rescaled random direction, not the weights themselves
    # biases and BatchNorm's scale and shift stay fixed (Li et al.'s "biasbn")
    for name in ("conv.bias", "bn.weight", "bn.bias", "fc.bias"):
        assert not direction[name].any()
    # with ignore="bn" biases move, BatchNorm's parameters still do not
    direction = random_direction(model, ignore="bn", generator=nl.Generator(0))
    assert direction["fc.bias"].any() and not direction["bn.weight"].any() and not direction["bn.bias"].any()


def test_layer_normalisation_and_raw_directions():
    model = _model()
    layer = random_direction(model, normalization="layer", generator=nl.Generator(0))
    w = model.get_parameter("fc.weight").data.astype(np.float64)
    assert np.isclose(np.linalg.norm(layer["fc.weight"]), np.linalg.norm(w), rtol=1e-12)
    raw = random_direction(model, normalization=None, generator=nl.Generator(0))
    assert np.allclose(raw["fc.weight"] / np.linalg.norm(raw["fc.weight"]) * np.linalg.norm(w), layer["fc.weight"])


def test_given_directions_trace_a_known_quadratic():
    # loss(w) = mean((w x - 0)^2) with one weight: along direction d the loss is a parabola in alpha
    model = nn.Linear(1, 1, bias=False)
    model.weight.data[...] = 1.0
    x, y = nl.tensor([[1.0], [2.0]]), nl.tensor([[0.0], [0.0]])
    directions = ({"weight": np.array([[1.0]])}, {"weight": np.array([[0.0]])})
    scan = loss_landscape_2d(model, nn.functional.mse_loss, [(x, y)], steps=3, span=1.0, directions=directions)
    assert np.allclose(scan.loss[:, 1], [0.0, 2.5, 10.0])     # (1 + alpha)^2 * (1 + 4) / 2
    assert np.allclose(scan.loss[1, :], 2.5)                  # beta moves nothing


def test_bad_arguments_are_named():
    model, batches = _model(), _batches()
    with pytest.raises(ValueError, match="steps must be a positive odd number"):
        loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=4)
    with pytest.raises(ValueError, match="normalization must be"):
        random_direction(model, normalization="unit")
    with pytest.raises(KeyError, match="missing"):
        loss_landscape_1d(model, nn.functional.cross_entropy, batches, {}, {}, [0.0])
    with pytest.raises(ValueError, match="produced no"):
        average_loss(model, nn.functional.cross_entropy, [])


def test_bad_alphas_states_models_and_generators_are_named():
    nl.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = nl.randn(4, 3), nl.randn(4, 2)
    state = {k: v.data.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="alphas must be finite"):
        loss_landscape_1d(model, nl.nn.functional.mse_loss, [(x, y)], state, state, alphas=[0.0, float("nan")])
    with pytest.raises(TypeError, match="expected start_state as a state dict, got ndarray"):
        loss_landscape_1d(model, nl.nn.functional.mse_loss, [(x, y)], np.zeros(3), state)
    with pytest.raises(TypeError, match="random_direction: expected an nn.Module, got ndarray"):
        random_direction(np.zeros(3))
    with pytest.raises(TypeError, match="generator must be an nl.Generator or None, got int"):
        random_direction(model, generator=5)


def test_given_directions_must_match_every_parameter_shape():
    model, batches = _model(), _batches()
    good = random_direction(model, generator=nl.Generator(0))
    # A row where a matrix is expected would broadcast into a plane the caller never asked for.
    short = dict(good, **{"fc.weight": good["fc.weight"][0]})
    with pytest.raises(ValueError, match=r"fc.weight has shape \(4, 48\) in the model but \(48,\) in the second"):
        loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=3, directions=(good, short))
    with pytest.raises(KeyError, match=r"first direction must hold every parameter.*missing \['conv.weight'"):
        loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=3,
                          directions=({k: v for k, v in good.items() if k != "conv.weight"}, good))
    as_tensors = {k: nl.tensor(v) for k, v in good.items()}
    same = loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=3, directions=(as_tensors, good))
    plain = loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=3, directions=(good, good))
    np.testing.assert_array_equal(same.loss, plain.loss)


def test_grid_settings_are_checked_before_use():
    model, batches = _model(), _batches()
    # int(20.5) made 20 steps quietly, and int("21") read a string as a count
    for steps in (20.5, 21.0, "21"):
        with pytest.raises(ValueError, match=f"steps must be a positive odd number .*got {steps!r}"):
            loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=steps)
    with pytest.raises(TypeError, match="loss_landscape_2d: span " + r"must be a real number \(int, float or NumPy scalar\), got str"):
        loss_landscape_2d(model, nn.functional.cross_entropy, batches, steps=3, span="1")


def test_a_landscape_needs_one_loss_per_point():
    from nnlite.monitor import LossLandscape
    with pytest.raises(ValueError, match=r"expected loss of shape \(3,\), one value per point, got \(4,\)"):
        LossLandscape(np.arange(3.0), np.arange(4.0))


def test_a_scan_puts_back_each_layers_own_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.Linear(6, 4))
    model[2].eval()   # frozen statistics inside a training model
    loss_landscape_2d(model, nn.functional.cross_entropy, _batches(), steps=3, generator=nl.Generator(0))
    assert model.training and not model[2].training
