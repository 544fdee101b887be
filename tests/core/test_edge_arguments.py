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


def test_bmm_refuses_batches_of_different_sizes():
    a, b = nl.ones((1, 2, 3)), nl.ones((5, 3, 4))
    with pytest.raises(ValueError, match=r"bmm: the two batches must have the same size, got shapes "
                                         r"\(1, 2, 3\) and \(5, 3, 4\)"):
        nl.bmm(a, b)
    assert nl.matmul(a, b).shape == (5, 2, 4)    # matmul broadcasts the batch


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (3, 0, 2)])
def test_where_with_a_condition_alone_gives_its_indices_like_torch(shape):
    torch = torch_or_skip()
    a = np.random.default_rng(0).standard_normal(shape)
    ours, theirs = nl.where(nl.tensor(a) > 0), torch.where(torch.tensor(a) > 0)
    assert isinstance(ours, tuple) and len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert o.dtype == nl.int64
        np.testing.assert_array_equal(o.data, t.numpy())


def test_where_refuses_only_one_of_input_and_other():
    with pytest.raises(TypeError, match="both input and other"):
        nl.where(nl.tensor([True]), nl.tensor([1.0]))


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_and_minimum_give_the_gradient_to_both_sides_of_a_nan_like_torch(op):
    torch = torch_or_skip()
    a, b = np.array([1.0, np.nan, np.nan, 2.0, 3.0]), np.array([np.nan, 1.0, np.nan, 2.0, -1.0])
    w = np.array([0.5, -2.0, 3.0, 4.0, 5.0])
    x, y = nl.tensor(a, requires_grad=True), nl.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (getattr(nl, op)(x, y) * nl.tensor(w)).sum().backward()
    (getattr(torch, op)(tx, ty) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    np.testing.assert_array_equal(y.grad.data, ty.grad.numpy())



@pytest.mark.parametrize("counts", [[1, 0, 2], [3], [], [0, 0]])
def test_repeat_interleave_of_counts_alone_repeats_their_positions_like_torch(counts):
    torch = torch_or_skip()
    ours = nl.repeat_interleave(nl.tensor(np.array(counts, dtype=np.int64)))
    theirs = torch.repeat_interleave(torch.tensor(counts, dtype=torch.int64))
    assert ours.dtype == nl.int64
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_repeat_interleave_of_counts_alone_refuses_a_2d_tensor():
    with pytest.raises(ValueError, match=r"counts alone must be 1-D, got shape \(1, 2\)"):
        nl.repeat_interleave(nl.tensor(np.array([[1, 2]])))


def test_expand_refuses_minus_one_for_a_new_leading_dim():
    x = nl.ones((3, 4))
    with pytest.raises(RuntimeError, match=r"-1 in the target shape \(-1, 3, 4\) stands for a new leading dim"):
        x.expand(-1, 3, 4)
    assert x.expand(2, -1, -1).shape == (2, 3, 4)


def test_allclose_takes_equal_nan():
    a = nl.tensor([float("nan"), 1.0])
    assert nl.allclose(a, a, equal_nan=True)
    assert not nl.allclose(a, a)


@pytest.mark.parametrize("name,values", [("norm", [1e200, 1e200]), ("norm", [np.inf, 1.0]), ("norm3", [1e200, 1.0]),
                                         ("std", [1e200, -1e200]), ("norm_dim", [[1e200, 1.0], [1.0, 2.0]])])
def test_a_norm_that_overflows_passes_zero_to_its_finite_entries_like_torch(name, values):
    torch = torch_or_skip()
    a = np.array(values)

    def f(x):
        return {"norm": lambda: x.norm(), "norm3": lambda: x.norm(p=3), "std": lambda: x.std(),
                "norm_dim": lambda: x.norm(dim=1)}[name]()

    x, tx = nl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    f(x).sum().backward()
    f(tx).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_a_zero_remainder_keeps_the_sign_of_the_dividend_like_torch(dtype):
    torch = torch_or_skip()
    a = np.array([-4.0, 4.0, -0.0, 0.0, -2.5, 2.5, -3.0, 3.0], dtype=dtype)
    b = np.array([2.0, -2.0, 3.0, -3.0, 2.5, -2.5, 2.0, -2.0], dtype=dtype)
    ours = nl.remainder(nl.tensor(a), nl.tensor(b)).data
    theirs = torch.remainder(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
    np.testing.assert_array_equal(np.signbit((nl.tensor(a) % 2.0).data), np.signbit((torch.tensor(a) % 2.0).numpy()))


def test_a_running_sum_of_negative_zeros_is_positive_zero_like_torch():
    torch = torch_or_skip()
    a = np.array([[-0.0, -0.0, 1.0], [-0.0, 2.0, -2.0]])
    for dim in (0, 1):
        ours, theirs = nl.cumsum(nl.tensor(a), dim).data, torch.cumsum(torch.tensor(a), dim).numpy()
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


@pytest.mark.parametrize("call", [lambda L, x: L.roll(x, 1, 0), lambda L, x: L.roll(x, (1,), (-1,)),
                                  lambda L, x: L.take_along_dim(x, L.tensor(0), 0)], ids=["roll", "roll_tuple",
                                                                                          "take_along_dim"])
def test_a_0_dim_tensor_has_no_dim_to_roll_or_take_along_like_torch(call):
    torch = torch_or_skip()
    with pytest.raises(IndexError):
        call(torch, torch.tensor(1.5))
    with pytest.raises(IndexError, match="a 0-dim tensor has no dim"):
        call(nl, nl.tensor(1.5))
    assert nl.roll(nl.tensor(1.5), 1).item() == 1.5     # without dims it is rolled as if flattened


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "logcumsumexp"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_long_scan_is_carried_in_a_wider_float_like_torch(op, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    n = 200_000 if dtype == "float32" else 5000
    # near 1, so the running product neither vanishes nor overflows and every digit counts
    a = (rng.random(n) if op == "cumsum" else 1 + 1e-4 * rng.standard_normal(n)).astype(dtype)
    ours, theirs = getattr(nl, op)(nl.tensor(a), 0), getattr(torch, op)(torch.tensor(a), 0)
    assert ours.dtype == a.dtype
    exact = getattr(torch, op)(torch.tensor(a.astype(np.float64)), 0).numpy()[-1]
    tolerance = 1e-6 if dtype == "float32" else 1e-3
    assert abs(float(ours.data[-1]) - exact) <= tolerance * abs(exact)
    np.testing.assert_allclose(ours.data.astype(np.float64), theirs.numpy().astype(np.float64),
                               rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("key", [
    (slice(None, 2), np.array([0]), Ellipsis, np.array([False, False, True, True])),
    (slice(None), np.array([[0, 0], [0, 0]]), Ellipsis, np.array([[1, 0], [3, 1]])),
    (Ellipsis, slice(None), np.array([0, 0]), np.array([2, 1])),
    (1, Ellipsis, np.array([0, 0]), np.array([2, 1])),
    (np.array([1, 0]), Ellipsis, np.array([3, 2])),             # here the Ellipsis stands for one dim
], ids=["slice_idx_empty_ellipsis_mask", "2d_indices", "leading_ellipsis", "int_then_ellipsis", "separating"])
def test_an_ellipsis_that_stands_for_no_dim_does_not_separate_index_arrays_like_torch(key):
    torch = torch_or_skip()
    a = np.random.default_rng(0).standard_normal((2, 1, 4))
    tkey = tuple(torch.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    nkey = tuple(nl.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
    x, tx = nl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x[nkey], tx[tkey]
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    w = np.arange(ty.numel(), dtype=np.float64).reshape(ty.shape)
    (y * nl.tensor(w)).sum().backward()
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())
    z, tz = x.detach().clone(), tx.detach().clone()
    z[nkey], tz[tkey] = nl.tensor(w), torch.tensor(w)
    np.testing.assert_array_equal(z.data, tz.numpy())


def test_split_and_broadcast_to_take_torch_s_keyword_names():
    torch = torch_or_skip()
    a = np.arange(12.0).reshape(3, 4)
    ours = nl.split(tensor=nl.tensor(a), split_size_or_sections=[1, 3], dim=1)
    theirs = torch.split(tensor=torch.tensor(a), split_size_or_sections=[1, 3], dim=1)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.data, t.numpy())
    assert nl.broadcast_to(input=nl.tensor(a), size=(2, 3, 4)).shape == (2, 3, 4)


@pytest.mark.parametrize("call", [
    lambda L, x: x.reshape(shape=(6, 2)), lambda L, x: L.reshape(input=x, shape=(6, 2)), lambda L, x: x.view(size=(6, 2)),
    lambda L, x: x.permute(dims=(1, 0)), lambda L, x: L.permute(x, dims=(1, 0)), lambda L, x: x.expand(size=(2, 3, 4)),
    lambda L, x: x.flip(dims=(0, 1)), lambda L, x: L.flip(x, dims=[1]), lambda L, x: x.split(split_size=3, dim=1)[1],
    lambda L, x: L.zeros_like(input=x), lambda L, x: L.ones_like(input=x), lambda L, x: L.full_like(input=x, fill_value=2.5),
    lambda L, x: L.empty_like(input=x).shape, lambda L, x: L.rand_like(input=x).shape, lambda L, x: L.randn_like(input=x).shape,
], ids=["reshape", "fn_reshape", "view", "permute", "fn_permute", "expand", "flip", "fn_flip", "split", "zeros_like",
        "ones_like", "full_like", "empty_like", "rand_like", "randn_like"])
def test_shape_and_like_functions_take_torch_s_keyword_names(call):
    torch = torch_or_skip()
    a = np.arange(12.0).reshape(3, 4)
    ours, theirs = call(nl, nl.tensor(a)), call(torch, torch.tensor(a))
    if isinstance(theirs, torch.Size):
        assert ours == tuple(theirs)
    else:
        np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_a_size_given_both_ways_is_refused():
    x = nl.zeros(3, 4)
    for call, name in [(lambda: x.reshape(12, shape=(12,)), "reshape: give shape"),
                       (lambda: x.permute(1, 0, dims=(1, 0)), "permute: give dims"),
                       (lambda: x.flip(0, dims=(1,)), "flip: give dims")]:
        with pytest.raises(TypeError, match=name):
            call()


def test_the_divisor_gradient_is_a_over_b_over_b_so_tiny_divisors_stay_finite():
    # -g * a / (b * b) underflowed b * b to 0 for |b| < 1e-154, giving -inf where the value is -1e300
    a = nl.tensor([1e-300, 3.0, -2.0], dtype=nl.float64, requires_grad=True)
    b = nl.tensor([1e-300, 7.0, 0.5], dtype=nl.float64, requires_grad=True)
    (a / b).sum().backward()
    np.testing.assert_array_equal(b.grad.data, -((a.data / b.data) / b.data))
    assert np.isfinite(b.grad.data).all()


def test_lerp_with_a_number_weight_lets_start_and_end_change_in_place_like_torch():
    # start and end are read only for the weight's gradient; a number weight needs none
    x = nl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x * 1
    y[0].lerp_(y[1], 0.25)   # y[1] is then changed by nothing, y[0] in place: both fine
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.75] * 3, [1.25] * 3])
    # with a weight that wants a gradient, start and end are read and guarded
    w = nl.tensor(0.3, dtype=nl.float64, requires_grad=True)
    start = nl.tensor(np.ones(3), requires_grad=True) * 1
    out = nl.lerp(start, nl.tensor(np.zeros(3)), w)
    start.add_(1)
    with pytest.raises(RuntimeError, match="modified in place"):
        out.sum().backward()


@pytest.mark.parametrize("call", [lambda: nl.abs(nl.tensor([True, False])), lambda: True - nl.tensor([1.0]),
                                  lambda: nl.tensor([1.0]) - True, lambda: nl.tensor([True]) - nl.tensor([1.0]),
                                  lambda: nl.tensor([True]) - nl.tensor([True]), lambda: -nl.tensor([True])])
def test_bool_tensors_refuse_abs_subtraction_and_negation_like_torch(call):
    with pytest.raises(TypeError, match="(abs|sub|neg): .*bool"):
        call()


def test_the_gradient_of_abs_is_zero_at_nan_like_torch():
    x = nl.tensor([np.nan, 0.0, -0.0, 2.0, -3.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0, 1.0, -1.0])


def test_norm_is_a_function_at_the_top_level_like_torch_norm():
    # nnlite.ops.norm was the normalisation layers' module, which hid the function from `import *`
    x = nl.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert callable(nl.norm) and callable(nl.ops.norm)
    np.testing.assert_allclose(nl.norm(x).item(), np.sqrt((np.arange(24.0) ** 2).sum()))
    np.testing.assert_array_equal(nl.norm(x, dim=1).data, x.norm(dim=1).data)


IN_PLACE_UNARY = ["relu_", "frac_", "square_", "rsqrt_", "reciprocal_", "sin_", "cos_", "erf_", "expm1_", "log1p_",
                  "sign_", "neg_"]


@pytest.mark.parametrize("name", IN_PLACE_UNARY)
def test_in_place_unary_methods_overwrite_and_backpropagate_like_their_out_of_place_forms(name):
    values = np.array([0.3, 1.7, 2.5, 0.9])
    x = nl.tensor(values, requires_grad=True)
    y = x * 1
    assert getattr(y, name)() is y
    (y * nl.tensor([1.0, 2.0, 3.0, 4.0], dtype=nl.float64)).sum().backward()
    x2 = nl.tensor(values, requires_grad=True)
    ref = getattr(x2, name.removesuffix("_"))()
    (ref * nl.tensor([1.0, 2.0, 3.0, 4.0], dtype=nl.float64)).sum().backward()
    np.testing.assert_array_equal(y.data, ref.data)
    np.testing.assert_array_equal(x.grad.data, x2.grad.data)


@pytest.mark.parametrize("name", IN_PLACE_UNARY)
def test_in_place_unary_methods_match_torch(name):
    torch = torch_or_skip()
    values = np.array([0.3, -1.7, 2.5, 0.9])
    y, ty = nl.tensor(values.copy()), torch.tensor(values.copy())
    getattr(y, name)()
    getattr(ty, name)()
    np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-15, equal_nan=True)


def test_reciprocal_of_integers_is_a_float_like_torch():
    np.testing.assert_array_equal(nl.reciprocal(nl.tensor([2, -4, 0])).data, np.float32([0.5, -0.25, np.inf]))
    with pytest.raises(RuntimeError, match="can't be cast"):
        nl.tensor([2, 4]).reciprocal_()


@pytest.mark.parametrize("key", [[], (slice(None), []), (1, []), ([], 0), (Ellipsis, []), ([], [])],
                         ids=["empty_list", "slice_then_empty", "int_then_empty", "empty_then_int", "ellipsis", "two"])
def test_an_empty_list_key_selects_nothing_like_torch(key):
    torch = torch_or_skip()
    a = np.arange(12.0).reshape(3, 4)
    x, tx = nl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x[key], tx[key]
    assert y.shape == tuple(ty.shape) and y.dtype == nl.float64
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros_like(a))
    z = x.detach().clone()
    z[key] = 5.0
    np.testing.assert_array_equal(z.data, a)


@pytest.mark.parametrize("dtype", ["int64", "float32"])
def test_where_refuses_a_condition_that_is_not_bool_like_torch(dtype):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="boolean"):
        torch.where(torch.tensor([1, 0]).to(getattr(torch, dtype)), 1.0, 0.0)
    with pytest.raises(TypeError, match=f"where: expected a bool condition, got dtype {dtype}"):
        nl.where(nl.tensor([1, 0]).to(getattr(nl, dtype)), 1.0, 0.0)
    np.testing.assert_array_equal(nl.where(nl.tensor([1, 0], dtype=nl.uint8), 1.0, 0.0).data, [1.0, 0.0])


def test_one_hot_refuses_what_torch_refuses():
    torch = torch_or_skip()
    F, TF = nl.nn.functional, torch.nn.functional
    for ours, theirs, error, match in [
        (nl.tensor([1.0]), torch.tensor([1.0]), TypeError, "one_hot: expected an int64 index tensor, got dtype float32"),
        (nl.tensor([True]), torch.tensor([True]), TypeError, "one_hot: expected an int64 index tensor, got dtype bool"),
        (nl.tensor([], dtype=nl.int64), torch.tensor([], dtype=torch.int64), ValueError,
         "one_hot: cannot infer the number of classes from an empty tensor"),
    ]:
        with pytest.raises(RuntimeError):
            TF.one_hot(theirs)
        with pytest.raises(error, match=match):
            F.one_hot(ours)
    assert F.one_hot(nl.tensor([], dtype=nl.int64), 3).shape == tuple(TF.one_hot(torch.tensor([], dtype=torch.int64), 3).shape)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("case", ["bool", "empty_flat", "empty_dim"])
def test_argmax_and_argmin_refuse_what_torch_refuses(op, case):
    torch = torch_or_skip()
    make, dim, error, match = {
        "bool": (lambda L: L.tensor([True, False]), None, TypeError, f"{op}: expected a number tensor, got dtype bool"),
        "empty_flat": (lambda L: L.zeros(0, 3), None, IndexError, rf"{op}: an empty tensor \(shape \(0, 3\)\)"),
        "empty_dim": (lambda L: L.zeros(0, 3), 0, IndexError, rf"{op}: dim 0 of the input \(shape \(0, 3\)\) is empty"),
    }[case]
    with pytest.raises(RuntimeError if case == "bool" else IndexError):
        getattr(make(torch), op)(dim)
    with pytest.raises(error, match=match):
        getattr(make(nl), op)(dim)
    assert getattr(nl.zeros(0, 3), op)(1).shape == tuple(getattr(torch.zeros(0, 3), op)(1).shape) == (0,)


@pytest.mark.parametrize("call", [lambda x: x.reshape(2.9, 3), lambda x: x.view(3.0, 2), lambda x: x[None].expand(2.5, 6),
                                  lambda x: x.reshape(True, 6)], ids=["reshape", "view", "expand", "bool"])
def test_a_shape_that_is_not_ints_is_refused_like_torch(call):
    torch = torch_or_skip()
    with pytest.raises(TypeError):
        call(torch.arange(6.0))
    with pytest.raises(TypeError, match=r"size must be a tuple of ints, got (float|bool)"):
        call(nl.arange(6.0))
    assert nl.arange(6.0).reshape(nl.tensor(3), np.int32(2)).shape == (3, 2)


@pytest.mark.parametrize("call, match", [
    (lambda L: L.arange(6.0).narrow(0, 1.5, 2), "narrow: start must be an int, got float 1.5"),
    (lambda L: L.arange(6.0).narrow(0, 1, 2.5), "narrow: length must be an int, got float 2.5"),
    (lambda L: L.linspace(0, 1, 2.5), "linspace: steps must be an int, got float 2.5"),
    (lambda L: L.nn.functional.one_hot(L.tensor([1]), 2.5), "one_hot: num_classes must be an int, got float 2.5"),
    (lambda L: L.zeros(2, 6).unflatten(1, (2.0, 3)), r"size must be a tuple of ints, got float 2.0"),
], ids=["narrow_start", "narrow_length", "linspace", "one_hot", "unflatten"])
def test_a_count_that_is_not_an_int_is_refused_like_torch(call, match):
    torch = torch_or_skip()
    with pytest.raises((TypeError, RuntimeError)):
        call(torch)
    with pytest.raises(TypeError, match=match):
        call(nl)
    np.testing.assert_array_equal(nl.arange(6).narrow(0, nl.tensor(2), np.int64(2)).data,
                                  torch.arange(6).narrow(0, torch.tensor(2), 2).numpy())


def test_unary_plus_is_the_tensor_itself_as_in_torch():
    torch = torch_or_skip()
    x = nl.tensor([1.0, -2.0], requires_grad=True)
    assert (+x) is x and nl.positive(x) is x and (+torch.tensor([1.0])).tolist() == [1.0]
    assert (+nl.tensor([3, 4])).data.tolist() == [3, 4]
    with pytest.raises(RuntimeError):
        +torch.tensor([True])
    with pytest.raises(TypeError, match="positive: the \\+ operator takes a number tensor, got dtype bool"):
        +nl.tensor([True])
