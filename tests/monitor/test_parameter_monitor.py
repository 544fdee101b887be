"""ParameterMonitor and gradient_flow: the statistics agree with what SGD's rule says they must be."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.monitor import STATISTICS, ParameterMonitor, TensorBoardLogger, gradient_flow
from nnlite.train import Callback, fit


def _problem(n=32):
    g = np.random.default_rng(0)
    x = g.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], dtype=np.float32)).astype(np.float32)
    return [(nl.tensor(x[i:i + 8]), nl.tensor(y[i:i + 8])) for i in range(0, n, 8)]


class GradRecorder(Callback):
    """Keeps each step's gradients and parameter values, independently of the monitor."""

    def __init__(self):
        self.grads, self.values = [], []

    def on_fit_start(self, state):
        self.values.append({n: p.data.astype(np.float64) for n, p in state.model.named_parameters()})

    def on_batch_end(self, state):
        self.grads.append({n: p.grad.data.astype(np.float64) for n, p in state.model.named_parameters()})

    def on_step_end(self, state):
        self.values.append({n: p.data.astype(np.float64) for n, p in state.model.named_parameters()})


def test_statistics_follow_the_sgd_rule():
    nl.manual_seed(0)
    model = nn.Linear(4, 1)
    lr = 0.05
    monitor, recorder = ParameterMonitor(), GradRecorder()
    history = fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=lr), _problem(),
                  epochs=2, callbacks=[recorder, monitor], progress=False)
    assert monitor.records["step"] == list(range(1, 9))
    for name in ("weight", "bias"):
        grads = np.array([np.linalg.norm(g[name]) for g in recorder.grads])
        before = np.array([np.linalg.norm(v[name]) for v in recorder.values[:-1]])
        assert np.allclose(monitor.as_arrays("grad_norm")[name], grads, rtol=1e-12)
        # plain SGD moves theta by lr * g, so |update| / |theta| = lr |g| / |theta|
        assert np.allclose(monitor.as_arrays("update_ratio")[name], lr * grads / before, rtol=1e-5)
        init = recorder.values[0][name]
        distance = [np.linalg.norm(v[name] - init) for v in recorder.values[1:]]
        assert np.allclose(monitor.as_arrays("distance_from_init")[name], distance, rtol=1e-12)
        flips = [np.mean(np.sign(a[name]) != np.sign(b[name])) for a, b in zip(recorder.values[1:],
                                                                                 recorder.values[:-1])]
        assert monitor.as_arrays("sign_flips")[name].tolist() == flips
        # history: the epoch's mean, or its last value for norm and distance
        assert np.allclose(history[f"update_ratio/{name}"],
                           [monitor.as_arrays("update_ratio")[name][:4].mean(),
                            monitor.as_arrays("update_ratio")[name][4:].mean()])
        assert history[f"distance_from_init/{name}"] == [distance[3], distance[7]]
    assert history["norm/weight"][-1] == np.linalg.norm(model.weight.data.astype(np.float64))


def test_sign_flips_count_the_entries_a_step_carried_across_zero():
    model = nn.Linear(4, 1, bias=False)
    model.weight.data[...] = [[0.1, -0.1, 0.1, 5.0]]
    x = nl.tensor([[1.0, -1.0, 1.0, 0.0]])
    monitor = ParameterMonitor()
    fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=1.0), [(x, nl.tensor([[-1.0]]))],
        epochs=1, callbacks=[monitor], progress=False)
    # gradient 2 * (0.3 + 1) * x moves the first three entries across zero, the last one not at all
    assert monitor.records["sign_flips"]["weight"] == [0.75]


def test_every_n_steps_with_accumulation_and_a_logger(tmp_path):
    pytest.importorskip("tensorboardX")
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    nl.manual_seed(0)
    model = nn.Linear(4, 1)
    logger = TensorBoardLogger(tmp_path, histograms=False)
    monitor = ParameterMonitor(every_n_steps=2, logger=logger, names=["weight"])
    fit(model, nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=0.05), _problem(64),
        epochs=1, accumulate_grad_batches=2, callbacks=[monitor], progress=False)
    logger.close()
    assert monitor.records["step"] == [2, 4] and set(monitor.records["norm"]) == {"weight"}
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {f"{s}/weight" for s in STATISTICS} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("update_ratio/weight")] == [2, 4]
    with pytest.raises(ValueError, match="every_n_steps must be an integer >= 1, got 0"):
        ParameterMonitor(every_n_steps=0)


def test_gradient_flow_reports_mean_and_max_abs_per_weight():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 1))
    x, y = _problem()[0]
    nn.functional.mse_loss(model(x), y).backward()
    flow = gradient_flow(model.named_parameters())
    assert flow["names"] == ["0.weight", "2.weight"]
    g = np.abs(model[0].weight.grad.data.astype(np.float64))
    assert flow["mean_abs"][0] == g.mean() and flow["max_abs"][0] == g.max()
    assert gradient_flow(model.named_parameters(), weights_only=False)["names"] == [
        "0.weight", "0.bias", "2.weight", "2.bias"]


def test_unknown_parameter_names_are_named_when_training_starts():
    model = nl.nn.Linear(3, 2)
    monitor = nl.monitor.ParameterMonitor(names=["wieght"])
    data = [(nl.randn(4, 3), nl.randn(4, 2))]
    with pytest.raises(ValueError, match=r"no trainable parameters named \['wieght'\]; expected names from "
                                         r"\['weight', 'bias'\]"):
        nl.train.fit(model, nl.nn.functional.mse_loss, nl.optim.SGD(model.parameters(), lr=0.1), data, epochs=1,
                     callbacks=[monitor], progress=False)


def test_gradient_flow_of_a_model_instead_of_its_named_parameters():
    with pytest.raises(TypeError, match=r"expected \(name, parameter\) pairs such as model.named_parameters\(\), "
                                        r"got Linear"):
        gradient_flow(nn.Linear(3, 2))


def test_one_name_as_a_string_and_a_fractional_step_count():
    from nnlite.monitor import DivergenceGuard
    assert ParameterMonitor(names="0.weight").names == ["0.weight"]   # was eight one-letter names
    with pytest.raises(ValueError, match="ParameterMonitor: every_n_steps must be an integer >= 1, got 1.5"):
        ParameterMonitor(every_n_steps=1.5)
    with pytest.raises(ValueError, match="DivergenceGuard: every_n_steps must be an integer >= 1, got 1.5"):
        DivergenceGuard(every_n_steps=1.5)
