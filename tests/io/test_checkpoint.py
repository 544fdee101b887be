"""Round trips through checkpoints and state-dict files: modules, optimizers, schedulers, loaders, extra."""
import json
import os

import numpy as np
import pytest
import safetensors.numpy

import nnlite as nl
from nnlite import io as nio

# Every layer the library may offer, built small; the round trip runs for those that exist.
MODULE_CONSTRUCTORS = {
    "Linear": lambda nn: nn.Linear(4, 3),
    "Linear_no_bias": lambda nn: nn.Linear(4, 3, bias=False),
    "Conv1d": lambda nn: nn.Conv1d(2, 3, 3),
    "Conv2d": lambda nn: nn.Conv2d(2, 3, 3),
    "ConvTranspose2d": lambda nn: nn.ConvTranspose2d(2, 3, 3),
    "BatchNorm1d": lambda nn: nn.BatchNorm1d(4),
    "BatchNorm2d": lambda nn: nn.BatchNorm2d(3),
    "LayerNorm": lambda nn: nn.LayerNorm(4),
    "GroupNorm": lambda nn: nn.GroupNorm(2, 4),
    "RMSNorm": lambda nn: nn.RMSNorm(4),
    "Embedding": lambda nn: nn.Embedding(10, 4),
    "MultiheadAttention": lambda nn: nn.MultiheadAttention(8, 2),
    "RNN": lambda nn: nn.RNN(3, 4, num_layers=2),
    "LSTM": lambda nn: nn.LSTM(3, 4),
    "GRU": lambda nn: nn.GRU(3, 4),
    "RNNCell": lambda nn: nn.RNNCell(3, 4),
    "LSTMCell": lambda nn: nn.LSTMCell(3, 4),
    "GRUCell": lambda nn: nn.GRUCell(3, 4),
    "Temperature": lambda nn: nn.Temperature(),
    "PReLU": lambda nn: nn.PReLU(),
    "TransformerEncoderLayer": lambda nn: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16),
    "Sequential": lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)),
    "ModuleList": lambda nn: nn.ModuleList([nn.Linear(2, 2), nn.LayerNorm(2)]),
    "ModuleDict": lambda nn: nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.BatchNorm1d(3)}),
    "Residual": lambda nn: nn.Residual(nn.Linear(3, 3)),
    "Dropout": lambda nn: nn.Dropout(0.5),
    "Identity": lambda nn: nn.Identity(),
    "BatchNorm1d_no_affine": lambda nn: nn.BatchNorm1d(4, affine=False),
    "LayerNorm_no_bias": lambda nn: nn.LayerNorm((2, 3), bias=False),
    "LearnedPositionalEmbedding": lambda nn: nn.LearnedPositionalEmbedding(6, 4),
    "SinusoidalPositionalEncoding": lambda nn: nn.SinusoidalPositionalEncoding(4, max_len=6),
    "TransformerEncoder": lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2),
    "Bottleneck": lambda nn: nn.Bottleneck(4, 2),
    "DepthwiseSeparableConv2d": lambda nn: nn.DepthwiseSeparableConv2d(2, 4, 3),
    "MaxPool2d": lambda nn: nn.MaxPool2d(2),
    "AdaptiveAvgPool2d": lambda nn: nn.AdaptiveAvgPool2d(1),
    "Unflatten": lambda nn: nn.Unflatten(1, (2, 2)),
}


def _zero_argument_modules():
    """Every other Module class nnlite exports that builds without arguments (activations, losses...)."""
    covered = {name.split("_")[0] for name in MODULE_CONSTRUCTORS}
    out = {}
    for name in dir(nl.nn):
        cls = getattr(nl.nn, name)
        if isinstance(cls, type) and issubclass(cls, nl.nn.Module) and name not in covered:
            try:
                cls()
            except TypeError:
                continue
            out[name] = lambda nn, cls=cls: cls()
    return out


MODULE_CONSTRUCTORS.update(_zero_argument_modules())


def _available():
    out = []
    for name, make in MODULE_CONSTRUCTORS.items():
        try:
            make(nl.nn)
        except AttributeError:  # that layer is not part of this nnlite
            continue
        out.append(name)
    return out


def test_the_module_list_covers_the_layers_with_state():
    names = _available()
    assert {"Linear", "Conv2d", "BatchNorm2d", "LayerNorm", "Embedding", "LSTM", "MultiheadAttention"} <= set(names)
    assert len(names) >= 40


def _scramble(model, seed):
    """Give every float tensor random values and every integer one a count, so nothing matches by chance."""
    g = np.random.default_rng(seed)
    for value in model.state_dict(keep_vars=True).values():
        if value.data.dtype.kind == "f":
            value.data[...] = g.standard_normal(value.shape)
        else:
            value.data[...] = g.integers(1, 100, value.shape)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert sa[k].shape == sb[k].shape, k
        assert sa[k].data.tobytes() == sb[k].data.tobytes(), k


class Tied(nl.nn.Module):
    """A custom module: tied input/output embedding, a persistent and a non-persistent buffer, float64."""

    def __init__(self):
        super().__init__()
        self.embed = nl.nn.Parameter(nl.randn(6, 3), kind="embedding")
        self.head = nl.nn.Module()
        self.head.weight = self.embed
        self.head.bias = nl.nn.Parameter(nl.zeros(6, dtype=nl.float64), kind="bias")
        self.register_buffer("steps", nl.tensor(np.array(0, np.int64)))
        self.register_buffer("mask", nl.tensor(np.array([True, False, True])))
        self.register_buffer("scratch", nl.zeros(2), persistent=False)
        self.config = {"vocab": 6, "dim": 3}

    def forward(self, idx):
        return nl.matmul(self.embed[idx], self.head.weight.T)


@pytest.mark.parametrize("name", _available())
def test_every_module_round_trips_through_a_checkpoint(tmp_path, name):
    nl.manual_seed(0)
    model = MODULE_CONSTRUCTORS[name](nl.nn)
    _scramble(model, 1)
    path = nl.save_checkpoint(tmp_path / "m.safetensors", model=model)
    nl.manual_seed(5)
    fresh = MODULE_CONSTRUCTORS[name](nl.nn)
    _scramble(fresh, 2)
    info = nl.load_checkpoint(path, model=fresh)
    _same_state(model, fresh)
    assert info.model["class"].endswith(type(model).__name__)
    assert info.missing_keys == [] and info.unexpected_keys == []


@pytest.mark.parametrize("name", _available())
def test_every_module_round_trips_through_a_state_dict_file(tmp_path, name):
    model = MODULE_CONSTRUCTORS[name](nl.nn)
    _scramble(model, 3)
    nl.save_state_dict(model.state_dict(), tmp_path / "w.safetensors")
    loaded = nl.load_state_dict(tmp_path / "w.safetensors")
    assert list(loaded) == list(model.state_dict())
    fresh = MODULE_CONSTRUCTORS[name](nl.nn)
    fresh.load_state_dict(loaded)
    _same_state(model, fresh)


def test_custom_module_with_buffers_and_tied_weights(tmp_path):
    model = Tied()
    _scramble(model, 4)
    assert model.tied_parameters() == [["embed", "head.weight"]]
    path = nl.save_checkpoint(tmp_path / "tied.safetensors", model=model, step=7, epoch=1)
    info = nio.read_checkpoint(path)
    # Stored once (safetensors refuses shared tensors), the alias recorded.
    assert "model.head.weight" not in info.tensors and "model.embed" in info.tensors
    assert info.aliases == {"model.head.weight": "model.embed"}
    assert "scratch" not in " ".join(info.tensors)
    assert info.model["config"] == {"vocab": 6, "dim": 3}
    assert info.model["parameters"]["embed"]["kind"] == "embedding"
    assert (info.step, info.epoch) == (7, 1)
    fresh = Tied()
    nl.load_checkpoint(path, model=fresh)
    _same_state(model, fresh)
    assert fresh.head.weight is fresh.embed  # loading writes into the model's own (still tied) tensors
    assert fresh.head.bias.dtype == nl.float64 and fresh.mask.dtype == nl.bool_

    nl.save_state_dict(model.state_dict(), tmp_path / "tied_w.safetensors")
    raw = safetensors.numpy.load_file(str(tmp_path / "tied_w.safetensors"))
    assert sorted(raw) == ["embed", "head.bias", "mask", "steps"]
    loaded = nl.load_state_dict(tmp_path / "tied_w.safetensors")
    assert list(loaded) == list(model.state_dict())  # every key restored, in order
    assert loaded["embed"] is loaded["head.weight"]


def test_state_dict_file_user_metadata_and_reserved_keys(tmp_path):
    w = {"a": nl.randn(2, 2), "b": np.arange(3, dtype=np.int32)}
    nl.save_state_dict(w, tmp_path / "w.safetensors", metadata={"source": "unit test"})
    info = nio.read_checkpoint(tmp_path / "w.safetensors")
    assert info.metadata == {"source": "unit test", "format": "pt"} and info.format == "state_dict"
    loaded = nl.load_state_dict(tmp_path / "w.safetensors")
    assert np.array_equal(loaded["b"].data, w["b"]) and loaded["b"].dtype == np.int32
    with pytest.raises(ValueError, match="reserved"):
        nl.save_state_dict(w, tmp_path / "x.safetensors", metadata={"nnlite.version": "9"})
    with pytest.raises(TypeError, match="str to str"):
        nl.save_state_dict(w, tmp_path / "x.safetensors", metadata={"n": 3})
    with pytest.raises(TypeError, match="'c'.*list"):
        nl.save_state_dict({"c": [1, 2]}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_non_contiguous_big_endian_and_0d_tensors_round_trip(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    w = {"t": base.T, "be": np.arange(5, dtype=">i4"), "s": np.array(3.5, np.float32), "e": np.zeros((0, 3))}
    nl.save_state_dict(w, tmp_path / "w.safetensors")
    loaded = nl.load_state_dict(tmp_path / "w.safetensors")
    assert np.array_equal(loaded["t"].data, base.T) and loaded["t"].shape == (6, 4)
    assert loaded["be"].data.tolist() == [0, 1, 2, 3, 4] and loaded["be"].dtype == np.int32
    assert loaded["s"].shape == () and loaded["s"].item() == 3.5
    assert loaded["e"].shape == (0, 3)
    loaded["t"].data[0, 0] = 99.0  # the arrays are the caller's to modify


# ---------------------------------------------------------------- optimizers --
OPTIMIZERS = {
    "SGD": lambda p: nl.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adagrad": lambda p: nl.optim.Adagrad(p, lr=0.1),
    "RMSprop": lambda p: nl.optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "Adam": lambda p: nl.optim.Adam(p, lr=0.01, amsgrad=True),
    "AdamW": lambda p: nl.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
}


def _mlp():
    nl.manual_seed(0)
    return nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Tanh(), nl.nn.Linear(4, 2))


def _train(model, opt, steps, seed):
    g = np.random.default_rng(seed)
    for _ in range(steps):
        x = nl.tensor(g.standard_normal((5, 3)).astype(np.float32))
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()


def _same_optimizer_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        assert sa["state"][i].keys() == sb["state"][i].keys()
        for name, value in sa["state"][i].items():
            assert np.asarray(value).tobytes() == np.asarray(sb["state"][i][name]).tobytes(), (i, name)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_round_trips_and_continues_identically(tmp_path, name):
    model = _mlp()
    opt = OPTIMIZERS[name](model.parameters())
    _train(model, opt, 3, seed=1)
    path = nl.save_checkpoint(tmp_path / "o.safetensors", model=model, optimizer=opt)
    info = nio.read_checkpoint(path)
    assert any(k.startswith("optimizer.state.0.") for k in info.tensors), info.tensors

    fresh = _mlp()
    fresh_opt = OPTIMIZERS[name](fresh.parameters())
    _train(fresh, fresh_opt, 1, seed=9)  # different history, to be overwritten
    nl.load_checkpoint(path, model=fresh, optimizer=fresh_opt)
    _same_optimizer_state(opt, fresh_opt)
    _train(model, opt, 2, seed=2)
    _train(fresh, fresh_opt, 2, seed=2)
    _same_state(model, fresh)


def test_optimizer_state_keeps_tuples_integer_keys_and_step_types(tmp_path):
    model = _mlp()
    opt = nl.optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, 2, seed=1)
    path = nl.save_checkpoint(tmp_path / "o.safetensors", optimizer=opt)
    info = nl.load_checkpoint(path)
    saved = opt.state_dict()
    loaded = info.optimizer["state"]
    assert loaded["param_groups"] == saved["param_groups"]
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)
    assert list(loaded["state"]) == list(saved["state"]) and all(isinstance(k, int) for k in loaded["state"])
    step = saved["state"][0]["step"]
    assert type(loaded["state"][0]["step"]) is type(step)
    assert np.asarray(loaded["state"][0]["step"]).tobytes() == np.asarray(step).tobytes()


def test_a_tensor_learning_rate_loads_into_an_optimizer_built_with_a_float_one_and_back(tmp_path):
    # PyTorch's optimizers take lr as a one-element Tensor; loading such a checkpoint into an
    # optimizer made with a float lr was refused: "lr must be like 0.001 (float), got 'tensor(0.01)'"
    model = _mlp()
    opt = nl.optim.Adam(model.parameters(), lr=nl.tensor(0.01))
    _train(model, opt, 2, seed=1)
    path = nl.save_checkpoint(tmp_path / "o.safetensors", model=model, optimizer=opt)
    fresh = _mlp()
    other = nl.optim.Adam(fresh.parameters())
    nl.load_checkpoint(path, model=fresh, optimizer=other)
    lr = other.param_groups[0]["lr"]
    assert isinstance(lr, nl.Tensor) and lr.item() == opt.param_groups[0]["lr"].item()
    _train(model, opt, 2, seed=2)
    _train(fresh, other, 2, seed=2)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(model.parameters(), fresh.parameters()))
    plain = nl.save_checkpoint(tmp_path / "plain.safetensors", optimizer=nl.optim.Adam(_mlp().parameters(), lr=0.5))
    nl.load_checkpoint(plain, optimizer=other)   # and a float one into the optimizer now holding a Tensor
    assert other.param_groups[0]["lr"] == 0.5


def test_optimizer_class_mismatch_and_missing_section(tmp_path):
    model = _mlp()
    opt = nl.optim.Adam(model.parameters())
    _train(model, opt, 1, seed=1)
    path = nl.save_checkpoint(tmp_path / "o.safetensors", model=model, optimizer=opt)
    sgd = nl.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(nio.CheckpointError, match="Adam.*not.*SGD"):
        nl.load_checkpoint(path, optimizer=sgd)
    bare = nl.save_checkpoint(tmp_path / "bare.safetensors", model=model)
    with pytest.raises(nio.MissingKeysError, match="no optimizer state"):
        nl.load_checkpoint(bare, model=model, optimizer=opt)


# ---------------------------------------------------------------- schedulers --
def _schedulers():
    lr_scheduler = nl.optim.lr_scheduler
    # every scheduler in lr_scheduler.__all__ (checked below), some in two configurations
    return {
        "StepLR": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        "MultiStepLR": lambda o: lr_scheduler.MultiStepLR(o, milestones=[1, 3], gamma=0.3),
        "ExponentialLR": lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9),
        "CosineAnnealingLR": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=5),
        "CosineAnnealingWarmRestarts": lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2),
        "LinearLR": lambda o: lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=4),
        "ConstantLR": lambda o: lr_scheduler.ConstantLR(o, factor=0.5, total_iters=2),
        "PolynomialLR": lambda o: lr_scheduler.PolynomialLR(o, total_iters=6, power=2.0),
        "OneCycleLR": lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10),
        "CyclicLR": lambda o: lr_scheduler.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2),
        "CyclicLR_exp_range": lambda o: lr_scheduler.CyclicLR(o, base_lr=[0.01], max_lr=0.1, step_size_up=2,
                                                              step_size_down=1, mode="exp_range", gamma=0.9),
        "LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lambda epoch: 0.9 ** epoch),
        "MultiplicativeLR": lambda o: lr_scheduler.MultiplicativeLR(o, lambda epoch: 0.9),
        "ReduceLROnPlateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=0, factor=0.5),
        "SequentialLR": lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=2), lr_scheduler.ExponentialLR(o, 0.8)], [2]),
        "ChainedScheduler": lambda o: lr_scheduler.ChainedScheduler(
            [lr_scheduler.StepLR(o, step_size=2, gamma=0.5), lr_scheduler.ExponentialLR(o, 0.9)]),
    }


def test_the_round_trip_covers_every_scheduler():
    covered = {name.split("_")[0] for name in _schedulers()}
    assert covered == set(nl.optim.lr_scheduler.__all__) - {"LRScheduler"}


def _scheduler_step(sched, i):
    if type(sched).__name__ == "ReduceLROnPlateau":
        sched.step(1.0 + (i % 2))  # a loss that stops improving
    else:
        sched.step()


@pytest.mark.parametrize("name", list(_schedulers()))
def test_every_scheduler_round_trips_and_continues_identically(tmp_path, name):
    make = _schedulers()[name]
    model = _mlp()
    opt = nl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = make(opt)
    for i in range(3):
        _train(model, opt, 1, seed=i)
        _scheduler_step(sched, i)
    path = nl.save_checkpoint(tmp_path / "s.safetensors", model=model, optimizer=opt, scheduler=sched)
    fresh = _mlp()
    fresh_opt = nl.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_sched = make(fresh_opt)
    nl.load_checkpoint(path, model=fresh, optimizer=fresh_opt, scheduler=fresh_sched)
    assert json.dumps(_plain(fresh_sched.state_dict())) == json.dumps(_plain(sched.state_dict()))
    for key, value in sched.state_dict().items():
        assert type(fresh_sched.state_dict()[key]) is type(value), key  # Counter stays Counter, tuple tuple
    for i in range(3, 6):
        for m, o, s in ((model, opt, sched), (fresh, fresh_opt, fresh_sched)):
            _train(m, o, 1, seed=i)
            _scheduler_step(s, i)
        assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in opt.param_groups]
    _same_state(model, fresh)


def _plain(obj):
    """JSON-comparable form of a scheduler state (functions are not state)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if callable(obj):
        return "<callable>"
    return obj.item() if isinstance(obj, np.generic) else obj


# ------------------------------------------------------- loader, rng, extra --
def test_dataloader_position_rng_and_extra_round_trip(tmp_path):
    ds = nl.data.TensorDataset(np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20))
    nl.manual_seed(3)
    loader = nl.data.DataLoader(ds, batch_size=3, shuffle=True)
    it = iter(loader)
    for _ in range(2):
        next(it)
    extra = {"best": 0.25, "history": [1.0, float("inf")], "table": np.eye(2), 7: ("tuple", None)}
    path = nl.save_checkpoint(tmp_path / "d.safetensors", dataloader=loader, extra=extra, step=2)
    expected = [y.tolist() for _, y in it]
    after_draw = nl.rand(3).data.copy()

    nl.manual_seed(99)
    other = nl.data.DataLoader(ds, batch_size=3, shuffle=True)
    info = nl.load_checkpoint(path, dataloader=other)
    resumed = [y.tolist() for _, y in other]
    assert resumed == expected and len(resumed) == len(loader) - 2
    assert np.array_equal(nl.rand(3).data, after_draw)  # generator restored to the saved moment
    assert info.extra["best"] == 0.25 and info.extra["history"] == [1.0, float("inf")]
    assert np.array_equal(info.extra["table"], np.eye(2)) and info.extra[7] == ("tuple", None)
    assert info.step == 2 and info.epoch is None


def test_restore_rng_false_leaves_the_generator_alone(tmp_path):
    nl.manual_seed(1)
    path = nl.save_checkpoint(tmp_path / "r.safetensors")
    nl.manual_seed(2)
    expected = nl.rand(2).data.copy()
    nl.manual_seed(2)
    nl.load_checkpoint(path, restore_rng=False)
    assert np.array_equal(nl.rand(2).data, expected)


def test_unsupported_extra_is_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="extra.fn: cannot store a function"):
        nl.save_checkpoint(tmp_path / "e.safetensors", extra={"fn": lambda: 0})
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="step must be an int"):
        nl.save_checkpoint(tmp_path / "e.safetensors", step=1.5)
    with pytest.raises(TypeError, match="'__metadata__'"):
        nl.save_state_dict({"__metadata__": nl.ones(1)}, tmp_path / "e.safetensors")
    assert os.listdir(tmp_path) == []
    assert nio.read_checkpoint(nl.save_checkpoint(tmp_path / "n.safetensors", step=np.int64(3))).step == 3


# ------------------------------------------------------------ strict loading --
def test_missing_unexpected_and_mismatched_keys(tmp_path):
    small = nl.nn.Sequential(nl.nn.Linear(3, 4))
    big = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Linear(4, 2))
    wide = nl.nn.Sequential(nl.nn.Linear(3, 5))
    path = nl.save_checkpoint(tmp_path / "s.safetensors", model=small)
    before = big.state_dict()["1.weight"].data.copy()
    with pytest.raises(nio.MissingKeysError, match=r"1\.weight, 1\.bias"):
        nl.load_checkpoint(path, model=big)
    info = nl.load_checkpoint(path, model=big, strict=False)
    assert info.missing_keys == ["1.weight", "1.bias"]
    assert np.array_equal(big[0].weight.data, small[0].weight.data)
    assert np.array_equal(big.state_dict()["1.weight"].data, before)
    big_path = nl.save_checkpoint(tmp_path / "b.safetensors", model=big)
    with pytest.raises(nio.UnexpectedKeysError, match=r"1\.weight"):
        nl.load_checkpoint(big_path, model=small)
    assert nl.load_checkpoint(big_path, model=small, strict=False).unexpected_keys == ["1.weight", "1.bias"]
    original = wide[0].weight.data.copy()
    for strict in (True, False):
        with pytest.raises(nio.ShapeMismatchError, match=r"0\.weight: checkpoint \(4, 3\), model \(5, 3\)"):
            nl.load_checkpoint(path, model=wide, strict=strict)
    assert np.array_equal(wide[0].weight.data, original)  # nothing half-loaded


def test_load_checkpoint_refuses_a_plain_weights_file(tmp_path):
    nl.save_state_dict({"w": nl.ones(2)}, tmp_path / "w.safetensors")
    with pytest.raises(nio.NotACheckpointError, match="load_state_dict"):
        nl.load_checkpoint(tmp_path / "w.safetensors")


# ---------------------------------------------------------- rotation, manager --
def test_keep_last_rotation_with_a_step_template(tmp_path):
    model = _mlp()
    template = str(tmp_path / "ckpt-{step:05d}.safetensors")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    written = [nl.save_checkpoint(template, model=model, step=s, keep_last=3) for s in (1, 2, 10, 11, 100)]
    assert written[-1].endswith("ckpt-00100.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00010.safetensors", "ckpt-00011.safetensors",
                                            "ckpt-00100.safetensors", "notes.txt"]
    assert [s for s, _ in nio.list_checkpoints(template)] == [10, 11, 100]
    with pytest.raises(ValueError, match=r"\{step\} or \{epoch\}"):
        nl.save_checkpoint(tmp_path / "fixed.safetensors", model=model, keep_last=2)
    with pytest.raises(ValueError, match="positive integer"):
        nio.rotate(template, 0)


@pytest.mark.parametrize("name, keep_last, match", [
    ("fixed.safetensors", 2, r"\{step\} or \{epoch\}"),
    ("ckpt-{step}.safetensors", 0, "keep_last must be a positive integer, got 0"),
    ("ckpt-{step}.safetensors", True, "keep_last must be a positive integer, got True"),
    ("run-{step}/ckpt.safetensors", 2, "fields belong in the file name, not the directory"),
])
def test_a_rotation_that_cannot_run_is_refused_before_the_file_is_written(tmp_path, name, keep_last, match):
    # It was refused after the save, so the error hid a new file that no rotation would ever remove.
    os.makedirs(tmp_path / "run-1", exist_ok=True)
    with pytest.raises(ValueError, match=match):
        nl.save_checkpoint(str(tmp_path / name), model=_mlp(), step=1, keep_last=keep_last)
    assert sorted(os.listdir(tmp_path)) == ["run-1"] and os.listdir(tmp_path / "run-1") == []


def test_checkpoint_manager_saves_rotates_and_resumes(tmp_path):
    manager = nio.CheckpointManager(tmp_path / "run", keep_last=2)
    assert manager.latest() is None and manager.load_latest() is None
    model = _mlp()
    for step in (5, 6, 7):
        model[0].bias.data[...] = step
        manager.save(step, model=model, epoch=step // 3)
    assert [s for s, _ in manager.checkpoints()] == [6, 7]
    fresh = _mlp()
    info = manager.load_latest(model=fresh)
    assert info.step == 7 and info.epoch == 2 and np.all(fresh[0].bias.data == 7)


# ------------------------------------------------------------------ migration --
def test_format_1_file_is_migrated_on_load(tmp_path):
    """A format-1 file (one JSON object under 'nnlite', no checksum) still loads."""
    model = _mlp()
    _scramble(model, 8)
    tensors = {"model." + k: v.data for k, v in model.state_dict().items()}
    blob = {"format_version": 1, "format": "checkpoint", "nnlite_version": "0.0.9", "step": 12, "epoch": 3,
            "model": {"class": "Sequential", "config": None, "keys": list(model.state_dict())},
            "extra": {"note": "old"}}
    safetensors.numpy.save_file(tensors, str(tmp_path / "v1.safetensors"), metadata={"nnlite": json.dumps(blob)})
    fresh = _mlp()
    info = nl.load_checkpoint(tmp_path / "v1.safetensors", model=fresh)
    _same_state(model, fresh)
    assert info.stored_format_version == 1 and info.format_version == nio.FORMAT_VERSION
    assert (info.step, info.epoch, info.extra, info.nnlite_version) == (12, 3, {"note": "old"}, "0.0.9")


def test_summary_lists_tensors_and_sections(tmp_path):
    model = Tied()
    opt = nl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(nl.tensor(np.array([0, 2]))).sum().backward()
    opt.step()
    path = nl.save_checkpoint(tmp_path / "s.safetensors", model=model, optimizer=opt, step=4)
    text = nio.read_checkpoint(path).summary()
    assert "format 2" in text and "step: 4" in text and "optimizer: nnlite.optim.sgd.SGD" in text
    assert "model.embed" in text and "F64" in text and "model.head.weight -> model.embed (tied)" in text
    assert "optimizer.state.0.momentum_buffer" in text


def test_optimizer_that_does_not_fit_is_refused_before_anything_changes(tmp_path):
    model = _mlp()
    opt = nl.optim.Adam(model.parameters())
    _train(model, opt, 1, seed=1)
    path = nl.save_checkpoint(tmp_path / "o.safetensors", model=model, optimizer=opt)

    wider = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Tanh(), nl.nn.Linear(4, 3))
    wider_opt = nl.optim.Adam(wider.parameters())
    with pytest.raises(nio.ShapeMismatchError, match=r"state 2\.exp_avg: checkpoint \(2, 4\), parameter \(3, 4\)"):
        nl.load_checkpoint(path, optimizer=wider_opt)

    first_layer_only = nl.optim.Adam(_mlp()[0].parameters())
    with pytest.raises(nio.ShapeMismatchError, match=r"hold \[4\] parameters, this Adam holds \[2\]"):
        nl.load_checkpoint(path, optimizer=first_layer_only)

    fresh = _mlp()
    fresh[0].weight.data[...] = 5.0
    with pytest.raises(nio.ShapeMismatchError):
        nl.load_checkpoint(path, model=fresh, optimizer=nl.optim.Adam(fresh[0].parameters()))
    assert np.all(fresh[0].weight.data == 5.0)  # the model was not loaded either


def test_loader_with_its_own_generator_resumes_across_epochs(tmp_path):
    ds = nl.data.TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
    loader = nl.data.DataLoader(ds, batch_size=4, shuffle=True, generator=nl.Generator(7))
    it = iter(loader)
    next(it)
    path = nl.save_checkpoint(tmp_path / "g.safetensors", dataloader=loader)
    expected = [y.tolist() for _, y in it] + [y.tolist() for _ in range(2) for _, y in loader]
    other = nl.data.DataLoader(ds, batch_size=4, shuffle=True, generator=nl.Generator(8))
    nl.load_checkpoint(path, dataloader=other)
    got = [y.tolist() for _, y in other] + [y.tolist() for _ in range(2) for _, y in other]
    assert got == expected


def test_path_template_errors(tmp_path):
    with pytest.raises(ValueError, match=r"uses \{step\} but step=None"):
        nl.save_checkpoint(str(tmp_path / "c-{step}.safetensors"))
    with pytest.raises(ValueError, match=r"fields \['name'\]"):
        nl.save_checkpoint(str(tmp_path / "c-{name}.safetensors"), step=1)
    written = nl.save_checkpoint(str(tmp_path / "c-{{x}}-{epoch:03d}.safetensors"), epoch=4)
    assert written.endswith("c-{x}-004.safetensors")


@pytest.mark.parametrize("section, value", [("nnlite.optimizer", '{"state": {}}'), ("nnlite.model", "[1]"),
                                            ("nnlite.extra", '{"__tuple__": 5}'), ("nnlite.aliases", "[\"a\"]")])
def test_malformed_sections_with_a_valid_checksum(tmp_path, section, value):
    from nnlite.io import format as fmt
    meta = {"nnlite.format": "checkpoint", "nnlite.format_version": "2", "nnlite.version": "0.1.0", section: value}
    path = tmp_path / "bad.safetensors"
    path.write_bytes(fmt.serialize({"model.w": np.zeros(2, np.float32)}, meta))
    with pytest.raises(nio.HeaderError):
        nl.load_checkpoint(path)
