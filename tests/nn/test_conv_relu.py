"""Conv2d and Conv1d + ReLU fused (F.conv2d_relu, F.conv1d_relu, ConvReLU2d/1d, fuse_conv_relu): the
bytes of the two layers one after the other, forward and backward, on every convolution algorithm;
second derivatives; PyTorch's values; and a model rewrite that changes no number."""
import copy

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite import nn
from nnlite.nn import functional as F

CASES = [   # (x shape, weight shape, stride, padding, groups): shifted, im2col, pointwise, depthwise x2, 1-D
    ((3, 2, 9, 9), (4, 2, 3, 3), 1, 1, 1),
    ((2, 4, 9, 9), (6, 4, 3, 3), 2, 1, 1),
    ((2, 4, 5, 5), (3, 4, 1, 1), 1, 0, 1),
    ((2, 4, 7, 7), (4, 1, 3, 3), 1, 1, 4),
    ((2, 4, 7, 7), (4, 1, 3, 3), 2, 1, 4),
    ((3, 2, 7, 7), (4, 2, 3, 3), 1, "same", 1),
]


def _run(fused, case, dtype, with_bias, seed=0):
    x_shape, w_shape, stride, padding, groups = case
    rng = np.random.default_rng(seed)
    x = nl.tensor(rng.standard_normal(x_shape).astype(dtype), requires_grad=True)
    w = nl.tensor(rng.standard_normal(w_shape).astype(dtype), requires_grad=True)
    b = nl.tensor(rng.standard_normal(w_shape[0]).astype(dtype), requires_grad=True) if with_bias else None
    if fused:
        y = F.conv2d_relu(x, w, b, stride, padding, 1, groups)
    else:
        y = F.relu(F.conv2d(x, w, b, stride, padding, 1, groups))
    probe = nl.tensor(np.random.default_rng(1).standard_normal(y.shape).astype(dtype))
    (y * probe).sum().backward()
    return [y.data] + [t.grad.data for t in (x, w, b) if t is not None], y


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_relu_is_relu_of_conv2d_bit_for_bit(case, dtype, with_bias):
    plain, _ = _run(False, case, dtype, with_bias)
    fused, y = _run(True, case, dtype, with_bias)
    assert y.grad_fn.name == "Conv2dReLUBackward"
    assert [a.tobytes() for a in fused] == [a.tobytes() for a in plain]
    assert (fused[0] == 0).any() and (fused[0] > 0).any()


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 0, 2, 2), (1, "same", 1, 1)])
def test_conv1d_relu_is_relu_of_conv1d_bit_for_bit(stride, padding, dilation, groups):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s) for s in ((3, 4, 11), (6, 4 // groups, 3), (6,))]
    outs = []
    for fused in (False, True):
        x, w, b = (nl.tensor(a, requires_grad=True) for a in arrays)
        args = (x, w, b, stride, padding, dilation, groups)
        y = F.conv1d_relu(*args) if fused else F.relu(F.conv1d(*args))
        (y * y).sum().backward()
        outs.append([y.data, x.grad.data, w.grad.data, b.grad.data])
    assert [a.tobytes() for a in outs[0]] == [a.tobytes() for a in outs[1]]


def test_an_unbatched_input_is_fused_too():
    x, w = nl.randn(2, 6, 6), nl.randn(3, 2, 3, 3)
    assert F.conv2d_relu(x, w).data.tobytes() == F.relu(F.conv2d(x, w)).data.tobytes()
    x, w = nl.randn(2, 9), nl.randn(3, 2, 3)
    assert F.conv1d_relu(x, w).data.tobytes() == F.relu(F.conv1d(x, w)).data.tobytes()


def test_second_derivatives_match_finite_differences():
    rng = np.random.default_rng(2)
    x = nl.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    w = nl.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True)

    def fused(x, w, b):
        return F.conv2d_relu(x, w, b, padding=1)

    assert nl.autograd.gradcheck(fused, (x, w, b))
    assert nl.autograd.gradgradcheck(fused, (x, w, b))


def test_conv2d_relu_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in ((2, 3, 8, 8), (5, 3, 3, 3), (5,))]
    x, w, b = (nl.tensor(a, requires_grad=True) for a in arrays)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in arrays)
    y = F.conv2d_relu(x, w, b, stride=2, padding=1)
    ty = torch.relu(torch.nn.functional.conv2d(tx, tw, tb, stride=2, padding=1))
    probe = rng.standard_normal(y.shape)
    (y * nl.tensor(probe)).sum().backward()
    (ty * torch.tensor(probe)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_runs_as_the_two_operations(half):
    """float16 and bfloat16 compute in float32 and round: ReLU must see the rounded output (a
    float32 -1e-8 is a float16 -0, which ReLU keeps)."""
    if half == "bfloat16":
        pytest.importorskip("ml_dtypes")
    dtype = np.float16 if half == "float16" else nl.bfloat16
    x = nl.tensor(np.array([[[[-1e-4, 1.0]]]], np.float32).astype(dtype))
    w = nl.tensor(np.array([[[[1e-4]]]], np.float32).astype(dtype))
    with nl.no_grad():
        plain, fused = F.relu(F.conv2d(x, w)), F.conv2d_relu(x, w)
    assert fused.dtype == plain.dtype and fused.data.tobytes() == plain.data.tobytes()
    if half == "float16":
        assert fused.data[0, 0, 0, 0] == 0 and np.signbit(fused.data[0, 0, 0, 0])


def test_errors_name_the_fused_function():
    with pytest.raises(ValueError, match=r"conv2d_relu: expected 4-D input"):
        F.conv2d_relu(nl.randn(3, 4), nl.randn(1, 1, 1, 1))


# ------------------------------------------------------------------ the layers -----

def _lenet():
    return nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding_mode="reflect", padding=1), nn.ReLU(), nn.Flatten(2, 3),
                         nn.Conv1d(6, 2, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 24, 5))


def test_fuse_conv_relu_is_explicit_and_changes_no_number():
    nl.manual_seed(4)
    plain = _lenet()
    model = copy.deepcopy(plain)
    keys, weight = list(model.state_dict()), model[0].weight
    assert nn.fuse_conv_relu(model) is model
    assert [type(m).__name__ for m in model] == [
        "ConvReLU2d", "Identity", "MaxPool2d", "ConvReLU2d", "Identity", "Flatten", "ConvReLU1d", "Identity",
        "Flatten", "Linear"]
    assert list(model.state_dict()) == keys and model[0].weight is weight
    assert model[3].padding_mode == "reflect" and repr(model[3]) == repr(plain[3]).replace("Conv2d", "ConvReLU2d")
    x = nl.randn(3, 1, 14, 14)
    outs = []
    for m in (plain, model):
        y = m(x)
        (y * y).sum().backward()
        outs.append([y.data] + [p.grad.data for p in m.parameters()])
    assert [a.tobytes() for a in outs[0]] == [a.tobytes() for a in outs[1]]


def test_fuse_conv_relu_leaves_hooked_pairs_and_subclasses_alone():
    class MyConv(nn.Conv2d):
        pass

    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU(), MyConv(1, 1, 1), nn.ReLU(), nn.Conv2d(1, 1, 1), nn.ReLU())
    model[4].register_full_backward_hook(lambda m, gi, go: None)
    nn.fuse_conv_relu(model)
    assert [type(m).__name__ for m in model] == ["ConvReLU2d", "Identity", "MyConv", "ReLU", "Conv2d", "ReLU"]
    with pytest.raises(TypeError, match="ConvReLU2d.from_conv: expected a Conv2d, got Linear"):
        nn.ConvReLU2d.from_conv(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="ConvReLU1d.from_conv: expected a Conv1d, got Conv2d"):
        nn.ConvReLU1d.from_conv(nn.Conv2d(2, 2, 1))


def test_fusing_draws_no_random_numbers():
    """The fused layers' constructors make initial weights that are thrown away: they must not move
    the global generator, or fusing would change every later random number (dropout, data order)."""
    def build():
        nl.manual_seed(7)
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4), nn.ReLU(),
                             nn.BatchNorm1d(4), nn.ReLU())

    build()
    plain_next = nl.randn(5).data
    model = build()
    nn.fuse_batch_norm_relu(nn.fuse_linear_relu(nn.fuse_conv_relu(model)))
    assert [type(m).__name__ for m in model] == ["ConvReLU2d", "Identity", "Flatten", "LinearReLU", "Identity",
                                                 "BatchNormReLU1d", "Identity"]
    assert nl.randn(5).data.tobytes() == plain_next.tobytes()
