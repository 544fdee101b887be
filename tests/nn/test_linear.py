"""Linear, Identity, Flatten, Unflatten against PyTorch; the linear op's gradients; weight tying."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare, f64, load_from_torch_and_compare, torch_or_skip

F = nl.nn.functional


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,), (2, 1, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    compare(nl.nn.Linear(4, 3, bias=bias), torch.nn.Linear(4, 3, bias=bias), x)


def test_linear_state_dict_loads_from_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((6, 7))
    load_from_torch_and_compare(nl.nn.Linear(7, 2), torch.nn.Linear(7, 2), x)
    assert list(nl.nn.Linear(7, 2, bias=False).state_dict()) == ["weight"]


def test_linear_parameters_kinds_layout():
    layer = nl.nn.Linear(784, 10)
    assert layer.weight.shape == (10, 784) and layer.bias.shape == (10,)
    assert (layer.weight.kind, layer.bias.kind) == ("weight", "bias")
    assert layer.num_parameters() == 7850
    assert repr(layer) == "Linear(in_features=784, out_features=10, bias=True)"


def test_linear_errors_name_layer_expected_and_given():
    layer = nl.nn.Linear(784, 10)
    with pytest.raises(ValueError) as e:
        layer(nl.zeros(32, 780))
    assert str(e.value) == "Linear(in_features=784): input has 780 features (shape (32, 780))"
    with pytest.raises(ValueError, match="Linear"):
        layer(nl.tensor(1.0))
    with pytest.raises(TypeError, match="float64"):
        F.linear(nl.zeros(2, 3, dtype=nl.float64), nl.zeros(4, 3))


def test_linear_and_functional_linear_each_name_themselves_in_errors():
    # nn.Linear goes through F.linear; on a bad input the layer's message names the layer.
    layer = nl.nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"^Linear\(in_features=3\): input has 4 features"):
        layer(nl.zeros(5, 2, 4))
    with pytest.raises(ValueError, match=r"^linear: weight \(2, 3\) expects 3 input features, input has 4"):
        F.linear_relu(nl.zeros(5, 4), layer.weight)
    with pytest.raises(TypeError, match=r"^linear: input is float64 but weight is float32"):
        layer(nl.zeros(5, 3, dtype=nl.float64))
    # A NumPy array is taken as a constant input, as before.
    assert layer(np.ones((4, 3), np.float32)).shape == (4, 2)
    assert F.linear(np.ones((4, 2, 3), np.float32), layer.weight).shape == (4, 2, 2)


def test_linear_op_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(2)
    x, w, b = f64(rng, 5, 4), f64(rng, 3, 4), f64(rng, 3)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])
    assert gradgradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])
    x3 = f64(rng, 2, 3, 4)
    assert gradcheck(lambda x, w: F.linear(x, w), [x3, w])
    # The fused ReLU: second derivative through a smooth function of the output.
    assert gradcheck(lambda x, w, b: F.linear_relu(x, w, b), [x, w, b])
    assert gradgradcheck(lambda x, w, b: F.linear_relu(x, w, b).tanh(), [x, w, b])


@pytest.mark.parametrize("op", ["linear", "linear_relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_requires_grad", [True, False])
def test_first_order_backward_on_kernels_equals_the_recorded_one(op, bias, x_requires_grad):
    """Without create_graph the linear backward calls the kernels directly; the bytes are those
    of the recorded (differentiable) backward, also for an incoming gradient stored transposed."""
    nl.manual_seed(5)
    x = nl.randn(9, 6, requires_grad=x_requires_grad)
    w = nl.randn(4, 6, requires_grad=True)
    b = nl.randn(4, requires_grad=True) if bias else None
    # a column-major gradient (read in place, not copied) that is itself differentiated
    # through when the backward is recorded
    g = nl.randn(4, 9, requires_grad=True).mT
    wanted = [t for t in (x, w, b) if t is not None and t.requires_grad]
    first = nl.grad(getattr(F, op)(x, w, b), wanted, grad_outputs=g)
    recorded = nl.grad(getattr(F, op)(x, w, b), wanted, grad_outputs=g, create_graph=True)
    assert recorded[0].grad_fn is not None and first[0].grad_fn is None
    for a, r in zip(first, recorded):
        assert a.data.tobytes() == np.ascontiguousarray(r.data).tobytes()
    if not x_requires_grad:
        assert len(first) == 1 + bias   # no gradient is computed for an input that needs none


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_numpy_input_is_a_constant_in_backward(create_graph):
    """F.linear takes a NumPy array as a constant input; backward then gives the weight's
    and the bias's gradients (it used to fail asking the array for requires_grad)."""
    x = np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32)
    w = nl.randn(2, 3, requires_grad=True)
    b = nl.randn(2, requires_grad=True)
    for op in (F.linear, F.linear_relu):
        y = op(x, w, b)
        gw, gb = nl.grad(y.sum(), [w, b], create_graph=create_graph)
        mask = (y.data > 0).astype(np.float32) if op is F.linear_relu else np.ones_like(y.data)
        np.testing.assert_allclose(gw.data, mask.T @ x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gb.data, mask.sum(0), rtol=1e-6)


def test_fused_relu_equals_relu_of_linear():
    rng = np.random.default_rng(3)
    x, w, b = f64(rng, 7, 5), f64(rng, 4, 5), f64(rng, 4)
    np.testing.assert_allclose(F.linear_relu(x, w, b).data, F.relu(F.linear(x, w, b)).data)


def test_identity_flatten_unflatten_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    compare(nl.nn.Identity(54, unused=True), torch.nn.Identity(54, unused=True), x)
    for args in [(), (1, 2), (0, -1), (2, 3)]:
        compare(nl.nn.Flatten(*args), torch.nn.Flatten(*args), x)
    compare(nl.nn.Unflatten(1, (3, 1)), torch.nn.Unflatten(1, (3, 1)), x)
    compare(nl.nn.Unflatten(-1, (-1, 1, 5)), torch.nn.Unflatten(-1, (-1, 1, 5)), x)
    with pytest.raises(ValueError, match=r"Unflatten\(dim=1, unflattened_size=\(2, 2\)\): dim 1 has size 3"):
        nl.nn.Unflatten(1, (2, 2))(nl.zeros(2, 3, 4))


def test_weight_tying_one_parameter():
    class TiedLM(nl.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nl.nn.Embedding(11, 4)
            self.head = nl.nn.Linear(4, 11, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(self.emb(idx))

    model = TiedLM()
    params = list(model.parameters())
    assert len(params) == 1 and model.num_parameters() == 44
    state = model.state_dict()
    assert list(state) == ["emb.weight", "head.weight"]
    assert np.shares_memory(state["emb.weight"].data, state["head.weight"].data)
    assert model.tied_parameters() == [["emb.weight", "head.weight"]]
    # Both uses send their gradient into the one parameter.
    idx = nl.tensor([[1, 2, 3]])
    model(idx).sum().backward()
    w = model.emb.weight.data
    expected = np.tile(w[[1, 2, 3]].sum(0), (11, 1))    # from the head: every row gets sum of h
    for i in (1, 2, 3):
        expected[i] += w.sum(0)                         # from the embedding: d/dh of sum(h @ W.T)
    np.testing.assert_allclose(model.emb.weight.grad.data, expected, rtol=1e-5)


def test_linear_output_may_be_modified_in_place():
    # Linear's backward needs x and W, not its output, so an in-place op on the output is fine.
    layer = nl.nn.Linear(3, 2)
    y = layer(nl.randn(4, 3))
    y.add_(1.0)
    y.sum().backward()
    np.testing.assert_allclose(layer.bias.grad.data, [4.0, 4.0])
    # The fused ReLU does read its output, so modifying that is refused.
    z = F.linear_relu(nl.randn(4, 3), layer.weight, layer.bias)
    z.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        z.sum().backward()


def test_negative_sizes_are_refused_clearly():
    import nnlite as nl
    with pytest.raises(ValueError, match="in_features=-1"):
        nl.nn.Linear(-1, 3)


@pytest.mark.parametrize("shape", [(1, 6), (5, 6), (2, 3, 6), (6,)])
@pytest.mark.parametrize("op", ["linear", "linear_relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_no_grad_linear_is_the_recorded_forward_without_a_graph(shape, op, bias):
    # Under no_grad, F.linear runs the kernel without Function.apply: the same bytes, no node.
    rng = np.random.default_rng(3)
    x = nl.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    w = nl.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    b = nl.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True) if bias else None
    recorded = getattr(F, op)(x, w, b)
    with nl.no_grad():
        plain = getattr(F, op)(x, w, b)
    assert recorded.grad_fn is not None and plain.grad_fn is None and not plain.requires_grad
    assert plain.shape == recorded.shape == shape[:-1] + (4,)
    assert plain.data.tobytes() == recorded.data.tobytes()


def test_no_grad_linear_keeps_float16_and_the_functional_errors():
    layer = nl.nn.Linear(6, 3).half()
    x = nl.tensor(np.ones((2, 6), dtype=np.float16))
    with nl.no_grad():
        y = layer(x)
    assert y.dtype == np.float16 and y.data.tobytes() == layer(x).data.tobytes()
    with nl.no_grad():
        with pytest.raises(ValueError, match=r"linear: weight \(3, 6\) expects 6 input features, input has 5"):
            F.linear(nl.zeros(2, 5), layer.weight.float())
        with pytest.raises(TypeError, match="linear: input is float64 but weight is float32"):
            F.linear(nl.zeros(2, 6, dtype=np.float64), layer.weight.float())
        with pytest.raises(ValueError, match="linear"):
            F.linear(nl.tensor(1.0), layer.weight.float())


@pytest.mark.parametrize("case", ["numpy_input", "transposed_weight", "bfloat16"])
def test_no_grad_linear_takes_what_the_recorded_call_takes(case):
    # The unrecorded path reads arrays and strided views itself and hands storage dtypes
    # (bfloat16) to the general path: each gives the recorded call's type, dtype and bytes.
    rng = np.random.default_rng(4)
    x = nl.tensor(rng.standard_normal((3, 6)).astype(np.float32))
    w = nl.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    if case == "numpy_input":
        x = x.data
    elif case == "transposed_weight":   # (4, 6) read from (6, 4) storage
        w = nl.tensor(np.ascontiguousarray(w.data.T), requires_grad=True).T
        assert not w.data.flags.c_contiguous
    else:
        pytest.importorskip("ml_dtypes")
        x, w = x.to(nl.bfloat16), w.to(nl.bfloat16)
    recorded = F.linear(x, w)
    with nl.no_grad():
        plain = F.linear(x, w)
    assert isinstance(plain, nl.Tensor) and plain.grad_fn is None
    assert plain.dtype == recorded.dtype and plain.shape == recorded.shape == (3, 4)
    assert plain.data.tobytes() == recorded.data.tobytes()


@pytest.mark.parametrize("recorded", [True, False])
def test_no_input_features_with_leading_dims_give_the_bias(recorded):
    x = nl.zeros(2, 3, 0, requires_grad=recorded)
    weight, bias = nl.zeros(1, 0, requires_grad=recorded), nl.ones(1, requires_grad=recorded)
    y = F.linear(x, weight, bias)
    assert y.shape == (2, 3, 1) and y.tolist() == [[[1.0]] * 3] * 2
    if recorded:
        y.sum().backward()
        assert x.grad.shape == (2, 3, 0) and weight.grad.shape == (1, 0) and bias.grad.tolist() == [6.0]
    torch = torch_or_skip()
    assert tuple(torch.nn.functional.linear(torch.zeros(2, 3, 0), torch.zeros(1, 0)).shape) == y.shape
