r"""
Choosing a learning rate and a batch size
=========================================

The learning rate and the batch size are the two hyperparameters every
training run has to set, and they are not independent: a larger batch gives a
less noisy gradient, which tolerates a larger step. This tutorial measures
instead of guessing. It runs the learning-rate range test
(:func:`nnlite.train.lr_finder`), estimates the *gradient noise scale* that
tells which batch sizes are worth their cost
(:func:`nnlite.train.gradient_noise_scale`), tries the linear scaling rule with
a warm-up, checks that gradient accumulation is an exact substitute for a large
batch, and watches a run converge with :func:`~nnlite.train.fit`'s history,
:class:`~nnlite.train.EarlyStopping` and
:class:`~nnlite.optim.lr_scheduler.ReduceLROnPlateau`.
"""

# %%
# The learning-rate range test
# ----------------------------
# Smith (2017) trains for a few hundred steps while the learning rate grows
# exponentially,
#
# .. math::
#
#    \eta_k = \eta_\text{start} \left(\frac{\eta_\text{end}}{\eta_\text{start}}\right)^{k/(K-1)},
#
# and records the loss. While :math:`\eta` is tiny nothing happens; then the
# loss falls, fastest where the step suits the curvature; then the steps
# overshoot and the loss explodes. The finder suggests the rate where the
# smoothed loss falls fastest per factor of :math:`\eta`, and puts the model and
# the optimizer back exactly as they were, so the test costs nothing but time.
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader
from nnlite.nn import functional as F
from nnlite.optim import lr_scheduler
from nnlite.train import EarlyStopping, evaluate, fit

started = time.perf_counter()
train_set, test_set = nl.data.MNIST1D(train=True), nl.data.MNIST1D(train=False)


def make_model(seed=0):
    nl.manual_seed(seed)
    return nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


model = make_model()
opt = nl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
before = [p.data.copy() for p in model.parameters()]
loader = DataLoader(train_set, batch_size=64, shuffle=True)
result = nl.train.lr_finder(model, F.cross_entropy, loader, start_lr=1e-5, end_lr=10.0, num_iters=200,
                            optimizer=opt)
print(result)

fig, ax = plt.subplots(figsize=(6.5, 3.6))
result.plot(ax=ax)
ax.set_ylim(top=min(max(result.raw_losses), 3 * result.losses[0]))
ax.set_title("LR range test: SGD with momentum 0.9 on MNIST-1D")
fig.tight_layout()

# The model and the optimizer were restored bit for bit.
assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
assert opt.param_groups[0]["lr"] == 0.1 and opt.state_dict()["state"] == {}
# The curve has the three parts: flat, falling, climbing again.
assert result.losses[-1] > min(result.losses) + 0.3 and abs(result.losses[10] - result.losses[0]) < 0.05
assert 1e-3 < result.suggestion < 1.0
suggested = result.suggestion

# %%
# Does the suggestion train well? Five epochs at a rate 30 times smaller, at
# the suggestion, and 30 times larger (where the range test already saw the
# loss climbing):


def train_at(lr, epochs=5, batch_size=64, seed=0, **kwargs):
    m = make_model(seed)
    o = nl.optim.SGD(m.parameters(), lr=lr, momentum=0.9)
    nl.manual_seed(seed + 100)
    history = fit(m, F.cross_entropy, o, DataLoader(train_set, batch_size=batch_size, shuffle=True),
                  epochs=epochs, progress=False, **kwargs)
    return m, history


final = {}
for factor in (1 / 30, 1, 30):
    m, history = train_at(suggested * factor)
    final[factor] = history["train_loss"][-1]
    print(f"lr {suggested * factor:8.4f}: training loss after 5 epochs {final[factor]:.3f}")
assert final[1] < final[1 / 30] - 0.1          # too small: slow
assert final[1] < final[30] or not np.isfinite(final[30])   # too large: unstable

# %%
# The gradient noise scale
# ------------------------
# A minibatch gradient :math:`g_B` is the true gradient :math:`G` plus noise
# whose covariance is :math:`\Sigma / B`, so
#
# .. math::
#
#    \mathbb{E}\,\lVert g_B\rVert^2 = \lVert G\rVert^2 + \frac{\operatorname{tr}\Sigma}{B}.
#
# McCandlish et al. (2018) call :math:`B_\text{simple} = \operatorname{tr}\Sigma /
# \lVert G\rVert^2` the *simple noise scale*: the batch size at which noise and
# signal are equally large. Below it, doubling the batch nearly halves the
# number of steps; above it, a bigger batch mostly spends more computation per
# step. First the formula itself, measured on the untrained model: the mean
# squared gradient norm falls like :math:`1/B` towards :math:`\lVert G\rVert^2`.
params = list(model.parameters())


def mean_squared_grad_norm(batch_size):
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True)
    values = []
    for x, y in loader:   # one epoch: every example once
        grads = nl.grad(F.cross_entropy(model(x), y), params)
        values.append(sum(float((g.data.astype(np.float64) ** 2).sum()) for g in grads))
    return np.mean(values)


nl.manual_seed(1)
sizes = np.array([8, 16, 32, 64, 128, 256])
measured = np.array([mean_squared_grad_norm(b) for b in sizes])
slope, intercept = np.polyfit(1 / sizes, measured, 1)      # E|g_B|^2 = |G|^2 + tr(Sigma) / B
noise = nl.train.gradient_noise_scale(model, F.cross_entropy, DataLoader(train_set, batch_size=32, shuffle=True))
print(noise)
print(f"from the fit over batch sizes: tr(Sigma) = {slope:.3g}, |G|^2 = {intercept:.3g}, "
      f"B_simple = {slope / intercept:.1f}")

fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(1 / sizes, measured, "o", label="measured mean of $|g_B|^2$")
ax.plot(1 / sizes, intercept + slope / sizes, "-", label="$|G|^2 + \\mathrm{tr}\\,\\Sigma / B$")
for b, v in zip(sizes, measured):
    ax.annotate(f"B={b}", (1 / b, v), fontsize=7, xytext=(4, -10), textcoords="offset points")
ax.set_xlabel("1 / batch size")
ax.set_ylabel("squared gradient norm")
ax.legend(fontsize=8)
fig.tight_layout()

residual = measured - (intercept + slope / sizes)
assert np.abs(residual).max() < 0.15 * measured.max()       # the 1/B law holds
assert slope > 0 and intercept > 0
assert 0.3 < noise.b_simple / (slope / intercept) < 3        # two estimates of one quantity

# %%
# The noise scale is not a constant of the problem. As the network starts to
# fit individual examples their gradients disagree more — :math:`\operatorname{tr}\Sigma`
# grows — while the mean gradient does not grow with it, so over a long run
# :math:`B_\text{simple}` tends to rise as the loss falls (McCandlish et al.
# observe it growing by orders of magnitude): larger batches become worth more
# later in training. The estimate is noisy; the growth of the noise itself is not.
trained, _ = train_at(suggested, epochs=8)
later = nl.train.gradient_noise_scale(trained, F.cross_entropy, DataLoader(train_set, batch_size=32, shuffle=True))
print(f"at initialization: {noise}\nafter 8 epochs:    {later}")
assert later.trace_covariance > 3 * noise.trace_covariance

# %%
# The linear scaling rule, with a warm-up
# ---------------------------------------
# Goyal et al. (2017): when the batch grows by a factor :math:`k`, multiply the
# learning rate by :math:`k` — one step of a :math:`k`-times larger batch then
# moves about as far as :math:`k` small steps did. The first steps, where the
# gradient changes quickly, cannot take the large rate, so the rate *warms up*
# linearly over the first epoch or so. Three runs of the same number of epochs:
# batch 32 at a base rate, batch 256 at the same rate (8 times fewer steps, and
# no faster), and batch 256 at 8 times the rate after a linear warm-up.
base_lr, epochs = suggested / 8, 6
runs = {}
_, runs["batch 32, lr"] = train_at(base_lr, epochs, batch_size=32)
_, runs["batch 256, lr"] = train_at(base_lr, epochs, batch_size=256)
steps_per_epoch = len(DataLoader(train_set, batch_size=256))
m = make_model()
o = nl.optim.SGD(m.parameters(), lr=8 * base_lr, momentum=0.9)
warm = lr_scheduler.LinearLR(o, start_factor=1 / 8, total_iters=steps_per_epoch)
nl.manual_seed(100)
runs["batch 256, 8 lr + warm-up"] = fit(m, F.cross_entropy, o, DataLoader(train_set, batch_size=256, shuffle=True),
                                        epochs=epochs, scheduler=warm, scheduler_step="batch", progress=False)

fig, ax = plt.subplots(figsize=(6, 3.4))
for name, h in runs.items():
    ax.plot(h["epoch"], h["train_loss"], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.legend(fontsize=8)
fig.tight_layout()
losses = {name: h["train_loss"][-1] for name, h in runs.items()}
print({k: round(v, 3) for k, v in losses.items()})
assert losses["batch 256, lr"] > losses["batch 32, lr"] + 0.1          # same rate, 8x fewer steps: behind
assert losses["batch 256, 8 lr + warm-up"] < losses["batch 256, lr"] - 0.1   # scaling the rate catches up

# %%
# Gradient accumulation is a large batch
# --------------------------------------
# When a large batch does not fit in memory, ``fit(accumulate_grad_batches=k)``
# adds up the gradients of :math:`k` small batches before one step. Each batch's
# mean loss is weighted by its share of the examples of the group,
# :math:`n_b / \sum n`, so even a short last batch (4000 = 15 x 256 + 160) gives
# exactly the gradient of the whole group, and the run matches the large-batch
# run up to float32 rounding.
big, _ = train_at(0.05, epochs=1, batch_size=256)
m = make_model()
o = nl.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
nl.manual_seed(100)
fit(m, F.cross_entropy, o, DataLoader(train_set, batch_size=64, shuffle=True), epochs=1,
    accumulate_grad_batches=4, progress=False)
gap = max(float(np.abs(a.data - b.data).max()) for a, b in zip(big.parameters(), m.parameters()))
print(f"largest parameter difference, 4 x 64 accumulated against 256: {gap:.2e}")
assert gap < 1e-4

# %%
# Watching a run converge
# -----------------------
# :func:`~nnlite.train.fit` returns a ``history`` with the training and
# validation metrics of every epoch. Two helpers read it while the run goes:
# :class:`~nnlite.train.EarlyStopping` ends the run when the validation loss has
# not improved for ``patience`` epochs, and
# :class:`~nnlite.optim.lr_scheduler.ReduceLROnPlateau` halves the learning rate
# whenever it stalls. The validation set here is the test split.
m = make_model()
o = nl.optim.SGD(m.parameters(), lr=suggested, momentum=0.9)
plateau = lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1)
stopper = EarlyStopping(monitor="val_loss", patience=4)
nl.manual_seed(100)
history = fit(m, F.cross_entropy, o, DataLoader(train_set, batch_size=64, shuffle=True), epochs=40,
              val_loader=DataLoader(test_set, batch_size=500), scheduler=plateau, callbacks=[stopper],
              progress=False)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
ax1.plot(history["epoch"], history["train_loss"], label="train")
ax1.plot(history["epoch"], history["val_loss"], label="validation")
best = int(np.argmin(history["val_loss"]))
ax1.axvline(history["epoch"][best], color="k", ls=":", label="best validation")
ax1.set_xlabel("epoch")
ax1.set_ylabel("loss")
ax1.legend(fontsize=8)
ax2.step(history["epoch"], history["lr"], where="post")
ax2.set_yscale("log")
ax2.set_xlabel("epoch")
ax2.set_ylabel("learning rate")
fig.tight_layout()
print(f"stopped after {len(history['epoch'])} epochs (early: {history['stopped_early']}); "
      f"best validation loss {min(history['val_loss']):.3f} at epoch {history['epoch'][best]}")
assert history["stopped_early"] and len(history["epoch"]) < 40
assert len(history["epoch"]) - 1 - best >= 4                     # stopped after `patience` bad epochs
assert min(history["lr"]) < suggested                              # the plateau lowered the rate
assert history["train_loss"][-1] < history["val_loss"][-1]        # the gap that early stopping watches
assert evaluate(m, F.cross_entropy, DataLoader(test_set, batch_size=500))["accuracy"] > 0.55
print(f"tutorial ran in {time.perf_counter() - started:.1f} s")

# %%
# Summary
# -------
# * The range test finds, in one short run, the rate where the loss falls
#   fastest; below it training is slow, far above it unstable.
# * The squared gradient norm follows :math:`\lVert G\rVert^2 + \operatorname{tr}\Sigma/B`;
#   their ratio, the noise scale, says up to which batch size a larger batch
#   buys proportionally fewer steps, and it grows during training.
# * A larger batch needs a larger learning rate (linear scaling) and a
#   warm-up; gradient accumulation gives the same steps as the large batch.
# * ``fit``'s history, early stopping and a plateau schedule turn
#   "when should training stop?" into a rule.
#
# Exercises
# ---------
# 1. Run the range test with Adam (``optimizer=nl.optim.Adam(...)``). How does
#    the suggestion compare with SGD's, and why is it so much smaller?
# 2. Measure :math:`B_\text{simple}` after 1, 2, 4 and 8 epochs and plot it. Does
#    it grow like the inverse of the training loss?
# 3. Repeat the linear-scaling experiment without the warm-up. At which factor
#    :math:`k` does the run start to diverge?
# 4. Change ``patience`` of the early stopping to 1 and to 10. Which final
#    validation loss is better, and what did each cost in epochs?
