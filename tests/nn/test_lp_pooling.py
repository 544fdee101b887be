"""Power-average (Lp) pooling against PyTorch; its derivatives, also in a learned exponent."""
import doctest

import numpy as np
import pytest

import nnlite as nl
import nnlite.ops.conv as conv_ops
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import compare, torch_or_skip

F = nl.nn.functional

# (norm_type, kernel_size, stride, ceil_mode); p = 3.5 runs on positive input only.
CASES_2D = [(1, 2, None, False), (2, 3, 2, False), (2, 3, 2, True), (3.5, (2, 3), (1, 2), False),
            (3.5, 3, (2, 1), True), (2, (3, 1), None, True)]
CASES_1D = [(1, 3, None, False), (2, 3, 2, True), (3.5, 2, 1, False), (3.5, 4, 3, True)]


def _input(p, shape, seed):
    rng = np.random.default_rng(seed)
    if float(p).is_integer():
        return rng.standard_normal(shape)
    return rng.uniform(0.05, 2.0, shape)   # a non-integer power of a negative number is NaN


def _against_torch(ours, theirs, p, x, p_is_tensor=False):
    """Outputs, gradients and second derivatives of ours(x, p) and theirs(x, p) agree (float64)."""
    torch = torch_or_skip()
    rng = np.random.default_rng(7)
    xn = nl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    pn = nl.tensor(np.float64(p), requires_grad=True) if p_is_tensor else p
    pt = torch.tensor(np.float64(p), requires_grad=True) if p_is_tensor else p
    y, yt = ours(xn, pn), theirs(xt, pt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    wrt_n, wrt_t = ([xn, pn], [xt, pt]) if p_is_tensor else ([xn], [xt])
    grads = nl.grad(y, wrt_n, grad_outputs=[nl.tensor(g)], create_graph=True)
    grads_t = torch.autograd.grad(yt, wrt_t, grad_outputs=torch.tensor(g), create_graph=True)
    for a, b in zip(grads, grads_t):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-9, atol=1e-11)
    # Second derivatives: the gradient of <first gradients, v> with respect to the same inputs.
    vs = [rng.standard_normal(a.shape) for a in grads]
    second = nl.grad(sum((a * nl.tensor(v)).sum() for a, v in zip(grads, vs)), wrt_n)
    second_t = torch.autograd.grad(sum((a * torch.tensor(v)).sum() for a, v in zip(grads_t, vs)), wrt_t)
    for a, b in zip(second, second_t):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("p, kernel, stride, ceil_mode", CASES_2D)
def test_lp_pool2d_matches_torch_to_second_order(p, kernel, stride, ceil_mode):
    torch = torch_or_skip()
    for shape in [(2, 3, 9, 7), (3, 8, 5)]:   # batched and unbatched
        _against_torch(lambda x, q: F.lp_pool2d(x, q, kernel, stride, ceil_mode),
                       lambda x, q: torch.nn.functional.lp_pool2d(x, q, kernel, stride, ceil_mode),
                       p, _input(p, shape, seed=len(shape)))


@pytest.mark.parametrize("p, kernel, stride, ceil_mode", CASES_1D)
def test_lp_pool1d_matches_torch_to_second_order(p, kernel, stride, ceil_mode):
    torch = torch_or_skip()
    for shape in [(2, 3, 11), (4, 9)]:
        _against_torch(lambda x, q: F.lp_pool1d(x, q, kernel, stride, ceil_mode),
                       lambda x, q: torch.nn.functional.lp_pool1d(x, q, kernel, stride, ceil_mode),
                       p, _input(p, shape, seed=len(shape)))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_a_tensor_exponent_gets_torchs_gradient(p):
    torch = torch_or_skip()
    x = np.random.default_rng(3).uniform(0.05, 2.0, (2, 3, 7, 8))
    _against_torch(lambda x, q: F.lp_pool2d(x, q, 3, 2, True),
                   lambda x, q: torch.nn.functional.lp_pool2d(x, q, 3, 2, True), p, x, p_is_tensor=True)
    _against_torch(lambda x, q: F.lp_pool1d(x, q, 3, 2),
                   lambda x, q: torch.nn.functional.lp_pool1d(x, q, 3, 2), p, x[0], p_is_tensor=True)


@pytest.mark.parametrize("p", [float("inf"), -float("inf")])
def test_infinite_exponent_is_max_of_abs_as_in_torch(p):
    torch = torch_or_skip()
    x = np.random.default_rng(4).standard_normal((2, 3, 9, 7))
    for ours, theirs, data in [(nl.nn.LPPool2d(p, 3, 2, ceil_mode=True), torch.nn.LPPool2d(p, 3, 2, ceil_mode=True), x),
                               (nl.nn.LPPool1d(p, 2), torch.nn.LPPool1d(p, 2), x[0])]:
        compare(ours, theirs, data)


def test_modules_match_torch_and_hold_no_state():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    compare(nl.nn.LPPool2d(2, (3, 2), stride=(2, 1)), torch.nn.LPPool2d(2, (3, 2), stride=(2, 1)),
            rng.standard_normal((2, 3, 8, 7)))
    compare(nl.nn.LPPool1d(3.5, 3, ceil_mode=True), torch.nn.LPPool1d(3.5, 3, ceil_mode=True),
            rng.uniform(0.1, 1.0, (2, 3, 10)))
    for args in [(2, 3), (2.5, (2, 3), 1, True), (1, 2, None, True)]:
        assert repr(nl.nn.LPPool2d(*args)) == repr(torch.nn.LPPool2d(*args))
        assert repr(nl.nn.LPPool1d(*args[:1], 3, *args[2:])) == repr(torch.nn.LPPool1d(*args[:1], 3, *args[2:]))


def test_module_repr_and_state():
    pool = nl.nn.LPPool2d(2, 3)
    assert repr(pool) == "LPPool2d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"
    assert pool.state_dict() == {} and pool.num_parameters() == 0
    p = nl.nn.Parameter(nl.tensor(3.0, dtype=nl.float64), kind="temperature")
    learned = nl.nn.LPPool1d(p, 2, ceil_mode=True)
    assert learned.extra_repr() == "norm_type=3.0 (a Parameter), kernel_size=2, stride=None, ceil_mode=True"
    assert list(learned.state_dict()) == ["norm_type"] and learned.num_parameters() == 1
    x = nl.tensor(np.random.default_rng(6).uniform(0.1, 1.0, (2, 3, 7)))
    learned(x).sum().backward()
    assert p.grad is not None and p.grad.shape == ()


def test_derivatives_by_finite_differences():
    rng = np.random.default_rng(8)
    x = nl.tensor(rng.uniform(0.2, 1.5, (2, 2, 5, 6)), requires_grad=True)
    p = nl.tensor(2.5, dtype=nl.float64, requires_grad=True)
    assert gradcheck(lambda x, p: F.lp_pool2d(x, p, 2, 1), [x, p])
    assert gradgradcheck(lambda x, p: F.lp_pool2d(x, p, 3, 2, ceil_mode=True), [x, p])
    assert gradcheck(lambda x: F.lp_pool2d(x, 3.5, (2, 3), (2, 1)), [x])
    assert gradgradcheck(lambda x: F.lp_pool2d(x, 2, 2), [x])
    x1 = nl.tensor(rng.uniform(0.2, 1.5, (2, 3, 7)), requires_grad=True)
    assert gradcheck(lambda x, p: F.lp_pool1d(x, p, 3, 2, ceil_mode=True), [x1, p])
    assert gradgradcheck(lambda x, p: F.lp_pool1d(x, p, 2), [x1, p])
    signed = nl.tensor(rng.standard_normal((2, 3, 7)), requires_grad=True)
    assert gradgradcheck(lambda x: F.lp_pool1d(x, 1, 3, 1), [signed])
    assert gradgradcheck(lambda x: F.lp_pool1d(x, 2, 3, 1), [signed])


# On the way the root's derivative is inf at zero (NumPy warns), before relu's derivative zeroes it.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_window_of_zeros_gets_a_zero_gradient():
    x = nl.tensor(np.array([[[0.0, 0.0, 1.0, 2.0]]]), requires_grad=True)
    p = nl.tensor(2.0, dtype=nl.float64, requires_grad=True)
    y = F.lp_pool1d(x, p, 2)
    np.testing.assert_allclose(y.data, [[[0.0, np.sqrt(5.0)]]])
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.data)) and np.all(np.isfinite(p.grad.data))
    np.testing.assert_array_equal(x.grad.data[0, 0, :2], [0.0, 0.0])


def test_p_equal_1_is_sum_pooling_and_large_p_nears_the_max():
    x = nl.tensor(np.random.default_rng(9).uniform(0.1, 1.0, (1, 2, 6, 6)))
    np.testing.assert_allclose(F.lp_pool2d(x, 1, 3).data, F.avg_pool2d(x, 3).data * 9, rtol=1e-12)
    np.testing.assert_allclose(F.lp_pool2d(x, 200, 3).data, F.max_pool2d(x, 3).data, rtol=0.02)


def test_bad_arguments_are_named():
    x = nl.ones(1, 2, 6, 6)
    with pytest.raises(ValueError, match=r"lp_pool2d: norm_type must be non-zero .* got 0.0"):
        F.lp_pool2d(x, 0, 2)
    with pytest.raises(ValueError, match=r"lp_pool1d: norm_type must be non-zero"):
        F.lp_pool1d(x[0], nl.tensor(0.0), 2)
    with pytest.raises(TypeError, match=r"lp_pool2d: norm_type must be a number or a one-element Tensor, got str"):
        F.lp_pool2d(x, "2", 2)
    with pytest.raises(TypeError, match=r"got bool"):
        F.lp_pool2d(x, True, 2)
    with pytest.raises(ValueError, match=r"one-element Tensor, got a Tensor of shape \(2,\)"):
        F.lp_pool2d(x, nl.tensor([2.0, 3.0]), 2)
    with pytest.raises(ValueError, match=r"lp_pool2d: kernel_size must be an int >= 1 or 2 of them, got 0"):
        F.lp_pool2d(x, 2, 0)
    with pytest.raises(ValueError, match=r"lp_pool2d: kernel_size .* got \(2, 2, 2\)"):
        F.lp_pool2d(x, 2, (2, 2, 2))
    with pytest.raises(ValueError, match=r"lp_pool1d: stride must be an int >= 1 or 1 of them, got 0"):
        F.lp_pool1d(x[0], 2, 2, stride=0)
    with pytest.raises(ValueError, match=r"lp_pool1d: kernel_size .* got 2.5"):
        F.lp_pool1d(x[0], 2, 2.5)
    with pytest.raises(ValueError, match=r"lp_pool2d: expected a 3 or 4-D input, got shape \(6, 6\)"):
        F.lp_pool2d(x[0, 0], 2, 2)
    with pytest.raises(ValueError, match=r"lp_pool1d: expected a 2 or 3-D input, got shape \(1, 2, 6, 6\)"):
        F.lp_pool1d(x, 2, 2)
    with pytest.raises(ValueError, match=r"LPPool1d\(norm_type=2, kernel_size=3.*expected a 2 or 3-D input"):
        nl.nn.LPPool1d(2, 3)(x)
    with pytest.raises(ValueError, match=r"LPPool2d\(norm_type=2, kernel_size=3.*expected a 3 or 4-D input"):
        nl.nn.LPPool2d(2, 3)(nl.ones(6))
    with pytest.raises(ValueError, match="output size"):
        nl.nn.LPPool2d(2, 7)(x)


def test_functional_examples_run():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for fn in (conv_ops.lp_pool1d, conv_ops.lp_pool2d):
        for test in finder.find(fn):
            runner.run(test)
    assert runner.failures == 0 and runner.tries >= 4


@pytest.mark.parametrize("p", [np.float64(2.5), np.int64(2), 2, "float64 tensor", "int tensor"])
def test_the_exponent_keeps_the_input_dtype(p):
    """As in PyTorch, a NumPy number, an int or a 0-dim tensor of another dtype does not promote."""
    p = {"float64 tensor": nl.tensor(2.5, dtype=nl.float64), "int tensor": nl.tensor(2)}.get(p, p) \
        if isinstance(p, str) else p
    x = nl.rand(2, 3, 4, 4)
    assert F.lp_pool2d(x, p, 2).dtype == nl.float32
    assert F.lp_pool1d(x[:, :, 0], p, 2).dtype == nl.float32


def test_stride_given_as_a_numpy_integer_or_an_empty_tuple():
    x = nl.rand(1, 2, 6, 6)
    assert F.lp_pool2d(x, 2, 2, stride=np.int64(1)).shape == (1, 2, 5, 5)
    assert F.lp_pool2d(x, 2, 2, stride=()).shape == F.lp_pool2d(x, 2, 2).shape == (1, 2, 3, 3)
    assert F.max_pool2d(x, 2, stride=np.int64(1)).shape == F.avg_pool2d(x, 2, stride=np.int64(1)).shape


def test_an_infinite_tensor_exponent_is_refused():
    with pytest.raises(ValueError, match=r"lp_pool1d: a Tensor norm_type must be finite, got inf"):
        F.lp_pool1d(nl.rand(1, 1, 4), nl.tensor(float("inf")), 2)


@pytest.mark.parametrize("args, error, match", [
    (("2", 2), TypeError, r"LPPool2d: norm_type must be a number or a one-element Tensor, got str"),
    ((0, 2), ValueError, r"LPPool2d: norm_type must be non-zero"),
    ((2, 0), ValueError, r"LPPool2d: kernel_size must be an int >= 1 or 2 of them, got 0"),
    ((2, 2, (1, 0)), ValueError, r"LPPool2d: stride must be an int >= 1 or 2 of them, got \(1, 0\)"),
])
def test_a_bad_layer_is_refused_where_it_is_built(args, error, match):
    with pytest.raises(error, match=match):
        nl.nn.LPPool2d(*args)
