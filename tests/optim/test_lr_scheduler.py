"""Every learning-rate schedule gives PyTorch's numbers, epoch by epoch, and resumes from state_dict."""
import copy
import math
from contextlib import nullcontext

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.optim import lr_scheduler as nls


def _pair(opt_name="SGD", lrs=(0.1, 0.02), **kw):
    """An nnlite and a torch optimizer with one param group per entry of ``lrs``."""
    torch = torch_or_skip()
    ours = [nl.nn.Parameter(nl.zeros(3)) for _ in lrs]
    theirs = [torch.nn.Parameter(torch.zeros(3)) for _ in lrs]
    o = getattr(nl.optim, opt_name)([{"params": [p], "lr": lr} for p, lr in zip(ours, lrs)], **kw)
    t = getattr(torch.optim, opt_name)([{"params": [p], "lr": lr} for p, lr in zip(theirs, lrs)], **kw)
    return o, t


SCHEDULES = {
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.95 ** e + 0.01 * (e % 3)),
    "lambda_per_group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.9 ** e]),
    "step": lambda m, o: m.StepLR(o, step_size=7, gamma=0.3),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[3, 10, 10, 25], gamma=0.5),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=1e-3),
    "cosine_no_floor": lambda m, o: m.CosineAnnealingLR(o, T_max=9),
    "warm_restarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4),
    "warm_restarts_mult1": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=4),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.9, total_iters=8),
    "linear_default": lambda m, o: m.LinearLR(o),
    "onecycle_cos": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=41),
    "onecycle_linear": lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=4, steps_per_epoch=10,
                                                  anneal_strategy="linear", pct_start=0.25),
    "onecycle_three_phase": lambda m, o: m.OneCycleLR(o, max_lr=0.4, total_steps=41,
                                                       three_phase=True, div_factor=10.0),
    "constant": lambda m, o: m.ConstantLR(o, factor=0.4, total_iters=6),
    "constant_default": lambda m, o: m.ConstantLR(o),
    "multiplicative": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 + 0.05 * (e % 3)),
    "multiplicative_per_group": lambda m, o: m.MultiplicativeLR(
        o, [lambda e: 0.97, lambda e: 1 / (1 + 0.01 * e)]),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=15, power=1.7),
    "polynomial_default": lambda m, o: m.PolynomialLR(o),
    "cyclic_triangular2": lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.002], max_lr=[0.1, 0.05],
                                                   step_size_up=4, step_size_down=7,
                                                   mode="triangular2"),
    "cyclic_exp_range": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=5,
                                                 mode="exp_range", gamma=0.97),
    "sequential": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.01, total_iters=5),
            m.CosineAnnealingLR(o, T_max=20), m.ExponentialLR(o, gamma=0.9)], milestones=[5, 25]),
    "chained": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.2, total_iters=6), m.ExponentialLR(o, gamma=0.97)]),
}


def _run(make, opt, module, steps):
    sched = make(module, opt)
    seen = []
    for _ in range(steps):
        seen.append(list(sched.get_last_lr()) + [g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return seen, sched


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lr_sequence_equals_torch(name):
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair()
    steps = 40
    a, _ = _run(SCHEDULES[name], ours, nls, steps)
    b, _ = _run(SCHEDULES[name], theirs, tls, steps)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=0)


@pytest.mark.parametrize("opt_name,kw", [("SGD", {"momentum": 0.9}), ("Adam", {}), ("AdamW", {})])
def test_onecycle_cycles_momentum_like_torch(opt_name, kw):
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair(opt_name, **kw)
    key = "betas" if opt_name.startswith("Adam") else "momentum"
    make = lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=30, three_phase=True)
    s_ours, s_theirs = make(nls, ours), make(tls, theirs)
    for _ in range(29):
        for go, gt in zip(ours.param_groups, theirs.param_groups):
            np.testing.assert_allclose(np.ravel(go[key]), np.ravel(gt[key]), rtol=1e-13)
            assert go["lr"] == pytest.approx(gt["lr"], rel=1e-13)
        ours.step(); theirs.step()
        s_ours.step(); s_theirs.step()
    with pytest.raises(ValueError, match="Tried to step"):
        s_ours.step(); s_ours.step()


@pytest.mark.parametrize("mode,threshold_mode", [("min", "rel"), ("min", "abs"), ("max", "rel"),
                                                 ("max", "abs")])
def test_reduce_on_plateau_equals_torch(mode, threshold_mode):
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair()
    kw = dict(mode=mode, factor=0.5, patience=2, threshold=0.05, threshold_mode=threshold_mode,
              cooldown=1, min_lr=[0.01, 0.004], eps=1e-9)
    a, b = nls.ReduceLROnPlateau(ours, **kw), tls.ReduceLROnPlateau(theirs, **kw)
    rng = np.random.default_rng(3)
    metrics = np.cumsum(rng.normal(0, 1, 60)) * (1 if mode == "min" else -1)
    for m in metrics:
        a.step(float(m)); b.step(float(m))
        assert a.get_last_lr() == pytest.approx(b.get_last_lr(), rel=1e-15)
        assert (a.num_bad_epochs, a.cooldown_counter, a.best) == \
            (b.num_bad_epochs, b.cooldown_counter, b.best)
    assert min(a.get_last_lr()) < 0.02  # the rate really dropped


def test_warm_restarts_fractional_epochs_equal_torch():
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair()
    a = nls.CosineAnnealingWarmRestarts(ours, T_0=3, T_mult=2, eta_min=0.001)
    b = tls.CosineAnnealingWarmRestarts(theirs, T_0=3, T_mult=2, eta_min=0.001)
    for epoch in np.arange(0, 20, 0.25):
        a.step(float(epoch)); b.step(float(epoch))
        assert a.get_last_lr() == pytest.approx(b.get_last_lr(), rel=1e-13)
    with pytest.raises(ValueError, match="non-negative"):
        a.step(-1)


@pytest.mark.parametrize("name", ["step", "cosine", "warm_restarts", "onecycle_cos", "sequential",
                                  "chained", "linear", "multistep", "constant", "multiplicative",
                                  "polynomial", "cyclic_triangular2", "cyclic_exp_range"])
def test_state_dict_resumes_the_schedule(name):
    opt, _ = _pair()
    full, _ = _run(SCHEDULES[name], opt, nls, 30)
    opt2, _ = _pair()
    sched = SCHEDULES[name](nls, opt2)
    for _ in range(13):
        opt2.step(); sched.step()
    saved_sched, saved_opt = copy.deepcopy(sched.state_dict()), opt2.state_dict()
    opt3, _ = _pair()
    resumed = SCHEDULES[name](nls, opt3)
    opt3.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    rest = []
    for _ in range(17):
        rest.append(list(resumed.get_last_lr()) + [g["lr"] for g in opt3.param_groups])
        opt3.step(); resumed.step()
    np.testing.assert_allclose(rest, full[13:], rtol=1e-15)


def test_scheduler_errors_are_clear():
    opt, _ = _pair()
    with pytest.raises(TypeError, match="not an Optimizer"):
        nls.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        nls.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        nls.ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="total_steps"):
        nls.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="milestone"):
        nls.SequentialLR(opt, [nls.StepLR(opt, 2)], milestones=[3])
    with pytest.raises(KeyError, match="initial_lr"):
        nls.StepLR(_pair()[0], step_size=2, last_epoch=4)
    with pytest.raises(ValueError, match="momentum or beta1"):
        nls.OneCycleLR(_pair("Adagrad")[0], max_lr=0.1, total_steps=10)


def test_cosine_reaches_eta_min_at_t_max():
    opt, _ = _pair(lrs=(1.0,))
    sched = nls.CosineAnnealingLR(opt, T_max=10, eta_min=0.1)
    for _ in range(10):
        opt.step(); sched.step()
    assert math.isclose(sched.get_last_lr()[0], 0.1, rel_tol=1e-12)


def test_reduce_on_plateau_and_lambda_state_dicts_resume():
    metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

    def run(values, sched, opt):
        out = []
        for m in values:
            sched.step(m)
            out.append(opt.param_groups[0]["lr"])
        return out

    opt, _ = _pair()
    full = run(metrics, nls.ReduceLROnPlateau(opt, patience=1, cooldown=1), opt)
    opt2, _ = _pair()
    sched = nls.ReduceLROnPlateau(opt2, patience=1, cooldown=1)
    run(metrics[:5], sched, opt2)
    opt3, _ = _pair()
    resumed = nls.ReduceLROnPlateau(opt3, patience=1, cooldown=1)
    opt3.load_state_dict(opt2.state_dict())
    resumed.load_state_dict(copy.deepcopy(sched.state_dict()))
    assert run(metrics[5:], resumed, opt3) == full[5:]
    assert full[-1] < full[0]

    class Warmup:   # a callable object: its attributes are saved, a plain function's are not
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.steps)

    opt4, _ = _pair()
    a = nls.LambdaLR(opt4, Warmup(4))
    state = a.state_dict()
    assert state["lr_lambdas"][0] == {"steps": 4}
    b = nls.LambdaLR(_pair()[0], Warmup(10))
    b.load_state_dict(state)
    assert b.lr_lambdas[0].steps == 4


@pytest.mark.parametrize("name", ["lambda", "step", "multistep", "exponential", "cosine", "linear",
                                  "warm_restarts", "onecycle_cos", "constant", "multiplicative",
                                  "polynomial", "cyclic_triangular2"])
def test_step_with_an_epoch_jumps_like_torch(name):
    """The deprecated ``step(epoch)`` sets last_epoch and uses the closed form, as in PyTorch."""
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair()
    a, b = SCHEDULES[name](nls, ours), SCHEDULES[name](tls, theirs)
    for epoch in (None, 5, None, None, 2, 11, None, 0, None):
        warns = epoch is not None and name != "warm_restarts"   # as torch's warm restarts
        with pytest.warns(UserWarning, match="epoch parameter") if warns else nullcontext():
            a.step(epoch)
        b.step(epoch)
        assert a.last_epoch == b.last_epoch
        assert a.get_last_lr() == pytest.approx(b.get_last_lr(), rel=1e-12)


def test_reduce_on_plateau_step_takes_an_epoch_like_torch():
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair()
    a, b = nls.ReduceLROnPlateau(ours, patience=0), tls.ReduceLROnPlateau(theirs, patience=0)
    for metric, epoch in ((1.0, None), (2.0, 7), (3.0, None)):
        a.step(metric, epoch)
        b.step(metric, epoch)
        assert (a.last_epoch, a.get_last_lr()) == (b.last_epoch, pytest.approx(b.get_last_lr()))
    assert a.last_epoch == 8


def test_scheduler_argument_and_base_class_errors_match_torch():
    opt, _ = _pair()
    with pytest.raises(ValueError, match="Expected float or int eta_min, but got 'a' of type str"):
        nls.CosineAnnealingWarmRestarts(opt, T_0=2, eta_min="a")
    with pytest.raises(NotImplementedError, match="must define get_lr"):
        nls.LRScheduler(opt)
    with pytest.raises(NotImplementedError, match="must define step"):
        nl.optim.Optimizer([nl.nn.Parameter(nl.zeros(2))], {"lr": 0.1}).step()


@pytest.mark.parametrize("name", ["step", "cosine", "warm_restarts", "onecycle_cos", "sequential",
                                  "constant", "multiplicative", "polynomial", "cyclic_exp_range"])
def test_a_tensor_lr_is_scheduled_in_place_like_torch(name):
    """A Tensor lr stays the same object, filled with each new rate; initial_lr is a copy."""
    torch = torch_or_skip()
    o = nl.optim.SGD([{"params": [nl.nn.Parameter(nl.zeros(2))],
                       "lr": nl.tensor(lr, dtype=np.float64)} for lr in (0.1, 0.02)], momentum=0.9)
    t = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))],
                          "lr": torch.tensor(lr, dtype=torch.float64)} for lr in (0.1, 0.02)],
                        momentum=0.9)
    held = [g["lr"] for g in o.param_groups]
    a, b = SCHEDULES[name](nls, o), SCHEDULES[name](torch.optim.lr_scheduler, t)
    for _ in range(12):
        o.step(); t.step(); a.step(); b.step()
        assert [g["lr"] for g in o.param_groups] == held   # the very same objects
        assert [float(v) for v in a.get_last_lr()] == \
            pytest.approx([float(v) for v in b.get_last_lr()], rel=1e-12)
        assert [float(v) for v in held] == pytest.approx([float(v) for v in a.get_last_lr()])
    assert all(a.get_last_lr()[i] is not held[i] for i in range(2))   # copies, as torch's
    if "initial_lr" in o.param_groups[0] and not name.startswith(("onecycle", "cyclic")):
        assert o.param_groups[0]["initial_lr"] is not held[0]
        assert float(o.param_groups[0]["initial_lr"]) == 0.1


@pytest.mark.parametrize("make", [lambda o: nls.LambdaLR(o, lambda e: 0.9 ** e),
                                  lambda o: nls.CosineAnnealingWarmRestarts(o, T_0=3),
                                  lambda o: nls.CosineAnnealingLR(o, T_max=2)])
def test_a_group_added_after_the_scheduler_is_refused_by_name(make):
    # torch fails here too (a zip of unequal lengths); the rates must never be left half set
    opt, _ = _pair(lrs=(0.1,))
    sched = make(opt)
    opt.add_param_group({"params": [nl.nn.Parameter(nl.zeros(2))], "lr": 0.5})
    with pytest.raises(ValueError, match=r"computed 1 learning rates for 2 param groups"):
        for _ in range(4):
            opt.step(); sched.step()


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_keys_are_torchs(name):
    """A scheduler saves what torch's saves, under the same names (torch's bookkeeping flag
    for warnings aside), so a checkpoint resumes in either library."""
    tls = torch_or_skip().optim.lr_scheduler
    ours, theirs = _pair()
    _, a = _run(SCHEDULES[name], ours, nls, 5)
    _, b = _run(SCHEDULES[name], theirs, tls, 5)
    torch_keys = set(b.state_dict()) - {"_get_lr_called_within_step"}
    assert set(a.state_dict()) == torch_keys
    fresh, _ = _pair()
    resumed = SCHEDULES[name](nls, fresh)
    fresh.load_state_dict(ours.state_dict())
    resumed.load_state_dict(copy.deepcopy(b.state_dict()))   # torch's own state, not ours
    for _ in range(5):
        fresh.step(); resumed.step(); theirs.step(); b.step()
        assert resumed.get_last_lr() == pytest.approx(b.get_last_lr(), rel=1e-12)
