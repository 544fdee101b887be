"""InstanceNorm1d/2d and F.instance_norm against PyTorch: statistics per sample and channel,
running statistics, unbatched input, state_dict keys, derivatives of every order."""
import warnings

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare

nn = nl.nn
F = nn.functional

SHAPES = {"InstanceNorm1d": [(4, 3, 7), (3, 7)], "InstanceNorm2d": [(2, 3, 5, 4), (3, 5, 4)]}
CASES = [(name, shape) for name, shapes in SHAPES.items() for shape in shapes]
CASE_IDS = [f"{name}-{len(shape)}d" for name, shape in CASES]
OPTIONS = [dict(), dict(affine=True), dict(affine=True, bias=False), dict(track_running_stats=True),
           dict(affine=True, track_running_stats=True, momentum=0.3, eps=1e-3),
           dict(track_running_stats=True, momentum=None)]


def _random_affine(module, seed=1):
    """Scale and shift away from 1 and 0, so a mix-up of channels shows."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return module


@pytest.mark.parametrize("name, shape", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("kwargs", OPTIONS)
@pytest.mark.parametrize("train", [True, False])
def test_instance_norm_matches_torch(name, shape, kwargs, train):
    """Outputs, input and parameter gradients, and running statistics after 3 steps (the state_dict
    is loaded into PyTorch's layer with strict=True before and compared after)."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape) * 3 + 2
    ours = _random_affine(getattr(nn, name)(3, **kwargs))
    compare(ours, getattr(torch.nn, name)(3, **kwargs), x, train=train, steps=3, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name, shape", CASES, ids=CASE_IDS)
def test_running_statistics_train_then_eval_match_torch(name, shape):
    """Training moves the running statistics by the batch average of each sample's mean and
    unbiased variance; eval then normalises with them, and leaves them alone."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    ours = _random_affine(getattr(nn, name)(3, affine=True, track_running_stats=True, momentum=0.2)).double()
    theirs = getattr(torch.nn, name)(3, affine=True, track_running_stats=True, momentum=0.2).double()
    theirs.load_state_dict({k: torch.tensor(np.asarray(v.data)) for k, v in ours.state_dict().items()}, strict=True)
    for _ in range(4):
        x = rng.standard_normal(shape) * 2 + 5
        ours(nl.tensor(x)), theirs(torch.tensor(x))
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, key).data, getattr(theirs, key).numpy(), rtol=1e-14)
    assert not np.allclose(ours.running_mean.data, 0)
    # PyTorch's InstanceNorm keeps num_batches_tracked in its state_dict but never counts with it
    assert int(ours.num_batches_tracked.data) == int(theirs.num_batches_tracked) == 0
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    before = ours.running_mean.data.copy()
    np.testing.assert_allclose(ours(nl.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-13,
                               atol=1e-14)
    np.testing.assert_array_equal(ours.running_mean.data, before)


def test_unbiased_variance_and_momentum_by_hand():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4) ** 1.5
    norm = nn.InstanceNorm1d(3, track_running_stats=True, momentum=0.25).double()
    norm(nl.tensor(x))
    np.testing.assert_allclose(norm.running_mean.data, 0.25 * x.mean(axis=2).mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(norm.running_var.data, 0.75 + 0.25 * x.var(axis=2, ddof=1).mean(axis=0), rtol=1e-15)


def test_without_running_statistics_eval_is_train():
    x = nl.randn(2, 3, 6, 6)
    norm = nn.InstanceNorm2d(3)
    assert np.array_equal(norm.train()(x).data, norm.eval()(x).data)
    y = norm(x).data
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-3)   # eps = 1e-5 against a variance near 1


def test_instance_norm_is_group_norm_with_one_channel_per_group():
    """The same Function, so the same bits, and the same backward."""
    x = nl.randn(2, 4, 3, 3)
    w, b = nl.randn(4), nl.randn(4)
    assert np.array_equal(F.instance_norm(x, weight=w, bias=b).data, F.group_norm(x, 4, w, b).data)
    assert type(F.instance_norm(nl.randn(2, 4, 5, requires_grad=True))._ctx).__name__ == "GroupNormFunction"


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_second_derivatives_match_torch(use_input_stats):
    """A Hessian-vector product through the input and the affine parameters."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    xa, wa, ba, va = (rng.standard_normal(s) for s in ((2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5)))
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)

    def loss(lib, F_, x, w, b):
        y = F_.instance_norm(x, lib.tensor(rm), lib.tensor(rv), w, b, use_input_stats=use_input_stats)
        return (y * y * y).sum()

    x, w, b = (nl.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    grads = nl.grad(loss(nl, F, x, w, b), [x, w, b], create_graph=True)
    hv = nl.grad((grads[0] * nl.tensor(va)).sum() + grads[1].sum() + grads[2].sum(), [x, w, b])
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    grads_t = torch.autograd.grad(loss(torch, torch.nn.functional, xt, wt, bt), [xt, wt, bt], create_graph=True)
    hv_t = torch.autograd.grad((grads_t[0] * torch.tensor(va)).sum() + grads_t[1].sum() + grads_t[2].sum(),
                               [xt, wt, bt])
    for ours, theirs in zip(list(grads) + list(hv), list(grads_t) + list(hv_t)):
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_gradients_against_finite_differences(use_input_stats):
    rng = np.random.default_rng(5)
    x = nl.tensor(rng.standard_normal((2, 3, 5)), requires_grad=True)
    w = nl.tensor(rng.standard_normal(3), requires_grad=True)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True)
    rm, rv = nl.tensor(rng.standard_normal(3)), nl.tensor(rng.uniform(0.5, 2.0, 3))

    def fn(x, w, b):
        return F.instance_norm(x, rm, rv, w, b, use_input_stats=use_input_stats, momentum=0.0)
    assert gradcheck(fn, [x, w, b], atol=1e-7, rtol=1e-6)
    assert gradgradcheck(lambda x, w, b: fn(x, w, b) ** 2, [x, w, b], atol=1e-6, rtol=1e-5)


def test_parameters_buffers_kinds_and_state_dict_keys():
    assert nn.InstanceNorm2d(8).num_parameters() == 0 and not list(nn.InstanceNorm2d(8).named_buffers())
    assert nn.InstanceNorm2d(8).state_dict() == {}
    norm = nn.InstanceNorm1d(4, affine=True, track_running_stats=True)
    assert [(n, p.kind) for n, p in norm.named_parameters()] == [("weight", "scale"), ("bias", "shift")]
    assert list(norm.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert norm.weight.data.tolist() == [1.0] * 4 and norm.bias.data.tolist() == [0.0] * 4
    assert [n for n, _ in nn.InstanceNorm1d(4, affine=True, bias=False).named_parameters()] == ["weight"]
    assert nn.InstanceNorm2d(2, affine=True, dtype=nl.float64).weight.dtype == nl.float64


@pytest.mark.parametrize("kwargs", [dict(), dict(affine=True, bias=False), dict(affine=True, track_running_stats=True)])
def test_state_dict_keys_and_reprs_are_torchs(kwargs):
    torch = pytest.importorskip("torch")
    for name in ("InstanceNorm1d", "InstanceNorm2d"):
        ours, theirs = getattr(nn, name)(5, **kwargs), getattr(torch.nn, name)(5, **kwargs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)


def test_float32_stays_float32():
    x = nl.randn(2, 3, 4, 4, requires_grad=True)
    norm = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    y = norm(x)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == norm.weight.grad.dtype == norm.running_var.dtype == nl.float32


def test_errors_name_the_layer_the_expected_and_the_given():
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(num_features=3\): expected a 3-D \(unbatched\) or 4-D "
                                         r"input, got shape \(2, 3, 5, 5, 1\)"):
        nn.InstanceNorm2d(3)(nl.randn(2, 3, 5, 5, 1))
    with pytest.raises(ValueError, match=r"InstanceNorm1d\(num_features=3\): expected a 2-D \(unbatched\) or 3-D "
                                         r"input, got shape \(3,\)"):
        nn.InstanceNorm1d(3)(nl.randn(3))
    with pytest.raises(ValueError, match=r"InstanceNorm1d\(num_features=3\): input has 4 channels in dim 1 "
                                         r"\(shape \(2, 4, 5\)\)"):
        nn.InstanceNorm1d(3, affine=True)(nl.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(num_features=3\): input has 2 channels in dim 0"):
        nn.InstanceNorm2d(3, track_running_stats=True)(nl.randn(2, 4, 4))
    with pytest.raises(ValueError, match=r"InstanceNorm1d\(num_features=3\): expected more than 1 spatial element "
                                         r"per channel .*got shape \(2, 3, 1\)"):
        nn.InstanceNorm1d(3)(nl.randn(2, 3, 1))
    with pytest.raises(ValueError, match=r"instance_norm: expected more than 1 spatial element per channel .*"
                                         r"got input of shape \(4, 3\)"):
        F.instance_norm(nl.randn(4, 3))
    with pytest.raises(ValueError, match=r"use_input_stats=False normalises with running_mean and running_var"):
        F.instance_norm(nl.randn(2, 3, 4), use_input_stats=False)
    # one position is enough in eval with running statistics (nothing is computed from the input)
    tracked = nn.InstanceNorm1d(3, track_running_stats=True).eval()
    assert tracked(nl.randn(2, 3, 1)).shape == (2, 3, 1)


def test_a_channel_count_that_nothing_depends_on_only_warns():
    """With affine=False and no running statistics num_features sizes nothing; PyTorch warns, so does nnlite."""
    norm = nn.InstanceNorm1d(4)
    with pytest.warns(UserWarning, match=r"InstanceNorm1d\(num_features=4\): input has 3 channels in dim 1"):
        y = norm(nl.randn(2, 3, 5))
    assert y.shape == (2, 3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norm(nl.randn(2, 4, 5))


def test_functional_signature_is_torchs():
    torch = pytest.importorskip("torch")
    import inspect
    ours, theirs = inspect.signature(F.instance_norm), inspect.signature(torch.nn.functional.instance_norm)
    assert [(p.name, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.default) for p in theirs.parameters.values()]


def test_empty_batches_and_channels_and_integer_input():
    norm = nn.InstanceNorm2d(3, track_running_stats=True)
    x = nl.randn(0, 3, 4, 4, requires_grad=True)
    y = norm(x)
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 4, 4)
    np.testing.assert_array_equal(norm.running_mean.data, np.zeros(3))   # nothing to average: unchanged
    np.testing.assert_array_equal(norm.running_var.data, np.ones(3))
    assert F.instance_norm(nl.randn(2, 0, 4, 4)).shape == (2, 0, 4, 4)
    assert F.group_norm(nl.randn(0, 4, 5), 2).shape == (0, 4, 5)
    with pytest.raises(TypeError, match="instance_norm: input must be a floating-point tensor, got int64"):
        F.instance_norm(nl.tensor(np.ones((2, 3, 4), np.int64)))
