"""LoRALinear: starts equal to its base, trains only A and B, merge/unmerge; add_lora/merge_lora."""
import numpy as np
import pytest

import nnlite as nl


def test_starts_equal_trains_only_a_and_b():
    nl.manual_seed(0)
    base = nl.nn.Linear(12, 6)
    w0 = base.weight.detach().numpy().copy()
    layer = nl.nn.LoRALinear(base, r=3, alpha=6)
    x = nl.randn(8, 12)
    np.testing.assert_array_equal(layer(x).detach().numpy(), base(x).detach().numpy())
    assert [n for n, _ in layer.named_parameters(trainable_only=True)] == ["lora_A", "lora_B"]
    assert layer.num_parameters(trainable_only=True) == 3 * (12 + 6)
    opt = nl.optim.SGD(layer.parameters(trainable_only=True), lr=0.5)
    target = nl.randn(8, 6)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = nl.nn.functional.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.9 * losses[0]
    np.testing.assert_array_equal(base.weight.detach().numpy(), w0)     # frozen
    assert np.abs(layer.lora_B.detach().numpy()).max() > 0
    # the update is rank r and equals what the layer adds
    delta = layer.delta_weight().detach().numpy()
    assert np.linalg.matrix_rank(delta.astype(np.float64), tol=1e-6) <= 3
    np.testing.assert_allclose(layer(x).detach().numpy(),
                               base(x).detach().numpy() + x.numpy() @ delta.T, rtol=1e-4, atol=1e-5)


def test_merge_and_unmerge():
    nl.manual_seed(1)
    base = nl.nn.Linear(10, 4)
    w0 = base.weight.detach().numpy().copy()
    layer = nl.nn.LoRALinear(base, r=2, alpha=2)
    layer.lora_B.data[...] = np.random.default_rng(0).standard_normal((4, 2))
    x = nl.randn(5, 10)
    before = layer(x).detach().numpy()
    layer.merge()
    assert layer.merged
    np.testing.assert_allclose(layer(x).detach().numpy(), before, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(base(x).detach().numpy(), before, rtol=1e-5, atol=1e-5)
    layer.merge()   # twice is once
    layer.unmerge()
    np.testing.assert_allclose(base.weight.detach().numpy(), w0, atol=1e-6)
    np.testing.assert_allclose(layer(x).detach().numpy(), before, rtol=1e-5, atol=1e-5)


def test_add_lora_and_merge_lora():
    nl.manual_seed(2)
    model = nl.nn.Sequential(nl.nn.Linear(16, 32), nl.nn.ReLU(), nl.nn.Linear(32, 32), nl.nn.ReLU(),
                             nl.nn.Linear(32, 4))
    x = nl.randn(3, 16)
    ref = model(x).detach().numpy()
    full = model.num_parameters()
    nl.nn.lora.add_lora(model, target_modules=["0", "2"], r=2, alpha=4)
    assert isinstance(model[0], nl.nn.LoRALinear) and isinstance(model[2], nl.nn.LoRALinear)
    assert type(model[4]) is nl.nn.Linear and not model[4].weight.requires_grad
    assert model.num_parameters(trainable_only=True) == 2 * (16 + 32) + 2 * (32 + 32)
    assert model.num_parameters(trainable_only=True) < 0.15 * full
    np.testing.assert_array_equal(model(x).detach().numpy(), ref)
    model[2].lora_B.data[...] = 0.1
    changed = model(x).detach().numpy()
    nl.compress.merge_lora(model)
    assert type(model[0]) is nl.nn.Linear and type(model[2]) is nl.nn.Linear
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    np.testing.assert_allclose(model(x).detach().numpy(), changed, rtol=1e-5, atol=1e-5)


def test_bad_input():
    with pytest.raises(TypeError, match="must be an nn.Linear"):
        nl.nn.LoRALinear(nl.nn.Conv1d(2, 2, 1), r=1)
    with pytest.raises(ValueError, match="positive integer"):
        nl.nn.LoRALinear(nl.nn.Linear(2, 2), r=0)
    with pytest.raises(ValueError, match="no Linear in the model matches"):
        nl.nn.lora.add_lora(nl.nn.Sequential(nl.nn.Linear(2, 2)), target_modules=["7"])


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(alpha=float("nan")), ValueError, r"LoRALinear: alpha must be a finite number, got nan"),
    (dict(alpha=float("inf")), ValueError, r"LoRALinear: alpha must be a finite number, got inf"),
    (dict(alpha=True), TypeError, r"LoRALinear: alpha must be a real number, got bool"),
    (dict(alpha="2"), TypeError, r"LoRALinear: alpha must be a real number .*got str"),
    (dict(r=2.0), TypeError, r"LoRALinear: r must be an int, got float 2.0"),
    (dict(r=True), TypeError, r"LoRALinear: r must be an int, got bool"),
    (dict(dropout=True), TypeError, r"LoRALinear: dropout must be a real number, got bool"),
    (dict(dropout=1.0), ValueError, r"LoRALinear: dropout must be in \[0, 1\), got 1.0"),
])
def test_lora_linear_refuses_bad_arguments_by_name(kwargs, error, message):
    with pytest.raises(error, match=message):
        nl.nn.LoRALinear(nl.nn.Linear(3, 3), **kwargs)


def test_lora_linear_takes_numpy_numbers_and_a_negative_alpha():
    layer = nl.nn.LoRALinear(nl.nn.Linear(3, 3), r=np.int64(2), alpha=np.float32(-3.0))
    assert (layer.r, layer.scaling) == (2, -1.5) and type(layer.r) is int


def test_add_and_merge_lora_name_what_they_expected():
    with pytest.raises(TypeError, match="add_lora: model must be an nn.Module, got ndarray"):
        nl.nn.lora.add_lora(np.zeros(3))
    with pytest.raises(TypeError, match="merge_lora: model must be an nn.Module, got NoneType"):
        nl.nn.lora.merge_lora(None)
    model = nl.nn.Sequential(nl.nn.Linear(2, 2))
    # a lone string would be matched letter by letter
    with pytest.raises(TypeError, match=r"add_lora: target_modules must be None or a list of module names, "
                                        r"got '0' \(one name is written \['0'\]\)"):
        nl.nn.lora.add_lora(model, target_modules="0")
    with pytest.raises(TypeError, match=r"target_modules must be None or a list of module names, got \[0\]"):
        nl.nn.lora.add_lora(model, target_modules=[0])
    with pytest.raises(ValueError, match="add_lora: alpha must be a finite number, got nan"):
        nl.nn.lora.add_lora(model, alpha=float("nan"))
    # a refused call leaves the model as it was: nothing wrapped, nothing frozen
    assert type(model[0]) is nl.nn.Linear and model[0].weight.requires_grad
    nl.nn.lora.add_lora(model, target_modules=("0",), r=1)
    assert type(model[0]) is nl.nn.LoRALinear
