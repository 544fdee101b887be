"""Type promotion: every operation's result dtype (and value) is PyTorch's.

The first half states expected dtypes directly, without PyTorch: integers divided give
the default float dtype, a 0-dim tensor or a Python number never widens a tensor of its
own category, in-place operations keep the tensor's dtype and refuse a float result for
an integer tensor, and gradients come back in each input's dtype, computed without a
float64 detour. The second half runs each operation over every pair of operand kinds
(tensors with dims and 0-dim ones of eight dtypes, Python bools, ints and floats, in
both orders) against PyTorch.
"""
import itertools

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip

F32, F64, F16 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)


def t(values, dtype):
    return nl.tensor(np.array(values, dtype=dtype))


# ------------------------------------------------------------ without torch ---

INTS = [np.bool_, np.uint8, np.int8, np.int32, np.int64]


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_true_division_of_integers_gives_the_default_float_dtype(dtype):
    a, b = t([1, 0, 1], dtype), t([1, 1, 1], dtype)
    for out in [a / b, nl.div(a, b), a.div(b), a / 2, 2 / b, a / 2.0, a / True]:
        assert out.dtype == F32
    np.testing.assert_array_equal((a / b).data, np.array([1, 0, 1], np.float32))
    nl.set_default_dtype(nl.float64)
    try:
        assert (a / b).dtype == F64 and (a / 2).dtype == F64
    finally:
        nl.set_default_dtype(nl.float32)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "rsqrt", "sin", "cos", "logsumexp"])
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_functions_of_real_numbers_give_the_default_float_dtype(name, dtype):
    x = t([1, 0, 1], dtype)
    out = getattr(nl, name)(x, 0) if name == "logsumexp" else getattr(nl, name)(x)
    assert out.dtype == F32   # NumPy: float16 for bool, uint8, int8; float64 for int32, int64
    with np.errstate(divide="ignore"):
        expected = getattr(nl, name)(x.float(), 0) if name == "logsumexp" else getattr(nl, name)(x.float())
    np.testing.assert_array_equal(out.data, expected.data)


PAIRS = [   # (first, second, the dtype PyTorch gives)
    (t([1, 2], np.int64), t([1.0, 2.0], F32), F32),
    (t([1.0, 2.0], F32), t(2.0, F64), F32),
    (t(2.0, F64), t([1.0, 2.0], F32), F32),
    (t([1, 2], np.int64), 0.5, F32),
    (0.5, t([1, 2], np.int8), F32),
    (t([1, 2], np.int32), t([1.0, 2.0], F16), F16),
    (t([1, 2], np.uint8), t(3, np.int64), np.dtype(np.uint8)),
    (t([1, 2], np.int8), t(3, np.int32), np.dtype(np.int8)),
    (t(1, np.int8), t(3, np.int32), np.dtype(np.int32)),
    (t(1, np.int64), t(0.5, F16), F16),
    (t([True, False], np.bool_), 2, np.dtype(np.int64)),
    (t([True, False], np.bool_), 0.5, F32),
    (t([1.0, 2.0], F16), t([1.0], F32), F32),
]
BINARY_FORMS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                "**": lambda a, b: a ** b, "maximum": nl.maximum, "minimum": nl.minimum,
                "where": lambda a, b: nl.where(nl.tensor([True, False]), a, b)}


@pytest.mark.parametrize("op", list(BINARY_FORMS))
def test_binary_operations_promote_as_pytorch(op):
    got = [(i, BINARY_FORMS[op](a, b).dtype, dtype) for i, (a, b, dtype) in enumerate(PAIRS)
           if op != "-" or bool not in (getattr(a, "dtype", None), getattr(b, "dtype", None))]
    assert [g for g in got if g[1] != g[2]] == []


def test_a_python_float_or_a_0_dim_float64_does_not_widen_float32():
    x = nl.tensor([0.1, 0.2, 0.3])
    w = nl.tensor(0.1, dtype=nl.float64)
    for out in [x * w, w * x, x + w, x - w, x / w, w / x, x ** w, nl.maximum(x, w), nl.where(x > 0.15, x, w)]:
        assert out.dtype == F32
    # computed in float32, as PyTorch computes it: the 0-dim float64 is rounded to float32 first
    np.testing.assert_array_equal((x * w).data, x.data * np.float32(0.1))
    assert (x > w).tolist() == [False, True, True]   # 0.1 in float32 is not above 0.1 in float32


def test_numbers_numpy_scalars_and_lists_follow_the_default_dtype():
    assert nl.where(nl.tensor([True, False]), 1.0, 0.0).dtype == F32
    x = nl.tensor([1.0, 2.0])
    assert (x * np.float64(0.5)).dtype == F32 and (np.float64(2.0) - x).dtype == F32
    # a list is read as nl.tensor reads it (PyTorch refuses one): Python floats as float32
    assert (x + [1.5, 2.5]).dtype == F32 and ([1, 2] * x).dtype == F32 and nl.where(x > 1, [5, 6], x).dtype == F32


def test_integer_outer_product_concatenation_and_sums():
    ints, floats = nl.tensor([[1, 2], [3, 4]], dtype=nl.int32), nl.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nl.outer(nl.tensor([1, 2]), nl.tensor([1.0, 2.0])).dtype == F32
    assert nl.cat([ints, floats]).dtype == F32 and nl.stack([ints, floats]).dtype == F32
    assert nl.kron(nl.tensor([1, 2], dtype=nl.uint8), nl.tensor(3, dtype=np.int8)).dtype == np.int16
    assert nl.sum(nl.tensor([200, 100], dtype=nl.uint8)).tolist() == 300   # int64, not uint64
    assert nl.sum(nl.tensor([200, 100], dtype=nl.uint8)).dtype == np.int64
    u8 = nl.tensor([1, 2], dtype=nl.uint8)
    assert (u8 & nl.tensor(3)).dtype == np.uint8 and nl.minimum(u8, nl.tensor(1)).dtype == np.uint8


def test_add_with_alpha_scales_in_the_promoted_dtype():
    u8 = nl.tensor([1, 2], dtype=nl.uint8)
    out = nl.add(u8, nl.tensor([True, False]), alpha=2)
    assert out.dtype == np.uint8 and out.tolist() == [3, 2]
    assert nl.sub(u8, u8, alpha=2).tolist() == [255, 254]
    with pytest.raises(TypeError, match="alpha=0.5 must be an int"):
        nl.add(u8, u8, alpha=0.5)


# --------------------------------------------------------- in-place forms ---

@pytest.mark.parametrize("update", [lambda x: x.add_(0.5), lambda x: x.mul_(nl.tensor(1.5)),
                                    lambda x: x.div_(2), lambda x: x.__itruediv__(x), lambda x: x.exp_(),
                                    lambda x: x.sqrt_(), lambda x: x.clamp_(0.5, 1.5), lambda x: x.pow_(0.5),
                                    lambda x: x.sub_(nl.tensor([0.5, 0.5]))],
                         ids=["add_ float", "mul_ 0-dim float", "div_", "/= itself", "exp_", "sqrt_", "clamp_ float",
                              "pow_ float", "sub_ float tensor"])
def test_a_float_result_is_not_written_into_an_integer_tensor(update):
    x = nl.tensor([1, 4])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        update(x)
    assert x.tolist() == [1, 4] and x.dtype == np.int64


@pytest.mark.parametrize("dtype, other", [("int64", 0.5), ("bool", 2), ("int8", 1.5), ("uint8", 0.5)])
def test_a_refused_in_place_result_raises_torchs_runtime_error(dtype, other):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError) as expected:
        torch.ones(2, dtype=getattr(torch, dtype)).add_(other)
    with pytest.raises(RuntimeError) as given:
        nl.ones(2, dtype=dtype).add_(other)
    assert isinstance(given.value, TypeError)   # the dtypes are what is wrong, and older code catches that
    assert str(expected.value) in str(given.value)


def test_an_integer_result_is_not_written_into_a_bool_tensor():
    x = nl.tensor([True, False])
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired output type Bool"):
        x += 1
    with pytest.raises(TypeError, match="subtraction of bool tensors"):
        x -= True
    x |= nl.tensor([False, True])
    assert x.tolist() == [True, True] and x.dtype == np.bool_


def test_in_place_results_take_the_tensors_dtype():
    x = nl.tensor([1.0, 2.0])
    x += nl.tensor(0.1, dtype=nl.float64)   # computed in float32, as PyTorch does
    assert x.dtype == F32 and x.tolist() == (np.array([1.0, 2.0], np.float32) + np.float32(0.1)).tolist()
    x *= nl.tensor([2.0, 2.0], dtype=nl.float64)   # float64 into float32 is a cast, allowed
    assert x.dtype == F32
    u8 = nl.tensor([5, 7], dtype=nl.uint8)
    u8 -= nl.tensor([1, 9], dtype=nl.uint8)
    assert u8.dtype == np.uint8 and u8.tolist() == [4, 254]
    i8 = nl.tensor([7, -7], dtype=np.int8)
    same = i8
    i8 //= 2
    i8 %= nl.tensor(3)
    i8 **= 2
    i8 &= nl.tensor([7, 7], dtype=nl.int64)
    assert i8 is same and i8.dtype == np.int8 and i8.tolist() == [0, 4]   # 3, -4; 0, 2; 0, 4
    f = nl.tensor([1.0, 2.0], dtype=nl.float16)
    f.add_(nl.tensor([1.0, 1.0], dtype=nl.float32))
    assert f.dtype == F16 and f.tolist() == [2.0, 3.0]


# ---------------------------------------------------------------- gradients ---

def test_gradients_come_back_in_each_inputs_dtype():
    a = nl.tensor([1.0, 2.0], requires_grad=True)
    w = nl.tensor(3.0, dtype=nl.float64, requires_grad=True)
    out = a * w / (a + w) - w
    assert out.dtype == F32
    out.sum().backward()
    assert a.grad.dtype == F32 and w.grad.dtype == F64


@pytest.mark.parametrize("formula", [
    lambda x: 2 ** x, lambda x: 0.5 ** x, lambda x: (x * np.float64(2.0)).exp(),
    lambda x: x / nl.tensor(2.0, dtype=nl.float64), lambda x: nl.tensor([1, 2]) / x],
    ids=["2**x", "0.5**x", "np.float64", "/0-dim float64", "int/x"])
def test_a_float32_backward_computes_in_float32(formula, monkeypatch):
    from nnlite import autograd
    casts = []
    real = autograd._in_dtype_of
    monkeypatch.setattr(autograd, "_in_dtype_of", lambda a, g: casts.append((a.dtype, g.dtype)) or real(a, g))
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    out = formula(x)
    assert out.dtype == F32
    out.sum().backward()
    assert x.grad.dtype == F32 and casts == []   # no gradient came back wider and was cast down


# ---------------------------------------------------------------- vs torch ---

DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]
KINDS = [(form, d) for form in ("dims", "0-dim") for d in DTYPES] + [("number", v) for v in (True, 2, 0.5)]


def _operand(lib, kind, grad=False):
    form, value = kind
    if form == "number":
        return value
    k = "b" if value == "bool" else "f" if value.startswith("float") else "i"
    data = {"b": [True, False, True], "i": [3, 1, 2], "f": [0.25, 1.5, 2.0]}[k]
    arr = np.array(data if form == "dims" else data[1], dtype=value)
    x = nl.tensor(arr) if lib is nl else lib.tensor(arr)
    if grad and k == "f" and value != "float16":   # nnlite keeps float16 for inference
        x.requires_grad_(True)
    return x


def _name(kind):
    return str(kind[1]) if kind[0] != "0-dim" else f"0-dim {kind[1]}"


TOLERANCE = {"float16": 1e-3, "float32": 2e-6, "float64": 1e-13}


def _disagreements(fn, kinds_list, torch, gradients=True):
    """Where ``fn(lib, *operands)`` gives another dtype or value in nnlite than in PyTorch (where
    both return), or a gradient of another dtype or value."""
    found = []
    for kinds in kinds_list:
        ours, theirs = [_operand(nl, k, gradients) for k in kinds], [_operand(torch, k, gradients) for k in kinds]
        try:
            want = fn(torch, *theirs)
        except (RuntimeError, TypeError, NotImplementedError):
            continue
        label = " x ".join(_name(k) for k in kinds)
        with np.errstate(all="ignore"):
            got = fn(nl, *ours)
        want_dtype = str(want.dtype).removeprefix("torch.")
        if str(got.dtype) != want_dtype:
            found.append(f"{label}: {got.dtype}, PyTorch {want_dtype}")
            continue
        tol = TOLERANCE.get(want_dtype, 0)
        if not np.allclose(got.data.astype(np.float64), want.detach().double().numpy(), rtol=tol, atol=0,
                           equal_nan=True):
            found.append(f"{label}: {got.tolist()}, PyTorch {want.tolist()}")
        elif gradients and want.requires_grad:
            found += _gradient_disagreements(label, got, want, ours, theirs, torch)
    return found


def _gradient_disagreements(label, got, want, ours, theirs, torch):
    wanted = [(a, b) for a, b in zip(ours, theirs) if isinstance(b, torch.Tensor) and b.requires_grad]
    try:
        their_grads = torch.autograd.grad(want, [b for _, b in wanted], torch.ones_like(want), allow_unused=True)
    except RuntimeError:   # no derivative in PyTorch (remainder in the divisor), or one it refuses
        return []
    our_grads = nl.grad(got, [a for a, _ in wanted], nl.ones(*got.shape, dtype=got.dtype), allow_unused=True)
    found = []
    for i, (g, h) in enumerate(zip(our_grads, their_grads)):
        if g is not None and h is not None and str(g.dtype) != str(h.dtype).removeprefix("torch."):
            found.append(f"{label}: gradient {i} {g.dtype}, PyTorch {h.dtype}")
        elif g is not None and h is not None and not np.allclose(g.data.astype(np.float64), h.double().numpy(),
                                                                 rtol=TOLERANCE[str(g.dtype)], equal_nan=True):
            found.append(f"{label}: gradient {i} {g.tolist()}, PyTorch {h.tolist()}")
    return found


PAIRS_OF_KINDS = [(a, b) for a, b in itertools.product(KINDS, KINDS) if not (a[0] == b[0] == "number")]
BINARY = {
    "a + b": lambda L, a, b: a + b, "a - b": lambda L, a, b: a - b, "a * b": lambda L, a, b: a * b,
    "a / b": lambda L, a, b: a / b, "a ** b": lambda L, a, b: a ** b, "a & b": lambda L, a, b: a & b,
    "a | b": lambda L, a, b: a | b, "a ^ b": lambda L, a, b: a ^ b,
    "add(alpha=2)": lambda L, a, b: L.add(a, b, alpha=2), "sub(alpha=2)": lambda L, a, b: L.sub(a, b, alpha=2),
    "maximum": lambda L, a, b: L.maximum(a, b), "minimum": lambda L, a, b: L.minimum(a, b),
    "where": lambda L, a, b: L.where(L.tensor([True, False, True]), a, b),
    "kron": lambda L, a, b: L.kron(a, b),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_operations_match_torch_over_every_pair_of_operand_kinds(name):
    torch = torch_or_skip()
    found = _disagreements(BINARY[name], PAIRS_OF_KINDS, torch)
    assert not found, f"{len(found)} disagreements, e.g. " + "; ".join(found[:6])


DIMS = [k for k in KINDS if k[0] == "dims"]
PRODUCTS = {
    "cat": lambda L, a, b: L.cat([a, b]), "stack": lambda L, a, b: L.stack([a, b]),
    "outer": lambda L, a, b: L.outer(a, b),   # promotes, where matmul and tensordot refuse two dtypes
}


REFUSING_PRODUCTS = {
    "matmul": lambda L, a, b: L.matmul(a, b), "@": lambda L, a, b: a @ b, "mm": lambda L, a, b: L.mm(a, b),
    "matmul 1-D": lambda L, a, b: L.matmul(a[0], b[:, 0]), "dot": lambda L, a, b: L.dot(a[0], b[:, 0]),
    "matmul batched": lambda L, a, b: L.matmul(a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
    "bmm": lambda L, a, b: L.bmm(a.reshape(1, 2, 2), b.reshape(1, 2, 2)),
    "tensordot": lambda L, a, b: L.tensordot(a, b, 1), "einsum": lambda L, a, b: L.einsum("ij,jk->ik", a, b),
    "linear": lambda L, a, b: L.nn.functional.linear(a, b),
}


@pytest.mark.parametrize("name", list(REFUSING_PRODUCTS))
@pytest.mark.parametrize("dtypes", [("float32", "float64"), ("int64", "float32"), ("float16", "float32")],
                         ids="-".join)
def test_products_refuse_two_dtypes_as_torch(name, dtypes):
    torch = torch_or_skip()
    product = REFUSING_PRODUCTS[name]
    with pytest.raises(RuntimeError):
        product(torch, *(torch.ones(2, 2, dtype=getattr(torch, d)) for d in dtypes))
    with pytest.raises(RuntimeError, match=f"{dtypes[0]}.*{dtypes[1]}") as refused:
        product(nl, *(nl.ones(2, 2, dtype=d) for d in dtypes))
    assert isinstance(refused.value, TypeError)
    same = [np.arange(4.0).reshape(2, 2).astype(dtypes[1]) for _ in dtypes]
    np.testing.assert_array_equal(product(nl, *map(nl.tensor, same)).data,
                                  product(torch, *map(torch.tensor, same)).numpy())


def test_comparisons_compare_in_the_promoted_dtype_as_torch():
    torch = torch_or_skip()
    cases = [(lambda L: L.tensor([0.1, 0.2]), lambda L: L.tensor(0.1, dtype=L.float64)),
             (lambda L: L.tensor(np.array([100, -24], np.int8)), lambda L: L.tensor(1000)),
             (lambda L: L.tensor([2.0, 3.0], dtype=L.float16), lambda L: L.tensor(2.0009765625, dtype=L.float32))]
    for a, b in cases:
        for op in ("__lt__", "__le__", "__eq__", "__ne__", "__gt__", "__ge__"):
            assert getattr(a(nl), op)(b(nl)).tolist() == getattr(a(torch), op)(b(torch)).tolist(), op


@pytest.mark.parametrize("name", list(PRODUCTS))
def test_products_and_joins_match_torch(name):
    torch = torch_or_skip()
    found = _disagreements(PRODUCTS[name], list(itertools.product(DIMS, DIMS)), torch)
    assert not found, f"{len(found)} disagreements, e.g. " + "; ".join(found[:6])


TENSOR_KINDS = [k for k in KINDS if k[0] != "number"]
UNARY = {
    "exp": lambda L, a: L.exp(a), "log": lambda L, a: L.log(a), "sqrt": lambda L, a: L.sqrt(a),
    "rsqrt": lambda L, a: L.rsqrt(a), "sin": lambda L, a: L.sin(a), "cos": lambda L, a: L.cos(a),
    "a * 0.5": lambda L, a: a * 0.5, "a / 2": lambda L, a: a / 2, "2 / a": lambda L, a: 2 / a,
    "0.5 ** a": lambda L, a: 0.5 ** a, "a ** 0.5": lambda L, a: a ** 0.5, "1 - a": lambda L, a: 1.5 - a,
    "logsumexp": lambda L, a: L.logsumexp(a, 0), "sum": lambda L, a: L.sum(a), "sort": lambda L, a: L.sort(a)[0],
}


@pytest.mark.parametrize("name", list(UNARY))
def test_functions_of_one_tensor_match_torch(name):
    torch = torch_or_skip()
    found = _disagreements(UNARY[name], [(k,) for k in TENSOR_KINDS], torch)
    assert not found, f"{len(found)} disagreements, e.g. " + "; ".join(found[:6])


def _in_place(op):
    def f(lib, a, b):
        a = a.detach().clone()
        return op(a, b)
    return f


IN_PLACE = {
    "+=": _in_place(lambda a, b: a.__iadd__(b)), "-=": _in_place(lambda a, b: a.__isub__(b)),
    "*=": _in_place(lambda a, b: a.__imul__(b)), "/=": _in_place(lambda a, b: a.__itruediv__(b)),
    "//=": _in_place(lambda a, b: a.__ifloordiv__(b)), "%=": _in_place(lambda a, b: a.__imod__(b)),
    "**=": _in_place(lambda a, b: a.__ipow__(b)), "&=": _in_place(lambda a, b: a.__iand__(b)),
    "add_(alpha=2)": _in_place(lambda a, b: a.add_(b, alpha=2)), "clamp_": _in_place(lambda a, b: a.clamp_(min=b)),
}


@pytest.mark.parametrize("name", list(IN_PLACE))
def test_in_place_operations_match_torch_and_refuse_what_it_refuses(name):
    torch = torch_or_skip()
    refused = []
    for a, b in itertools.product(TENSOR_KINDS, KINDS):
        try:
            IN_PLACE[name](torch, _operand(torch, a), _operand(torch, b))
        except RuntimeError as error:
            if "can't be cast to the desired output type" in str(error):
                refused.append((a, b))
    assert refused   # the float results for integer tensors at least
    for a, b in refused:   # (&= names the float operand it refuses)
        with pytest.raises((RuntimeError, TypeError), match="can't be cast to the desired output type|"
                                                            "expected integer or bool operands"):
            IN_PLACE[name](nl, _operand(nl, a), _operand(nl, b))
    found = _disagreements(IN_PLACE[name], list(itertools.product(TENSOR_KINDS, KINDS)), torch, gradients=False)
    assert not found, f"{len(found)} disagreements, e.g. " + "; ".join(found[:6])
