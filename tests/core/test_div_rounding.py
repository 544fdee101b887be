"""div with rounding_mode: PyTorch's rounded quotients, their dtypes, their zero gradient and their errors.

The plain assertions run without PyTorch; the comparisons skip, each on its own,
without it.
"""
import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite.autograd import gradcheck

MODES = ["trunc", "floor"]
A_INT, B_INT = [7, -7, 5, -5, 6, -6], [2, 2, -2, 3, 3, -3]
TRUNCATED, FLOORED = [3, -3, -2, -1, 2, 2], [3, -4, -3, -2, 2, 2]
SPECIAL_A = [-1.0, 1.0, 0.0, -0.0, 1.0, -1.0, np.inf, -7.5, 7.5, -0.5]
SPECIAL_B = [0.0, 0.0, 0.0, 0.0, -0.0, np.inf, 2.0, 2.0, np.inf, 4.0]


def _int8(values):
    return nl.tensor(np.array(values, np.int8))


# -------------------------------------------------------------- values, dtypes ---

@pytest.mark.parametrize("mode, expected", [("trunc", TRUNCATED), ("floor", FLOORED)])
def test_integers_stay_integers(mode, expected):
    out = nl.div(nl.tensor(A_INT), nl.tensor(B_INT), rounding_mode=mode)
    assert out.dtype == np.int64 and out.tolist() == expected
    assert nl.div(nl.tensor(A_INT), 3, rounding_mode=mode).dtype == np.int64
    assert nl.div(nl.tensor([True, False]), 2, rounding_mode=mode).tolist() == [0, 0]   # bool with an int: int64
    wrapped = nl.div(_int8([-128]), _int8([-1]), rounding_mode=mode)   # overflows and wraps, as in PyTorch
    assert wrapped.dtype == np.int8 and wrapped.tolist() == [-128]


def test_float_quotients_round_toward_zero_or_toward_minus_infinity():
    a, b = nl.tensor(SPECIAL_A, dtype=nl.float64), nl.tensor(SPECIAL_B, dtype=nl.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(nl.div(a, b, rounding_mode="trunc").data,
                                      np.trunc(np.array(SPECIAL_A) / np.array(SPECIAL_B)))
    floored = nl.div(a, b, rounding_mode="floor").data
    np.testing.assert_array_equal(floored, [-np.inf, np.inf, np.nan, np.nan, -np.inf, -1.0, np.nan, -4.0, 0.0, -1.0])
    assert not np.signbit(floored[8])   # 7.5 // inf is +0


def test_the_result_has_the_promoted_dtype_not_a_float_one():
    assert nl.div(nl.tensor([7, -7]), 2.5, rounding_mode="floor").tolist() == [2.0, -3.0]   # int by a float: float32
    assert nl.div(_int8([7]), 2.5, rounding_mode="trunc").dtype == np.float32
    f32_by_0dim_f64 = nl.div(nl.tensor([1.0, -2.0]), nl.tensor(3.0, dtype=nl.float64), rounding_mode="floor")
    assert f32_by_0dim_f64.dtype == np.float32 and f32_by_0dim_f64.tolist() == [0.0, -1.0]
    assert nl.div(nl.tensor([1, -2]), nl.tensor(3.0, dtype=nl.float64), rounding_mode="trunc").dtype == np.float64
    assert nl.div(_int8([100]), 1000, rounding_mode="floor").tolist() == [-5]   # 1000 read as int8 -24


def test_half_with_a_number_is_computed_in_float32():
    # 1 / 0.3 in float16 is 3.334 and 2 / 0.3 6.67: the number is kept in float32, as PyTorch keeps it
    x = nl.tensor([1.0, 2.0, -5.0], dtype=nl.float16)
    assert nl.div(x, 0.3, rounding_mode="floor").tolist() == [3.0, 6.0, -17.0]
    assert nl.div(x, 0.3, rounding_mode="trunc").tolist() == [3.0, 6.0, -16.0]


def test_none_is_the_true_division():
    assert nl.div(nl.tensor([7, -7]), 2, rounding_mode=None).tolist() == [3.5, -3.5]
    assert nl.tensor([7, -7]).div(2, rounding_mode=None).dtype == np.float32


def test_tensor_methods_and_broadcasting():
    x = nl.tensor([[7.0], [-7.0]])
    assert x.div(nl.tensor([2.0, -3.0]), rounding_mode="floor").tolist() == [[3.0, -3.0], [-4.0, 2.0]]
    assert x.div(nl.tensor([2.0, -3.0]), rounding_mode="trunc").tolist() == [[3.0, -2.0], [-3.0, 2.0]]


# ----------------------------------------------------------------------- in place ---

def test_div_in_place_keeps_an_integer_tensor_integer():
    x = nl.tensor([7, -8])
    assert x.div_(2, rounding_mode="floor") is x and x.dtype == np.int64 and x.tolist() == [3, -4]
    x.div_(nl.tensor([2, 3]), rounding_mode="trunc")
    assert x.tolist() == [1, -1]
    with pytest.raises(TypeError, match="div_: result type Float can't be cast to the desired output type Long"):
        x.div_(2.5, rounding_mode="trunc")


def test_div_in_place_on_a_graph_gives_a_zero_gradient():
    leaf = nl.tensor([7.5, -7.5], requires_grad=True)
    y = leaf * 1.0
    y.div_(2.0, rounding_mode="floor")
    assert y.tolist() == [3.0, -4.0]
    y.sum().backward()
    assert leaf.grad.tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------- gradients ---

@pytest.mark.parametrize("mode", MODES)
def test_gradient_is_zero_for_both_operands(mode):
    a = nl.tensor([[7.3, -7.3, 5.1]], dtype=nl.float64, requires_grad=True)
    b = nl.tensor([[2.0], [-3.1]], dtype=nl.float64, requires_grad=True)
    out = nl.div(a, b, rounding_mode=mode)
    out.backward(nl.ones(out.shape, dtype=nl.float64))
    assert a.grad.shape == a.shape and not a.grad.data.any()
    assert b.grad.shape == b.shape and not b.grad.data.any()
    # away from its jumps the rounded quotient is flat: central differences agree
    assert gradcheck(lambda x, y: nl.div(x, y, rounding_mode=mode), [a, b])


def test_a_promoted_operand_gets_its_zero_gradient_in_its_own_dtype():
    a = nl.tensor([7.5, -7.5], requires_grad=True)
    nl.div(a, nl.tensor(2.0, dtype=nl.float64), rounding_mode="trunc").sum().backward()
    assert a.grad.dtype == np.float32 and a.grad.tolist() == [0.0, 0.0]


# -------------------------------------------------------------------------- errors ---

@pytest.mark.parametrize("mode, error", [("bad", ValueError), ("Trunc", ValueError), ("", ValueError), (1, TypeError)])
def test_an_unknown_rounding_mode_is_refused(mode, error):
    with pytest.raises(error, match=r"div: rounding_mode must be None, 'trunc' or 'floor', got " + repr(mode)):
        nl.div(nl.tensor([1.0]), 2.0, rounding_mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_bools_and_integer_division_by_zero_are_refused(mode):
    with pytest.raises(TypeError, match=f"div: rounding_mode='{mode}' needs number operands, got bool ones"):
        nl.div(nl.tensor([True]), nl.tensor([True]), rounding_mode=mode)
    for zero in (nl.tensor([0, 1]), 0):
        with pytest.raises(ZeroDivisionError, match="div: integer division by zero"):
            nl.div(nl.tensor([1, 2]), zero, rounding_mode=mode)
    assert nl.div(nl.tensor([1.0]), 0.0, rounding_mode=mode).tolist() == [float("inf")]   # floats divide by 0
    with pytest.raises(ValueError, match=r"div: shapes must broadcast together, got \(2,\), \(3,\)"):
        nl.div(nl.tensor([1.0, 2.0]), nl.tensor([1.0, 2.0, 3.0]), rounding_mode=mode)


# --------------------------------------------------------------- against PyTorch ---

CASES = [   # (input, other, dtype of the input, dtype of other); None: a Python number
    (A_INT, B_INT, "int64", "int64"),
    (A_INT, 2, "int64", None),
    (A_INT, 2.5, "int8", None),
    ([-128, 100], [-1, 7], "int8", "int8"),
    ([7, 249, 5, 251], [2, 1, 1, 3], "uint8", "uint8"),
    ([True, False], 2, "bool", None),
    ([1.0, -2.0], 3.0, "float32", "float64"),
    ([1, -2], 3.0, "int64", "float64"),
    (SPECIAL_A, SPECIAL_B, "float64", "float64"),
    (SPECIAL_A, SPECIAL_B, "float32", "float32"),
    ([1.0, 2.0, -5.0, 7.75], 0.3, "float16", None),
]


def _operands(module, case):
    a, b, dtype_a, dtype_b = case
    make = (lambda v, d: nl.tensor(np.array(v, getattr(np, d)))) if module is nl else \
        (lambda v, d: module.tensor(np.array(v, getattr(np, d))))
    return make(a, dtype_a), (b if dtype_b is None else make(b, dtype_b))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[2]}-{c[3]}")
@pytest.mark.parametrize("mode", [None] + MODES)
def test_values_and_dtypes_match_torch(mode, case):
    torch = torch_or_skip()
    with np.errstate(divide="ignore", invalid="ignore"):
        ours = nl.div(*_operands(nl, case), rounding_mode=mode)
    theirs = torch.div(*_operands(torch, case), rounding_mode=mode)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    np.testing.assert_array_equal(np.signbit(ours.data), np.signbit(theirs.numpy()))   # -0.0 where torch has it


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", MODES)
def test_half_tensors_match_torch_bit_for_bit(mode, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    a = rng.standard_normal(4000) * rng.choice([1, 10, 1000], 4000)
    b = rng.standard_normal(4000) * rng.choice([0.01, 1, 10], 4000)
    ours_a = nl.tensor(a.astype(np.float32)).to(getattr(nl, dtype))
    theirs_a = torch.tensor(a.astype(np.float32)).to(getattr(torch, dtype))
    for ours_b, theirs_b in [(nl.tensor(b.astype(np.float32)).to(getattr(nl, dtype)),
                              torch.tensor(b.astype(np.float32)).to(getattr(torch, dtype))), (0.3, 0.3)]:
        ours = nl.div(ours_a, ours_b, rounding_mode=mode)
        theirs = torch.div(theirs_a, theirs_b, rounding_mode=mode)
        assert str(ours.dtype) == dtype
        np.testing.assert_array_equal(ours.to(nl.float32).data, theirs.float().numpy())


@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_torch(mode):
    torch = torch_or_skip()
    a, b = np.array([[7.3, -7.3, 5.1]]), np.array([[2.0], [-3.1]])
    ours = [nl.tensor(a, requires_grad=True), nl.tensor(b, requires_grad=True)]
    theirs = [torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)]
    nl.div(*ours, rounding_mode=mode).sum().backward()
    torch.div(*theirs, rounding_mode=mode).sum().backward()
    for x, t in zip(ours, theirs):
        np.testing.assert_array_equal(x.grad.data, t.grad.numpy())


def test_torch_refuses_what_is_refused():
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="rounding_mode to be one of None, 'trunc', or 'floor'"):
        torch.div(torch.tensor([1.0]), 2.0, rounding_mode="bad")
    with pytest.raises(NotImplementedError, match="not implemented for 'Bool'"):
        torch.div(torch.tensor([True]), torch.tensor([True]), rounding_mode="floor")
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        torch.div(torch.tensor([1, 2]), torch.tensor([0, 1]), rounding_mode="trunc")
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        torch.tensor([7, 8]).div_(2.5, rounding_mode="trunc")
