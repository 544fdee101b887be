"""nnlite.distill: students share their start and budget, alpha is chosen on validation, run() is JSON-able."""
import json

import numpy as np
import pytest

import nnlite as nl
from nnlite import distill
from nnlite.data import MNIST1D
from nnlite.recipes import MNIST1DCNN

from helpers import mnist1d_or_skip


def _labelled(n=300):
    mnist1d_or_skip()
    x, y = (t.numpy() for t in MNIST1D(train=True).tensors)
    return x[:n], y[:n]


def test_alpha_zero_is_the_student_alone():
    # same start, same batches: with alpha = 0 the distillation loss is the cross-entropy
    x, y = _labelled()
    nl.manual_seed(0)
    a, b = MNIST1DCNN(channels=4), MNIST1DCNN(channels=4)
    b.load_state_dict(a.state_dict())
    logits = np.random.default_rng(0).standard_normal((len(x), 10)).astype(np.float32)
    distill.train_student(a, x, y, seed=0, steps=7)
    distill.train_student(b, x, y, logits, seed=0, steps=7, alpha=0.0)
    np.testing.assert_allclose(a.linear.weight.detach().numpy(), b.linear.weight.detach().numpy(), atol=1e-6)


def test_students_learn_from_the_teacher_alone():
    # alpha = 1 and random labels: whatever the student learns comes from the teacher's outputs
    x, y = _labelled(1000)
    teacher_logits = np.eye(10, dtype=np.float32)[y] * 8.0
    wrong = (y + 1) % 10
    nl.manual_seed(1)
    student = distill.train_student(MNIST1DCNN(channels=8), x, wrong, teacher_logits, seed=1, steps=150,
                                    alpha=1.0, T=2.0)
    assert nl.train.accuracy(student, x, y) > 0.4          # chance is 10%, the labels say 0%


def test_unlabelled_signals_are_new_draws_and_need_teacher_outputs():
    mnist1d_or_skip()
    extra = distill.transfer_signals(40)
    assert extra.shape == (40, 40) and extra.dtype == np.float32
    train = MNIST1D(train=True).tensors[0].numpy()
    test = MNIST1D(train=False).tensors[0].numpy()
    for bundled in (train, test):       # no transfer signal is a copy of a bundled example
        assert np.abs(bundled[None, :, :] - extra[:, None, :]).max(axis=2).min() > 1e-3
    x, y = _labelled(100)
    with pytest.raises(ValueError, match="unlabelled signals need teacher_logits"):
        distill.train_student(MNIST1DCNN(channels=4), x, y, unlabelled=extra)



def test_train_student_names_a_pool_smaller_than_a_batch_and_mismatched_rows():
    x, y = _labelled(100)
    with pytest.raises(ValueError, match="needs at least 100 examples \\(one batch\\), got 99"):
        distill.train_student(MNIST1DCNN(channels=4), x[:99], y[:99], steps=1)   # looped forever
    with pytest.raises(ValueError, match="y needs one row per example of x \\(100\\), got 99"):
        distill.train_student(MNIST1DCNN(channels=4), x, y[:99], steps=1)
    with pytest.raises(ValueError, match="teacher_logits needs one row per example of x \\(100\\), got 3"):
        distill.train_student(MNIST1DCNN(channels=4), x, y, np.zeros((3, 10), np.float32), steps=1)
    with pytest.raises(ValueError, match=r"compare: needs at least one alpha .* got alphas=\(\), seeds=\(0,\)"):
        distill.compare(seeds=(0,), alphas=())


def test_compare_reports_every_student_and_the_chosen_alpha():
    mnist1d_or_skip()
    results = distill.compare(seeds=(0,), teacher_epochs=2, student_steps=40, alphas=(0.5, 0.9),
                              transfer_size=200)
    assert set(results) == {"teacher", "student_alone", "student_distilled", "student_distilled_labelled_only",
                            "alpha"}
    assert results["teacher"][0] > 0.3                     # chance is 10%
    assert results["alpha"][0] in (0.5, 0.9)
    assert all(0.1 < v[0] <= 1.0 for k, v in results.items() if k != "alpha")


def test_run_reports_json(monkeypatch):
    fake = {"teacher": [0.9, 0.9, 0.9], "student_alone": [0.8, 0.8, 0.83],
            "student_distilled": [0.83, 0.81, 0.86], "student_distilled_labelled_only": [0.8, 0.8, 0.8],
            "alpha": [0.9, 0.5, 0.9]}
    monkeypatch.setattr(distill, "compare", lambda seeds, student_steps: fake)
    out = distill.run(seed=3, epochs=5, progress=False)
    assert out["seeds"] == [3, 4, 5] and out["student_steps"] == 175
    assert "gain +2.3 points" in out["summary"] and "+3.0, +1.0, +3.0" in out["summary"]
    json.dumps(out)


def test_transfer_signals_gives_exactly_n_signals():
    mnist1d_or_skip()
    assert distill.transfer_signals(10).shape == (10, 40)   # was 8: MNIST-1D keeps whole classes, 80% of them
    assert distill.transfer_signals(4).shape == (4, 40)     # was a NumPy stacking error
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        distill.transfer_signals(0)


def test_predicting_leaves_the_models_mode_as_it_was():
    # train_teacher returns its teacher in eval mode; predicting with it switched it to training mode.
    model = MNIST1DCNN(channels=2).eval()
    x = np.zeros((3, 40), np.float32)
    assert distill._predict(model, x).shape == (3, 10)
    assert not any(m.training for m in model.modules())
