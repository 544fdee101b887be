"""functional_call: the module run with given tensors equals its forward, and leaves its own alone."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from helpers import torch_or_skip
from nnlite.func import functional_call


def _copies(module, scale=1.0, requires_grad=True):
    return {k: nl.tensor(v.data * scale, requires_grad=requires_grad and v.dtype.kind == "f")
            for k, v in module.state_dict().items()}


MODELS = {
    "mlp": lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
    "conv-bn": lambda: nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(4 * 6, 3)),
    "layernorm-embedding": lambda: nn.Sequential(nn.Embedding(5, 4), nn.LayerNorm(4), nn.Linear(4, 2)),
    "attention": lambda: nn.MultiheadAttention(4, 2, batch_first=True),
}
INPUTS = {"mlp": lambda: (nl.randn(5, 4),), "conv-bn": lambda: (nl.randn(5, 2, 6),),
          "layernorm-embedding": lambda: (nl.tensor(np.array([[0, 1, 4], [2, 3, 3]])),),
          "attention": lambda: (nl.randn(2, 3, 4),) * 3}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", list(MODELS))
def test_same_as_forward_with_own_tensors(name):
    nl.manual_seed(0)
    model, inputs = MODELS[name](), INPUTS[name]()
    model.eval()
    expected = _first(model(*inputs)).data
    got = _first(functional_call(model, _copies(model), inputs)).data
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(MODELS))
def test_given_tensors_are_used_and_receive_gradients(name):
    nl.manual_seed(0)
    model, inputs = MODELS[name](), INPUTS[name]()
    model.eval()
    before = {k: v.data.copy() for k, v in model.state_dict().items()}
    params = _copies(model, scale=0.5)
    out = _first(functional_call(model, params, inputs))
    # The same numbers through a twin module that owns the scaled values.
    twin = MODELS[name]()
    twin.load_state_dict({k: v.data for k, v in params.items()})
    twin.eval()
    np.testing.assert_allclose(out.data, _first(twin(*inputs)).data, rtol=1e-6, atol=1e-6)
    out.sum().backward()
    _first(twin(*inputs)).sum().backward()
    for k, p in twin.named_parameters():
        np.testing.assert_allclose(params[k].grad.data, p.grad.data, rtol=1e-5, atol=1e-6)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.data, before[k])
    assert all(p.grad is None for p in model.parameters())
    assert all(type(p) is nn.Parameter for p in model.parameters())   # the originals are back


def test_batchnorm_updates_the_given_buffers_not_its_own():
    bn = nn.BatchNorm1d(3)
    stats = {"running_mean": nl.zeros(3), "running_var": nl.ones(3), "num_batches_tracked": nl.tensor(0)}
    x = nl.randn(8, 3) + 2.0
    functional_call(bn, stats, (x,))
    np.testing.assert_allclose(stats["running_mean"].data, 0.1 * x.data.mean(0), rtol=1e-5)
    assert int(stats["num_batches_tracked"].data) == 1
    np.testing.assert_array_equal(bn.running_mean.data, np.zeros(3))
    assert int(bn.num_batches_tracked.data) == 0


def test_tied_parameters_replaced_under_either_name():
    emb = nn.Embedding(6, 4)
    head = nn.Linear(4, 6, bias=False)
    head.weight = emb.weight
    model = nn.Sequential(emb, head)
    w = nl.randn(6, 4, requires_grad=True)
    x = nl.tensor(np.array([[1, 2]]))
    out = functional_call(model, {"0.weight": w}, (x,))
    expected = w.data[[1, 2]] @ w.data.T
    np.testing.assert_allclose(out.data[0], expected, rtol=1e-5)
    out.sum().backward()
    assert w.grad is not None and model[0].weight.grad is None
    with pytest.raises(ValueError, match="tied"):
        functional_call(model, {"0.weight": w, "1.weight": nl.randn(6, 4)}, (x,))
    # tie_weights=False (PyTorch's option): only the name given changes; the head keeps the shared weight.
    untied = functional_call(model, {"0.weight": w}, (x,), tie_weights=False)
    np.testing.assert_allclose(untied.data[0], w.data[[1, 2]] @ emb.weight.data.T, rtol=1e-5)


def test_hooks_still_run():
    layer = nn.Linear(2, 2)
    seen = []
    layer.register_forward_hook(lambda m, args, out: seen.append(m.weight) or out * 2)
    w = nl.randn(2, 2)
    out = functional_call(layer, {"weight": w, "bias": nl.zeros(2)}, nl.ones(1, 2))
    assert seen[0] is w
    np.testing.assert_allclose(out.data, 2 * (nl.ones(1, 2).data @ w.data.T), rtol=1e-6)


def test_second_order_through_grad_create_graph():
    # f(w) = sum((x w^T)^2): one inner step w' = w - lr * df/dw, then d f(w') / dw against central differences.
    layer = nn.Linear(3, 1, bias=False).double()
    x = nl.tensor(np.random.default_rng(0).normal(size=(4, 3)))
    lr = 0.1

    def outer(w):
        inner = (functional_call(layer, {"weight": w}, x) ** 2).sum()
        (g,) = nl.grad(inner, [w], create_graph=True)
        return (functional_call(layer, {"weight": w - lr * g}, x) ** 2).sum()

    w0 = np.random.default_rng(1).normal(size=(1, 3))
    w = nl.tensor(w0, requires_grad=True)
    (meta,) = nl.grad(outer(w), [w])
    eps = 1e-6
    numeric = np.zeros_like(w0)
    for i in range(3):
        d = np.zeros_like(w0)
        d[0, i] = eps
        numeric[0, i] = (outer(nl.tensor(w0 + d, requires_grad=True)).data
                         - outer(nl.tensor(w0 - d, requires_grad=True)).data) / (2 * eps)
    np.testing.assert_allclose(meta.data, numeric, rtol=1e-6, atol=1e-8)


def test_bad_input_named():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="unexpected keys.*'weigth'"):
        functional_call(layer, {"weigth": nl.zeros(2, 2)}, nl.ones(1, 2))
    with pytest.raises(TypeError, match="must be a Tensor"):
        functional_call(layer, {"weight": np.zeros((2, 2))}, nl.ones(1, 2))
    with pytest.raises(RuntimeError, match="missing keys"):
        functional_call(layer, {"weight": nl.zeros(2, 2)}, nl.ones(1, 2), strict=True)
    # A failing forward still puts the module's own tensors back.
    with pytest.raises(ValueError):
        functional_call(layer, {"weight": nl.zeros(2, 5)}, nl.ones(1, 2))
    assert type(layer.weight) is nn.Parameter and layer.weight.shape == (2, 2)


def test_torch_agrees():
    torch = pytest.importorskip("torch")
    nl.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    given = {k: nl.randn(*v.shape) for k, v in model.state_dict().items()}
    x = nl.randn(5, 3)
    ours = functional_call(model, given, (x,)).data
    theirs = torch.func.functional_call(tmodel, {k: torch.tensor(v.data) for k, v in given.items()},
                                        (torch.tensor(x.data),)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_args_default_to_none_and_the_inputs_come_by_keyword_as_in_torch():
    torch = pytest.importorskip("torch")

    def make(lib):
        class Scaled(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = lib.nn.Parameter(lib.ones(2))

            def forward(self, x=None):
                return self.scale * (2.0 if x is None else x)
        return Scaled()

    ours, theirs = make(nl), make(torch)
    given, tgiven = {"scale": nl.tensor([3.0, 4.0])}, {"scale": torch.tensor([3.0, 4.0])}
    np.testing.assert_array_equal(functional_call(ours, given).data,
                                  torch.func.functional_call(theirs, tgiven).numpy())
    np.testing.assert_array_equal(functional_call(ours, given, kwargs={"x": nl.tensor([1.0, 0.5])}).data,
                                  torch.func.functional_call(theirs, tgiven, kwargs={"x": torch.tensor([1.0, 0.5])}).numpy())


LAYER_FAMILIES = {
    "lstm": (lambda: nn.LSTM(3, 4, batch_first=True), lambda: (nl.randn(2, 5, 3),)),
    "gru-two-layers": (lambda: nn.GRU(3, 4, num_layers=2), lambda: (nl.randn(5, 2, 3),)),
    "transformer-encoder": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(
        8, 2, dim_feedforward=16, dropout=0.0, batch_first=True), 2), lambda: (nl.randn(2, 5, 8),)),
    "conv2d-batchnorm2d": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)),
                           lambda: (nl.randn(2, 2, 6, 6),)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), lambda: (nl.randn(2, 4, 5),)),
    "lora": (lambda: nn.LoRALinear(nn.Linear(4, 3), r=2), lambda: (nl.randn(2, 4),)),
    "grouped-query-attention": (lambda: nn.GroupedQueryAttention(8, 4, 2), lambda: (nl.randn(2, 5, 8),)),
    "film": (lambda: nn.FiLM(4, 3), lambda: (nl.randn(2, 4), nl.randn(2, 3))),
}


@pytest.mark.parametrize("name", list(LAYER_FAMILIES))
def test_every_layer_family_runs_with_given_tensors(name):
    make, inputs = LAYER_FAMILIES[name]
    nl.manual_seed(0)
    model, x = make().eval(), inputs()
    own = _first(model(*x)).data.copy()
    given = _copies(model, scale=0.5)
    out = _first(functional_call(model, given, x))
    twin = make().eval()
    twin.load_state_dict({k: v.data for k, v in given.items()})
    np.testing.assert_allclose(out.data, _first(twin(*x)).data, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert all(given[k].grad is not None for k, p in model.named_parameters() if p.requires_grad)
    np.testing.assert_array_equal(_first(model(*x)).data, own)


def test_a_name_given_none_runs_the_module_without_that_tensor_as_in_torch():
    torch = torch_or_skip()
    layer = nn.Linear(2, 2)
    w = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    x = np.array([[0.5, 2.0]], np.float32)
    out = functional_call(layer, {"weight": nl.tensor(w), "bias": None}, nl.tensor(x), strict=True)
    expected = torch.func.functional_call(torch.nn.Linear(2, 2), {"weight": torch.tensor(w), "bias": None},
                                          torch.tensor(x), strict=True)
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-6)
    assert type(layer.bias) is nn.Parameter and layer._parameters["bias"] is layer.bias
    with pytest.raises(TypeError, match="must be a Tensor or None, got ndarray"):
        functional_call(layer, {"bias": np.zeros(2)}, nl.tensor(x))
