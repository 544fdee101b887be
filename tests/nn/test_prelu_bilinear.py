"""PReLU and Bilinear against PyTorch: values, gradients, second derivatives, state dicts, errors."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import f64

nn = nl.nn
F = nn.functional


def _against_torch(fn, torch_fn, arrays, seed=0, second=True):
    """fn(*arrays) equals torch_fn(*arrays) in float64, and so do the first and second derivatives.

    First: the vector-Jacobian product with a random ``g`` for every input. Second: the
    gradient of the sum of the squared first derivatives, which differentiates through them.
    """
    torch = pytest.importorskip("torch")
    ours = [nl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = fn(*ours), torch_fn(*theirs)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float64
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    firsts = nl.grad(y, ours, grad_outputs=nl.tensor(g), create_graph=True)
    firsts_t = torch.autograd.grad(yt, theirs, grad_outputs=torch.tensor(g), create_graph=True)
    for i, (a, b) in enumerate(zip(firsts, firsts_t)):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-11, atol=1e-12, err_msg=f"input {i}")
    if not second:
        return
    s = sum((a * a).sum() for a in firsts)
    s_t = sum((b * b).sum() for b in firsts_t)
    seconds = nl.grad(s, ours, allow_unused=True)
    seconds_t = torch.autograd.grad(s_t, theirs, allow_unused=True)
    for i, (a, b) in enumerate(zip(seconds, seconds_t)):
        a = np.zeros(arrays[i].shape) if a is None else a.data
        b = np.zeros(arrays[i].shape) if b is None else b.numpy()
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12, err_msg=f"second derivative, input {i}")


# ------------------------------------------------------------------- PReLU ---

PRELU_CASES = [((), 1), ((1,), 1), ((7,), 1), ((5, 1), 1), ((4, 3), 1), ((4, 3), 3), ((2, 3, 5), 3),
               ((2, 3, 4, 5), 1), ((2, 3, 4, 5), 3), ((1, 1, 1, 1), 1), ((3, 5, 1, 2), 5)]


@pytest.mark.parametrize("shape, num_parameters", PRELU_CASES)
def test_prelu_values_gradients_and_second_derivatives_match_torch(shape, num_parameters):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(shape) * 10 + num_parameters)
    x = rng.standard_normal(shape)
    weight = rng.uniform(-0.5, 1.5, num_parameters)
    _against_torch(F.prelu, torch.nn.functional.prelu, [x, weight])
    # Exact zeros, where PReLU has its kink: values and first derivatives are torch's there too.
    x.flat[::3] = 0.0
    _against_torch(F.prelu, torch.nn.functional.prelu, [x, weight], second=False)


def test_prelu_takes_a_0_d_slope_and_its_derivative_at_0_is_the_slope_with_torchs_mixed_second():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    _against_torch(F.prelu, torch.nn.functional.prelu, [rng.standard_normal((3, 4)), np.array(0.3)])
    x = nl.tensor([0.0, -2.0, 3.0], requires_grad=True)
    a = nl.tensor([0.25], requires_grad=True)
    F.prelu(x, a).sum().backward()
    assert x.grad.data.tolist() == [0.25, 0.25, 1.0] and a.grad.data.tolist() == [-2.0]
    # The mixed second derivatives at x = 0 are PyTorch's, 0 for both (d/da (dy/dx) and
    # d/dx (dy/da)), though dy/dx at 0 is the slope; away from 0 they are 1 where x < 0.
    x.grad = None
    dy_dx = nl.grad(F.prelu(x, a).sum(), [x], create_graph=True)[0]
    assert nl.grad(dy_dx[0], [a], retain_graph=True)[0].data.tolist() == [0.0]
    assert nl.grad(dy_dx[1], [a])[0].data.tolist() == [1.0]
    dy_da = nl.grad(F.prelu(x, a).sum(), [a], create_graph=True)[0]
    assert nl.grad(dy_da.sum(), [x])[0].data.tolist() == [0.0, 1.0, 0.0]


def test_prelu_gradcheck_and_gradgradcheck_in_float64():
    rng = np.random.default_rng(2)
    away_from_kink = lambda *shape: nl.tensor(np.sign(rng.standard_normal(shape)) *  # noqa: E731
                                              rng.uniform(0.2, 2.0, shape), requires_grad=True)
    for x, a in [(away_from_kink(2, 3, 4), f64(rng, 3)), (away_from_kink(5), f64(rng, 1)),
                 (away_from_kink(4, 2), f64(rng, 1))]:
        assert gradcheck(F.prelu, [x, a])
        # prelu is piecewise linear; tanh after it gives the second derivative something to check
        assert gradgradcheck(lambda x, a: F.prelu(x, a).tanh(), [x, a])
        assert gradgradcheck(F.prelu, [x, a])


@pytest.mark.parametrize("num_parameters, shape", [(1, (6,)), (1, (2, 4, 3, 3)), (4, (2, 4, 3, 3)), (4, (5, 4))])
def test_prelu_module_matches_torch_and_loads_into_it(num_parameters, shape):
    torch = pytest.importorskip("torch")
    layer = nn.PReLU(num_parameters, init=0.1)
    layer.weight.data[:] = np.linspace(-0.3, 0.9, num_parameters)
    reference = torch.nn.PReLU(num_parameters, init=0.1)
    assert list(layer.state_dict()) == list(reference.state_dict()) == ["weight"]
    reference.load_state_dict({k: torch.tensor(v.data) for k, v in layer.state_dict().items()}, strict=True)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    y = layer(nl.tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, reference(torch.tensor(x)).detach().numpy())
    # the other way: torch's state dict into nnlite
    back = nn.PReLU(num_parameters)
    back.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    np.testing.assert_array_equal(back(nl.tensor(x)).data, y.data)


def test_prelu_parameter_init_kind_and_repr():
    layer = nn.PReLU()
    assert layer.weight.shape == (1,) and layer.weight.data.tolist() == [0.25]
    assert layer.weight.kind == "scale" and layer.weight.dtype == np.float32
    assert layer.weight.init["scheme"] == "constant_"
    assert nn.PReLU(3, init=-0.5).weight.data.tolist() == [-0.5] * 3
    assert nn.PReLU(2, dtype=nl.float64).weight.dtype == np.float64
    assert repr(nn.PReLU()) == "PReLU(num_parameters=1)"
    assert repr(nn.PReLU(8, init=0.1)) == "PReLU(num_parameters=8)"


def test_prelu_reprs_equal_torchs():
    torch = pytest.importorskip("torch")
    for args in [(), (8,), (3, 0.1)]:
        assert repr(nn.PReLU(*args)) == repr(torch.nn.PReLU(*args))


def test_prelu_keeps_float32_and_float64():
    for dtype in (nl.float32, nl.float64):
        layer = nn.PReLU(3, dtype=dtype)
        x = nl.randn(2, 3, 4, dtype=dtype, requires_grad=True)
        y = layer(x)
        y.sum().backward()
        assert y.dtype == x.grad.dtype == layer.weight.grad.dtype == np.dtype(dtype)


def test_prelu_slopes_are_left_out_of_weight_decay():
    # He et al. (2015) train the slopes without weight decay, which would pull them towards
    # 0 (a plain ReLU); kind "scale" puts them in param_groups_by_kind's undecayed group.
    model = nn.Sequential(nn.Linear(4, 3), nn.PReLU(3))
    groups = nl.optim.param_groups_by_kind(model, weight_decay=0.1)
    decayed, undecayed = ([id(p) for p in g["params"]] for g in groups)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert id(model[1].weight) in undecayed and id(model[0].weight) in decayed
    # With a zero gradient, AdamW's step is the decay alone: the weight shrinks, the slopes stay.
    optimizer = nl.optim.AdamW(groups, lr=0.5)
    (model(nl.randn(2, 4)) * 0.0).sum().backward()
    weight, slopes = model[0].weight.data.copy(), model[1].weight.data.copy()
    optimizer.step()
    np.testing.assert_allclose(model[0].weight.data, weight * (1 - 0.5 * 0.1), rtol=1e-6)
    np.testing.assert_array_equal(model[1].weight.data, slopes)


def test_prelu_errors_name_what_was_expected_and_given():
    with pytest.raises(ValueError, match=r"^PReLU\(num_parameters=3\): input has 4 channels in dim 1 "
                                         r"\(shape \(2, 4, 5\)\)$"):
        nn.PReLU(3)(nl.randn(2, 4, 5))
    with pytest.raises(ValueError, match=r"^PReLU\(num_parameters=3\): a 1-D input has no channel dim and "
                                         r"takes 1 slope, not 3 \(shape \(3,\)\)$"):
        nn.PReLU(3)(nl.randn(3))        # torch refuses this too: a 1-D input is one channel
    with pytest.raises(ValueError, match=r"^prelu: weight has 3 slopes, one per channel, but input has 2"):
        F.prelu(nl.randn(4, 2), nl.randn(3))
    with pytest.raises(ValueError, match=r"^prelu: weight has 3 slopes, but a 0-D input"):
        F.prelu(nl.randn(()), nl.randn(3))
    with pytest.raises(ValueError, match=r"^prelu: weight must be 0-D or 1-D .* got shape \(3, 1\)"):
        F.prelu(nl.randn(2, 3), nl.randn(3, 1))
    with pytest.raises(TypeError, match=r"^prelu: input is float64 but weight is float32"):
        nn.PReLU()(nl.randn(2, 3, dtype=nl.float64))
    with pytest.raises(TypeError, match="init"):
        nn.PReLU(1, init="0.25")
    with pytest.raises(ValueError, match="num_parameters"):
        nn.PReLU(-1)


# ---------------------------------------------------------------- Bilinear ---

# (leading dims, in1_features, in2_features, out_features). No in2_features = 0 here: torch
# cannot reshape such an input; nnlite's result for it is checked on its own below.
BILINEAR_CASES = [((), 3, 4, 5), ((1,), 1, 1, 1), ((6,), 3, 4, 5), ((2, 3), 2, 7, 1), ((2, 1, 3), 5, 1, 3),
                  ((1, 1), 1, 3, 2), ((0,), 3, 2, 4)]


@pytest.mark.parametrize("leading, in1, in2, out", BILINEAR_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_values_gradients_and_second_derivatives_match_torch(leading, in1, in2, out, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(in1 * 100 + in2 * 10 + out)
    arrays = [rng.standard_normal(leading + (in1,)), rng.standard_normal(leading + (in2,)),
              rng.standard_normal((out, in1, in2))] + ([rng.standard_normal(out)] if bias else [])
    _against_torch(F.bilinear, torch.nn.functional.bilinear, arrays)


def test_bilinear_is_x1_a_x2_plus_b_for_every_output():
    rng = np.random.default_rng(4)
    x1, x2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 5))
    weight, bias = rng.standard_normal((6, 4, 5)), rng.standard_normal(6)
    y = F.bilinear(nl.tensor(x1), nl.tensor(x2), nl.tensor(weight), nl.tensor(bias)).data
    np.testing.assert_allclose(y, np.einsum("...i,kij,...j->...k", x1, weight, x2) + bias, rtol=1e-12)
    # no features in input2: every product is empty, the output is the bias
    empty = F.bilinear(nl.randn(3, 2), nl.randn(3, 0), nl.randn(4, 2, 0), nl.ones(4)).data
    assert empty.shape == (3, 4) and np.all(empty == 1.0)


def test_bilinear_gradcheck_and_gradgradcheck_in_float64():
    rng = np.random.default_rng(5)
    for leading in [(), (4,), (2, 3)]:
        x1, x2 = f64(rng, *leading, 3), f64(rng, *leading, 2)
        weight, bias = f64(rng, 4, 3, 2), f64(rng, 4)
        assert gradcheck(F.bilinear, [x1, x2, weight, bias])
        assert gradgradcheck(F.bilinear, [x1, x2, weight, bias])
        assert gradgradcheck(lambda *t: F.bilinear(*t).tanh(), [x1, x2, weight])


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_module_loads_into_torch_with_the_same_outputs(bias):
    torch = pytest.importorskip("torch")
    nl.manual_seed(6)
    layer = nn.Bilinear(4, 3, 5, bias=bias)
    reference = torch.nn.Bilinear(4, 3, 5, bias=bias)
    assert list(layer.state_dict()) == list(reference.state_dict()) == ["weight", "bias"][:1 + bias]
    reference.load_state_dict({k: torch.tensor(v.data) for k, v in layer.state_dict().items()}, strict=True)
    rng = np.random.default_rng(6)
    x1, x2 = rng.standard_normal((2, 7, 4)).astype(np.float32), rng.standard_normal((2, 7, 3)).astype(np.float32)
    y = layer(nl.tensor(x1), nl.tensor(x2))
    assert y.dtype == np.float32 and y.shape == (2, 7, 5)
    np.testing.assert_allclose(y.data, reference(torch.tensor(x1), torch.tensor(x2)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    back = nn.Bilinear(4, 3, 5, bias=bias)
    back.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    np.testing.assert_array_equal(back(nl.tensor(x1), nl.tensor(x2)).data, y.data)


def test_bilinear_parameters_init_and_repr():
    nl.manual_seed(7)
    layer = nn.Bilinear(16, 3, 40)
    assert layer.weight.shape == (40, 16, 3) and layer.bias.shape == (40,)
    assert (layer.weight.kind, layer.bias.kind) == ("weight", "bias")
    assert layer.num_parameters() == 40 * 16 * 3 + 40
    # PyTorch's init: U(-1/sqrt(in1_features), 1/sqrt(in1_features)) for weight and bias
    bound = 1 / np.sqrt(16)
    for p in (layer.weight, layer.bias):
        assert p.init["scheme"] == "uniform_" and np.abs(p.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound and abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.01
    assert layer.weight.dtype == np.float32 and nn.Bilinear(2, 3, 4, dtype=nl.float64).bias.dtype == np.float64
    assert repr(layer) == "Bilinear(in1_features=16, in2_features=3, out_features=40, bias=True)"
    assert list(nn.Bilinear(2, 3, 4, bias=False).state_dict()) == ["weight"]


def test_bilinear_reprs_equal_torchs():
    torch = pytest.importorskip("torch")
    for args in [(2, 3, 4), (5, 1, 2, False)]:
        assert repr(nn.Bilinear(*args)) == repr(torch.nn.Bilinear(*args))


def test_bilinear_keeps_float32_and_float64():
    for dtype in (nl.float32, nl.float64):
        layer = nn.Bilinear(3, 2, 4, dtype=dtype)
        x1, x2 = nl.randn(5, 3, dtype=dtype, requires_grad=True), nl.randn(5, 2, dtype=dtype)
        y = layer(x1, x2)
        y.sum().backward()
        assert y.dtype == x1.grad.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype == np.dtype(dtype)


def test_bilinear_errors_name_what_was_expected_and_given():
    layer = nn.Bilinear(3, 4, 5)
    with pytest.raises(ValueError, match=r"^Bilinear\(in1_features=3, in2_features=4\): input1 has 2 features, "
                                         r"expected 3 \(shape \(8, 2\)\)$"):
        layer(nl.randn(8, 2), nl.randn(8, 4))
    with pytest.raises(ValueError, match=r"^Bilinear\(in1_features=3, in2_features=4\): input2 has 3 features, "
                                         r"expected 4 \(shape \(8, 3\)\)$"):
        layer(nl.randn(8, 3), nl.randn(8, 3))
    with pytest.raises(ValueError, match=r"input1 has no features"):
        layer(nl.randn(()), nl.randn(4))
    with pytest.raises(ValueError, match=r"^bilinear: input1 and input2 must have the same leading dims, got "
                                         r"shapes \(2, 3\) and \(3, 4\)$"):
        layer(nl.randn(2, 3), nl.randn(3, 4))      # torch does not broadcast them either
    with pytest.raises(ValueError, match=r"^bilinear: weight \(5, 3, 4\) expects 4 features in input2, input2 has 2"):
        F.bilinear(nl.randn(2, 3), nl.randn(2, 2), layer.weight)
    with pytest.raises(ValueError, match=r"^bilinear: weight must be 3-D"):
        F.bilinear(nl.randn(2, 3), nl.randn(2, 4), nl.randn(3, 4))
    with pytest.raises(ValueError, match=r"^bilinear: bias must have shape \(5,\).* got \(4,\)"):
        F.bilinear(nl.randn(2, 3), nl.randn(2, 4), layer.weight, nl.randn(4))
    with pytest.raises(TypeError, match=r"^bilinear: all tensors must have one dtype, got input1 float64"):
        layer(nl.randn(2, 3, dtype=nl.float64), nl.randn(2, 4))
    with pytest.raises(ValueError, match=r"in1_features must be > 0.*in1_features=0"):
        nn.Bilinear(0, 3, 4)


def test_prelu_keeps_infinities_and_refuses_a_fractional_count():
    torch = pytest.importorskip("torch")
    x = np.array([np.inf, -np.inf, 0.0, -0.0, 2.0, -2.0])
    ours = F.prelu(nl.tensor(x), nl.tensor(np.array([0.25]))).data
    theirs = torch.nn.functional.prelu(torch.tensor(x), torch.tensor([0.25], dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert np.array_equal(np.signbit(ours), np.signbit(theirs))   # -0.0 * slope is -0.0 in both
    # at a NaN input the gradient is the slope's, as PyTorch's
    a = nl.tensor(np.array([np.nan, -1.0]), requires_grad=True)
    F.prelu(a, nl.tensor(np.array([0.25]))).sum().backward()
    at = torch.tensor([np.nan, -1.0], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.prelu(at, torch.tensor([0.25], dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(a.grad.data, at.grad.numpy())
    with pytest.raises(TypeError, match=r"PReLU: num_parameters must be an int, got float 2.5"):
        nn.PReLU(2.5)
