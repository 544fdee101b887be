"""nn.utils.prune: masks equal torch.nn.utils.prune's, the same reparametrisation and keys,
pruned weights stay zero through training, remove/is_pruned, the sparsity report, errors."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.nn.utils import prune

from helpers import torch_or_skip as _torch


def torch_or_skip():
    """torch with torch.nn.utils.prune loaded (it is not imported by ``import torch``)."""
    torch = _torch()
    import torch.nn.utils.prune  # noqa: F401
    return torch


def _pair(torch, shape_kind="linear", seed=0):
    """An nnlite layer and a torch layer holding the same weights."""
    nl.manual_seed(seed)
    torch.manual_seed(seed)
    if shape_kind == "linear":
        ours, theirs = nl.nn.Linear(7, 5), torch.nn.Linear(7, 5)
    else:
        ours, theirs = nl.nn.Conv2d(3, 6, 3), torch.nn.Conv2d(3, 6, 3)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.detach().numpy().copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.detach().numpy().copy()))
    return ours, theirs


def _same_masks(ours, theirs, name="weight"):
    np.testing.assert_array_equal(getattr(ours, name + "_mask").detach().numpy(),
                                  getattr(theirs, name + "_mask").detach().numpy())
    np.testing.assert_array_equal(getattr(ours, name).detach().numpy(), getattr(theirs, name).detach().numpy())


@pytest.mark.parametrize("amount", [0, 0.0, 0.3, 0.5, 1.0, 1, 13, 35])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_l1_unstructured_mask_equals_torch(amount, kind):
    torch = torch_or_skip()
    ours, theirs = _pair(torch, kind)
    prune.l1_unstructured(ours, "weight", amount=amount)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=amount)
    _same_masks(ours, theirs)


@pytest.mark.parametrize("amount,n,dim", [(0.4, 2, 0), (2, 1, 0), (0.5, math.inf, 1), (3, 2, -1),
                                          (0.34, "fro", 0), (1, -math.inf, 1), (0, 1, 0), (0.5, 3, 1)])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_ln_structured_mask_equals_torch(amount, n, dim, kind):
    torch = torch_or_skip()
    if n == "fro" and kind == "conv":
        n = 2   # torch takes "fro" over at most two dims; over three it is the 2-norm
    ours, theirs = _pair(torch, kind)
    prune.ln_structured(ours, "weight", amount=amount, n=n, dim=dim)
    torch.nn.utils.prune.ln_structured(theirs, "weight", amount=amount, n=n, dim=dim)
    _same_masks(ours, theirs)


def test_iterative_pruning_composes_like_torch():
    torch = torch_or_skip()
    ours, theirs = _pair(torch, "conv")
    steps = [("l1_unstructured", dict(amount=0.3)), ("ln_structured", dict(amount=2, n=2, dim=0)),
             ("l1_unstructured", dict(amount=10)), ("ln_structured", dict(amount=0.5, n=1, dim=1)),
             ("l1_unstructured", dict(amount=0.5))]
    for fn, kwargs in steps:
        getattr(prune, fn)(ours, "weight", **kwargs)
        getattr(torch.nn.utils.prune, fn)(theirs, "weight", **kwargs)
        _same_masks(ours, theirs)
    hooks = [h for h in ours._forward_pre_hooks.values()]
    assert len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer) and len(hooks[0]) == len(steps)
    # 50% then 50% of the rest: compounding, not 50% twice
    w = nl.nn.Linear(10, 10)
    prune.l1_unstructured(w, "weight", 0.5)
    prune.l1_unstructured(w, "weight", 0.5)
    assert int(w.weight_mask.detach().numpy().sum()) == 25


@pytest.mark.parametrize("amount", [0.2, 0.8, 50])
def test_global_unstructured_equals_torch(amount):
    torch = torch_or_skip()
    pairs = [_pair(torch, "linear", seed=s) for s in range(3)]
    # one layer pruned before: its pruned entries stay pruned and are not ranked again
    prune.l1_unstructured(pairs[1][0], "weight", 0.5)
    torch.nn.utils.prune.l1_unstructured(pairs[1][1], "weight", 0.5)
    prune.global_unstructured([(o, "weight") for o, _ in pairs] + [(pairs[0][0], "bias")],
                              pruning_method=prune.L1Unstructured, amount=amount)
    torch.nn.utils.prune.global_unstructured([(t, "weight") for _, t in pairs] + [(pairs[0][1], "bias")],
                                             pruning_method=torch.nn.utils.prune.L1Unstructured,
                                             amount=amount)
    for o, t in pairs:
        _same_masks(o, t)
    _same_masks(pairs[0][0], pairs[0][1], "bias")


@pytest.mark.parametrize("amount", [0.3, 4])
def test_random_methods_prune_as_many_as_torch(amount):
    torch = torch_or_skip()
    ours, theirs = _pair(torch, "conv")
    prune.random_unstructured(ours, "weight", amount)
    torch.nn.utils.prune.random_unstructured(theirs, "weight", amount)
    assert ours.weight_mask.detach().numpy().sum() == theirs.weight_mask.sum().item()
    ours2, theirs2 = _pair(torch, "conv")
    prune.random_structured(ours2, "weight", amount, dim=0)
    torch.nn.utils.prune.random_structured(theirs2, "weight", amount, dim=0)
    kept = ours2.weight_mask.detach().numpy().reshape(6, -1)
    assert set(kept.min(axis=1)) <= {0.0, 1.0} and (kept.min(axis=1) == kept.max(axis=1)).all()
    assert kept.sum() == theirs2.weight_mask.sum().item()
    # seeded: the same seed, the same mask
    a, b = nl.nn.Linear(6, 6), nl.nn.Linear(6, 6)
    nl.manual_seed(3)
    prune.random_unstructured(a, "weight", 0.5)
    nl.manual_seed(3)
    prune.random_unstructured(b, "weight", 0.5)
    np.testing.assert_array_equal(a.weight_mask.detach().numpy(), b.weight_mask.detach().numpy())


def test_reparametrisation_and_state_dict_move_between_frameworks():
    torch = torch_or_skip()
    ours, theirs = _pair(torch, "linear")
    prune.l1_unstructured(ours, "weight", 0.4)
    torch.nn.utils.prune.identity(theirs, "weight")
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert isinstance(ours.weight_orig, nl.nn.Parameter) and "weight" not in ours._parameters
    assert [n for n, _ in ours.named_parameters()] == ["bias", "weight_orig"]
    theirs.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(np.float32)
    np.testing.assert_allclose(ours(nl.tensor(x)).detach().numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    # and back: a torch-pruned state dict loads into a pruned nnlite layer
    other = nl.nn.Linear(7, 5)
    prune.identity(other, "weight")
    other.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(other(nl.tensor(x)).detach().numpy(), ours(nl.tensor(x)).detach().numpy())


@pytest.mark.parametrize("make_opt", [
    lambda p: nl.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: nl.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda p: nl.optim.Adam(p, lr=0.01, weight_decay=0.01),
    lambda p: nl.optim.AdamW(p, lr=0.01, weight_decay=0.1),
])
def test_pruned_weights_stay_zero_through_training(make_opt):
    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(8, 16), nl.nn.ReLU(), nl.nn.Linear(16, 3))
    prune.global_unstructured([(model[0], "weight"), (model[2], "weight")], prune.L1Unstructured, amount=0.7)
    masks = [model[0].weight_mask.detach().numpy().copy(), model[2].weight_mask.detach().numpy().copy()]
    opt = make_opt(model.parameters())
    x, y = nl.randn(32, 8), nl.tensor(np.arange(32) % 3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = nl.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        assert (model[0].weight_orig.grad.detach().numpy()[masks[0] == 0] == 0).all()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    model(x)   # the pre-hook recomputes the weights from the trained weight_orig
    for layer, mask in zip((model[0], model[2]), masks):
        assert (layer.weight.detach().numpy()[mask == 0] == 0).all()
        np.testing.assert_array_equal(layer.weight_mask.detach().numpy(), mask)
    assert math.isclose(prune.sparsity_report(model).global_sparsity, 0.7, abs_tol=1 / 176)


def test_remove_makes_pruning_permanent_and_is_pruned():
    model = nl.nn.Sequential(nl.nn.Linear(5, 4), nl.nn.ReLU(), nl.nn.Linear(4, 2))
    assert not prune.is_pruned(model)
    prune.l1_unstructured(model[0], "weight", 8)
    prune.ln_structured(model[0], "weight", 1, n=2, dim=0)
    assert prune.is_pruned(model)
    pruned = model[0].weight.detach().numpy().copy()
    prune.remove(model[0], "weight")
    assert not prune.is_pruned(model)
    assert list(model.state_dict()) == ["0.bias", "0.weight", "2.weight", "2.bias"]   # torch's order too
    assert isinstance(model[0].weight, nl.nn.Parameter)
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), pruned)
    assert not hasattr(model[0], "weight_orig") and not hasattr(model[0], "weight_mask")
    with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
        prune.remove(model[0], "weight")


def test_custom_method_and_custom_mask():
    class EveryOther(prune.BasePruningMethod):
        PRUNING_TYPE = "unstructured"

        def compute_mask(self, t, default_mask):
            mask = default_mask.copy()
            mask.reshape(-1)[::2] = 0
            return mask

    layer = nl.nn.Linear(3, 2)
    EveryOther.apply(layer, "weight")
    np.testing.assert_array_equal(layer.weight_mask.detach().numpy().reshape(-1), [0, 1, 0, 1, 0, 1])
    prune.custom_from_mask(layer, "weight", mask=nl.tensor([[1.0, 0, 1], [1, 1, 1]]))
    np.testing.assert_array_equal(layer.weight_mask.detach().numpy(), [[0, 0, 0], [1, 0, 1]])
    out = prune.L1Unstructured(amount=1).prune(nl.tensor([3.0, -1.0, 2.0]))
    np.testing.assert_array_equal(out.detach().numpy(), [3.0, 0.0, 2.0])


def test_sparsity_report_per_layer_and_global():
    model = nl.nn.Sequential(nl.nn.Linear(10, 10), nl.nn.ReLU(), nl.nn.Linear(10, 5))
    prune.l1_unstructured(model[0], "weight", 0.5)
    report = prune.sparsity_report(model)
    assert report.layers["0.weight"] == (50, 100, 0.5)
    assert report.layers["2.weight"].zeros == 0 and report.total == 150
    assert math.isclose(report.global_sparsity, 50 / 150)
    assert "global" in str(report) and "0.weight" in str(report)


def test_bad_input_errors():
    layer = nl.nn.Linear(4, 3)
    with pytest.raises(ValueError, match="float in the range"):
        prune.l1_unstructured(layer, "weight", 1.5)
    with pytest.raises(ValueError, match="non-negative integer"):
        prune.l1_unstructured(layer, "weight", -1)
    with pytest.raises(TypeError, match="Must be int or float"):
        prune.l1_unstructured(layer, "weight", "half")
    with pytest.raises(ValueError, match="should be smaller than the number of parameters"):
        prune.l1_unstructured(layer, "weight", 13)
    # a failed pruning leaves the layer as it was
    assert sorted(layer.state_dict()) == ["bias", "weight"] and isinstance(layer.weight, nl.nn.Parameter)
    with pytest.raises(ValueError, match="multidimensional"):
        prune.ln_structured(layer, "bias", 1, n=2, dim=0)
    with pytest.raises(ValueError, match="same shape"):
        prune.l1_unstructured(layer, "weight", 1, importance_scores=nl.ones(3))
    with pytest.raises(TypeError, match="Iterable"):
        prune.global_unstructured(5, prune.L1Unstructured, amount=1)
    with pytest.raises(TypeError, match="unstructured"):
        prune.global_unstructured([(layer, "weight")], prune.RandomStructured, amount=1)


def test_pruned_model_round_trips_through_a_training_checkpoint(tmp_path):
    model = nl.nn.Sequential(nl.nn.Linear(16, 16), nl.nn.ReLU(), nl.nn.Linear(16, 4))
    prune.l1_unstructured(model[0], "weight", 0.5)
    path = tmp_path / "pruned.safetensors"
    nl.save_checkpoint(path, model=model)
    other = nl.nn.Sequential(nl.nn.Linear(16, 16), nl.nn.ReLU(), nl.nn.Linear(16, 4))
    prune.identity(other[0], "weight")            # the same reparametrisation, so the same keys
    nl.load_checkpoint(path, model=other)
    x = nl.randn(3, 16)
    np.testing.assert_array_equal(other(x).detach().numpy(), model(x).detach().numpy())
    np.testing.assert_array_equal(other[0].weight_mask.detach().numpy(), model[0].weight_mask.detach().numpy())


def test_global_unstructured_names_a_method_that_is_not_a_pruning_class():
    layer = nl.nn.Linear(4, 3)
    with pytest.raises(TypeError, match="pruning_method must be a pruning method class such as prune.L1Unstructured, "
                                        "got 'l1'"):
        prune.global_unstructured([(layer, "weight")], "l1", amount=0.5)
    assert not prune.is_pruned(layer)
