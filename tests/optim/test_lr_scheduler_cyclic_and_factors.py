"""ConstantLR, MultiplicativeLR, PolynomialLR and CyclicLR against PyTorch: random configurations
step by step (rates, momentum, Adam's betas), state_dicts moved both ways mid-schedule, chaining,
and the arguments both libraries refuse; plus the schedules' own formulas without PyTorch."""
import copy
import math

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.optim import lr_scheduler as nls

STEPS = 160


def _optimizers(opt_name, lrs, kw):
    """An nnlite and a torch optimizer with one param group per entry of ``lrs``."""
    torch = torch_or_skip()
    ours = getattr(nl.optim, opt_name)(
        [{"params": [nl.nn.Parameter(nl.zeros(2))], "lr": lr} for lr in lrs], **kw)
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs], **kw)
    return ours, theirs


def _observed(sched, opt):
    """What a schedule decides at this step: get_last_lr and each group's lr, momentum, betas."""
    row = [float(v) for v in sched.get_last_lr()]
    for group in opt.param_groups:
        row.append(float(group["lr"]))
        for key in ("momentum", "betas"):
            if key in group:
                row.extend(np.ravel(group[key]).tolist())
    return row


def _random_cyclic(rng, groups):
    """Arguments of a random CyclicLR: mode or scale_fn, step sizes (fractional too), momentum."""
    def per_group(low, high):
        values = [float(v) for v in rng.uniform(low, high, groups)]
        return values if rng.random() < 0.5 else values[0]

    kw = dict(base_lr=per_group(1e-4, 1e-2), max_lr=per_group(0.05, 0.5),
              step_size_up=int(rng.integers(1, 12)) if rng.random() < 0.8 else float(rng.uniform(0.5, 9)))
    if rng.random() < 0.7:
        kw["step_size_down"] = int(rng.integers(0, 15))
    choice = rng.integers(0, 5)
    if choice < 3:
        kw["mode"] = ("triangular", "triangular2", "exp_range")[choice]
        kw["gamma"] = float(rng.uniform(0.95, 1.0))
        kw["scale_mode"] = ("cycle", "iterations")[rng.integers(0, 2)]   # ignored by a mode
    else:
        # A plain function each time: the same lambda text gives both libraries the same numbers.
        kw["scale_fn"] = (lambda x: 1 / (1 + 0.1 * x)) if choice == 3 else (lambda x: 0.5 ** (x % 3))
        kw["scale_mode"] = ("cycle", "iterations")[rng.integers(0, 2)]
    kw["cycle_momentum"] = bool(rng.random() < 0.8)
    kw["base_momentum"] = per_group(0.7, 0.85)
    kw["max_momentum"] = per_group(0.86, 0.99)
    return kw


def _random_factor_schedule(rng):
    """A random ConstantLR, MultiplicativeLR or PolynomialLR, as (class name, arguments)."""
    kind = rng.integers(0, 3)
    if kind == 0:
        return "ConstantLR", dict(factor=float(rng.uniform(0.05, 1.0)), total_iters=int(rng.integers(0, 40)))
    if kind == 1:
        rate = float(rng.uniform(0.9, 1.02))
        return "MultiplicativeLR", dict(lr_lambda=lambda e: rate + 0.01 * math.sin(e))
    return "PolynomialLR", dict(total_iters=int(rng.integers(1, 200)), power=float(rng.uniform(0.2, 3.0)))


OPTIMIZERS = [("SGD", {"momentum": 0.5}), ("SGD", {}), ("Adam", {}), ("AdamW", {"betas": (0.8, 0.95)}),
              ("RMSprop", {"momentum": 0.1})]


def _compare(make, opt_name, kw, lrs, steps=STEPS):
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _optimizers(opt_name, lrs, kw)
    a, b = make(nls, ours), make(tls, theirs)
    for step in range(steps):
        assert _observed(a, ours) == pytest.approx(_observed(b, theirs), rel=1e-13, abs=1e-300), step
        ours.step(); theirs.step()
        a.step(); b.step()
    return a, b


@pytest.mark.parametrize("seed", range(12))
def test_random_cyclic_schedules_equal_torch_step_by_step(seed):
    rng = np.random.default_rng(seed)
    opt_name, kw = OPTIMIZERS[seed % len(OPTIMIZERS)]
    lrs = [0.1, 0.03, 0.2][: 1 + seed % 3]
    args = _random_cyclic(rng, len(lrs))
    a, _ = _compare(lambda m, o: m.CyclicLR(o, **args), opt_name, kw, lrs)
    assert a.last_epoch == STEPS


@pytest.mark.parametrize("seed", range(12))
def test_random_constant_multiplicative_polynomial_equal_torch(seed):
    rng = np.random.default_rng(100 + seed)
    name, args = _random_factor_schedule(rng)
    opt_name, kw = OPTIMIZERS[seed % len(OPTIMIZERS)]
    _compare(lambda m, o: getattr(m, name)(o, **args), opt_name, kw, [0.1, 0.02])


@pytest.mark.parametrize("opt_name,kw", [("SGD", {"momentum": 0.9}), ("Adam", {"betas": (0.9, 0.98)})])
def test_cyclic_momentum_and_betas_move_against_the_rate(opt_name, kw):
    """At the bottom of a cycle momentum is max_momentum, at the peak base_momentum; beta2 stays."""
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _optimizers(opt_name, [0.1], kw)
    make = lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, base_momentum=0.8,
                                   max_momentum=0.95)
    a, b = make(nls, ours), make(tls, theirs)
    group = ours.param_groups[0]
    first = group["betas"][0] if opt_name == "Adam" else group["momentum"]
    assert first == 0.95 and group["max_momentum"] == 0.95 and group["base_momentum"] == 0.8
    for _ in range(3):
        ours.step(); theirs.step(); a.step(); b.step()
    peak = group["betas"] if opt_name == "Adam" else (group["momentum"],)
    assert peak[0] == pytest.approx(0.8) and a.get_last_lr() == pytest.approx([0.1])
    if opt_name == "Adam":
        assert group["betas"][1] == 0.98 and theirs.param_groups[0]["betas"] == group["betas"]


def _copy_groups(source, target):
    """Give ``target``'s param groups ``source``'s hyperparameters (what an optimizer checkpoint holds)."""
    for src, dst in zip(source.param_groups, target.param_groups):
        for key, value in src.items():
            if key != "params":
                dst[key] = value


MOVABLE = {
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.3, total_iters=20),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.98),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.5),
    "CyclicLR_sgd": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.3, 0.1], step_size_up=4,
                                            step_size_down=6, mode="triangular2"),
    "CyclicLR_adam": lambda m, o: m.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=5,
                                             mode="exp_range", gamma=0.98),
    "CyclicLR_scale_fn": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                 scale_fn=lambda x: 0.9 ** x, scale_mode="iterations"),
}


@pytest.mark.parametrize("name", sorted(MOVABLE))
def test_state_dict_moves_nnlite_to_torch_to_nnlite_and_continues(name):
    """Run 10 steps in nnlite, 10 more in torch from nnlite's state, 15 more in nnlite from torch's;
    every step equals one schedule run straight through."""
    tls = torch_or_skip().optim.lr_scheduler
    make = MOVABLE[name]
    opt_name, kw = ("Adam", {}) if name.endswith("adam") else ("SGD", {"momentum": 0.9})
    straight, _ = _optimizers(opt_name, [0.1, 0.05], kw)
    reference = make(nls, straight)
    expected = []
    for _ in range(35):
        expected.append(_observed(reference, straight))
        straight.step(); reference.step()

    ours, theirs = _optimizers(opt_name, [0.1, 0.05], kw)
    a = make(nls, ours)
    seen = []
    for _ in range(10):
        seen.append(_observed(a, ours)); ours.step(); a.step()
    b = make(tls, theirs)
    _copy_groups(ours, theirs)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for _ in range(10):
        seen.append(_observed(b, theirs)); theirs.step(); b.step()
    fresh, _ = _optimizers(opt_name, [0.1, 0.05], kw)
    c = make(nls, fresh)
    _copy_groups(theirs, fresh)
    c.load_state_dict(copy.deepcopy(b.state_dict()))
    for _ in range(15):
        seen.append(_observed(c, fresh)); fresh.step(); c.step()
    np.testing.assert_allclose(seen, expected, rtol=1e-13)


def test_cyclic_saves_a_callable_objects_attributes_like_torch():
    tls = torch_or_skip().optim.lr_scheduler

    class Decay:   # a callable object: its attributes are state, a plain function's code is not
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, x):
            return self.rate ** x

    ours, theirs = _optimizers("SGD", [0.1], {"momentum": 0.9})
    a = nls.CyclicLR(ours, 0.01, 0.1, step_size_up=2, scale_fn=Decay(0.5))
    b = tls.CyclicLR(theirs, 0.01, 0.1, step_size_up=2, scale_fn=Decay(0.5))
    assert a.state_dict()["_scale_fn_custom"] == {"rate": 0.5} == b.state_dict()["_scale_fn_custom"]
    other = nls.CyclicLR(_optimizers("SGD", [0.1], {"momentum": 0.9})[0], 0.01, 0.1, step_size_up=2,
                         scale_fn=Decay(0.9))
    other.load_state_dict(copy.deepcopy(b.state_dict()))
    assert other._scale_fn_custom.rate == 0.5
    with pytest.raises(ValueError, match="made without scale_fn"):
        nls.CyclicLR(_optimizers("SGD", [0.1], {"momentum": 0.9})[0], 0.01, 0.1).load_state_dict(
            a.state_dict())


CHAINS = {
    "chained_constant_exponential": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=7), m.ExponentialLR(o, gamma=0.96)]),
    "chained_multiplicative_step": lambda m, o: m.ChainedScheduler(
        [m.MultiplicativeLR(o, lambda e: 0.99), m.StepLR(o, step_size=9, gamma=0.5)]),
    "chained_polynomial_linear": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.1, total_iters=5), m.PolynomialLR(o, total_iters=30, power=2.0)]),
    "sequential_constant_polynomial": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.1, total_iters=4), m.PolynomialLR(o, total_iters=25)], milestones=[4]),
    "sequential_warmup_cyclic": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=6),
            m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5)], milestones=[6]),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chained_with_other_schedulers_like_torch(name):
    a, _ = _compare(CHAINS[name], "SGD", {"momentum": 0.9}, [0.1, 0.02], steps=60)
    assert len(a.get_last_lr()) == 2


def _refused_by_both(make, error, match):
    """torch refuses the call too; nnlite's error names what it expected and what it got."""
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _optimizers("SGD", [0.1, 0.02], {"momentum": 0.9})
    with pytest.raises(Exception):
        make(tls, theirs)
    before = copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in ours.param_groups])
    with pytest.raises(error, match=match):
        make(nls, ours)
    assert [{k: v for k, v in g.items() if k != "params"} for g in ours.param_groups] == before


@pytest.mark.parametrize("make,error,match", [
    (lambda m, o: m.ConstantLR(o, factor=1.5), ValueError, "between 0 and 1, got 1.5"),
    (lambda m, o: m.ConstantLR(o, factor=-0.1), ValueError, "between 0 and 1, got -0.1"),
    (lambda m, o: m.MultiplicativeLR(o, [lambda e: 0.9]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    (lambda m, o: m.MultiplicativeLR(o, 0.9), TypeError, "should be a function, but got float"),
    (lambda m, o: m.LambdaLR(o, [lambda e: 1.0, "x"]), TypeError, "should be a function, but got str"),
    (lambda m, o: m.CyclicLR(o, 0.01, 0.1, mode="triangle"), ValueError,
     "mode must be one of 'triangular', 'triangular2', 'exp_range', got 'triangle'"),
    (lambda m, o: m.CyclicLR(o, [0.01], 0.1), ValueError, "expected 2 values for base_lr, got 1"),
    (lambda m, o: m.CyclicLR(o, 0.01, [0.1, 0.2, 0.3]), ValueError, "expected 2 values for max_lr, got 3"),
    (lambda m, o: m.CyclicLR(o, 0.01, 0.1, base_momentum=[0.8]), ValueError,
     "expected 2 values for base_momentum, got 1"),
    (lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=0), ValueError,
     "step_size_up to be a positive number, but got 0"),
])
def test_bad_arguments_are_refused_with_a_clear_message(make, error, match):
    _refused_by_both(make, error, match)


def test_cyclic_and_constant_refuse_what_would_go_wrong_later():
    tls = torch_or_skip().optim.lr_scheduler
    torch_opt = _optimizers("SGD", [0.1], {})[1]
    ours = _optimizers("SGD", [0.1], {})[0]
    with pytest.raises(ValueError, match="momentum or beta1.*Adagrad has neither"):
        nls.CyclicLR(_optimizers("Adagrad", [0.1], {})[0], 0.01, 0.1)
    with pytest.raises(ValueError, match="momentum or beta1"):
        tls.CyclicLR(_optimizers("Adagrad", [0.1], {})[1], 0.01, 0.1)
    # A misspelt scale_mode would silently mean "iterations" in torch; a negative fall, nonsense rates.
    b = tls.CyclicLR(torch_opt, 0.01, 0.1, scale_fn=lambda x: 1.0, scale_mode="cycles")
    assert b.scale_mode == "cycles"
    with pytest.raises(ValueError, match="scale_mode must be 'cycle' or 'iterations', got 'cycles'"):
        nls.CyclicLR(ours, 0.01, 0.1, scale_fn=lambda x: 1.0, scale_mode="cycles")
    with pytest.raises(ValueError, match="step_size_down to be a non-negative number, but got -2"):
        nls.CyclicLR(ours, 0.01, 0.1, step_size_down=-2)
    with pytest.raises(ValueError, match="positive number, but got nan"):
        nls.CyclicLR(ours, 0.01, 0.1, step_size_up=float("nan"))
    with pytest.raises(TypeError, match="scale_fn should be a function, but got int"):
        nls.CyclicLR(ours, 0.01, 0.1, scale_fn=3)
    with pytest.raises(ZeroDivisionError):
        t = tls.ConstantLR(_optimizers("SGD", [0.1], {})[1], factor=0.0, total_iters=2)
        t.step(); t.step()
    s = nls.ConstantLR(ours, factor=0.0, total_iters=2)
    s.step()
    with pytest.raises(ZeroDivisionError, match=r"ConstantLR\(factor=0\) cannot restore"):
        s.step()


# ----------------------------------------------------------- without torch --
def _lrs_over(sched, opt, steps):
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step(); sched.step()
    return np.array(out)


def _sgd(lr=1.0, **kw):
    return nl.optim.SGD([nl.nn.Parameter(nl.zeros(2))], lr=lr, **kw)


def test_the_schedules_follow_their_formulas():
    """Each recursive schedule lands on its closed form (the formula in its docstring)."""
    t = np.arange(50)

    opt = _sgd(0.3)
    np.testing.assert_allclose(_lrs_over(nls.ConstantLR(opt, factor=0.25, total_iters=7), opt, 50),
                               np.where(t < 7, 0.3 * 0.25, 0.3), rtol=1e-15)

    opt = _sgd(0.3)
    factors = lambda e: 1.0 - 0.01 * (e % 4)
    expected = 0.3 * np.cumprod([1.0] + [factors(e) for e in range(1, 50)])
    np.testing.assert_allclose(_lrs_over(nls.MultiplicativeLR(opt, factors), opt, 50), expected, rtol=1e-13)

    opt = _sgd(0.3)
    np.testing.assert_allclose(_lrs_over(nls.PolynomialLR(opt, total_iters=20, power=1.5), opt, 50),
                               0.3 * (1 - np.minimum(t, 20) / 20) ** 1.5, rtol=1e-12, atol=1e-17)

    # CyclicLR: a triangle wave of period up + down; triangular2 halves its height every cycle.
    up, down, low, high = 4, 6, 0.01, 0.21
    opt = _sgd(0.5, momentum=0.9)
    sched = nls.CyclicLR(opt, base_lr=low, max_lr=high, step_size_up=up, step_size_down=down,
                         mode="triangular2", base_momentum=0.8, max_momentum=0.9)
    assert opt.param_groups[0]["lr"] == low and opt.param_groups[0]["momentum"] == 0.9
    momenta = []
    lrs = []
    for _ in range(50):
        lrs.append(sched.get_last_lr()[0]); momenta.append(opt.param_groups[0]["momentum"])
        opt.step(); sched.step()
    pos = t % (up + down)
    height = np.where(pos <= up, pos / up, (up + down - pos) / down) * 0.5 ** (t // (up + down))
    np.testing.assert_allclose(lrs, low + (high - low) * height, rtol=1e-12)
    np.testing.assert_allclose(momenta, 0.9 - 0.1 * height, rtol=1e-12)


def test_cyclic_exp_range_and_adam_betas_without_torch():
    w = nl.nn.Parameter(nl.zeros(2))
    opt = nl.optim.Adam([w], lr=0.5, betas=(0.9, 0.97))
    sched = nls.CyclicLR(opt, base_lr=0.001, max_lr=0.01, step_size_up=2, mode="exp_range", gamma=0.9,
                         scale_mode="cycle")   # a built-in mode decides its own scale_mode
    assert sched.scale_mode == "iterations"
    for step in range(1, 12):
        opt.step(); sched.step()
        pos = step % 4
        height = pos / 2 if pos <= 2 else (4 - pos) / 2
        assert sched.get_last_lr()[0] == pytest.approx(0.001 + 0.009 * height * 0.9 ** step, rel=1e-12)
        assert opt.param_groups[0]["betas"] == (pytest.approx(0.9 - 0.1 * height * 0.9 ** step), 0.97)
    state = copy.deepcopy(sched.state_dict())
    assert state["_scale_fn_custom"] is None and "optimizer" not in state
    again = nls.CyclicLR(opt, base_lr=0.001, max_lr=0.01, step_size_up=2, mode="exp_range",
                         gamma=0.5, last_epoch=0)
    again.load_state_dict(state)
    assert again.gamma == 0.9 and again.last_epoch == 11
