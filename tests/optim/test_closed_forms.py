"""Schedules and optimizer steps against their closed forms, with no torch needed.

Each learning-rate schedule is computed recursively in nnlite (as in PyTorch); here
every epoch's rate is checked against the schedule's formula written directly in
terms of the epoch number. Each optimizer's first step (and SGD's second, where
momentum starts to matter) is checked against its update rule worked out by hand.
"""
import math
from bisect import bisect_right

import numpy as np
import pytest

import nnlite as nl
from nnlite.optim import lr_scheduler as S

BASE = (0.1, 0.02)   # two param groups, so per-group handling is exercised


def _optimizer(cls=nl.optim.SGD, lrs=BASE, **kw):
    return cls([{"params": [nl.nn.Parameter(nl.zeros(3))], "lr": lr} for lr in lrs], **kw)


def _rates(scheduler, epochs):
    """The rates of every group at epochs 0..epochs-1 (one optimizer step per epoch)."""
    out = []
    for _ in range(epochs):
        out.append(scheduler.get_last_lr())
        scheduler.optimizer.step()
        scheduler.step()
    return out


def _check(scheduler, closed_form, epochs=30):
    for epoch, rates in enumerate(_rates(scheduler, epochs)):
        for base, rate in zip(BASE, rates):
            assert rate == pytest.approx(closed_form(base, epoch), rel=1e-10, abs=1e-15), epoch


def _cosine(start, end, t, period):
    return end + (start - end) * (1 + math.cos(math.pi * t / period)) / 2


def test_lambda_lr():
    _check(S.LambdaLR(_optimizer(), lambda e: 1 / (1 + e)), lambda b, e: b / (1 + e))


def test_step_lr():
    _check(S.StepLR(_optimizer(), step_size=7, gamma=0.3), lambda b, e: b * 0.3 ** (e // 7))


def test_multistep_lr_counts_repeated_milestones():
    milestones = [3, 10, 10, 25]
    _check(S.MultiStepLR(_optimizer(), milestones=milestones, gamma=0.5),
           lambda b, e: b * 0.5 ** bisect_right(milestones, e))


def test_exponential_lr():
    _check(S.ExponentialLR(_optimizer(), gamma=0.93), lambda b, e: b * 0.93 ** e)


def test_linear_lr():
    _check(S.LinearLR(_optimizer(), start_factor=0.1, end_factor=0.9, total_iters=8),
           lambda b, e: b * (0.1 + 0.8 * min(e, 8) / 8))


def test_cosine_annealing_lr():
    _check(S.CosineAnnealingLR(_optimizer(), T_max=12, eta_min=1e-3),
           lambda b, e: _cosine(b, 1e-3, e, 12), epochs=13)


@pytest.mark.parametrize("t_0,t_mult", [(4, 1), (5, 2)])
def test_cosine_annealing_warm_restarts(t_0, t_mult):
    def closed_form(base, e):
        if t_mult == 1:
            t_cur, t_i = e % t_0, t_0
        else:   # restart n begins at epoch t_0 (t_mult^n - 1) / (t_mult - 1)
            n = int(math.log(e / t_0 * (t_mult - 1) + 1, t_mult))
            t_cur, t_i = e - t_0 * (t_mult ** n - 1) // (t_mult - 1), t_0 * t_mult ** n
        return _cosine(base, 1e-4, t_cur, t_i)
    _check(S.CosineAnnealingWarmRestarts(_optimizer(), T_0=t_0, T_mult=t_mult, eta_min=1e-4), closed_form)


def test_one_cycle_lr_cosine_phases():
    total, max_lr, pct = 41, 0.5, 0.3
    start, low = max_lr / 25.0, max_lr / 25.0 / 1e4
    peak = pct * total - 1

    def closed_form(_, step):
        if step <= peak:
            return _cosine(start, max_lr, step, peak)
        return _cosine(max_lr, low, step - peak, total - 1 - peak)
    sched = S.OneCycleLR(_optimizer(lrs=(0.1,)), max_lr=max_lr, total_steps=total, pct_start=pct)
    rates = _rates(sched, total)
    for step, rate in enumerate(rates):
        assert rate[0] == pytest.approx(closed_form(None, step), rel=1e-10), step
    assert rates[-1][0] == pytest.approx(low, rel=1e-10)   # the floor: max_lr / 25 / 1e4


def test_reduce_lr_on_plateau_waits_patience_epochs():
    opt = _optimizer()
    sched = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    losses = [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1]
    seen = []
    for loss in losses:
        opt.step()
        sched.step(loss)
        seen.append([g["lr"] for g in opt.param_groups])
    # best at epoch 1; epochs 2, 3 are patience; the 3rd bad epoch (4) halves; again at 7.
    factors = [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    for rates, f in zip(seen, factors):
        assert rates == pytest.approx([b * f for b in BASE], rel=1e-12)


def test_sequential_lr_switches_at_the_milestone():
    opt = _optimizer()
    warmup = S.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=4)
    decay = S.ExponentialLR(opt, gamma=0.9)
    _check(S.SequentialLR(opt, [warmup, decay], milestones=[4]),
           lambda b, e: b * (0.25 + 0.75 * e / 4) if e < 4 else b * 0.9 ** (e - 4))


def test_chained_scheduler_multiplies_the_factors():
    opt = _optimizer()
    chained = S.ChainedScheduler([S.StepLR(opt, step_size=5, gamma=0.5), S.ExponentialLR(opt, gamma=0.95)])
    _check(chained, lambda b, e: b * 0.5 ** (e // 5) * 0.95 ** e)


# ------------------------------------------------------------ optimizer steps ---

W0 = np.array([1.0, -2.0, 0.5, 3.0])
G1 = np.array([0.3, -0.1, 0.0, 2.0])
G2 = np.array([-0.2, 0.4, 1.0, 0.5])


def _steps(cls, grads, **kw):
    """Parameter values (float64) after one optimizer step per gradient in ``grads``."""
    w = nl.nn.Parameter(nl.tensor(W0.copy(), dtype=nl.float64))
    opt = cls([w], **kw)
    for g in grads:
        w.grad = nl.tensor(g.copy(), dtype=nl.float64)
        opt.step()
    return w.data.copy()


def test_sgd_step():
    assert np.allclose(_steps(nl.optim.SGD, [G1], lr=0.1), W0 - 0.1 * G1, rtol=0, atol=1e-15)


def test_sgd_weight_decay_momentum_and_nesterov_two_steps():
    lr, mu, wd = 0.1, 0.9, 0.01
    g1 = G1 + wd * W0
    w1 = W0 - lr * g1                     # the first step: the buffer starts as the gradient
    g2 = G2 + wd * w1
    buf = mu * g1 + g2
    assert np.allclose(_steps(nl.optim.SGD, [G1, G2], lr=lr, momentum=mu, weight_decay=wd),
                       w1 - lr * buf, rtol=1e-14, atol=1e-15)
    assert np.allclose(_steps(nl.optim.SGD, [G1, G2], lr=lr, momentum=mu, weight_decay=wd, nesterov=True),
                       _nesterov(lr, mu, wd), rtol=1e-14, atol=1e-15)


def _nesterov(lr, mu, wd):
    """Nesterov momentum written out: the step looks ahead along the updated buffer."""
    w, buf = W0.copy(), None
    for g in (G1, G2):
        g = g + wd * w
        buf = g if buf is None else mu * buf + g
        w = w - lr * (g + mu * buf)
    return w


def test_adam_first_step_moves_each_weight_by_lr():
    # After one step the bias-corrected moments are g and g^2: w -= lr * g / (|g| + eps).
    lr, eps = 0.01, 1e-8
    expected = W0 - lr * G1 / (np.abs(G1) + eps)
    assert np.allclose(_steps(nl.optim.Adam, [G1], lr=lr, eps=eps), expected, rtol=1e-12, atol=1e-15)


def test_adamw_decays_the_weight_before_the_adam_step():
    lr, wd, eps = 0.01, 0.1, 1e-8
    expected = W0 * (1 - lr * wd) - lr * G1 / (np.abs(G1) + eps)
    assert np.allclose(_steps(nl.optim.AdamW, [G1], lr=lr, weight_decay=wd, eps=eps), expected,
                       rtol=1e-12, atol=1e-15)


def test_adagrad_first_step():
    lr, eps = 0.1, 1e-10
    expected = W0 - lr * G1 / (np.sqrt(G1 * G1) + eps)
    assert np.allclose(_steps(nl.optim.Adagrad, [G1], lr=lr, eps=eps), expected, rtol=1e-12, atol=1e-15)


def test_rmsprop_first_step():
    lr, alpha, eps = 0.01, 0.99, 1e-8
    expected = W0 - lr * G1 / (np.sqrt((1 - alpha) * G1 * G1) + eps)
    assert np.allclose(_steps(nl.optim.RMSprop, [G1], lr=lr, alpha=alpha, eps=eps), expected,
                       rtol=1e-12, atol=1e-15)
