r"""
Optimizers
==========

An optimizer turns gradients into parameter updates. The simplest rule steps
against the gradient; the others remember past gradients (momentum), give
every coordinate its own step size (AdaGrad, RMSprop), or both (Adam,
AdamW). This tutorial runs all seven of nnlite's variants on a 2-D loss
surface, where their paths can be seen, checks each path against the update
rule written out here in NumPy, trains a small network on MNIST-1D with each,
and plots the learning-rate schedules.
"""

# %%
# The update rules
# ----------------
# With gradient :math:`g_t = \nabla L(\theta_{t-1})` and learning rate
# :math:`\gamma`:
#
# .. math::
#
#    \begin{aligned}
#    \text{SGD:}\quad & \theta_t = \theta_{t-1} - \gamma g_t \\
#    \text{momentum:}\quad & b_t = \mu b_{t-1} + g_t, \quad \theta_t = \theta_{t-1} - \gamma b_t \\
#    \text{Nesterov:}\quad & b_t = \mu b_{t-1} + g_t, \quad \theta_t = \theta_{t-1} - \gamma (g_t + \mu b_t) \\
#    \text{AdaGrad:}\quad & s_t = s_{t-1} + g_t^2, \quad
#        \theta_t = \theta_{t-1} - \gamma\, g_t / (\sqrt{s_t} + \epsilon) \\
#    \text{RMSprop:}\quad & v_t = \alpha v_{t-1} + (1 - \alpha) g_t^2, \quad
#        \theta_t = \theta_{t-1} - \gamma\, g_t / (\sqrt{v_t} + \epsilon) \\
#    \text{Adam:}\quad & m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
#        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \\
#        & \theta_t = \theta_{t-1} - \gamma\, \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon} \\
#    \text{AdamW:}\quad & \theta_{t-1} \leftarrow (1 - \gamma\lambda)\, \theta_{t-1}
#        \text{, then the Adam step}
#    \end{aligned}
#
# AdamW's decay shrinks the weights directly instead of adding
# :math:`\lambda\theta` to the gradient, where Adam's normalisation would
# weaken it for coordinates with large gradients (Loshchilov & Hutter).
#
# Each rule, written independently in NumPy, so the tutorial can check
# nnlite's fused kernels against the equations:
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.optim import lr_scheduler


def numpy_path(rule, grad_fn, theta0, steps, lr, **h):
    theta = np.array(theta0, dtype=np.float64)
    state = {"b": None, "s": np.zeros(2), "v": np.zeros(2), "m": np.zeros(2)}
    path = [theta.copy()]
    for t in range(1, steps + 1):
        g = grad_fn(theta)
        if rule == "sgd":
            theta = theta - lr * g
        elif rule in ("momentum", "nesterov"):
            state["b"] = g.copy() if state["b"] is None else h["momentum"] * state["b"] + g
            step = g + h["momentum"] * state["b"] if rule == "nesterov" else state["b"]
            theta = theta - lr * step
        elif rule == "adagrad":
            state["s"] += g * g
            theta = theta - lr * g / (np.sqrt(state["s"]) + 1e-10)
        elif rule == "rmsprop":
            state["v"] = 0.99 * state["v"] + 0.01 * g * g
            theta = theta - lr * g / (np.sqrt(state["v"]) + 1e-8)
        elif rule in ("adam", "adamw"):
            if rule == "adamw":
                theta = theta * (1 - lr * h["weight_decay"])
            state["m"] = 0.9 * state["m"] + 0.1 * g
            state["v"] = 0.999 * state["v"] + 0.001 * g * g
            m_hat, v_hat = state["m"] / (1 - 0.9 ** t), state["v"] / (1 - 0.999 ** t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        path.append(theta.copy())
    return np.array(path)


# %%
# Paths on a 2-D loss surface
# ---------------------------
# An elongated valley,
# :math:`L(\theta) = \tfrac12 (\theta_1^2 + 25\,\theta_2^2)`, is steep across
# and shallow along. Plain SGD must keep its step below :math:`2/25` to stay
# stable across the valley, so it crawls along it. Heavy-ball momentum
# builds up speed but overshoots and swings around the minimum; Nesterov's
# look-ahead gradient brakes earlier. The adaptive methods rescale each
# coordinate, so both directions move at a similar pace.
H = np.array([1.0, 25.0])


def surface(theta):
    return 0.5 * np.sum(H * theta ** 2, axis=-1)


def surface_grad(theta):
    return H * theta


theta0, steps = [-4.0, 1.5], 60
setups = {
    "SGD": ("sgd", nl.optim.SGD, dict(lr=0.07)),
    "momentum": ("momentum", nl.optim.SGD, dict(lr=0.02, momentum=0.9)),
    "Nesterov": ("nesterov", nl.optim.SGD, dict(lr=0.02, momentum=0.9, nesterov=True)),
    "AdaGrad": ("adagrad", nl.optim.Adagrad, dict(lr=1.0)),
    "RMSprop": ("rmsprop", nl.optim.RMSprop, dict(lr=0.1)),
    "Adam": ("adam", nl.optim.Adam, dict(lr=0.3)),
    "AdamW": ("adamw", nl.optim.AdamW, dict(lr=0.3, weight_decay=0.5)),
}

paths = {}
for name, (rule, cls, hyper) in setups.items():
    theta = nn.Parameter(nl.tensor(theta0, dtype=nl.float64))
    opt = cls([theta], **hyper)
    path = [theta.data.copy()]
    for _ in range(steps):
        loss = 0.5 * (nl.tensor(H) * theta * theta).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        path.append(theta.data.copy())
    paths[name] = np.array(path)
    reference = numpy_path(rule, surface_grad, theta0, steps, hyper["lr"],
                           momentum=hyper.get("momentum"), weight_decay=hyper.get("weight_decay"))
    # nnlite's kernel and the equations above must trace the same path.
    assert np.allclose(paths[name], reference, rtol=1e-9, atol=1e-12), name
    print(f"{name:<9} final loss {surface(paths[name][-1]):.2e}   (matches the NumPy rule)")

start = surface(np.array(theta0))
for name, path in paths.items():
    assert surface(path[-1]) < 0.05 * start, name
# Nesterov's look-ahead damps the swings of heavy-ball momentum with the same lr and mu.
assert surface(paths["Nesterov"][-1]) < 0.1 * surface(paths["momentum"][-1])
# Per-coordinate steps: AdaGrad and RMSprop beat plain SGD by orders of magnitude here.
assert max(surface(paths["AdaGrad"][-1]), surface(paths["RMSprop"][-1])) < 1e-3 * surface(paths["SGD"][-1])

g1, g2 = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-2, 2, 160))
fig, ax = plt.subplots(figsize=(7, 4.6))
ax.contour(g1, g2, surface(np.stack([g1, g2], -1)), levels=np.geomspace(0.01, 60, 14), colors="0.8",
           linewidths=0.8)
for i, (name, path) in enumerate(paths.items()):
    ax.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, color=f"C{i}", label=name)
ax.plot(*theta0, "k*", ms=10)
ax.plot(0, 0, "k+", ms=12)
ax.set_xlabel(r"$\theta_1$")
ax.set_ylabel(r"$\theta_2$")
ax.set_title(f"{steps} steps on an elongated valley")
ax.legend(fontsize=8, loc="lower right", ncol=2)
fig.tight_layout()

# %%
# Two results above need a closer look.
#
# **Adam ends behind plain SGD.** Adam's step is :math:`\gamma\,\hat m_t /
# \sqrt{\hat v_t}`: about :math:`\gamma` in every coordinate, whatever that
# coordinate's curvature. SGD's rate 0.07 sits just under the stability limit
# :math:`2/25` of the steep direction, so its error there shrinks by
# :math:`|1 - 0.07 \cdot 25| = 0.75` per step. Adam's 0.3 is a large step in the
# steep direction, and with momentum 0.9 it swings across the valley for many
# steps; almost all of its final loss is that swing. It settles only as
# :math:`\sqrt{\hat v_t}` (an average over about 1000 steps) stays large while
# :math:`\hat m_t` shrinks — given 200 steps instead of 60, it converges too.
#
# **AdamW's win is an artefact of this surface.** Its decay pulls
# :math:`\theta` towards 0, and the minimum of this valley *is* at 0. Move the
# minimum to :math:`c = (2, -1)` and the same decay pulls away from it.


def valley_run(cls, hyper, center=(0.0, 0.0), n_steps=steps):
    theta = nn.Parameter(nl.tensor(theta0, dtype=nl.float64))
    opt = cls([theta], **hyper)
    c = nl.tensor(np.array(center))
    for _ in range(n_steps):
        opt.zero_grad()
        (0.5 * (nl.tensor(H) * (theta - c) * (theta - c)).sum()).backward()
        opt.step()
    return theta.data.copy()


adam_end = paths["Adam"][-1]
steep_share = 0.5 * H[1] * adam_end[1] ** 2 / surface(adam_end)
long_adam = valley_run(nl.optim.Adam, dict(lr=0.3), n_steps=200)
center = np.array([2.0, -1.0])
shifted = {name: valley_run(cls, hyper, center) for name, (_, cls, hyper) in setups.items()
           if name in ("Adam", "AdamW")}
print(f"Adam: {100 * steep_share:.0f}% of its final loss is in the steep direction; "
      f"after 200 steps the loss is {surface(long_adam):.1e}")
for name, end in shifted.items():
    print(f"minimum at (2, -1): {name:<6} ends at {np.round(end, 3)}, loss {surface(end - center):.2e}")
assert surface(adam_end) > surface(paths["SGD"][-1]) and steep_share > 0.9
assert surface(long_adam) < 1e-6
assert surface(shifted["AdamW"] - center) > 10 * surface(shifted["Adam"] - center)
assert np.linalg.norm(shifted["AdamW"]) < np.linalg.norm(center) - 0.5     # pulled towards 0

# %%
# Training curves on MNIST-1D
# ---------------------------
# The same seven optimizers train the same small network (40 → 128 → 10 with
# a ReLU) from the same initial values, with a learning rate suited to each,
# on MNIST-1D: 4000 one-dimensional signals of 40 samples, ten classes. Each
# run makes 400 steps of batches of 100 (10 epochs).
train_set, test_set = nl.data.MNIST1D(train=True), nl.data.MNIST1D(train=False)
x_test, y_test = test_set.tensors


def make_model():
    nl.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 10))


lrs = {"SGD": 0.1, "momentum": 0.05, "Nesterov": 0.05, "AdaGrad": 0.05, "RMSprop": 0.002,
       "Adam": 0.005, "AdamW": 0.005}
curves, accuracy = {}, {}
for name, (rule, cls, hyper) in setups.items():
    model = make_model()
    opt = cls(model.parameters(), **{**hyper, "lr": lrs[name]})
    loader = nl.data.DataLoader(train_set, batch_size=100, shuffle=True, generator=nl.Generator(0))
    losses = []
    for epoch in range(10):
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    curves[name] = np.array(losses)
    with nl.no_grad():
        accuracy[name] = float((model(x_test).data.argmax(-1) == y_test.data).mean())
    print(f"{name:<9} last-epoch loss {curves[name][-40:].mean():.3f}   test accuracy {accuracy[name]:.1%}")

fig, ax = plt.subplots(figsize=(7, 3.8))
kernel = np.ones(20) / 20
for i, (name, losses) in enumerate(curves.items()):
    ax.plot(np.convolve(losses, kernel, mode="valid"), color=f"C{i}", label=f"{name} ({accuracy[name]:.0%})")
ax.set_xlabel("step")
ax.set_ylabel("training loss (moving average of 20)")
ax.set_title("MNIST-1D, 40-128-10 MLP")
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()

for name, losses in curves.items():
    assert losses[-40:].mean() < 0.8 * losses[:10].mean(), name
    assert accuracy[name] > 0.25, name       # chance is 10%
assert accuracy["Adam"] > 0.4

# %%
# Learning-rate schedules
# -----------------------
# A schedule changes :math:`\gamma` as training goes on: large steps early to
# make progress, small steps late to settle. A scheduler edits the
# optimizer's ``param_groups[i]["lr"]`` each time ``scheduler.step()`` is
# called. With :math:`\gamma_0` the base rate and :math:`T` the total:
#
# .. math::
#
#    \text{step: } \gamma_t = \gamma_0\, g^{\lfloor t / s \rfloor}, \qquad
#    \text{exponential: } \gamma_t = \gamma_0\, g^t, \qquad
#    \text{cosine: } \gamma_t = \tfrac12 \gamma_0 \bigl(1 + \cos(\pi t / T)\bigr).
#
# Warm-up followed by cosine decay (a LinearLR then a CosineAnnealingLR
# joined by SequentialLR) is the usual transformer recipe; OneCycleLR rises to
# a peak and anneals far below the start.
T, base = 100, 0.1


def schedule(make):
    p = nn.Parameter(nl.zeros(1))
    opt = nl.optim.SGD([p], lr=base)
    sched = make(opt)
    values = []
    for _ in range(T):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(values)


schedules = {
    "StepLR(30, 0.5)": schedule(lambda o: lr_scheduler.StepLR(o, step_size=30, gamma=0.5)),
    "ExponentialLR(0.97)": schedule(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.97)),
    "CosineAnnealingLR": schedule(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=T)),
    "warm-up + cosine": schedule(lambda o: lr_scheduler.SequentialLR(
        o, [lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
            lr_scheduler.CosineAnnealingLR(o, T_max=T - 10)], milestones=[10])),
    "OneCycleLR": schedule(lambda o: lr_scheduler.OneCycleLR(o, max_lr=base, total_steps=T)),
}

fig, ax = plt.subplots(figsize=(7, 3.6))
for name, values in schedules.items():
    ax.plot(values, label=name)
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.legend(fontsize=8)
fig.tight_layout()

t = np.arange(T)
assert np.allclose(schedules["StepLR(30, 0.5)"], base * 0.5 ** (t // 30))
assert np.allclose(schedules["ExponentialLR(0.97)"], base * 0.97 ** t)
assert np.allclose(schedules["CosineAnnealingLR"], 0.5 * base * (1 + np.cos(np.pi * t / T)))
warm = schedules["warm-up + cosine"]
assert np.isclose(warm[0], 0.1 * base) and np.isclose(warm[10], base) and warm[-1] < 0.01 * base
one = schedules["OneCycleLR"]
assert np.isclose(one.max(), base, rtol=1e-3) and 25 <= int(one.argmax()) <= 31
assert np.isclose(one[0], base / 25) and one[-1] < base / 1000

# %%
# Summary
# -------
# * :class:`~nnlite.optim.SGD` (plain, with momentum and with Nesterov),
#   :class:`~nnlite.optim.Adagrad`, :class:`~nnlite.optim.RMSprop`,
#   :class:`~nnlite.optim.Adam` and :class:`~nnlite.optim.AdamW` each trace
#   the same path on the valley as their update rule written out in NumPy.
# * On the elongated valley SGD's step must stay below :math:`2/25`, so it
#   crawls along the shallow direction; Nesterov damps the swings of heavy-ball
#   momentum, and AdaGrad and RMSprop, which give each coordinate its own step,
#   end more than a thousand times lower than SGD.
# * Adam steps about :math:`\gamma` in every coordinate, so after 60 steps it
#   is still swinging across the steep direction, behind SGD; after 200 it has
#   converged. AdamW's decay helps only because the minimum is at 0: moved to
#   :math:`(2, -1)`, the decay pulls away from it.
# * On MNIST-1D all seven train the same network from the same start, each
#   with its own learning rate: the training loss falls, and the test accuracy
#   ends well above the 10% of chance.
# * A scheduler from :mod:`~nnlite.optim.lr_scheduler` rewrites the
#   optimizer's ``param_groups[i]["lr"]`` at every ``scheduler.step()``; the
#   step, exponential and cosine schedules follow their formulas, and
#   OneCycleLR rises to its peak and ends far below where it started.
#
# Exercises
# ---------
# 1. On the valley, raise SGD's rate to 0.085, above :math:`2/25`. What happens
#    along the steep direction?
# 2. Give Adam a cosine schedule over 200 steps on the valley. How does its
#    final loss compare with constant-rate Adam over the same 200 steps?
# 3. Train the MNIST-1D network with AdamW at ``weight_decay`` 0, 0.01 and 0.1.
#    Does the decay change the test accuracy after 10 epochs?
# 4. Find each optimizer's best rate on MNIST-1D with
#    ``nl.train.lr_finder`` (tutorial 16) instead of the hand-picked ones.
