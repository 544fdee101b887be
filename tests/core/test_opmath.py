"""float16 and bfloat16 tensors with a Python number give PyTorch's bytes (nnlite/ops/opmath.py).

PyTorch keeps the number in float32 for ``*`` and ``/`` (and floor division, addcmul, addcdiv,
lerp), reads it in the tensor's dtype for ``+ - ** %`` and the comparisons, and rounds each
result once. The values are 4096 long, a multiple of every vector width: PyTorch computes a
shorter tail in a scalar loop that may round add's alpha differently.
"""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip

BASE = np.concatenate([np.random.default_rng(0).standard_normal(4091) * 3, [0.1, 1 / 3, -0.1, 0.7, 2.5]])
NUMBERS = [0.1, 1 / 3, 0.7]


def _imul(x, s):
    x *= s
    return x


def _itruediv(x, s):
    x /= s
    return x


OPS = {
    "x * s": lambda L, x, y, s: x * s, "s * x": lambda L, x, y, s: s * x, "mul": lambda L, x, y, s: L.mul(x, s),
    "x / s": lambda L, x, y, s: x / s, "s / x": lambda L, x, y, s: s / x, "div": lambda L, x, y, s: L.div(x, s),
    "x // s": lambda L, x, y, s: x // s, "x + s": lambda L, x, y, s: x + s, "x - s": lambda L, x, y, s: x - s,
    "s - x": lambda L, x, y, s: s - x, "|x| ** s": lambda L, x, y, s: abs(x) ** s,
    "s ** x": lambda L, x, y, s: s ** (x / 4), "x % s": lambda L, x, y, s: x % s,
    "fmod": lambda L, x, y, s: L.fmod(x, s), "x < s": lambda L, x, y, s: x < s, "x == s": lambda L, x, y, s: x == s,
    "clamp": lambda L, x, y, s: L.clamp(x, -s, s), "where": lambda L, x, y, s: L.where(x > 0, x, s),
    "add alpha": lambda L, x, y, s: L.add(x, y, alpha=s), "sub alpha": lambda L, x, y, s: L.sub(x, y, alpha=s),
    "mul_": lambda L, x, y, s: x.clone().mul_(s), "div_": lambda L, x, y, s: x.clone().div_(s),
    "*=": lambda L, x, y, s: _imul(x.clone(), s), "/=": lambda L, x, y, s: _itruediv(x.clone(), s),
    "add_ alpha": lambda L, x, y, s: x.clone().add_(y, alpha=s),
    "addcmul": lambda L, x, y, s: L.addcmul(x, x, y, value=s), "addcdiv": lambda L, x, y, s: L.addcdiv(x, x, y, value=s),
    "lerp": lambda L, x, y, s: L.lerp(x, y, s),
}


def _narrow(dtype):
    if dtype == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(np.float16)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(OPS))
def test_half_precision_with_a_python_number_gives_torchs_bytes(name, dtype):
    torch = torch_or_skip()
    narrow = _narrow(dtype)
    x_values = BASE.astype(np.float32).astype(narrow)
    y_values = (BASE[::-1] * 0.7).astype(np.float32).astype(narrow)
    x, y = nl.tensor(x_values), nl.tensor(y_values)
    tx, ty = (torch.tensor(v.astype(np.float32)).to(getattr(torch, dtype)) for v in (x_values, y_values))
    for s in NUMBERS:
        with np.errstate(all="ignore"):
            ours, theirs = OPS[name](nl, x, y, s), OPS[name](torch, tx, ty, s)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        expected = theirs.numpy() if theirs.dtype == torch.bool else theirs.float().numpy()
        np.testing.assert_array_equal(ours.data.astype(expected.dtype), expected, err_msg=f"{name} {s}")


NUMBER_KINDS = {
    "int": lambda L, s: int(s * 30000) + 1,   # beyond float16's integers (2049 and up are rounded there)
    "0-dim float32": lambda L, s: L.tensor(s), "0-dim float64": lambda L, s: L.tensor(s, dtype=L.float64),
    "numpy float64": lambda L, s: np.float64(s),
}
NUMBER_OPS = {
    "x * s": lambda x, s: x * s, "x / s": lambda x, s: x / s, "x // s": lambda x, s: x // s,
    "s * x": lambda x, s: s * x, "s / x": lambda x, s: s / x, "mul_": lambda x, s: x.clone().mul_(s),
}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name, kind", [(name, kind) for name in NUMBER_OPS for kind in NUMBER_KINDS
                                        # a NumPy scalar on the left applies NumPy's operator, not the tensor's
                                        if not (kind == "numpy float64" and name.startswith("s "))])
def test_every_kind_of_number_is_read_as_torch_reads_it(name, kind, dtype):
    torch = torch_or_skip()
    narrow = _narrow(dtype)
    values = BASE.astype(np.float32).astype(narrow)
    x, tx = nl.tensor(values), torch.tensor(values.astype(np.float32)).to(getattr(torch, dtype))
    for s in NUMBERS:
        with np.errstate(all="ignore"):
            ours = NUMBER_OPS[name](x, NUMBER_KINDS[kind](nl, s))
            theirs = NUMBER_OPS[name](tx, NUMBER_KINDS[kind](torch, s))
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.data.astype(np.float32), theirs.float().numpy(), err_msg=f"{name} {s}")


def test_a_float16_product_keeps_the_number_in_float32():
    x = nl.tensor(np.array([1.0, 3.0, 1000.0], np.float16))
    exact = (x.data.astype(np.float32) * np.float32(0.1)).astype(np.float16)
    assert not np.array_equal(exact, x.data * np.float16(0.1))   # 0.1 rounded to float16 first differs
    np.testing.assert_array_equal((x * 0.1).data, exact)
    np.testing.assert_array_equal((0.1 * x).data, exact)
    np.testing.assert_array_equal(x.clone().mul_(0.1).data, exact)
    assert (x * 0.1).dtype == np.float16


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_floor_division_of_two_half_tensors_gives_torchs_bytes(dtype):
    # CPython's steps, each rounded to the half dtype; NumPy's float32 steps differ in the last bit
    torch = torch_or_skip()
    narrow = _narrow(dtype)
    x_values = (BASE * 40).astype(np.float32).astype(narrow)
    y_values = (BASE[::-1] * 0.7).astype(np.float32).astype(narrow)
    y_values[:3] = 0
    x, y = nl.tensor(x_values), nl.tensor(y_values)
    tx, ty = (torch.tensor(v.astype(np.float32)).to(getattr(torch, dtype)) for v in (x_values, y_values))
    expected = torch.floor_divide(tx, ty).float().numpy()
    with np.errstate(all="ignore"):
        for ours in (nl.floor_divide(x, y), x // y, nl.div(x, y, rounding_mode="floor")):
            np.testing.assert_array_equal(ours.data.astype(np.float32), expected)
