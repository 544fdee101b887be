"""Module backward hooks (register_full_backward_hook, register_full_backward_pre_hook) against PyTorch."""
import warnings

import numpy as np
import pytest

import nnlite as nl
from helpers import copy_to_torch, torch_or_skip


def _array(g):
    """A gradient (nnlite's or torch's) as a NumPy array, None kept."""
    if g is None:
        return None
    return np.array(g.data) if isinstance(g, nl.Tensor) else g.detach().numpy().copy()


def _record(modules, log):
    """Register both kinds of backward hook on each (name, module); they append what they see to ``log``."""
    for name, m in modules:
        m.register_full_backward_pre_hook(
            lambda mod, go, name=name: log.append((name, "pre", [_array(g) for g in go])))
        m.register_full_backward_hook(
            lambda mod, gi, go, name=name: log.append((name, "full", [_array(g) for g in gi],
                                                       [_array(g) for g in go])))


def _same_log(ours, theirs):
    assert [entry[:2] for entry in ours] == [entry[:2] for entry in theirs]
    for a, b in zip(ours, theirs):
        for mine, torchs in zip(a[2:], b[2:]):
            assert len(mine) == len(torchs)
            for x, y in zip(mine, torchs):
                assert (x is None) == (y is None)
                if x is not None:
                    np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-14)


class TwoInTwoOut(nl.nn.Module):
    def forward(self, a, b, scale):
        return a * b * scale, a + 1.0


def _two_in_two_out(torch):
    class Torchs(torch.nn.Module):
        def forward(self, a, b, scale):
            return a * b * scale, a + 1.0
    return Torchs()


def _run_both(ours, theirs, inputs, requires_grad, loss=lambda outs: outs[0].sum(), extra=()):
    """Call both modules on the same float64 inputs and backward; return both hook logs and input grads."""
    torch = torch_or_skip()
    logs = [], []
    _record([("model", ours)] + [(n, m) for n, m in ours.named_modules() if n], logs[0])
    _record([("model", theirs)] + [(n, m) for n, m in theirs.named_modules() if n], logs[1])
    xs = [nl.tensor(x, requires_grad=r) for x, r in zip(inputs, requires_grad)]
    ts = [torch.tensor(x, requires_grad=r) for x, r in zip(inputs, requires_grad)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out_ours, out_theirs = ours(*xs, *extra), theirs(*ts, *extra)
        out_ours = out_ours if isinstance(out_ours, tuple) else (out_ours,)
        out_theirs = out_theirs if isinstance(out_theirs, tuple) else (out_theirs,)
        loss(out_ours).backward()
        loss(out_theirs).backward()
    _same_log(*logs)
    for x, t in zip(xs, ts):
        assert (x.grad is None) == (t.grad is None)
        if x.grad is not None:
            np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-13, atol=1e-14)
    return logs


@pytest.mark.parametrize("requires_grad", [True, False])
def test_linear_hooks_see_torchs_gradients(requires_grad):
    torch = torch_or_skip()
    ours, theirs = nl.nn.Linear(4, 3).double(), torch.nn.Linear(4, 3).double()
    copy_to_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((5, 4))
    log, _ = _run_both(ours, theirs, [x], [requires_grad], loss=lambda outs: (outs[0] ** 2).sum())
    assert [kind for _, kind, *rest in log] == ["pre", "full"]
    if not requires_grad:   # the hook still runs, with None for the input, as in PyTorch
        assert log[1][2] == [None]


@pytest.mark.parametrize("requires_grad", [(True, True), (True, False), (False, True), (False, False)])
def test_sequential_order_parent_and_children_as_torch(requires_grad):
    torch = torch_or_skip()
    ours = nl.nn.Sequential(nl.nn.Linear(3, 4), nl.nn.Tanh(), nl.nn.Linear(4, 2)).double()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    copy_to_torch(ours, theirs)
    x = np.random.default_rng(1).standard_normal((2, 3))
    log, _ = _run_both(ours, theirs, [x], [requires_grad[0]])
    assert len(log) == 8


@pytest.mark.parametrize("requires_grad", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("which", [0, 1])
def test_two_inputs_tuple_output(requires_grad, which):
    """A non-Tensor argument gives None; a Tensor input without gradient gives zeros; an
    output without gradient gives None in grad_output: all as in PyTorch."""
    torch = torch_or_skip()
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    log, _ = _run_both(TwoInTwoOut(), _two_in_two_out(torch), [a, b], requires_grad,
                       loss=lambda outs: (outs[which] * outs[0]).sum(), extra=(2.5,))
    assert len(log[-1][2]) == 3 and log[-1][2][2] is None


def test_conv2d_hooks_see_torchs_gradients():
    torch = torch_or_skip()
    ours, theirs = nl.nn.Conv2d(2, 3, 3, padding=1).double(), torch.nn.Conv2d(2, 3, 3, padding=1).double()
    copy_to_torch(ours, theirs)
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 5))
    _run_both(ours, theirs, [x], [True], loss=lambda outs: (outs[0] ** 3).sum())


def _replacing_pair(torch, replace_input, replace_output):
    ours, theirs = nl.nn.Linear(3, 2).double(), torch.nn.Linear(3, 2).double()
    copy_to_torch(ours, theirs)
    for m in (ours, theirs):
        if replace_input:
            m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 3.0,))
        if replace_output:
            m.register_full_backward_pre_hook(lambda mod, go: (go[0] * -2.0,))
    return ours, theirs


@pytest.mark.parametrize("replace_input,replace_output", [(True, False), (False, True), (True, True)])
def test_replaced_gradients_reach_leaves_as_in_torch(replace_input, replace_output):
    torch = torch_or_skip()
    ours, theirs = _replacing_pair(torch, replace_input, replace_output)
    x = np.random.default_rng(4).standard_normal((4, 3))
    xo, xt = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours(xo) ** 2).sum().backward()
    (theirs(xt) ** 2).sum().backward()
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-13, atol=1e-14)
    # the pre-hook's grad_output also reaches the parameters; grad_input replaces the input's only
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-13, atol=1e-14)
    plain = nl.nn.Linear(3, 2).double()
    plain.load_state_dict(ours.state_dict())
    xp = nl.tensor(x, requires_grad=True)
    (plain(xp) ** 2).sum().backward()
    # The layer is linear in its output gradient, and scaling by -2 is exact: the same numbers
    expected = xp.grad.data * (-2.0 if replace_output else 1.0) * (3.0 if replace_input else 1.0)
    np.testing.assert_array_equal(xo.grad.data, expected)
    np.testing.assert_array_equal(ours.weight.grad.data, plain.weight.grad.data * (-2.0 if replace_output else 1.0))


def test_module_used_twice_calls_hooks_twice_as_torch():
    torch = torch_or_skip()
    ours, theirs = nl.nn.Linear(3, 3).double(), torch.nn.Linear(3, 3).double()
    copy_to_torch(ours, theirs)
    x = np.random.default_rng(5).standard_normal((2, 3))
    log, _ = _run_both(nl.nn.Sequential(ours, ours), torch.nn.Sequential(theirs, theirs), [x], [True])
    assert [name for name, kind, *rest in log if kind == "full"] == ["0", "0", "model"]


def test_removed_hooks_do_not_run():
    layer = nl.nn.Linear(3, 2)
    seen = []
    handles = [layer.register_full_backward_hook(lambda *a: seen.append("full")),
               layer.register_full_backward_pre_hook(lambda *a: seen.append("pre"))]
    layer(nl.randn(2, 3, requires_grad=True)).sum().backward()
    assert seen == ["pre", "full"]
    for h in handles:
        h.remove()
    assert not layer._backward_hooks
    layer(nl.randn(2, 3, requires_grad=True)).sum().backward()
    assert seen == ["pre", "full"]


def test_no_call_under_no_grad():
    layer = nl.nn.Linear(3, 2)
    seen = []
    layer.register_full_backward_hook(lambda *a: seen.append("full"))
    with nl.no_grad():
        out = layer(nl.randn(2, 3, requires_grad=True))
    assert not out.requires_grad and seen == []


def test_prepend_orders_hooks():
    layer = nl.nn.Linear(3, 2)
    seen = []
    layer.register_full_backward_hook(lambda *a: seen.append("first"))
    layer.register_full_backward_hook(lambda *a: seen.append("prepended"), prepend=True)
    layer.register_forward_hook(lambda *a: seen.append("forward"))
    layer.register_forward_hook(lambda *a: seen.append("forward prepended"), prepend=True)
    layer.register_forward_pre_hook(lambda *a: seen.append("pre"))
    layer.register_forward_pre_hook(lambda *a: seen.append("pre prepended"), prepend=True)
    layer(nl.randn(2, 3, requires_grad=True)).sum().backward()
    assert seen == ["pre prepended", "pre", "forward prepended", "forward", "prepended", "first"]


def test_wrong_number_of_gradients_is_refused_as_in_torch():
    layer = nl.nn.Linear(3, 2)
    layer.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        layer(nl.randn(2, 3, requires_grad=True)).sum().backward()
    layer = nl.nn.Linear(3, 2)
    layer.register_full_backward_pre_hook(lambda mod, go: (go[0], go[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_output, got 2, but expected 1"):
        layer(nl.randn(2, 3, requires_grad=True)).sum().backward()


def test_hook_without_input_gradients_warns_and_may_not_return_gradients():
    layer = nl.nn.Linear(3, 2)
    layer.register_full_backward_hook(lambda mod, gi, go: (nl.ones(2, 3),))
    with pytest.warns(UserWarning, match="no inputs require gradients"), \
            pytest.raises(RuntimeError, match="should always return None"):
        layer(nl.randn(2, 3)).sum().backward()


def test_in_place_change_of_the_input_inside_forward_is_refused():
    class InPlace(nl.nn.Module):
        def forward(self, x):
            return x.relu_()
    module = InPlace()
    module.register_full_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match="forward changed an input .* in place"):
        module(nl.randn(2, 3, requires_grad=True) * 1.0)


def test_output_not_a_tensor_or_tuple_warns_and_hooks_do_not_run():
    class ListOut(nl.nn.Module):
        def forward(self, x):
            return [x * 2.0]
    module, seen = ListOut(), []
    module.register_full_backward_hook(lambda *a: seen.append("full"))
    with pytest.warns(UserWarning, match="should be a Tensor or a tuple of Tensors"):
        out = module(nl.randn(3, requires_grad=True))
    out[0].sum().backward()
    assert seen == []


def test_second_order_gradient_through_hooked_module():
    layer = nl.nn.Linear(3, 1).double()
    layer.register_full_backward_hook(lambda *a: None)
    x = nl.tensor(np.random.default_rng(6).standard_normal((1, 3)), requires_grad=True)
    (g,) = nl.grad((layer(x) ** 3).sum(), x, create_graph=True)
    (gg,) = nl.grad(g.sum(), x)
    plain = nl.nn.Linear(3, 1).double()
    plain.load_state_dict(layer.state_dict())
    (p,) = nl.grad((plain(x) ** 3).sum(), x, create_graph=True)
    (pp,) = nl.grad(p.sum(), x)
    np.testing.assert_array_equal(gg.data, pp.data)


def test_hooks_see_exactly_the_gradients_autograd_computes():
    """The wrapping nodes are identities: grad_input is the input's .grad and grad_output the
    output's, bit for bit."""
    layer = nl.nn.Conv1d(2, 3, 3).double()
    seen = {}
    layer.register_full_backward_pre_hook(lambda mod, go: seen.update(pre=go[0].data.copy()))
    layer.register_full_backward_hook(lambda mod, gi, go: seen.update(gi=gi[0].data.copy(), go=go[0].data.copy()))
    x = nl.tensor(np.random.default_rng(7).standard_normal((2, 2, 6)), requires_grad=True)
    y = layer(x)
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_array_equal(seen["gi"], x.grad.data)
    np.testing.assert_array_equal(seen["go"], y.grad.data)
    np.testing.assert_array_equal(seen["pre"], y.grad.data)


def test_output_changed_in_place_afterwards_keeps_gradients_right():
    """Unlike PyTorch, which refuses: the change is recorded, so the input's gradient and the
    hook's grad_output are those of the out-of-place computation."""
    x0 = np.random.default_rng(8).standard_normal((3, 4))
    layer, seen = nl.nn.Linear(4, 3).double(), []
    layer.register_full_backward_hook(lambda mod, gi, go: seen.append(go[0].data.copy()))
    x = nl.tensor(x0, requires_grad=True)
    y = layer(x)
    y.relu_()
    (y * y).sum().backward()
    plain = nl.nn.Linear(4, 3).double()
    plain.load_state_dict(layer.state_dict())
    xp = nl.tensor(x0, requires_grad=True)
    yp = plain(xp)
    yp.retain_grad()
    (yp.relu() * yp.relu()).sum().backward()
    np.testing.assert_array_equal(x.grad.data, xp.grad.data)
    np.testing.assert_array_equal(seen[0], yp.grad.data)


def test_output_saved_by_the_module_and_changed_in_place_is_refused():
    sigmoid = nl.nn.Sigmoid()
    sigmoid.register_full_backward_hook(lambda *a: None)
    y = sigmoid(nl.randn(3, 4, requires_grad=True))
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()
