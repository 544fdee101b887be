r"""
Over- and under-fitting: regularisation balance
===============================================

A network with many more parameters than training examples can memorise the
examples: the training accuracy reaches 100% while the accuracy on new data
stalls — *over-fitting*. Regularisation constrains the parameters so that they
fit the pattern rather than the examples; too much of it and they cannot fit
even the training set — *under-fitting*. This tutorial over-fits on purpose (400
digit images, 30% of them with wrong labels, for an 85,000-parameter network),
then compares L1 and L2
penalties, decoupled weight decay, dropout, DropConnect and early stopping by
the gap between training and validation accuracy in :func:`~nnlite.train.fit`'s
history, shows under-fitting from too strong a decay, and repairs the
over-confident probabilities of the over-fitted network with temperature
scaling (:mod:`nnlite.calibration`).
"""

# %%
# The regularisers
# ----------------
# With data loss :math:`L(\theta)`:
#
# .. math::
#
#    \begin{aligned}
#    \text{L2 penalty:}\quad & L(\theta) + \tfrac{\lambda}{2} \lVert\theta\rVert_2^2
#       && \text{(gradient } \lambda\theta\text{: shrinks every weight in proportion)} \\
#    \text{L1 penalty:}\quad & L(\theta) + \lambda \lVert\theta\rVert_1
#       && \text{(gradient } \lambda\,\mathrm{sign}(\theta)\text{: pushes small weights to exactly 0)} \\
#    \text{decoupled decay:}\quad & \theta \leftarrow (1 - \eta\lambda)\,\theta \text{ after each step}
#       && \text{(AdamW: not rescaled by Adam's per-coordinate step sizes)}
#    \end{aligned}
#
# Dropout zeroes each hidden *activation* with probability :math:`p` during
# training; DropConnect (:class:`~nnlite.nn.DropConnectLinear`) zeroes each
# *weight* instead — the "random parameter zeroing" of the concept map. Both
# rescale the survivors by :math:`1/(1-p)` so the eval-mode network is the
# expected one. Early stopping keeps the parameters of the epoch with the best
# validation score. Only the weights are penalised here
# (:func:`~nnlite.optim.param_groups_by_kind` would do the same for decay):
# biases and norm scales carry no capacity worth limiting.
import copy
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import calibration, nn
from nnlite.data import DataLoader, Digits, TensorDataset
from nnlite.nn import functional as F
from nnlite.nn.utils import l1_penalty, l2_penalty
from nnlite.nn.utils.parametrizations import spectral_norm, weight_norm
from nnlite.train import EarlyStopping, fit

started = time.perf_counter()
train_x, clean_y = next(iter(DataLoader(Digits(train=True), batch_size=400)))   # 400 8x8 digits
rng = np.random.default_rng(0)
corrupted = rng.random(400) < 0.3                       # 30% of the labels replaced by random ones
noisy = clean_y.data.copy()
noisy[corrupted] = rng.integers(0, 10, int(corrupted.sum()))
train_y = nl.tensor(noisy)
train_set = TensorDataset(train_x, train_y)
val_loader = DataLoader(Digits(train=False), batch_size=1000)
wrong = corrupted & (noisy != clean_y.data)              # labels that are actually wrong
print(f"{int(wrong.sum())} of 400 training labels are wrong")
EPOCHS = 50

# %%
# An experiment that over-fits
# ----------------------------
# A network of 85,000 parameters, 400 training images, and 30% of their labels
# replaced at random (Zhang et al., 2017, "Understanding deep learning requires
# rethinking generalization"): a network that fits every training label has
# memorised about 100 wrong answers, which can only hurt on new images. How
# many of the wrong labels the network reproduces measures the memorisation
# directly; the validation accuracy (on the clean test split) measures what
# that costs.


def make_model(dropout=0.0, dropconnect=0.0, seed=0):
    nl.manual_seed(seed)
    linear = (lambda i, o: nn.DropConnectLinear(i, o, p=dropconnect)) if dropconnect else nn.Linear
    return nn.Sequential(linear(64, 256), nn.ReLU(), nn.Dropout(dropout),
                         linear(256, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 10))


def weights(model):
    return [p for p in model.parameters() if p.kind == "weight"]


def run(name, model=None, penalty=None, weight_decay=0.0, callbacks=(), epochs=EPOCHS):
    model = model or make_model()
    opt = nl.optim.AdamW(nl.optim.param_groups_by_kind(model, weight_decay=weight_decay), lr=2e-3)

    def loss_fn(output, target):
        loss = F.cross_entropy(output, target)
        return loss + penalty(weights(model)) if penalty is not None and model.training else loss

    nl.manual_seed(1)
    history = fit(model, loss_fn, opt, DataLoader(train_set, batch_size=50, shuffle=True), epochs=epochs,
                  val_loader=val_loader, callbacks=list(callbacks), progress=False)
    model.eval()
    with nl.no_grad():
        predicted = model(train_x).data.argmax(1)
    return {"name": name, "model": model, "history": history, "val": history["val_accuracy"][-1],
            "memorised": float(np.mean(predicted[wrong] == noisy[wrong])),
            "train": float(np.mean(predicted == noisy))}


runs = [
    run("none"),
    run("L2 penalty 1e-2", penalty=lambda w: 1e-2 * l2_penalty(w)),
    run("L1 penalty 1e-3", penalty=lambda w: 1e-3 * l1_penalty(w)),
    run("weight decay 2", weight_decay=2.0),
    run("dropout 0.5", model=make_model(dropout=0.5)),
    run("DropConnect 0.5", model=make_model(dropconnect=0.5)),
    run("early stopping", callbacks=[EarlyStopping(monitor="val_loss", patience=5)]),
]
for r in runs:
    print(f"{r['name']:18} train {100 * r['train']:5.1f}%  validation {100 * r['val']:5.1f}%  "
          f"wrong labels memorised {100 * r['memorised']:5.1f}%  ({len(r['history']['epoch'])} epochs)")

# %%
# The gap, epoch by epoch
# -----------------------
# ``fit``'s ``history`` holds the training and validation accuracy of every
# epoch. Without regularisation the training accuracy climbs towards 100% —
# the wrong labels included — while the validation accuracy peaks and then
# falls: the network has started to learn the examples instead of the digits.
# With weight decay the training accuracy levels off near 75% (about what a
# network that ignores the wrong labels can reach on them) and the validation
# accuracy keeps its peak.
by = {r["name"]: r for r in runs}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for name, color in (("none", "C3"), ("weight decay 2", "C0")):
    h = by[name]["history"]
    axes[0].plot(h["epoch"], h["train_accuracy"], color=color, ls="--", label=f"{name}: train")
    axes[0].plot(h["epoch"], h["val_accuracy"], color=color, label=f"{name}: validation")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("accuracy")
axes[0].legend(fontsize=7)
xs = np.arange(len(runs))
axes[1].bar(xs - 0.2, [r["val"] for r in runs], width=0.4, label="validation accuracy")
axes[1].bar(xs + 0.2, [r["memorised"] for r in runs], width=0.4, label="wrong labels memorised")
axes[1].set_xticks(xs, [r["name"] for r in runs], rotation=35, ha="right", fontsize=7)
axes[1].set_ylim(0, 1.05)
axes[1].legend(fontsize=7)
fig.tight_layout()

none = by["none"]
peak = max(none["history"]["val_accuracy"])
assert none["train"] > 0.9 and none["memorised"] > 0.7           # it fits the noise ...
assert none["val"] < peak - 0.03                                    # ... and gets worse for it
for r in runs[1:]:
    assert r["memorised"] < none["memorised"] - 0.2, r["name"]      # every regulariser memorises less
    assert r["val"] > none["val"] + 0.02, r["name"]                 # and generalises better
assert len(by["early stopping"]["history"]["epoch"]) < EPOCHS       # stopped once validation stalled

# %%
# What each regulariser does to the weights
# -----------------------------------------
# L1 drives many weights to (nearly) zero, L2 and decay shrink all of them; the
# histograms of the first layer show the difference in shape, not just scale.
fig, ax = plt.subplots(figsize=(6.5, 3.4))
bins = np.linspace(-0.3, 0.3, 61)
for name in ("none", "L2 penalty 1e-2", "L1 penalty 1e-3", "weight decay 2"):
    w = by[name]["model"][0].weight.data.ravel()
    ax.hist(w, bins=bins, histtype="step", lw=1.5, label=f"{name}: mean |w| {np.abs(w).mean():.3f}")
ax.set_yscale("log")
ax.set_xlabel("first-layer weight")
ax.legend(fontsize=7)
fig.tight_layout()


def near_zero(name):
    return float(np.mean(np.abs(by[name]["model"][0].weight.data) < 1e-3))


print({name: round(near_zero(name), 3) for name in ("none", "L2 penalty 1e-2", "L1 penalty 1e-3")})
assert near_zero("L1 penalty 1e-3") > 3 * near_zero("none")         # sparsity
for name in ("L2 penalty 1e-2", "L1 penalty 1e-3", "weight decay 2"):
    assert np.abs(by[name]["model"][0].weight.data).mean() < np.abs(none["model"][0].weight.data).mean()

# %%
# Too much: under-fitting
# -----------------------
# Regularisation trades fit for simplicity. Turn the decay up far enough and the
# weights cannot grow to fit even the correct training labels: training and
# validation accuracy fall together. The balance lies between, where the
# validation accuracy peaks.
strengths = [0.0, 2.0, 8.0, 32.0]
sweep = [none, by["weight decay 2"]] + [run(f"decay {wd}", weight_decay=wd) for wd in strengths[2:]]
train_acc = np.array([r["train"] for r in sweep])
val_acc = np.array([r["val"] for r in sweep])
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(strengths, train_acc, "o-", label="train (noisy labels)")
ax.plot(strengths, val_acc, "s-", label="validation")
ax.set_xscale("symlog", linthresh=2.0)
ax.set_xlabel("weight decay (AdamW, lr 2e-3)")
ax.set_ylabel("accuracy")
ax.legend(fontsize=8)
fig.tight_layout()
print("train", np.round(train_acc, 3), "validation", np.round(val_acc, 3))
assert np.all(np.diff(train_acc) < 0)                                  # more decay, less fit
assert val_acc[-1] < val_acc.max() - 0.05 and train_acc[-1] < 0.7       # too much: under-fitted
assert 0 < int(np.argmax(val_acc)) < len(strengths) - 1                  # the best is in between

# %%
# Over-fitting makes over-confident probabilities
# -----------------------------------------------
# A network trained long without regularisation keeps growing its logits after
# it has classified every training example: the cross-entropy still rewards it.
# Its probabilities are then too sure. Here: the same network, trained on 400
# images with their *correct* labels for 300 full-batch steps. The *expected
# calibration error* compares, in bins of confidence, the mean confidence with
# the accuracy; the reliability diagram draws the comparison. Temperature
# scaling (Guo et al., 2017) divides the logits by one scalar :math:`T`, fitted
# on held-out images (500 training images the network never saw) with the
# network frozen — a :class:`~nnlite.nn.Temperature` whose single parameter has
# the kind ``"temperature"`` — and is judged on other held-out images. The
# argmax, so the accuracy, cannot change.
all_x, all_y = next(iter(DataLoader(Digits(train=True), batch_size=1438)))
confident = make_model()
opt = nl.optim.Adam(confident.parameters(), lr=1e-2)
for _ in range(300):
    opt.zero_grad()
    F.cross_entropy(confident(train_x), clean_y).backward()
    opt.step()
held_out = DataLoader(TensorDataset(all_x[400:900], all_y[400:900]), batch_size=500)
judged = [DataLoader(TensorDataset(all_x[900:], all_y[900:]), batch_size=600), val_loader]
fit_logits, fit_labels = calibration.predict_logits(confident, held_out)
pairs = [calibration.predict_logits(confident, loader) for loader in judged]
logits, labels = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
temperature = calibration.fit_temperature(fit_logits, fit_labels)
scaled = temperature(nl.tensor(logits)).data
probs_before = F.softmax(nl.tensor(logits), dim=1).data
probs_after = F.softmax(nl.tensor(scaled), dim=1).data
ece_before = calibration.expected_calibration_error(probs_before, labels, n_bins=10)
ece_after = calibration.expected_calibration_error(probs_after, labels, n_bins=10)
nll_before = calibration.negative_log_likelihood(logits, labels)
nll_after = calibration.negative_log_likelihood(scaled, labels)
t = float(temperature.temperature.item())
print(f"{len(labels)} judged images; T = {t:.2f}; ECE {100 * ece_before:.1f}% -> {100 * ece_after:.1f}%; "
      f"NLL {nll_before:.3f} -> {nll_after:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
calibration.reliability_diagram(probs_before, labels, n_bins=10, ax=axes[0], label="trained long")
calibration.reliability_diagram(probs_after, labels, n_bins=10, ax=axes[1], label=f"T = {t:.2f}")
fig.tight_layout()
assert t > 1.5                                     # over-confident: the fit softens
assert ece_after < 0.8 * ece_before and nll_after < nll_before - 0.02
assert np.array_equal(probs_after.argmax(1), probs_before.argmax(1))

# %%
# Constraints by reparameterisation
# ---------------------------------
# A penalty asks the optimizer to keep the weights small and trades that
# request against the data loss. A *reparameterisation* states the constraint
# as part of the model instead: the weight a layer uses is computed, at every
# forward, from other parameters by a function whose every output obeys the
# constraint, and the optimizer trains those other parameters.
# :func:`~nnlite.nn.utils.parametrize.register_parametrization` turns
# ``layer.weight`` into such a computed tensor; the learned values move to
# ``layer.parametrizations.weight``. Two constraints come ready-made.
#
# **Weight norm** (Salimans & Kingma, 2016) writes each output row of the
# weight as a length times a unit direction:
#
# .. math::
#
#    w_i = g_i \, \frac{v_i}{\lVert v_i \rVert}, \qquad
#    \nabla_{v_i} L = \frac{g_i}{\lVert v_i \rVert}
#       \Bigl(I - \frac{v_i v_i^\top}{\lVert v_i \rVert^2}\Bigr) \nabla_{w_i} L .
#
# The length :math:`g_i` (kind ``"scale"``, so
# :func:`~nnlite.optim.param_groups_by_kind` leaves it undecayed) now has a
# gradient of its own, and the gradient on :math:`v_i` is projected away from
# :math:`v_i`: it can only turn the row, never stretch it. A plain gradient
# step on :math:`v_i` is therefore at right angles to it, and by Pythagoras
# :math:`\lVert v_i \rVert` can only grow, which in turn shrinks the next
# gradient by :math:`1 / \lVert v_i \rVert`: the direction's step size damps
# itself. Below, 20 SGD steps on a weight-normed layer that regresses random
# targets from the digits.
nl.manual_seed(0)
wn_layer = weight_norm(nn.Linear(64, 32))
g = wn_layer.parametrizations.weight.original0    # (32, 1): one length per row
v = wn_layer.parametrizations.weight.original1    # (32, 64): the directions
sgd = nl.optim.SGD([g, v], lr=0.5)
targets = nl.randn(400, 32)
row_norms, cosines = [np.linalg.norm(v.data, axis=1)], []
for _ in range(20):
    sgd.zero_grad()
    F.mse_loss(wn_layer(train_x), targets).backward()
    grad_v = v.grad.data
    cosines.append(np.abs((v.data * grad_v).sum(1))
                   / (np.linalg.norm(v.data, axis=1) * np.linalg.norm(grad_v, axis=1)))
    sgd.step()
    row_norms.append(np.linalg.norm(v.data, axis=1))
row_norms = np.array(row_norms)
print(f"largest |cos(v, grad v)| {np.max(cosines):.1e}; "
      f"||v|| grew by {100 * (row_norms[-1] / row_norms[0] - 1).min():.2f}% to "
      f"{100 * (row_norms[-1] / row_norms[0] - 1).max():.2f}% over 20 steps")
assert np.max(cosines) < 1e-5                                               # orthogonal to v
assert np.all(np.diff(row_norms, axis=0) > -1e-6 * row_norms[:-1])          # ||v|| never shrinks
assert np.all(row_norms[-1] > row_norms[0])

# %%
# **Spectral norm** (Miyato et al., 2018) divides the whole weight by its
# largest singular value, :math:`W / \sigma_{\max}(W)`. A layer
# :math:`x \mapsto Wx` moves two inputs apart by at most
# :math:`\sigma_{\max}(W)` times their distance (its Lipschitz constant), and
# ReLU never moves them further apart, so a stack of spectrally normed layers
# cannot magnify a change of its input: the whole network is 1-Lipschitz.
# An SVD at every step would be expensive. Instead the layer keeps two unit
# vectors :math:`u, v` (buffers ``_u`` and ``_v``, saved with the model) and
# refines them by one step of power iteration at each forward in training
# mode,
#
# .. math::
#
#    u \leftarrow \frac{W v}{\lVert W v \rVert}, \qquad
#    v \leftarrow \frac{W^\top u}{\lVert W^\top u \rVert}, \qquad
#    \hat\sigma = u^\top W v \;\le\; \sigma_{\max}(W),
#
# so that :math:`u` and :math:`v` turn towards the top singular vectors and
# :math:`\hat\sigma` climbs to :math:`\sigma_{\max}`. The weights change only
# a little per training step, so one iteration per step roughly keeps up. To
# watch the iteration from scratch: train two small networks on the 400 correctly
# labelled images, one plain and one with every Linear spectrally normed, then
# hand a weight of the plain one to a spectrally normed layer whose vectors are
# reset to random ones.


def lipschitz_mlp(constrained, seed=0):
    nl.manual_seed(seed)
    layers = [nn.Linear(64, 128), nn.Linear(128, 128), nn.Linear(128, 10)]
    if constrained:
        layers = [spectral_norm(layer) for layer in layers]
    return nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2])


def largest_singular_values(model):
    return [float(np.linalg.svd(model[i].weight.detach().numpy(), compute_uv=False)[0]) for i in (0, 2, 4)]


trained = {}
for constrained in (False, True):
    model = lipschitz_mlp(constrained)
    opt = nl.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(model(train_x), clean_y).backward()
        opt.step()
    trained[constrained] = model
plain, normed = trained[False], trained[True]

probe = spectral_norm(copy.deepcopy(plain[2]))
W = probe.parametrizations.weight.original.data
sigma_true = np.linalg.svd(W, compute_uv=False)[0]
u, v = probe.parametrizations.weight[0]._u, probe.parametrizations.weight[0]._v
start = np.random.default_rng(2)
for vector in (u, v):                   # forget the estimate: random unit vectors
    vector.data[:] = start.standard_normal(vector.shape)
    vector.data /= np.linalg.norm(vector.data)
estimates = []
for _ in range(30):
    _ = probe.weight                    # each read in training mode is one power-iteration step
    estimates.append(float(u.data @ W @ v.data))
relative_error = np.abs(np.array(estimates) - sigma_true) / sigma_true
print(f"sigma_max {sigma_true:.3f}; estimate after 1, 5, 30 steps: "
      + ", ".join(f"{estimates[i]:.3f}" for i in (0, 4, 29)))
assert relative_error[0] > 1e-2 and relative_error[-1] < 1e-3              # converged
assert all(e <= sigma_true * (1 + 1e-5) for e in estimates)                # from below

# %%
# After training, the plain network's layers stretch their inputs by factors
# of several; the normed network's layers by about one. The estimate trails
# the moving weights, always from below, so the normed weights come out
# slightly above one; fifty more training-mode reads of each weight (without
# training) close the gap. The product of the three singular values bounds how
# far the network can move its output per unit of input change, and no pair of
# validation images breaks the bound. The price shows too: a network that
# cannot magnify differences produces small logits and fits the digits less
# well here.
sigma_plain = largest_singular_values(plain)
sigma_normed = largest_singular_values(normed)
for i in (0, 2, 4):
    for _ in range(50):
        _ = normed[i].weight
sigma_caught_up = largest_singular_values(normed)
plain.eval(), normed.eval()
val_x, val_y = next(iter(val_loader))
with nl.no_grad():
    outputs = {name: model(val_x).data for name, model in (("plain", plain), ("normed", normed))}
accuracy = {name: float(np.mean(out.argmax(1) == val_y.data)) for name, out in outputs.items()}
pairs = np.random.default_rng(1).integers(0, len(val_x), (2, 2000))
step_in = np.linalg.norm(val_x.data[pairs[0]] - val_x.data[pairs[1]], axis=1) + 1e-12
stretch = {name: float(np.max(np.linalg.norm(out[pairs[0]] - out[pairs[1]], axis=1) / step_in))
           for name, out in outputs.items()}
print("largest singular value per layer: plain", np.round(sigma_plain, 2), " normed", np.round(sigma_normed, 3),
      " after catching up", np.round(sigma_caught_up, 4))
print(f"validation accuracy plain {accuracy['plain']:.3f}, normed {accuracy['normed']:.3f}; largest stretch "
      f"between two images: plain {stretch['plain']:.2f}, normed {stretch['normed']:.2f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].plot(row_norms / row_norms[0], color="C0", lw=0.8)
axes[0].set_xlabel("SGD step")
axes[0].set_ylabel(r"$\|v_i\|$ / initial")
axes[0].set_title("weight norm: directions only grow", fontsize=9)
axes[1].semilogy(np.arange(1, 31), relative_error, "o-", ms=3)
axes[1].set_xlabel("power-iteration steps (training-mode forwards)")
axes[1].set_ylabel(r"$|\hat\sigma - \sigma_{\max}| / \sigma_{\max}$")
axes[1].set_title("spectral norm: the estimate converges", fontsize=9)
xs = np.arange(3)
axes[2].bar(xs - 0.27, sigma_plain, width=0.27, label="plain")
axes[2].bar(xs, sigma_normed, width=0.27, label="spectral norm")
axes[2].bar(xs + 0.27, sigma_caught_up, width=0.27, label="spectral norm, caught up")
axes[2].axhline(1, color="k", lw=0.6)
axes[2].set_xticks(xs, ["layer 1", "layer 2", "layer 3"])
axes[2].set_ylabel(r"$\sigma_{\max}(W)$ after training")
axes[2].legend(fontsize=7)
fig.tight_layout()
assert min(sigma_plain) > 2                                                   # unconstrained: grows
assert max(sigma_normed) < 1.5 and max(abs(s - 1) for s in sigma_caught_up) < 1e-2
assert stretch["normed"] <= np.prod(sigma_caught_up) < stretch["plain"]      # the bound holds
assert accuracy["normed"] > 0.5 and accuracy["plain"] > accuracy["normed"]
print(f"tutorial ran in {time.perf_counter() - started:.1f} s")

# %%
# Summary
# -------
# * Over-fitting shows as a gap between training and validation accuracy in
#   ``fit``'s history; under-fitting as low accuracy on both.
# * L2 and decoupled decay shrink all weights, L1 zeroes many, dropout and
#   DropConnect add noise to activations or weights, early stopping ends the
#   run before the memorising starts; here each one reproduces far fewer of the
#   wrong labels and scores higher on the validation set.
# * Regularisation has a right amount: too much decay leaves the training data
#   unfitted. The validation score finds the balance.
# * Networks trained long are over-confident; a single temperature fitted on
#   held-out data repairs the probabilities without changing a prediction.
# * A constraint can be built into the weights instead of asked for by a
#   penalty: weight norm learns each row's length and direction separately,
#   spectral norm keeps each layer's largest singular value at one (estimated
#   by power iteration), which bounds how much the network can magnify a change
#   of its input.
#
# Exercises
# ---------
# 1. Train the "none" model on the 400 images with their correct labels. How
#    large is the gap now, and which regulariser still helps?
# 2. Combine dropout 0.3 with weight decay 0.5. Do their effects add up?
# 3. Apply the L1 penalty for 200 epochs and count the first-layer weights
#    below 1e-3. Which inputs (of 40) lost all their weights?
# 4. Fit the temperature of the dropout model of the first experiment. Is it
#    closer to 1 than that of the network trained long, and why?
# 5. The spectrally normed network fits the digits worse than the plain one.
#    Multiply its logits by a fixed factor (2, 5, 10) before the loss. Which
#    factor recovers the accuracy, and what Lipschitz bound does the network
#    then have?
