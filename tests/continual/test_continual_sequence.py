"""Small task sequences: forgetting happens, and each method changes it the way it should."""
import numpy as np
import pytest

from nnlite import continual

from helpers import mnist1d_or_skip


@pytest.fixture(scope="module")
def tasks():
    mnist1d_or_skip()
    return continual.split_mnist1d(train_size=300)


def test_naive_fine_tuning_forgets_catastrophically_in_the_class_incremental_setting(tasks):
    out = continual.train_sequence("naive", tasks, setting="class", epochs=3)
    R = np.array(out["R"])
    # measured: BWT -0.70 and ACC 0.09 -- only the last task's classes are ever predicted
    assert out["bwt"] < -0.5 and out["acc"] < 0.3
    assert R[0, 0] > 0.9 and R[-1, :-1].max() < 0.1   # learnt, then overwritten


def test_ewc_and_replay_forget_less_than_naive_fine_tuning_in_the_task_incremental_setting(tasks):
    bwt = {m: continual.train_sequence(m, tasks, setting="task", epochs=3)["bwt"] for m in ("naive", "ewc", "replay")}
    # measured: naive -0.065, EWC -0.009, replay -0.025
    assert bwt["naive"] < -0.03
    assert abs(bwt["ewc"]) < 0.6 * abs(bwt["naive"]) and abs(bwt["replay"]) < 0.6 * abs(bwt["naive"])


def test_progressive_networks_forget_nothing_and_grow(tasks):
    out = continual.train_sequence("progressive", tasks[:3], setting="task", epochs=2)
    R = np.array(out["R"])
    assert out["bwt"] == 0.0
    for j in range(3):   # bit-identical outputs, so identical accuracies after every later task
        assert all(R[i, j] == R[j, j] for i in range(j, 3))
    growth = np.diff([0] + out["parameters"])
    assert growth[2] > growth[1] > growth[0] > 0   # each column brings adapters to all earlier ones


def test_bad_method_or_setting_is_named(tasks):
    with pytest.raises(ValueError, match="method must be one of .* got 'lwf'"):
        continual.train_sequence("lwf", tasks)
    with pytest.raises(ValueError, match="class-incremental"):
        continual.train_sequence("progressive", tasks, setting="class")


def test_the_continual_experiment_reports_every_method_per_benchmark(monkeypatch):
    mnist1d_or_skip()
    from nnlite.continual import experiment
    monkeypatch.setattr(experiment, "split_mnist1d", lambda: continual.split_mnist1d(train_size=60))
    monkeypatch.setattr(experiment, "permuted_mnist1d",
                        lambda seed: continual.permuted_mnist1d(seed=seed, train_size=60))
    out = experiment.run(seed=0, epochs=1, progress=False)
    benchmarks = out["benchmarks"]
    assert set(benchmarks) == {"split-task-incremental", "split-class-incremental", "permuted"}
    assert "progressive" not in benchmarks["split-class-incremental"]
    assert set(benchmarks["split-task-incremental"]) == set(continual.METHODS)
    for runs in benchmarks.values():
        for method, result in runs.items():
            assert np.shape(result["R"]) == (5, 5)
            assert result["acc"] == pytest.approx(continual.average_accuracy(result["R"]))
            assert result["bwt"] == pytest.approx(continual.backward_transfer(result["R"]))
            assert method in out["summary"]
