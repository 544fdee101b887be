"""DepthwiseSeparableConv2d and Bottleneck: parameter counts from their docstrings, torch equality."""
import re

import numpy as np
import pytest

import nnlite as nl
from helpers import compare_output_and_grads, torch_or_skip
from nnlite.nn.blocks import Bottleneck, DepthwiseSeparableConv2d


def _separable_count(c_in, c_out, k, bias=True):
    return c_in * k * k + c_in * c_out + (c_in + c_out if bias else 0)


def _bottleneck_count(c_in, b, c_out):
    projection = c_in * c_out + 2 * c_out if c_in != c_out else 0
    return c_in * b + 9 * b * b + b * c_out + 2 * (b + b + c_out) + projection


def test_docstring_counts_equal_num_parameters():
    doc = DepthwiseSeparableConv2d.__doc__
    sep, plain = map(int, re.search(r"separable = 288 \+ 32 \+ 2048 \+ 64 = (\d+), plain = 18432 \+ 64 = (\d+)",
                                    doc).groups())
    assert sep == DepthwiseSeparableConv2d(32, 64, 3).num_parameters() == _separable_count(32, 64, 3)
    assert plain == nl.nn.Conv2d(32, 64, 3).num_parameters()
    doc = Bottleneck.__doc__
    bottleneck, plain = map(int, re.search(r"bottleneck = 16384 \+ 36864 \+ 16384 \+ 768 = (\d+),\s+"
                                           r"plain = 2 \* \(589824 \+ 512\) = (\d+)", doc).groups())
    assert bottleneck == Bottleneck(256, 64).num_parameters() == _bottleneck_count(256, 64, 256)
    basic = nl.nn.Sequential(nl.nn.Conv2d(256, 256, 3, bias=False), nl.nn.BatchNorm2d(256),
                             nl.nn.Conv2d(256, 256, 3, bias=False), nl.nn.BatchNorm2d(256))
    assert plain == basic.num_parameters()


@pytest.mark.parametrize("args", [(3, 5, 3, 1, 0, True), (4, 2, 3, 2, 1, False), (2, 6, 1, 1, 0, True)])
def test_separable_count_formula(args):
    c_in, c_out, k, stride, padding, bias = args
    m = DepthwiseSeparableConv2d(c_in, c_out, k, stride, padding, bias)
    assert m.num_parameters() == _separable_count(c_in, c_out, k, bias)
    assert m.depthwise.weight.shape == (c_in, 1, k, k) and m.depthwise.groups == c_in


@pytest.mark.parametrize("args", [(16, 4, None, 1), (8, 4, 16, 2), (16, 4, 16, 1)])
def test_bottleneck_count_formula(args):
    c_in, b, c_out, stride = args
    m = Bottleneck(c_in, b, c_out, stride)
    c_out = 4 * b if c_out is None else c_out
    expected = _bottleneck_count(c_in, b, c_out)
    if stride != 1 and c_in == c_out:
        expected += c_in * c_out + 2 * c_out
    assert m.num_parameters() == expected
    assert (m.downsample is None) == (stride == 1 and c_in == c_out)


def _load(m, t):
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})


def _torch_blocks():
    """The two blocks written with torch.nn (defined on first use: torch is optional)."""
    torch = torch_or_skip()
    tnn = torch.nn

    class TorchSeparable(tnn.Module):
        def __init__(self, c_in, c_out, k, stride=1, padding=0, bias=True):
            super().__init__()
            self.depthwise = tnn.Conv2d(c_in, c_in, k, stride, padding, groups=c_in, bias=bias)
            self.pointwise = tnn.Conv2d(c_in, c_out, 1, bias=bias)

        def forward(self, x):
            return self.pointwise(self.depthwise(x))

    class TorchBottleneck(tnn.Module):
        """torchvision's Bottleneck, written out (same names)."""

        def __init__(self, c_in, b, c_out, stride):
            super().__init__()
            self.conv1, self.bn1 = tnn.Conv2d(c_in, b, 1, bias=False), tnn.BatchNorm2d(b)
            self.conv2, self.bn2 = tnn.Conv2d(b, b, 3, stride, 1, bias=False), tnn.BatchNorm2d(b)
            self.conv3, self.bn3 = tnn.Conv2d(b, c_out, 1, bias=False), tnn.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = tnn.Sequential(tnn.Conv2d(c_in, c_out, 1, stride, bias=False), tnn.BatchNorm2d(c_out))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = torch.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    return TorchSeparable, TorchBottleneck


@pytest.mark.parametrize("args", [(3, 5, 3, 1, 1, True), (4, 2, 3, 2, 0, False)])
def test_separable_matches_torch(rng, args):
    torch = torch_or_skip()
    m, t = DepthwiseSeparableConv2d(*args).double(), _torch_blocks()[0](*args).double()
    _load(m, t)
    x = rng.standard_normal((2, args[0], 7, 6))
    xn, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    compare_output_and_grads(m, t, xn, xt, m(xn), t(xt))


@pytest.mark.parametrize("args", [(8, 2, 8, 1), (4, 2, 8, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_bottleneck_matches_torch(rng, args, training):
    tnn = torch_or_skip().nn
    torch = torch_or_skip()
    m, t = Bottleneck(*args).double(), _torch_blocks()[1](*args).double()
    for mod in t.modules():     # non-trivial BatchNorm state, so eval mode really uses it
        if isinstance(mod, tnn.BatchNorm2d):
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_()
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
    _load(m, t)
    m.train(training)
    t.train(training)
    x = rng.standard_normal((3, args[0], 5, 5))
    xn, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    compare_output_and_grads(m, t, xn, xt, m(xn), t(xt))
    tb = dict(t.named_buffers())
    for n, b in m.named_buffers():      # running statistics after one training step
        np.testing.assert_allclose(b.data, tb[n].numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


def test_kinds():
    kinds = {n: p.kind for n, p in Bottleneck(4, 2, 8, 2).named_parameters()}
    assert kinds["conv1.weight"] == "weight" and kinds["bn1.weight"] == "scale" and kinds["bn1.bias"] == "shift"
    assert kinds["downsample.0.weight"] == "weight"


def test_errors():
    with pytest.raises(ValueError, match=r"DepthwiseSeparableConv2d\(in_channels=3\): expected input "
                                         r"\(batch, 3, height, width\), got 4 channels \(shape \(2, 4, 5, 5\)\)"):
        DepthwiseSeparableConv2d(3, 5, 3)(nl.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match=r"Bottleneck\(in_channels=8\): expected input .* got 3 dims"):
        Bottleneck(8, 2)(nl.randn(8, 5, 5))
