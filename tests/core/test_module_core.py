"""Module registration, traversal, state dicts, freezing, hooks and parameter kinds."""
import copy

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.nn import Buffer, Module, Parameter


class Affine(Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = Parameter(nl.randn(n_out, n_in), kind="weight")
        self.bias = Parameter(nl.zeros(n_out), kind="bias")
        self.register_buffer("calls", nl.zeros(1))

    def forward(self, x):
        return x @ self.weight.T + self.bias

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}"


class Net(Module):
    def __init__(self):
        super().__init__()
        self.first = Affine(3, 4)
        self.second = Affine(4, 2)
        self.scale = Parameter(nl.ones(1), kind="scale")

    def forward(self, x):
        return self.second(self.first(x).relu()) * self.scale


def test_registration_order_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "second.weight", "second.bias"]  # torch's order
    assert [n for n, _ in net.named_buffers()] == ["first.calls", "second.calls"]
    assert [n for n, _ in net.named_children()] == ["first", "second"]
    assert [n for n, _ in net.named_modules()] == ["", "first", "second"]
    assert net.num_parameters() == 3 * 4 + 4 + 4 * 2 + 2 + 1
    assert net.get_parameter("first.bias").kind == "bias"
    assert net.first.weight.name == "weight"
    net.name_parameters()
    assert net.first.weight.name == "first.weight"


def test_state_dict_round_trip_and_strict_errors():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert set(sd) == {"first.weight", "first.bias", "first.calls", "second.weight", "second.bias",
                       "second.calls", "scale"}
    b.load_state_dict(sd)
    x = nl.randn(5, 3)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    bad = dict(sd)
    bad.pop("first.bias")
    bad["extra.weight"] = np.zeros(1)
    bad["second.weight"] = np.zeros((3, 3))
    with pytest.raises(RuntimeError) as err:
        b.load_state_dict(bad)
    msg = str(err.value)
    assert "missing keys: first.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "second.weight: checkpoint shape (3, 3), model shape (2, 4)" in msg
    result = b.load_state_dict({k: v for k, v in sd.items() if k != "scale"}, strict=False)
    assert result.missing_keys == ["scale"]


def test_load_state_dict_copies_in_place_and_accepts_arrays():
    net = Net()
    w = net.first.weight
    net.load_state_dict({k: np.asarray(v.data) * 0 for k, v in net.state_dict().items()})
    assert net.first.weight is w and np.all(w.data == 0)


def test_non_persistent_buffers_are_not_saved():
    m = Affine(2, 2)
    m.register_buffer("cache", nl.zeros(3), persistent=False)
    assert "cache" not in m.state_dict() and "calls" in m.state_dict()
    m.stats = Buffer(nl.ones(2))
    assert "stats" in m.state_dict()


@pytest.mark.parametrize("register, taken", [
    (lambda m: m.register_buffer("weight", nl.ones(1)), "a parameter"),
    (lambda m: m.register_parameter("calls", Parameter(nl.ones(1))), "a buffer"),
    (lambda m: m.add_module("bias", nl.nn.ReLU()), "a parameter"),
    (lambda m: m.register_buffer("forward", nl.ones(1)), "an attribute"),
])
def test_registering_a_name_taken_by_another_kind_is_refused_as_in_pytorch(register, taken):
    m = Affine(2, 2)
    with pytest.raises(KeyError, match=f"already exists as {taken} of Affine"):
        register(m)
    assert sorted(m.state_dict()) == ["bias", "calls", "weight"] and len(list(m.parameters())) == 2
    m.register_buffer("calls", nl.ones(1))   # the same kind again replaces, as in PyTorch
    m.register_parameter("weight", Parameter(nl.ones(2, 2)))
    assert m.calls.data.tolist() == [1.0] and m.weight.data.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_registering_a_taken_name_is_refused_like_torch():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    for lib in (torch, nl):
        with pytest.raises(KeyError, match="already exists"):
            lib.nn.Linear(1, 1).register_buffer("weight", lib.ones(1))


def test_weight_tying_makes_one_parameter():
    a, b = Affine(3, 3), Affine(3, 3)
    b.weight = a.weight
    container = Module()
    container.a, container.b = a, b
    assert len(list(container.parameters())) == 3
    assert container.num_parameters() == 9 + 3 + 3
    assert container.tied_parameters() == [["a.weight", "b.weight"]]
    sd = container.state_dict()
    assert sd["a.weight"].data is sd["b.weight"].data


def test_freeze_unfreeze_and_trainable_only():
    net = Net()
    net.first.freeze()
    assert all(not p.trainable for p in net.first.parameters())
    assert net.num_parameters(trainable_only=True) == 4 * 2 + 2 + 1
    net(nl.randn(2, 3)).sum().backward()
    assert net.first.weight.grad is None and net.second.weight.grad is not None
    net.unfreeze()
    assert net.num_parameters(trainable_only=True) == net.num_parameters()


def test_train_eval_and_apply_and_zero_grad():
    net = Net()
    net.eval()
    assert not net.training and not net.first.training
    net.train()
    assert net.second.training
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Affine", "Affine", "Net"]
    net(nl.randn(2, 3)).sum().backward()
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_hooks_can_observe_and_replace():
    net = Net()
    seen = []
    h1 = net.first.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    h2 = net.register_forward_hook(lambda m, args, out: out * 0)
    out = net(nl.randn(4, 3))
    assert seen == [(4, 3)] and np.all(out.data == 0)
    h1.remove(), h2.remove()
    assert np.any(net(nl.randn(4, 3)).data != 0)


class Scaled(Module):
    def forward(self, x, scale=1.0):
        return x * scale


def test_forward_pre_hook_with_kwargs_sees_and_replaces_the_keyword_arguments():
    module, seen = Scaled(), []

    def hook(m, args, kwargs):
        seen.append(dict(kwargs))
        return args, {"scale": kwargs["scale"] * 10}

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    assert module(nl.ones(2), scale=2.0).tolist() == [20.0, 20.0]
    assert seen == [{"scale": 2.0}]
    handle.remove()
    assert module(nl.ones(2), scale=2.0).tolist() == [2.0, 2.0]
    module.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match="tuple of \\(new_args, new_kwargs\\)"):
        module(nl.ones(2), scale=2.0)


def test_forward_hook_with_kwargs_and_always_call():
    module, seen = Scaled(), []
    module.register_forward_hook(lambda m, args, kwargs, out: seen.append(kwargs) or out + 1, with_kwargs=True)
    assert module(nl.ones(1), scale=3.0).tolist() == [4.0] and seen == [{"scale": 3.0}]
    failing, outputs = Scaled(), []
    failing.register_forward_hook(lambda m, args, out: outputs.append(("plain", out)))
    failing.register_forward_hook(lambda m, args, out: outputs.append(("always", out)), always_call=True)
    with pytest.raises(TypeError):
        failing(nl.ones(1), scale=1.0, unknown=2)   # forward raises: only the always_call hook runs
    assert outputs == [("always", None)]


def test_forward_hook_options_match_torch():
    torch = torch_or_skip()
    logs = []
    for lib, tensor in ((torch.nn, torch.ones), (nl.nn, nl.ones)):
        log = []
        layer = lib.Linear(2, 2)
        layer.register_forward_pre_hook(lambda m, args, kwargs: log.append(sorted(kwargs)), with_kwargs=True)
        layer.register_forward_hook(lambda m, args, kwargs, out: log.append(tuple(out.shape)), with_kwargs=True)
        layer.register_forward_hook(lambda m, args, out: log.append("always"), always_call=True)
        layer(tensor(3, 2))
        logs.append(log)
    assert logs[0] == logs[1] == [[], (3, 2), "always"]


def test_repr_tree_and_parameter_kind_checks():
    text = repr(Net())
    assert "(first): Affine(3, 4)" in text and text.startswith("Net(")
    with pytest.raises(ValueError, match="kind must be one of"):
        Parameter(nl.zeros(1), kind="weights")
    with pytest.raises(TypeError, match="nn.Parameter or None"):
        net = Net()
        net.scale = nl.ones(1)


def test_double_converts_every_float_tensor():
    net = Net().double()
    assert all(p.dtype == nl.float64 for p in net.parameters())
    assert all(b.dtype == nl.float64 for b in net.buffers())
    assert net(nl.randn(2, 3, dtype=nl.float64)).dtype == nl.float64


def test_a_child_module_is_replaced_by_a_module_or_none_only():
    torch = pytest.importorskip("torch")
    for lib in (nl.nn, torch.nn):
        model = lib.Sequential(lib.Linear(2, 3))
        model.head = lib.Linear(3, 1)
        with pytest.raises(TypeError, match=r"cannot assign '?int'? as child module 'head'"):
            model.head = 5
        assert isinstance(model.head, lib.Linear) and "head.weight" in model.state_dict()
        model.head = None
        assert model.head is None and "head.weight" not in model.state_dict()


@pytest.mark.parametrize("value", [nl.nn.ReLU(), Buffer(nl.zeros(4, 3))])
def test_a_module_or_buffer_is_not_assigned_over_a_parameter(value):
    # As in PyTorch: the parameter would have left parameters() and the state_dict unnoticed.
    layer = Affine(3, 4)
    with pytest.raises(TypeError, match=f"cannot assign {type(value).__name__} as parameter 'weight'"):
        layer.weight = value
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    layer.weight = None
    assert [name for name, _ in layer.named_parameters()] == ["bias"]


def test_to_refuses_integer_dtypes_and_other_devices_and_takes_torch_keywords():
    layer = Affine(3, 4)
    before = layer.weight.detach().numpy().copy()
    # An integer dtype cut every weight to its integer part without a word.
    for dtype in (nl.int64, "int32", nl.ones(1, dtype=nl.int64)):
        with pytest.raises(TypeError, match="only accepts floating point dtypes, but got desired dtype=int"):
            layer.to(dtype)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), before)
    for call in (lambda: layer.to("cuda"), lambda: layer.to(device="cuda:0", dtype=nl.float64)):
        with pytest.raises(ValueError, match="CPU only; expected device 'cpu', got 'cuda"):
            call()
    assert layer.to(device="cpu", non_blocking=True) is layer and layer.cpu() is layer
    assert layer.to("cpu", nl.float64).weight.dtype == np.float64
    assert layer.to(nl.ones(1, dtype=nl.float32)).weight.dtype == np.float32


def test_to_follows_torch():
    torch = torch_or_skip()
    for lib, int_dtype in ((torch, torch.int64), (nl, nl.int64)):
        layer = lib.nn.Linear(2, 2)
        with pytest.raises(TypeError, match="only accepts floating point"):
            layer.to(int_dtype)
        assert layer.to(device="cpu") is layer and layer.cpu() is layer


def test_get_parameter_and_get_buffer_by_dotted_path():
    net = nl.nn.Sequential(nl.nn.Linear(2, 3, bias=False), nl.nn.BatchNorm1d(3, track_running_stats=False))
    assert net.get_parameter("0.weight") is net[0].weight
    net[1].register_buffer("scale", nl.ones(3))
    assert net.get_buffer("1.scale") is net[1].scale
    # As in PyTorch: a parameter registered as None is no parameter, a buffer registered as None is None.
    assert net.get_buffer("1.running_mean") is None
    for call, message in ((lambda: net.get_parameter("0.bias"), "Linear has no parameter 'bias'"),
                          (lambda: net.get_buffer("1.shift"), "BatchNorm1d has no buffer 'shift'"),
                          (lambda: net.get_buffer("0.weight"), "Linear has no buffer 'weight'")):
        with pytest.raises(AttributeError, match=message):
            call()


@pytest.mark.parametrize("mode", [1, "eval", None])
def test_train_mode_that_is_not_a_bool_is_a_value_error_as_in_torch(mode):
    with pytest.raises(ValueError, match="training mode is expected to be boolean, got"):
        Affine(2, 2).train(mode)


def test_a_deep_copied_model_starts_without_gradients_as_in_torch():
    # an optimizer made for the copy would otherwise step on the original's gradients
    torch = torch_or_skip()
    model = nl.nn.Linear(2, 1)
    model.weight.register_hook(lambda g: g * 10)
    model(nl.ones(1, 2)).sum().backward()
    twin = copy.deepcopy(model)
    reference = copy.deepcopy(torch.nn.Linear(2, 1))
    reference(torch.ones(1, 2)).sum().backward()
    assert copy.deepcopy(reference).weight.grad is None
    assert twin.weight.grad is None and twin.bias.grad is None
    assert model.weight.grad is not None
    w = twin.weight
    assert isinstance(w, Parameter) and w.kind == "weight" and w.requires_grad and w.is_leaf
    assert w.init == model.weight.init and w.init is not model.weight.init
    np.testing.assert_array_equal(w.data, model.weight.data)
    assert not np.shares_memory(w.data, model.weight.data)
    twin(nl.ones(1, 2)).sum().backward()   # the original's hook stays with the original
    np.testing.assert_allclose(w.grad.data, [[1.0, 1.0]])
