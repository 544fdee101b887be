"""Ordering, matrix parts, einsum, tensordot/kron and the index-based selections and scatters.

Values and gradients against PyTorch (float64), central differences (first and
second order) without it, and the cases a table of smooth ops cannot hold:
ties, NaN, empty and 0-dim inputs, integer tensors, bad arguments.
"""
import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import torch_or_skip

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 5))          # distinct values: sorting has no ties
CUBE = RNG.standard_normal((2, 3, 4))


def _leaf(a):
    return nl.tensor(np.ascontiguousarray(a), dtype=nl.float64, requires_grad=True)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


# name -> (nnlite function, torch function, input arrays). Both take the library as first argument.
CASES = {
    "sort": (lambda L, a: L.sort(a, 1), [X]),
    "sort_desc_dim0": (lambda L, a: L.sort(a, 0, descending=True), [X]),
    "sort_method": (lambda L, a: a.sort(dim=-1, descending=True), [CUBE]),
    "argsort_gather": (lambda L, a: a.gather(1, L.argsort(a, 1)), [X]),
    "topk": (lambda L, a: L.topk(a, 2), [X]),
    "topk_smallest_dim0": (lambda L, a: a.topk(2, 0, largest=False), [X]),
    "kthvalue": (lambda L, a: L.kthvalue(a, 2, 1), [X]),
    "kthvalue_keepdim": (lambda L, a: a.kthvalue(3, 0, keepdim=True), [X]),
    "flip": (lambda L, a: L.flip(a, (0, 2)), [CUBE]),
    "flip_method": (lambda L, a: a.flip(-1), [X]),
    "fliplr": (lambda L, a: L.fliplr(a), [X]),
    "flipud": (lambda L, a: L.flipud(a), [X]),
    "roll": (lambda L, a: L.roll(a, (1, -2), (0, 1)), [X]),
    "roll_flat": (lambda L, a: a.roll(4), [X]),
    "tril": (lambda L, a: L.tril(a, 1), [CUBE]),
    "triu": (lambda L, a: a.triu(-1), [X]),
    "diagonal": (lambda L, a: L.diagonal(a, 1, 0, 2), [CUBE]),
    "diagonal_method": (lambda L, a: a.diagonal(-1), [X]),
    "diag_embed": (lambda L, a: L.diag_embed(a, -1, 0, 2), [X]),
    "diag_vector": (lambda L, a: L.diag(a, 2), [X[0]]),
    "diag_matrix": (lambda L, a: a.diag(-1), [X]),
    "trace": (lambda L, a: a.trace(), [X]),
    "einsum_matmul": (lambda L, a, b: L.einsum("ij,jk->ik", a, b), [X, X.T]),
    "einsum_batched": (lambda L, a, b: L.einsum("bij,bkj->bik", a, b), [CUBE, CUBE]),
    "einsum_diagonal": (lambda L, a: L.einsum("ii->i", a), [X[:, :3]]),
    "einsum_trace_implicit": (lambda L, a: L.einsum("ii", a), [X[:, :3]]),
    "einsum_outer": (lambda L, a, b: L.einsum("i,j", a, b), [X[0], X[1, :3]]),
    "einsum_lone_letter": (lambda L, a: L.einsum("ijk->i", a), [CUBE]),
    "einsum_ellipsis_broadcast": (lambda L, a, b: L.einsum("...ij,...jk->...ik", a, b),
                                  [CUBE[:1], RNG.standard_normal((3, 4, 2))]),
    "einsum_ellipsis_summed": (lambda L, a: L.einsum("...i->", a), [CUBE]),
    "einsum_repeat_and_three": (lambda L, a, b, c: L.einsum("iij,j,k->ik", a, b, c),
                                [RNG.standard_normal((3, 3, 2)), X[0, :2], X[1, :4]]),
    "einsum_list": (lambda L, a, b: L.einsum("ij,ij->", [a, b]), [X, X * 2]),
    "tensordot": (lambda L, a, b: L.tensordot(a, b), [CUBE, RNG.standard_normal((3, 4, 2))]),
    "tensordot_lists": (lambda L, a, b: L.tensordot(a, b, ([0, 2], [2, 0])),
                        [CUBE, RNG.standard_normal((4, 5, 2))]),
    "tensordot_outer": (lambda L, a, b: L.tensordot(a, b, 0), [X[0], X[1, :2]]),
    "kron": (lambda L, a, b: L.kron(a, b), [X[:2, :3], X[1:, 2:]]),
    "kron_ranks": (lambda L, a, b: a.kron(b), [X[0, :2], CUBE[:, :2, :2]]),
    "repeat_interleave": (lambda L, a: L.repeat_interleave(a, 2, 1), [X]),
    "repeat_interleave_counts": (lambda L, a: a.repeat_interleave(L.tensor([1, 0, 3]), dim=0), [X]),
    "repeat_interleave_flat": (lambda L, a: L.repeat_interleave(a, 2), [X[:2, :2]]),
    "take_along_dim": (lambda L, a: L.take_along_dim(a, L.tensor([[0], [4], [2]]), 1), [X]),
    "take_along_dim_broadcast": (lambda L, a: a.take_along_dim(L.tensor([[1, 0, 4]]), 1), [X]),
    "take_along_dim_flat": (lambda L, a: L.take_along_dim(a, L.tensor([0, 14, 3, 3])), [X]),
    "masked_select": (lambda L, a: L.masked_select(a, L.tensor([True, False, True, True, False])), [X]),
    "scatter_add": (lambda L, a, s: L.scatter_add(a, 0, L.tensor([[0, 2, 1, 0], [1, 1, 0, 2]]), s),
                    [X, RNG.standard_normal((2, 4))]),
    "scatter_add_method": (lambda L, a, s: a.scatter_add(1, L.tensor([[4, 4], [0, 1], [2, 2]]), s),
                           [X, RNG.standard_normal((3, 2))]),
    "index_add": (lambda L, a, s: L.index_add(a, 1, L.tensor([4, 0, 4]), s, alpha=2.0),
                  [X, RNG.standard_normal((3, 3))]),
    "index_add_method": (lambda L, a, s: a.index_add(0, L.tensor([2, 2]), s),
                         [X, RNG.standard_normal((2, 5))]),
    "gather_smaller_index": (lambda L, a: a.gather(1, L.tensor([[0, 1], [2, 2]])), [X]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_gradient_match_torch(name):
    torch = torch_or_skip()
    fn, arrays = CASES[name]
    ours = [_leaf(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = fn(nl, *ours), fn(torch, *theirs)
    if isinstance(out, tuple):   # (values, indices): both equal
        np.testing.assert_array_equal(out[1].data, tout[1].numpy())
        assert out[1].dtype == nl.int64
    y, ty = _first(out), _first(tout)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    v = RNG.standard_normal(y.shape)
    y.backward(nl.tensor(v, dtype=nl.float64))
    ty.backward(torch.tensor(v))
    for a, ta in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_and_second_derivatives_by_central_differences(name):
    fn, arrays = CASES[name]
    f = lambda *xs: _first(fn(nl, *xs))   # noqa: E731
    assert gradcheck(f, [_leaf(a) for a in arrays], atol=1e-6, rtol=1e-5)
    assert gradgradcheck(f, [_leaf(a) for a in arrays], atol=1e-5, rtol=1e-4)


def test_sorting_is_stable_and_puts_nan_where_pytorch_does():
    torch = torch_or_skip()
    a = np.array([[1.0, np.nan, 3.0, 1.0, -np.inf, 3.0], [2.0, 2.0, 2.0, np.nan, np.nan, 0.0]])
    for descending in (False, True):
        ours = nl.sort(nl.tensor(a), 1, descending=descending)
        theirs = torch.sort(torch.tensor(a), dim=1, descending=descending, stable=True)
        np.testing.assert_array_equal(ours.values.data, theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
    values, indices = nl.topk(nl.tensor(a[0]), 3)
    np.testing.assert_array_equal(values.data, [np.nan, 3.0, 3.0])
    assert indices.data.tolist() == [1, 2, 5]     # equal values: lower position first
    assert nl.kthvalue(nl.tensor([1.0, 3.0, 3.0, 1.0]), 2).indices.item() == 3


def test_integer_tensors_sort_flip_and_select_without_gradients():
    a = nl.tensor([[3, 1, 2], [0, 5, 4]])
    assert nl.sort(a, 1).values.data.tolist() == [[1, 2, 3], [0, 4, 5]]
    assert a.flip(0).data.tolist() == [[0, 5, 4], [3, 1, 2]]
    assert nl.tril(a).data.tolist() == [[3, 0, 0], [0, 5, 0]]
    assert nl.nonzero(a).data.tolist() == [[0, 0], [0, 1], [0, 2], [1, 1], [1, 2]]
    rows, cols = nl.nonzero(a, as_tuple=True)
    assert rows.data.tolist() == [0, 0, 0, 1, 1] and cols.dtype == nl.int64
    assert nl.masked_select(a, a > 2).data.tolist() == [3, 5, 4]


def test_empty_and_zero_dim_inputs():
    e = nl.zeros(0, 3, dtype=nl.float64, requires_grad=True)
    assert nl.sort(e, 0).values.shape == (0, 3) and nl.flip(e, 0).shape == (0, 3)
    assert nl.topk(e, 0, dim=0).values.shape == (0, 3)
    assert nl.einsum("ij->j", e).data.tolist() == [0.0, 0.0, 0.0]
    assert nl.tril(nl.zeros(2, 0, 0)).shape == (2, 0, 0)
    s = nl.tensor(2.5, requires_grad=True)
    assert nl.sort(s).values.item() == 2.5 and nl.sort(s).indices.item() == 0
    assert nl.roll(s, 3).item() == 2.5 and nl.flip(s, ()).item() == 2.5
    assert nl.topk(s, 1).values.item() == 2.5 and nl.kthvalue(s, 1).values.item() == 2.5


def test_results_own_their_memory():
    # flip, diag and an einsum that NumPy would answer with a view are copies, as in PyTorch
    x = nl.tensor(X.copy())
    for y in (x.flip(0), x.diag(), nl.einsum("ij->ji", x), nl.einsum("ii->i", x[:, :3])):
        y.data[...] = 7.0
    np.testing.assert_array_equal(x.data, X)


def test_diagonal_is_a_view_as_in_pytorch():
    torch = torch_or_skip()
    a, w = np.arange(24.0).reshape(2, 3, 4), np.arange(2.0, 6.0).reshape(2, 2)
    results = []
    for lib in (nl, torch):
        x = lib.tensor(a, requires_grad=True)
        y = x * 1
        y.diagonal(1, -1, -2).mul_(lib.tensor(w))   # writes into y, and y's history learns it
        (y * y).sum().backward()
        z = lib.tensor(a)
        z.diagonal(0, 1, 2).fill_(0)
        results.append((y.detach().numpy(), x.grad.numpy(), z.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(RuntimeError):   # a view of a leaf that requires grad is not written into
        nl.tensor(a, requires_grad=True).diagonal().mul_(2)


def test_an_expanded_view_follows_an_in_place_change_of_its_base_as_in_pytorch():
    torch = torch_or_skip()
    results = []
    for lib in (nl, torch):
        a = lib.tensor(np.arange(1.0, 5.0).reshape(2, 2), requires_grad=True)
        c = a * 1
        e = c[0:1].expand(3, 2)
        c.mul_(2)                      # e reads c's memory: its history must now include the doubling
        (e * lib.tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
        results.append(a.grad.numpy())
        c = a * 1
        y = c.expand(3, 2, 2) ** 2     # saves the expanded tensor
        c.add_(1)
        with pytest.raises(RuntimeError):
            y.sum().backward()
    np.testing.assert_array_equal(*results)


def test_gradcheck_of_a_function_returning_a_view_of_its_input():
    x = nl.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    for f in (lambda a: a[0], lambda a: a.t(), lambda a: a.diagonal()):
        assert nl.autograd.gradcheck(f, [x])


def test_bad_arguments_name_what_was_expected():
    x = nl.tensor(X)
    cases = [
        (lambda: nl.topk(x, 6), ValueError, r"topk: k must be an integer in \[0, 5\]"),
        (lambda: nl.kthvalue(x, 0), ValueError, r"kthvalue: k must be an integer in \[1, 5\]"),
        (lambda: nl.sort(x, 2), IndexError, "dim 2 is out of range"),
        (lambda: nl.flip(x, (0, 0)), ValueError, "flip: dims must not repeat"),
        (lambda: nl.roll(x, (1, 2), 0), ValueError, "roll: shifts and dims must have the same length"),
        (lambda: nl.tril(x[0]), ValueError, r"tril: input must have at least 2 dims .*got shape \(5,\)"),
        (lambda: nl.diagonal(x, 0, 1, 1), ValueError, "diagonal: dim1 and dim2 must be different"),
        (lambda: nl.diag(nl.zeros(2, 2, 2)), ValueError, r"diag: input must be 1-D or 2-D, got shape \(2, 2, 2\)"),
        (lambda: nl.trace(x[0]), ValueError, "trace: input must be 2-D"),
        (lambda: nl.einsum("ij,jk", x, x), ValueError, r"subscript 'j' .* sizes \[3, 5\]"),
        (lambda: nl.einsum("ij", x, x), ValueError, "has 1 operand"),
        (lambda: nl.einsum("i->i", x), ValueError, r"subscripts 'i' name 1 dims, but the operand has shape \(3, 5\)"),
        (lambda: nl.einsum("ij->k", x), ValueError, "output subscript 'k'"),
        (lambda: nl.einsum("i1", x), ValueError, "subscripts must be letters"),
        (lambda: nl.einsum("ij", X), TypeError, "operand 0 must be a Tensor"),
        (lambda: nl.tensordot(x, x, 1), ValueError, r"dim 1 of a \(size 5\) and dim 0 of b \(size 3\)"),
        (lambda: nl.repeat_interleave(x, nl.tensor([1, 2]), 0), ValueError, "repeats must be one count"),
        (lambda: nl.take_along_dim(x, nl.tensor([0, 1]), 1), ValueError, "as many dims as input"),
        (lambda: nl.masked_select(x, nl.tensor([1, 0, 1, 0, 1])), TypeError, "mask must be a bool tensor"),
        (lambda: nl.scatter_add(x, 0, nl.tensor([[3]]), nl.ones(1, 1, dtype=nl.float64)), IndexError,
         r"index values must be in \[0, 3\)"),
        (lambda: nl.index_add(x, 0, nl.tensor([0]), nl.ones(2, 5, dtype=nl.float64)), ValueError,
         r"source must have shape \(1, 5\)"),
        (lambda: x.gather(1, nl.tensor([[0], [1], [2], [0]])), ValueError, "no larger than the input"),
        (lambda: nl.scatter_add(x, 0, nl.tensor([[0.5]]), x), TypeError, "index must hold integers"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


def test_indices_keep_pytorchs_shapes_and_numpy_ints_are_dims():
    assert nl.kthvalue(nl.tensor([3.0, 1.0, 2.0]), 2).indices.shape == ()
    assert nl.sort(nl.tensor(5.0)).indices.shape == () and nl.topk(nl.tensor(5.0), 1).indices.shape == ()
    x = nl.tensor(X)
    for call in (lambda d: nl.prod(x, d), lambda d: nl.all(x > 0, d), lambda d: nl.any(x > 0, d),
                 lambda d: nl.sort(x, d).values, lambda d: nl.topk(x, 2, d).values,
                 lambda d: nl.kthvalue(x, 2, d).values, lambda d: nl.cumsum(x, d)):
        np.testing.assert_array_equal(call(np.int64(1)).data, call(1).data)


def test_zero_dim_inputs_of_the_index_ops_match_torch():
    torch = torch_or_skip()
    ours, theirs = nl.gather(nl.tensor(1.5), 0, nl.tensor(0)), torch.gather(torch.tensor(1.5), 0, torch.tensor(0))
    assert ours.shape == tuple(theirs.shape) == () and ours.item() == theirs.item()
    assert nl.take_along_dim(nl.tensor(1.5), nl.tensor(0)).item() == 1.5
    ours = nl.scatter_add(nl.tensor(1.0), 0, nl.tensor(0), nl.tensor(2.0))
    assert ours.shape == () and ours.item() == 3.0
    ours = nl.index_add(nl.tensor(1.0), 0, nl.tensor([0]), nl.tensor(2.0))
    assert ours.shape == () and ours.item() == 3.0


def test_empty_contraction_and_promotion_as_torch():
    torch = torch_or_skip()
    y = nl.tensordot(nl.zeros(2, 0), nl.zeros(0, 3), 1)
    assert y.shape == (2, 3) and not y.data.any()
    ours, theirs = nl.kron(nl.ones(2), nl.tensor([1, 2])), torch.kron(torch.ones(2), torch.tensor([1, 2]))
    assert ours.dtype == nl.float32 and theirs.dtype == torch.float32
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    # tensordot refuses mixed dtypes, as PyTorch's does, where kron promotes them
    with pytest.raises(RuntimeError):
        torch.tensordot(torch.ones(2, 2), torch.tensor([[1, 2], [3, 4]]))
    with pytest.raises(RuntimeError, match="float32 and int64"):
        nl.tensordot(nl.ones(2, 2), nl.tensor([[1, 2], [3, 4]]))


def test_three_operand_einsum_contracts_pairwise_with_the_same_result():
    torch = torch_or_skip()
    arrays = [RNG.standard_normal(s) for s in ((4, 5), (5, 6), (6, 3))]
    ours = [_leaf(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = nl.einsum("ij,jk,kl->li", *ours), torch.einsum("ij,jk,kl->li", *theirs)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    for a, ta in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12)


def test_index_ops_refuse_what_pytorch_refuses():
    x = nl.tensor(X)
    cases = [
        (lambda: nl.repeat_interleave(x, 2, dim=5), IndexError, "repeat_interleave: dim 5 is out of range"),
        (lambda: nl.take_along_dim(x, nl.tensor([[0]]), 3), IndexError, "take_along_dim: dim 3 is out of range"),
        (lambda: x.gather(2, nl.tensor([[0]])), IndexError, "gather: dim 2 is out of range"),
        (lambda: nl.index_add(x, 3, nl.tensor([0]), x[:1]), IndexError, "index_add: dim 3 is out of range"),
        (lambda: nl.tensordot(x, x, ([2], [0])), IndexError, "tensordot: dim 2 is out of range"),
        (lambda: x.gather(1, nl.tensor([[-1]])), IndexError, r"gather: index values must be in \[0, 5\)"),
        (lambda: nl.index_select(x, 0, nl.tensor([-1])), IndexError, r"index_select: index values must be in \[0, 3\)"),
        (lambda: nl.scatter_add(nl.zeros(3), 0, nl.tensor([-1]), nl.ones(1)), IndexError, "scatter_add: index values"),
        (lambda: nl.index_add(nl.zeros(2, 3), 1, nl.tensor([0]), nl.tensor([[1], [2]])), TypeError,
         "index_add: source must have the input's dtype float32, got int64"),
        (lambda: nl.scatter_add(nl.zeros(3), 0, nl.tensor([0]), nl.ones(1, dtype=nl.float64)), TypeError,
         "scatter_add: src must have the input's dtype float32, got float64"),
        (lambda: nl.index_add(x, 0, nl.tensor([[0]]), x[:1]), ValueError, "index_add: index must be 1-D"),
        (lambda: nl.repeat_interleave(x, nl.tensor([[1, 1, 1]]), 0), ValueError, "repeats must be one count"),
        (lambda: nl.diagonal(x, 0.5), TypeError, "diagonal: offset must be an int, got float"),
        (lambda: nl.flip(nl.tensor(1.0), 3), IndexError, "flip: dim 3 is out of range"),
        (lambda: nl.roll(x, 1.5), TypeError, "roll: shifts must be an int"),
        (lambda: nl.kron([1.0], x), TypeError, "kron: expected input to be a Tensor, got list"),
        (lambda: nl.sort([1.0]), TypeError, "sort: expected input to be a Tensor, got list"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


def test_flip_method_takes_dims_as_pytorchs_does_and_dims_are_type_checked():
    x = nl.arange(6).reshape(2, 3)
    assert x.flip(0, 1).data.tolist() == x.flip((0, 1)).data.tolist() == [[5, 4, 3], [2, 1, 0]]
    with pytest.raises(TypeError, match=r"all: dim must be an int, a tuple of ints or None, got float 1.5"):
        nl.all(nl.ones(2, 2), 1.5)


# Keys mixing ints with index arrays: PyTorch applies the ints (with slices, None, Ellipsis) first
# and the index arrays to what remains, so an int never moves the indexed dims to the front.
def _mixed_keys(L):
    t = L.tensor
    return {
        "int_slice_index": (0, slice(None), t([0, 2, 1])),
        "index_slice_int": (t([0, 2]), slice(None), 1),
        "slice_int_slice_index": (slice(None), 1, slice(None), t([1, 0, 1])),
        "int_slice_list": (1, slice(None), [0, 4, 4]),
        "list_int_slice_int": ([0, 1], 1, slice(None), 0),
        "int_ellipsis_index": (0, Ellipsis, t([1, 0])),
        "ellipsis_int_index": (Ellipsis, 2, t([1, 0])),
        "int_none_slice_index": (0, None, slice(None), t([0, 1, 3])),
        "none_int_slice_2d_index": (None, 0, slice(None), t([[0, 1], [2, 3]])),
        "int_slice_mask": (1, slice(None), t([True, False, True, True, False])),
        "mask_int_slice_int": (t([True, False, True]), 1, slice(None), 0),
        "int_slice_bool": (0, slice(None), True),
        "zero_dim_int_tensor": (t(1), slice(None), t([0, 2])),
        "int_2d_mask": (0, t([[True, False, True, False, True], [False] * 5, [True] * 5, [False] * 5])),
        "int_slice_repeated_index": (2, slice(None), t([4, 3, 4]), slice(None)),
    }


@pytest.mark.parametrize("name", sorted(_mixed_keys(nl)))
def test_ints_among_index_arrays_index_in_pytorchs_order(name):
    torch = torch_or_skip()
    key, tkey = _mixed_keys(nl)[name], _mixed_keys(torch)[name]
    a = RNG.standard_normal((3, 4, 5, 2))
    x, tx = _leaf(a), torch.tensor(a, requires_grad=True)
    y, ty = x[key], tx[tkey]
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    v = RNG.standard_normal(y.shape)
    y.backward(nl.tensor(v))
    ty.backward(torch.tensor(v))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    # writes, untracked and then recorded (gradients to the old values and to the written ones)
    z, tz = nl.zeros(x.shape, dtype=nl.float64), torch.zeros(x.shape, dtype=torch.float64)
    z[key], tz[tkey] = nl.tensor(v), torch.tensor(v)
    np.testing.assert_array_equal(z.data, tz.numpy())
    value, tvalue = nl.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    w, tw = x * 1, tx * 1
    w[key], tw[tkey] = value, tvalue
    g = RNG.standard_normal(x.shape)
    w.backward(nl.tensor(g))
    tw.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    np.testing.assert_array_equal(value.grad.data, tvalue.grad.numpy())


def test_an_int_before_an_index_array_selects_first():
    x = nl.arange(18.0).reshape(2, 3, 3)
    idx = nl.tensor([0, 1, 2])
    assert x[0, :, idx].tolist() == x[0][:, idx].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    z = nl.zeros(2, 2, 2)
    z[0, :, nl.tensor([0, 1])] = nl.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert z[0].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    f = lambda a: a[1, :, nl.tensor([2, 0, 2])] * nl.arange(3.0)   # noqa: E731
    assert gradcheck(f, [_leaf(CUBE)]) and gradgradcheck(f, [_leaf(CUBE)])


def test_einsum_backward_over_an_empty_contracted_dim():
    a, b = nl.zeros(2, 0, requires_grad=True), nl.zeros(3, 0, requires_grad=True)
    y = nl.einsum("ij,kj", a, b)
    assert y.tolist() == [[0.0] * 3] * 2
    y.sum().backward()
    assert a.grad.shape == (2, 0) and b.grad.shape == (3, 0)
    c = nl.ones(1, 0, requires_grad=True)   # a size-1 dim broadcasts against 2; the 0 stays 0
    nl.einsum("ij,kj->ik", a, c).sum().backward()
    assert c.grad.shape == (1, 0)
