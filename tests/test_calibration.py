"""Calibration: ECE and NLL by hand, temperature scaling recovers a known over-confidence."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import calibration as cal
from nnlite.nn import functional as F

from helpers import sklearn_or_skip


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _calibrated_logits(n=6000, classes=5, seed=0):
    """Logits whose softmax is the true label distribution: calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = 1.5 * rng.standard_normal((n, classes))
    p = _softmax(z)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z, labels


def test_ece_and_nll_by_hand():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    labels = np.array([0, 1, 0])
    # bins of width 0.1: (0.8, 0.9] right at 0.9, (0.5, 0.6] wrong at 0.6, (0.7, 0.8] right at 0.8
    assert cal.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx((0.1 + 0.6 + 0.2) / 3)
    bins = cal.reliability_bins(probs, labels, n_bins=10)
    assert bins["count"].tolist() == [0, 0, 0, 0, 0, 1, 0, 1, 1, 0]
    logits = np.log(probs)
    expected = F.cross_entropy(nl.tensor(logits), nl.tensor(labels)).item()
    assert cal.negative_log_likelihood(logits, labels) == pytest.approx(expected, rel=1e-6)


def test_temperature_scaling_undoes_a_known_over_confidence():
    z, labels = _calibrated_logits()
    assert cal.expected_calibration_error(_softmax(z), labels) < 0.03
    over = 3.0 * z                       # the same ranking, three times too sure
    ece_before = cal.expected_calibration_error(_softmax(over), labels)
    assert ece_before > 0.1
    temperature = cal.fit_temperature(over, labels)
    assert isinstance(temperature, nl.nn.Temperature)
    assert temperature.log_temperature.kind == "temperature"
    t = float(temperature.temperature.item())
    assert t == pytest.approx(3.0, rel=0.08)
    scaled = temperature(nl.tensor(over)).data
    assert cal.expected_calibration_error(_softmax(scaled), labels) < 0.03
    assert cal.negative_log_likelihood(scaled, labels) < cal.negative_log_likelihood(over, labels) - 0.2
    assert np.array_equal(scaled.argmax(1), over.argmax(1))      # accuracy cannot change


def test_a_trained_network_on_digits_gets_a_lower_test_nll():
    sklearn_or_skip()
    from nnlite.data import DataLoader, Digits
    nl.manual_seed(0)
    train, test = Digits(train=True), Digits(train=False)
    x, y = next(iter(DataLoader(train, batch_size=200)))  # a small training set: over-fits, over-confident
    model = nl.nn.Sequential(nl.nn.Linear(64, 128), nl.nn.ReLU(), nl.nn.Linear(128, 10))
    opt = nl.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    half = len(test) // 2
    loader = DataLoader(test, batch_size=256)
    logits, labels = cal.predict_logits(model, loader)
    val, held = slice(0, half), slice(half, None)
    temperature = cal.fit_temperature(logits[val], labels[val])
    assert temperature.temperature.item() > 1.2                  # it softens
    scaled = temperature(nl.tensor(logits[held])).data
    assert cal.negative_log_likelihood(scaled, labels[held]) < cal.negative_log_likelihood(logits[held],
                                                                                          labels[held])
    assert model.training                                          # predict_logits put the mode back


def test_reliability_diagram_and_bad_input():
    z, labels = _calibrated_logits(n=500)
    with pytest.raises(ValueError, match=r"expected \(N, classes\)"):
        cal.expected_calibration_error(_softmax(z)[:, 0], labels)
    with pytest.raises(TypeError, match="labels must be integers"):
        cal.fit_temperature(z, labels.astype(float))
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    ax = cal.reliability_diagram(_softmax(3 * z), labels, n_bins=10, label="over-confident")
    assert len(ax.patches) == int((cal.reliability_bins(_softmax(3 * z), labels, 10)["count"] > 0).sum())
    assert "ECE" in ax.get_legend().get_texts()[0].get_text()


def test_labels_outside_the_classes_and_empty_binnings_are_refused():
    probs = np.full((4, 2), 0.5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\) for 2 classes, got 0..7"):
        cal.expected_calibration_error(probs, np.array([0, 1, 0, 7]))
    with pytest.raises(ValueError, match="n_bins must be a positive integer, got 0"):
        cal.reliability_bins(probs, np.array([0, 1, 0, 1]), n_bins=0)


def test_empty_non_finite_and_non_probability_scores_are_refused():
    logits, labels = np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
    with pytest.raises(ValueError, match="expected at least one sample"):
        cal.negative_log_likelihood(logits[:0], labels[:0])   # was nan
    with pytest.raises(ValueError, match="expected finite scores, got NaN or inf"):
        cal.expected_calibration_error(np.full((2, 2), np.nan), labels)   # was nan
    with pytest.raises(ValueError, match=r"expected probabilities in \[0, 1\], got values in \[0, 2\]"):
        cal.expected_calibration_error(logits, labels)   # logits were binned as confidences
    with pytest.raises(ValueError, match="steps must be a positive integer, got -1"):
        cal.fit_temperature(logits, labels, steps=-1)
    with pytest.raises(TypeError, match="predict_logits: expected an nn.Module, got ndarray"):
        cal.predict_logits(np.zeros(3), [(nl.zeros(1, 2), nl.tensor([0]))])


def test_predict_logits_puts_back_every_layers_own_mode():
    # model.train(was_training) would switch a BatchNorm kept in eval mode inside a training model
    # back to training mode, where its running statistics move with every batch.
    model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.BatchNorm1d(4), nl.nn.Linear(4, 2))
    model[1].eval()
    cal.predict_logits(model, [(nl.randn(5, 3), nl.tensor([0, 1, 0, 1, 0]))])
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_predict_logits_of_an_empty_loader_is_named():
    with pytest.raises(ValueError, match="predict_logits: expected a loader with at least one batch, got none"):
        cal.predict_logits(nl.nn.Linear(3, 2), [])
