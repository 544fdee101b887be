r"""
Learning without forgetting
===========================

Train a network on one task, then on another, and it forgets the first: the
gradient of the new task's loss moves the very parameters the old task relied
on. This is **catastrophic forgetting** (McCloskey & Cohen 1989). This
tutorial measures it on a sequence of MNIST-1D tasks and tries the three
classic remedies, each a different idea about parameters:

* protect the important ones — **elastic weight consolidation** (EWC);
* keep rehearsing a little of the past — **experience replay**;
* never touch trained ones again, add new ones — **progressive networks**.
"""

# %%
# A sequence of tasks and the accuracy matrix
# -------------------------------------------
# Split MNIST-1D cuts the ten classes into five tasks of two: {0, 1}, {2, 3},
# ..., {8, 9}. A learner sees the tasks one after another, each for a few
# epochs, and never sees an old task's data again. After task :math:`i` it is
# tested on every task :math:`j`, which fills the **accuracy matrix**
# :math:`R_{ij}` (Lopez-Paz & Ranzato 2017). Its last row gives the average
# accuracy, and the drop from the diagonal to the last row the backward
# transfer:
#
# .. math::
#
#    \mathrm{ACC} = \frac1T \sum_j R_{T-1,j}, \qquad
#    \mathrm{BWT} = \frac1{T-1} \sum_{j<T-1} \left(R_{T-1,j} - R_{jj}\right).
#
# Negative BWT is forgetting. Two settings: in the *task-incremental* one the
# learner is told the task and picks between its two classes; in the
# *class-incremental* one it must pick among all ten.
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import continual
from nnlite.nn import functional as F
from nnlite.train import fit

start = time.perf_counter()
tasks = continual.split_mnist1d()
print([t.classes for t in tasks], [len(t.train) for t in tasks])

naive_task = continual.train_sequence("naive", tasks, setting="task")
naive_class = continual.train_sequence("naive", tasks, setting="class")
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4))
continual.plot_accuracy_matrix(naive_task["R"], axes[0], f"naive, task-incremental\nBWT {naive_task['bwt']:+.2f}")
continual.plot_accuracy_matrix(naive_class["R"], axes[1], f"naive, class-incremental\nBWT {naive_class['bwt']:+.2f}")
fig.tight_layout()
print(f"task-incremental:  ACC {naive_task['acc']:.3f}  BWT {naive_task['bwt']:+.3f}")
print(f"class-incremental: ACC {naive_class['acc']:.3f}  BWT {naive_class['bwt']:+.3f}")
assert naive_class["bwt"] < -0.6 and naive_class["acc"] < 0.3
assert naive_task["bwt"] < -0.05

# %%
# In the class-incremental setting the forgetting is total: after each task
# the network answers only with that task's classes, so :math:`R` is zero
# off the diagonal. Told the task, the learner keeps much more, yet its
# accuracy on old tasks still falls by over ten points on average.
#
# Which parameters matter? The Fisher information
# -----------------------------------------------
# EWC (Kirkpatrick et al. 2017) asks how much the old task's loss would rise
# if a parameter moved. The diagonal of the Fisher information,
# :math:`F_i = \mathbb{E}\left[(\partial \ell / \partial \theta_i)^2\right]`,
# measures that curvature cheaply from per-sample gradients
# (:func:`nnlite.analysis.fisher_diagonal`). Training on a new task then adds
# a spring to each parameter, as stiff as it was important:
#
# .. math::
#
#    L(\theta) = L_{\text{new}}(\theta) + \frac{\lambda}{2}\sum_i F_i\,(\theta_i - \theta^*_i)^2 .
#
# Here is the Fisher of the first layer of a network trained on task 0.
nl.manual_seed(0)
model = continual.mlp()
x0, y0, _ = tasks[0].train.tensors
loader = nl.data.DataLoader(nl.data.TensorDataset(x0, y0), batch_size=32, shuffle=True, generator=nl.Generator(0))
fit(model, F.cross_entropy, nl.optim.Adam(model.parameters(), lr=3e-3), loader, epochs=5, progress=False)
ewc = continual.EWC(model, ewc_lambda=1000.0)
ewc.consolidate(F.cross_entropy, (x0[:200], y0[:200]))
fisher = ewc.importance()
first = fisher["0.weight"]
flat = np.sort(np.concatenate([f.ravel() for f in fisher.values()]))[::-1]
top_share = flat[:len(flat) // 10].sum() / flat.sum()
print(f"{len(flat)} parameters; the 10% most important hold {100 * top_share:.0f}% of the total Fisher")

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
image = axes[0].imshow(np.log10(first + 1e-12), aspect="auto", cmap="magma", vmin=-8)
axes[0].set_xlabel("input position")
axes[0].set_ylabel("hidden unit")
axes[0].set_title("log10 Fisher, first layer", fontsize=9)
fig.colorbar(image, ax=axes[0])
axes[1].plot(np.arange(1, len(flat) + 1) / len(flat), np.cumsum(flat) / flat.sum())
axes[1].set_xlabel("fraction of parameters (most important first)")
axes[1].set_ylabel("share of total Fisher")
fig.tight_layout()
assert top_share > 0.5

# The penalty is exactly the formula: zero at θ*, and λ/2 Σ F (θ - θ*)² after a move.
assert ewc.penalty().item() == 0.0
with nl.no_grad():
    model[0].weight.data += 0.01
expected = 1000.0 / 2 * float((first.astype(np.float64) * 0.01 ** 2).sum())
assert np.isclose(ewc.penalty().item(), expected, rtol=1e-4)

# %%
# A few weights carry most of the Fisher: EWC can hold those still and leave
# the rest free for the next task.
#
# Rehearsal from a reservoir
# --------------------------
# Experience replay keeps a small buffer of past examples and mixes as many
# of them into every new batch. Which examples? A **reservoir** (Vitter 1985)
# keeps a uniform sample of everything seen so far without knowing how long
# the stream will be: the :math:`n`-th example replaces a random slot with
# probability :math:`\text{capacity}/n`. After five tasks, each holds about a
# fifth of the buffer:
buffer = continual.ReservoirBuffer(200, nl.Generator(0))
for task in tasks:
    buffer.add(*task.train.arrays)
shares = np.bincount(buffer.arrays[2], minlength=5) / len(buffer)
print("buffer share per task:", np.round(shares, 3))
assert np.all(np.abs(shares - 0.2) < 0.08)

# %%
# Columns that never change
# -------------------------
# A progressive network (Rusu et al. 2016) gives each task its own column and
# freezes the old ones; lateral adapters feed the old columns' hidden layers
# into the new one, so earlier features can still help. Old outputs cannot
# change, so BWT is exactly zero — paid for in parameters.
progressive = continual.train_sequence("progressive", tasks, setting="task")
print("parameters after each task:", progressive["parameters"])
R = np.array(progressive["R"])
assert progressive["bwt"] == 0.0 and all(np.all(R[j:, j] == R[j, j]) for j in range(5))

# Where the growth comes from: column k has its own MLP plus adapters from the
# hidden layers of the k columns before it.
net = continual.ProgressiveNetwork(40, hidden_sizes=(100, 100), num_outputs=10)
for _ in tasks:
    net.add_column()
print("parameters per column:", net.column_parameters())
assert np.array_equal(np.cumsum(net.column_parameters()), progressive["parameters"])
assert np.all(np.diff(net.column_parameters()) == 100 * 100 + 100 * 10)   # one more set of adapters each

# %%
# All methods, task-incremental
# -----------------------------
# EWC (:math:`\lambda = 1000`, Fisher from 200 examples per task), online EWC
# (one running Fisher, decayed by 0.9 per task; Schwarz et al. 2018) and
# replay (a 200-example reservoir) use the same network as naive fine-tuning.
runs = {"naive": naive_task}
for method in ("ewc", "online_ewc", "replay"):
    runs[method] = continual.train_sequence(method, tasks, setting="task")
runs["progressive"] = progressive
fig, axes = plt.subplots(1, len(runs), figsize=(14, 3.2))
for ax, (method, out) in zip(axes, runs.items()):
    continual.plot_accuracy_matrix(out["R"], ax, f"{method}\nACC {out['acc']:.2f}  BWT {out['bwt']:+.2f}")
fig.tight_layout()
for method, out in runs.items():
    print(f"{method:<12} ACC {out['acc']:.3f}  BWT {out['bwt']:+.3f}  parameters {out['parameters'][-1]:,}")
for method in ("ewc", "online_ewc", "replay"):
    assert abs(runs[method]["bwt"]) < 0.5 * abs(naive_task["bwt"])
    assert runs[method]["acc"] > naive_task["acc"]

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, 6), progressive["parameters"], "o-", label="progressive network")
ax.plot(range(1, 6), runs["naive"]["parameters"], "s-", label="one network (naive, EWC, replay)")
ax.set_xlabel("tasks learnt")
ax.set_ylabel("parameters")
ax.legend()
fig.tight_layout()
growth = np.diff(progressive["parameters"])
assert np.all(np.diff(growth) > 0)          # each new column has adapters to every earlier one

# %%
# In the class-incremental setting the task is not given, so progressive
# networks do not apply, and the remedies that work when told the task fall
# short: EWC keeps weights near old values, but the shared output layer still
# learns that only the newest classes occur. Rehearsal reminds it that old
# classes exist, and helps more.
ewc_class = continual.train_sequence("ewc", tasks, setting="class")
replay_class = continual.train_sequence("replay", tasks, setting="class")
for method, out in (("naive", naive_class), ("ewc", ewc_class), ("replay", replay_class)):
    print(f"class-incremental {method:<7} ACC {out['acc']:.3f}  BWT {out['bwt']:+.3f}")
assert replay_class["acc"] > ewc_class["acc"] > naive_class["acc"]
assert replay_class["bwt"] < -0.4      # still far from remembering everything

elapsed = time.perf_counter() - start
print(f"tutorial ran in {elapsed:.1f} s")

# %%
# Summary
# -------
# * Trained on tasks in sequence, a network forgets: completely when it must
#   choose among all classes, partly when told the task.
# * The Fisher diagonal picks out the few parameters an old task depends on;
#   EWC's quadratic penalty holds them and removes almost all forgetting in the
#   task-incremental setting.
# * A reservoir of 200 examples, rehearsed with every batch, does the same,
#   and helps most when the task is not given — though far from enough.
# * Progressive networks forget nothing by construction, at the cost of a
#   parameter count that grows faster than the number of tasks.
#
# Exercises
# ---------
# 1. Sweep EWC's ``ewc_lambda`` over 10, 100, 1000, 10000 in the
#    task-incremental setting and plot ACC and BWT against it. Where does
#    protecting old tasks start to stop the new ones from being learnt?
# 2. Run the methods on :func:`~nnlite.continual.permuted_mnist1d` (setting
#    ``"domain"``). Which method wins there, and why does EWC's ACC drop?
# 3. Replace the reservoir by a buffer that keeps only the newest 200
#    examples. What happens to BWT?
# 4. Count how many parameters a progressive network would have after 20
#    tasks, and compare with a single network of the same accuracy.
