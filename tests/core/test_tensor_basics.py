"""Creation, dtypes, interop, seeding and error messages of Tensor."""
import numpy as np
import pytest

import nnlite as nl


def test_default_dtypes_follow_pytorch():
    assert nl.tensor([1.0, 2.0]).dtype == nl.float32
    assert nl.tensor([1, 2]).dtype == nl.int64
    assert nl.tensor([True]).dtype == nl.bool
    assert nl.tensor(np.zeros(2)).dtype == nl.float64      # NumPy float64 is kept
    assert nl.tensor([1.0], dtype=np.float64).dtype == nl.float64
    assert nl.tensor([1.0], dtype="float64").dtype == nl.float64
    assert nl.zeros(2, 3).dtype == nl.float32 and nl.zeros(2, 3).shape == (2, 3)
    assert nl.arange(5).dtype == nl.int64 and nl.arange(0.0, 1.0, 0.25).shape == (4,)


def test_unsupported_dtypes_are_refused():
    for bad in (np.array(["a"]), np.array([1j]), [object()]):
        with pytest.raises(TypeError, match="expected float, integer or bool data"):
            nl.tensor(bad)


def test_creation_functions():
    assert nl.ones((2, 3)).sum().item() == 6
    assert nl.full((2, 2), 7.0).data.tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert nl.eye(3).data.trace() == 3
    np.testing.assert_allclose(nl.linspace(0, 1, 5).data, [0, 0.25, 0.5, 0.75, 1])
    x = nl.randn(3, 4, dtype=nl.float64)
    assert nl.zeros_like(x).dtype == nl.float64 and nl.ones_like(x).shape == (3, 4)
    assert nl.empty(0, 3).shape == (0, 3)
    r = nl.randint(0, 10, (100,))
    assert r.dtype == nl.int64 and 0 <= r.data.min() and r.data.max() < 10
    with pytest.raises(ValueError, match="negative"):
        nl.zeros(-1)


def _starts_on_a_cache_line(t):
    return t.data.ctypes.data % 64 == 0


@pytest.mark.parametrize("dtype", [nl.float32, nl.float64, nl.float16, nl.int64, nl.bool])
@pytest.mark.parametrize("shape", [(), (1,), (3,), (7, 5), (2, 3, 4), (256, 784)])
def test_creation_functions_start_their_storage_on_a_cache_line(shape, dtype):
    like = nl.ones(shape, dtype=nl.float32)
    made = [nl.empty(shape, dtype=dtype), nl.zeros(shape, dtype=dtype), nl.ones(shape, dtype=dtype),
            nl.full(shape, 1, dtype=dtype), nl.empty_like(like, dtype=dtype), nl.zeros_like(like, dtype=dtype),
            nl.ones_like(like, dtype=dtype), nl.full_like(like, 1, dtype=dtype)]
    if dtype in (nl.float32, nl.float64):
        made += [nl.rand(shape, dtype=dtype), nl.randn(shape, dtype=dtype)]
    for t in made:
        assert t.shape == shape and t.dtype == dtype
        assert t.data.flags.c_contiguous and t.data.flags.writeable
        assert _starts_on_a_cache_line(t), (t, t.data.ctypes.data % 64)
    for i, want in ((1, 0), (2, 1), (3, 1), (5, 0), (6, 1), (7, 1)):   # and hold what they say
        assert (made[i].data == want).all()


def test_aligned_draws_are_the_draws_of_the_generator():
    # rand/randn fill aligned storage through the generator's out=: the same numbers as before
    for draw, method in ((nl.rand, "random"), (nl.randn, "standard_normal")):
        for dtype in (np.float32, np.float64):
            nl.manual_seed(11)
            got = draw(4, 9, dtype=dtype).data
            nl.manual_seed(11)
            want = getattr(nl.random._gen(None), method)((4, 9), dtype=dtype)
            np.testing.assert_array_equal(got, want)


def test_layer_parameters_start_on_a_cache_line_and_keep_it_through_casts():
    model = nl.nn.Sequential(nl.nn.Linear(784, 256), nl.nn.Conv2d(3, 5, 3), nl.nn.LayerNorm(33),
                             nl.nn.Embedding(10, 7))
    assert all(_starts_on_a_cache_line(p) for p in model.parameters())
    model.double()
    assert all(p.dtype == nl.float64 and _starts_on_a_cache_line(p) for p in model.parameters())
    before = {name: p.data.copy() for name, p in model.state_dict().items()}
    model.float()
    for name, p in model.state_dict().items():
        assert _starts_on_a_cache_line(p)
        np.testing.assert_array_equal(p.data, before[name].astype(np.float32))


def test_a_view_of_aligned_storage_is_still_a_view():
    # The storage is a slice of a larger byte buffer; autograd must still see x[0] as x's view.
    x = nl.zeros(3, 4, requires_grad=True)
    y = x * 1.0
    row = y[1]
    row.mul_(2.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1] * 4, [2] * 4, [1] * 4])


def test_manual_seed_reproduces_draws_and_generators_are_independent():
    nl.manual_seed(123)
    a = nl.randn(5).data.copy()
    nl.manual_seed(123)
    b = nl.randn(5).data.copy()
    np.testing.assert_array_equal(a, b)
    g1, g2 = nl.Generator(7), nl.Generator(7)
    np.testing.assert_array_equal(nl.rand(4, generator=g1).data, nl.rand(4, generator=g2).data)
    state = g1.get_state()
    first = nl.rand(3, generator=g1).data.copy()
    g1.set_state(state)
    np.testing.assert_array_equal(nl.rand(3, generator=g1).data, first)


def test_a_generator_that_is_not_one_is_named():
    # an int or a NumPy generator used to fail inside as "'int' object has no attribute 'np'"
    for bad in (5, np.random.default_rng(0)):
        with pytest.raises(TypeError, match=r"generator must be an nl.Generator or None, got (int|numpy\.random\..*Generator)$"):
            nl.randn(3, generator=bad)
        with pytest.raises(TypeError, match="generator must be an nl.Generator"):
            nl.nn.init.normal_(nl.empty(3), generator=bad)
        with pytest.raises(TypeError, match="generator must be an nl.Generator"):
            nl.randperm(4, generator=bad)


def test_numpy_interop():
    x = nl.tensor([[1.0, 2.0]])
    assert np.asarray(x) is x.data and x.numpy() is x.data
    assert x.shape == (1, 2) and x.ndim == 2 and x.numel() == 2 and len(x) == 1
    assert nl.tensor(3.5).item() == 3.5 and float(nl.tensor([2.0])) == 2.0
    assert x.tolist() == [[1.0, 2.0]]
    with pytest.raises(RuntimeError, match="detach"):
        nl.tensor([1.0], requires_grad=True).numpy()
    with pytest.raises(ValueError, match="one-element"):
        x.item()


def test_repr_is_readable():
    assert repr(nl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(nl.tensor([1.0], requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(nl.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=nnlite.float64" in repr(nl.tensor(np.zeros(1)))


def test_dtype_casts_are_differentiable():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == nl.float64
    (y * y).sum().backward()
    assert x.grad.dtype == nl.float32
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_comparisons_return_bool_without_grad():
    x = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = x > 1.5
    assert m.dtype == nl.bool and not m.requires_grad
    assert m.tolist() == [False, True, True]
    assert (x == 2.0).tolist() == [False, True, False]


def test_shape_errors_name_the_shapes():
    a, b = nl.ones(3, 4), nl.ones(5, 6)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 6\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 6\)"):
        a + b
    with pytest.raises(RuntimeError, match=r"\(7,\).*\(3, 4\)"):
        a.reshape(7)
    with pytest.raises(ValueError, match=r"mm: expected 2-D tensors, got shapes \(3,\) and \(3, 4\)"):
        nl.mm(nl.ones(3), a)
    with pytest.raises(ValueError, match=r"bmm: expected 3-D tensors, got shapes \(3, 4\) and \(5, 6\)"):
        nl.bmm(a, b)
    with pytest.raises(ValueError, match=r"dot: expected 1-D tensors, got shapes \(3, 4\) and \(3,\)"):
        nl.dot(a, nl.ones(3))
    with pytest.raises(ValueError, match=r"must match"):
        nl.cat([nl.ones(2, 3), nl.ones(3, 2)], 0)
    with pytest.raises(IndexError, match="out of range"):
        a.sum(dim=2)
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        a[5]


def test_max_and_min_with_dim_return_values_and_indices():
    x = nl.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert x.min().item() == 0.0
    assert x.argmax().item() == 3


def test_split_chunk_stack_shapes():
    x = nl.arange(10).float()
    assert [p.shape for p in x.split(4)] == [(4,), (4,), (2,)]
    assert [p.shape for p in x.chunk(3)] == [(4,), (4,), (2,)]
    assert nl.stack([x, x], 1).shape == (10, 2)
    with pytest.raises(ValueError, match="sum to"):
        x.split([3, 3])


def test_softmax_is_stable_for_huge_logits():
    x = nl.tensor([[1e4, 0.0, -1e4], [-np.inf, 0.0, 1.0]])
    p = nl.softmax(x, dim=1)
    assert np.all(np.isfinite(p.data))
    np.testing.assert_allclose(p.data.sum(1), [1.0, 1.0], rtol=1e-6)
    lp = nl.log_softmax(nl.tensor([[1e4, 0.0]]), dim=1)
    np.testing.assert_allclose(lp.data, [[0.0, -1e4]])


def test_functions_take_pytorchs_argument_names():
    import nnlite.nn.functional as F
    t = nl.tensor([[1.0, -2.0], [3.0, 4.0]])
    assert nl.add(input=t, other=t, alpha=2).tolist() == [[3.0, -6.0], [9.0, 12.0]]
    assert nl.pow(input=t, exponent=2).tolist() == [[1.0, 4.0], [9.0, 16.0]]
    assert nl.where(condition=t > 0, input=t, other=0.0).tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert nl.matmul(input=t, other=t).shape == (2, 2) and nl.mm(input=t, mat2=t).shape == (2, 2)
    assert nl.sum(input=t, dim=1, keepdim=True).shape == (2, 1)
    assert F.softmax(input=t, dim=1).shape == (2, 2) and F.relu(input=t).tolist()[0] == [1.0, 0.0]
    assert nl.clamp(input=t, min=0.0).tolist()[0] == [1.0, 0.0]
    assert nl.transpose(input=t, dim0=0, dim1=1).tolist() == [[1.0, 3.0], [-2.0, 4.0]]


def test_backend_fixture_runs_the_test_on_the_chosen_backend(backend):
    # NNLITE_BACKEND=reference python -m pytest tests/core tests/nn runs these files on the NumPy twins.
    assert nl.get_backend() == backend


def test_t_and_expand_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"t\(\) expects a tensor with <= 2 dims, got 3"):
        nl.zeros(2, 2, 2).t()
    with pytest.raises(RuntimeError, match=r"expand: the target shape \(3,\) has fewer dims than the input \(2, 3\)"):
        nl.zeros(2, 3).expand(3)


def test_narrow_counts_a_negative_start_from_the_end_and_checks_its_arguments():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    a = np.arange(6.0).reshape(2, 3)
    for dim, start, length in ((-1, -1, 1), (1, -3, 2), (0, -2, 2), (1, 3, 0), (0, 1, 1)):
        ours, theirs = nl.tensor(a).narrow(dim, start, length), torch.tensor(a).narrow(dim, start, length)
        assert ours.tolist() == theirs.tolist() and ours.shape == tuple(theirs.shape)
    x = nl.tensor(a, requires_grad=True)
    nl.narrow(x, -1, -2, 2).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    for call, error, message in (
            (lambda: x.narrow(5, 0, 1), IndexError, r"narrow: dim 5 is out of range .* \[-2, 1\]"),
            (lambda: x.narrow(1, 4, 0), IndexError, r"narrow: start 4 is out of range .* \[-3, 3\]"),
            (lambda: x.narrow(1, -4, 1), IndexError, r"narrow: start -4 is out of range"),
            (lambda: x.narrow(1, 2, 2), ValueError, r"start \(2\) \+ length \(2\) exceeds the size 3"),
            (lambda: x.narrow(1, 0, -1), ValueError, "length must be non-negative"),
            (lambda: nl.tensor(1.0).narrow(0, 0, 1), ValueError, "0-dim")):
        with pytest.raises(error, match=message):
            call()


def test_shape_ops_refuse_dims_out_of_range_as_pytorch_does():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    calls = {
        "squeeze": lambda L, x: x.squeeze(5), "squeeze_tuple": lambda L, x: x.squeeze((0, 5)),
        "flatten": lambda L, x: x.flatten(0, 5), "flatten_0d": lambda L, x: L.tensor(1.0).flatten(0, 1),
        "unflatten": lambda L, x: x.unflatten(5, (3, 1)), "transpose": lambda L, x: x.transpose(5, 0),
        "permute": lambda L, x: x.permute(0, 5), "split": lambda L, x: x.split(2, 5),
        "chunk": lambda L, x: x.chunk(2, -3), "cat": lambda L, x: L.cat([x, x], 2),
        "stack": lambda L, x: L.stack([x, x], 3), "movedim": lambda L, x: L.movedim(x, 5, 0),
        "narrow": lambda L, x: x.narrow(-3, 0, 1),
    }
    for name, call in calls.items():
        with pytest.raises(IndexError):
            call(torch, torch.zeros(2, 3))
        with pytest.raises(IndexError, match=f"{name.split('_')[0]}: dim -?[0-9] is out of range"):
            call(nl, nl.zeros(2, 3))
    with pytest.raises(ValueError, match=r"squeeze: dims \(0, -2\) name the same dim more than once"):
        nl.zeros(1, 2).squeeze((0, -2))
    with pytest.raises(ValueError, match="split: expected a tensor with at least 1 dim"):
        nl.tensor(1.0).split(1)
    # the dims PyTorch accepts still work, 0-dim tensors taking 0 and -1
    assert nl.tensor(1.0).flatten(-1, 0).shape == (1,) and nl.tensor(1.0).squeeze(0).shape == ()
    assert nl.zeros(2, 3).permute(-1, 0).shape == (3, 2) and nl.zeros(2, 3).unflatten(-1, (3, 1)).shape == (2, 3, 1)


def test_chunk_of_an_empty_dim_gives_the_chunks_asked_for():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    ours, theirs = nl.chunk(nl.zeros(0, 2), 3), torch.chunk(torch.zeros(0, 2), 3)
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs] == [(0, 2)] * 3
    assert [p.shape for p in nl.zeros(2, 0).chunk(2, 1)] == [(2, 0), (2, 0)]


def test_movedim_takes_sequences_and_0_dim_tensors():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    a = np.arange(24.0).reshape(2, 3, 4)
    for source, destination in (((0, 1), (1, 0)), ([0, 2], [2, 0]), ((0, -1), (-1, 1)), (-1, 0)):
        ours, theirs = nl.movedim(nl.tensor(a), source, destination), torch.movedim(torch.tensor(a), source, destination)
        assert ours.tolist() == theirs.tolist()
    assert nl.movedim(nl.tensor(2.0), 0, -1).item() == torch.movedim(torch.tensor(2.0), 0, -1).item() == 2.0
    x = nl.tensor(a, requires_grad=True)
    (nl.movedim(x, (0, 2), (1, 0)) * nl.arange(24.0).reshape(4, 2, 3)).sum().backward()
    assert x.grad.tolist() == nl.arange(24.0).reshape(4, 2, 3).permute(1, 2, 0).tolist()
    with pytest.raises(ValueError, match=r"movedim: source \(0, 0\) names the same dim more than once"):
        nl.movedim(nl.tensor(a), (0, 0), (1, 2))
    with pytest.raises(ValueError, match="must name as many dims"):
        nl.movedim(nl.tensor(a), (0, 1), (1,))


def test_index_select_on_a_0_dim_input_and_with_a_0_dim_index():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    s = nl.tensor(5.0, requires_grad=True)
    for index in ([0], 0):
        ours, theirs = nl.index_select(s, 0, nl.tensor(index)), torch.index_select(torch.tensor(5.0), 0, torch.tensor(index))
        assert ours.shape == tuple(theirs.shape) == () and ours.item() == theirs.item() == 5.0
    nl.index_select(s, -1, nl.tensor([0])).backward()
    assert s.grad.item() == 1.0
    x = nl.arange(6.0).reshape(2, 3)
    assert nl.index_select(x, 1, nl.tensor(2)).tolist() == torch.index_select(
        torch.arange(6.0).reshape(2, 3), 1, torch.tensor(2)).tolist() == [[2.0], [5.0]]
    with pytest.raises(ValueError, match="a 0-dim input takes an index of one value, got 2"):
        nl.index_select(s, 0, nl.tensor([0, 0]))


def test_cat_leaves_out_legacy_empty_vectors_among_tensors_of_other_ranks():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    for dim in (0, 1, -1):
        ours = nl.cat([nl.zeros(0), nl.ones(2, 2), nl.zeros(0)], dim)
        theirs = torch.cat([torch.zeros(0), torch.ones(2, 2), torch.zeros(0)], dim)
        assert ours.shape == tuple(theirs.shape) and ours.tolist() == theirs.tolist()
    empty, b = nl.zeros(0, requires_grad=True), nl.ones(2, 2, requires_grad=True)
    (nl.cat([empty, b, empty], 1) * nl.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert empty.grad.shape == (0,) and b.grad.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match="must match"):
        nl.cat([nl.zeros(0), nl.ones(2, 2), nl.ones(3)])


def test_max_and_min_with_a_tensor_second_argument_are_maximum_and_minimum():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    a, b = np.array([1.0, 4.0, -2.0]), np.array([3.0, 2.0, -2.0])
    for name in ("max", "min"):
        for x, y in ((a, b), (np.float64(2.0), np.float64(3.0)), (np.float64(2.0), b)):
            ours = getattr(nl, name)(nl.tensor(x), nl.tensor(y))
            theirs = getattr(torch, name)(torch.tensor(x), torch.tensor(y))
            assert ours.tolist() == theirs.tolist()
        assert getattr(nl, name)(nl.tensor(a), other=nl.tensor(0.0)).tolist() == \
            getattr(torch, name)(torch.tensor(a), other=torch.tensor(0.0)).tolist()
    x, y = nl.tensor(a, requires_grad=True), nl.tensor(b[::-1].copy(), requires_grad=True)
    x.max(y).sum().backward()   # the larger of each pair gets the gradient (no ties here)
    assert x.grad.tolist() == [1.0, 1.0, 0.0] and y.grad.tolist() == [0.0, 0.0, 1.0]


def test_dims_of_max_argmax_on_0_dim_tensors_and_keepdim_shapes_follow_pytorch():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    for L in (nl, torch):
        for call in (lambda s: L.max(s, dim=7), lambda s: L.min(s, 1), lambda s: s.argmax(2), lambda s: s.argmin(-2)):
            with pytest.raises(IndexError):
                call(L.tensor(2.0))
    a = np.arange(6.0).reshape(2, 3)
    for call in (lambda L, t: t.argmax(0, keepdim=True), lambda L, t: t.argmin(-1, keepdim=True),
                 lambda L, t: t.argmax(keepdim=True), lambda L, t: L.max(t, 0, keepdim=True).indices):
        for x in (a, np.float64(2.0)):
            ours, theirs = call(nl, nl.tensor(x)), call(torch, torch.tensor(x))
            assert ours.shape == tuple(theirs.shape) and ours.tolist() == theirs.tolist()


def test_randint_takes_high_and_size_alone_like_torch():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    for args in [(5, (3,)), (2, 5, (2, 2)), (3, [4])]:
        ours, theirs = nl.randint(*args), torch.randint(*args)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == nl.int64
        assert 0 <= ours.data.min() and ours.data.max() < args[-2]
    with pytest.raises(RuntimeError):
        torch.randint(3, 3, (2,))
    with pytest.raises(ValueError, match="randint: expected low < high, got low=3 and high=3"):
        nl.randint(3, 3, (2,))


@pytest.mark.parametrize("args", [(5, 0), (0, 5, -1), (1.0, 0.0, 0.5)])
def test_arange_refuses_a_step_that_walks_away_from_end_like_torch(args):
    from helpers import torch_or_skip
    torch = torch_or_skip()
    with pytest.raises(RuntimeError, match="inconsistent with step sign"):
        torch.arange(*args)
    with pytest.raises(ValueError, match=r"arange: start=.*, end=.* and step=.* are inconsistent"):
        nl.arange(*args)
    assert nl.arange(5, 5).shape == (0,) and nl.arange(5, 0, -2).data.tolist() == [5, 3, 1]


def test_to_with_copy_gives_a_new_tensor_and_refuses_other_devices():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    assert x.to(nl.float32) is x and x.to("cpu") is x
    for y in (x.to(nl.float32, copy=True), x.to(copy=True), x.to("cpu", copy=True)):
        assert y is not x and y.data is not x.data and y.grad_fn is not None
        y.data[0] = 7.0
        assert x.data[0] == 1.0
    (x.to(copy=True) * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    assert x.to(device="cpu", dtype=nl.float64).dtype == nl.float64
    with pytest.raises(ValueError, match="to: nnlite computes on the CPU only; expected device 'cpu', got 'cuda'"):
        x.to(device="cuda")
    with pytest.raises(TypeError, match="unexpected keyword argument 'memory'"):
        x.to(nl.float64, memory=1)


def test_a_0_dim_tensor_formats_as_its_number_like_torch():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    for value, spec in [(1.25, ".3f"), (3, "5d"), (True, ""), (2.5, "")]:
        assert format(nl.tensor(value), spec) == format(torch.tensor(value), spec)
    assert f"{nl.tensor([1.5])}" == repr(nl.tensor([1.5]))
    with pytest.raises(TypeError):
        f"{nl.tensor([1.5]):.2f}"


@pytest.mark.parametrize("make", [lambda L: L.zeros(2.7), lambda L: L.ones((2, 3.0)), lambda L: L.rand(2.5),
                                  lambda L: L.empty(2, 3.0), lambda L: L.zeros(True), lambda L: L.full((2.0,), 1.0)],
                         ids=["zeros", "ones", "rand", "empty", "bool", "full"])
def test_a_size_that_is_not_an_int_is_refused_like_torch(make):
    from helpers import torch_or_skip
    torch = torch_or_skip()
    with pytest.raises(TypeError):
        make(torch)
    with pytest.raises(TypeError, match="size must be a tuple of ints, got (float|bool)"):
        make(nl)
    assert nl.zeros(nl.tensor(2), np.int64(3)).shape == tuple(torch.zeros(torch.tensor(2), np.int64(3)).shape)
