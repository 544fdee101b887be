"""&, |, ^ and ~ are bitwise on integer tensors and logical on bools, as in PyTorch."""
import operator

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl

INTS = [6, 5, -1, 0, 2 ** 40]
OTHER = [3, 1, 7, -8, 2 ** 40 + 1]
MASK = [True, False, True, False, True]
MASK2 = [True, True, False, False, True]


def _cases(L):
    a, b = L.tensor(INTS), L.tensor(OTHER)
    m, n = L.tensor(MASK), L.tensor(MASK2)
    return {"and": a & b, "or": a | b, "xor": a ^ b, "not": ~a, "scalar": a & 3, "left bool": True & m,
            "bool and": m & n, "bool xor": m ^ n, "bool not": ~m, "bitwise_or": L.bitwise_or(a, b),
            "logical_xor": L.logical_xor(m, n), "method": a.bitwise_xor(b), "int32": L.tensor(np.array([5], np.int32)) & 6}


def test_bitwise_operators_on_integers_and_bools_match_torch():
    torch = torch_or_skip()
    ours, theirs = _cases(nl), _cases(torch)
    for key in ours:
        assert str(ours[key].dtype).split(".")[-1] == str(theirs[key].dtype).split(".")[-1], key
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy(), err_msg=key)


def test_integers_combine_bit_by_bit_not_as_truth_values():
    a, b = nl.tensor([6, 12]), nl.tensor([3, 10])
    assert (a & b).tolist() == [2, 8] and (a | b).tolist() == [7, 14] and (a ^ b).tolist() == [5, 6]
    assert (~nl.tensor([0, 5])).tolist() == [-1, -6]
    assert nl.logical_and(a, b).tolist() == [True, True]


@pytest.mark.parametrize("op", ["__and__", "__or__", "__xor__", "__invert__"])
def test_floating_operands_are_refused_by_name(op):
    x = nl.tensor([1.0, 2.0])
    args = () if op == "__invert__" else (nl.tensor([1, 2]),)
    with pytest.raises(TypeError, match=r"bitwise_\w+: expected integer or bool operands, got float32 \(input\)"):
        getattr(x, op)(*args)


# A Python int is read in the tensor's dtype, as C casts it: 1000 is -24 in int8 (0b11101000)
BITWISE_WITH_INTS = {"and": lambda a, v: a & v, "left and": lambda a, v: v & a, "or": lambda a, v: a | v,
                     "left or": lambda a, v: v | a, "xor": lambda a, v: a ^ v, "left xor": lambda a, v: v ^ a,
                     "method": lambda a, v: a.bitwise_or(v), "in-place and": lambda a, v: operator.iand(a, v),
                     "in-place xor": lambda a, v: operator.ixor(a, v)}


def test_python_ints_beyond_the_dtype_combine_with_its_low_bits():
    a = nl.tensor(np.array([1, 2, 3], np.int8))
    for out, want in [(a & 1000, [0, 0, 0]), (1000 & a, [0, 0, 0]), (a | 1000, [-23, -22, -21]),
                      (a ^ -1000, [25, 26, 27]), (nl.bitwise_and(a, 2 ** 40 + 7), [1, 2, 3])]:
        assert out.dtype == np.int8 and out.tolist() == want
    a &= 1000
    assert a.dtype == np.int8 and a.tolist() == [0, 0, 0]
    assert (nl.tensor(np.array([250], np.uint8)) & -1).tolist() == [250]   # -1 is 255 in uint8
    with pytest.raises(OverflowError, match=r"bitwise_or: the Python integer 18446744073709551616 does not fit "
                                            r"in 64 bits; expected one in \[-9223372036854775808, 18446744073709551615"):
        nl.tensor([1]) | 2 ** 64


@pytest.mark.parametrize("name", BITWISE_WITH_INTS)
def test_python_ints_beyond_the_dtype_match_torch(name):
    torch = torch_or_skip()
    for dtype in ("int8", "int16", "int32", "uint8", "int64"):
        for value in (1000, -1000, 300, 256, -1, 70000, 2 ** 31, 2 ** 40 + 7, 2 ** 63, 2 ** 64 - 1, -2 ** 63):
            ours, theirs = (BITWISE_WITH_INTS[name](L.tensor(np.array([1, 6, -5]).astype(dtype)), value)
                            for L in (nl, torch))
            assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (dtype, value)
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=f"{dtype} {value}")
