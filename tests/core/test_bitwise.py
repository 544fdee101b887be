"""&, |, ^ and ~ are bitwise on integer tensors and logical on bools, as in PyTorch."""
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
