"""BatchNorm1d/2d, LayerNorm, GroupNorm, RMSNorm against PyTorch (running statistics included)."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare, f64, load_from_torch_and_compare, torch_or_skip

F = nl.nn.functional


@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=None), dict(momentum=0.3, eps=1e-3),
                                    dict(affine=False), dict(track_running_stats=False), dict(bias=False),
                                    dict(affine=False, track_running_stats=False)])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_torch(kwargs, train):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    compare(nl.nn.BatchNorm1d(3, **kwargs), torch.nn.BatchNorm1d(3, **kwargs), rng.standard_normal((4, 3, 5)) * 2 + 1,
            train=train, steps=3)
    compare(nl.nn.BatchNorm1d(3, **kwargs), torch.nn.BatchNorm1d(3, **kwargs), rng.standard_normal((6, 3)), train=train)
    compare(nl.nn.BatchNorm2d(3, **kwargs), torch.nn.BatchNorm2d(3, **kwargs), rng.standard_normal((2, 3, 4, 5)) - 2,
            train=train, steps=3)


def test_running_statistics_after_training_steps():
    torch = pytest.importorskip("torch")
    ours, theirs = nl.nn.BatchNorm2d(4, momentum=None), torch.nn.BatchNorm2d(4, momentum=None)
    compare(ours, theirs, np.random.default_rng(1).standard_normal((3, 4, 2, 2)) * 3, steps=4)
    assert int(ours.num_batches_tracked.data) == 4
    np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), rtol=1e-12)
    # Eval uses the running statistics and leaves them alone.
    before = ours.running_mean.data.copy()
    ours.eval()(nl.randn(2, 4, 2, 2, dtype=nl.float64))
    np.testing.assert_array_equal(before, ours.running_mean.data)
    assert int(ours.num_batches_tracked.data) == 4


def test_batch_norm_parameters_buffers_and_loading():
    torch = pytest.importorskip("torch")
    bn = nl.nn.BatchNorm2d(5)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert (bn.weight.kind, bn.bias.kind) == ("scale", "shift")
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(bn.state_dict()) == list(torch.nn.BatchNorm2d(5).state_dict())
    assert list(nl.nn.BatchNorm1d(2, affine=False, track_running_stats=False).state_dict()) == []
    theirs = torch.nn.BatchNorm2d(5)
    theirs.train()(torch.randn(8, 5, 3, 3) * 2 + 1)   # non-trivial running statistics
    load_from_torch_and_compare(bn, theirs, np.random.default_rng(2).standard_normal((2, 5, 3, 3)))


@pytest.mark.parametrize("shape, normalized", [((4, 6), (6,)), ((2, 3, 6), (6,)), ((2, 3, 6), (3, 6))])
@pytest.mark.parametrize("kwargs", [dict(), dict(bias=False), dict(elementwise_affine=False), dict(eps=1e-2)])
def test_layer_norm_matches_torch(shape, normalized, kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal(shape) * 3 + 1
    compare(nl.nn.LayerNorm(normalized, **kwargs), torch.nn.LayerNorm(normalized, **kwargs), x)


@pytest.mark.parametrize("groups, channels", [(1, 6), (3, 6), (6, 6)])
@pytest.mark.parametrize("kwargs", [dict(), dict(affine=False), dict(bias=False)])
def test_group_norm_matches_torch(groups, channels, kwargs):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, channels, 3, 2)) + 0.5
    compare(nl.nn.GroupNorm(groups, channels, **kwargs), torch.nn.GroupNorm(groups, channels, **kwargs), x)


@pytest.mark.parametrize("kwargs", [dict(), dict(eps=1e-3), dict(elementwise_affine=False)])
def test_rms_norm_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    compare(nl.nn.RMSNorm(6, **kwargs), torch.nn.RMSNorm(6, **kwargs), rng.standard_normal((2, 3, 6)))
    compare(nl.nn.RMSNorm((3, 6), **kwargs), torch.nn.RMSNorm((3, 6), **kwargs), rng.standard_normal((2, 3, 6)))


def test_norm_kinds_and_keys():
    torch = pytest.importorskip("torch")
    for ours, theirs in [(nl.nn.LayerNorm(4), torch.nn.LayerNorm(4)), (nl.nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
                         (nl.nn.RMSNorm(4), torch.nn.RMSNorm(4))]:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert ours.weight.kind == "scale" and ours.weight.init == {"scheme": "ones_"}
        if "bias" in ours.state_dict():
            assert ours.bias.kind == "shift" and ours.bias.init == {"scheme": "zeros_"}


def test_norm_ops_first_and_second_derivatives():
    rng = np.random.default_rng(6)
    x = f64(rng, 4, 3, 2)
    w, b = nl.tensor(rng.standard_normal(3) + 1, requires_grad=True), f64(rng, 3)
    w2, b2 = nl.tensor(rng.standard_normal(2) + 1, requires_grad=True), f64(rng, 2)
    rm, rv = nl.zeros(3, dtype=nl.float64), nl.ones(3, dtype=nl.float64) * 2
    cases = [
        (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b]),
        (lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), [x, w, b]),
        (lambda x: F.batch_norm(x, None, None, training=True), [x]),
        (lambda x, w, b: F.layer_norm(x, (2,), w, b), [x, w2, b2]),
        (lambda x: F.layer_norm(x, (3, 2)), [x]),
        (lambda x, w, b: F.group_norm(x, 3, w, b), [x, w, b]),
        (lambda x, w, b: F.group_norm(x, 1, w, b), [x, w, b]),
        (lambda x, w: F.rms_norm(x, (2,), w, 1e-5), [x, w2]),
        (lambda x: F.rms_norm(x, 2), [x]),
    ]
    for fn, inputs in cases:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


def test_norm_errors_name_layer_expected_and_given():
    with pytest.raises(ValueError) as e:
        nl.nn.BatchNorm2d(3)(nl.zeros(2, 5, 4, 4))
    assert str(e.value) == "BatchNorm2d(num_features=3): input has 5 channels (shape (2, 5, 4, 4))"
    with pytest.raises(ValueError, match=r"BatchNorm2d\(num_features=3\): expected a 4-D input, got shape \(2, 3\)"):
        nl.nn.BatchNorm2d(3)(nl.zeros(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nl.nn.BatchNorm1d(3)(nl.zeros(1, 3))
    nl.nn.BatchNorm1d(3).eval()(nl.zeros(1, 3))   # fine in eval mode
    with pytest.raises(ValueError, match=r"LayerNorm\(normalized_shape=\(8,\)\): input has trailing shape \(7,\)"):
        nl.nn.LayerNorm(8)(nl.zeros(2, 7))
    with pytest.raises(ValueError, match=r"GroupNorm\(num_channels=6\): input has 4 channels"):
        nl.nn.GroupNorm(2, 6)(nl.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="divisible"):
        nl.nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"RMSNorm\(normalized_shape=\(4,\)\)"):
        nl.nn.RMSNorm(4)(nl.zeros(3, 5))


def test_torch_state_dicts_load_and_give_equal_outputs():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).standard_normal((2, 4, 6)).astype(np.float32)
    for ours, theirs in [(nl.nn.LayerNorm(6), torch.nn.LayerNorm(6)), (nl.nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
                         (nl.nn.RMSNorm(6), torch.nn.RMSNorm(6)), (nl.nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4))]:
        with torch.no_grad():
            for p in theirs.parameters():
                p.copy_(torch.randn(p.shape))
        load_from_torch_and_compare(ours, theirs, x)


@pytest.mark.parametrize("make", [
    lambda lib: lib.BatchNorm1d(4), lambda lib: lib.BatchNorm2d(4, affine=False),
    lambda lib: lib.BatchNorm2d(4, bias=False, track_running_stats=False), lambda lib: lib.LayerNorm(4),
    lambda lib: lib.LayerNorm((3, 4), elementwise_affine=False), lambda lib: lib.LayerNorm(4, bias=False),
    lambda lib: lib.GroupNorm(2, 4), lambda lib: lib.GroupNorm(2, 4, affine=False),
    lambda lib: lib.GroupNorm(2, 4, bias=False)])
def test_norm_reprs_are_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nl.nn)) == repr(make(torch.nn))


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm"])
def test_normalizing_over_no_features_is_empty_and_has_empty_gradients(fn):
    x = nl.zeros(3, 2, 0, requires_grad=True)
    weight = nl.ones(2, 0, requires_grad=True)
    y = getattr(nl.nn.functional, fn)(x, (2, 0), weight)
    assert y.shape == (3, 2, 0)
    y.sum().backward()
    assert x.grad.shape == (3, 2, 0) and weight.grad.shape == (2, 0)
    torch = torch_or_skip()
    assert tuple(getattr(torch.nn.functional, fn)(torch.zeros(3, 2, 0), (2, 0)).shape) == y.shape



@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=None), dict(affine=False), dict(track_running_stats=False)])
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0)])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_of_an_empty_batch_is_empty_as_in_torch(kwargs, shape, train):
    # nothing to learn from: running statistics stay, num_batches_tracked still counts the step
    torch = pytest.importorskip("torch")
    compare(nl.nn.BatchNorm1d(3, **kwargs), torch.nn.BatchNorm1d(3, **kwargs), np.zeros(shape), train=train)


def _functional_batch_norm_of(lib, shape, dtype):
    """Training batch_norm on an all-zero input of ``shape`` with 3 channels; returns the output,
    the running statistics after it and the gradients of input, weight and bias."""
    x = lib.tensor(np.zeros(shape), dtype=dtype, requires_grad=True)
    running_mean, running_var = lib.tensor([0.5, 1.0, 1.5], dtype=dtype), lib.tensor([2.0, 3.0, 4.0], dtype=dtype)
    weight = lib.tensor([1.0, 2.0, 3.0], dtype=dtype, requires_grad=True)
    bias = lib.tensor([0.0, 1.0, 2.0], dtype=dtype, requires_grad=True)
    y = lib.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training=True)
    y.sum().backward()
    return y, running_mean, running_var, x.grad, weight.grad, bias.grad


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0), (0, 3, 2, 2)])
def test_functional_batch_norm_of_no_values_is_empty_and_learns_nothing(shape):
    y, running_mean, running_var, gx, gw, gb = _functional_batch_norm_of(nl, shape, nl.float64)
    assert y.shape == shape and y.dtype == nl.float64
    assert running_mean.tolist() == [0.5, 1.0, 1.5] and running_var.tolist() == [2.0, 3.0, 4.0]
    assert gx.shape == shape and gw.tolist() == [0.0, 0.0, 0.0] and gb.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\) for an input of 3 channels, "
                                         r"got \(4,\)"):
        F.batch_norm(nl.zeros(*shape), None, None, nl.ones(4), training=True)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0)])
def test_functional_batch_norm_of_no_values_matches_torch(shape):
    torch = torch_or_skip()
    ours = _functional_batch_norm_of(nl, shape, nl.float64)
    theirs = _functional_batch_norm_of(torch, shape, torch.float64)
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1)])
def test_group_norm_refuses_one_value_per_group_as_torch_does(shape):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        torch.nn.GroupNorm(3, 3)(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"group_norm: expected more than 1 value per group, got input of shape "
                                         r"\(1, 3"):
        nl.nn.GroupNorm(3, 3)(nl.zeros(*shape))


ONE_VALUE_PER_GROUP = [((1, 3), 3), ((1, 2, 1), 2), ((1, 3, 1, 1), 3), ((1, 1), 1)]


@pytest.mark.parametrize("shape,num_groups", ONE_VALUE_PER_GROUP)
def test_functional_group_norm_refuses_one_value_per_group(shape, num_groups):
    x = nl.tensor(np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape))
    with pytest.raises(ValueError, match=r"group_norm: expected more than 1 value per group, got input of shape "
                                         rf"\({shape[0]}, {shape[1]}.* with num_groups={num_groups}"):
        F.group_norm(x, num_groups)


@pytest.mark.parametrize("shape,num_groups", ONE_VALUE_PER_GROUP)
def test_functional_group_norm_one_value_rule_is_torchs(shape, num_groups):
    torch = torch_or_skip()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.functional.group_norm(torch.zeros(shape), num_groups)


def test_functional_group_norm_takes_num_groups_as_an_int():
    for bad in (2.0, True, "2"):
        with pytest.raises(TypeError, match=f"group_norm: num_groups must be an int, got {type(bad).__name__}"):
            F.group_norm(nl.zeros(2, 4), bad)
    assert F.group_norm(nl.tensor([[1.0, 2.0, 3.0]]), 1).shape == (1, 3)   # three values in the one group


@pytest.mark.parametrize("shape", [(2, 3), (1, 3, 2)])
def test_group_norm_of_groups_with_one_value_per_sample_matches_torch(shape):
    torch = pytest.importorskip("torch")
    compare(nl.nn.GroupNorm(3, 3), torch.nn.GroupNorm(3, 3), np.random.default_rng(0).standard_normal(shape))


def test_group_norm_without_affine_takes_other_channel_counts_as_torch_does():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    with pytest.warns(UserWarning, match=r"GroupNorm\(num_channels=4\): input has 6 channels .*unused when affine=False"):
        out = nl.nn.GroupNorm(2, 4, affine=False)(nl.tensor(x))
    np.testing.assert_allclose(out.data, torch.nn.GroupNorm(2, 4, affine=False)(torch.tensor(x)).numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"GroupNorm\(num_channels=4\): input has 6 channels"):
        nl.nn.GroupNorm(2, 4)(nl.tensor(x))


@pytest.mark.parametrize("name, ours, theirs, n_bias", [
    ("layer_norm", lambda x, b: F.layer_norm(x, (5,), None, b), lambda t, x, b: t.nn.functional.layer_norm(x, (5,), None, b), 5),
    ("group_norm", lambda x, b: F.group_norm(x, 3, None, b), lambda t, x, b: t.nn.functional.group_norm(x, 3, t.ones(3, dtype=x.dtype), b), 3),
    ("instance_norm", lambda x, b: F.instance_norm(x, bias=b), lambda t, x, b: t.nn.functional.instance_norm(x, bias=b), 3),
    ("batch_norm", lambda x, b: F.batch_norm(x, None, None, None, b, training=True),
     lambda t, x, b: t.nn.functional.batch_norm(x, None, None, None, b, training=True), 3),
    ("batch_norm_eval", lambda x, b: F.batch_norm(x, nl.zeros(3, dtype=x.dtype), nl.ones(3, dtype=x.dtype) * 2, None, b),
     lambda t, x, b: t.nn.functional.batch_norm(x, t.zeros(3, dtype=x.dtype), t.ones(3, dtype=x.dtype) * 2, None, b), 3),
    ("batch_norm_relu", lambda x, b: F.batch_norm_relu(x, None, None, None, b, training=True),
     lambda t, x, b: t.relu(t.nn.functional.batch_norm(x, None, None, None, b, training=True)), 3),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bias_without_a_weight_gets_its_gradient_as_in_torch(name, ours, theirs, n_bias, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3, 5)).astype(dtype), rng.standard_normal(n_bias).astype(dtype)
    x, bias = nl.tensor(a, requires_grad=True), nl.tensor(b, requires_grad=True)
    tx, tbias = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (ours(x, bias) ** 2).sum().backward()
    (theirs(torch, tx, tbias) ** 2).sum().backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert bias.grad is not None, f"{name}: the bias got no gradient"
    np.testing.assert_allclose(bias.grad.data, tbias.grad.numpy(), **tol)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), **tol)


@pytest.mark.parametrize("make", [lambda: nl.nn.BatchNorm1d(3), lambda: nl.nn.BatchNorm2d(3),
                                  lambda: nl.nn.InstanceNorm1d(3, track_running_stats=True)])
def test_a_checkpoint_without_num_batches_tracked_loads_as_in_torch(make):
    # Checkpoints written before PyTorch counted batches lack the count; PyTorch loads them
    # and keeps the layer's own count. Every other missing key is still refused.
    layer = make()
    layer.num_batches_tracked.data[...] = 5
    state = {k: v.numpy() + 1 for k, v in layer.state_dict().items() if k != "num_batches_tracked"}
    result = layer.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(layer.num_batches_tracked.data) == 5
    np.testing.assert_array_equal(layer.running_var.numpy(), np.full(3, 2.0, np.float32))
    model = nl.nn.Sequential(nl.nn.Linear(2, 3), make())
    state = {k: v for k, v in model.state_dict().items() if k != "1.num_batches_tracked"}
    assert model.load_state_dict(state).missing_keys == []
    del state["1.running_mean"]
    with pytest.raises(RuntimeError, match="missing keys: 1.running_mean$"):
        model.load_state_dict(state)


def test_rms_norm_takes_its_input_by_pytorchs_name():
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((2, 4))
    layer, torch_layer = nl.nn.RMSNorm(4).double(), torch.nn.RMSNorm(4).double()
    np.testing.assert_allclose(layer(x=nl.tensor(x)).detach().numpy(),
                               torch_layer(x=torch.tensor(x)).detach().numpy(), rtol=1e-12)
