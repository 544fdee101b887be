"""nn.init: fans and gains as PyTorch computes them, moments within statistical bounds, records."""
import doctest
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.nn import init

SHAPES = [(64, 256), (256, 64), (32, 16, 3, 3), (48, 8, 5)]


def fans(shape):
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def check_moments(values, mean, var, uniform=False):
    """Sample mean and variance within 6 standard errors of the theory."""
    n = values.size
    kurtosis = 1.8 if uniform else 3.0   # fourth moment / var**2
    assert abs(values.mean() - mean) < 6 * math.sqrt(var / n)
    assert abs(values.var() - var) < 6 * var * math.sqrt((kurtosis - 1) / n)


def test_doctests_run():
    failures, tried = doctest.testmod(init, verbose=False)
    assert tried > 10 and failures == 0


@pytest.mark.parametrize("name", ["linear", "conv", "pooling", "embedding", "loss", "container"])
def test_layer_docstring_examples_run(name):
    import importlib
    module = importlib.import_module(f"nnlite.nn.{name}")
    failures, _ = doctest.testmod(module, verbose=False)
    assert failures == 0


def test_fans_match_torch():
    torch = pytest.importorskip("torch")
    for shape in SHAPES + [(3, 7), (5, 4, 2, 2, 2)]:
        got = init._calculate_fan_in_and_fan_out(nl.empty(*shape))
        assert got == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape)) == fans(shape)
    with pytest.raises(ValueError, match="fewer than 2"):
        init._calculate_fan_in_and_fan_out(nl.empty(5))


def test_gains_match_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swishy")


@pytest.mark.parametrize("shape", SHAPES)
def test_moments_of_each_scheme(shape):
    fan_in, fan_out = fans(shape)
    nl.manual_seed(1)
    w = nl.empty(*shape, dtype=nl.float64)
    cases = [
        (lambda: init.xavier_uniform_(w, gain=2.0), 4.0 * 2 / (fan_in + fan_out), True),
        (lambda: init.xavier_normal_(w), 2 / (fan_in + fan_out), False),
        (lambda: init.kaiming_uniform_(w, nonlinearity="relu"), 2 / fan_in, True),
        (lambda: init.kaiming_uniform_(w, a=math.sqrt(5)), 1 / (3 * fan_in), True),
        (lambda: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), 2 / fan_out, False),
        (lambda: init.kaiming_normal_(w, a=0.1), 2 / (1 + 0.01) / fan_in, False),
        (lambda: init.lecun_uniform_(w), 1 / fan_in, True),
        (lambda: init.lecun_normal_(w), 1 / fan_in, False),
        (lambda: init.uniform_(w, -0.3, 0.3), 0.36 / 12, True),
    ]
    for fill, var, uniform in cases:
        fill()
        check_moments(w.data, 0.0, var, uniform)
    init.normal_(w, mean=0.5, std=0.2)
    check_moments(w.data, 0.5, 0.04)


def test_uniform_bounds_are_exact():
    w = init.xavier_uniform_(nl.empty(100, 200))
    bound = math.sqrt(6 / 300)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.95 * bound
    w = init.kaiming_uniform_(nl.empty(100, 200), nonlinearity="relu")
    assert np.abs(w.data).max() <= math.sqrt(6 / 200)


def test_trunc_normal_moments_and_bounds():
    truncnorm = pytest.importorskip("scipy.stats").truncnorm   # a test-time oracle only
    w = init.trunc_normal_(nl.empty(200, 200, dtype=nl.float64), mean=0.1, std=0.5, a=-0.4, b=0.9)
    assert w.data.min() >= -0.4 and w.data.max() <= 0.9
    dist = truncnorm((-0.4 - 0.1) / 0.5, (0.9 - 0.1) / 0.5, loc=0.1, scale=0.5)
    check_moments(w.data, dist.mean(), dist.var(), uniform=True)



def test_trunc_normal_follows_the_truncated_normal_cdf():
    """Kolmogorov-Smirnov distance to F(x) = (Phi(x') - Phi(a')) / (Phi(b') - Phi(a')), Phi from math.erf."""
    mean, std, a, b = 0.3, 2.0, -1.0, 4.5
    w = init.trunc_normal_(nl.empty(40000, dtype=nl.float64), mean=mean, std=std, a=a, b=b,
                           generator=nl.Generator().manual_seed(5))
    x = np.sort(w.data)
    assert x[0] >= a and x[-1] <= b

    def phi(v):
        return 0.5 * (1.0 + math.erf((v - mean) / (std * math.sqrt(2.0))))

    cdf = np.array([(phi(v) - phi(a)) / (phi(b) - phi(a)) for v in x])
    n = x.size
    distance = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert distance < 1.63 / math.sqrt(n)   # the 1% critical value; a clipped normal is ~0.26 away


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (6, 2, 2, 2), (4, 4)])
def test_orthogonal_rows_or_columns_orthonormal(shape):
    w = init.orthogonal_(nl.empty(*shape), gain=1.0).data.reshape(shape[0], -1).astype(np.float64)
    small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(small, np.eye(small.shape[0]), atol=1e-5)
    w2 = init.orthogonal_(nl.empty(4, 4), gain=3.0).data
    np.testing.assert_allclose(w2 @ w2.T, 9 * np.eye(4), atol=1e-4)
    with pytest.raises(ValueError, match="2 or more"):
        init.orthogonal_(nl.empty(4))


def test_eye_and_dirac_match_torch():
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(init.eye_(nl.empty(3, 5)).data, torch.nn.init.eye_(torch.empty(3, 5)).numpy())
    for shape, groups in [((4, 2, 3, 3), 2), ((3, 3, 5), 1), ((2, 4, 3, 3, 3), 1), ((6, 3, 3, 3), 2)]:
        ours = init.dirac_(nl.empty(*shape), groups=groups).data
        np.testing.assert_array_equal(ours, torch.nn.init.dirac_(torch.empty(shape), groups=groups).numpy())
    # A Dirac-initialised convolution passes its input through.
    conv = nl.nn.Conv2d(3, 3, 3, padding=1, bias=False)
    init.dirac_(conv.weight)
    x = nl.randn(2, 3, 5, 5)
    np.testing.assert_allclose(conv(x).data, x.data, atol=1e-6)
    with pytest.raises(ValueError, match="3, 4 or 5-D"):
        init.dirac_(nl.empty(3, 3))
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(nl.empty(3, 3, 3))


def test_same_seed_same_weights_and_generator_isolation():
    nl.manual_seed(123)
    a = nl.nn.Linear(20, 10)
    nl.manual_seed(123)
    b = nl.nn.Linear(20, 10)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    c = nl.nn.Linear(20, 10)
    assert not np.array_equal(a.weight.data, c.weight.data)
    # An explicit generator gives its own stream and leaves the global one alone.
    nl.manual_seed(5)
    expected = nl.rand(3).data
    nl.manual_seed(5)
    w1 = init.normal_(nl.empty(4, 4), generator=nl.Generator(9)).data.copy()
    assert np.array_equal(nl.rand(3).data, expected)
    w2 = init.normal_(nl.empty(4, 4), generator=nl.Generator(9)).data
    np.testing.assert_array_equal(w1, w2)


def test_records_and_no_graph():
    p = nl.nn.Parameter(nl.empty(8, 4))
    init.kaiming_normal_(p, a=0.2, mode="fan_out", nonlinearity="leaky_relu")
    assert p.init == {"scheme": "kaiming_normal_", "a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"}
    assert p._ctx is None and p.requires_grad
    init.orthogonal_(p, gain=2.0)
    assert p.init == {"scheme": "orthogonal_", "gain": 2.0}
    init.trunc_normal_(p, std=0.02)
    assert p.init == {"scheme": "trunc_normal_", "mean": 0.0, "std": 0.02, "a": -2.0, "b": 2.0}
    init.constant_(p, 0.3)
    assert p.init == {"scheme": "constant_", "val": 0.3} and np.all(p.data == np.float32(0.3))
    lin = nl.nn.Linear(5, 2)
    assert lin.weight.init["scheme"] == "kaiming_uniform_" and lin.weight.init["a"] == pytest.approx(math.sqrt(5))
    assert lin.bias.init == {"scheme": "uniform_", "a": -1 / math.sqrt(5), "b": 1 / math.sqrt(5)}
    with pytest.raises(ValueError, match="fan_in"):
        init.kaiming_uniform_(p, mode="fan_middle")


def _relu_stack_second_moment(std_fn, depth=20, width=256):
    nl.manual_seed(0)
    x = nl.randn(512, width, dtype=nl.float64)
    start = float((x.data ** 2).mean())
    with nl.no_grad():
        for _ in range(depth):
            layer = nl.nn.Linear(width, width, bias=False).double()
            std_fn(layer.weight)
            x = nl.relu(layer(x))
    return float((x.data ** 2).mean()) / start


def test_he_init_keeps_activation_scale_through_20_relu_layers():
    ratio = _relu_stack_second_moment(lambda w: init.kaiming_normal_(w, nonlinearity="relu"))
    # ReLU output's second moment is half the pre-activation variance: He init keeps it ~1/2 of E[x^2].
    assert 0.25 < ratio < 1.0
    vanish = _relu_stack_second_moment(lambda w: init.normal_(w, std=0.5 / math.sqrt(256)))
    assert vanish < 1e-10


def test_layer_defaults_have_torch_distribution():
    torch = pytest.importorskip("torch")
    nl.manual_seed(0)
    torch.manual_seed(0)
    for ours, theirs in [(nl.nn.Linear(300, 200), torch.nn.Linear(300, 200)),
                         (nl.nn.Conv2d(8, 64, 3, groups=2), torch.nn.Conv2d(8, 64, 3, groups=2)),
                         (nl.nn.Conv1d(16, 64, 5), torch.nn.Conv1d(16, 64, 5))]:
        for name in ("weight", "bias"):
            a = getattr(ours, name).data.astype(np.float64)
            b = getattr(theirs, name).detach().numpy().astype(np.float64)
            bound = np.abs(b).max()
            assert np.abs(a).max() <= bound * 1.01 + 1e-7 and np.abs(a).max() > 0.9 * bound
            check_moments(a, 0.0, b.var() if b.size > 1000 else (1.0 / 3) * bound ** 2, uniform=True)


@pytest.mark.parametrize("name", ["zeros_", "ones_", "constant_", "uniform_", "normal_", "trunc_normal_",
                                  "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                                  "orthogonal_", "eye_", "dirac_", "calculate_gain"])
def test_signatures_are_torch(name):
    torch = pytest.importorskip("torch")
    import inspect

    def params(fn):
        return [(k, v.default) for k, v in inspect.signature(fn).parameters.items()]
    assert params(getattr(init, name)) == params(getattr(torch.nn.init, name))
