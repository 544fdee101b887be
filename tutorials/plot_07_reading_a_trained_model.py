r"""
Reading a trained model
=======================

A trained network is a few thousand numbers. This tutorial reads them with
:mod:`nnlite.analysis`: how many there are and what they cost, how the
spectrum of each weight matrix changes during training, how weights and
gradients are distributed, and which layers' activations carry information
about the labels. The model is the MNIST-1D CNN of the ``mnist1d-cnn`` recipe,
trained briefly; every number is compared with the same model at
initialisation.
"""

# %%
# A model before and after training
# ---------------------------------
# We build the CNN, keep a copy of its initial parameters, and train it for 15
# epochs with Adam (the recipe trains for 150; 15 are enough to see every
# effect below). ``model_at_init`` is the same architecture loaded with the
# initial values, so each measurement can be taken on both.
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import recipes
from nnlite.data import MNIST1D, DataLoader
from nnlite.nn import functional as F

analysis = nl.analysis
nl.manual_seed(0)
train, test = MNIST1D(train=True), MNIST1D(train=False)
model = recipes.MNIST1DCNN()
model_at_init = recipes.MNIST1DCNN()
model_at_init.load_state_dict(model.state_dict())
model_at_init = model_at_init.eval()

optimizer = nl.optim.Adam(model.parameters(), lr=1e-2)
history = nl.train.fit(model, F.cross_entropy, optimizer, DataLoader(train, batch_size=100, shuffle=True),
                       epochs=15, val_loader=DataLoader(test, batch_size=1000), progress=False)
model.eval()
accuracy = history["val_accuracy"][-1]
print(f"test accuracy after 15 epochs: {accuracy:.3f}")
assert accuracy > 0.8

# %%
# Counting: parameters, memory, FLOPs
# -----------------------------------
# :func:`~nnlite.analysis.report` counts the parameters of every layer, by
# kind and by trainability (a tied parameter counts once), the memory of the
# parameters, their gradients and the optimizer's state, and — given an
# example input — the FLOPs of each layer, counting a multiply-add as two:
#
# .. math::
#
#    \text{FLOPs}_\text{Conv1d} = 2\,\frac{C_\text{in}}{\text{groups}}\,k \times
#    (\text{number of output values}), \qquad
#    \text{FLOPs}_\text{Linear} = 2\,n_\text{in}\,n_\text{out} \times \text{rows}.
#
# Their ratio is the *parameter density*: parameters per FLOP of one sample.
x_test, y_test = next(iter(DataLoader(test, batch_size=1000)))
summary = analysis.report(model, optimizer, example_input=x_test[:1])
print(summary)
totals = summary.totals
assert totals["parameters"] == model.num_parameters() == 5210
assert totals["optimizer_state_bytes"] == 2 * totals["parameter_bytes"]   # Adam: exp_avg and exp_avg_sq
conv2 = next(row for row in summary.layers if row["layer"] == "conv2")
assert conv2["flops"] == 2 * 25 * 3 * (25 * 10)     # 25 channels x 10 positions, a 25x3 window each

# %%
# The convolutions hold three quarters of the parameters but do 96% of the work: each of
# their weights is used at every position, while the Linear layer uses each
# weight once per sample (two FLOPs per weight, density one half). That is why
# the whole model has far fewer parameters than FLOPs.
conv_flops = sum(row["flops"] for row in summary.layers if row["type"] == "Conv1d")
print(f"convolutions: {conv_flops / totals['flops']:.0%} of the FLOPs")
linear = next(row for row in summary.layers if row["layer"] == "linear")
assert abs(linear["parameters"] / linear["flops"] - 0.5) < 0.01
assert totals["parameter_density"] < 0.1

# %%
# Spectra: what training does to each weight matrix
# --------------------------------------------------
# A weight matrix :math:`W` (a convolution's filters unrolled into the rows of
# a :math:`C_\text{out} \times C_\text{in} k` matrix) maps inputs through its
# singular values :math:`\sigma_1 \ge \sigma_2 \ge \dots`. Four summaries:
#
# * the spectral norm :math:`\sigma_1`, the largest gain of the layer;
# * the condition number :math:`\sigma_1/\sigma_r`;
# * the stable rank :math:`\lVert W\rVert_F^2 / \sigma_1^2 = \sum_i \sigma_i^2 / \sigma_1^2`;
# * the effective rank of Roy and Vetterli,
#   :math:`\exp\big(-\sum_i p_i \ln p_i\big)` with :math:`p_i = \sigma_i / \sum_j \sigma_j`.
#
# A random initial matrix spreads its singular values evenly (the
# Marchenko–Pastur shape); training adds a few large directions, the ones the
# data asks for.
layers = ["conv1.weight", "conv2.weight", "conv3.weight", "linear.weight"]
before, after = analysis.quality_metrics(model_at_init), analysis.quality_metrics(model)
print(f"{'weight':14} {'spectral norm':>16} {'condition':>16} {'effective rank':>16} {'stable rank':>16}")
for name in layers:
    cells = [f"{before[name][k]:6.2f} -> {after[name][k]:6.2f}"
             for k in ("spectral_norm", "condition_number", "effective_rank", "stable_rank")]
    print(f"{name:14} " + " ".join(f"{c:>16}" for c in cells))

fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
for ax, name in zip(axes, layers):
    for label, m in (("init", model_at_init), ("trained", model)):
        s = analysis.singular_values(m.get_parameter(name))
        ax.plot(np.arange(1, len(s) + 1), s, "o-", ms=3, label=label)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("index i")
axes[0].set_ylabel(r"singular value $\sigma_i$")
axes[0].legend()
fig.tight_layout()

for name in layers:
    assert after[name]["spectral_norm"] > before[name]["spectral_norm"]
# In the three layers with many inputs, the energy concentrates in the top directions:
for name in layers[1:]:
    assert after[name]["stable_rank"] < 0.8 * before[name]["stable_rank"]
    assert after[name]["effective_rank"] < before[name]["effective_rank"]

# %%
# The effective rank barely moves while the stable rank halves: the small
# singular values are still there (the layer still *uses* every direction a
# little), but the largest few have grown far above the rest. The effective
# rank of a matrix of :math:`k` equal non-zero singular values is exactly
# :math:`k`:
Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))
assert abs(analysis.effective_rank(Q) - 8) < 1e-9 and abs(analysis.condition_number(Q) - 1) < 1e-9
assert abs(analysis.effective_rank(Q[:, :3] @ Q[:, :3].T) - 3) < 1e-9

# %%
# Weight and gradient histograms
# ------------------------------
# :func:`~nnlite.analysis.weight_histograms` bins each parameter's values. At
# initialisation a convolution's weights are uniform on
# :math:`\pm 1/\sqrt{\text{fan-in}}` (PyTorch's default); training widens the
# distribution into long tails. The gradients of one test batch, from
# :func:`~nnlite.analysis.gradient_histograms`, are peaked at zero with heavy
# tails (a kurtosis well above the normal distribution's 3): most weights
# get almost no gradient, a few get most of it.
model.zero_grad()   # fit leaves the last training step's gradients behind
F.cross_entropy(model(x_test), y_test).backward()
weights_init = analysis.weight_histograms(model_at_init, bins=40)["conv2.weight"]
weights_trained = analysis.weight_histograms(model, bins=40)["conv2.weight"]
grads_trained = analysis.gradient_histograms(model, bins=40)["conv2.weight"]

fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
for (counts, edges), label in ((weights_init, "init"), (weights_trained, "trained")):
    axes[0].stairs(counts, edges, label=label, fill=label == "init", alpha=0.6)
axes[0].set_title("conv2.weight values", fontsize=9)
axes[0].legend()
axes[1].stairs(*grads_trained, fill=True)
axes[1].set_title("conv2.weight gradients (trained, one test batch)", fontsize=9)
fig.tight_layout()

bound = 1 / np.sqrt(25 * 3)
assert weights_init[1][0] >= -bound and weights_init[1][-1] <= bound
assert weights_trained[1][-1] - weights_trained[1][0] > 4 * (2 * bound)
g = model.get_parameter("conv2.weight").grad.data.astype(np.float64).ravel()
kurtosis = np.mean((g - g.mean()) ** 4) / np.var(g) ** 2
print(f"kurtosis of the conv2 gradients: {kurtosis:.1f}")
assert kurtosis > 5

# %%
# Norms and gradient statistics per layer tell the same story in numbers.
# The root-mean-square gradient compares layers of different sizes; the norm
# of every layer grew during training, that of the two middle convolutions
# about five-fold.
norms_init = analysis.parameter_norms(model_at_init, by="layer")
norms = analysis.parameter_norms(model, by="layer")
stats = analysis.gradient_stats(model)
for name in ("conv1", "conv2", "conv3", "linear"):
    print(f"{name:7} |theta| {norms_init[name]:6.2f} -> {norms[name]:6.2f}   "
          f"rms gradient {stats[name + '.weight']['rms']:.2e}")
    assert norms[name] > norms_init[name]
assert norms["conv2"] > 4 * norms_init["conv2"] and norms["conv3"] > 4 * norms_init["conv3"]

# %%
# The *update-to-weight ratio* :math:`\lVert\Delta\theta\rVert / \lVert\theta\rVert`
# of one optimizer step says whether a layer's learning rate suits its size
# (:func:`~nnlite.analysis.update_ratios`, around :math:`10^{-3}` is the usual
# rule of thumb). Take one fresh Adam step with lr :math:`10^{-3}` on a copy of
# the trained model. Adam's first step moves every weight with a non-zero
# gradient by almost exactly the learning rate,
# :math:`\Delta\theta_i = -\mathrm{lr}\, g_i / (|g_i| + \epsilon)`, whatever the
# gradient's size, so the ratio is :math:`\mathrm{lr}\sqrt{n_{g\neq0}} / \lVert\theta\rVert`,
# the learning rate over the size of a typical weight.
copy = recipes.MNIST1DCNN()
copy.load_state_dict(model.state_dict())
copy.eval()
step = nl.optim.Adam(copy.parameters(), lr=1e-3)
before_step = analysis.parameter_snapshot(copy)
F.cross_entropy(copy(x_test), y_test).backward()
moving = {name: int((p.grad.data != 0).sum()) for name, p in copy.named_parameters()}
step.step()
ratios = analysis.update_ratios(copy, before_step)
for name in layers:
    expected = 1e-3 * np.sqrt(moving[name]) / np.linalg.norm(before_step[name])
    print(f"{name:14} update/weight {ratios[name]:.2e}")
    assert abs(ratios[name] - expected) < 0.01 * expected

# %%
# Activations: alive, dead, informative
# -------------------------------------
# :func:`~nnlite.analysis.activation_stats` records every layer's output with
# forward hooks. In this CNN the ReLUs are applied functionally, so the layers
# it sees are the convolutions and the classifier, and their outputs are
# *pre-activations*; a unit (one channel at one position) that is never
# positive over the 1000 test inputs is a dead ReLU unit.
#
# Training spreads the activations (their std grows with the weights' norms)
# and kills some units for good: a unit whose bias and filter have moved so
# that no input makes it positive gets no gradient through its ReLU and stays
# dead.
stats_init = analysis.activation_stats(model_at_init, x_test)
stats_trained = analysis.activation_stats(model, x_test)
print(f"{'layer':7} {'std init':>9} {'std trained':>12} {'dead init':>10} {'dead trained':>13}")
for name, s in stats_trained.items():
    print(f"{name:7} {stats_init[name]['std']:9.3f} {s['std']:12.3f} "
          f"{stats_init[name]['dead_fraction']:10.1%} {s['dead_fraction']:13.1%}")
acts = analysis.record_activations(model, x_test)
for name in ("conv2", "conv3"):
    assert stats_trained[name]["dead_fraction"] > stats_init[name]["dead_fraction"] + 0.05
assert abs(stats_trained["conv2"]["std"] - acts["conv2"].std()) < 1e-4
assert stats_trained["conv2"]["dead_fraction"] == np.mean((acts["conv2"] <= 0).all(axis=0))

# %%
# How much does each layer say about the label? The binned estimate of the
# mutual information, as in the "information plane" studies, cuts each
# activation into 30 bins and treats a sample's pattern of bins as a discrete
# state :math:`T`:
#
# .. math::
#
#    I(T;Y) = H(T) + H(Y) - H(T,Y).
#
# For a whole layer the answer is useless here, and it is worth seeing why:
# in a convolutional layer, with hundreds of units, each of the 1000 samples
# lands in a cell of its own, so :math:`T` identifies the sample and
# :math:`I(T;Y) = H(Y) = \log_2 10`, trained or not. Even the ten logits of the
# output layer, binned 30 ways each, leave nearly every sample alone, and the
# estimate is within a few hundredths of a bit of :math:`H(Y)`.
label_entropy = analysis.entropy(y_test)
for name, a in acts.items():
    mi = analysis.mutual_information(a, y_test, bins=30)
    if a[0].size >= 100:
        assert abs(mi - label_entropy) < 1e-9
    else:
        assert label_entropy - 0.05 < mi <= label_entropy + 1e-9
    print(f"{name:7} {a[0].size:4} units: binned I(T;Y) = {mi:.3f} bits")
print(f"H(Y) = {label_entropy:.3f} bits")

# %%
# One unit at a time, :func:`~nnlite.analysis.unit_mutual_information` has at
# most 10 states and a small bias. Training leaves the first layer's units
# about as informative as random filters (edge detectors carry little about
# the digit alone) and makes the last layers' units far more informative: the
# label is read out near the top of the network.
acts_init = analysis.record_activations(model_at_init, x_test)
unit_mi = {name: (analysis.unit_mutual_information(acts_init[name], y_test).mean(),
                  analysis.unit_mutual_information(acts[name], y_test).mean()) for name in acts}
fig, ax = plt.subplots(figsize=(5, 2.8))
positions = np.arange(len(unit_mi))
ax.bar(positions - 0.2, [v[0] for v in unit_mi.values()], 0.4, label="init")
ax.bar(positions + 0.2, [v[1] for v in unit_mi.values()], 0.4, label="trained")
ax.set_xticks(positions, list(unit_mi))
ax.set_ylabel("mean I(unit; label), bits")
ax.legend()
fig.tight_layout()
for name, (mi_init, mi_trained) in unit_mi.items():
    print(f"{name:7} mean unit information {mi_init:.3f} -> {mi_trained:.3f} bits")
assert unit_mi["linear"][1] > 3 * unit_mi["linear"][0]
assert unit_mi["conv3"][1] > unit_mi["conv3"][0]

# %%
# Information content of the weights themselves: rounded to 256 levels over
# their range, the trained weights need fewer than 8 bits each
# (:func:`~nnlite.analysis.weight_entropy`), because the long tails leave most
# levels nearly empty — a first hint that they can be stored in fewer bits.
for name in layers:
    bits = analysis.weight_entropy(model.get_parameter(name), bits=8)
    print(f"{name:14} {bits:.2f} bits per weight at 8-bit precision")
    assert bits < 7.5

# %%
# Summary
# -------
# * :func:`~nnlite.analysis.report` counts parameters by layer and kind,
#   memory and FLOPs; convolutions reuse their weights and have a low
#   parameter density.
# * Training grows a few large singular values in each weight matrix: the
#   spectral norm rises, the stable rank falls, the effective rank moves less.
# * Weight histograms widen into tails; gradients at the end of training are
#   concentrated near zero, with heavy tails.
# * Adam's first step changes each layer by the learning rate over the size of
#   a typical weight, whatever the gradients are.
# * Activation statistics show dead units; binned mutual information of a
#   whole wide layer saturates at :math:`H(Y)`, while per-unit information shows
#   the label emerging in the top layers.
#
# Exercises
# ---------
# 1. Train for 50 epochs instead of 15. Do the stable ranks keep falling?
# 2. Compute ``analysis.mutual_information`` on the first 2 principal components
#    of each layer instead of all units. Does it still saturate?
# 3. Replace Adam with SGD (lr 0.1, momentum 0.9) and compare the spectra: is
#    the growth of :math:`\sigma_1` a property of the data or of the optimizer?
# 4. With ``weight_decay=1e-3`` (AdamW), how do the weight entropies change?
