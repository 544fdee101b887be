"""The public autograd API against PyTorch's: grad modes, nl.grad's arguments, hooks, retain_grad."""
import copy
import pickle
import warnings

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip


def leaf(values, dtype=nl.float64):
    return nl.tensor(values, dtype=dtype, requires_grad=True)


# ------------------------------------------------------------- grad modes ---

@pytest.mark.parametrize("mode_class, inside", [(nl.no_grad, False), (nl.enable_grad, True)])
def test_no_grad_and_enable_grad_decorate_without_parentheses(mode_class, inside):
    @mode_class
    def f():
        return nl.is_grad_enabled()

    with nl.set_grad_enabled(not inside):
        assert f() is inside
        assert nl.is_grad_enabled() is (not inside)


def test_set_grad_enabled_is_a_decorator_that_applies_on_every_call():
    @nl.set_grad_enabled(False)
    def f(x):
        return x * 2

    assert nl.is_grad_enabled()   # decorating leaves the mode outside the function alone
    x = leaf([1.0])
    assert not f(x).requires_grad and not f(x).requires_grad
    assert (x * 2).requires_grad


def test_set_grad_enabled_refuses_a_non_bool_mode():
    with pytest.raises(TypeError, match="must be bool, not int"):
        nl.set_grad_enabled(0)
    assert nl.is_grad_enabled()


def test_a_decorated_generator_runs_its_body_in_the_mode_and_the_caller_outside_it():
    @nl.no_grad()
    def steps():
        for _ in range(2):
            received = yield nl.is_grad_enabled()
            assert received == "go" and not nl.is_grad_enabled()
        return "done"

    gen = steps()
    assert next(gen) is False
    assert nl.is_grad_enabled()
    assert gen.send("go") is False
    assert nl.is_grad_enabled()
    with pytest.raises(StopIteration) as stop:
        gen.send("go")
    assert stop.value.value == "done" and nl.is_grad_enabled()


def test_an_exception_thrown_into_a_decorated_generator_restores_the_mode():
    @nl.no_grad
    def steps():
        try:
            yield 1
        except KeyError:
            yield nl.is_grad_enabled()

    gen = steps()
    next(gen)
    assert gen.throw(KeyError()) is False
    gen.close()
    assert nl.is_grad_enabled()


# -------------------------------------------------------------- nl.grad ---

def test_grad_materialize_grads_gives_zeros_for_unused_inputs():
    x, y = leaf([1.0, 2.0]), leaf([3.0])
    gx, gy = nl.grad((x * x).sum(), [x, y], materialize_grads=True)
    np.testing.assert_allclose(gx.data, [2.0, 4.0])
    assert gy.shape == (1,) and gy.dtype == y.dtype and np.all(gy.data == 0)
    with pytest.raises(ValueError, match="allow_unused"):
        nl.grad((x * x).sum(), [x, y], allow_unused=False, materialize_grads=True)


def test_grad_refuses_empty_inputs_and_a_wrong_number_of_grad_outputs():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="cannot be empty"):
        nl.grad((x * x).sum(), [])
    with pytest.raises(RuntimeError, match="got 2 tensors and 1 gradients"):
        nl.grad([(x * x).sum(), x.sum()], x, grad_outputs=[nl.tensor(1.0)])
    with pytest.raises(RuntimeError, match="got 1 tensors and 2 gradients"):
        nl.autograd.backward([(x * x).sum()], [nl.tensor(1.0), nl.tensor(1.0)])


def test_backward_names_the_tensor_that_does_not_require_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="element 1 of tensors"):
        nl.autograd.backward([(x * x).sum(), nl.tensor(1.0)])


def test_grad_runs_the_hooks_of_a_leaf_input_like_backward():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    gx, = nl.grad((x * x).sum(), x)
    np.testing.assert_allclose(gx.data, [20.0, 40.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [20.0, 40.0])


# ---------------------------------------------------------------- hooks ---

def test_a_hook_may_not_change_the_gradients_shape_dtype_or_type():
    x = leaf([1.0, 2.0])
    handle = x.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"hook .<lambda>. has shape \(\); expected \(2,\)"):
        (x * x).sum().backward()
    handle.remove()
    handle = x.register_hook(lambda g: g.to(nl.float32))
    with pytest.raises(RuntimeError, match="hook .<lambda>. has dtype float32; expected float64"):
        (x * x).sum().backward()
    handle.remove()
    h = x * 3
    h.register_hook(lambda g: 5)
    with pytest.raises(TypeError, match="hook .<lambda>. must be a Tensor or None, got int"):
        (h * h).sum().backward()
    assert x.grad is None


def test_a_hook_handle_removes_the_hook_on_leaving_a_with_block():
    x = leaf([1.0, 2.0])
    with x.register_hook(lambda g: g * 2):
        pass
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_a_handle_removes_its_own_registration_of_a_hook_registered_twice():
    # hooks add 1, double, add 1; removing the third leaves (g + 1) * 2, as in PyTorch
    x = leaf([1.0, 2.0])
    add_one, double = (lambda g: g + 1), (lambda g: g * 2)
    x.register_hook(add_one)
    x.register_hook(double)
    x.register_hook(add_one).remove()
    x.sum().backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 4.0])


def test_a_hook_may_remove_itself_while_it_runs():
    x = leaf([1.0])
    handles = []
    handles.append(x.register_hook(lambda g: handles[0].remove() or g * 2))
    x.register_hook(lambda g: g * 3)
    x.sum().backward()
    x.sum().backward()
    np.testing.assert_allclose(x.grad.data, [6.0 + 3.0])


# ----------------------------------------------------------- retain_grad ---

def test_a_retained_gradient_accumulates_across_backward_calls_as_in_torch():
    torch = torch_or_skip()
    x = leaf([1.0, 2.0])
    h = x * 2
    h.retain_grad()
    z = (h * h).sum()
    z.backward(retain_graph=True)
    z.backward()
    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    th = tx * 2
    th.retain_grad()
    tz = (th * th).sum()
    tz.backward(retain_graph=True)
    tz.backward()
    np.testing.assert_allclose(h.grad.data, th.grad.numpy())
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy())


def test_retain_grad_refuses_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        nl.tensor([1.0]).retain_grad()
    x = leaf([1.0])
    h = x * 2
    assert not h.retains_grad and not x.retains_grad
    h.retain_grad()
    x.retain_grad()   # a leaf keeps its .grad anyway
    assert h.retains_grad and not x.retains_grad


def test_detach_in_place_refuses_a_view():
    x = leaf([1.0, 2.0, 3.0])
    v = (x * 1)[0:2]
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        v.detach_()
    h = x * 1
    assert h.detach_() is h and not h.requires_grad and h.is_leaf


class _SquareByItsReadableForm(nl.autograd.Function):
    """x * x, whose backward differentiates the readable form with ``differentiate`` (as RNNs do)."""
    differentiate = staticmethod(nl.grad)

    def forward(self, a):
        return a * a

    def backward(self, grad):
        x = self.inputs[0]
        with nl.enable_grad():
            return self.differentiate(x * x, x, grad_outputs=grad, create_graph=nl.is_grad_enabled())[0]


class _SquareByGradInBackward(_SquareByItsReadableForm):
    differentiate = staticmethod(nl.autograd.grad_in_backward)


# nl.grad inside a custom backward runs the leaf's hook there and again when the outer walk reaches x
# (twice, as PyTorch); grad_in_backward, which nnlite's own readable backwards (recurrent scans,
# GELU's and Mish's second derivatives) use, leaves it to the outer walk (once).
@pytest.mark.parametrize("function,calls,grad", [(_SquareByItsReadableForm, 2, [200.0, 400.0]),
                                                 (_SquareByGradInBackward, 1, [20.0, 40.0])])
def test_a_leaf_hook_runs_as_often_as_the_inner_differentiation_says(function, calls, grad):
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(1) or g * 10)
    function.apply(x).sum().backward()
    assert len(seen) == calls
    np.testing.assert_allclose(x.grad.data, grad)


def test_a_second_backward_through_nodes_that_saved_nothing_works_as_in_torch():
    torch = torch_or_skip()
    for make in (lambda x: (x + 1).sum(), lambda x: x.reshape(2, 2).T[0].sum()):
        x = leaf([1.0, 2.0, 3.0, 4.0])
        y = make(x)
        y.backward()
        y.backward()
        tx = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
        ty = make(tx)
        ty.backward()
        ty.backward()
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy())
    x = leaf([1.0, 2.0])
    y = (x.exp() + 1).sum()   # the exp saved its output: freed after the first backward
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


# ----------------------------------------------------------------- .grad ---

def test_assigning_a_grad_of_the_wrong_shape_dtype_or_type_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"assigned grad has shape \(3,\); expected \(2,\)"):
        x.grad = nl.zeros(3, dtype=nl.float64)
    with pytest.raises(RuntimeError, match="assigned grad has dtype float32; expected float64"):
        x.grad = nl.zeros(2)
    with pytest.raises(TypeError, match="assigned grad must be a Tensor or None, got list"):
        x.grad = [0.0, 0.0]
    assert x.grad is None
    x.grad = nl.ones(2, dtype=nl.float64)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 5.0])


def test_reading_grad_of_a_non_leaf_warns_and_gives_none():
    x = leaf([1.0, 2.0])
    h = x * 2
    (h * h).sum().backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        assert h.grad is None
    kept = x * 2
    kept.retain_grad()
    (kept * kept).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a retained gradient is read without a warning
        np.testing.assert_allclose(kept.grad.data, [4.0, 8.0])


# ------------------------------------------------------- custom Functions ---

class _DoubleReturningTwoGradients(nl.autograd.Function):
    def forward(self, a):
        return a * 2

    def backward(self, grad):
        return grad * 2, grad


class _ProductReturningOneGradient(nl.autograd.Function):
    def forward(self, a, b):
        return a * b

    def backward(self, grad):
        return (grad * self.inputs[1],)


class _DoubleReturningAnArray(nl.autograd.Function):
    def forward(self, a):
        return a * 2

    def backward(self, grad):
        return grad.data * 2


def test_a_backward_returning_the_wrong_number_of_gradients_is_refused():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 1.*got 2\)"):
        _DoubleReturningTwoGradients.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 2.*got 1\)"):
        _ProductReturningOneGradient.apply(x, y).sum().backward()
    assert x.grad is None and y.grad is None


def test_a_backward_returning_an_array_instead_of_a_tensor_is_refused_by_name():
    x = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match="_DoubleReturningAnArrayBackward returned a gradient of type ndarray"):
        _DoubleReturningAnArray.apply(x).sum().backward()


# ------------------------------------------------------ backward(inputs) ---

def test_backward_with_inputs_accumulates_into_those_tensors_only_as_in_torch():
    torch = torch_or_skip()
    results = []
    for lib in (nl, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([3.0], dtype=lib.float64, requires_grad=True)
        unused = lib.tensor([1.0], dtype=lib.float64, requires_grad=True)
        x.register_hook(lambda g: g * 10)
        h = x * y
        (h * h).sum().backward(inputs=[x, h, unused])
        results.append((x.grad, y.grad, h.grad, unused.grad))
    (nx, ny, nh, nu), (tx, ty, th, tu) = results
    np.testing.assert_allclose(nx.data, tx.numpy())
    np.testing.assert_allclose(nh.data, th.numpy())
    assert ny is None and ty is None and nu is None and tu is None


def test_backward_with_inputs_refuses_an_empty_list_and_a_tensor_without_grad():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="inputs argument cannot be empty"):
        (x * x).sum().backward(inputs=[])
    with pytest.raises(RuntimeError, match="input 1 does not require grad"):
        (x * x).sum().backward(inputs=[x, nl.tensor([1.0])])
    assert x.grad is None


def test_a_gradient_given_in_another_float_dtype_is_cast_to_the_outputs():
    x = nl.tensor([1.0, 2.0], requires_grad=True)   # float32
    x.backward(nl.tensor([1.0, 1.0], dtype=nl.float64), create_graph=True)
    assert x.grad.dtype == nl.float32


# ------------------------------------------------------------ gradcheck ---

class _SquareWithAWrongBackward(nl.autograd.Function):
    def forward(self, a):
        return a * a

    def backward(self, grad):
        return grad * 3 * self.inputs[0]


def test_gradcheck_takes_a_tensor_arguments_that_need_no_grad_and_several_outputs():
    x = leaf([1.0, 2.0])
    c = nl.tensor(np.array([3.0, 4.0]))
    assert nl.autograd.gradcheck(lambda a: (a * a).sum(), x)
    assert nl.autograd.gradcheck(lambda a, b, k: (a * b * k).sum(), [x, c, 2.0])
    assert nl.autograd.gradcheck(lambda a: (a * a, a.sum() * a.sum()), (x,))
    assert nl.autograd.gradgradcheck(lambda a, b: (a * a * a * b, a.sum() * a.sum()), (x, c))
    assert nl.autograd.gradgradcheck(lambda a: (a * 3).sum(), x)   # no second derivative: zero


def test_gradcheck_reports_a_wrong_backward_or_returns_false_when_asked():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="input 1"):
        nl.autograd.gradcheck(lambda k, a: _SquareWithAWrongBackward.apply(a).sum(), (2.0, x))
    assert nl.autograd.gradcheck(lambda a: _SquareWithAWrongBackward.apply(a).sum(), x,
                                 raise_exception=False) is False


def test_gradcheck_of_a_function_that_differentiates_inside_as_in_torch():
    torch = torch_or_skip()
    x = leaf([0.5, -1.0, 2.0])
    assert nl.autograd.gradcheck(lambda a: nl.grad((a * a * a.sin()).sum(), a, create_graph=True)[0], (x,))
    tx = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: torch.autograd.grad((a * a * a.sin()).sum(), a, create_graph=True)[0], (tx,))


def test_gradcheck_refuses_inputs_none_of_which_requires_grad_as_torch_does():
    constant = nl.tensor(np.array([1.0, 2.0]))
    for check in (nl.autograd.gradcheck, nl.autograd.gradgradcheck):
        with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
            check(lambda a: a * a, (constant,))


def test_gradcheck_tolerances_default_to_torchs():
    # x * (1 + 5e-4) checked against x: off by a relative 5e-4, inside PyTorch's rtol=1e-3
    x = leaf([1.0, 2.0])
    assert nl.autograd.gradcheck(lambda a: _ScaledWithASlightlyWrongBackward.apply(a), x)


class _ScaledWithASlightlyWrongBackward(nl.autograd.Function):
    def forward(self, a):
        return a * 1.0

    def backward(self, grad):
        return grad * (1 + 5e-4)


def test_gradgradcheck_takes_grad_outputs_third_as_torch_does():
    torch = torch_or_skip()
    x = leaf([0.5, -1.0])
    v = nl.tensor(np.array([1.0, 0.0]))
    assert nl.autograd.gradgradcheck(lambda a: a * a * a, (x,), v)
    tx = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a: a * a * a, (tx,), torch.tensor([1.0, 0.0], dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"grad_outputs\[0\] has shape \(3,\); expected \(2,\)"):
        nl.autograd.gradgradcheck(lambda a: a * a * a, (x,), nl.tensor(np.zeros(3)))


# ------------------------------------------------------- anomaly detection ---

def test_set_detect_anomaly_and_check_nan_as_in_torch():
    def backward_through_sqrt_of_zero():
        x = leaf([0.0, 4.0])
        x.sqrt().sum().backward()   # d sqrt(x)/dx at 0 is Inf

    with nl.autograd.detect_anomaly(check_nan=False):
        assert nl.autograd.is_anomaly_enabled()
        backward_through_sqrt_of_zero()   # nothing checked
    nl.autograd.set_detect_anomaly(True)
    try:
        with pytest.raises(RuntimeError, match="Sqrt"):
            backward_through_sqrt_of_zero()
        with nl.autograd.set_detect_anomaly(False):
            assert not nl.autograd.is_anomaly_enabled()
            backward_through_sqrt_of_zero()
        assert nl.autograd.is_anomaly_enabled()
    finally:
        nl.autograd.set_detect_anomaly(False)
    assert not nl.autograd.is_anomaly_enabled()


def test_a_parameter_of_integer_data_cannot_be_made_trainable():
    p = nl.nn.Parameter(nl.tensor([1, 2]), requires_grad=False)
    with pytest.raises(RuntimeError, match="only floating point tensors can require gradients, got int64"):
        p.trainable = True
    assert not p.requires_grad
    q = nl.nn.Parameter(nl.ones(2))
    q.trainable = False
    assert not q.requires_grad
    q.trainable = True
    assert q.requires_grad


def test_detach_in_place_leaves_the_graph_already_built_through_the_tensor_as_in_torch():
    torch = torch_or_skip()
    grads = []
    for lib in (nl, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = x * 2
        z = (h + 1).sum() + (h * 3).sum()   # read h, but save nothing of it
        h.detach_()
        later = h * 5                        # read after: a constant
        z.backward()
        grads.append(x.grad)
        assert not later.requires_grad and not h.requires_grad
    np.testing.assert_allclose(grads[0].data, grads[1].numpy())


def test_detach_in_place_of_a_tensor_saved_for_backward_is_refused_as_in_torch():
    torch = torch_or_skip()
    for lib, message in ((nl, "detached in place"), (torch, "detached in-place")):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = x * 2
        z = (h * h).sum()
        h.detach_()
        with pytest.raises(RuntimeError, match=message):
            z.backward()


def test_assigning_requires_grad_is_checked_like_requires_grad_():
    with pytest.raises(RuntimeError, match="only floating point tensors can require gradients, got int64"):
        nl.tensor([1, 2]).requires_grad = True
    x = leaf([1.0, 2.0])
    h = x * 2
    with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf tensors"):
        h.requires_grad = False   # would drop h's branch from the gradient silently
    ((h * 3).sum() + x.sum()).backward()
    np.testing.assert_allclose(x.grad.data, [7.0, 7.0])
    w = nl.ones(2)
    w.requires_grad = True
    assert w.requires_grad and w.is_leaf


def test_a_gradient_that_is_not_a_tensor_is_refused_as_in_torch():
    x = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match="Tensors or None, but got list"):
        (x * x).backward([1.0, 3.0])
    with pytest.raises(TypeError, match="Tensors or None, but got ndarray"):
        nl.grad(x * x, x, grad_outputs=[np.ones(2)])


def test_a_second_backward_through_a_product_with_a_number_is_allowed_like_torch():
    # x.mean() is a sum times 1/n: the product reads only the number, so nothing was freed
    x = nl.tensor(np.arange(3.0), requires_grad=True)
    y = x.mean()
    y.backward()
    y.backward()
    np.testing.assert_allclose(x.grad.data, [2 / 3] * 3)
    w = (x * x).sum()      # reads x itself: a second walk still needs retain_graph
    w.backward()
    with pytest.raises(RuntimeError, match="second time"):
        w.backward()


def test_grad_called_from_a_hook_during_backward_runs_the_leaf_hooks_like_torch():
    # Only a Function's own backward (grad_in_backward) leaves its inputs' hooks to the outer walk
    w = nl.tensor([1.0, 2.0], requires_grad=True)
    w.register_hook(lambda g: g * 10)
    seen = []

    def hook(g):
        with nl.enable_grad():
            seen.append(nl.grad((w * w).sum(), w)[0].data.tolist())

    y = nl.tensor([3.0, 4.0], requires_grad=True) * 2
    y.register_hook(hook)
    y.sum().backward()
    assert seen == [[20.0, 40.0]]


# ------------------------------------------- only the part of the graph asked for ---

def _two_branches(make):
    """z = sum(x * x) + sum(exp(w)), with a hook on the w branch that records its calls."""
    x, w = make([1.0, 2.0]), make([3.0, 4.0])
    seen = []
    branch = w.exp()
    branch.register_hook(lambda g: seen.append("w branch"))
    return x, w, (x * x).sum() + branch.sum(), seen


@pytest.mark.parametrize("how", ["grad", "backward_inputs"])
def test_a_branch_that_does_not_lead_to_the_inputs_is_not_run_as_in_torch(how):
    torch = torch_or_skip()
    results = []
    for make, grad in ((lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True), torch.autograd.grad),
                       (leaf, nl.grad)):
        x, w, z, seen = _two_branches(make)
        if how == "grad":
            grad(z, [x])
        else:
            z.backward(inputs=[x])
        assert seen == [] and w.grad is None   # the w branch's hook did not fire
        z.backward(inputs=[w])   # its saved values were not freed
        results.append(np.asarray(w.grad.detach()))
    np.testing.assert_allclose(results[1], results[0])


# ---------------------------------------------------------------- pickle ---

def test_pickling_keeps_values_and_requires_grad_but_not_grad_hooks_or_graph_as_torch():
    torch = torch_or_skip()
    for make in (lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True), leaf):
        x = make([1.0, 2.0])
        (x * x).sum().backward()
        x.register_hook(lambda g: g * 10)   # a lambda: it could not be pickled
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # PyTorch warns that the hook is left out
            copy_of_x = pickle.loads(pickle.dumps(x))
            copy_of_result = pickle.loads(pickle.dumps(x * 2))
        assert copy_of_x.requires_grad and copy_of_x.is_leaf and copy_of_x.grad is None
        assert copy_of_result.requires_grad and copy_of_result.is_leaf and copy_of_result.grad_fn is None
        np.testing.assert_allclose(np.asarray(copy_of_result.detach()), [2.0, 4.0])
        copy_of_x.sum().backward()   # no hook came along
        np.testing.assert_allclose(np.asarray(copy_of_x.grad), [1.0, 1.0])


def test_a_pickled_parameter_has_no_gradient_as_in_torch():
    w = nl.nn.Parameter(nl.ones(2), kind="bias", name="b")
    (w * w).sum().backward()
    loaded = pickle.loads(pickle.dumps(w))
    assert type(loaded) is nl.nn.Parameter and loaded.grad is None
    assert (loaded.kind, loaded.name, loaded.requires_grad) == ("bias", "b", True)
    np.testing.assert_array_equal(loaded.data, w.data)


def test_deepcopy_copies_a_leaf_and_its_grad_but_not_its_hooks_as_torch():
    torch = torch_or_skip()
    for make in (lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True), leaf):
        x = make([1.0, 2.0])
        x.register_hook(lambda g: g * 10)
        (x * x).sum().backward()
        twin = copy.deepcopy(x)
        assert twin.requires_grad and twin.is_leaf
        np.testing.assert_allclose(np.asarray(twin.grad), [20.0, 40.0])
        twin.grad = None
        twin.sum().backward()
        np.testing.assert_allclose(np.asarray(twin.grad), [1.0, 1.0])
