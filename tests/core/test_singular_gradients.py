"""Gradients at the points where an op's derivative formula breaks down (0/0, 0 * inf,
ties) equal PyTorch's: norm and pow at zero, abs, sqrt and log at zero, max/min ties."""
import numpy as np
import pytest

import nnlite as nl

X0 = np.array([0.0, 0.0, 0.0])
TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])

# name -> (input values, function of the tensor, works for both libraries)
CASES = {
    "norm_at_zero": (X0, lambda x: x.norm()),
    "norm_dim_at_zero": (np.array([[0.0, 0.0], [3.0, 4.0]]), lambda x: x.norm(dim=1).sum()),
    "norm_p3_at_zero": (X0, lambda x: x.norm(p=3)),
    "norm_p1_at_zero": (X0, lambda x: x.norm(p=1)),
    "norm_inf_ties": (np.array([-2.0, 2.0, 1.0]), lambda x: x.norm(p=float("inf"))),
    "norm_p_half_with_a_zero": (np.array([0.0, 1.0, -2.0]), lambda x: x.norm(p=0.5)),
    "norm_p_half_dim_with_zeros": (np.array([[0.0, 0.0], [0.0, 4.0]]), lambda x: x.norm(p=0.5, dim=1).sum()),
    "norm_p_minus_one_with_a_zero": (np.array([0.0, 1.0, -2.0]), lambda x: x.norm(p=-1)),
    "norm_p_minus_half": (np.array([0.5, 1.0, -2.0]), lambda x: x.norm(p=-0.5)),
    "norm_fro_dim": (np.array([[0.0, 1.0], [3.0, -4.0]]), lambda x: x.norm(p="fro", dim=1).sum()),
    "pow_zero_exponent_at_zero": (X0, lambda x: (x ** 0.0).sum()),
    "pow_half_at_zero": (X0, lambda x: (x ** 0.5).sum()),
    "pow_two_at_zero": (X0, lambda x: (x ** 2.0).sum()),
    "pow_one_at_zero": (X0, lambda x: (x ** 1.0).sum()),
    "abs_at_zero": (np.array([0.0, -1.0, 2.0]), lambda x: x.abs().sum()),
    "sqrt_at_zero": (X0, lambda x: x.sqrt().sum()),
    "sqrt_at_zero_zero_upstream": (X0, lambda x: (x.sqrt() * 0.0).sum()),
    "log_at_zero_zero_upstream": (X0, lambda x: (x.log() * 0.0).sum()),
    "log_at_zero": (np.array([0.0, 1.0]), lambda x: x.log().sum()),
    "max_all_ties": (TIES, lambda x: x.max()),
    "min_all_ties": (TIES, lambda x: x.min()),
    "max_all_with_nans": (np.array([1.0, np.nan, 3.0, np.nan]), lambda x: x.max()),
    "min_all_with_a_nan": (np.array([[2.0, np.nan], [2.0, -1.0]]), lambda x: x.min()),
    "amax_with_a_nan": (np.array([1.0, np.nan, 3.0]), lambda x: x.amax()),
    "amax_dim_with_a_nan_row": (np.array([[3.0, 3.0], [np.nan, 1.0]]), lambda x: x.amax(dim=1).sum()),
    "amax_dim_ties": (TIES, lambda x: x.amax(dim=1).sum()),
    "max_dim_ties": (TIES, lambda x: x.max(dim=1)[0].sum()),
    "min_dim_ties": (TIES, lambda x: x.min(dim=0)[0].sum()),
    "maximum_ties": (TIES, lambda x: x.maximum(x.detach() * 0 + 2.0).sum()),
    "clamp_at_bounds": (np.array([0.0, 1.0, 0.5]), lambda x: x.clamp(0.0, 1.0).sum()),
    "relu_at_zero": (X0, lambda x: x.relu().sum()),
    "relu_at_nan": (np.array([np.nan, -1.0, 2.0]), lambda x: x.relu().sum()),
    "std_of_constant": (np.array([1.0, 1.0, 1.0]), lambda x: x.std()),
    "var_of_one_element": (np.array([2.0]), lambda x: x.var(correction=0)),
    "rsqrt_at_zero": (np.array([0.0, 1.0]), lambda x: x.rsqrt().sum()),
    "reciprocal_at_zero": (np.array([0.0, 1.0]), lambda x: (1 / x).sum()),
    "logsumexp_all_minus_inf": (np.array([-np.inf, -np.inf]), lambda x: x.logsumexp(0)),
    "logsumexp_some_minus_inf": (np.array([-np.inf, 1.0]), lambda x: x.logsumexp(0)),
    "softmax_masked_with_minus_inf": (np.array([-np.inf, 1.0, 2.0]), lambda x: (x.softmax(0) * x.softmax(0)).sum()),
    "log_softmax_masked_with_minus_inf": (np.array([-np.inf, 1.0, 2.0]), lambda x: x.log_softmax(0)[1:].sum()),
}


def _grad(make, values, fn):
    x = make(values)
    fn(x).backward()
    return np.array(x.grad.numpy())


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_at_singular_point_matches_torch(case):
    torch = pytest.importorskip("torch")
    values, fn = CASES[case]
    with np.errstate(all="ignore"):
        got = _grad(lambda v: nl.tensor(v, dtype=nl.float64, requires_grad=True), values, fn)
    want = _grad(lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True), values, fn)
    np.testing.assert_allclose(got, want, equal_nan=True, err_msg=case)


def test_the_issue_examples_without_torch():
    x = nl.zeros(3, dtype=nl.float64, requires_grad=True)
    x.norm().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])
    x.grad = None
    (x ** 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])


def test_max_of_everything_shares_the_gradient_among_its_nans():
    x = nl.tensor([1.0, np.nan, 3.0, np.nan], dtype=nl.float64, requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.0, 0.5]


def test_root_passes_finite_difference_checks_away_from_zero():
    from nnlite.ops.vector_norm import Root
    s = nl.tensor([0.5, 2.0, 3.0], dtype=nl.float64, requires_grad=True)
    for p in (2, 3, 1.5):
        assert nl.autograd.gradcheck(lambda t: Root.apply(t, p), [s])
        assert nl.autograd.gradgradcheck(lambda t: Root.apply(t, p), [s])
    x = nl.tensor([[0.3, -1.2], [2.0, 0.7]], dtype=nl.float64, requires_grad=True)
    assert nl.autograd.gradcheck(lambda t: t.norm(dim=1), [x])
    assert nl.autograd.gradcheck(lambda t: t.std(dim=0), [x])


def test_norm_below_one_gives_a_zero_entry_a_zero_slope_without_torch():
    # d||x||_p/dx_i = sign(x_i) |x_i|^(p-1) ||x||_p^(1-p), taken as 0 at x_i = 0
    x = nl.tensor([0.0, 1.0, -2.0], dtype=nl.float64, requires_grad=True)
    n = x.norm(p=0.5)
    n.backward()
    expected = [0.0, n.item() ** 0.5, -(2.0 ** -0.5) * n.item() ** 0.5]
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-14)
    y = nl.tensor([0.3, 1.0, -2.0], dtype=nl.float64, requires_grad=True)
    for p in (0.5, -1, -0.5):
        assert nl.autograd.gradcheck(lambda t: t.norm(p=p), [y])
        assert nl.autograd.gradgradcheck(lambda t: t.norm(p=p), [y])


@pytest.mark.parametrize("p", [0.5, -0.5])
def test_norm_below_one_gives_a_zero_entry_the_nan_of_a_nan_norm(p):
    # a zero's slope is 0 times the norm's: NaN when a NaN entry made the norm NaN, as in PyTorch
    x = nl.tensor([0.0, float("nan"), 2.0], dtype=nl.float64, requires_grad=True)
    x.norm(p=p).backward()
    assert np.isnan(x.grad.data).all()
    y = nl.tensor([0.0, 0.0, 3.0], dtype=nl.float64, requires_grad=True)
    y.norm(p=p).backward()
    assert np.isfinite(y.grad.data).all() and y.grad.data[0] == 0.0


def test_norm_counts_nonzeros_at_p_zero_and_takes_fro_along_a_dim():
    x = nl.tensor([[0.0, 2.0, -1.0], [3.0, 4.0, 0.0]])
    assert x.norm(p=0).item() == 4.0 and x.norm(p=0, dim=1).tolist() == [2.0, 2.0]
    assert nl.tensor([np.nan, 1.0, 0.0]).norm(p=0).item() == 2.0   # NaN is not zero
    np.testing.assert_allclose(x.norm(p="fro", dim=1).data, [5.0 ** 0.5, 5.0], rtol=1e-6)
    with pytest.raises(ValueError, match="p must be a number or 'fro', got 'nuc'"):
        x.norm(p="nuc")


def test_relu_passes_the_gradient_of_nan_as_torch_does():
    x = nl.tensor([np.nan, -1.0, 0.0, 2.0], requires_grad=True)
    nl.relu(x).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0, 1.0]
