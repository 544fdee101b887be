"""EWC's penalty and gradient, the reservoir's fairness, frozen progressive columns, the metrics."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import continual
from nnlite.nn import functional as F

from helpers import mnist1d_or_skip


def _fisher_batch(seed=0):
    rng = np.random.default_rng(seed)
    return nl.tensor(rng.standard_normal((12, 3))), nl.tensor(rng.integers(0, 2, 12))


def _moved(model, seed):
    rng = np.random.default_rng(seed)
    with nl.no_grad():
        for p in model.parameters():
            p.data += rng.standard_normal(p.shape).astype(p.dtype)


def test_ewc_penalty_and_gradient_equal_the_closed_form():
    nl.manual_seed(0)
    model = nl.nn.Linear(3, 2).double()
    ewc = continual.EWC(model, ewc_lambda=7.0)
    ewc.consolidate(F.cross_entropy, _fisher_batch())
    fisher = nl.analysis.fisher_diagonal(model, F.cross_entropy, _fisher_batch())
    optimum = {n: p.data.copy() for n, p in model.named_parameters()}
    _moved(model, 1)
    penalty = ewc.penalty()
    expected = 7.0 / 2 * sum(float((fisher[n].data * (p.data - optimum[n]) ** 2).sum())
                             for n, p in model.named_parameters())
    assert expected > 0.01
    np.testing.assert_allclose(penalty.item(), expected, rtol=1e-12)
    penalty.backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, 7.0 * fisher[n].data * (p.data - optimum[n]), rtol=1e-12)


def test_ewc_separate_mode_sums_one_penalty_per_task_and_online_mode_decays_one():
    nl.manual_seed(0)
    model = nl.nn.Linear(3, 2).double()
    separate = continual.EWC(model, ewc_lambda=2.0)
    online = continual.EWC(model, ewc_lambda=2.0, mode="online", decay_factor=0.5)
    separate.consolidate(F.cross_entropy, _fisher_batch(0))
    online.consolidate(F.cross_entropy, _fisher_batch(0))
    first = {n: p.data.copy() for n, p in model.named_parameters()}
    f1 = nl.analysis.fisher_diagonal(model, F.cross_entropy, _fisher_batch(0))
    _moved(model, 1)
    f2 = nl.analysis.fisher_diagonal(model, F.cross_entropy, _fisher_batch(2))
    second = {n: p.data.copy() for n, p in model.named_parameters()}
    separate.consolidate(F.cross_entropy, _fisher_batch(2))
    online.consolidate(F.cross_entropy, _fisher_batch(2))
    _moved(model, 3)
    theta = dict(model.named_parameters())

    def quad(f, anchor):
        return sum(float((f[n].data * (theta[n].data - anchor[n]) ** 2).sum()) for n in theta)
    assert len(separate.anchors) == 2 and len(online.anchors) == 1
    np.testing.assert_allclose(separate.penalty().item(), quad(f1, first) + quad(f2, second), rtol=1e-12)
    decayed = {n: nl.tensor(0.5 * f1[n].data + f2[n].data) for n in f1}
    np.testing.assert_allclose(online.penalty().item(), quad(decayed, second), rtol=1e-12)


def test_ewc_rejects_bad_options():
    model = nl.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="'separate' or 'online', got 'offline'"):
        continual.EWC(model, 1.0, mode="offline")
    with pytest.raises(ValueError, match=r"decay_factor must be in \[0, 1\], got 1.5"):
        continual.EWC(model, 1.0, mode="online", decay_factor=1.5)
    with pytest.raises(ValueError, match="ewc_lambda must be a finite number >= 0, got -1"):
        continual.EWC(model, -1)


def test_reservoir_keeps_every_example_with_the_same_probability():
    # 3000 streams of 100 examples through a buffer of 10: each example should be kept in ~10% of them.
    n, capacity, trials = 100, 10, 3000
    counts = np.zeros(n)
    generator = nl.Generator(0)
    for _ in range(trials):
        buffer = continual.ReservoirBuffer(capacity, generator)
        for start in range(0, n, 25):   # offered in batches, as a training loop does
            buffer.add(np.arange(start, start + 25))
        assert len(buffer) == capacity and buffer.seen == n
        counts[buffer.arrays[0]] += 1
    expected = trials * capacity / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # chi-square with 99 degrees of freedom: mean 99, sd 14; a biased reservoir (e.g. keeping the
    # first or the last examples) gives thousands. Early and late halves must also be equally kept.
    assert chi2 < 99 + 6 * 14, chi2
    assert abs(counts[:50].sum() / counts.sum() - 0.5) < 0.03


def test_reservoir_fills_first_then_samples_what_it_holds():
    buffer = continual.ReservoirBuffer(4, nl.Generator(1))
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2)
    buffer.add(np.arange(3.0)[:, None], np.arange(3))
    assert len(buffer) == 3 and buffer.arrays[1][:3].tolist() == [0, 1, 2]
    x, y = buffer.sample(8)
    assert sorted(y.tolist()) == [0, 1, 2] and np.array_equal(x.data[:, 0], y.data.astype(float))
    with pytest.raises(ValueError, match="expected 2 fields, got 1"):
        buffer.add(np.arange(2))
    with pytest.raises(ValueError, match="positive int, got 0"):
        continual.ReservoirBuffer(0)


def test_progressive_columns_stay_frozen_bit_for_bit_and_old_outputs_do_not_change():
    nl.manual_seed(0)
    net = continual.ProgressiveNetwork(6, hidden_sizes=(8, 8), num_outputs=3)
    net.add_column()
    x = nl.randn(16, 6)
    before_params = [p.data.copy() for p in net.columns[0].parameters()]
    before_out = net(x, 0).data.copy()
    net.add_column()
    assert not any(p.requires_grad for p in net.columns[0].parameters())
    opt = nl.optim.Adam(net.parameters(trainable_only=True), lr=1e-1)
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(net(x, 1), nl.tensor(np.arange(16) % 3)).backward()
        opt.step()
    assert all(p.grad is None for p in net.columns[0].parameters())
    assert all(np.array_equal(a, p.data) for a, p in zip(before_params, net.columns[0].parameters()))
    assert np.array_equal(net(x, 0).data, before_out)
    # the new column is wired to the old one: its adapters moved and its output depends on column 0
    assert [c.num_parameters() for c in net.columns] == net.column_parameters() == [6*8+8 + 8*8+8 + 8*3+3,
                                                                                    6*8+8 + 8*8+8 + 8*3+3 + 8*8 + 8*3]
    with pytest.raises(IndexError, match=r"task must be an integer in \[0, 2\), got 2"):
        net(x, 2)


def test_metrics_on_a_hand_made_matrix():
    R = [[0.9, 0.2, 0.1], [0.6, 0.8, 0.3], [0.5, 0.7, 0.95]]
    assert continual.average_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert continual.backward_transfer(R) == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert continual.forward_transfer(R, [0.1, 0.1, 0.2]) == pytest.approx(((0.2 - 0.1) + (0.3 - 0.2)) / 2)
    with pytest.raises(ValueError, match=r"square accuracy matrix .* got shape \(2, 3\)"):
        continual.average_accuracy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one accuracy per task \\(3\\)"):
        continual.forward_transfer(R, [0.1])


def test_plot_accuracy_matrix_draws_the_values():
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    image = continual.plot_accuracy_matrix([[0.9, 0.1], [0.4, 0.8]], ax=ax, title="naive")
    assert np.array_equal(image.get_array(), [[0.9, 0.1], [0.4, 0.8]])
    assert [t.get_text() for t in ax.texts] == ["0.90", "0.10", "0.40", "0.80"]
    plt.close(fig)


def test_split_and_permuted_benchmarks():
    mnist1d_or_skip()
    tasks = continual.split_mnist1d()
    assert [t.classes for t in tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    for i, t in enumerate(tasks):
        x, y, ids = t.test.arrays
        assert set(y.tolist()) == set(t.classes) and set(ids.tolist()) == {i}
    permuted = continual.permuted_mnist1d(num_tasks=3, seed=0)
    x0, y0, _ = permuted[0].train.arrays
    x2, y2, _ = permuted[2].train.arrays
    assert np.array_equal(x2, x0[:, permuted[2].permutation]) and np.array_equal(y0, y2)
    assert not np.array_equal(permuted[2].permutation, np.arange(40))
    with pytest.raises(ValueError, match="dividing the 10 classes, got 3"):
        continual.split_mnist1d(3)


def test_benchmark_train_size_must_be_positive():
    with pytest.raises(ValueError, match="split_mnist1d: train_size must be a positive integer or None, got 0"):
        continual.split_mnist1d(train_size=0)
    with pytest.raises(ValueError, match="permuted_mnist1d: train_size must be a positive integer or None, got -5"):
        continual.permuted_mnist1d(train_size=-5)
    # 2.0 passed int(2.0) == 2.0 and failed later as a slice index or a range bound
    with pytest.raises(ValueError, match="split_mnist1d: train_size must be a positive integer or None, got 10.0"):
        continual.split_mnist1d(train_size=10.0)
    with pytest.raises(ValueError, match="split_mnist1d: num_tasks must be an integer dividing the 10 "
                                         "classes, got 5.0"):
        continual.split_mnist1d(num_tasks=5.0)
    with pytest.raises(ValueError, match="permuted_mnist1d: num_tasks must be an integer >= 1, got 2.0"):
        continual.permuted_mnist1d(num_tasks=2.0)


def test_train_sequence_needs_a_task():
    with pytest.raises(ValueError, match="train_sequence: expected at least one Task"):
        continual.train_sequence("naive", [])


def test_reservoir_sample_size_is_a_positive_integer():
    buffer = continual.ReservoirBuffer(5)
    buffer.add(nl.randn(3, 4), nl.tensor(np.array([0, 1, 2])))
    assert buffer.sample(10)[0].shape == (3, 4)       # all three stored examples
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got -1"):
        buffer.sample(-1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 2.0"):
        buffer.sample(2.0)                            # was NumPy's TypeError from inside choice()
    with pytest.raises(ValueError, match=r"expected one or more fields of rows .*, got shapes \[\(\)\]"):
        buffer.add(np.float64(3.0))                   # was len() of unsized object
    with pytest.raises(ValueError, match=r"fields of rows .*, got shapes \[\]"):
        buffer.add()


def test_progressive_network_task_is_an_integer():
    net = continual.ProgressiveNetwork(4, hidden_sizes=(5,), num_outputs=3)
    net.add_column()
    with pytest.raises(IndexError, match=r"task must be an integer in \[0, 1\), got 0.0"):
        net(nl.randn(2, 4), 0.0)                      # was a slice TypeError


def test_ewc_and_reservoir_check_their_arguments():
    with pytest.raises(ValueError, match="ewc_lambda must be a finite number >= 0, got nan"):
        continual.EWC(nl.nn.Linear(3, 2), float("nan"))
    with pytest.raises(TypeError, match="EWC: expected an nn.Module, got ndarray"):
        continual.EWC(np.zeros(3), 1.0)
    with pytest.raises(TypeError, match="generator must be an nl.Generator or None, got int"):
        continual.ReservoirBuffer(4, generator=5)
    # Before any consolidation the penalty is a zero in the model's dtype.
    assert continual.EWC(nl.nn.Linear(3, 2).double(), 1.0).penalty().dtype == np.float64


def test_reservoir_refuses_rows_it_cannot_hold():
    buffer = continual.ReservoirBuffer(5)
    buffer.add(np.zeros((3, 2), np.float32), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"field 1 holds rows of shape \(\) and dtype int64, got shape \(\) and "
                                         r"dtype float64"):
        buffer.add(np.zeros((3, 2), np.float32), np.full(3, 0.5))   # 0.5 was stored as label 0


def test_ewc_consolidate_puts_back_every_layers_own_mode():
    # model.train(was_training) would switch a BatchNorm kept in eval mode inside a training model
    # back to training mode, where its running statistics move with every batch.
    model = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.BatchNorm1d(4), nl.nn.Linear(4, 2)).double()
    model[1].eval()
    continual.EWC(model, ewc_lambda=1.0).consolidate(F.cross_entropy, _fisher_batch())
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_online_ewc_keeps_the_anchor_of_a_parameter_frozen_or_unfrozen_between_tasks():
    # Task 1 with the bias frozen, task 2 with it trainable and the weight frozen: the bias starts
    # from its new Fisher alone (it was a KeyError), the weight keeps its decayed one.
    nl.manual_seed(0)
    model = nl.nn.Linear(3, 2).double()
    online = continual.EWC(model, ewc_lambda=2.0, mode="online", decay_factor=0.5)
    model.bias.requires_grad = False
    online.consolidate(F.cross_entropy, _fisher_batch(0))
    f1 = nl.analysis.fisher_diagonal(model, F.cross_entropy, _fisher_batch(0))
    model.bias.requires_grad, model.weight.requires_grad = True, False
    _moved(model, 1)
    online.consolidate(F.cross_entropy, _fisher_batch(2))
    f2 = nl.analysis.fisher_diagonal(model, F.cross_entropy, _fisher_batch(2))
    fisher, optimum = online.anchors[0]
    np.testing.assert_allclose(fisher["weight"], 0.5 * f1["weight"].data, rtol=1e-12)
    np.testing.assert_allclose(fisher["bias"], f2["bias"].data, rtol=1e-12)
    np.testing.assert_array_equal(optimum["weight"], model.weight.data)
