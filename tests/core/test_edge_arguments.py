"""Edge arguments of the tensor ops, held to PyTorch: repeated dims, sizes to infer in empty tensors.

Each test pins one case where nnlite once answered differently from PyTorch
(a number where PyTorch raises, or an error where it returns).
"""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip


@pytest.mark.parametrize("op", ["sum", "mean", "var", "std", "amax", "amin", "logsumexp", "all", "any"])
def test_a_reduction_refuses_a_dim_named_twice(op):
    x = nl.ones((2, 3), dtype=nl.float64)
    with pytest.raises(ValueError, match=r"dims \(0, -2\) name the same dim more than once"):
        getattr(nl, op)(x, (0, -2))


def test_a_reduction_refuses_a_dim_named_twice_like_torch():
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="appears multiple times"):
        torch.ones(2, 3).sum((0, 0))
    with pytest.raises(ValueError, match="more than once"):
        nl.ones((2, 3)).sum((0, 0))


@pytest.mark.parametrize("dim,sizes", [(0, (1, -1)), (0, (-1, 3)), (1, (2, 0)), (2, (-1, 1, 2))])
def test_unflatten_infers_minus_one_from_the_dim_in_an_empty_tensor(dim, sizes):
    torch = torch_or_skip()
    a = np.zeros((3, 0, 2))
    x = nl.tensor(a, dtype=nl.float64, requires_grad=True)
    y = x.unflatten(dim, sizes)
    assert y.shape == tuple(torch.tensor(a).unflatten(dim, sizes).shape)
    y.sum().backward()
    assert x.grad.shape == (3, 0, 2)


@pytest.mark.parametrize("sizes,message", [((2, 2), "don't multiply up to the size of dim 0 \\(3\\)"),
                                           ((-1, 2), "don't multiply up"), ((-1, -1), "more than one"),
                                           ((), "non-empty")])
def test_unflatten_refuses_sizes_that_do_not_fit_the_dim(sizes, message):
    with pytest.raises(ValueError, match=message):
        nl.zeros((3, 0, 2)).unflatten(0, sizes)


def test_unflatten_refuses_a_0_dim_tensor():
    with pytest.raises(IndexError, match="0-dim"):
        nl.tensor(1.0).unflatten(0, (1, 1))
