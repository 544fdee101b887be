"""Each optimizer's ``update`` rule is what both backends run: the twin runs it, the kernel equals it."""
import numpy as np
import pytest

import nnlite as nl
from nnlite._kernels.reference import _optim as twin
from nnlite.nn import Parameter
from nnlite.optim import SGD, Adagrad, Adam, AdamW, RMSprop

# Options that reach every branch of each rule (momentum, nesterov, centring, amsgrad,
# both kinds of weight decay, maximize), in the optimizer's own argument names.
CASES = [
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True)),
    (Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.2)),
    (RMSprop, dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    (RMSprop, dict(lr=0.01, maximize=True)),
    (Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (AdamW, dict(lr=0.01, weight_decay=0.3, maximize=True)),
]


def _rule_step(cls, param, grad, state, step, kw):
    """One call of ``cls.update`` on NumPy copies, as a reader would make it by hand."""
    if cls is SGD:
        SGD.update(param, grad, state.get("momentum_buffer"), lr=kw["lr"],
                   momentum=kw.get("momentum", 0.0), dampening=kw.get("dampening", 0.0),
                   nesterov=kw.get("nesterov", False), weight_decay=kw.get("weight_decay", 0.0),
                   maximize=kw.get("maximize", False), first_step=step == 1)
    elif cls is Adagrad:
        Adagrad.update(param, grad, state["sum"], step, lr=kw["lr"], lr_decay=kw.get("lr_decay", 0.0),
                       weight_decay=kw.get("weight_decay", 0.0), eps=1e-10,
                       maximize=kw.get("maximize", False))
    elif cls is RMSprop:
        RMSprop.update(param, grad, state["square_avg"], state.get("grad_avg"),
                       state.get("momentum_buffer"), lr=kw["lr"], alpha=0.99, eps=1e-8,
                       weight_decay=kw.get("weight_decay", 0.0), momentum=kw.get("momentum", 0.0),
                       centered=kw.get("centered", False), maximize=kw.get("maximize", False))
    else:
        Adam.update(param, grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                    step, lr=kw["lr"], beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=kw.get("weight_decay", 0.0 if cls is Adam else 1e-2),
                    decoupled_weight_decay=cls is AdamW, amsgrad=kw.get("amsgrad", False),
                    maximize=kw.get("maximize", False))


def _fresh_state(cls, n, kw):
    zeros = lambda: np.zeros(n)  # noqa: E731
    if cls is SGD:
        return {"momentum_buffer": zeros()} if kw.get("momentum", 0) else {}
    if cls is Adagrad:
        return {"sum": np.full(n, kw.get("initial_accumulator_value", 0.0))}
    if cls is RMSprop:
        state = {"square_avg": zeros()}
        if kw.get("centered"):
            state["grad_avg"] = zeros()
        if kw.get("momentum", 0):
            state["momentum_buffer"] = zeros()
        return state
    state = {"exp_avg": zeros(), "exp_avg_sq": zeros()}
    if kw.get("amsgrad"):
        state["max_exp_avg_sq"] = zeros()
    return state


@pytest.mark.parametrize("backend_name", ["reference", "cython"])
@pytest.mark.parametrize("cls,kw", CASES, ids=[f"{c.__name__}-{'-'.join(k)}" for c, k in CASES])
def test_optimizer_step_is_its_class_update_rule_bit_for_bit(cls, kw, backend_name):
    """In float64 the reference backend runs ``cls.update``, and the fused kernel equals it."""
    rng = np.random.default_rng(7)
    start = rng.standard_normal(37)
    grads = [rng.standard_normal(37) for _ in range(6)]
    nl.set_backend(backend_name)
    try:
        w = Parameter(start.copy())
        opt = cls([w], **kw)
        for g in grads:
            w.grad = nl.tensor(g)
            opt.step()
    finally:
        nl.set_backend("cython")

    param, state = start.copy(), _fresh_state(cls, 37, kw)
    for step, g in enumerate(grads, start=1):
        _rule_step(cls, param, g.copy(), state, step, kw)
    assert w.data.tobytes() == param.tobytes()
    for name, buffer in state.items():
        assert opt.state[w][name].data.tobytes() == buffer.tobytes(), name


@pytest.mark.parametrize("kernel,cls", [("sgd_step", SGD), ("adagrad_step", Adagrad),
                                        ("rmsprop_step", RMSprop), ("adam_step", Adam)])
def test_each_twin_hands_over_to_its_class_rule_rather_than_restating_it(kernel, cls):
    code = getattr(twin, kernel).__code__
    assert cls.__name__ in code.co_names and "update" in code.co_names
    # After the checks the twin does no arithmetic of its own: no NumPy call.
    assert "np" not in code.co_names and "sqrt" not in code.co_names


def test_the_rule_updates_in_place_and_keeps_a_float32_buffer_float32():
    param = np.array([1.0, -2.0], np.float32)
    exp_avg, exp_avg_sq = np.zeros(2, np.float32), np.zeros(2, np.float32)
    Adam.update(param, np.array([2.0, -4.0], np.float32), exp_avg, exp_avg_sq, None, 1, lr=0.1,
                beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                amsgrad=False, maximize=False)
    # The first Adam step is lr * sign(g), whatever the gradient's size.
    np.testing.assert_allclose(param, [0.9, -1.9], rtol=1e-6)
    assert param.dtype == exp_avg.dtype == exp_avg_sq.dtype == np.float32
    np.testing.assert_allclose(exp_avg, [0.2, -0.4], rtol=1e-6)
