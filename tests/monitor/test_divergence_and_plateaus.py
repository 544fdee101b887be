"""DivergenceGuard restores the last good point bit for bit; plateaus are found where they are."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.monitor import DivergenceGuard, PlateauDetector, find_plateau
from nnlite.train import Callback, fit


class Recorder(Callback):
    """Parameter values and optimizer momentum after every step (and at the start), by step."""

    def __init__(self):
        self.values = {}

    def _record(self, state):
        self.values[state.step] = {n: p.data.copy() for n, p in state.model.named_parameters()}

    on_fit_start = on_step_end = _record


def _batches(poison_at=None, n_batches=8):
    g = np.random.default_rng(0)
    x = g.normal(size=(n_batches * 8, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [2.0], [-1.0]], dtype=np.float32)).astype(np.float32)
    if poison_at is not None:
        x[poison_at * 8] = np.nan
    return [(nl.tensor(x[i:i + 8]), nl.tensor(y[i:i + 8])) for i in range(0, len(x), 8)]


def test_a_nan_loss_stops_training_and_restores_the_last_good_step_bit_for_bit():
    nl.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = nl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    recorder, guard = Recorder(), DivergenceGuard()
    history = fit(model, nn.functional.mse_loss, optimizer, _batches(poison_at=5), epochs=3,
                  callbacks=[recorder, guard], progress=False)
    # batch 5 (the 6th) is computed with the parameters after 5 steps: those gave a NaN,
    # the ones after 4 steps gave batch 4 a finite loss
    assert guard.report["step"] == 5 and guard.report["restored_step"] == 4
    assert np.isnan(guard.report["loss"]) and guard.report["first_nonfinite"] == []
    assert history["steps"] == 5 and history["stopped_early"] and history["diverged"] == guard.report
    for name, p in model.named_parameters():
        assert p.data.tobytes() == recorder.values[4][name].tobytes()
        assert p.grad is None
    assert len(history["epoch"]) == 1  # no second epoch


def test_the_optimizer_state_goes_back_too():
    nl.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = nl.optim.Adam(model.parameters(), lr=0.01)
    states = {}

    class OptimizerRecorder(Callback):
        def on_step_end(self, state):
            states[state.step] = state.optimizer.state_dict()

    guard = DivergenceGuard()
    fit(model, nn.functional.mse_loss, optimizer, _batches(poison_at=3), epochs=1,
        callbacks=[OptimizerRecorder(), guard], progress=False)
    now = optimizer.state_dict()["state"]
    saved = states[guard.report["restored_step"]]["state"]
    assert now.keys() == saved.keys()
    for index in now:
        for key in ("exp_avg", "exp_avg_sq"):
            assert np.asarray(now[index][key]).tobytes() == np.asarray(saved[index][key]).tobytes()


def test_a_loss_rising_past_the_factor_is_divergence():
    nl.manual_seed(0)
    model = nn.Linear(3, 1)
    recorder, guard = Recorder(), DivergenceGuard(factor=10.0)
    # far above 2 / lambda_max of this quadratic: the loss grows geometrically
    history = fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=2.0), _batches(),
                  epochs=5, callbacks=[recorder, guard], progress=False)
    assert guard.diverged and "rose past 10 x the lowest loss" in guard.report["reason"]
    assert np.isfinite(guard.report["loss"])
    restored = guard.report["restored_step"]
    assert restored < guard.report["step"] and history["steps"] == guard.report["step"]
    for name, p in model.named_parameters():
        assert p.data.tobytes() == recorder.values[restored][name].tobytes()


def test_the_first_parameter_to_go_non_finite_is_named():
    model = nn.Linear(2, 1)
    model.weight.data[...] = [[1.0, 0.0]]
    model.bias.data[...] = 0.0
    # the second input is huge but its weight is 0: the loss is finite, its gradient overflows float32
    x, y = nl.tensor([[1.0, 1e38]]), nl.tensor([[-5.0]])
    guard = DivergenceGuard()
    fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=1.0), [(x, y)] * 3, epochs=1,
        callbacks=[guard], progress=False)
    assert guard.report["first_nonfinite"] == ["weight"] and guard.report["step"] == 1
    assert np.array_equal(model.weight.data, [[1.0, 0.0]]) and guard.report["restored_step"] == 0


def test_guard_arguments():
    with pytest.raises(ValueError, match="factor must be > 1, got 0.5"):
        DivergenceGuard(factor=0.5)


def test_guard_and_plateau_settings_that_are_not_numbers_are_named():
    number = r"must be a real number \(int, float or NumPy scalar\), got str"
    with pytest.raises(TypeError, match="DivergenceGuard: factor " + number):
        DivergenceGuard(factor="10")
    with pytest.raises(TypeError, match="PlateauDetector: rel_tol " + number):
        PlateauDetector(rel_tol="0.01")
    with pytest.raises(TypeError, match="find_plateau: rel_tol " + number):
        find_plateau([1.0, 1.0], rel_tol="0.01")
    # patience 1.5 waited two values, as if it were 2
    with pytest.raises(ValueError, match="find_plateau: patience must be an integer >= 1, got 1.5"):
        find_plateau([1.0, 1.0, 1.0], patience=1.5)


def test_find_plateau():
    assert find_plateau([3.0, 2.0, 1.0, 0.5]) is None
    assert find_plateau([1.0, 0.9, 0.9, 0.9], patience=2) == 3
    assert find_plateau([1.0, 0.9999, 0.99995, 1.0], patience=3, rel_tol=1e-3) == 3
    assert find_plateau([0.1, 0.5, 0.5, 0.5], patience=2, mode="max") == 3
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        find_plateau([1.0], mode="up")


def test_plateau_detector_in_fit_with_a_frozen_model():
    nl.manual_seed(0)
    model = nn.Linear(3, 1)
    detector = PlateauDetector(monitor="train_loss", patience=2)
    # lr 0: the loss never changes, so a plateau is found every `patience` epochs
    history = fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=0.0), _batches(n_batches=2),
                  epochs=6, callbacks=[detector], progress=False)
    assert detector.plateaus == [2, 4] and history["plateaus"] == [2, 4]
    with pytest.raises(KeyError, match="no metric 'val_loss'"):
        fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=0.0), _batches(n_batches=2),
            epochs=1, callbacks=[PlateauDetector()], progress=False)


def test_plateau_detector_names_a_wrong_mode_when_built():
    from nnlite.monitor import PlateauDetector
    with pytest.raises(ValueError, match="PlateauDetector: mode must be 'auto', 'min' or 'max', got 'foo'"):
        PlateauDetector(mode="foo")


def test_find_plateau_rel_tol_is_not_negative():
    from nnlite.monitor import find_plateau
    with pytest.raises(ValueError, match="find_plateau: rel_tol must be >= 0, got -1"):
        find_plateau([1.0, 1.0, 1.0], patience=1, rel_tol=-1)


@pytest.mark.parametrize("kwargs, message", [({"patience": 0}, "patience must be an integer >= 1, got 0"),
                                             ({"rel_tol": -1.0}, "rel_tol must be >= 0, got -1.0"),
                                             ({"rel_tol": float("nan")}, "rel_tol must be >= 0, got nan")])
def test_plateau_detector_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlateauDetector(**kwargs)
