"""The path a reader follows from nn.Linear down to the kernel has no hidden shortcuts."""
import inspect

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.autograd import Function
from nnlite.nn import functional as F


def _function_classes():
    seen, todo = set(), [Function]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def test_linear_forward_goes_through_functional_linear(monkeypatch):
    layer = nn.Linear(3, 2)
    calls = []
    real = F.linear
    monkeypatch.setattr(F, "linear", lambda *args: calls.append(args) or real(*args))
    y = layer(nl.randn(4, 3))
    assert len(calls) == 1 and calls[0][1] is layer.weight and calls[0][2] is layer.bias
    assert y.shape == (4, 2)


def test_grad_fn_names_the_backward_not_the_layer():
    x = nl.randn(2, 3, requires_grad=True)
    assert "grad_fn=<LinearBackward>" in repr(nn.Linear(3, 2)(x))
    assert repr(nn.ReLU()(x)).endswith("grad_fn=<ReluBackward>)")
    assert (x * 2).grad_fn.name == "MulBackward"


def test_no_function_class_shares_a_name_with_a_layer():
    layers = {name.lower() for name, obj in vars(nn).items()
              if inspect.isclass(obj) and issubclass(obj, nn.Module)}
    clashes = [cls.__qualname__ for cls in _function_classes() if cls.__name__.lower() in layers]
    assert clashes == []


def test_sequential_calls_every_module_and_fuses_nothing():
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x = nl.randn(6, 5, requires_grad=True)
    seen = []
    for module in model:
        module.register_forward_hook(lambda m, args, out: seen.append(type(m).__name__))
    y = model(x)
    assert seen == ["Linear", "ReLU", "Linear"]
    assert y.grad_fn.name == "LinearBackward"
    assert y.grad_fn.inputs[0].grad_fn.name == "ReluBackward"


def test_fused_linear_relu_is_opt_in_and_identical():
    nl.manual_seed(1)
    x = nl.randn(6, 5, requires_grad=True)
    w = nl.randn(4, 5, requires_grad=True)
    b = nl.randn(4, requires_grad=True)
    fused = F.linear_relu(x, w, b)
    plain = F.relu(F.linear(x, w, b))
    assert fused.grad_fn.name == "LinearReLUBackward"
    assert fused.data.tobytes() == plain.data.tobytes()
    for g, r in zip(nl.grad(fused.sum(), [x, w, b]), nl.grad(plain.sum(), [x, w, b])):
        assert g.data.tobytes() == r.data.tobytes()


def test_fuse_linear_relu_is_explicit_and_changes_no_number():
    nl.manual_seed(2)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    keys, weight = list(model.state_dict()), model[0].weight
    x = nl.randn(6, 5, requires_grad=True)
    y = model(x)
    grads = nl.grad(y.sum(), [x] + list(model.parameters()))
    assert nn.fuse_linear_relu(model) is model
    assert [type(m).__name__ for m in model] == ["LinearReLU", "Identity", "LinearReLU", "Identity", "Linear"]
    assert list(model.state_dict()) == keys and model[0].weight is weight   # same Parameter objects
    fused = model(x)
    assert fused.grad_fn.inputs[0].grad_fn.name == "LinearReLUBackward"
    assert fused.data.tobytes() == y.data.tobytes()
    for g, r in zip(nl.grad(fused.sum(), [x] + list(model.parameters())), grads):
        assert g.data.tobytes() == r.data.tobytes()


def test_fuse_linear_relu_leaves_hooked_pairs_alone():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU())
    model[3].register_forward_hook(lambda m, args, out: None)
    nn.fuse_linear_relu(model)
    assert [type(m).__name__ for m in model] == ["LinearReLU", "Identity", "Linear", "ReLU"]
    with pytest.raises(ValueError, match=r"Linear\(in_features=3\): input has 2 features"):
        model(nl.randn(4, 2))


def test_fuse_linear_relu_leaves_pairs_with_backward_hooks_alone():
    for register in ("register_full_backward_hook", "register_full_backward_pre_hook"):
        model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU())
        getattr(model[1], register)(lambda m, *grads: None)
        nn.fuse_linear_relu(model)
        assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "LinearReLU", "Identity"], register


def test_linear_error_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
    try:
        model(nl.randn(3, 5))
    except ValueError as e:
        assert "Linear(in_features=4): input has 5 features (shape (3, 5))" in str(e)
    else:
        raise AssertionError("expected a ValueError")


def test_functional_linear_error_names_the_weight():
    try:
        F.linear(nl.randn(3, 5), nl.randn(2, 4))
    except ValueError as e:
        assert "expects 4 input features, input has 5" in str(e)
    else:
        raise AssertionError("expected a ValueError")


def test_nnlite_namespace_does_not_leak_ops_modules():
    for name in ("np", "shape", "linalg", "pointwise", "nn_ops", "arithmetic"):
        assert not hasattr(nl, name), name
    assert set(nl.ops.__all__) <= set(dir(nl))


def test_constant_is_outside_the_graph():
    from nnlite.autograd import constant
    c = constant(np.ones(3))
    assert c.grad_fn is None and not c.requires_grad
    assert constant(None) is None
