"""Elementary functions, rounding, scans, prod/all/any: what the op table cannot say.

The table (op_table.py) checks each op's gradient on smooth random inputs. Here:
PyTorch's values and gradients at the edges (0, ±inf, NaN, domain boundaries) in
float64 and float32, rounding half to even, integer inputs and type promotion,
zeros in products, ties in running maxima, empty and strided tensors, the Tensor
method forms and the errors for bad input. Tests without ``torch_or_skip()`` check
conventions that follow from the definitions alone.
"""
import doctest
import math
import operator

import numpy as np
import pytest

import nnlite as nl
from helpers import central_difference, torch_or_skip

INF, NAN = math.inf, math.nan
# 1e-10 rather than 1e-20: its square must stay a normal float32 in atan2's slope
EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1e-10, -1e-10, 100.0, -100.0, 1000.0, -1000.0,
         INF, -INF, NAN]
# By the result's dtype: last-bit differences between NumPy's and PyTorch's kernels, and
# subnormal results one library flushes to 0 and the other keeps, are not disagreements.
# Integer and bool results must be equal.
TOLERANCE = {"float64": dict(rtol=1e-12, atol=4 * np.finfo(np.float64).eps),
             "float32": dict(rtol=1e-5, atol=4 * np.finfo(np.float32).eps),
             "float16": dict(rtol=1e-3, atol=4 * np.finfo(np.float16).eps)}

UNARY = ["log1p", "expm1", "log2", "log10", "exp2", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
         "acosh", "atanh", "sinc", "deg2rad", "rad2deg", "logit", "floor", "ceil", "round", "trunc", "fix",
         "frac", "nan_to_num"]
BINARY = ["atan2", "arctan2", "hypot", "logaddexp", "logaddexp2", "xlogy", "remainder", "fmod"]


def _dtype_name(t):
    return str(t.dtype).removeprefix("torch.")


def _run(lib, fn, arrays, dtype, torch=None):
    """fn(lib, *tensors) on tensors of ``lib`` made from ``arrays``; returns the output array, its
    dtype name and each floating input's gradient for an all-ones output gradient."""
    if lib is nl:
        xs = [nl.tensor(np.asarray(a, dtype=dtype)) for a in arrays]
    else:
        xs = [torch.tensor(np.asarray(a, dtype=dtype)) for a in arrays]
    for x in xs:
        if x.is_floating_point():
            x.requires_grad_(True)
    with np.errstate(all="ignore"):
        out = fn(lib, *xs)
        y = out[0] if isinstance(out, tuple) else out
        values = y.data if lib is nl else y.detach().numpy()
        grads = []
        if y.requires_grad:
            seed = nl.ones(*y.shape, dtype=y.dtype) if lib is nl else torch.ones_like(y)
            y.backward(seed)
            grads = [x.grad.data if lib is nl else x.grad.numpy() for x in xs if x.requires_grad]
    return np.array(values), _dtype_name(y), [np.array(g) for g in grads]


def _same_as_torch(fn, arrays, dtype=np.float64, gradients=True):
    torch = torch_or_skip()
    ours = _run(nl, fn, arrays, dtype)
    theirs = _run(torch, fn, arrays, dtype, torch)
    tol = TOLERANCE.get(ours[1], dict(rtol=0, atol=0))
    assert ours[1] == theirs[1], f"dtype {ours[1]} vs PyTorch's {theirs[1]}"
    assert ours[0].shape == theirs[0].shape
    np.testing.assert_allclose(ours[0], theirs[0], equal_nan=True, err_msg="values", **tol)
    if gradients:
        assert len(ours[2]) == len(theirs[2])
        for mine, want in zip(ours[2], theirs[2]):
            np.testing.assert_allclose(mine, want, equal_nan=True, err_msg="gradient", **tol)


# ------------------------------------------------------------------- edges ---

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_values_and_gradients_at_edges_match_torch(name, dtype):
    # logit's slope at -0.0 is +inf in PyTorch's scalar loop and -inf in some of its vector loops
    # (which one runs depends on the CPU and the dtype): nnlite's +inf is tested on its own below
    edges = [0.0 if name == "logit" and e == 0 else e for e in EDGES]
    _same_as_torch(lambda L, x: getattr(L, name)(x), [edges], dtype)


@pytest.mark.parametrize("dtype", [nl.float64, nl.float32], ids=["float64", "float32"])
def test_logit_slope_at_either_zero_is_plus_infinity(dtype):
    x = nl.tensor([0.0, -0.0, 1.0], dtype=dtype, requires_grad=True)
    nl.logit(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [INF, INF, INF])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_values_and_gradients_on_a_grid_of_edges_match_torch(name, dtype):
    a, b = (g.ravel() for g in np.meshgrid(EDGES, EDGES))
    _same_as_torch(lambda L, x, y: getattr(L, name)(x, y), [a, b], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["lerp", "addcmul", "addcdiv"])
def test_three_operand_ops_on_a_grid_of_edges_match_torch(name, dtype):
    weights = [0.0, 0.3, 0.5, 1.0, -0.5, 2.0, INF, NAN]
    a, b, c = (g.ravel() for g in np.meshgrid(EDGES, EDGES, weights))
    fn = {"lerp": lambda L, x, y, w: L.lerp(x, y, w),
          "addcmul": lambda L, x, y, z: L.addcmul(x, y, z, value=0.5),
          "addcdiv": lambda L, x, y, z: L.addcdiv(x, y, z, value=-2)}[name]
    _same_as_torch(fn, [a, b, c], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5, 0.75, 1.0, -1.0, NAN])
def test_lerp_with_a_number_weight_matches_torch(weight, dtype):
    a, b = (g.ravel() for g in np.meshgrid(EDGES, EDGES))
    _same_as_torch(lambda L, x, y: L.lerp(x, y, weight), [a, b], dtype)


@pytest.mark.parametrize("eps", [0.25, 0.0, 0.6, -0.1])
def test_logit_with_eps_at_edges_matches_torch(eps):
    edges = [0.0 if e == 0 else e for e in EDGES]   # -0.0: see the edge test above
    _same_as_torch(lambda L, x: L.logit(x, eps=eps), [edges + [0.25, 0.75, 0.6, 0.4]])


@pytest.mark.parametrize("options", [{}, {"nan": 1.5}, {"posinf": 7.0, "neginf": -8.0}, {"posinf": 1e300}])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16], ids=["float64", "float32", "float16"])
def test_nan_to_num_defaults_and_replacements_match_torch(options, dtype):
    _same_as_torch(lambda L, x: L.nan_to_num(x, **options), [EDGES], dtype, gradients=dtype != np.float16)


def test_tiny_arguments_keep_their_digits():
    tiny = nl.tensor([1e-20, -3e-300], dtype=nl.float64)
    for name in ["log1p", "expm1", "asinh", "atanh", "atan", "tan", "sinh", "asin"]:
        np.testing.assert_allclose(getattr(nl, name)(tiny).data, tiny.data, rtol=1e-15, err_msg=name)
    np.testing.assert_array_equal(nl.sinc(tiny).data, [1.0, 1.0])


@pytest.mark.parametrize("name,reference,points", [
    ("log1p", math.log1p, [-0.999, -0.5, 1e-8, 0.3, 7.0, 1e300]),
    ("expm1", math.expm1, [-700.0, -1.0, 1e-8, 0.3, 700.0]),
    ("log2", math.log2, [1e-300, 0.5, 3.0, 1e300]),
    ("log10", math.log10, [1e-300, 0.5, 3.0, 1e300]),
    ("exp2", lambda x: 2.0 ** x, [-1000.0, -3.5, 0.3, 1000.0]),
    ("tan", math.tan, [-1.5, -0.3, 1.0, 10.0]),
    ("asin", math.asin, [-1.0, -0.3, 0.999]),
    ("acos", math.acos, [-1.0, -0.3, 0.999, 1.0]),
    ("atan", math.atan, [-1e300, -0.3, 2.0]),
    ("sinh", math.sinh, [-700.0, -0.3, 2.0, 700.0]),
    ("cosh", math.cosh, [-700.0, -0.3, 2.0, 700.0]),
    ("asinh", math.asinh, [-1e300, -0.3, 2.0]),
    ("acosh", math.acosh, [1.0, 1.5, 1e300]),
    ("atanh", math.atanh, [-0.999, 0.3, 0.5]),
])
def test_values_match_pythons_math_module(name, reference, points):
    got = getattr(nl, name)(nl.tensor(points, dtype=nl.float64)).data
    np.testing.assert_allclose(got, [reference(p) for p in points], rtol=1e-14)


def test_conventions_at_singular_points():
    """The values and slopes PyTorch defines where the formulas give 0/0 or 0 * inf."""
    with np.errstate(all="ignore"):
        x = nl.tensor([0.0, 0.0, 0.0, 0.0], dtype=nl.float64, requires_grad=True)
        y = nl.tensor([0.0, INF, 1.0, NAN], dtype=nl.float64, requires_grad=True)
        out = nl.xlogy(x, y)
        np.testing.assert_array_equal(out.data, [0.0, 0.0, 0.0, NAN])
        out.backward(nl.ones(4, dtype=nl.float64))
        assert x.grad.data[0] == 0.0 and x.grad.data[2] == 0.0   # d/dx held at 0 where y <= 0; log 1 = 0

        origin = nl.zeros(3, dtype=nl.float64, requires_grad=True)
        nl.atan2(origin, origin).sum().backward()
        np.testing.assert_array_equal(origin.grad.data, [0.0, 0.0, 0.0])

        z = nl.tensor([0.0, 1.0], dtype=nl.float64, requires_grad=True)
        s = nl.sinc(z)
        s.sum().backward()
        assert s.data[0] == 1.0 and z.grad.data[0] == 0.0

        p = nl.tensor([0.0, 1.0, -1.0], dtype=nl.float64)
        np.testing.assert_array_equal(nl.logit(p).data, [-INF, INF, NAN])
        np.testing.assert_array_equal(nl.log1p(nl.tensor([-1.0])).data, [-INF])
    big = np.finfo(np.float32)
    np.testing.assert_array_equal(nl.nan_to_num(nl.tensor([NAN, INF, -INF])).data, [0.0, big.max, big.min])


def test_second_derivative_of_sinc_at_zero_is_minus_pi_squared_over_three():
    # sinc x = 1 - (pi x)^2 / 6 + ..., so sinc''(0) = -pi^2 / 3 (PyTorch gives NaN there)
    x = nl.tensor([0.0, -0.0, 0.5], dtype=nl.float64, requires_grad=True)
    (g,) = nl.grad(nl.sinc(x).sum(), x, create_graph=True)
    (h,) = nl.grad(g.sum(), x)
    assert g.data[0] == 0.0 and g.data[1] == 0.0
    np.testing.assert_allclose(h.data[:2], [-math.pi ** 2 / 3] * 2, rtol=1e-15)
    near = nl.tensor([0.0, 1e-4, -0.3, 0.5], dtype=nl.float64, requires_grad=True)
    assert nl.autograd.gradgradcheck(nl.sinc, [near])   # the second derivative is continuous at 0


def test_step_functions_have_a_zero_gradient_and_frac_a_gradient_of_one():
    for name in ["floor", "ceil", "round", "trunc", "fix"]:
        x = nl.tensor([1.5, -2.5, 0.2], requires_grad=True)
        getattr(nl, name)(x).backward(nl.tensor([1.0, INF, NAN]))
        np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])   # zeros, whatever arrives
    x = nl.tensor([1.5, -2.5, INF], requires_grad=True)
    nl.frac(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 1.0])


# ---------------------------------------------------------------- rounding ---

def test_round_takes_halves_to_even():
    halves = nl.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(nl.round(halves).data, [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 4.0])
    assert np.signbit(nl.round(halves).data[2])   # -0.5 rounds to -0.0
    np.testing.assert_array_equal(nl.round(nl.tensor([25.0, 35.0, -15.0]), decimals=-1).data, [20.0, 40.0, -20.0])
    np.testing.assert_array_equal(nl.round(nl.tensor([0.125, 0.375]), decimals=2).data,
                                  np.array([0.12, 0.38], np.float32))


@pytest.mark.parametrize("decimals", [-3, -1, 0, 1, 2, 4, 40, 400, -400])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_round_with_decimals_matches_torch_exactly(decimals, dtype):
    rng = np.random.default_rng(decimals % 17)
    x = rng.standard_normal(500) * 10.0 ** rng.integers(-3, 5, 500)
    ties = (np.arange(-20, 20) + 0.5) * 10.0 ** -max(min(decimals, 5), -5)
    values = np.concatenate([x, ties, EDGES])
    _same_as_torch(lambda L, t: L.round(t, decimals=decimals), [values], dtype)
    torch = torch_or_skip()
    ours = nl.round(nl.tensor(values.astype(dtype)), decimals=decimals).data
    theirs = torch.round(torch.tensor(values.astype(dtype)), decimals=decimals).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_remainder_has_the_divisors_sign_and_fmod_the_dividends():
    a = nl.tensor([5, -5, 5, -5])
    b = nl.tensor([3, 3, -3, -3])
    assert nl.remainder(a, b).tolist() == [5 % 3, -5 % 3, 5 % -3, -5 % -3]
    assert nl.fmod(a, b).tolist() == [math.fmod(5, 3), math.fmod(-5, 3), math.fmod(5, -3), math.fmod(-5, -3)]
    assert nl.remainder(a, b).dtype == nl.int64 and nl.fmod(a, b).dtype == nl.int64
    assert (a % 3).tolist() == nl.remainder(a, 3).tolist() and (7 % b).tolist() == [7 % 3, 7 % 3, 7 % -3, 7 % -3]


# ------------------------------------------------------- dtypes, promotion ---

@pytest.mark.parametrize("name", [n for n in UNARY if n not in ("frac",)])
def test_integer_tensors_follow_torch(name):
    for values, dtype in [([0, 1, 2, -3], np.int64), ([1, 4], np.int32), ([0, 3, 250], np.uint8)]:
        _same_as_torch(lambda L, x: getattr(L, name)(x), [values], dtype)


def test_integer_tensors_give_the_default_float_dtype():
    ints = nl.tensor([1, 2, 3])
    assert nl.log1p(ints).dtype == nl.float32
    np.testing.assert_array_equal(nl.log1p(ints).data, nl.log1p(nl.tensor([1.0, 2.0, 3.0])).data)
    assert nl.atan2(ints, ints).dtype == nl.float32 and nl.xlogy(ints, 2).dtype == nl.float32
    nl.set_default_dtype(nl.float64)
    try:
        assert nl.sinh(ints).dtype == nl.float64 and nl.deg2rad(ints).dtype == nl.float64
    finally:
        nl.set_default_dtype(nl.float32)


def test_rounding_an_integer_tensor_keeps_its_dtype_in_a_new_tensor():
    for name in ["floor", "ceil", "round", "trunc", "fix"]:
        x = nl.tensor([1, -2, 3], dtype=nl.int32)
        y = getattr(nl, name)(x)
        assert y.dtype == nl.int32 and y.tolist() == [1, -2, 3]
        y.data[0] = 9
        assert x.tolist()[0] == 1, name


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int32, np.int64, np.float32, np.float64])
def test_counting_ops_on_integers_and_bools_match_torch(dtype):
    values = np.array([[1, 0, 1], [1, 1, 0]]).astype(dtype)
    for fn in [lambda L, x: L.cumsum(x, 1), lambda L, x: L.cumprod(x, 0), lambda L, x: L.prod(x),
               lambda L, x: L.prod(x, 1, keepdim=True), lambda L, x: L.cumsum(x, 0, dtype=L.float64),
               lambda L, x: L.prod(x, dtype=L.float32), lambda L, x: L.cummax(x, 1)[0],
               lambda L, x: L.cummin(x, 0)[1], lambda L, x: L.all(x, 1), lambda L, x: L.any(x),
               lambda L, x: L.nan_to_num(x)]:
        _same_as_torch(fn, [values], dtype)


OPERANDS = {
    "bool": lambda L: L.tensor([True, False]), "uint8": lambda L: L.tensor([1, 2], dtype=L.uint8),
    "int32": lambda L: L.tensor([1, 2], dtype=L.int32), "int64": lambda L: L.tensor([1, 2]),
    "float16": lambda L: L.tensor([1.0, 2.0], dtype=L.float16), "float32": lambda L: L.tensor([1.0, 2.0]),
    "float64": lambda L: L.tensor([1.0, 2.0], dtype=L.float64),
    "0-dim int32": lambda L: L.tensor(3, dtype=L.int32), "0-dim float64": lambda L: L.tensor(3.0, dtype=L.float64),
    "0-dim bool": lambda L: L.tensor(True), "number True": lambda L: True, "number 2": lambda L: 2,
    "number 2.5": lambda L: 2.5,
}


# torch.result_type needs a tensor among the two: pairs of numbers are left out
PAIRS = [(a, b) for a in sorted(OPERANDS) for b in sorted(OPERANDS) if not (a + b).count("number") == 2]


@pytest.mark.parametrize("first,second", PAIRS)
def test_result_type_matches_torch(first, second):
    torch = torch_or_skip()
    a, b = OPERANDS[first], OPERANDS[second]
    assert str(nl.result_type(a(nl), b(nl))) == str(torch.result_type(a(torch), b(torch))).removeprefix("torch.")


# PyTorch's atan2, hypot and logaddexp take tensors only, and hypot and logaddexp have no
# integer kernel (nnlite computes them in floats): those combinations are left out
PROMOTIONS = [(name, pair) for name in ["atan2", "xlogy", "remainder", "fmod", "hypot", "logaddexp"]
              for pair in [("int64", "float32"), ("float32", "0-dim float64"), ("float32", "float64"),
                           ("int32", "int64"), ("0-dim int32", "float16"), ("int32", "number 2"),
                           ("float32", "number 2.5"), ("int64", "number 2.5")]
              if not (name in ("atan2", "hypot", "logaddexp") and pair[1].startswith("number"))
              and not (name in ("hypot", "logaddexp") and "float" not in "".join(pair))]


@pytest.mark.parametrize("name,pair", PROMOTIONS, ids=[f"{n}-{a}-{b}" for n, (a, b) in PROMOTIONS])
def test_binary_ops_promote_as_torch(name, pair):
    torch = torch_or_skip()
    a, b = OPERANDS[pair[0]], OPERANDS[pair[1]]
    ours, theirs = getattr(nl, name)(a(nl), b(nl)), getattr(torch, name)(a(torch), b(torch))
    assert str(ours.dtype) == _dtype_name(theirs)
    np.testing.assert_allclose(ours.data.astype(np.float64), theirs.double().numpy(), rtol=1e-3)


def test_gradients_come_back_in_each_operands_dtype():
    a = nl.tensor([1.0, 2.0], dtype=nl.float32, requires_grad=True)
    b = nl.tensor([3.0, 4.0], dtype=nl.float64, requires_grad=True)
    out = nl.atan2(a, b)
    assert out.dtype == nl.float64
    out.sum().backward()
    assert a.grad.dtype == nl.float32 and b.grad.dtype == nl.float64


# ----------------------------------------------------------- zeros in products ---

ZERO_CASES = [[2.0, 0.0, 3.0, 4.0], [0.0, 2.0, 3.0], [2.0, 3.0, 0.0], [2.0, 0.0, 3.0, 0.0, 5.0],
              [0.0, 0.0], [0.0], [1.5, -2.0, 3.0]]


@pytest.mark.parametrize("values", ZERO_CASES, ids=[str(v) for v in ZERO_CASES])
def test_cumprod_and_prod_gradients_with_zeros_match_torch(values):
    _same_as_torch(lambda L, x: L.cumprod(x, 0) * L.arange(1.0, len(values) + 1), [values])
    _same_as_torch(lambda L, x: L.prod(x), [values])
    _same_as_torch(lambda L, x: L.prod(x, 0, keepdim=True), [values], np.float32)


def test_prod_and_cumprod_with_zeros_along_each_dim_match_torch():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 4.0], [1.0, 5.0, -2.0], [0.0, 1.0, 2.0]])
    for dim in (0, 1, -1):
        _same_as_torch(lambda L, t: L.prod(t, dim) * L.arange(1.0, t.shape[1 - dim % 2] + 1), [x])
        _same_as_torch(lambda L, t: L.cumprod(t, dim) ** 2, [x])
    _same_as_torch(lambda L, t: L.prod(t), [x[2:]])


def _hessian_vector_product(lib, fn, x, v, torch=None):
    t = (nl.tensor(x, dtype=nl.float64, requires_grad=True) if lib is nl
         else torch.tensor(x, dtype=torch.float64, requires_grad=True))
    w = nl.tensor(v, dtype=nl.float64) if lib is nl else torch.tensor(v, dtype=torch.float64)
    grad = nl.grad if lib is nl else torch.autograd.grad
    y = fn(lib, t)
    (g,) = grad(y, t, w[: y.numel()].reshape(y.shape), create_graph=True)
    (h,) = grad((g * w).sum(), t)
    return np.array(h.data if lib is nl else h.numpy())


@pytest.mark.parametrize("case", ["cumprod_zeros", "prod_zeros", "prod_one_zero", "logcumsumexp_huge",
                                  "xlogy", "lerp", "cummax_ties"])
def test_second_derivatives_match_torch(case):
    torch = torch_or_skip()
    x, fn = {
        "cumprod_zeros": ([2.0, 0.0, 3.0, 0.0, 5.0], lambda L, t: L.cumprod(t, 0)),
        "prod_zeros": ([2.0, 0.0, 3.0, 0.0, 5.0], lambda L, t: L.prod(t)),
        "prod_one_zero": ([2.0, 0.0, 3.0, -1.0, 5.0], lambda L, t: L.prod(t)),
        "logcumsumexp_huge": ([1000.0, -1000.0, 3.0, 2.0, 999.0], lambda L, t: L.logcumsumexp(t, 0)),
        "xlogy": ([0.5, 2.0, 3.0, 1.0, 4.0], lambda L, t: L.xlogy(t, t * t)),
        "lerp": ([0.5, 2.0, 3.0, 1.0, 4.0], lambda L, t: L.lerp(t, t * t, t.sin())),
        "cummax_ties": ([1.0, 3.0, 3.0, 2.0, 3.0], lambda L, t: L.cummax(t * t, 0)[0]),
    }[case]
    v = [0.3, -1.2, 0.7, 2.0, 1.1]
    np.testing.assert_allclose(_hessian_vector_product(nl, fn, x, v),
                               _hessian_vector_product(torch, fn, x, v, torch), rtol=1e-10, atol=1e-12)


def test_second_derivative_of_cumprod_at_zeros_matches_finite_differences():
    """After the first zero the gradient is 0, but its slopes in the zeros are not: the
    Hessian-vector product must see them (a projection like sum(g * g) would not)."""
    x = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0, 0.5, 3.0]])
    v = np.random.default_rng(1).standard_normal(x.shape)

    def directional_slope(values):   # v . grad f with f = sum(v * cumprod(x))
        t = nl.tensor(values, requires_grad=True)
        (g,) = nl.grad(nl.cumprod(t, 1), t, nl.tensor(v))
        return float((g.data * v).sum())

    t = nl.tensor(x, requires_grad=True)
    (g,) = nl.grad(nl.cumprod(t, 1), t, nl.tensor(v), create_graph=True)
    (hessian_v,) = nl.grad((g * nl.tensor(v)).sum(), t)
    np.testing.assert_allclose(hessian_v.data, central_difference(directional_slope, x), rtol=1e-7, atol=1e-8)


# ------------------------------------------------------------------- scans ---

def test_logcumsumexp_is_stable_and_matches_torch():
    cases = [[1000.0, -1000.0, 3.0, 1000.0], [-INF, 0.0, 1.0], [-INF, -INF, 0.0], [0.0, INF, 1.0],
             [-1e308, 1e308, 0.0], [1e-3, 2e-3, -5.0]]
    for values in cases:
        for dtype in (np.float64, np.float32):
            _same_as_torch(lambda L, x: L.logcumsumexp(x, 0) * L.arange(1.0, len(values) + 1), [values], dtype)


@pytest.mark.parametrize("values", [[1.0, 3.0, 3.0, 2.0, 3.0, 5.0], [1.0, NAN, 2.0, NAN, 3.0],
                                    [0.0, -0.0, 0.0, -1.0], [-INF, INF, INF, 1.0], [2.0, 2.0, 2.0]])
def test_cummax_and_cummin_ties_and_nan_match_torch(values):
    torch = torch_or_skip()
    for name in ("cummax", "cummin"):
        for signed in (values, [-v for v in values]):
            ours = getattr(nl, name)(nl.tensor(signed), 0)
            theirs = getattr(torch, name)(torch.tensor(signed), 0)
            np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
            np.testing.assert_array_equal(ours.values.data, theirs.values.numpy())
            assert ours.indices.dtype == nl.int64
            _same_as_torch(lambda L, x: getattr(L, name)(x, 0).values * L.arange(1.0, len(signed) + 1), [signed])


def test_cummax_values_are_the_running_maximum_found_at_the_indices():
    x = nl.tensor(np.random.default_rng(0).integers(0, 4, (3, 6)).astype(np.float32))
    for dim in (0, 1):
        values, indices = nl.cummax(x, dim)
        np.testing.assert_array_equal(values.data, np.maximum.accumulate(x.data, axis=dim))
        np.testing.assert_array_equal(np.take_along_axis(x.data, indices.data, axis=dim), values.data)
        steps = np.diff(indices.data, axis=dim)
        assert np.all(steps >= 0)   # an index never moves back: ties go to the latest element
    assert nl.cummax(nl.tensor([1.0, 3.0, 3.0, 2.0]), 0).indices.tolist()[2] == 2


def test_scans_of_zero_dim_tensors_match_torch():
    for fn in [lambda L, x: L.cumsum(x, 0), lambda L, x: L.cumprod(x, -1), lambda L, x: L.logcumsumexp(x, 0),
               lambda L, x: L.cummax(x, 0)[0], lambda L, x: L.cummin(x, -1)[1], lambda L, x: L.prod(x, 0),
               lambda L, x: L.prod(x), lambda L, x: L.all(x, 0)]:
        _same_as_torch(fn, [np.array(2.5)])


# ------------------------------------------------------------- all and any ---

@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int64, np.float32, np.float64])
def test_all_and_any_match_torch(dtype):
    torch = torch_or_skip()
    data = np.array([[[1, 0], [2, 3]], [[0, 0], [5, 6]], [[7, 8], [9, 1]]]).astype(dtype)
    for name in ("all", "any"):
        for options in [{}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)}, {"keepdim": True}]:
            ours = getattr(nl, name)(nl.tensor(data), **options)
            theirs = getattr(torch, name)(torch.tensor(data), **options)
            assert str(ours.dtype) == _dtype_name(theirs), (name, options)
            np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_all_and_any_conventions_and_no_gradient():
    x = nl.tensor([[NAN, 1.0], [0.0, 2.0]], requires_grad=True)
    assert nl.all(x[0]).item() is True and nl.any(x[1]).item() is True   # NaN counts as nonzero
    assert nl.all(nl.zeros(0)).item() is True and nl.any(nl.zeros(0)).item() is False
    assert not x.all().requires_grad and x.any(1).dtype == nl.bool_
    assert x.all(dim=1, keepdim=True).shape == (2, 1)


# -------------------------------------------------------- empty and strided ---

EVERY_OP = {
    **{name: (lambda n: lambda L, x: getattr(L, n)(x))(name) for name in UNARY},
    "atan2": lambda L, x: L.atan2(x, x * 2 - 1), "hypot": lambda L, x: L.hypot(x, x + 1),
    "logaddexp": lambda L, x: L.logaddexp(x, x * 3), "logaddexp2": lambda L, x: L.logaddexp2(x * 3, x),
    "xlogy": lambda L, x: L.xlogy(x, x * x + 1), "remainder": lambda L, x: L.remainder(x * 5, x + 3),
    "fmod": lambda L, x: L.fmod(x * 5, -2.5), "lerp": lambda L, x: L.lerp(x, x * x, 0.3),
    "lerp_tensor": lambda L, x: L.lerp(x, x * x, x), "addcmul": lambda L, x: L.addcmul(x, x, x + 1, value=2),
    "addcdiv": lambda L, x: L.addcdiv(x, x, x * x + 1, value=2),
    "cumsum": lambda L, x: L.cumsum(x, 0), "cumsum_last": lambda L, x: L.cumsum(x, -1),
    "cumprod": lambda L, x: L.cumprod(x, 0), "cumprod_last": lambda L, x: L.cumprod(x, -1),
    "logcumsumexp": lambda L, x: L.logcumsumexp(x, 0), "logcumsumexp_last": lambda L, x: L.logcumsumexp(x, -1),
    "cummax": lambda L, x: L.cummax(x, 0)[0], "cummin_last": lambda L, x: L.cummin(x, -1)[0],
    "prod": lambda L, x: L.prod(x), "prod_dim": lambda L, x: L.prod(x, 0), "prod_last": lambda L, x: L.prod(x, -1),
    "all": lambda L, x: L.all(x, 0), "any": lambda L, x: L.any(x),
}


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)], ids=str)
@pytest.mark.parametrize("name", sorted(EVERY_OP))
def test_empty_tensors_match_torch(name, shape):
    _same_as_torch(EVERY_OP[name], [np.zeros(shape)])


@pytest.mark.parametrize("name", sorted(EVERY_OP))
def test_strided_inputs_match_torch(name):
    rng = np.random.default_rng(4)
    base = np.where(rng.random((6, 5)) < 0.2, 0.0, rng.uniform(0.1, 0.9, (6, 5)))   # zeros for prod
    _same_as_torch(lambda L, x: EVERY_OP[name](L, x.t()[::2, 1:]), [base])


# ---------------------------------------------------------- Tensor methods ---

METHODS = [("log1p", ()), ("expm1", ()), ("log2", ()), ("log10", ()), ("exp2", ()), ("tan", ()), ("asin", ()),
           ("acos", ()), ("atan", ()), ("sinh", ()), ("cosh", ()), ("asinh", ()), ("acosh", ()), ("atanh", ()),
           ("arcsin", ()), ("arccos", ()), ("arctan", ()), ("arcsinh", ()), ("arccosh", ()), ("arctanh", ()),
           ("logit", ()), ("logit", (0.1,)), ("sinc", ()), ("deg2rad", ()), ("rad2deg", ()),
           ("floor", ()), ("ceil", ()), ("round", ()), ("trunc", ()), ("fix", ()), ("frac", ()),
           ("nan_to_num", ()), ("cumsum", (1,)), ("cumprod", (0,)), ("logcumsumexp", (1,)), ("prod", ()),
           ("prod", (1,)), ("all", ()), ("any", (0,))]
OTHER = np.array([[0.7, 0.2, 0.9], [0.3, 0.5, 0.1]])


@pytest.mark.parametrize("name,args", METHODS, ids=[f"{m}{a}" for m, a in METHODS])
def test_tensor_methods_equal_the_functions(name, args):
    x = nl.tensor([[0.25, -0.5, 0.75], [0.125, 0.5, -0.25]], dtype=nl.float64)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(getattr(x, name)(*args).data, getattr(nl, name)(x, *args).data)


def test_two_operand_tensor_methods_equal_the_functions():
    x, y = nl.tensor(OTHER), nl.tensor(OTHER[::-1] + 0.5)
    for name in ["atan2", "arctan2", "hypot", "logaddexp", "logaddexp2", "xlogy", "remainder", "fmod"]:
        np.testing.assert_array_equal(getattr(x, name)(y).data, getattr(nl, name)(x, y).data, err_msg=name)
    np.testing.assert_array_equal(x.lerp(y, 0.25).data, nl.lerp(x, y, 0.25).data)
    np.testing.assert_array_equal(x.addcmul(y, y, value=3).data, nl.addcmul(x, y, y, value=3).data)
    np.testing.assert_array_equal(x.addcdiv(x, y).data, nl.addcdiv(x, x, y).data)
    np.testing.assert_array_equal(x.round(decimals=1).data, nl.round(x, 1).data)
    np.testing.assert_array_equal((x % y).data, nl.remainder(x, y).data)
    np.testing.assert_array_equal((2.0 % y).data, nl.remainder(2.0, y).data)
    for name in ("cummax", "cummin"):
        ours, theirs = getattr(x, name)(1), getattr(nl, name)(x, 1)
        np.testing.assert_array_equal(ours.values.data, theirs.values.data)
        np.testing.assert_array_equal(ours.indices.data, theirs.indices.data)
    assert x.cumsum(0, dtype=nl.float64).dtype == nl.float64 and x.prod(dtype=nl.float64).dtype == nl.float64


def test_functions_take_pytorchs_argument_names():
    t = nl.tensor([[0.5, 0.25], [0.75, 0.125]])
    assert nl.atan2(input=t, other=t).shape == (2, 2) and nl.xlogy(input=t, other=t).shape == (2, 2)
    assert nl.lerp(input=t, end=t, weight=0.5).shape == (2, 2)
    assert nl.addcmul(input=t, tensor1=t, tensor2=t, value=2).shape == (2, 2)
    assert nl.addcdiv(input=t, tensor1=t, tensor2=t, value=2).shape == (2, 2)
    assert nl.nan_to_num(input=t, nan=0.0, posinf=1.0, neginf=-1.0).shape == (2, 2)
    assert nl.logit(input=t, eps=1e-6).shape == (2, 2) and nl.round(input=t, decimals=1).shape == (2, 2)
    assert nl.cumsum(input=t, dim=1, dtype=nl.float64).shape == (2, 2)
    assert nl.cumprod(input=t, dim=0).shape == (2, 2) and nl.logcumsumexp(input=t, dim=0).shape == (2, 2)
    assert nl.cummax(input=t, dim=0).values.shape == (2, 2)
    assert nl.prod(input=t, dim=1, keepdim=True, dtype=nl.float64).shape == (2, 1)
    assert nl.all(input=t, dim=0, keepdim=False).shape == (2,) and nl.any(input=t).shape == ()
    assert nl.remainder(input=t, other=0.3).shape == (2, 2) and nl.fmod(input=t, other=0.3).shape == (2, 2)


@pytest.mark.parametrize("module", [nl.ops.promotion, nl.ops.elementary, nl.ops.trigonometric, nl.ops.rounding,
                                    nl.ops.scan, nl.ops.product, nl.ops.arithmetic], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0


# -------------------------------------------------------------- bad input ---

BAD = [
    ("cumsum dim out of range", lambda: nl.cumsum(nl.ones(2, 3), 2), IndexError, r"dim 2 .* 2 dims"),
    ("cumprod dim not an int", lambda: nl.cumprod(nl.ones(2, 3), 1.0), TypeError, r"dim must be an int, got float"),
    ("cummax dim out of range", lambda: nl.cummax(nl.ones(3), -2), IndexError, r"dim -2 .* \[-1, 0\]"),
    ("logcumsumexp on a 0-dim with dim 1", lambda: nl.logcumsumexp(nl.tensor(1.0), 1), IndexError, r"dim 1"),
    ("prod dim out of range", lambda: nl.prod(nl.ones(2, 3), 5), IndexError, r"dim 5"),
    ("prod over a tuple of dims", lambda: nl.prod(nl.ones(2, 3), (0, 1)), TypeError, r"dim must be an int or None"),
    ("all dim out of range", lambda: nl.all(nl.ones(2), 1), IndexError, r"dim 1"),
    ("atan2 shapes", lambda: nl.atan2(nl.ones(3), nl.ones(2)), ValueError,
     r"atan2: shapes must broadcast together, got \(3,\), \(2,\)"),
    ("remainder shapes", lambda: nl.remainder(nl.ones(2, 3), nl.ones(2)), ValueError, r"remainder: shapes"),
    ("lerp shapes", lambda: nl.lerp(nl.ones(2), nl.ones(3), 0.5), ValueError,
     r"lerp: shapes must broadcast together, got \(2,\), \(3,\)"),
    ("addcmul shapes", lambda: nl.addcmul(nl.ones(2), nl.ones(2), nl.ones(4)), ValueError, r"addcmul: shapes"),
    ("frac of integers", lambda: nl.frac(nl.tensor([1, 2])), TypeError, r"floating-point tensor, got int64"),
    ("floor of bools", lambda: nl.floor(nl.tensor([True])), TypeError, r"number tensor, got bool"),
    ("round decimals of integers", lambda: nl.round(nl.tensor([15]), decimals=-1), TypeError,
     r"decimals=-1 needs a floating-point tensor, got int64"),
    ("round decimals not an int", lambda: nl.round(nl.ones(2), decimals=1.5), TypeError, r"decimals must be an int"),
    ("lerp of integers", lambda: nl.lerp(nl.tensor([1]), nl.tensor([2]), 0.5), TypeError, r"floating-point input"),
    ("lerp end dtype", lambda: nl.lerp(nl.ones(2), nl.ones(2, dtype=nl.float64), 0.5), TypeError,
     r"end with the input's dtype float32, got float64"),
    ("lerp weight dtype", lambda: nl.lerp(nl.ones(2), nl.ones(2), nl.ones(2, dtype=nl.float64)), TypeError,
     r"weight with the input's dtype float32, got float64"),
    ("lerp end a number", lambda: nl.lerp(nl.ones(2), 1.0, 0.5), TypeError, r"end to be a Tensor, got float"),
    ("addcdiv of integers", lambda: nl.addcdiv(nl.ones(2), nl.tensor([1]), nl.tensor([2])), TypeError,
     r"both integers"),
    ("addcmul truncating value", lambda: nl.addcmul(nl.tensor([1]), nl.tensor([1]), nl.tensor([1]), value=0.5),
     TypeError, r"value=0.5 is not a whole number"),
    ("addcmul value a string", lambda: nl.addcmul(nl.ones(1), nl.ones(1), nl.ones(1), value="2"), TypeError,
     r"value must be a real number"),
    ("integer remainder by zero", lambda: nl.remainder(nl.tensor([1, 2]), nl.tensor([0, 1])), ZeroDivisionError,
     r"remainder: integer division by zero"),
    ("integer fmod by zero", lambda: nl.fmod(nl.tensor([1, 2]), 0), ZeroDivisionError, r"fmod: integer division"),
    ("remainder of bools", lambda: nl.remainder(nl.tensor([True]), nl.tensor([True])), TypeError, r"bool"),
    ("log1p of a list", lambda: nl.log1p([1.0, 2.0]), TypeError, r"log1p: expected input to be a Tensor, got list"),
    ("atan2 with a string", lambda: nl.atan2(nl.ones(2), "1"), TypeError, r"atan2: expected a Tensor or a real"),
    ("logit eps a string", lambda: nl.logit(nl.ones(2), eps="0.1"), TypeError, r"eps must be a real number"),
    ("nan_to_num nan a tensor", lambda: nl.nan_to_num(nl.ones(2), nan=nl.tensor(1.0)), TypeError,
     r"nan must be a real number"),
    ("all of a list", lambda: nl.all([True]), TypeError, r"all: expected input to be a Tensor"),
]


@pytest.mark.parametrize("case,call,error,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_clear_error(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_floor_divide_and_the_floor_division_operator_match_torch():
    torch = torch_or_skip()
    for a, b in (([-5, 5, 7, -7], 3), ([-5.5, 5.5, 0.0, 1.0], [2.0, -2.0, 0.0, 0.0]), ([7.5], 2)):
        ours = nl.floor_divide(nl.tensor(a), b if isinstance(b, int) else nl.tensor(b))
        theirs = torch.floor_divide(torch.tensor(a), b if isinstance(b, int) else torch.tensor(b))
        np.testing.assert_array_equal(ours.data, theirs.numpy())
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert (nl.tensor([7, -7]) // 2).tolist() == [3, -4] and (7 // nl.tensor([2, -2])).tolist() == [3, -4]
    x = nl.tensor([3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="floor_divide: the derivative of a // b is not defined"):
        (x // 2).sum().backward()
    with pytest.raises(ZeroDivisionError, match="floor_divide: integer division by zero"):
        nl.tensor([1, 2]) // 0


@pytest.mark.parametrize("name,args", [("addcmul_", (2,)), ("addcdiv_", (2,)), ("lerp_", (0.25,)), ("abs_", ()),
                                       ("sqrt_", ()), ("exp_", ()), ("log_", ()), ("sigmoid_", ()), ("tanh_", ()),
                                       ("floor_", ()), ("ceil_", ()), ("round_", ()), ("trunc_", ())])
def test_in_place_methods_equal_their_out_of_place_forms_with_and_without_a_graph(name, args):
    rng = np.random.default_rng(5)
    base = rng.uniform(0.5, 2.0, 6) * np.array([1, -1, 1, -1, 1, 1]) if name == "abs_" else rng.uniform(0.5, 2.0, 6)
    other = [nl.tensor(rng.uniform(0.5, 2.0, 6), dtype=nl.float64) for _ in range(2)]
    extra = {"addcmul_": (other[0], other[1]), "addcdiv_": (other[0], other[1]), "lerp_": (other[0],)}.get(name, ())
    options = {"value": args[0]} if name in ("addcmul_", "addcdiv_") else {}
    positional = extra + (args if name == "lerp_" else ())
    out_of_place = getattr(nl.tensor(base, dtype=nl.float64), name[:-1])(*positional, **options)
    with nl.no_grad():
        x = nl.tensor(base, dtype=nl.float64)
        version = x._version[0]
        assert getattr(x, name)(*positional, **options) is x and x._version[0] == version + 1
    np.testing.assert_array_equal(x.data, out_of_place.data)
    # with a graph: the gradient through the in-place form is the out-of-place one's
    if name not in ("floor_", "ceil_", "round_", "trunc_"):
        leaf, leaf2 = (nl.tensor(base, dtype=nl.float64, requires_grad=True) for _ in range(2))
        y = leaf * 1.0
        getattr(y, name)(*positional, **options).sum().backward()
        getattr(leaf2, name[:-1])(*positional, **options).sum().backward()
        np.testing.assert_allclose(leaf.grad.data, leaf2.grad.data, rtol=1e-14)


# ------------------------------------------------------------------- clamp ---

def _clamp_gradients(lib, x, lo, hi, torch=None):
    """clamp(x, lo, hi) and the gradients to x and the tensor bounds, then each gradient's
    derivative in the output gradient v (the only input they depend on)."""
    def make(v):
        if v is None:
            return v
        return (nl.tensor(np.array(v), requires_grad=True) if lib is nl
                else torch.tensor(np.array(v), requires_grad=True))
    x, lo, hi = make(x), make(lo), make(hi)
    grad = nl.grad if lib is nl else torch.autograd.grad
    y = lib.clamp(x, min=lo, max=hi)
    v = make(np.linspace(0.5, 2.0, y.numel()).reshape(y.shape))
    inputs = [t for t in (x, lo, hi) if t is not None]
    gs = grad(y, inputs, v, create_graph=True)
    second = grad(sum(g.sum() for g in gs), [v])
    as_array = (lambda t: t.data) if lib is nl else (lambda t: t.detach().numpy())
    return [as_array(y)] + [as_array(g) for g in gs] + [as_array(second[0])]


CLAMP_CASES = {
    # x, min, max: ties at both bounds, NaN in x and in a bound, min > max
    "both": ([-1.0, 0.0, 0.5, 1.0, 2.0, 0.7, NAN, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0, NAN],
             [1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 1.0, 1.0]),
    "min_only": ([-1.0, 0.0, 0.5, NAN], [0.0, 0.0, 0.0, 0.0], None),
    "max_only": ([-1.0, 1.0, 2.0, NAN], None, [1.0, 1.0, 1.0, 1.0]),
    "min_broadcasts_x": (-0.5, [0.1, -1.0], None),
    "max_broadcasts_x": ([[-1.0, 0.5, 2.0]], None, [[0.0], [1.0]]),
}


@pytest.mark.parametrize("case", CLAMP_CASES)
def test_clamp_with_tensor_bounds_matches_torch(case):
    torch = torch_or_skip()
    x, lo, hi = CLAMP_CASES[case]
    with np.errstate(invalid="ignore"):
        ours, theirs = _clamp_gradients(nl, x, lo, hi), _clamp_gradients(torch, x, lo, hi, torch)
    assert len(ours) == len(theirs)
    for mine, want in zip(ours, theirs):
        assert mine.shape == want.shape
        np.testing.assert_array_equal(mine, want)


def test_clamp_gradients_reach_tensor_bounds_without_torch():
    x = nl.tensor([-1.0, 0.5, 2.0, 0.7], dtype=nl.float64, requires_grad=True)
    lo = nl.tensor([0.0, 0.0, 0.0, 0.9], dtype=nl.float64, requires_grad=True)
    hi = nl.tensor([[1.0], [3.0]], dtype=nl.float64, requires_grad=True)   # broadcasts x to (2, 4)
    nl.clamp(x, min=lo, max=hi).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 1.0, 0.0]   # 2.0 is above max 1 in the first row only
    assert lo.grad.tolist() == [2.0, 0.0, 0.0, 2.0]
    assert hi.grad.tolist() == [[1.0], [0.0]]
    assert nl.autograd.gradcheck(lambda a, b, c: nl.clamp(a, b, c), [x, lo, hi])


@pytest.mark.parametrize("input,bound", [([0, 5], 1.5), ([0, 5], 1), ([True, False], 0),
                                         ([0.0, 5.0], "float64 tensor"), ([0, 5], "0-d float64")])
def test_clamp_promotes_as_torch(input, bound):
    torch = torch_or_skip()
    for lib in (nl, torch):
        b = (lib.tensor([1.5], dtype=lib.float64) if bound == "float64 tensor"
             else lib.tensor(1.5, dtype=lib.float64) if bound == "0-d float64" else bound)
        out = lib.clamp(lib.tensor(input), min=b)
        if lib is nl:
            ours = out
        else:
            assert str(ours.dtype) == _dtype_name(out)
            np.testing.assert_array_equal(ours.data, out.numpy())


def test_masked_fill_with_a_tensor_value_gives_it_the_filled_positions_gradient():
    x = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    value = nl.tensor(5.0, dtype=nl.float64, requires_grad=True)
    y = x.masked_fill(nl.tensor([True, False, True]), value)
    (y * nl.tensor([1.0, 2.0, 4.0])).sum().backward()
    assert y.dtype == nl.float32 and y.tolist() == [5.0, 2.0, 5.0]
    assert x.grad.tolist() == [0.0, 2.0, 0.0]
    assert value.grad.dtype == nl.float64 and value.grad.item() == 5.0
    with pytest.raises(ValueError, match="0-dim Tensor, got a Tensor of shape"):
        x.masked_fill(nl.tensor([True, False, True]), nl.tensor([1.0]))


def test_masked_fill_with_a_tensor_value_matches_torch():
    torch = torch_or_skip()
    for lib in (nl, torch):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        value = lib.tensor(-1.0, requires_grad=True)
        lib.masked_fill(x, lib.tensor([True, False]), value).pow(2).sum().backward()
        if lib is nl:
            ours = (x.grad.tolist(), value.grad.item())
    assert ours == (x.grad.tolist(), value.grad.item())


# ------------------------------------------------------- an empty dim list ---

DIM_LISTS = {"sum": lambda x, d: x.sum(dim=d), "sum_keepdim": lambda x, d: x.sum(dim=d, keepdim=True),
             "mean": lambda x, d: x.mean(dim=d), "amax": lambda x, d: x.amax(dim=d),
             "amin": lambda x, d: x.amin(dim=d), "var": lambda x, d: x.var(dim=d),
             "std": lambda x, d: x.std(dim=d), "norm": lambda x, d: x.norm(dim=d)}


@pytest.mark.parametrize("empty", [(), []], ids=["tuple", "list"])
@pytest.mark.parametrize("name", DIM_LISTS)
def test_an_empty_dim_list_reduces_every_dim_as_none_does(name, empty):
    fn = DIM_LISTS[name]
    x = nl.arange(6.0, dtype=nl.float64).reshape(2, 3).requires_grad_()
    got = fn(x, empty)
    (g,) = nl.grad(got.sum(), x)
    y = nl.arange(6.0, dtype=nl.float64).reshape(2, 3).requires_grad_()
    want = fn(y, None) if name != "sum_keepdim" else y.sum(dim=(0, 1), keepdim=True)
    (h,) = nl.grad(want.sum(), y)
    assert got.shape == want.shape and got.tolist() == want.tolist()
    np.testing.assert_array_equal(g.data, h.data)
    assert nl.logsumexp(x, dim=empty).item() == nl.logsumexp(x, dim=(0, 1)).item()


@pytest.mark.parametrize("name", DIM_LISTS)
def test_an_empty_dim_list_matches_torch(name):
    # PyTorch 2.13 divides var's and std's gradient by n - 1 with n = 1 there (inf): values only
    _same_as_torch(lambda L, x: DIM_LISTS[name](x, ()), [np.arange(6.0).reshape(2, 3)],
                   gradients=name not in ("var", "std"))


# ------------------------------------------------------------ bool operands ---

BOOL_ARITHMETIC = {
    "add_alpha_2": lambda L, a, b: L.add(a, b, alpha=2),
    "add_alpha_0": lambda L, a, b: L.add(a, b, alpha=0),
    "add_python_bool_alpha_2": lambda L, a, b: L.add(a, True, alpha=2),
    "add_int_alpha_2": lambda L, a, b: L.add(a, L.tensor([1, 2]), alpha=2),
    "pow_false": lambda L, a, b: a ** False,
    "pow_true": lambda L, a, b: a ** True,
    "pow_two": lambda L, a, b: a ** 2,
    "square": lambda L, a, b: L.square(a),
}


@pytest.mark.parametrize("name", BOOL_ARITHMETIC)
def test_arithmetic_on_bools_gives_torchs_dtype(name):
    torch = torch_or_skip()
    fn = BOOL_ARITHMETIC[name]
    ours = fn(nl, nl.tensor([True, False]), nl.tensor([True, True]))
    theirs = fn(torch, torch.tensor([True, False]), torch.tensor([True, True]))
    assert str(ours.dtype) == _dtype_name(theirs) and ours.tolist() == theirs.tolist()


def test_bools_stay_bools_where_pytorch_keeps_them():
    b = nl.tensor([True, False])
    assert nl.add(b, nl.tensor([True, True]), alpha=2).tolist() == [True, True]
    assert (b ** False).dtype == nl.bool and (b ** False).tolist() == [True, True]
    assert (b ** True).tolist() == [True, False]
    assert nl.square(b).dtype == nl.int64


def test_integers_to_negative_number_powers_are_refused_by_name():
    for base in (nl.tensor([2]), nl.tensor(np.array([2], np.uint8)), nl.tensor([True])):
        with pytest.raises(ValueError, match=r"pow: Integers to negative integer powers are not allowed \(\w+ "
                                             r"tensor to the power -1\); give the exponent as a float \(-1.0\)"):
            base ** -1
    with pytest.raises(ValueError, match=r"pow: shapes \(2,\) and \(3,\) cannot be broadcast"):
        nl.tensor([2.0, 3.0]) ** nl.tensor([1.0, 2.0, 3.0])


# ------------------------------------------------ integers to negative powers ---

def test_integers_to_negative_tensor_powers_are_integers():
    # an exponent tensor's negative entries: 1 for base 1, +-1 for base -1 by parity, else 0
    bases = np.array([-3, -2, -1, 0, 1, 2, 3]).reshape(-1, 1)
    exponents = np.array([-3, -2, -1, 0, 1, 2])
    want = [[0, 0, 0, 1, -3, 9], [0, 0, 0, 1, -2, 4], [-1, 1, -1, 1, -1, 1], [0, 0, 0, 1, 0, 0],
            [1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 2, 4], [0, 0, 0, 1, 3, 9]]
    for dtype in (np.int8, np.int32, np.int64):
        out = nl.tensor(bases.astype(dtype)) ** nl.tensor(exponents.astype(dtype))
        assert out.dtype == dtype and out.tolist() == want
    assert nl.pow(nl.tensor([2, 3]), nl.tensor([-1, -2])).tolist() == [0, 0]
    assert (2 ** nl.tensor([-1, -2, 0, 1])).tolist() == [0, 0, 1, 2]
    assert ((-1) ** nl.tensor([-1, -2, -3, 1])).tolist() == [-1, 1, -1, -1]
    assert (0 ** nl.tensor([-1, -2, 0, 1])).tolist() == [0, 0, 1, 0]
    assert (nl.tensor([-1, 1, 2]) ** nl.tensor(-2 ** 63)).tolist() == [1, 1, 0]   # int64 has no 2**63
    x = nl.tensor(np.array([2, -1, 1], np.int8))
    assert x.pow_(nl.tensor([-1, -1, -5])) is x and x.dtype == np.int8 and x.tolist() == [0, -1, 1]


def _outcome(fn):
    """fn()'s values and dtype, or that it raised (PyTorch raises RuntimeError where nnlite names the error)."""
    with np.errstate(all="ignore"):
        try:
            out = fn()
        except (RuntimeError, OverflowError, ValueError, ZeroDivisionError):
            return "raises"
    return out.tolist(), _dtype_name(out)


BASES, EXPONENTS = np.array([-3, -2, -1, 0, 1, 2, 3, 127]).reshape(-1, 1), np.array([-128, -3, -2, -1, 0, 1, 7])
INTEGER_POWERS = {
    "tensor": lambda L, a, b: L.tensor(a) ** L.tensor(b), "pow": lambda L, a, b: L.pow(L.tensor(a), L.tensor(b)),
    "method": lambda L, a, b: L.tensor(a).pow(L.tensor(b)), "number_base": lambda L, a, b: 3 ** L.tensor(b),
    "negative_number_base": lambda L, a, b: (-1) ** L.tensor(b),
    "zero_base": lambda L, a, b: L.pow(0, L.tensor(b)),
    "in_place": lambda L, a, b: L.tensor(np.broadcast_to(a, (8, 7)).copy()).pow_(L.tensor(b)),
    "int8_in_place": lambda L, a, b: L.tensor(np.broadcast_to(a, (8, 7)).astype(np.int8)).pow_(L.tensor(b)),
    "uint8_base": lambda L, a, b: L.tensor(np.abs(a).astype(np.uint8)) ** L.tensor(b),
    "int8_exponent": lambda L, a, b: L.tensor(a) ** L.tensor(b.astype(np.int8)),
    "int16": lambda L, a, b: L.tensor(a.astype(np.int16)) ** L.tensor(b.astype(np.int16)),
    "bool_base": lambda L, a, b: L.tensor(a > 0) ** L.tensor(b),
}


@pytest.mark.parametrize("name", INTEGER_POWERS)
def test_integers_to_negative_powers_match_torch(name):
    torch = torch_or_skip()
    ours, theirs = (_outcome(lambda: INTEGER_POWERS[name](L, BASES, EXPONENTS)) for L in (nl, torch))
    assert ours == theirs


# ------------------------------------------------- Python ints beyond the dtype ---

def _in_place(name):
    return lambda L, a, v: getattr(operator, name)(a, v)   # a += v; nnlite's a //= v is a = a // v


# A Python int beside an integer tensor is read in the tensor's dtype, as C casts it
# (1000 is -24 in int8, -1 is 255 in uint8); a scalar *argument* must fit the dtype
PYTHON_INTS = {
    "add": lambda L, a, v: a + v, "radd": lambda L, a, v: v + a, "sub": lambda L, a, v: a - v,
    "rsub": lambda L, a, v: v - a, "mul": lambda L, a, v: a * v, "rmul": lambda L, a, v: v * a,
    "add_function": lambda L, a, v: L.add(a, v), "add_alpha_2": lambda L, a, v: L.add(a, v, alpha=2),
    "sub_alpha_3": lambda L, a, v: L.sub(a, v, alpha=3), "alpha": lambda L, a, v: L.add(a, 1, alpha=v),
    "floor_divide": lambda L, a, v: a // v, "rfloor_divide": lambda L, a, v: v // a,
    "remainder": lambda L, a, v: a % v, "rremainder": lambda L, a, v: v % a, "fmod": lambda L, a, v: L.fmod(a, v),
    "eq": lambda L, a, v: a == v, "ne": lambda L, a, v: a != v, "lt": lambda L, a, v: a < v,
    "le": lambda L, a, v: a <= v, "gt": lambda L, a, v: a > v, "ge": lambda L, a, v: a >= v,
    "reversed_lt": lambda L, a, v: v < a, "lt_method": lambda L, a, v: a.lt(v),
    "eq_function": lambda L, a, v: L.eq(a, v), "rpow": lambda L, a, v: v ** a,
    "clamp_min": lambda L, a, v: L.clamp(a, v), "clamp_max": lambda L, a, v: L.clamp(a, max=v),
    "where": lambda L, a, v: L.where(a > 1, a, v), "where_input": lambda L, a, v: L.where(a > 1, v, a),
    "masked_fill": lambda L, a, v: a.masked_fill(a > 1, v), "addcmul": lambda L, a, v: L.addcmul(a, a, a, value=v),
    "iadd": _in_place("iadd"), "isub": _in_place("isub"), "imul": _in_place("imul"),
    "ifloordiv": _in_place("ifloordiv"), "imod": _in_place("imod"), "add_": lambda L, a, v: a.add_(v),
    "sub_": lambda L, a, v: a.sub_(v), "mul_": lambda L, a, v: a.mul_(v),
    "add_alpha_in_place": lambda L, a, v: a.add_(1, alpha=v), "clamp_": lambda L, a, v: a.clamp_(v),
}
BEYOND = [1000, -1000, 300, 256, 255, 128, -129, -1, -255, -256, 70000, 2 ** 31, 2 ** 40 + 7, 2 ** 63 - 1, 2 ** 63,
          2 ** 64 - 1, -2 ** 63, 2 ** 64, -2 ** 63 - 1]


@pytest.mark.parametrize("name", PYTHON_INTS)
def test_python_ints_beside_integer_tensors_match_torch(name):
    torch = torch_or_skip()
    for dtype in ("int8", "int16", "int32", "uint8", "int64"):
        for value in BEYOND:
            ours, theirs = (_outcome(lambda: PYTHON_INTS[name](L, L.tensor(np.array([1, 2, 3, -5]).astype(dtype)),
                                                               value)) for L in (nl, torch))
            assert ours == theirs, (dtype, value)


def test_python_ints_beyond_an_integer_dtype_wrap_into_it():
    a = nl.tensor(np.array([1, 2, 3], np.int8))   # 1000 is -24 in int8, 300 is 44
    for out, want in [(a + 1000, [-23, -22, -21]), (1000 - a, [-25, -26, -27]), (a * 300, [44, 88, -124]),
                      (a // 1000, [-1, -1, -1]), (1000 % a, [0, 0, 0]), (1000 ** a, [-24, 64, 0]),
                      (nl.add(a, 1000, alpha=2), [-47, -46, -45]), (a.clone().add_(1000), [-23, -22, -21])]:
        assert out.dtype == np.int8 and out.tolist() == want
    assert (a < 1000).tolist() == [False] * 3 and (a >= 1000).tolist() == [True] * 3   # compared with -24
    assert (nl.tensor(np.array([-24], np.int8)) == 1000).tolist() == [True]
    u = nl.tensor(np.array([250], np.uint8))   # -1 is 255 in uint8
    assert (u + -1).tolist() == [249] and (u == -6).tolist() == [True] and nl.clamp(u, max=-6).tolist() == [250]
    assert (nl.tensor([5]) + 2 ** 63).tolist() == [5 - 2 ** 63]
    with pytest.raises(ZeroDivisionError, match="floor_divide: integer division by zero"):
        a // 256   # 0 in int8


@pytest.mark.parametrize("call,message", [
    (lambda a: a + 2 ** 64, r"add: the Python integer 18446744073709551616 does not fit in 64 bits; expected one "
                            r"in \[-9223372036854775808, 18446744073709551615\]"),
    (lambda a: a < -2 ** 63 - 1, r"lt: the Python integer -9223372036854775809 does not fit in 64 bits"),
    (lambda a: nl.tensor([True]) + 2 ** 63, r"add: the Python integer 9223372036854775808 does not fit int64, the "
                                            r"dtype it has beside a bool tensor"),
    (lambda a: nl.clamp(a, 1000), r"clamp: min=1000 does not fit int8; expected an integer in \[-128, 127\]"),
    (lambda a: a ** 128, r"pow: exponent=128 does not fit int8; expected an integer in \[-128, 127\]"),
    (lambda a: nl.add(a, 1, alpha=128), r"add: alpha=128 does not fit int8"),
    (lambda a: nl.sub(a, 1, alpha=-128), r"sub: -alpha=128 does not fit int8"),
    (lambda a: nl.where(a > 1, a, 1000), r"where: other=1000 does not fit int8"),
    (lambda a: a.masked_fill(a > 1, -129), r"masked_fill: value=-129 does not fit int8"),
    (lambda a: nl.addcmul(a, a, a, value=300), r"addcmul: value=300 does not fit int8"),
    (lambda a: nl.clamp(a.to(np.uint8), -256), r"clamp: min=-256 does not fit uint8; expected an integer in "
                                              r"\[-255, 255\]"),
], ids=["beyond 64 bits", "below 64 bits", "bool", "clamp", "pow", "alpha", "sub alpha", "where", "masked_fill",
        "addcmul", "uint8 clamp"])
def test_ints_that_cannot_be_read_in_the_dtype_are_refused_by_name(call, message):
    with pytest.raises(OverflowError, match=message):
        call(nl.tensor(np.array([1, 2, 3], np.int8)))


def test_sign_of_nan_is_zero_and_of_a_bool_the_bool():
    x = nl.tensor([NAN, -0.0, 0.0, -2.0, INF], requires_grad=True)
    s = nl.sign(x)
    assert s.tolist() == [0.0, 0.0, 0.0, -1.0, 1.0]
    s.sum().backward()
    assert x.grad.tolist() == [0.0] * 5
    b = nl.sign(nl.tensor([True, False]))
    assert b.dtype == nl.bool and b.tolist() == [True, False]


def test_sign_of_nan_and_of_bools_match_torch():
    torch = torch_or_skip()
    _same_as_torch(lambda L, x: L.sign(x), [[NAN, -0.0, 0.0, -2.0, INF]], np.float32)
    assert nl.sign(nl.tensor([True, False])).tolist() == torch.sign(torch.tensor([True, False])).tolist()


def test_a_python_bool_on_the_left_of_and_and_or():
    b = nl.tensor([True, False])
    assert (True & b).tolist() == [True, False] and (False | b).tolist() == [True, False]
    assert (False & b).tolist() == [False, False] and (True | b).tolist() == [True, True]


# ------------------------------------------------ activations of integers ---

INTEGER_ACTIVATIONS = {
    "relu": lambda L, F, x: F.relu(x), "relu_method": lambda L, F, x: x.relu(),
    "tanh": lambda L, F, x: L.tanh(x), "sigmoid": lambda L, F, x: L.sigmoid(x), "erf": lambda L, F, x: L.erf(x),
    "softsign": lambda L, F, x: F.softsign(x), "tanhshrink": lambda L, F, x: F.tanhshrink(x),
    "hardtanh": lambda L, F, x: F.hardtanh(x), "hardtanh_fractional": lambda L, F, x: F.hardtanh(x, -1.5, 2.5),
    "relu6": lambda L, F, x: F.relu6(x * 3), "threshold": lambda L, F, x: F.threshold(x, 0.5, 7.9),
    "threshold_negative": lambda L, F, x: F.threshold(x, -1.5, -7.9),
}


@pytest.mark.parametrize("name", INTEGER_ACTIVATIONS)
def test_activations_of_integer_tensors_match_torch(name):
    torch = torch_or_skip()
    fn = INTEGER_ACTIVATIONS[name]
    ours = fn(nl, nl.nn.functional, nl.tensor([-3, -1, 0, 1, 3]))
    theirs = fn(torch, torch.nn.functional, torch.tensor([-3, -1, 0, 1, 3]))
    assert str(ours.dtype) == _dtype_name(theirs)
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


def test_activations_of_integer_tensors_keep_or_widen_the_dtype():
    x = nl.tensor([-2, 0, 3])
    assert nl.relu(x).tolist() == [0, 0, 3] and nl.relu(x).dtype == nl.int64
    assert nl.nn.functional.hardtanh(x).tolist() == [-1, 0, 1]
    assert nl.nn.functional.threshold(x, 0.5, 9.5).tolist() == [9, 9, 3]
    assert nl.tanh(x).dtype == nl.sigmoid(x).dtype == nl.erf(x).dtype == nl.float32
    with pytest.raises(TypeError, match="relu_forward"):
        nl.relu(nl.tensor([True]))   # a bool tensor is refused, as PyTorch refuses it


# ------------------------------------------------- softmax over nothing ---

@pytest.mark.parametrize("shape,dim", [((1, 0, 2, 0), 1), ((3, 0), 1), ((0, 3), 1), ((2, 0, 4), 0)], ids=str)
def test_softmax_of_an_empty_tensor_matches_torch(shape, dim):
    _same_as_torch(lambda L, x: L.log_softmax(x, dim=dim), [np.zeros(shape)])
    _same_as_torch(lambda L, x: L.softmax(x, dim=dim), [np.zeros(shape)], np.float32)


def test_clamp_in_place_and_clip_give_tensor_bounds_their_gradient():
    x = nl.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    lo, hi = nl.tensor([0.0, 0.0, 0.0], requires_grad=True), nl.tensor([1.0, 1.0, 1.0], requires_grad=True)
    y = x * 1
    y.clamp_(min=lo, max=hi)
    (y * nl.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert (x.grad.tolist(), lo.grad.tolist(), hi.grad.tolist()) == ([0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0])
    lo.grad = None
    nl.clip(x, lo).sum().backward()
    assert lo.grad.tolist() == [1.0, 0.0, 0.0]
