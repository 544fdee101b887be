"""Transfer strategies: which parameters train, the param groups they get, and a real task shift."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import transfer
from nnlite.nn import functional as F
from nnlite.recipes import MNIST1DCNN
from nnlite.train import Callback, fit

from helpers import mnist1d_or_skip


def _loader(n=40, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    data = nl.data.TensorDataset(rng.standard_normal((n, 40)).astype(np.float32), rng.integers(0, classes, n))
    return nl.data.DataLoader(data, batch_size=10, shuffle=True, generator=nl.Generator(seed))


def _snapshot(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def test_blocks_are_the_top_level_layers_input_side_first():
    assert [name for name, _ in transfer.blocks(MNIST1DCNN())] == ["conv1", "conv2", "conv3", "linear"]


def test_reinitialize_head_replaces_the_classifier_and_records_a_fresh_init():
    nl.manual_seed(0)
    model = MNIST1DCNN(output_size=5)
    model.load_state_dict(MNIST1DCNN(output_size=5).state_dict())
    old = model.linear
    head = transfer.reinitialize_head(model, 3)
    assert model.linear is head and head is not old
    assert head.weight.shape == (3, 125) and head.weight.init["scheme"] == "kaiming_uniform_"
    assert model.conv1.weight.init["scheme"] == "loaded"
    with pytest.raises(TypeError, match="nn.Linear"):
        transfer.reinitialize_head(model, 3, head="conv1")


def test_feature_extraction_keeps_the_body_bit_for_bit_and_trains_the_head():
    nl.manual_seed(0)
    model = MNIST1DCNN(output_size=5)
    params = transfer.feature_extraction(model, 5)
    assert params == list(model.linear.parameters())
    body = {k: v for k, v in _snapshot(model).items() if not k.startswith("linear")}
    head = model.linear.weight.data.copy()
    fit(model, F.cross_entropy, nl.optim.Adam(params, lr=1e-2), _loader(), epochs=2, progress=False)
    after = _snapshot(model)
    assert all(np.array_equal(after[k], v) for k, v in body.items())
    assert not np.array_equal(model.linear.weight.data, head)


def test_fine_tuning_makes_every_parameter_trainable():
    model = MNIST1DCNN(output_size=5)
    model.freeze()
    params = transfer.fine_tuning(model, 4)
    assert len(params) == 8 and all(p.requires_grad for p in params)
    assert model.linear.out_features == 4


def test_discriminative_param_groups_decay_the_rate_layer_by_layer():
    model = MNIST1DCNN()
    groups = transfer.discriminative_param_groups(model, lr=1e-2)
    assert [g["name"] for g in groups] == ["conv1", "conv2", "conv3", "linear"]
    np.testing.assert_allclose([g["lr"] for g in groups], [1e-2 / 2.6 ** 3, 1e-2 / 2.6 ** 2, 1e-2 / 2.6, 1e-2])
    opt = nl.optim.Adam(groups, lr=1.0)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in groups]
    assert [id(p) for g in opt.param_groups for p in g["params"]] == [id(p) for p in model.parameters()]
    with pytest.raises(ValueError, match="decay must be a finite number >= 1, got 0.5"):
        transfer.discriminative_param_groups(model, lr=1e-2, decay=0.5)


class _Recorder(Callback):
    """After each epoch: the names and parameters of the optimizer's groups, and the model's values."""

    def __init__(self):
        self.groups, self.values = [], []

    def on_epoch_end(self, state, logs):
        self.groups.append([(g["name"], [id(p) for p in g["params"]], g["lr"]) for g in state.optimizer.param_groups])
        self.values.append(_snapshot(state.model))


def test_gradual_unfreezing_adds_one_block_per_epoch_top_down():
    nl.manual_seed(0)
    model = MNIST1DCNN(output_size=5)
    start = _snapshot(model)
    unfreezing = transfer.GradualUnfreezing(model, lr=1e-2, decay=2.0)
    opt = nl.optim.Adam(unfreezing.initial_param_groups(), lr=1e-2)
    assert [p.requires_grad for p in model.parameters()] == [False] * 6 + [True] * 2
    recorder = _Recorder()
    fit(model, F.cross_entropy, opt, _loader(), epochs=5, callbacks=[unfreezing, recorder], progress=False)
    ids = {name: [id(p) for p in m.parameters()] for name, m in transfer.blocks(model)}
    expected = [("linear", 1e-2)], [("conv3", 5e-3)], [("conv2", 2.5e-3)], [("conv1", 1.25e-3)], []
    seen = []
    for epoch, groups in enumerate(recorder.groups):
        seen += expected[epoch]
        assert [(name, lr) for name, _, lr in groups] == seen
        assert all(params == ids[name] for name, params, _ in groups)
    # A block is bit-identical to its start until the epoch it is unfrozen in.
    for epoch, values in enumerate(recorder.values):
        for name in ("conv3", "conv2", "conv1")[epoch:]:
            assert all(np.array_equal(values[k], start[k]) for k in start if k.startswith(name + "."))
    assert unfreezing.state_dict() == {"unfrozen": ["conv3", "conv2", "conv1"]}
    assert all(p.requires_grad for p in model.parameters())


def test_mnist1d_shift_separates_the_classes_and_draws_the_labels_asked_for():
    mnist1d_or_skip()
    source, target_train, target_test = transfer.mnist1d_shift(labels_per_class=7, seed=3)
    assert len(target_train) == 35 and np.bincount(target_train.arrays[1]).tolist() == [7] * 5
    assert set(source.arrays[1].tolist()) == set(range(5)) and set(target_test.arrays[1].tolist()) == set(range(5))
    raw_x, raw_y = nl.data.MNIST1D().arrays
    first = target_train.arrays[0][0]
    assert raw_y[np.flatnonzero((raw_x == first).all(axis=1))[0]] >= 5
    with pytest.raises(ValueError, match="labels_per_class=100000"):
        transfer.mnist1d_shift(labels_per_class=100000)


def test_transfer_beats_training_from_scratch_on_the_small_target_set(tmp_path):
    mnist1d_or_skip()
    path = tmp_path / "source.safetensors"
    results = transfer.compare_strategies(labels_per_class=20, seeds=(0,), epochs=25,
                                          strategies=("from_scratch", "fine_tuning"), pretrained_path=path)
    assert path.exists()
    # measured with these settings: from scratch ~0.45, fine-tuning ~0.63
    assert results["fine_tuning"][0] > results["from_scratch"][0] + 0.08
    model = transfer.pretrained_mnist1d_cnn(path=path)
    assert model.conv1.weight.init["source"] == str(path)


def test_nnlite_train_mnist1d_transfer_writes_the_table(tmp_path):
    mnist1d_or_skip()
    import json

    from nnlite.cli import main
    assert main(["train", "mnist1d-transfer", "--epochs", "2", "--out", str(tmp_path), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    table = metrics["test_accuracy"]
    assert list(table) == list(transfer.STRATEGIES) and metrics["seeds"] == [0, 1, 2]
    for row in table.values():
        assert len(row["per_seed"]) == 3 and 0.0 < row["mean"] < 1.0
        assert row["std"] == pytest.approx(float(np.std(row["per_seed"])))


class _TiedModel(nl.nn.Module):
    """An embedding whose table is also the output layer's weight: one Parameter in two blocks."""

    def __init__(self):
        super().__init__()
        self.embedding = nl.nn.Embedding(6, 4)
        self.body = nl.nn.Linear(4, 4)
        self.linear = nl.nn.Linear(4, 6)
        self.linear.weight = self.embedding.weight

    def forward(self, x):
        return self.linear(F.relu(self.body(self.embedding(x).mean(dim=1))))


def test_a_parameter_shared_by_two_blocks_is_in_one_group_the_heads():
    # The optimizer refused the groups ("some parameters appear in more than one parameter group").
    model = _TiedModel()
    groups = transfer.discriminative_param_groups(model, lr=1e-2)
    assert [(g["name"], [id(p) for p in g["params"]]) for g in groups] == [
        ("embedding", []), ("body", [id(model.body.weight), id(model.body.bias)]),
        ("linear", [id(model.embedding.weight), id(model.linear.bias)])]
    nl.optim.Adam(groups, lr=1.0)
    unfreezing = transfer.GradualUnfreezing(model, lr=1e-2)
    opt = nl.optim.Adam(unfreezing.initial_param_groups(), lr=1e-2)
    x, y = nl.tensor(np.arange(12).reshape(4, 3) % 6), nl.tensor([0, 1, 2, 3])
    fit(model, F.cross_entropy, opt, [(x, y)], epochs=3, callbacks=[unfreezing], progress=False)
    assert [g["name"] for g in opt.param_groups] == ["linear", "body", "embedding"]


def test_a_parameter_outside_every_block_is_named_not_left_untrained():
    # A positional table on the model itself is in no block: it was left out of every group, so
    # the optimizer never changed it (and gradual unfreezing kept it frozen for good).
    model = _TiedModel()
    model.position = nl.nn.Parameter(nl.zeros(3, 4))
    for make in (lambda: transfer.discriminative_param_groups(model, lr=1e-2),
                 lambda: transfer.GradualUnfreezing(model, lr=1e-2)):
        with pytest.raises(ValueError, match=r"holds parameters outside its blocks .*\['position'\], which no "
                                             r"group would train"):
            make()
