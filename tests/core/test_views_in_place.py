"""Views and in-place operations: a view shares its base's version counter, and an
in-place change through a view rewrites the base's history (checked against PyTorch)."""
import numpy as np
import pytest

import nnlite as nl

# Each case modifies y (= x * 1, a non-leaf) through a view, then differentiates a
# function of y; written once for both libraries.
CASES = {
    "row_mul": lambda y: y[0].mul_(3),
    "column_mul": lambda y: y[:, 0].mul_(3),
    "view_add": lambda y: y.view(4)[1:3].add_(y.view(4)[1:3].detach() * 0 + 2).mul_(5),
    "reshape_mul": lambda y: y.reshape(4).mul_(2),
    "transpose_row": lambda y: y.T[1].mul_(-4),
    "nested_views": lambda y: y.T[0][1:].mul_(7),
    "setitem_on_view": lambda y: y[1].__setitem__(0, 9.0),
    "unsqueeze_then_index": lambda y: y.unsqueeze(0)[0, :, 1].mul_(6),
}


def _x_values():
    return np.array([[1.0, 2.0], [3.0, 4.0]])


def _run(lib, case, as_tensor):
    x = as_tensor(_x_values())
    y = x * 1
    CASES[case](y)
    (y * _weights(lib, as_tensor)).sum().backward()
    return np.array(y.detach().numpy()), np.array(x.grad.numpy())


def _weights(lib, as_tensor):
    return as_tensor(np.array([[1.0, -2.0], [0.5, 3.0]]), grad=False)


def _as_nl(values, grad=True):
    return nl.tensor(values, dtype=nl.float64, requires_grad=grad)


def _as_torch(torch):
    def make(values, grad=True):
        return torch.tensor(values, dtype=torch.float64, requires_grad=grad)
    return make


@pytest.mark.parametrize("case", sorted(CASES))
def test_in_place_through_a_view_matches_torch(case):
    torch = pytest.importorskip("torch")
    got_y, got_grad = _run(nl, case, _as_nl)
    want_y, want_grad = _run(torch, case, _as_torch(torch))
    np.testing.assert_allclose(got_y, want_y)
    np.testing.assert_allclose(got_grad, want_grad)


def test_the_issue_example_without_torch():
    x = nl.tensor([[1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    y = x * 1
    y[0].mul_(3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[3, 3], [1, 1]])


def test_views_share_the_version_counter_of_their_base():
    y = nl.ones(2, 3)
    for view in (y[0], y[:, 1], y.view(6), y.reshape(3, 2), y.T, y.unsqueeze(0), y.detach()):
        before = y._version[0]
        with nl.no_grad():
            view.add_(1.0)
        assert y._version[0] == before + 1


def test_a_saved_tensor_changed_through_a_view_is_refused():
    x = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    z = (y * y).sum()       # Mul saved y
    y[1:].mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_a_saved_output_changed_through_a_view_is_refused():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()             # Exp saved its output
    y.view(2, 1)[0].mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()


def test_an_older_view_sees_the_base_rewritten_after_it_was_made():
    torch = pytest.importorskip("torch")
    results = []
    for make in (_as_nl, _as_torch(torch)):
        x = make(_x_values())
        y = x * 1
        row = y[1]              # made before the base changes
        y.mul_(2)
        (row * 3).sum().backward()
        results.append(np.array(x.grad.numpy()))
    np.testing.assert_allclose(results[0], results[1])


def test_in_place_on_a_view_of_a_leaf_that_requires_grad_is_refused():
    x = nl.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        x[0].mul_(2)
    with nl.no_grad():
        x[0].mul_(2)        # initialising through a view is fine
    np.testing.assert_allclose(x.data, [[2.0, 4.0]])


@pytest.mark.parametrize("fill", ["uniform_", "normal_"])
def test_random_fills_of_a_leaf_that_requires_grad_are_refused_outside_no_grad(fill):
    x = nl.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match=f"{fill}: a leaf tensor that requires grad"):
        getattr(x, fill)()
    with pytest.raises(RuntimeError, match=f"{fill}: a view of a leaf"):
        getattr(x[0], fill)()
    np.testing.assert_allclose(x.data, [[1.0, 2.0]])
    with nl.no_grad():
        getattr(x, fill)()   # initialising is fine
    assert not np.allclose(x.data, [[1.0, 2.0]]) and x.is_leaf


def test_a_view_of_a_constant_written_with_a_value_that_requires_grad():
    torch = pytest.importorskip("torch")
    results = []
    for make in (_as_nl, _as_torch(torch)):
        w = make(np.array([2.0, 5.0]))
        buf = make(np.zeros((2, 2)), grad=False)
        buf[0].copy_(w * 3)
        (buf * buf).sum().backward()
        results.append(np.array(w.grad.numpy()))
    np.testing.assert_allclose(results[0], results[1])


def test_a_view_made_under_no_grad_stays_out_of_the_graph():
    w = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with nl.no_grad():
        head = w[:2]
        w.mul_(2)           # e.g. an optimizer step
    assert not (head * 3).requires_grad
    with pytest.raises(RuntimeError, match="made under no_grad"):
        head.mul_(nl.tensor([1.0, 1.0], requires_grad=True))
    y = w * 1
    with nl.no_grad():
        row = y[1:]
    with pytest.raises(RuntimeError, match="made under no_grad"):
        row.add_(1.0)       # PyTorch refuses this too: y's history would be wrong
    buffer = nl.zeros(3)
    with nl.no_grad():
        part = buffer[1:]
    part.add_(1.0)          # nothing to record: a plain write
    np.testing.assert_allclose(buffer.data, [0.0, 1.0, 1.0])


def test_in_place_changes_of_a_read_only_view_are_refused_by_name():
    # expand() views share memory between elements: writing one element would write a whole row
    x = nl.ones(3).expand(2, 3)
    for op, call in (("add_", lambda: x.add_(1)), ("mul_", lambda: x.mul_(2)), ("fill_", lambda: x.fill_(0)),
                     ("relu_", lambda: nl.nn.functional.relu(x, inplace=True)),
                     ("__setitem__", lambda: x.__setitem__(0, 5.0))):
        with pytest.raises(RuntimeError, match=rf"{op}: the tensor \(shape \(2, 3\)\) is a read-only view"):
            call()
    np.testing.assert_array_equal(x.data, np.ones((2, 3)))
    y = x.clone()
    y.add_(1)
    np.testing.assert_array_equal(y.data, np.full((2, 3), 2.0))


A_VALUES = np.array([[0.5, -1.2, 2.0], [1.5, -0.3, 0.7]])


def _in_place_scenario(lib, name):
    """Operations that read a tensor before an in-place change must send their gradient to
    the value they read, not through the change."""
    a = lib.tensor(A_VALUES, dtype=lib.float64, requires_grad=True)
    F = lib.nn.functional
    if name == "residual_relu":
        h = a * 2.0
        skip = h + 1.0
        F.relu(h, inplace=True)
        out = (h * 3.0 + skip).sum()
    elif name == "chain":
        y = a * 1.0
        z1 = y + 1.0
        y.mul_(2.0)
        z2 = y * 1.0 + 0.0
        y.add_(1.0)
        out = (z1 + 2 * z2 + 3 * (y - 0.0)).sum()
    elif name == "view_changed_after_a_read_of_the_base":
        y = a * 1.0
        w = y.sum(1)
        y[0].mul_(3.0)
        out = (w * 2.0).sum() + (y * y).sum()
    elif name == "view_read_before_the_base_changes":
        y = a * 1.0
        v = y[1]
        u = v + 0.0
        y.mul_(2.0)
        out = (u * 5.0).sum() + (v * 1.0).sum()
    else:   # "exp_after_a_read"
        y = a * 1.0
        z = y.sum()
        y.exp_()
        out = z + y.sum()
    out.backward()
    return np.asarray(a.grad.data if lib is nl else a.grad.numpy())


SCENARIOS = ["residual_relu", "chain", "view_changed_after_a_read_of_the_base", "view_read_before_the_base_changes",
             "exp_after_a_read"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_reads_before_an_in_place_change_keep_the_old_history_as_in_pytorch(name):
    from helpers import torch_or_skip
    torch = torch_or_skip()
    np.testing.assert_allclose(_in_place_scenario(nl, name), _in_place_scenario(torch, name), rtol=1e-12)


def test_a_residual_read_before_an_in_place_relu_gets_its_own_gradient():
    # out = 3 relu(2a) + (2a + 1): d out / d a = 6 [a > 0] + 2, the skip's 2 not masked by the relu
    expected = 6.0 * (A_VALUES > 0) + 2.0
    np.testing.assert_array_equal(_in_place_scenario(nl, "residual_relu"), expected)


def _aliasing_case(lib, name):
    """In-place changes whose operand aliases the target, or reads a view that went stale."""
    F, grad = lib.nn.functional, (lib.autograd.grad)
    a = lib.tensor(np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.5]]), dtype=lib.float64, requires_grad=True)
    w = lib.tensor(np.array([[1.0, 2, 3], [4, 5, 6]]), dtype=lib.float64)
    if name == "add_itself":
        y = a * 2.0
        y.add_(y)
        loss = y.sum()
    elif name == "copy_itself":
        y = a * 2.0
        y.copy_(y)
        loss = y.sum()
    elif name == "view_copies_its_base":
        y = a * a
        v = y.view(2, 3)
        v.copy_(y)
        loss = v.sum()
    elif name == "stale_view_added_into_its_base":
        y = a * 1.0
        v = y[0]
        y.mul_(2.0)
        y[1].add_(v)
        loss = (y * w).sum()
    elif name == "stale_view_assigned_into_its_base":
        y = a * 1.0
        v = y[0]
        y.mul_(2.0)
        y[1] = v
        loss = y.sum()
    elif name == "scalar_index_is_a_view":
        y = a * 1.0
        y[1, 2].mul_(10.0)
        loss = (y * w).sum()
    elif name == "relu_on_a_view_then_create_graph":
        y = a * a
        F.relu(y[1], inplace=True)
        return grad(y.sum(), [a], create_graph=True)[0]
    else:   # "read_view_then_base_changes_then_create_graph"
        y = a * 1.0
        r = F.relu(y[1])
        y.mul_(2.0)
        return grad(r.sum(), [a], create_graph=True)[0]
    loss.backward()
    return a.grad


ALIASING = ["add_itself", "copy_itself", "view_copies_its_base", "stale_view_added_into_its_base",
            "stale_view_assigned_into_its_base", "scalar_index_is_a_view", "relu_on_a_view_then_create_graph",
            "read_view_then_base_changes_then_create_graph"]


@pytest.mark.parametrize("name", ALIASING)
def test_aliased_and_stale_operands_of_in_place_changes_match_pytorch(name):
    from helpers import torch_or_skip
    torch = torch_or_skip()
    ours, theirs = _aliasing_case(nl, name), _aliasing_case(torch, name)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_adding_a_tensor_to_itself_in_place_doubles_its_gradient():
    # y = 2a; y += y makes y = 4a: the second operand is y's value before the change
    np.testing.assert_array_equal(_aliasing_case(nl, "add_itself").data, np.full((2, 3), 4.0))


@pytest.mark.parametrize("op", ["zero_", "fill_", "copy_"])
def test_an_overwritten_value_sends_zeros_to_its_history_as_in_pytorch(op):
    a = nl.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nl.float64, requires_grad=True)
    y = a * 2.0
    {"zero_": lambda: y.zero_(), "fill_": lambda: y.fill_(3.0),
     "copy_": lambda: y.copy_(nl.tensor([5.0, 6.0], dtype=nl.float64))}[op]()
    (y * y).sum().backward()
    assert a.grad is not None and not a.grad.data.any()   # zeros, not None: the leaf was reached


SQUARE = np.array([[0.5, -1.2], [1.5, -0.3]])


def _product_changed_after(lib, name):
    """A product's operand (or a layer's bias) changed in place after the product read it:
    x requires grad, the other operand does not, so backward needs only the other one.
    (PyTorch's convolutions keep both operands whatever needs a gradient, and so do nnlite's.)"""
    F = lib.nn.functional
    x = lib.tensor(SQUARE, dtype=lib.float64, requires_grad=True)
    c = lib.tensor(np.arange(1.0, 5.0).reshape(2, 2) - 2.5, dtype=lib.float64)
    y = x * 2.0
    if name == "matmul":
        z = y @ c
        y.add_(1.0)
    elif name == "linear_input":
        z = F.linear(c, y)          # y as the weight; the input c needs no gradient
        y.mul_(-1.0)
    else:   # "linear_bias"
        b = y[0] * 1.0
        z = F.linear(y, c, b)       # the bias's value is never read by backward
        b.add_(5.0)
    ((z * z).sum() + (y * 0.5).sum()).backward()
    return np.asarray(x.grad.data if lib is nl else x.grad.numpy())


@pytest.mark.parametrize("name", ["matmul", "linear_input", "linear_bias"])
def test_a_product_operand_changed_in_place_is_fine_when_its_partner_needs_no_gradient(name):
    from helpers import torch_or_skip
    torch = torch_or_skip()
    np.testing.assert_allclose(_product_changed_after(nl, name), _product_changed_after(torch, name), rtol=1e-12)


@pytest.mark.parametrize("op", ["matmul", "linear", "conv2d"])
def test_a_product_operand_changed_in_place_is_refused_when_its_partner_needs_it(op):
    F = nl.nn.functional
    x = nl.tensor(SQUARE, dtype=nl.float64)
    w = nl.tensor(np.eye(2), dtype=nl.float64, requires_grad=True)
    y = x * 2.0
    z = {"matmul": lambda: y @ w, "linear": lambda: F.linear(y, w),
         "conv2d": lambda: F.conv2d(y.reshape(1, 1, 2, 2), w.reshape(1, 1, 2, 2))}[op]()
    y.add_(1.0)     # dW reads y's old value
    with pytest.raises(RuntimeError, match="modified in place"):
        z.sum().backward()


def test_view_refuses_a_layout_that_would_need_a_copy_as_pytorch_does():
    from helpers import torch_or_skip
    torch = torch_or_skip()
    for lib in (nl, torch):
        y = lib.tensor(SQUARE * 1.0).T * 1   # a transposed layout: its rows are not contiguous
        with pytest.raises(RuntimeError, match=r"\.reshape\(\.\.\.\)"):
            y.view(-1)
    y = nl.tensor(SQUARE * 1.0).T * 1
    with pytest.raises(RuntimeError, match=r"view: a tensor of shape \(2, 2\) with strides \(1, 2\) cannot be seen"):
        y.view(4)
    # what the layout allows stays a view, and writes through it reach the tensor
    x = nl.arange(6.0).reshape(2, 3)
    w = x.T.view(3, 1, 2)
    w.zero_()
    assert not x.data.any() and nl.zeros(0, 3).T.view(-1).shape == (0,)
    assert nl.tensor([1.0]).expand(3, 4).view(3, 2, 2).shape == tuple(torch.tensor([1.0]).expand(3, 4).view(3, 2, 2).shape)


def test_view_of_a_memory_mapped_array_is_a_view(tmp_path):
    # np.memmap results are wrapped in a plain ndarray, so the base goes unrecorded: the memory says it is a view
    path = tmp_path / "a.npy"
    np.save(path, np.arange(12.0).reshape(3, 4))
    t = nl.from_numpy(np.load(path, mmap_mode="r+"))
    v = t.view(12)
    v[0] = 7.0
    assert v.shape == (12,) and t[0, 0].item() == 7.0
