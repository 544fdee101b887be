"""nnlite.distill: the comparison trains a teacher and two students from one start; run() is JSON-able."""
import json

import numpy as np

import nnlite as nl
from nnlite import distill
from nnlite.recipes import MNIST1DCNN


def test_students_start_alike_and_learn(monkeypatch):
    results = distill.compare(seeds=(0,), teacher_epochs=2, student_epochs=2)
    assert set(results) == {"teacher", "student_alone", "student_distilled"}
    assert results["teacher"][0] > 0.3                                # chance is 10%
    assert all(0.1 < v[0] <= 1.0 for v in results.values())
    # the two students of a seed start from the same weights and see the same batches:
    # with alpha = 0 the distillation loss is the cross-entropy, so they end equal
    nl.manual_seed(0)
    a, b = MNIST1DCNN(channels=4), MNIST1DCNN(channels=4)
    b.load_state_dict(a.state_dict())
    logits = nl.zeros(4000, 10)
    acc_a = distill.train_student(a, seed=0, epochs=1)
    acc_b = distill.train_student(b, logits, seed=0, epochs=1, alpha=0.0)
    assert acc_a == acc_b
    np.testing.assert_allclose(a.linear.weight.detach().numpy(), b.linear.weight.detach().numpy(), atol=1e-6)


def test_run_reports_json(monkeypatch):
    fake = {"teacher": [0.9, 0.9, 0.9], "student_alone": [0.5, 0.5, 0.6], "student_distilled": [0.6, 0.5, 0.6]}
    monkeypatch.setattr(distill, "compare", lambda seeds, student_epochs: fake)
    out = distill.run(seed=3, epochs=5, progress=False)
    assert out["seeds"] == [3, 4, 5] and out["student_epochs"] == 5
    assert "+3.3 points" in out["summary"]
    json.dumps(out)
