"""Sequential, ModuleList, ModuleDict, Residual: registration, indexing, state_dict keys as in PyTorch."""
from collections import OrderedDict

import numpy as np
import pytest

import nnlite as nl
from helpers import compare

nn = nl.nn


def test_sequential_forward_keys_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Tanh())
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Tanh())
    compare(ours, theirs, np.random.default_rng(0).standard_normal((5, 4)))
    assert list(ours.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_sequential_ordereddict_index_slice_len_append():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(OrderedDict([("fc1", nn.Linear(3, 5)), ("act", nn.GELU()), ("fc2", nn.Linear(5, 2))]))
    theirs = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(3, 5)), ("act", torch.nn.GELU()),
                                              ("fc2", torch.nn.Linear(5, 2))]))
    compare(ours, theirs, np.random.default_rng(1).standard_normal((4, 3)))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(ours) == 3 and isinstance(ours[1], nn.GELU) and ours[-1] is ours.fc2
    tail = ours[1:]
    assert isinstance(tail, nn.Sequential) and list(dict(tail.named_children())) == ["act", "fc2"]
    assert tail.fc2 is ours.fc2
    ours.append(nn.Sigmoid())
    assert len(ours) == 4 and list(dict(ours.named_children()))[-1] == "3"
    seq = nn.Sequential(nn.ReLU(), nn.Tanh())
    seq.insert(1, nn.Sigmoid())
    assert [type(m).__name__ for m in seq] == ["ReLU", "Sigmoid", "Tanh"]
    del seq[0]
    assert [type(m).__name__ for m in seq] == ["Sigmoid", "Tanh"] and list(seq._modules) == ["0", "1"]
    seq[0] = nn.ReLU()
    assert isinstance(seq[0], nn.ReLU)
    with pytest.raises(IndexError, match="out of range for 2 modules"):
        seq[5]


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    layers.append(nn.Linear(2, 1))
    layers += [nn.ReLU()]
    assert len(layers) == 5 and isinstance(layers[-1], nn.ReLU)
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers.insert(0, nn.Tanh())
    assert isinstance(layers[0], nn.Tanh) and isinstance(layers[1], nn.Linear)
    del layers[0]
    assert isinstance(layers[0], nn.Linear) and len(layers) == 5
    x = nl.ones(1, 2)
    for layer in layers:
        x = layer(x)
    assert x.shape == (1, 1)
    with pytest.raises(TypeError, match="no forward"):
        layers(x)


def test_module_dict():
    heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "reg": nn.Linear(4, 1)})
    assert list(heads.keys()) == ["cls", "reg"] and "cls" in heads and len(heads) == 2
    assert list(heads.state_dict()) == ["cls.weight", "cls.bias", "reg.weight", "reg.bias"]
    heads["aux"] = nn.Linear(4, 2)
    assert [k for k, _ in heads.items()] == ["cls", "reg", "aux"]
    popped = heads.pop("reg")
    assert isinstance(popped, nn.Linear) and "reg" not in heads and len(list(heads.parameters())) == 4
    with pytest.raises(TypeError, match="strings"):
        heads[3] = nn.ReLU()


def test_residual_adds_input():
    torch = pytest.importorskip("torch")

    class TorchResidual(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return x + self.module(x)

    ours = nn.Residual(nn.Sequential(nn.Linear(6, 6), nn.ReLU()))
    theirs = TorchResidual(torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.ReLU()))
    compare(ours, theirs, np.random.default_rng(2).standard_normal((3, 6)))
    assert list(ours.state_dict()) == ["module.0.weight", "module.0.bias"]
    with pytest.raises(ValueError, match=r"Residual\(Linear\): the wrapped module changed the shape"):
        nn.Residual(nn.Linear(6, 2))(nl.zeros(3, 6))


def test_small_cnn_float32_training_step_matches_torch():
    """Conv, BatchNorm, ReLU, pooling, Flatten, Linear and cross-entropy together, in float32."""
    torch = pytest.importorskip("torch")
    T = torch.nn

    def build(m):
        return m.Sequential(m.Conv2d(3, 8, 3, padding=1), m.BatchNorm2d(8), m.ReLU(), m.MaxPool2d(2),
                            m.Conv2d(8, 8, 3, groups=2), m.GroupNorm(2, 8), m.GELU(), m.AdaptiveAvgPool2d(2),
                            m.Flatten(), m.Dropout(0.0), m.Linear(32, 10), m.LayerNorm(10))

    ours, theirs = build(nn), build(T)
    theirs.load_state_dict({k: torch.tensor(v.data) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 10, 10)).astype(np.float32)
    t = rng.integers(0, 10, 4)
    loss = nl.nn.functional.cross_entropy(ours(nl.tensor(x)), nl.tensor(t), label_smoothing=0.1)
    loss_t = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(t), label_smoothing=0.1)
    loss.backward()
    loss_t.backward()
    assert loss.item() == pytest.approx(loss_t.item(), rel=1e-5)
    torch_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, torch_params[name].grad.numpy(), rtol=1e-3, atol=2e-5, err_msg=name)
    np.testing.assert_allclose(ours[1].running_var.data, theirs[1].running_var.numpy(), rtol=1e-5)


LAYERS = ["Linear", "Bilinear", "Identity", "Flatten", "Unflatten", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d",
          "AvgPool1d", "AvgPool2d", "LPPool1d", "LPPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "BatchNorm1d",
          "BatchNorm2d", "LayerNorm", "GroupNorm", "RMSNorm", "InstanceNorm1d", "InstanceNorm2d", "Embedding",
          "Dropout", "ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "SiLU", "Softmax", "LogSoftmax", "Softplus",
          "ReLU6", "Mish", "Hardsigmoid", "Hardswish", "Sequential", "ModuleList", "ModuleDict",
          "ParameterList", "ParameterDict", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "HuberLoss",
          "SmoothL1Loss", "BCEWithLogitsLoss", "KLDivLoss"]


@pytest.mark.parametrize("name", LAYERS)
def test_constructor_arguments_and_defaults_are_torch(name):
    torch = pytest.importorskip("torch")
    import inspect

    def params(cls):
        return [(k, v.default) for k, v in inspect.signature(cls.__init__).parameters.items()]
    assert params(getattr(nn, name)) == params(getattr(torch.nn, name))


def test_insert_with_negative_index_matches_list_insert():
    from nnlite import nn
    for cls in (nn.Sequential, nn.ModuleList):
        seq = cls([nn.ReLU(), nn.Tanh()]) if cls is nn.ModuleList else cls(nn.ReLU(), nn.Tanh())
        seq.insert(-1, nn.Sigmoid())
        assert [type(m).__name__ for m in seq] == ["ReLU", "Sigmoid", "Tanh"]
        seq.insert(0, nn.GELU())
        assert [type(m).__name__ for m in seq][0] == "GELU" and list(seq._modules) == ["0", "1", "2", "3"]


def test_a_hook_on_a_fused_pairs_identity_runs():
    # fuse_linear_relu leaves an Identity in each fused pair's place; Sequential still calls
    # it, so a hook registered on it afterwards runs and may change the value.
    model = nn.fuse_linear_relu(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))
    x = nl.randn(3, 4)
    before = model(x).data.copy()
    seen = []
    model[1].register_forward_hook(lambda module, args, out: seen.append(out.shape) or out * 0.0)
    after = model(x).data
    assert seen == [(3, 4)]
    assert not np.array_equal(before, after) and np.array_equal(after, np.broadcast_to(model[2].bias.data, (3, 2)))


def test_sequences_pop_and_add_as_torch_does():
    s = nl.nn.Sequential(nl.nn.ReLU(), nl.nn.Tanh(), nl.nn.Sigmoid())
    assert isinstance(s.pop(1), nl.nn.Tanh)
    assert [type(m).__name__ for m in s] == ["ReLU", "Sigmoid"] and list(s._modules) == ["0", "1"]
    assert [type(m).__name__ for m in s.pop(slice(0, 2))] == ["ReLU", "Sigmoid"] and len(s) == 0
    both = nl.nn.Sequential(nl.nn.ReLU()) + nl.nn.Sequential(nl.nn.Tanh())
    assert [type(m).__name__ for m in both] == ["ReLU", "Tanh"]
    with pytest.raises(ValueError, match="Sequential \\+ ModuleList: add a Sequential"):
        nl.nn.Sequential(nl.nn.ReLU()) + nl.nn.ModuleList([nl.nn.Tanh()])
    modules = nl.nn.ModuleList([nl.nn.ReLU(), nl.nn.Tanh()])
    joined = modules + [nl.nn.Sigmoid()]
    assert [type(m).__name__ for m in joined] == ["ReLU", "Tanh", "Sigmoid"] and len(modules) == 2
    assert isinstance(modules.pop(-1), nl.nn.Tanh) and len(modules) == 1
    assert modules.insert(0, nl.nn.Tanh()) is None and [type(m).__name__ for m in modules] == ["Tanh", "ReLU"]


def test_module_list_repr_folds_runs_of_equal_modules_as_torch_does():
    torch = pytest.importorskip("torch")
    def make(nn):
        return nn.ModuleList([nn.Linear(1, 1), nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.Sequential(nn.Tanh()),
                              nn.Sequential(nn.Tanh()), nn.Linear(1, 1)])
    assert repr(make(nl.nn)) == repr(make(torch.nn))
    assert "(1-3): 3 x ReLU()" in repr(make(nl.nn))
    assert repr(nl.nn.ModuleList()) == repr(torch.nn.ModuleList())


@pytest.mark.parametrize("name, error", [("a.b", KeyError), ("", KeyError), (1, TypeError)])
def test_a_child_name_must_be_a_string_without_dots(name, error):
    # state_dict keys are split at dots, so a dotted name could not be loaded back
    model = nl.nn.Linear(1, 1)
    with pytest.raises(error, match="add_module: module name must be"):
        model.add_module(name, nl.nn.ReLU())
    with pytest.raises(error, match="register_buffer: buffer name must be"):
        model.register_buffer(name, None)
    with pytest.raises(error, match="register_parameter: parameter name must be"):
        model.register_parameter(name, None)
    with pytest.raises(error):
        nl.nn.ModuleDict({name: nl.nn.ReLU()})
