"""Optimizer trajectories equal torch.optim's; state_dict round trips; kernel equals its twin."""
import copy

import numpy as np
import pytest

import nnlite as nl
from helpers import threads
from nnlite.nn import Parameter

SHAPES = [(7, 5), (5,), (3, 4, 2), (1,), ()]

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, amsgrad=True, weight_decay=0.05,
                  maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True, betas=(0.5, 0.9))),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.2)),
    ("Adagrad", dict(lr=0.05, eps=1e-8, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.005, centered=True)),
    ("RMSprop", dict(lr=0.005, momentum=0.7)),
    ("RMSprop", dict(lr=0.002, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.1,
                     maximize=True)),
]


def _grad(rng, p, step, i):
    """A gradient that depends on where the parameter is (so errors would compound) plus noise."""
    return 0.5 * p + np.sin(3.0 * p + i) + 0.3 * rng.standard_normal(p.shape)


def _init(seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _groups(params, name, kw):
    """Two param groups: the second with a bigger lr (discriminative rates) and other decay."""
    second = {"params": params[3:], "lr": kw.get("lr", 0.01) * 2}
    if "weight_decay" in kw:
        second["weight_decay"] = kw["weight_decay"] / 2
    if kw.get("momentum"):
        second["momentum"] = kw["momentum"] / 2
    return [{"params": params[:3]}, second]


def _run_pair(name, kw, steps=200, grouped=False, skip_param=None):
    torch = pytest.importorskip("torch")
    init = _init()
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    make = (lambda ps: _groups(ps, name, kw)) if grouped else (lambda ps: ps)
    o = getattr(nl.optim, name)(make(ours), **kw)
    t = getattr(torch.optim, name)(make(theirs), **kw)
    rng_o, rng_t = np.random.default_rng(1), np.random.default_rng(1)
    for step in range(steps):
        for i, (p, q) in enumerate(zip(ours, theirs)):
            g_o = _grad(rng_o, p.data, step, i)
            g_t = _grad(rng_t, q.detach().numpy(), step, i)
            if skip_param is not None and i == skip_param and step % 3 != 1:
                p.grad, q.grad = None, None   # this parameter gets a gradient only some steps
            else:
                p.grad, q.grad = nl.tensor(g_o), torch.tensor(g_t)
        o.step()
        t.step()
    return o, t, ours, theirs


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k) or 'default'}" for n, k in CASES])
def test_trajectory_equals_torch(name, kw):
    o, t, ours, theirs = _run_pair(name, kw)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-12)
    for p, q in zip(ours, theirs):  # the optimizer state too
        for key, value in t.state[q].items():
            np.testing.assert_allclose(np.asarray(o.state[p][key].data), value.numpy(),
                                       rtol=1e-6, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name,kw", [c for i, c in enumerate(CASES) if i % 2 == 1],
                         ids=[f"{n}-{'-'.join(k) or 'default'}" for i, (n, k) in enumerate(CASES)
                              if i % 2 == 1])
def test_param_groups_and_missing_grads_equal_torch(name, kw):
    # Param 2 has a gradient only every third step: it must be left untouched in between
    # (and counts its own steps, which matters for Adam's bias correction).
    o, t, ours, theirs = _run_pair(name, kw, steps=120, grouped=True, skip_param=2)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-12)
    assert len(o.param_groups) == 2


def test_state_dict_structure_matches_torch():
    torch = pytest.importorskip("torch")
    for name, kw in CASES:
        o, t, _, _ = _run_pair(name, kw, steps=3, grouped=True, skip_param=4)
        ours, theirs = o.state_dict(), t.state_dict()
        assert set(ours) == {"state", "param_groups"}
        assert set(ours["state"]) == set(theirs["state"]), name
        for k in theirs["state"]:
            assert list(ours["state"][k]) == list(theirs["state"][k]), (name, k)
            for key, v in theirs["state"][k].items():
                assert tuple(ours["state"][k][key].shape) == tuple(v.shape)
        for g_ours, g_theirs in zip(ours["param_groups"], theirs["param_groups"]):
            assert g_ours["params"] == g_theirs["params"]
            assert set(g_ours) == set(g_theirs), name
            for key in g_ours:
                assert g_ours[key] == g_theirs[key], (name, key)


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k) or 'default'}" for n, k in CASES])
def test_state_dict_mid_run_resumes_identically(name, kw):
    init = _init(5)
    a = [Parameter(x.copy()) for x in init]
    opt_a = getattr(nl.optim, name)(_groups(a, name, kw), **kw)
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(40)]

    def run(params, opt, steps):
        for gs in steps:
            for p, g in zip(params, gs):
                p.grad = nl.tensor(g)
            opt.step()

    run(a, opt_a, grads[:20])
    saved = copy.deepcopy(opt_a.state_dict())
    b = [Parameter(p.data.copy()) for p in a]
    opt_b = getattr(nl.optim, name)(_groups(b, name, {}))   # other hyperparameters: loading restores
    opt_b.load_state_dict(saved)
    run(a, opt_a, grads[20:])
    run(b, opt_b, grads[20:])
    for p, q in zip(a, b):
        assert p.data.tobytes() == q.data.tobytes()
    assert opt_b.param_groups[1]["lr"] == opt_a.param_groups[1]["lr"]


def test_torch_state_dict_loads_and_continues_like_torch():
    torch = pytest.importorskip("torch")
    kw = dict(lr=0.01, amsgrad=True, weight_decay=0.01)
    o, t, ours, theirs = _run_pair("Adam", kw, steps=30)
    fresh = [Parameter(q.detach().numpy().copy()) for q in theirs]
    o2 = nl.optim.Adam(fresh)
    o2.load_state_dict(t.state_dict())
    rng = np.random.default_rng(9)
    for _ in range(30):
        for p, q in zip(fresh, theirs):
            g = rng.standard_normal(p.shape)
            p.grad, q.grad = nl.tensor(g), torch.tensor(g)
        o2.step(); t.step()
    for p, q in zip(fresh, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k) or 'default'}" for n, k in CASES])
def test_compiled_kernel_path_equals_reference_twin_bitwise(name, kw):
    results = []
    for backend in ("cython", "reference"):
        nl.set_backend(backend)
        try:
            params = [Parameter(a.copy()) for a in _init(3)]
            opt = getattr(nl.optim, name)(_groups(params, name, kw), **kw)
            rng = np.random.default_rng(4)
            for step in range(25):
                for i, p in enumerate(params):
                    p.grad = nl.tensor(_grad(rng, p.data, step, i))
                opt.step()
            results.append([p.data.tobytes() for p in params])
        finally:
            nl.set_backend("cython")
    assert results[0] == results[1]


def test_step_with_closure_returns_the_loss():
    w = Parameter(np.array([3.0, -1.0]))
    opt = nl.optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(3)]
    assert losses == [10.0, 2.5, 0.625]   # each step halves w: loss falls by 4
    np.testing.assert_array_equal(w.data, [0.375, -0.125])


def test_adam_l2_decay_differs_from_adamw_decoupled_decay():
    """Adam adds wd * theta to the gradient, so it is rescaled by 1/sqrt(v); AdamW shrinks theta.

    With a large gradient on one coordinate and none on the other, Adam's decay
    is normalised away on the first and becomes a full-size step on the second,
    while AdamW decays both at the same rate lr * wd. Each equals its torch counterpart.
    """
    torch = pytest.importorskip("torch")
    init = np.array([1.0, 1.0])
    scale = np.array([100.0, 0.0])
    finals = {}
    for name in ("Adam", "AdamW"):
        p = Parameter(init.copy())
        q = torch.nn.Parameter(torch.tensor(init))
        o = getattr(nl.optim, name)([p], lr=0.01, weight_decay=0.5)
        t = getattr(torch.optim, name)([q], lr=0.01, weight_decay=0.5)
        rng = np.random.default_rng(0)
        for _ in range(100):
            g = scale * rng.standard_normal(2)
            p.grad, q.grad = nl.tensor(g), torch.tensor(g)
            o.step(); t.step()
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6)
        finals[name] = p.data.copy()
    assert not np.allclose(finals["Adam"], finals["AdamW"], rtol=1e-3)
    # Coordinate 1 has no loss gradient. AdamW: only the decay acts, theta *= (1 - lr*wd)
    # each step. Adam: the L2 term *is* the whole gradient, and Adam normalises it to a
    # step of about lr (shrinking as v remembers larger past values): far faster decay.
    assert finals["AdamW"][1] == pytest.approx((1 - 0.01 * 0.5) ** 100, rel=1e-12)
    assert 0 < finals["Adam"][1] < 0.5 * finals["AdamW"][1]


def test_float32_parameters_follow_torch():
    torch = pytest.importorskip("torch")
    init = _init(7)
    ours = [Parameter(a.astype(np.float32)) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a, dtype=torch.float32)) for a in init]
    o, t = nl.optim.AdamW(ours, lr=0.01), torch.optim.AdamW(theirs, lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(50):
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, q.grad = nl.tensor(g), torch.tensor(g)
        o.step(); t.step()
    for p, q in zip(ours, theirs):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_constructor_and_group_errors_are_clear():
    w = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        nl.optim.SGD([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        nl.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        nl.optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon"):
        nl.optim.RMSprop([w], eps=-1)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        nl.optim.Adagrad([w], initial_accumulator_value=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        nl.optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        nl.optim.Adam(w)
    with pytest.raises(TypeError, match="ordered collections"):
        nl.optim.Adam({w})
    with pytest.raises(TypeError, match="only optimize Tensors"):
        nl.optim.Adam([np.zeros(3)])
    opt = nl.optim.Adam([w])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(TypeError, match="float32 or float64"):
        nl.optim.SGD([Parameter(np.zeros(3, np.float16))], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        nl.optim.Adam([Parameter(np.zeros(2)), Parameter(np.zeros(2))]).load_state_dict(
            opt.state_dict())
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_add_param_group_takes_defaults_and_its_own_values():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = nl.optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.01
    a.grad, b.grad = nl.ones(2).double(), nl.ones(3).double()
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.99)
    opt.param_groups[0]["lr"] = 0.0   # schedulers change lr between steps like this
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)


def test_zero_grad_to_none_and_to_zero():
    w = Parameter(np.ones(4))
    opt = nl.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    assert w.grad.data is w._grad_slot
    opt.zero_grad()
    assert w.grad is None
    (w * 3.0).sum().backward()          # overwrites the slot, does not add to stale values
    np.testing.assert_array_equal(w.grad.data, 3.0)
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and not w.grad.data.any()
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad.data, 2.0)
    assert w.grad.data is w._grad_slot


def test_param_groups_by_kind_recipe():
    w = Parameter(np.ones((2, 2)), kind="weight")
    b = Parameter(np.ones(2), kind="bias")
    g = Parameter(np.ones(2), kind="scale")
    frozen = Parameter(np.ones(2), kind="weight", requires_grad=False)
    groups = nl.optim.param_groups_by_kind([w, b, g, frozen, w], weight_decay=0.1)
    assert [[id(p) for p in grp["params"]] for grp in groups] == [[id(w)], [id(b), id(g)]]
    # single control values (a temperature, a gate) are not decayed either
    temperature = nl.nn.Temperature(init=2.0).log_temperature
    gate = Parameter(np.zeros(1), kind="gate")
    kept = nl.optim.param_groups_by_kind([w, temperature, gate], weight_decay=0.1)
    assert [[id(p) for p in grp["params"]] for grp in kept] == [[id(w)], [id(temperature), id(gate)]]
    assert [grp["weight_decay"] for grp in groups] == [0.1, 0.0]
    opt = nl.optim.AdamW(groups, lr=0.1)
    for p in (w, b, g):
        p.grad = nl.zeros_like(p).double()
    opt.step()   # zero gradients: only decay moves the weights, and only the decayed group
    np.testing.assert_allclose(w.data, 1 - 0.1 * 0.1)
    np.testing.assert_array_equal(b.data, 1.0)
    np.testing.assert_array_equal(g.data, 1.0)


def test_repr_lists_groups():
    opt = nl.optim.Adam([Parameter(np.zeros(1))], lr=0.5)
    text = repr(opt)
    assert text.startswith("Adam (") and "Parameter Group 0" in text and "lr: 0.5" in text


@pytest.mark.parametrize("name,kw", [("Adam", dict(amsgrad=True, weight_decay=0.1)),
                                     ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                     ("RMSprop", dict(centered=True, momentum=0.5)),
                                     ("Adagrad", dict(lr_decay=0.1))])
def test_steps_are_byte_identical_across_thread_counts(name, kw):
    results = []
    for n in (1, 2, 4):
        with threads(n):
            params = [Parameter(a.astype(np.float32)) for a in _init(8, [(300, 7), (129,)])]
            opt = getattr(nl.optim, name)(params, **kw)
            rng = np.random.default_rng(0)
            for _ in range(5):
                for p in params:
                    p.grad = nl.tensor(rng.standard_normal(p.shape).astype(np.float32))
                opt.step()
            results.append([p.data.tobytes() for p in params])
    assert results[0] == results[1] == results[2]


def test_training_loop_end_to_end_equals_torch():
    """Backward into the arena, clipping, per-kind groups, AdamW and OneCycleLR, against torch."""
    torch = pytest.importorskip("torch")
    from nnlite.nn import utils

    nl.manual_seed(0)
    model = nl.nn.Sequential(nl.nn.Linear(6, 16, dtype=np.float64), nl.nn.Tanh(),
                             nl.nn.Linear(16, 1, dtype=np.float64))
    twin = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 1)).double()
    with torch.no_grad():
        for (name, p), q in zip(model.named_parameters(), twin.parameters()):
            q.copy_(torch.from_numpy(p.data.copy()))
    groups = nl.optim.param_groups_by_kind(model, weight_decay=0.05)
    opt = nl.optim.AdamW(groups, lr=0.01)
    decay = [q for (n, p), q in zip(model.named_parameters(), twin.parameters()) if p.kind == "weight"]
    rest = [q for (n, p), q in zip(model.named_parameters(), twin.parameters()) if p.kind != "weight"]
    topt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                              {"params": rest, "weight_decay": 0.0}], lr=0.01)
    sched = nl.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=40)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=40)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6))
    y = np.sin(x.sum(axis=1, keepdims=True))
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = ((model(nl.tensor(x)) - nl.tensor(y)) ** 2).mean()
        loss.backward()
        norm = utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        opt.step(); sched.step()
        topt.zero_grad()
        tloss = ((twin(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean()
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(twin.parameters(), max_norm=0.5)
        topt.step(); tsched.step()
        assert float(loss) == pytest.approx(tloss.item(), rel=1e-6)
        assert float(norm) == pytest.approx(float(tnorm), rel=1e-6)
        losses.append(float(loss))
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-6, atol=1e-10)
    assert losses[-1] < 0.5 * losses[0]


def test_named_parameters_give_param_names_like_torch():
    torch = pytest.importorskip("torch")
    model = nl.nn.Linear(3, 2, dtype=np.float64)
    opt = nl.optim.Adam(model.named_parameters())
    twin = torch.optim.Adam(torch.nn.Linear(3, 2).named_parameters())
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == \
        twin.state_dict()["param_groups"][0]["param_names"]
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(model.weight), id(model.bias)]
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [Parameter(np.zeros(2))]})


def _step_both_with_random_grads(torch, rng, nnlite_side, torch_side):
    """Give each pair of parameters the same random gradient; step both optimizers."""
    (o, ours), (t, theirs) = nnlite_side, torch_side
    for p, q in zip(ours, theirs):
        g = rng.standard_normal(p.shape)
        p.grad, q.grad = nl.tensor(g), torch.tensor(g)
    o.step(); t.step()


def test_adagrad_accumulators_start_where_torch_starts_them():
    """Every sum starts at the constructor's initial_accumulator_value (a group's own value
    does not move it); a group added by add_param_group has no state before its first step."""
    torch = pytest.importorskip("torch")
    init = _init(11, [(3,), (4,), (2,)])
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]

    def groups(ps):
        return [{"params": [ps[0]]}, {"params": [ps[1]], "initial_accumulator_value": 2.0}]

    o = nl.optim.Adagrad(groups(ours), lr=0.1, initial_accumulator_value=0.5)
    t = torch.optim.Adagrad(groups(theirs), lr=0.1, initial_accumulator_value=0.5)
    o.add_param_group({"params": [ours[2]], "initial_accumulator_value": 3.0})
    t.add_param_group({"params": [theirs[2]], "initial_accumulator_value": 3.0})
    assert sorted(o.state_dict()["state"]) == sorted(t.state_dict()["state"]) == [0, 1]
    rng = np.random.default_rng(0)
    for _ in range(5):
        _step_both_with_random_grads(torch, rng, (o, ours), (t, theirs))
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(o.state[p]["sum"].data, t.state[q]["sum"].numpy(), rtol=1e-12)
    assert o.param_groups[1]["initial_accumulator_value"] == 2.0


@pytest.mark.parametrize("name,kw", [("SGD", dict(momentum=0.9)), ("Adam", {}),
                                     ("AdamW", dict(amsgrad=True)), ("Adagrad", {}),
                                     ("RMSprop", dict(centered=True))])
def test_a_one_element_tensor_lr_works_as_in_torch(name, kw):
    torch = pytest.importorskip("torch")
    tensors = {"lr": 0.01}
    if name == "SGD":
        tensors["weight_decay"] = 0.1
    if name == "Adam":
        tensors["betas"] = (0.8, 0.99)

    def wrap(make):
        return {k: tuple(make(b) for b in v) if isinstance(v, tuple) else make(v)
                for k, v in tensors.items()}

    init = _init(12, [(4, 3), ()])
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    # float64 tensors: torch forms lr / (1 - beta1^t) and the like in the tensors' dtype
    o = getattr(nl.optim, name)(ours, **kw, **wrap(lambda v: nl.tensor(v, dtype=np.float64)))
    t = getattr(torch.optim, name)(theirs, **kw, foreach=False,
                                   **wrap(lambda v: torch.tensor(v, dtype=torch.float64)))
    rng = np.random.default_rng(3)
    for step in range(6):
        if step == 3:   # the rate is read at each step: changing the tensor changes it
            o.param_groups[0]["lr"].data[...] = 0.5
            t.param_groups[0]["lr"].fill_(0.5)
        _step_both_with_random_grads(torch, rng, (o, ours), (t, theirs))
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"Tensor lr must be 1-element, got shape \(2,\)"):
        getattr(nl.optim, name)(ours, lr=nl.tensor([0.1, 0.2]))


def test_state_of_a_parameter_without_state_is_empty_like_torch():
    torch = pytest.importorskip("torch")
    p, q = Parameter(np.ones(3)), torch.nn.Parameter(torch.ones(3))
    o, t = nl.optim.Adam([p]), torch.optim.Adam([q])
    assert o.state[p] == t.state[q] == {}
    p.grad = nl.ones(3).double()
    o.step()
    assert list(o.state[p]) == ["step", "exp_avg", "exp_avg_sq"]


@pytest.mark.parametrize("name,arg", [("Adam", "lr"), ("Adam", "eps"), ("AdamW", "weight_decay"),
                                      ("Adagrad", "lr_decay"),
                                      ("Adagrad", "initial_accumulator_value"),
                                      ("RMSprop", "alpha"), ("RMSprop", "momentum")])
def test_a_nan_hyperparameter_is_refused_when_made_like_torch(name, arg):
    torch = pytest.importorskip("torch")
    message = f"Invalid {dict(lr='learning rate', eps='epsilon').get(arg, arg)}.*nan"
    with pytest.raises(ValueError, match=message):
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **{arg: float("nan")})
    with pytest.raises(ValueError, match=message):
        getattr(nl.optim, name)([Parameter(np.ones(2))], **{arg: float("nan")})


def test_adam_betas_must_both_be_floats_or_both_tensors_like_torch():
    torch = pytest.importorskip("torch")
    for betas in [(0, 0.99), (0.9, nl.tensor(0.99, dtype=np.float64))]:
        torch_betas = tuple(torch.tensor(b.item()) if isinstance(b, nl.Tensor) else b for b in betas)
        with pytest.raises(ValueError, match="both floats or both Tensors"):
            torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], betas=torch_betas)
        with pytest.raises(ValueError, match=r"both floats or both Tensors, got \((int|float), "):
            nl.optim.Adam([Parameter(np.ones(2))], betas=betas)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop"])
def test_constructor_signature_and_defaults_are_torchs(name):
    """Same arguments in the same order, positional or keyword-only alike, with the same defaults,
    so a call written for torch.optim means the same here (Adagrad's 7th positional argument
    is foreach, RMSprop's 8th capturable); foreach and fused change nothing."""
    torch = pytest.importorskip("torch")
    import inspect

    def signature(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert signature(getattr(nl.optim, name)) == signature(getattr(torch.optim, name))
    ours = getattr(nl.optim, name)([Parameter(np.ones(2))])
    theirs = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))])
    assert ours.defaults == theirs.defaults
    flags = dict(foreach=True) if name == "RMSprop" else dict(foreach=False, fused=True)
    _, _, plain, _ = _run_pair(name, dict(lr=0.01), steps=5)   # the same run without flags
    flagged = [Parameter(a.copy()) for a in _init()]
    opt = getattr(nl.optim, name)(flagged, lr=0.01, **flags)
    assert all(opt.param_groups[0][k] == v for k, v in flags.items())
    rng = np.random.default_rng(1)
    for step in range(5):
        for i, p in enumerate(flagged):
            p.grad = nl.tensor(_grad(rng, p.data, step, i))
        opt.step()
    for p, q in zip(flagged, plain):
        assert p.data.tobytes() == q.data.tobytes()


def test_fused_foreach_and_differentiable_are_refused_where_torch_refuses_or_cannot_follow():
    torch = pytest.importorskip("torch")
    for lib, p in ((nl.optim, Parameter(np.ones(2))), (torch.optim, torch.nn.Parameter(torch.ones(2)))):
        with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
            lib.Adam([p], fused=True, foreach=True)
        with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
            lib.SGD([p], fused=True, differentiable=True)
    with pytest.raises(NotImplementedError, match="differentiable=True .* expected differentiable=False"):
        nl.optim.RMSprop([Parameter(np.ones(2))], differentiable=True)


def test_capturable_and_differentiable_groups_are_refused_by_name():
    # torch.optim accepts both when made, then fails at its first CPU step (an AssertionError
    # for capturable, an in-place error for differentiable); nnlite says why when made.
    torch = pytest.importorskip("torch")
    q = torch.nn.Parameter(torch.ones(2))
    q.grad = torch.ones(2)
    with pytest.raises(AssertionError, match="capturable=True"):
        torch.optim.Adam([q], capturable=True).step()
    with pytest.raises(RuntimeError, match="capturable=True is for CUDA graphs.*expected "
                                           "capturable=False"):
        nl.optim.Adam([Parameter(np.ones(2))], capturable=True)
    opt = nl.optim.RMSprop([Parameter(np.ones(2))])
    with pytest.raises(RuntimeError, match="capturable=True"):
        opt.add_param_group({"params": [Parameter(np.ones(2))], "capturable": True})
    with pytest.raises(NotImplementedError, match="differentiable=True"):
        opt.add_param_group({"params": [Parameter(np.ones(2))], "differentiable": True})
    assert len(opt.param_groups) == 1


FLAGS = ("maximize", "foreach", "differentiable", "fused", "capturable", "nesterov", "amsgrad",
         "decoupled_weight_decay", "centered")


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(weight_decay=0.1)),
                                     ("AdamW", dict()), ("RMSprop", dict(momentum=0.5)), ("Adagrad", dict())])
def test_a_state_dict_saved_before_pytorchs_newer_flags_loads_with_their_defaults_as_in_torch(name, kw):
    # PyTorch fills in the flags an older file lacks; loading one used to stop with a KeyError
    torch = pytest.importorskip("torch")
    loaded = []
    for lib in (nl, torch):
        p = lib.nn.Parameter(lib.ones(3))
        opt = getattr(lib.optim, name)([p], **kw)
        p.grad = lib.ones(3)
        opt.step()
        saved = opt.state_dict()
        for flag in FLAGS:
            saved["param_groups"][0].pop(flag, None)
        opt.load_state_dict(saved)
        p.grad = lib.ones(3)
        opt.step()
        loaded.append(({k: v for k, v in opt.param_groups[0].items() if k != "params"},
                       p.detach().numpy().copy()))
    (ours, ours_p), (theirs, theirs_p) = loaded
    assert ours == theirs
    np.testing.assert_allclose(ours_p, theirs_p, rtol=1e-6)


def test_a_saved_param_group_without_a_hyperparameter_is_named():
    p = Parameter(np.ones(2, np.float32))
    opt = nl.optim.SGD([p], lr=0.1, momentum=0.9)
    saved = opt.state_dict()
    del saved["param_groups"][0]["momentum"]
    with pytest.raises(ValueError, match=r"param group 0 has no 'momentum'; expected the hyperparameters \['lr', "):
        opt.load_state_dict(saved)
