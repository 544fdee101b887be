"""The graph walk: accumulation, freeing, retain_graph, hooks, in-place checks, anomaly mode."""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip


def leaf(values, dtype=nl.float64):
    return nl.tensor(values, dtype=dtype, requires_grad=True)


def test_grad_accumulates_across_backward_calls_and_zero_resets():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3, 3])


def test_fan_out_and_reused_nodes_sum_their_contributions():
    x = leaf([2.0])
    h = x * x          # used three times below
    y = h + h * h + h.exp()
    y.backward()
    expected = 2 * 2 + 2 * (2 * 2) ** 1 * 2 * 2 + np.exp(4.0) * 2 * 2
    np.testing.assert_allclose(x.grad.data, [expected])


def test_second_backward_through_freed_graph_raises_clearly():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)


def test_a_long_chain_does_not_hit_the_recursion_limit():
    x = leaf([1.0])
    y = x
    for _ in range(30000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0])


def test_backward_on_non_scalar_needs_a_gradient():
    x = leaf([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(1, 2\)"):
        (x * 2).backward()
    (x * 2).backward(nl.ones(1, 2, dtype=nl.float64))
    np.testing.assert_allclose(x.grad.data, [[2.0, 2.0]])


def test_gradient_of_wrong_shape_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(nl.ones(3, dtype=nl.float64))


def test_no_grad_and_enable_grad_as_context_and_decorator():
    x = leaf([1.0])
    with nl.no_grad():
        y = x * 2
        with nl.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad

    @nl.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert nl.is_grad_enabled()


def test_detach_and_requires_grad_():
    x = leaf([1.0, 2.0])
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="floating point"):
        nl.tensor([1, 2]).requires_grad_()


def test_in_place_change_of_a_saved_tensor_is_detected():
    x = leaf([1.0, 2.0])
    h = x * 1.0
    y = (h * h).sum()   # Mul saved h
    with nl.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_in_place_on_a_leaf_that_requires_grad_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="in-place"):
        x.add_(1.0)
    with nl.no_grad():
        x.add_(1.0)
    np.testing.assert_allclose(x.data, [2.0, 3.0])
    assert x._version[0] == 1


def test_in_place_ops_on_non_leaves_keep_gradients_right():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    h += 1.0
    h[1] = 0.0
    h.mul_(3.0)
    h.sum().backward()
    np.testing.assert_allclose(x.grad.data, [6.0, 0.0, 6.0])


def test_setitem_with_a_tensor_value_sends_gradient_to_it():
    x = leaf([1.0, 2.0, 3.0])
    v = leaf([5.0])
    h = x * 1.0
    h[0:1] = v * 2.0
    (h * h).sum().backward()
    np.testing.assert_allclose(v.grad.data, [2 * 10.0 * 2])
    np.testing.assert_allclose(x.grad.data, [0.0, 4.0, 6.0])


def test_setitem_drops_the_values_leading_size_1_dims_as_pytorch_does():
    x = nl.tensor(1.0)
    x[()] = nl.tensor([2.0])
    assert x.item() == 2.0
    # a (1, 1, 1) value written over a whole matrix: it receives the sum of the gradient there
    h, v = leaf([[1.0, 2.0], [3.0, 4.0]]) * 1.0, leaf([[[1.5]]])
    h[()] = v
    (h * nl.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nl.float64)).sum().backward()
    assert v.grad.shape == (1, 1, 1) and v.grad.item() == 10.0
    from helpers import torch_or_skip
    torch = torch_or_skip()
    t, tv = torch.zeros(2, 4, requires_grad=True) * 1, torch.tensor([[[1.5]]], requires_grad=True)
    t[()] = tv
    t.sum().backward()
    h, v = nl.zeros(2, 4, requires_grad=True) * 1, nl.tensor([[[1.5]]], requires_grad=True)
    h[()] = v
    h.sum().backward()
    assert v.grad.tolist() == tv.grad.tolist() == [[[8.0]]]

def test_detect_anomaly_names_the_op():
    x = leaf([0.0, 1.0])
    y = x.sqrt().sum()      # d sqrt at 0 is inf
    with nl.detect_anomaly():
        with pytest.raises(RuntimeError, match="Sqrt"):
            y.backward()


def test_tensor_hooks_and_retain_grad():
    x = leaf([1.0, 2.0])
    seen = []
    h = x * 3.0
    h.retain_grad()
    handle = h.register_hook(lambda g: seen.append(g.data.copy()) or g * 2)
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * h.data)
    np.testing.assert_allclose(h.grad.data, 2 * h.data * 2)
    np.testing.assert_allclose(x.grad.data, 2 * h.data * 2 * 3)
    handle.remove()
    assert not h._hooks


def test_leaf_hook_sees_the_total_gradient():
    x = leaf([1.0])
    totals = []
    x.register_hook(lambda g: totals.append(float(g.item())))
    (x * 2 + x * 3).backward()
    assert totals == [5.0]


def test_grad_returns_without_accumulating_and_handles_unused_inputs():
    x, y = leaf([1.0, 2.0]), leaf([3.0])
    gx, = nl.grad((x * x).sum(), x)
    np.testing.assert_allclose(gx.data, [2.0, 4.0])
    assert x.grad is None
    with pytest.raises(RuntimeError, match="not used"):
        nl.grad((x * x).sum(), [x, y])
    gx, gy = nl.grad((x * x).sum(), [x, y], allow_unused=True)
    assert gy is None


def test_grad_with_respect_to_an_intermediate_includes_all_paths():
    x = leaf([2.0])
    h = x * x
    y = h * x          # depends on x directly and through h
    gh, gx = nl.grad(y, [h, x])
    np.testing.assert_allclose(gh.data, [2.0])
    np.testing.assert_allclose(gx.data, [3 * 4.0])


def test_gradient_penalty_style_double_backward():
    w = leaf([[0.5, -1.0], [2.0, 0.3]])
    x = leaf([[1.0, 2.0]])
    out = (x @ w).tanh().sum()
    (gx,) = nl.grad(out, x, create_graph=True)
    penalty = (gx * gx).sum()
    penalty.backward()
    assert w.grad is not None and np.all(np.isfinite(w.grad.data))
    # finite-difference check of d penalty / d w
    eps, num = 1e-6, np.zeros_like(w.data)
    for i in np.ndindex(w.shape):
        for s in (1, -1):
            wd = w.data.copy(); wd[i] += s * eps
            xx = nl.tensor(x.data, requires_grad=True)
            (g,) = nl.grad((xx @ nl.tensor(wd)).tanh().sum(), xx)
            num[i] += s * float((g.data ** 2).sum()) / (2 * eps)
    np.testing.assert_allclose(w.grad.data, num, rtol=1e-5, atol=1e-7)


def test_apply_tells_forward_whether_its_result_is_recorded():
    seen = []

    class Probe(nl.autograd.Function):
        def forward(self, a):
            seen.append(self.recording)
            return a * 2

        def backward(self, grad):
            return grad * 2

    wants = nl.tensor([1.0, 2.0], requires_grad=True)
    constant = nl.tensor([1.0, 2.0])
    Probe.apply(wants)
    Probe.apply(constant)              # grad mode on, but no input wants a gradient
    with nl.no_grad():
        Probe.apply(wants)
    assert seen == [True, False, False]
    assert Probe().recording is False   # a forward called outside apply records nothing


def test_a_gradient_has_its_inputs_dtype_when_dtypes_mix():
    x, y = leaf([1.0, 2.0], nl.float32), leaf([3.0, 4.0])
    assert nl.grad((x * y).sum(), x)[0].dtype == nl.float32
    (g,) = nl.grad((x * y).sum(), x, create_graph=True)
    assert g.dtype == nl.float32 and nl.grad(g.sum(), y)[0].dtype == nl.float64
    (x * y).sum().backward(create_graph=True)
    assert x.grad.dtype == nl.float32 and y.grad.dtype == nl.float64
    z, value = leaf(np.zeros((2, 3)), nl.float32), leaf([1.0, 2.0, 3.0])
    w = z * 1
    w[0] = value
    w.sum().backward()
    assert value.grad.dtype == nl.float64 and value.grad.tolist() == [1.0, 1.0, 1.0]


def test_double_backward_through_mixed_dtypes_keeps_each_gradient_in_its_dtype():
    # the float32 branch's backward kernels refuse a float64 gradient; it gets a float32 one
    x, y = leaf([0.5], nl.float32), leaf(0.2)
    gx, gy = nl.grad(nl.logaddexp2(x, y).sum().double(), (x, y), create_graph=True)
    assert gx.dtype == nl.float32 and gy.dtype == nl.float64
    hx, hy = nl.grad(gx.sum() + gy, (x, y))   # d(gx + gy)/d. = 0: the two slopes sum to 1
    assert hx.dtype == nl.float32 and hy.dtype == nl.float64
    np.testing.assert_allclose([hx.item(), hy.item()], [0.0, 0.0], atol=1e-6)


def test_gradient_dtypes_with_mixed_operands_match_torch():
    torch = torch_or_skip()

    def dtypes(lib):
        x = lib.tensor([0.5, 1.5], dtype=lib.float32, requires_grad=True)
        y = lib.tensor(0.2, dtype=lib.float64, requires_grad=True)
        gx, gy = lib.autograd.grad((lib.logaddexp2(x, y) * y).sum(), (x, y), create_graph=True)
        hx, hy = lib.autograd.grad(gx.sum() + gy, (x, y))
        return [str(t.dtype).removeprefix("torch.") for t in (gx, gy, hx, hy)]

    assert dtypes(nl) == dtypes(torch)
