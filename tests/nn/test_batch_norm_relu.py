"""BatchNorm + ReLU fused (F.batch_norm_relu, BatchNormReLU1d/2d, fuse_batch_norm_relu): the bytes
of the two layers one after the other, forward, backward and running statistics; second
derivatives; PyTorch's values; and a model rewrite that changes no number."""
import copy

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite import nn
from nnlite.nn import functional as F


def _inputs(shape, dtype, affine, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = nl.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = nl.tensor(rng.standard_normal(c).astype(dtype), requires_grad=True) if affine else None
    b = nl.tensor(rng.standard_normal(c).astype(dtype), requires_grad=True) if affine else None
    running = (nl.tensor(rng.standard_normal(c).astype(dtype)), nl.tensor((rng.random(c) + 0.5).astype(dtype)))
    return x, w, b, running


def _run(fused, shape, dtype, affine, training):
    """Output, gradients of x, w, b and the running statistics after one call and backward."""
    x, w, b, (rm, rv) = _inputs(shape, dtype, affine)
    if fused:
        y = F.batch_norm_relu(x, rm, rv, w, b, training, 0.1, 1e-5)
    else:
        y = F.relu(F.batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5))
    probe = nl.tensor(np.random.default_rng(1).standard_normal(shape).astype(dtype))
    (y * probe).sum().backward()
    grads = [t.grad.data for t in (x, w, b) if t is not None]
    return [y.data] + grads + [rm.data, rv.data], y


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4), (1, 3, 1, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_is_relu_of_batch_norm_bit_for_bit(shape, dtype, affine, training):
    plain, _ = _run(False, shape, dtype, affine, training)
    fused, y = _run(True, shape, dtype, affine, training)
    assert y.grad_fn.name == "BatchNormReLUBackward"
    assert [a.tobytes() for a in fused] == [a.tobytes() for a in plain]
    assert (fused[0] == 0).any() and (fused[0] > 0).any()   # both sides of the kink were crossed


def test_an_empty_batch_gives_an_empty_output_and_zero_gradients():
    x, w, b, (rm, rv) = _inputs((0, 3, 4), "float32", True)
    y = F.batch_norm_relu(x, rm, rv, w, b, training=True)
    assert y.shape == (0, 3, 4)
    y.sum().backward()
    assert w.grad.data.tolist() == [0, 0, 0] and b.grad.data.tolist() == [0, 0, 0]


@pytest.mark.parametrize("training", [True, False])
def test_second_derivatives_match_finite_differences_and_the_plain_pair(training):
    x, w, b, (rm, rv) = _inputs((3, 2, 5), "float64", True, seed=4)

    def fused(x, w, b):
        return F.batch_norm_relu(x, rm.detach().clone(), rv.detach().clone(), w, b, training)

    def plain(x, w, b):
        return F.relu(F.batch_norm(x, rm.detach().clone(), rv.detach().clone(), w, b, training))

    assert nl.autograd.gradcheck(fused, (x, w, b))
    assert nl.autograd.gradgradcheck(fused, (x, w, b))
    probe = nl.tensor(np.random.default_rng(5).standard_normal((3, 2, 5)))
    second = []
    for f in (fused, plain):
        gx, = nl.grad((f(x, w, b) * probe).sum(), [x], create_graph=True)
        second.append([g.data for g in nl.grad((gx * gx).sum(), [x, w, b])])
    for got, want in zip(*second):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_relu_matches_torch(training):
    torch = torch_or_skip()
    x, w, b, (rm, rv) = _inputs((4, 3, 5, 5), "float64", True, seed=6)
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    trm, trv = torch.tensor(rm.data), torch.tensor(rv.data)
    y = F.batch_norm_relu(x, rm, rv, w, b, training, 0.1, 1e-5)
    ty = torch.relu(torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, 0.1, 1e-5))
    probe = np.random.default_rng(7).standard_normal(y.shape)
    (y * nl.tensor(probe)).sum().backward()
    (ty * torch.tensor(probe)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm.data, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.data, trv.numpy(), rtol=1e-12)


# ------------------------------------------------------------------ the layers -----

def _net():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 6), nn.BatchNorm1d(6, momentum=None), nn.ReLU(),
                         nn.Linear(6, 3), nn.BatchNorm1d(3, affine=False, track_running_stats=False),
                         nn.ReLU())


def test_fuse_batch_norm_relu_is_explicit_and_changes_no_number():
    nl.manual_seed(3)
    plain = _net()
    model = copy.deepcopy(plain)
    keys, weight, running_mean = list(model.state_dict()), model[1].weight, model[1].running_mean
    assert nn.fuse_batch_norm_relu(model) is model
    assert [type(m).__name__ for m in model] == [
        "Conv2d", "BatchNormReLU2d", "Identity", "Flatten", "Linear", "BatchNormReLU1d", "Identity",
        "Linear", "BatchNormReLU1d", "Identity"]
    assert list(model.state_dict()) == keys
    assert model[1].weight is weight and model[1].running_mean is running_mean   # the same objects
    assert (model[5].momentum, model[8].affine, model[8].track_running_stats) == (None, False, False)
    x = nl.randn(5, 2, 5, 5)
    for step in range(2):   # training: outputs, gradients and the running statistics move alike
        outs = []
        for m in (plain, model):
            m.zero_grad()
            y = m(x)
            (y * y).sum().backward()
            outs.append([y.data] + [p.grad.data for p in m.parameters()] + [v.data for v in m.state_dict().values()])
        assert [a.tobytes() for a in outs[0]] == [a.tobytes() for a in outs[1]], step
    plain.eval()
    model.eval()
    assert model(x).data.tobytes() == plain(x).data.tobytes()


def test_fuse_batch_norm_relu_leaves_hooked_pairs_and_subclasses_alone():
    class MyBatchNorm(nn.BatchNorm1d):
        pass

    model = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU(), MyBatchNorm(3), nn.ReLU(), nn.BatchNorm1d(3), nn.ReLU())
    model[5].register_forward_hook(lambda m, args, out: None)
    nn.fuse_batch_norm_relu(model)
    assert [type(m).__name__ for m in model] == [
        "BatchNormReLU1d", "Identity", "MyBatchNorm", "ReLU", "BatchNorm1d", "ReLU"]


def test_fused_layers_check_their_input_as_batch_norm_does():
    with pytest.raises(ValueError, match=r"BatchNormReLU2d\(num_features=3\): expected a 4-D input, "
                                         r"got shape \(2, 3\)"):
        nn.BatchNormReLU2d(3)(nl.randn(2, 3))
    with pytest.raises(ValueError, match=r"BatchNormReLU1d\(num_features=3\): input has 4 channels"):
        nn.BatchNormReLU1d(3)(nl.randn(2, 4))


def test_from_batch_norm_keeps_every_buffer_and_its_persistence():
    bn = nn.BatchNorm2d(3)
    bn.register_buffer("extra", nl.zeros(3))
    bn.register_buffer("scratch", nl.ones(2), persistent=False)
    fused = nn.BatchNormReLU2d.from_batch_norm(bn)
    assert list(fused.state_dict()) == list(bn.state_dict())
    assert [name for name, _ in fused.named_buffers()] == [name for name, _ in bn.named_buffers()]
    assert fused.scratch is bn.scratch and "scratch" not in fused.state_dict()
    with pytest.raises(TypeError, match="BatchNormReLU1d.from_batch_norm: expected a BatchNorm1d, got BatchNorm2d"):
        nn.BatchNormReLU1d.from_batch_norm(bn)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_runs_as_the_two_operations(half):
    """float16 and bfloat16 (storage and inference) compute in float32 and round: ReLU must see
    the rounded output. The first output, -1e-8 in float32, is -0 in float16, which ReLU keeps."""
    if half == "bfloat16":
        pytest.importorskip("ml_dtypes")
    dtype = np.float16 if half == "float16" else nl.bfloat16
    x = nl.tensor(np.array([[-1e-4, 1.0, 0.5], [0.25, -1.0, 2.0]], np.float32).astype(dtype).reshape(2, 3, 1))
    rm, rv = nl.tensor(np.zeros(3, dtype)), nl.tensor(np.ones(3, dtype))
    w = nl.tensor(np.array([1e-4, 1.0, 1.0], np.float32).astype(dtype))
    with nl.no_grad():
        plain = F.relu(F.batch_norm(x, rm, rv, w, training=False))
        fused = F.batch_norm_relu(x, rm, rv, w, training=False)
    assert fused.dtype == plain.dtype and fused.data.tobytes() == plain.data.tobytes()
    if half == "float16":
        assert fused.data[0, 0, 0] == 0 and np.signbit(fused.data[0, 0, 0])   # the -0 ReLU kept


def test_errors_name_the_fused_function():
    with pytest.raises(ValueError, match=r"batch_norm_relu: expected input of shape \(N, C, \*\), got \(3,\)"):
        F.batch_norm_relu(nl.randn(3), None, None, training=True)
    with pytest.raises(ValueError, match=r"batch_norm_relu: weight must have shape \(3,\)"):
        F.batch_norm_relu(nl.randn(0, 3), None, None, nl.ones(2), training=True)
