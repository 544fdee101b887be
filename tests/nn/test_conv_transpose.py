"""ConvTranspose1d/2d and F.conv_transpose1d/2d: PyTorch's values, gradients, reprs and sizes;
the adjoint of conv2d; finite differences to second order; ONNX; bad input."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.nn import functional as F

from helpers import torch_or_skip

# kernel, stride, padding, output_padding, groups, dilation
CASES = [
    (3, 2, 1, 1, 1, 1),
    (3, 1, 0, 0, 1, 1),
    ((2, 3), (2, 1), (0, 1), (1, 0), 2, 1),
    (3, 1, 1, 1, 1, 2),            # output_padding >= stride, allowed by the larger dilation
    (4, 3, 2, 2, 1, 1),
    (1, 2, 0, 0, 4, 1),            # one-by-one, depthwise-like groups
]
IDS = ["k3s2p1op1", "k3s1", "rect-g2", "dilated-op", "k4s3p2op2", "k1-g4"]


def _one_d(v):
    return v if isinstance(v, int) else v[1]


def _pair_of_layers(torch, dims, case):
    k, s, p, op, g, d = case if dims == 2 else tuple(v if i == 4 else _one_d(v) for i, v in enumerate(case))
    ours = (nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose1d)(
        4, 8, k, stride=s, padding=p, output_padding=op, groups=g, dilation=d).double()
    theirs = (torch.nn.ConvTranspose2d if dims == 2 else torch.nn.ConvTranspose1d)(
        4, 8, k, stride=s, padding=p, output_padding=op, groups=g, dilation=d).double()
    theirs.load_state_dict({key: torch.tensor(v.data) for key, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch(dims, case):
    torch = torch_or_skip()
    ours, theirs = _pair_of_layers(torch, dims, case)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 5, 6) if dims == 2 else (2, 4, 7))
    xo, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    assert yo.shape == tuple(yt.shape)
    g = rng.standard_normal(yo.shape)
    yo.backward(nl.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_second_derivatives_match_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((2, 3, 11, 11))
    xo, wo = nl.tensor(x, requires_grad=True), nl.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yo = F.conv_transpose2d(xo, wo, stride=2)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, stride=2)
    gx, gw = nl.grad((yo * yo * nl.tensor(g)).sum(), [xo, wo], create_graph=True)
    gxt, gwt = torch.autograd.grad((yt * yt * torch.tensor(g)).sum(), [xt, wt], create_graph=True)
    second = nl.grad((gx * gx).sum() + gw.sum(), [xo, wo])
    second_t = torch.autograd.grad((gxt * gxt).sum() + gwt.sum(), [xt, wt])
    for a, b in zip(second, second_t):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-10, atol=1e-10)


def test_it_is_the_adjoint_of_conv2d():
    """<conv2d(x, W), y> = <x, conv_transpose2d(y, W)> for the same geometry."""
    rng = np.random.default_rng(3)
    w = nl.tensor(rng.standard_normal((6, 4, 3, 3)))          # conv2d: 4 -> 6 channels
    x = nl.tensor(rng.standard_normal((2, 4, 9, 9)))
    y = nl.tensor(rng.standard_normal((2, 6, 5, 5)))
    left = float((F.conv2d(x, w, stride=2, padding=1) * y).sum().item())
    right = float((x * F.conv_transpose2d(y, w, stride=2, padding=1)).sum().item())
    assert abs(left - right) < 1e-10 * max(1.0, abs(left))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences(case):
    k, s, p, op, g, d = case
    rng = np.random.default_rng(4)
    x = nl.tensor(rng.standard_normal((1, 4, 3, 4)), requires_grad=True)
    kh, kw = (k, k) if isinstance(k, int) else k
    w = nl.tensor(rng.standard_normal((4, 2, kh, kw)), requires_grad=True)   # 2 output channels a group
    b = nl.tensor(rng.standard_normal(2 * g), requires_grad=True)

    def fn(x, w, b):
        return F.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    assert gradcheck(fn, [x, w, b])
    assert gradgradcheck(lambda x, w: fn(x, w, b) * fn(x, w, b), [x, w], atol=1e-6, rtol=1e-5)


def test_output_size_picks_the_output_padding():
    torch = torch_or_skip()
    ours, theirs = _pair_of_layers(torch, 2, (3, 2, 1, 0, 1, 1))
    x = np.random.default_rng(5).standard_normal((1, 4, 6, 6))
    for size in ([11, 11], [12, 12], [1, 8, 12, 11]):
        np.testing.assert_allclose(ours(nl.tensor(x), output_size=size).data,
                                   theirs(torch.tensor(x), output_size=size).detach().numpy(), atol=1e-12)
    with pytest.raises(ValueError, match=r"requested an output size of \(13, 11\), but valid sizes range "
                                         r"from 11 to 12"):
        ours(nl.tensor(x), output_size=(13, 11))
    with pytest.raises(ValueError, match="for a 4-D input, output_size must have 2 or 4 elements"):
        ours(nl.tensor(x), output_size=(8, 12, 12))
    with pytest.raises(TypeError, match="output_size must hold ints"):
        ours(nl.tensor(x), output_size=(11.0, 11))
    assert ours(nl.tensor(x[0]), output_size=(8, 12, 12)).shape == (8, 12, 12)   # unbatched: 2 or 3


def test_unbatched_float32_and_default_init():
    nl.manual_seed(0)
    layer = nn.ConvTranspose2d(3, 6, 4, stride=2, padding=1, groups=3)
    assert layer.weight.shape == (3, 2, 4, 4) and layer.weight.kind == "weight"
    bound = 1 / np.sqrt(2 * 4 * 4)            # fan_in: the weight's second dim times the window
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.8 * bound
    assert np.abs(layer.bias.data).max() <= bound
    x = nl.randn(3, 5, 5)
    y = layer(x)
    assert y.shape == (6, 10, 10) and y.dtype == nl.float32
    np.testing.assert_allclose(y.data, layer(x.reshape(1, 3, 5, 5)).data[0])
    y64 = layer.double()(x.double())
    np.testing.assert_allclose(y.data, y64.data, rtol=1e-5, atol=1e-5)


def test_onnx_export(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    nl.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), groups=1, bias=False),
                          # output_padding >= stride: the input is padded first (an ONNX Pad)
                          nn.ConvTranspose2d(2, 2, 3, padding=1, output_padding=1, dilation=2))
    x = np.random.default_rng(6).standard_normal((2, 4, 5, 5)).astype(np.float32)
    path = tmp_path / "up.onnx"
    proto = nl.onnx.export(model, x, path, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("ConvTranspose") == 3 and ops.count("Pad") == 1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    for batch in (x, x[:1]):
        np.testing.assert_allclose(session.run(None, {"input": batch})[0], model(nl.tensor(batch)).data,
                                   rtol=1e-4, atol=1e-5)


def test_bad_input():
    x = nl.randn(1, 4, 5, 5)
    w = nl.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match="input has 3 channels but weight expects 4"):
        F.conv_transpose2d(nl.randn(1, 3, 5, 5), w)
    with pytest.raises(ValueError, match=r"output_padding must be smaller than either stride or dilation, got "
                                         r"output_padding=\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="groups must be a positive divisor"):
        F.conv_transpose2d(x, w, groups=3)
    with pytest.raises(TypeError, match="must share one dtype, got input float64, weight float32"):
        F.conv_transpose2d(x.double(), w)
    with pytest.raises(TypeError, match="got input float32, weight float32, bias float64"):
        F.conv_transpose2d(x, w, nl.randn(2).double())
    with pytest.raises(ValueError, match=r"stride must be positive, got \(0, 0\)"):
        F.conv_transpose2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"padding must be non-negative, got \(-1, -1\)"):
        F.conv_transpose2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="has an empty spatial dim"):
        F.conv_transpose2d(nl.randn(1, 4, 0, 5), w)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(4,\)"):
        F.conv_transpose2d(x, w, nl.randn(4))
    with pytest.raises(ValueError, match="expected 4-D input"):
        F.conv_transpose2d(nl.randn(5, 5), w)
    for bad, what in (("same", "padding"), (1.5, "stride"), (True, "stride"), ((1, 2, 3), "padding")):
        with pytest.raises(TypeError, match=rf"conv_transpose2d: {what} must be an int or a tuple of one or two"):
            F.conv_transpose2d(x, w, **{what: bad})
    with pytest.raises(TypeError, match=r"conv_transpose2d: groups must be an int, got float 1.5"):
        F.conv_transpose2d(x, w, groups=1.5)
    with pytest.raises(TypeError, match=r"conv_transpose1d: stride must be an int or a tuple of one int"):
        F.conv_transpose1d(nl.randn(1, 4, 5), nl.randn(4, 2, 3), stride=(2, 2))
    with pytest.raises(ValueError, match="which is not positive"):
        F.conv_transpose2d(nl.randn(1, 4, 1, 1), w, padding=3)
    with pytest.raises(ValueError, match='only "zeros" padding mode'):
        nn.ConvTranspose2d(4, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding must be an int or a tuple"):
        nn.ConvTranspose2d(4, 2, 3, padding="same")
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(in_channels=4\): input has 3 channels"):
        nn.ConvTranspose2d(4, 2, 3)(nl.randn(1, 3, 5, 5))


def test_flops_count_the_convolution_it_is_the_adjoint_of():
    from nnlite.analysis import flops
    up = nn.ConvTranspose2d(4, 8, 3, stride=2, groups=2)
    down = nn.Conv2d(8, 4, 3, stride=2, groups=2)
    x = nl.randn(2, 4, 5, 5)
    y = up(x)
    assert flops(up, x) == flops(down, y) == 2 * (8 // 2) * 9 * x.numel()


def test_functional_forms_take_unbatched_inputs_and_one_value_tuples_as_pytorch():
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    x2, w2 = rng.standard_normal((4, 5, 6)), rng.standard_normal((4, 3, 3, 2))
    x1, w1 = rng.standard_normal((4, 7)), rng.standard_normal((4, 3, 3))
    T = torch.nn.functional
    for ours, theirs in (
            (F.conv_transpose2d(nl.tensor(x2, dtype=nl.float64), nl.tensor(w2, dtype=nl.float64), stride=(2,)),
             T.conv_transpose2d(torch.tensor(x2), torch.tensor(w2), stride=(2,))),
            (F.conv_transpose1d(nl.tensor(x1, dtype=nl.float64), nl.tensor(w1, dtype=nl.float64), stride=2),
             T.conv_transpose1d(torch.tensor(x1), torch.tensor(w1), stride=2)),
            (F.conv2d(nl.tensor(x2, dtype=nl.float64), nl.tensor(w2.transpose(1, 0, 2, 3), dtype=nl.float64)),
             T.conv2d(torch.tensor(x2), torch.tensor(w2.transpose(1, 0, 2, 3)))),
            (F.conv1d(nl.tensor(x1[:3], dtype=nl.float64), nl.tensor(w1, dtype=nl.float64), padding=(1,)),
             T.conv1d(torch.tensor(x1[:3]), torch.tensor(w1), padding=(1,)))):
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12, atol=1e-12)
