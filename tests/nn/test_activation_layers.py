"""Activation modules and Dropout against PyTorch; dropout's masks and statistics."""
import inspect
import warnings

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare

nn = nl.nn
F = nn.functional


@pytest.mark.parametrize("name, args", [("ReLU", ()), ("GELU", ()), ("GELU", ("tanh",)), ("Tanh", ()),
                                        ("Sigmoid", ()), ("SiLU", ()), ("Softmax", (1,)), ("Softmax", (-1,)),
                                        ("LogSoftmax", (1,)), ("LogSoftmax", (0,)), ("LeakyReLU", ()),
                                        ("LeakyReLU", (0.2,)), ("ELU", ()), ("ELU", (0.5,)), ("SELU", ())])
def test_activation_modules_match_torch(name, args):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4, 5)) * 3
    compare(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x)
    compare(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x, train=False)


def test_activation_reprs_and_errors():
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")


def test_dropout_statistics_and_scaling():
    nl.manual_seed(0)
    x = nl.ones(200, 500)
    y = nn.Dropout(0.3)(x).data
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 6 * np.sqrt(0.21 / kept.size)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01


def test_dropout_eval_identity_and_edge_probabilities():
    x = nl.randn(4, 5)
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert np.all(nn.Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2, inplace=False)"


def test_dropout_seeded_and_generator():
    nl.manual_seed(7)
    a = F.dropout(nl.ones(100), 0.5).data
    nl.manual_seed(7)
    b = F.dropout(nl.ones(100), 0.5).data
    np.testing.assert_array_equal(a, b)
    c = F.dropout(nl.ones(100), 0.5, generator=nl.Generator(1)).data
    d = F.dropout(nl.ones(100), 0.5, generator=nl.Generator(1)).data
    np.testing.assert_array_equal(c, d)


def test_dropout_gradient_is_the_mask():
    x = nl.tensor(np.random.default_rng(1).standard_normal((6, 7)), requires_grad=True)
    nl.manual_seed(3)
    y = F.dropout(x, 0.4)
    y.backward(nl.ones(6, 7, dtype=nl.float64))
    np.testing.assert_allclose(x.grad.data, (y.data != 0) / 0.6)
    gen = nl.Generator(4)
    state = gen.get_state()

    def fn(x):  # the same mask on every call
        gen.set_state(state)
        return F.dropout(x, 0.4, generator=gen)
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_keeps_its_saved_part_only_when_recorded(approximate, monkeypatch):
    """Phi(x) (or tanh(u)) is kept for backward only when the result enters a graph: not under
    no_grad, and not for an input that wants no gradient; the gradient is the same bits either way."""
    from nnlite._kernels import K
    kernel, saves = K.gelu_forward, []

    def gelu_forward(x, approximate, save=False):
        saves.append(save)
        return kernel(x, approximate, save)

    monkeypatch.setattr(K, "gelu_forward", gelu_forward)
    data = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    x = nl.tensor(data, requires_grad=True)
    F.gelu(x, approximate=approximate).sum().backward()
    F.gelu(nl.tensor(data), approximate=approximate)
    with nl.no_grad():
        F.gelu(x, approximate=approximate)
    assert saves == [True, False, False]
    want = K.gelu_backward(np.ones_like(data), data, approximate)   # erf (or tanh) computed again
    assert x.grad.data.tobytes() == want.tobytes()


# ------------------------------------------------------- leaky_relu, elu, selu ---
# Each case: (id, nnlite function, torch function's name, keyword arguments). Negative
# slopes and alphas are allowed, as in PyTorch.
KINKED = [("leaky_relu", F.leaky_relu, "leaky_relu", {}),
          ("leaky_relu_0.2", F.leaky_relu, "leaky_relu", {"negative_slope": 0.2}),
          ("leaky_relu_0", F.leaky_relu, "leaky_relu", {"negative_slope": 0.0}),
          ("leaky_relu_-0.5", F.leaky_relu, "leaky_relu", {"negative_slope": -0.5}),
          ("elu", F.elu, "elu", {}),
          ("elu_0.5", F.elu, "elu", {"alpha": 0.5}),
          ("elu_-1.5", F.elu, "elu", {"alpha": -1.5}),
          ("selu", F.selu, "selu", {})]
CASE_IDS = [c[0] for c in KINKED]


def _with_kinks(rng, shape=(4, 6)):
    """Standard normals scaled up, with exact zeros of both signs and far-left values among them."""
    x = rng.standard_normal(shape) * 3
    x.flat[:4] = [0.0, -0.0, -40.0, 1e-300]
    return x


def _first_and_second(fn, x, v, w):
    """Output, the gradient of sum(v * fn(x)), and the gradient of sum(w * that gradient)."""
    y = fn(x)
    (g,) = nl.grad((y * v).sum(), x, create_graph=True)
    if not g.requires_grad:      # a gradient that does not depend on x: the second derivative is 0
        return y, g, np.zeros_like(x.data)
    (gg,) = nl.grad((g * w).sum(), x)
    return y, g, gg.data


@pytest.mark.parametrize("name, fn, torch_name, kwargs", KINKED, ids=CASE_IDS)
def test_value_gradient_and_second_derivative_match_torch(name, fn, torch_name, kwargs):
    """float64, exact zeros included: PyTorch's slope at 0 (the left one) and its second derivative 0 there."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    data, v, w = _with_kinks(rng), rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    y, g, gg = _first_and_second(lambda t: fn(t, **kwargs), nl.tensor(data, requires_grad=True), nl.tensor(v),
                                 nl.tensor(w))
    xt = torch.tensor(data, requires_grad=True)
    yt = getattr(torch.nn.functional, torch_name)(xt, **kwargs)
    (gt,) = torch.autograd.grad((yt * torch.tensor(v)).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad((gt * torch.tensor(w)).sum(), xt)
    assert y.dtype == nl.float64
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-14, atol=0)
    if kwargs.get("alpha", 1.0) >= 0:   # with a negative alpha PyTorch passes a zero's sign through;
        # nnlite gives alpha * (e^0 - 1), the same zero with the other sign
        np.testing.assert_array_equal(np.signbit(y.data), np.signbit(yt.detach().numpy()))
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=1e-14, atol=0)
    np.testing.assert_allclose(gg, ggt.numpy(), rtol=1e-14, atol=0)


@pytest.mark.parametrize("name, fn, torch_name, kwargs", KINKED, ids=CASE_IDS)
def test_hessian_vector_product_through_a_layer_matches_torch(name, fn, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xa, wa, va = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def loss(lib_fn, x, w):
        h = lib_fn(x @ w, **kwargs)
        return (h * h * (x @ w)).sum()

    w = nl.tensor(wa, requires_grad=True)
    (g,) = nl.grad(loss(fn, nl.tensor(xa), w), w, create_graph=True)
    (hv,) = nl.grad((g * nl.tensor(va)).sum(), w)
    wt = torch.tensor(wa, requires_grad=True)
    (gt,) = torch.autograd.grad(loss(getattr(torch.nn.functional, torch_name), torch.tensor(xa), wt), wt,
                                create_graph=True)
    (hvt,) = torch.autograd.grad((gt * torch.tensor(va)).sum(), wt)
    np.testing.assert_allclose(hv.data, hvt.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, fn, torch_name, kwargs", KINKED, ids=CASE_IDS)
def test_gradients_against_finite_differences(name, fn, torch_name, kwargs):
    """Away from the kink at 0 (where finite differences straddle two slopes), first and second order."""
    rng = np.random.default_rng(2)
    data = rng.uniform(0.05, 3.0, (3, 5)) * rng.choice([-1.0, 1.0], (3, 5))
    x = nl.tensor(data, requires_grad=True)
    assert gradcheck(lambda t: fn(t, **kwargs), [x], atol=1e-7, rtol=1e-6)
    assert gradgradcheck(lambda t: fn(t, **kwargs) * t, [x], atol=1e-6, rtol=1e-5)
    # third order through ELU's output: the second derivative is itself differentiable
    assert gradgradcheck(lambda t: nl.grad(fn(t, **kwargs).sum(), t, create_graph=True)[0] * t, [x],
                         atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name, fn, torch_name, kwargs", KINKED, ids=CASE_IDS)
def test_float32_stays_float32(name, fn, torch_name, kwargs):
    data = _with_kinks(np.random.default_rng(3)).astype(np.float32)
    x = nl.tensor(data, requires_grad=True)
    y = fn(x, **kwargs)
    (g,) = nl.grad(y.sum(), x, create_graph=True)
    assert y.dtype == nl.float32 and g.dtype == nl.float32
    if g.requires_grad:
        assert nl.grad(g.sum(), x)[0].dtype == nl.float32
    h = nl.tensor(data)
    assert fn(h, **kwargs, inplace=True).dtype == nl.float32
    np.testing.assert_array_equal(h.data, y.data)


@pytest.mark.parametrize("name, fn, torch_name, kwargs", KINKED, ids=CASE_IDS)
def test_float32_matches_torch(name, fn, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    data = _with_kinks(np.random.default_rng(3)).astype(np.float32)
    x = nl.tensor(data, requires_grad=True)
    y = fn(x, **kwargs)
    y.sum().backward()
    xt = torch.tensor(data, requires_grad=True)
    yt = getattr(torch.nn.functional, torch_name)(xt, **kwargs)
    yt.sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=2e-7, atol=0)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=2e-7, atol=0)


SMOOTH_OR_RELU = [("relu", F.relu, "relu", {}), ("silu", F.silu, "silu", {})]
# The activations of the PyTorch set added later (tested together further down) that take inplace.
HARD_AND_MISH = [("hardtanh", F.hardtanh, "hardtanh", {}),
                 ("hardtanh_-0.5_2", F.hardtanh, "hardtanh", {"min_val": -0.5, "max_val": 2.0}),
                 ("relu6", F.relu6, "relu6", {}), ("hardsigmoid", F.hardsigmoid, "hardsigmoid", {}),
                 ("hardswish", F.hardswish, "hardswish", {}), ("mish", F.mish, "mish", {})]


@pytest.mark.parametrize("name, fn, torch_name, kwargs", KINKED + SMOOTH_OR_RELU + HARD_AND_MISH,
                         ids=CASE_IDS + [case[0] for case in SMOOTH_OR_RELU + HARD_AND_MISH])
def test_inplace_overwrites_the_input_and_keeps_the_gradient(name, fn, torch_name, kwargs):
    rng = np.random.default_rng(4)
    data = _with_kinks(rng)
    expected = fn(nl.tensor(data), **kwargs).data
    # no graph: the very tensor is overwritten and returned
    plain = nl.tensor(data.copy())
    assert fn(plain, **kwargs, inplace=True) is plain
    np.testing.assert_array_equal(plain.data, expected)
    # a leaf that requires grad refuses (as in PyTorch), except under no_grad
    leaf = nl.tensor(data.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        fn(leaf, **kwargs, inplace=True)
    with nl.no_grad():
        fn(leaf, **kwargs, inplace=True)
    np.testing.assert_array_equal(leaf.data, expected)
    # inside a graph: the gradient through the in-place form is the out-of-place one
    x = nl.tensor(data, requires_grad=True)
    v = nl.tensor(rng.standard_normal(data.shape))
    h = x * 1.0
    out = fn(h, **kwargs, inplace=True)
    assert out is h and np.array_equal(h.data, expected)
    (g_inplace,) = nl.grad((out * v).sum(), x)
    (g_out_of_place,) = nl.grad((fn(x * 1.0, **kwargs) * v).sum(), x)
    np.testing.assert_array_equal(g_inplace.data, g_out_of_place.data)
    # a value another operation saved for its backward may not be overwritten
    h = x * 1.0
    square = h * h
    fn(h, **kwargs, inplace=True)
    with pytest.raises(RuntimeError, match="modified in place"):
        square.sum().backward()


def test_inplace_on_a_view_sends_the_gradient_to_its_region():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(5).standard_normal((3, 4))
    x, xt = nl.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    h, ht = x * 2.0, xt * 2.0
    F.elu(h[1], 0.5, inplace=True)
    torch.nn.functional.elu(ht[1], 0.5, inplace=True)
    (h * h).sum().backward()
    (ht * ht).sum().backward()
    np.testing.assert_allclose(h.data, ht.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-14)


@pytest.mark.parametrize("make", [lambda inplace: nn.LeakyReLU(0.1, inplace), lambda inplace: nn.ELU(2.0, inplace),
                                  lambda inplace: nn.SELU(inplace), lambda inplace: nn.ReLU(inplace),
                                  lambda inplace: nn.SiLU(inplace), lambda inplace: nn.Hardtanh(-1.0, 0.5, inplace),
                                  lambda inplace: nn.ReLU6(inplace), lambda inplace: nn.Mish(inplace),
                                  lambda inplace: nn.Hardsigmoid(inplace), lambda inplace: nn.Hardswish(inplace)],
                         ids=["LeakyReLU", "ELU", "SELU", "ReLU", "SiLU", "Hardtanh", "ReLU6", "Mish", "Hardsigmoid",
                              "Hardswish"])
def test_inplace_modules_modify_their_input_and_others_do_not(make):
    data = np.array([-2.0, -0.5, 0.0, 1.5])
    x, y = nl.tensor(data.copy()), nl.tensor(data.copy())
    out = make(False)(y)
    assert make(True)(x) is x and out is not y
    np.testing.assert_array_equal(x.data, out.data)
    np.testing.assert_array_equal(y.data, data)


def test_selu_constants_fix_mean_zero_and_variance_one():
    """E[selu(z)] = 0 and E[selu(z)^2] = 1 for a standard normal z (the fixed point of a LeCun layer)."""
    z = np.linspace(-12, 12, 480_001)
    density = np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    s = F.selu(nl.tensor(z)).data
    dz = z[1] - z[0]
    assert abs(np.sum(s * density) * dz) < 1e-9
    assert abs(np.sum(s * s * density) * dz - 1) < 1e-9
    assert nl.ops.pointwise.SELU_ALPHA == 1.6732632423543772848170429916717
    assert nl.ops.pointwise.SELU_SCALE == 1.0507009873554804934193349852946


def test_new_activation_reprs():
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.LeakyReLU(0.2, True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(nn.ELU()) == "ELU(alpha=1.0)"
    assert repr(nn.ELU(alpha=2.0, inplace=True)) == "ELU(alpha=2.0, inplace=True)"
    assert repr(nn.SELU()) == "SELU()"
    assert repr(nn.SELU(inplace=True)) == "SELU(inplace=True)"


@pytest.mark.parametrize("args", [("LeakyReLU", ()), ("LeakyReLU", (0.2, True)), ("ELU", ()),
                                  ("ELU", (-0.5, True)), ("SELU", ()), ("SELU", (True,)), ("ReLU", (True,)),
                                  ("SiLU", ()), ("SiLU", (True,))])
def test_new_activation_reprs_and_signatures_are_torch(args):
    torch = pytest.importorskip("torch")
    name, arguments = args
    assert repr(getattr(nn, name)(*arguments)) == repr(getattr(torch.nn, name)(*arguments))


# (softplus, logsigmoid and prelu are C functions in PyTorch, without a Python signature to compare)
@pytest.mark.parametrize("name", ["relu", "silu", "leaky_relu", "elu", "selu", "hardtanh", "relu6", "softsign", "mish",
                                  "hardsigmoid", "hardswish"])
def test_functional_signatures_are_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = inspect.signature(getattr(F, name)), inspect.signature(getattr(torch.nn.functional, name))
    assert [(p.name, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.default) for p in theirs.parameters.values()]


def test_new_activations_refuse_bad_arguments():
    x = nl.randn(3)
    with pytest.raises(TypeError, match=r"leaky_relu: negative_slope must be a real number .*got str"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match=r"elu: alpha must be a real number .*got NoneType"):
        F.elu(x, None)
    with pytest.raises(TypeError, match=r"elu: alpha must be a real number .*got Tensor"):
        F.elu(x, nl.tensor(1.0))
    with pytest.raises(TypeError, match=r"LeakyReLU: negative_slope must be a real number .*got str"):
        nn.LeakyReLU("0.1")
    with pytest.raises(TypeError, match=r"ELU: alpha must be a real number .*got list"):
        nn.ELU([1.0])
    # selu's second argument is inplace; an alpha passed there is refused rather than taken as True
    with pytest.raises(TypeError, match=r"selu: inplace must be True or False, got float 1.0"):
        F.selu(x, 1.0)
    with pytest.raises(TypeError, match=r"elu: inplace must be True or False, got str"):
        F.elu(x, 1.0, "yes")
    # NumPy numbers are numbers, and keep a float32 input float32
    assert F.leaky_relu(x, np.float64(0.2)).dtype == nl.float32
    assert F.elu(x, np.float32(2)).dtype == nl.float32


def test_dropout_inplace_keeps_the_gradient():
    """The input is overwritten with the dropped-out values, and gradients still reach what made it."""
    x = nl.tensor(np.random.default_rng(6).standard_normal((8, 9)), requires_grad=True)
    h = x * 1.0
    nl.manual_seed(11)
    out = F.dropout(h, 0.4, inplace=True)
    assert out is h
    out.sum().backward()
    nl.manual_seed(11)
    expected = F.dropout(nl.tensor(x.data), 0.4)
    np.testing.assert_array_equal(h.data, expected.data)
    np.testing.assert_allclose(x.grad.data, (expected.data != 0) / 0.6)


def test_dropout_inplace_with_p_one_zeroes_the_input():
    x = nl.tensor(np.random.default_rng(7).standard_normal((3, 4)), requires_grad=True)
    h = x * 1.0
    out = F.dropout(h, 1.0, inplace=True)
    assert out is h and not h.data.any()
    out.sum().backward()
    assert not x.grad.data.any()


@pytest.mark.parametrize("change", [lambda y: F.elu(y, inplace=True), lambda y: F.relu(y, inplace=True),
                                    lambda y: F.dropout(y, 0.5, True, inplace=True), lambda y: y.mul_(2.0)],
                         ids=["elu", "relu", "dropout", "mul_"])
def test_an_in_place_change_under_no_grad_is_seen_by_the_op_that_saved_the_output(change):
    """tanh's backward reads its output; changed in place under no_grad, the gradient would be wrong."""
    a = nl.tensor(np.random.default_rng(8).standard_normal((3, 4)), requires_grad=True)
    y = nl.tanh(a)
    with nl.no_grad():
        change(y)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


@pytest.mark.parametrize("fn", [F.leaky_relu, F.elu, F.selu])
@pytest.mark.parametrize("inplace", [False, True])
def test_integer_input_is_refused_not_converted_or_truncated(fn, inplace):
    x = nl.tensor(np.array([-1, 2]))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor, got int64"):
        fn(x, inplace=inplace)
    assert x.data.tolist() == [-1, 2]


# ------------------ softplus, hardtanh, relu6, logsigmoid, softsign, mish, hardsigmoid, hardswish ---
# Each case: (id, nnlite function, torch function's name, keyword arguments, the points where the
# function has a corner or switches formula, rtol against PyTorch for the value and first
# derivative, rtol for the second). The piecewise ones compute what PyTorch computes, bit for bit;
# the smooth ones differ in the last digits only, where PyTorch's vectorised exp/log1p/tanh round
# otherwise, or (mish, softsign's second derivative) where its derivative formula groups terms otherwise.
PYTORCH_SET = [
    ("softplus", F.softplus, "softplus", {}, [20.0, 19.0, 21.0], 1e-15, 1e-13),
    ("softplus_2_5", F.softplus, "softplus", {"beta": 2.0, "threshold": 5.0}, [2.5, -2.5], 1e-15, 1e-13),
    ("hardtanh", F.hardtanh, "hardtanh", {}, [-1.0, 1.0], 0, 0),
    ("hardtanh_-0.5_2", F.hardtanh, "hardtanh", {"min_val": -0.5, "max_val": 2.0}, [-0.5, 2.0], 0, 0),
    ("relu6", F.relu6, "relu6", {}, [6.0], 0, 0),
    ("logsigmoid", F.logsigmoid, "logsigmoid", {}, [-800.0, 800.0], 1e-15, 1e-14),
    ("softsign", F.softsign, "softsign", {}, [], 1e-14, 1e-12),
    ("mish", F.mish, "mish", {}, [-800.0], 1e-12, 1e-10),
    ("hardsigmoid", F.hardsigmoid, "hardsigmoid", {}, [-3.0, 3.0], 0, None),
    ("hardswish", F.hardswish, "hardswish", {}, [-3.0, 3.0], 0, 0),
]
PYTORCH_SET_IDS = [c[0] for c in PYTORCH_SET]


def _with_corners(rng, corners, shape=(4, 8)):
    """Standard normals scaled up, with exact (signed) zeros, far-out values and the corners among them."""
    x = rng.standard_normal(shape) * 4
    special = [0.0, -0.0, -40.0, 40.0, 1e-300] + list(corners)
    x.flat[:len(special)] = special
    return x


@pytest.mark.parametrize("name, fn, torch_name, kwargs, corners, rtol, rtol2", PYTORCH_SET, ids=PYTORCH_SET_IDS)
def test_pytorch_set_values_and_derivatives_at_the_corners_match_torch(name, fn, torch_name, kwargs, corners,
                                                                       rtol, rtol2):
    """float64: PyTorch's one-sided slope at each corner, and its second derivative there."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    data = _with_corners(rng, corners)
    v, w = rng.standard_normal(data.shape), rng.standard_normal(data.shape)
    y, g, gg = _first_and_second(lambda t: fn(t, **kwargs), nl.tensor(data, requires_grad=True), nl.tensor(v),
                                 nl.tensor(w))
    xt = torch.tensor(data, requires_grad=True)
    yt = getattr(torch.nn.functional, torch_name)(xt, **kwargs)
    (gt,) = torch.autograd.grad((yt * torch.tensor(v)).sum(), xt, create_graph=True)
    assert y.dtype == nl.float64
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=0)
    np.testing.assert_array_equal(np.signbit(y.data), np.signbit(yt.detach().numpy()))
    if name == "hardsigmoid":
        # PyTorch's float64 slope is 1/6 rounded to float32 (0.16666667163...); nnlite's is 1/6, and
        # PyTorch has no second derivative here at all (nnlite's is 0, the derivative being piecewise constant).
        np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=3e-8, atol=0)
        assert set(np.unique(g.data / v)) <= {0.0, 1 / 6} and not gg.any()
        return
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=rtol, atol=0)
    ggt = torch.autograd.grad((gt * torch.tensor(w)).sum(), xt)[0].numpy() if gt.requires_grad else 0 * data
    np.testing.assert_allclose(gg, ggt, rtol=rtol2, atol=1e-300)


def test_corner_slopes_are_pytorchs():
    """The one-sided slopes PyTorch takes at the corners, spelled out."""
    def slope(fn, points):
        x = nl.tensor(points, dtype=nl.float64, requires_grad=True)
        fn(x).sum().backward()
        return x.grad.data.tolist()
    assert slope(F.hardtanh, [-1.0, 1.0, 0.0]) == [0.0, 0.0, 1.0]      # a clamp's would be [1, 1, 1]
    assert slope(lambda t: nl.clamp(t, -1.0, 1.0), [-1.0, 1.0]) == [1.0, 1.0]
    assert slope(F.relu6, [0.0, 6.0, 3.0]) == [0.0, 0.0, 1.0]
    assert slope(F.hardsigmoid, [-3.0, 3.0, 0.0]) == [0.0, 0.0, 1 / 6]
    assert slope(F.hardswish, [-3.0, 3.0, 0.0]) == [0.0, 1.0, 0.5]
    assert slope(F.softsign, [0.0, -0.0]) == [1.0, 1.0]
    assert slope(lambda t: F.softplus(t, 2.0, 5.0), [2.5, 2.6])[1] == 1.0   # at beta x = threshold: curved side


@pytest.mark.parametrize("name, fn, torch_name, kwargs, corners, rtol, rtol2", PYTORCH_SET, ids=PYTORCH_SET_IDS)
def test_pytorch_set_gradients_against_finite_differences(name, fn, torch_name, kwargs, corners, rtol, rtol2):
    """Away from the corners, first and second order, in float64."""
    rng = np.random.default_rng(2)
    data = rng.uniform(0.05, 5.0, (3, 6)) * rng.choice([-1.0, 1.0], (3, 6))
    data = np.where(np.min(np.abs(data[..., None] - np.array(corners + [0.0])), axis=-1) < 0.05, 0.5, data)
    x = nl.tensor(data, requires_grad=True)
    assert gradcheck(lambda t: fn(t, **kwargs), [x], atol=1e-7, rtol=1e-6)
    assert gradgradcheck(lambda t: fn(t, **kwargs) * t, [x], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name, fn, torch_name, kwargs, corners, rtol, rtol2", PYTORCH_SET, ids=PYTORCH_SET_IDS)
def test_pytorch_set_float32_stays_float32_and_matches_torch(name, fn, torch_name, kwargs, corners, rtol, rtol2):
    data = _with_corners(np.random.default_rng(3), corners).astype(np.float32)
    x = nl.tensor(data, requires_grad=True)
    y = fn(x, **kwargs)
    (g,) = nl.grad(y.sum(), x, create_graph=True)
    assert y.dtype == nl.float32 and g.dtype == nl.float32
    if g.requires_grad:
        assert nl.grad(g.sum(), x)[0].dtype == nl.float32
    torch = pytest.importorskip("torch")
    xt = torch.tensor(data, requires_grad=True)
    yt = getattr(torch.nn.functional, torch_name)(xt, **kwargs)
    yt.sum().backward()
    # Piecewise: PyTorch's float32 bits. Smooth: a few float32 roundings apart, more in the slopes,
    # where 1 - t^2 (mish) and 1/(1+|x|) - |x|/(1+|x|)^2 (softsign) cancel digits in both libraries.
    exact = rtol == 0
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=0 if exact else 5e-7, atol=0 if exact else 1e-37)
    np.testing.assert_allclose(g.data, xt.grad.numpy(), rtol=0 if exact else 2e-6, atol=0 if exact else 1e-6)


@pytest.mark.parametrize("name, args", [("Softplus", ()), ("Softplus", (2.0, 5.0)), ("Hardtanh", ()),
                                        ("Hardtanh", (-0.5, 2.0)), ("ReLU6", ()), ("LogSigmoid", ()),
                                        ("Softsign", ()), ("Mish", ()), ("Hardsigmoid", ()), ("Hardswish", ())])
def test_pytorch_set_modules_match_torch(name, args):
    torch = pytest.importorskip("torch")
    x = _with_corners(np.random.default_rng(0), [-3.0, 3.0, 6.0, 1.0, -1.0, 2.0], (3, 4, 5))
    rtol = 3e-8 if name == "Hardsigmoid" else 1e-13   # PyTorch's float64 slope is 1/6 rounded to float32
    compare(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x, rtol=rtol, atol=1e-300)


def test_pytorch_set_reprs():
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.Hardtanh(-2.0, 2.0, True)) == "Hardtanh(min_val=-2.0, max_val=2.0, inplace=True)"
    assert repr(nn.ReLU6()) == "ReLU6()" and repr(nn.ReLU6(True)) == "ReLU6(inplace=True)"
    assert repr(nn.Mish(inplace=True)) == "Mish(inplace=True)"
    assert repr(nn.Hardswish(inplace=True)) == "Hardswish()"   # PyTorch's repr leaves inplace out
    assert isinstance(nn.ReLU6(), nn.Hardtanh)


@pytest.mark.parametrize("name, args", [("Softplus", ()), ("Softplus", (2, 5)), ("Hardtanh", ()),
                                        ("Hardtanh", (-0.5, 2.0, True)), ("ReLU6", ()), ("ReLU6", (True,)),
                                        ("LogSigmoid", ()), ("Softsign", ()), ("Mish", ()), ("Mish", (True,)),
                                        ("Hardsigmoid", ()), ("Hardsigmoid", (True,)), ("Hardswish", (True,))])
def test_pytorch_set_reprs_are_torch(name, args):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_hardtanh_constructor_is_torchs_without_the_deprecated_aliases():
    """PyTorch's Hardtanh also takes min_value/max_value, deprecated spellings of min_val/max_val."""
    torch = pytest.importorskip("torch")

    def params(cls):
        return [(k, v.default) for k, v in inspect.signature(cls.__init__).parameters.items()]
    assert params(nn.Hardtanh) == params(torch.nn.Hardtanh)[:4]


def test_pytorch_set_refuses_bad_arguments():
    x = nl.randn(3)
    with pytest.raises(ValueError, match=r"hardtanh: min_val \(2.0\) cannot be greater than max_val \(1.0\)"):
        F.hardtanh(x, 2.0, 1.0)
    for bounds in ((float("nan"), 1.0), (-1.0, float("nan"))):   # a NaN bound is refused, never ignored
        with pytest.raises(ValueError, match="neither can be NaN"):
            F.hardtanh(x, *bounds)
        with pytest.raises(ValueError, match="neither can be NaN"):
            F.hardtanh(x * 1.0, *bounds, inplace=True)
    with pytest.raises(ValueError, match=r"Hardtanh: max_val \(1.0\) must be greater than min_val \(1.0\)"):
        nn.Hardtanh(1.0, 1.0)
    with pytest.raises(TypeError, match=r"hardtanh: min_val must be a real number .*got str"):
        F.hardtanh(x, "-1")
    with pytest.raises(TypeError, match=r"Softplus: beta must be a real number .*got NoneType"):
        nn.Softplus(None)
    with pytest.raises(TypeError, match=r"softplus: threshold must be a real number .*got Tensor"):
        F.softplus(x, 1.0, nl.tensor(20.0))
    with pytest.raises(TypeError, match=r"mish: inplace must be True or False, got float 1.0"):
        F.mish(x, 1.0)
    assert F.hardtanh(x, np.float64(-0.5), 1).dtype == nl.float32
    # hardtanh with min_val == max_val is allowed, as in PyTorch: every value becomes that bound
    assert F.hardtanh(x, 0.5, 0.5).data.tolist() == [0.5] * 3


@pytest.mark.parametrize("fn", [F.mish, F.hardsigmoid, F.hardswish])
@pytest.mark.parametrize("inplace", [False, True])
def test_pytorch_set_refuses_integer_input(fn, inplace):
    x = nl.tensor(np.array([-1, 2]))
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor, got int64"):
        fn(x, inplace=inplace)
    assert x.data.tolist() == [-1, 2]


@pytest.mark.parametrize("fn,expected", [(F.hardtanh, [-1, 1]), (F.relu6, [0, 6]), (F.relu, [0, 7])])
@pytest.mark.parametrize("inplace", [False, True])
def test_clamping_activations_keep_an_integer_dtype_as_pytorch_does(fn, expected, inplace):
    x = nl.tensor(np.array([-3, 7]))
    y = fn(x, inplace=inplace)
    assert y.dtype == nl.int64 and y.tolist() == expected and (y is x) == inplace


@pytest.mark.parametrize("fn", [F.softplus, F.logsigmoid])
def test_functions_without_inplace_refuse_integer_input(fn):
    with pytest.raises(TypeError, match=r"input must be a floating-point tensor, got int64"):
        fn(nl.tensor(np.array([-1, 2])))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsigmoid_and_mish_stay_finite_far_out(dtype):
    """No overflow (and no NumPy warning) for large |x|: log sigmoid is x far left and 0 far right,
    mish is x far right; their slopes 1 and 0."""
    data = np.array([-1e4, -800.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = nl.tensor(data, requires_grad=True)
        y = F.logsigmoid(x)
        (g,) = nl.grad(y.sum(), x, create_graph=True)
        (gg,) = nl.grad(g.sum(), x)
        np.testing.assert_array_equal(y.data[:2], data[:2])
        assert np.all(y.data[2:] == 0) and g.data.tolist() == [1, 1, 0, 0]
        assert np.all(np.isfinite(gg.data))
        x = nl.tensor(data, requires_grad=True)
        y = F.mish(x)
        (g,) = nl.grad(y.sum(), x, create_graph=True)
        (gg,) = nl.grad(g.sum(), x)   # PyTorch's is NaN at 800 and beyond (0 * inf in its formula)
        np.testing.assert_array_equal(y.data[2:], data[2:])
        assert np.all(y.data[:2] == 0) and g.data.tolist() == [0, 0, 1, 1]
        assert np.all(gg.data == 0)
    # the value just to the right of 0 keeps its digits: log sigmoid(40) = -e^-40
    assert F.logsigmoid(nl.tensor(40.0, dtype=nl.float64)).item() == pytest.approx(-np.exp(-40.0), rel=1e-15)


def test_nan_passes_through_the_gradients_as_in_pytorch():
    # leaky_relu with slope 0: a NaN upstream gradient stays NaN on the flat piece
    x = nl.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = nl.grad(F.leaky_relu(x, 0.0), x, nl.tensor([float("nan"), 1.0]))
    assert np.isnan(g.data[0]) and g.data[1] == 1.0
    # softplus's second derivative at a NaN input is NaN, not 0
    x = nl.tensor(np.array([np.nan, 1.0]), requires_grad=True)
    (d1,) = nl.grad(F.softplus(x).sum(), x, create_graph=True)
    (d2,) = nl.grad(d1.sum(), x)
    assert np.isnan(d2.data[0]) and abs(d2.data[1] - 0.19661193324148185) < 1e-15
    # at a NaN input hardtanh and relu6 pass the gradient, ELU and SELU scale it (PyTorch's slopes)
    for fn, slope in ((F.hardtanh, 1.0), (F.relu6, 1.0), (F.elu, 1.0), (F.selu, 1.0507009873554805),
                      (F.hardsigmoid, 0.0), (lambda t: F.leaky_relu(t, 0.1), 0.1)):
        x = nl.tensor(np.array([np.nan]), requires_grad=True)
        (g,) = nl.grad(fn(x), x, nl.tensor(np.array([2.0])))
        assert g.data[0] == 2.0 * slope


def test_elu_and_selu_outputs_may_change_in_place_before_backward():
    # Their backward reads the slope the forward kept, not the output: PyTorch allows this too.
    for f, slope in ((F.elu, lambda v: np.where(v > 0, 1.0, np.exp(v))),
                     (F.selu, lambda v: 1.0507009873554805 * np.where(v > 0, 1.0, 1.6732632423543772 * np.exp(v)))):
        x = nl.tensor([-2.0, 0.3, 1.5], dtype=nl.float64, requires_grad=True)
        y = f(x)
        y.mul_(2.0)
        y.sum().backward()
        np.testing.assert_allclose(x.grad.data, 2 * slope(x.data), rtol=1e-15)
    net = nn.Sequential(nn.Linear(3, 3), nn.ELU(), nn.ReLU(inplace=True))
    net(nl.randn(4, 3)).sum().backward()
    assert net[0].weight.grad is not None
