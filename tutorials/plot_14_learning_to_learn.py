r"""
Learning to learn
=================

Ordinary training finds parameters that solve *one* task. Meta-learning looks
for parameters that make *new* tasks quick to learn: an initialisation from
which a few gradient steps on a handful of examples already fit (few-shot
learning). This tutorial follows the sine-wave experiment of MAML (Finn,
Abbeel & Levine 2017) and shows

* parameters passed *into* a model, so the model can be run with adapted
  copies of them (:func:`nnlite.func.functional_call`);
* MAML, whose meta-gradient differentiates *through* the inner gradient steps
  (a second derivative), against its first-order approximation and against a
  network simply pre-trained on all tasks;
* Meta-SGD, which also learns a learning rate for every parameter —
  meta-parameters stored as Parameters of kind ``"meta"``.

The settings are smaller than the paper's (about a thousand meta-iterations
instead of 70,000) so that the tutorial runs in well under a minute;
``nnlite train maml-sinusoid`` runs the longer version.
"""

# %%
# A family of tasks
# -----------------
# Every task is a sine wave :math:`y = A\sin(x - \varphi)` with amplitude
# :math:`A \sim U[0.1, 5]` and phase :math:`\varphi \sim U[0, \pi]`. The learner
# sees K = 10 points of a new wave (the *support* set) and is scored on other
# points of the same wave (the *query* set).
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import meta
from nnlite.nn import functional as F

start = time.perf_counter()
train_tasks = meta.SinusoidTasks(shots=10, seed=0)
test_tasks = meta.SinusoidTasks(shots=10, query=100, seed=1000)
test = test_tasks.sample(100)            # the same 100 new waves for every learner
grid, waves = test_tasks.curve(test)

fig, ax = plt.subplots(figsize=(6, 3))
for t in range(4):
    ax.plot(grid, waves[t], lw=1)
    ax.scatter(test.support_x.data[t, :, 0], test.support_y.data[t, :, 0], s=12)
ax.set(xlabel="x", ylabel="y", title="four tasks and their K = 10 support points")
fig.tight_layout()

# %%
# Parameters as an argument
# -------------------------
# An inner gradient step produces *new* parameters :math:`\phi = \theta -
# \alpha\nabla_\theta L(\theta)` that are tensors computed from
# :math:`\theta`, not the module's own Parameters. ``functional_call`` runs a
# module with such a dict in place of its parameters and leaves the module
# untouched; gradients flow to whatever tensors were given.
nl.manual_seed(0)
net = meta.sinusoid_mlp()                  # the paper's 1-40-40-1 ReLU network
theta = dict(net.named_parameters())
x, y = test.support_x[0], test.support_y[0]
loss = F.mse_loss(nl.func.functional_call(net, theta, (x,)), y)
grads = nl.grad(loss, list(theta.values()), create_graph=True)
phi = {k: p - 0.01 * g for (k, p), g in zip(theta.items(), grads)}
after = F.mse_loss(nl.func.functional_call(net, phi, (x,)), y)
print(f"support loss {float(loss.data):.3f} -> {float(after.data):.3f} after one step")
assert float(after.data) < float(loss.data)
# The loss after the step is a function of theta, through the gradient itself:
(meta_grad,) = nl.grad(after, [net[0].weight])
assert meta_grad.shape == net[0].weight.shape

# %%
# MAML and the pre-trained baseline
# ---------------------------------
# MAML's objective is the query loss *after* adaptation, averaged over a
# meta-batch of 25 tasks, and it is minimised with Adam:
#
# .. math::
#
#    \min_\theta \frac1T\sum_t L^{q}_t\bigl(\theta - \alpha\nabla_\theta L^{s}_t(\theta)\bigr),
#    \qquad
#    \nabla_\theta L^{q}(\phi) = \bigl(I - \alpha\nabla^2_\theta L^{s}(\theta)\bigr)\nabla_\phi L^{q}(\phi).
#
# The baseline is the natural alternative: one network trained on the points
# of all tasks at once, then fine-tuned the same way (SGD, learning rate 0.01,
# on the K support points).
ITERATIONS = 1000


def maml_train(first_order, iterations=ITERATIONS):
    nl.manual_seed(0)
    learner = meta.MAML(meta.sinusoid_mlp(), inner_lr=0.01, first_order=first_order, task_batched=True)
    optimizer = nl.optim.Adam(learner.parameters(), lr=1e-3)
    tasks = meta.SinusoidTasks(shots=10, seed=0)
    for _ in range(iterations):
        loss = learner.meta_loss(tasks.sample(25))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return learner.model


def curve(model, steps=10):
    return meta.InnerLoop(model, inner_lr=0.01, task_batched=True).adaptation_curve(test, steps)


maml_model = maml_train(first_order=False)
nl.manual_seed(0)
baseline_model = meta.sinusoid_mlp()
meta.pretrain(baseline_model, train_tasks, ITERATIONS)
maml_curve, baseline_curve = curve(maml_model), curve(baseline_model)
print(f"MAML     query MSE: {maml_curve[0]:.3f} before, {maml_curve[1]:.3f} after 1 step, "
      f"{maml_curve[10]:.3f} after 10")
print(f"baseline query MSE: {baseline_curve[0]:.3f} before, {baseline_curve[1]:.3f} after 1 step, "
      f"{baseline_curve[10]:.3f} after 10")
assert maml_curve[1] < 0.6 * baseline_curve[1] and maml_curve[10] < 0.6 * baseline_curve[10]

# %%
# What one and ten steps do, on one new wave. MAML's initialisation is not a
# good model of any wave by itself; its value is where one step takes it.
task = 0


def adapted_prediction(model, steps):
    loop = meta.InnerLoop(model, inner_lr=0.01)
    params = loop.adapt(test.support_x[task], test.support_y[task], steps=steps) if steps else \
        dict(model.named_parameters())
    with nl.no_grad():
        return loop.forward(params, nl.tensor(grid[:, None].astype(np.float32))).data[:, 0]


fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
for ax, (name, model) in zip(axes, (("MAML", maml_model), ("pre-trained", baseline_model))):
    ax.plot(grid, waves[task], "k", lw=2, label="true wave")
    ax.scatter(test.support_x.data[task, :, 0], test.support_y.data[task, :, 0], c="k", s=15)
    for steps, style in ((0, ":"), (1, "--"), (10, "-")):
        ax.plot(grid, adapted_prediction(model, steps), style, label=f"{steps} steps")
    ax.set(title=name, xlabel="x")
axes[0].legend(fontsize=8)
fig.tight_layout()

# %%
# The second-order term
# ---------------------
# First-order MAML drops the Hessian term: its meta-gradient is the query
# gradient at the adapted parameters. At one and the same :math:`\theta` the
# two meta-gradients differ; over training the difference matters little on
# this problem, as the paper also found.
probe = train_tasks.sample(25)
directions = []
for first_order in (False, True):
    maml_model.zero_grad()
    meta.MAML(maml_model, inner_lr=0.01, first_order=first_order, task_batched=True).meta_loss(probe).backward()
    directions.append(np.concatenate([p.grad.data.ravel() for p in maml_model.parameters()]))
cosine = directions[0] @ directions[1] / np.linalg.norm(directions[0]) / np.linalg.norm(directions[1])
print(f"cosine between the second- and first-order meta-gradients: {cosine:.4f}")
assert cosine < 0.9999

fomaml_curve = curve(maml_train(first_order=True))
fig, ax = plt.subplots(figsize=(5, 3))
for name, c in (("MAML", maml_curve), ("first-order MAML", fomaml_curve), ("pre-trained", baseline_curve)):
    ax.plot(range(11), c, marker="o", ms=3, label=name)
ax.set(xlabel="gradient steps at test time", ylabel="query MSE (100 new waves)", yscale="log")
ax.legend()
fig.tight_layout()
print(f"first-order MAML: {fomaml_curve[1]:.3f} after 1 step, {fomaml_curve[10]:.3f} after 10")
assert fomaml_curve[10] < 0.6 * baseline_curve[10]

# %%
# Meta-SGD: learning the learning rates
# -------------------------------------
# Meta-SGD (Li et al. 2017) replaces the scalar :math:`\alpha` by a tensor of
# the parameter's shape, :math:`\phi = \theta - \boldsymbol\alpha \odot
# \nabla_\theta L^{s}`, and learns it with :math:`\theta`. The rates are
# meta-parameters: Parameters of kind ``"meta"``, all starting at 0.01.
nl.manual_seed(0)
metasgd = meta.MetaSGD(meta.sinusoid_mlp(), inner_lr=0.01, task_batched=True)
optimizer = nl.optim.Adam(metasgd.parameters(), lr=1e-3)
for _ in range(ITERATIONS // 2):
    loss = metasgd.meta_loss(train_tasks.sample(25))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print({p.name: p.kind for p in metasgd.inner_lrs.values()})

fig, ax = plt.subplots(figsize=(5.5, 3))
for name, rate in metasgd.inner_lrs.items():
    ax.hist(rate.data.ravel(), bins=40, histtype="step", label=name)
ax.axvline(0.01, color="k", ls=":", lw=1)
ax.set(xlabel="learned inner learning rate", ylabel="entries", yscale="log")
ax.legend(fontsize=7)
fig.tight_layout()
with nl.no_grad():
    metasgd_mse = float(metasgd.meta_loss(test).data)
print(f"Meta-SGD query MSE after its one learned step: {metasgd_mse:.3f}")
rates = np.concatenate([r.data.ravel() for r in metasgd.inner_lrs.values()])
assert rates.std() > 1e-3 and rates.max() > 0.012   # the rates moved apart from 0.01
assert metasgd_mse < 0.6 * baseline_curve[1]

# %%
# Generating the parameters instead
# ---------------------------------
# A different answer to "new task, few examples": if the task can be
# *described* — here by its amplitude and phase — a hypernetwork (Ha et al.
# 2016) can output the whole target network's parameters from that
# description, :math:`\theta = h_\psi(z)`, with no gradient steps at test
# time. Only :math:`\psi` is learned, end to end through the generated
# weights.
nl.manual_seed(0)
hyper = meta.HyperNetwork(meta.sinusoid_mlp(hidden=20), embedding_dim=2, hidden=64)


def describe(batch):
    return nl.tensor(np.stack([batch.amplitude / 5, batch.phase / np.pi], 1).astype(np.float32))


optimizer = nl.optim.Adam(hyper.parameters(), lr=3e-3)
for _ in range(ITERATIONS // 2):
    batch = train_tasks.sample(25)
    loss = F.mse_loss(hyper(describe(batch), batch.support_x), batch.support_y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
with nl.no_grad():
    hyper_mse = float(F.mse_loss(hyper(describe(test), test.query_x), test.query_y).data)
generated = hyper.generate(describe(test)[0])
print(f"hypernetwork: {hyper.num_parameters()} parameters generate {hyper.num_generated} per task; "
      f"query MSE {hyper_mse:.3f} with no adaptation")
print({name: tuple(t.shape) for name, t in generated.items()})
assert hyper_mse < 0.5 * baseline_curve[10]

elapsed = time.perf_counter() - start
print(f"tutorial ran in {elapsed:.1f} s")

# %%
# Summary
# -------
# * Passing parameters to a module (``functional_call``) turns "the weights
#   after a gradient step" into an ordinary differentiable function of the
#   weights before it.
# * MAML learns an initialisation whose value is measured after adaptation:
#   on new sine waves it is several times better than a pre-trained network
#   after one step and after ten.
# * Its exact meta-gradient contains a Hessian-vector product; nnlite computes
#   it by differentiating the inner gradient (``create_graph=True``). The
#   first-order approximation points in a slightly different direction but
#   ends up almost as good here.
# * Meta-SGD learns one learning rate per parameter entry; they spread out
#   from their common start, and become parameters of the learning procedure.
# * A hypernetwork skips adaptation altogether and generates the parameters
#   from a description of the task — when such a description exists.
#
# Exercises
# ---------
# 1. Train MAML with two inner steps (``inner_steps=2``) and compare the
#    curves after 1 and 10 test-time steps.
# 2. Train on K = 5 shots and test with K = 10. Does the initialisation
#    transfer?
# 3. Give the hypernetwork a *learned* code per training wave instead of the
#    true amplitude and phase. How could a new wave's code be found from its
#    K points?
# 4. Which layer's learned Meta-SGD rates are largest? Explain it with the
#    size of that layer's gradients.
