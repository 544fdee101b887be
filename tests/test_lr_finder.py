"""The LR range test sweeps exponentially, suggests a rate on the falling slope, and changes nothing."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader, TensorDataset
from nnlite.nn import functional as F


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 10)).astype(np.float32)
    y = (x @ rng.standard_normal(10) > 0).astype(np.int64) + (x[:, 0] > 1)
    return TensorDataset(nl.tensor(x), nl.tensor(y))


def _model():
    nl.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))


def _train(model, opt, loader, steps=12):
    for k, (x, y) in zip(range(steps), loader):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_sweep_is_exponential_and_finds_the_falling_slope():
    model = _model()
    loader = DataLoader(_problem(), batch_size=32, shuffle=True)
    result = nl.train.lr_finder(model, F.cross_entropy, loader, start_lr=1e-5, end_lr=100.0, num_iters=120)
    lrs = np.asarray(result.lrs)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (100.0 / 1e-5) ** (1 / 119), rtol=1e-9)
    assert lrs[0] == 1e-5 and len(result.losses) == len(result.raw_losses) == len(lrs)
    assert result.diverged and len(lrs) < 120          # lr 100 with momentum blows up
    assert 1e-3 <= result.suggestion <= 2.0
    at = list(lrs).index(result.suggestion)
    assert result.losses[at] < result.losses[0]         # on the way down, not on the flat start
    # The suggestion trains: a few steps at it lower the loss more than at start_lr.
    losses = {}
    for lr in (1e-5, result.suggestion):
        m = _model()
        _train(m, nl.optim.SGD(m.parameters(), lr=lr, momentum=0.9), DataLoader(_problem(), batch_size=32))
        x, y = _problem().tensors
        losses[lr] = F.cross_entropy(m(x), y).item()
    assert losses[result.suggestion] < losses[1e-5] - 0.05


def test_model_optimizer_loader_and_generator_are_restored_bit_for_bit():
    def run(with_finder):
        model = _model()
        opt = nl.optim.Adam(model.parameters(), lr=1e-3)
        loader = DataLoader(_problem(), batch_size=32, shuffle=True)
        _train(model, opt, loader, steps=3)       # state to keep: moments, step counts, loader position
        if with_finder:
            nl.train.lr_finder(model, F.cross_entropy, loader, 1e-6, 10.0, 40, optimizer=opt)
            assert opt.param_groups[0]["lr"] == 1e-3
        _train(model, opt, loader, steps=6)
        draw = nl.rand(3).data
        return [p.data.tobytes() for p in model.parameters()], opt.state_dict(), draw

    params_a, state_a, draw_a = run(False)
    params_b, state_b, draw_b = run(True)
    assert params_a == params_b and np.array_equal(draw_a, draw_b)
    for index, entry in state_a["state"].items():
        for name, value in entry.items():
            assert np.array_equal(value.data, state_b["state"][index][name].data), (index, name)


def test_a_fresh_optimizer_keeps_no_state_from_the_sweep():
    model = _model()
    opt = nl.optim.Adam(model.parameters(), lr=1e-3)
    nl.train.lr_finder(model, F.cross_entropy, DataLoader(_problem(), batch_size=64), 1e-6, 1.0, 20, optimizer=opt)
    assert opt.state_dict()["state"] == {}


def test_plot_and_bad_arguments(tmp_path):
    model = _model()
    loader = DataLoader(_problem(), batch_size=64)
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        nl.train.lr_finder(model, F.cross_entropy, loader, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="num_iters"):
        nl.train.lr_finder(model, F.cross_entropy, loader, num_iters=1)
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    result = nl.train.lr_finder(model, F.cross_entropy, loader, 1e-4, 1.0, 15)   # fewer batches: cycles
    assert len(result.lrs) == 15
    ax = result.plot()
    assert ax.get_xscale() == "log" and len(ax.lines) == 3


def test_smoothing_factor_must_leave_room_for_the_new_loss():
    x = np.zeros((8, 2), np.float32)
    loader = DataLoader(TensorDataset(x, np.zeros(8, np.int64)), batch_size=4)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1.0"):
        nl.train.lr_finder(nn.Linear(2, 2), F.cross_entropy, loader, num_iters=5, beta=1.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"end_lr": float("inf")}, "need 0 < start_lr < end_lr < inf"),
    ({"diverge_factor": 0.5}, "diverge_factor must be > 1, got 0.5"),
    ({"diverge_factor": float("nan")}, "diverge_factor must be > 1, got nan"),
    ({"skip_start": -1}, "skip_start must be an integer >= 0, got -1")])
def test_sweep_settings_are_checked_before_the_sweep(kwargs, message):
    loader = DataLoader(_problem(), batch_size=64)
    with pytest.raises(ValueError, match=message):
        nl.train.lr_finder(_model(), F.cross_entropy, loader, num_iters=5, **kwargs)


def test_a_model_that_cannot_be_swept_is_named():
    loader = DataLoader(_problem(), batch_size=64)
    with pytest.raises(TypeError, match="lr_finder: expected an nn.Module, got ndarray"):
        nl.train.lr_finder(np.zeros(3), F.cross_entropy, loader)
    frozen = _model().requires_grad_(False)
    with pytest.raises(ValueError, match="Sequential has no trainable parameters to sweep"):
        nl.train.lr_finder(frozen, F.cross_entropy, loader, num_iters=5)


def test_the_suggestion_is_on_the_descent_for_every_seed_of_a_noisy_short_sweep():
    # The docstring's example: batch losses vary by a factor of 3 between batches while the rate is
    # still too small to matter. Read off a running average, the flat start's noise and the average's
    # lag put the suggestion at 5e-7 (no training at all) for 11 of 20 seeds.
    suggestions = []
    for seed in range(12):
        nl.manual_seed(seed)
        x = nl.randn(256, 4)
        y = x @ nl.tensor([[1.0], [-2.0], [0.5], [3.0]])
        result = nl.train.lr_finder(nn.Linear(4, 1), F.mse_loss, DataLoader(TensorDataset(x, y), batch_size=32),
                                    num_iters=60)
        suggestions.append(result.suggestion)
        at = result.lrs.index(result.suggestion)
        assert result.losses[at] < result.losses[0], seed
    assert 1e-3 < min(suggestions) and max(suggestions) < 0.1, suggestions


def test_the_reported_curve_is_a_centred_smoothing_of_the_batch_losses():
    model = _model()
    loader = DataLoader(_problem(), batch_size=32, shuffle=True)
    result = nl.train.lr_finder(model, F.cross_entropy, loader, start_lr=1e-5, end_lr=1.0, num_iters=50)
    raw = np.asarray(result.raw_losses)
    steps = np.arange(len(raw))
    weights = np.exp(-0.5 * ((steps[:, None] - steps[None, :]) / 2.0) ** 2)   # sigma: 4% of 50 steps
    np.testing.assert_allclose(result.losses, weights @ raw / weights.sum(axis=1), rtol=1e-12)


def test_a_sub_module_kept_in_eval_mode_stays_in_it():
    # A frozen BatchNorm in eval mode inside a training model: model.train(True) afterwards would
    # switch it to training mode, where its running statistics move with every batch.
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model[1].eval()
    nl.train.lr_finder(model, F.cross_entropy, DataLoader(_problem(), batch_size=64), num_iters=10)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]


def test_a_fractional_number_of_steps_is_named():
    with pytest.raises(ValueError, match="num_iters must be an integer >= 2, got 10.5"):   # was range()'s TypeError
        nl.train.lr_finder(_model(), F.cross_entropy, DataLoader(_problem(), batch_size=64), num_iters=10.5)


def test_an_iterator_of_batches_is_refused_by_name():
    # It could be neither started again for a sweep longer than it nor put back afterwards.
    batches = iter([(nl.randn(4, 10), nl.tensor([0, 1, 2, 0]))])
    with pytest.raises(TypeError, match="lr_finder: expected a loader with a length that can be iterated "
                                        "again .*, got list_iterator"):
        nl.train.lr_finder(_model(), F.cross_entropy, batches, num_iters=5)


def test_a_parameter_the_optimizer_steps_outside_the_model_is_put_back():
    # A learned weight inside the loss: the sweep's steps changed it for good.
    model = _model()
    scale = nn.Parameter(nl.tensor(np.array([2.0], np.float32)))
    loss_fn = lambda output, target: F.cross_entropy(output * scale, target)   # noqa: E731
    opt = nl.optim.SGD(list(model.parameters()) + [scale], lr=0.1)
    nl.train.lr_finder(model, loss_fn, DataLoader(_problem(), batch_size=64), num_iters=10, optimizer=opt)
    assert scale.data.tolist() == [2.0] and scale.grad is None


def test_a_qat_models_observer_buffers_come_back_with_their_shapes():
    # The observers replace their ranges by per-channel arrays at the first step; the saved
    # values were broadcast into those, so the state_dict came back with other shapes.
    qat = nl.quantization.prepare_qat(_model())
    before = {k: v.data.copy() for k, v in qat.state_dict().items()}
    nl.train.lr_finder(qat, F.cross_entropy, DataLoader(_problem(), batch_size=64), num_iters=5)
    after = qat.state_dict()
    for k, v in before.items():
        assert after[k].data.shape == v.shape, k
        np.testing.assert_array_equal(after[k].data, v, err_msg=k)
