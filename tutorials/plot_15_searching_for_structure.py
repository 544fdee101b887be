r"""
Searching for structure
=======================

Which layers a network has, and how they connect, is usually chosen by hand.
Neural architecture search learns that choice too. This tutorial turns
architecture choices into **architecture parameters** — ordinary Parameters
of kind ``"architecture"`` — and learns them by gradient descent (DARTS, Liu,
Simonyan & Yang 2019) on MNIST-1D; then it makes the search *hardware-aware*
with latencies measured on this machine, and finally grows a model step by
step while keeping what it has learnt (Net2Net).

Settings are smaller than in ``nnlite train darts-mnist1d`` (8 channels
instead of 16, half the data, fewer epochs) so that the tutorial runs in well
under a minute.
"""

# %%
# An edge that holds every candidate
# ----------------------------------
# A DARTS cell is a small graph: node 0 is the cell's input, each later node
# sums one operation applied to every earlier node. Instead of choosing the
# operation on edge :math:`(i, j)`, put all candidates there and blend them
# (a :class:`~nnlite.nas.MixedOp`):
#
# .. math::
#
#    \bar o_{ij}(x) = \sum_{o} \frac{\exp\alpha_{ij,o}}{\sum_{o'}\exp\alpha_{ij,o'}}\; o(x).
#
# The candidates here suit 1-D signals: convolutions with kernel 3 and 5, a
# dilated and a depthwise-separable convolution, max and average pooling, the
# identity (skip) and ``none`` (no edge).
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nas

start = time.perf_counter()
print(nas.PRIMITIVES)
net = nas.SearchNetwork(channels=8, cells=2, steps=3)
print(f"alpha: kind {net.alpha.kind!r}, shape {net.alpha.shape} (edges x operations), "
      f"{len(net.weights())} ordinary weight tensors")
assert net.alpha.kind == "architecture" and net.alpha.shape == (6, len(nas.PRIMITIVES))

# %%
# Two levels, two data sets
# -------------------------
# The weights :math:`w` learn on training data, the architecture on held-out
# data — otherwise the search would simply favour whatever fits the training
# set best:
#
# .. math::
#
#    \min_\alpha L_{val}(w^*(\alpha), \alpha)
#    \quad\text{where}\quad w^*(\alpha) = \arg\min_w L_{train}(w, \alpha).
#
# :class:`~nnlite.nas.BilevelSearch` alternates one step of each. In the
# architecture step the weights enter the loss as constants (through
# :func:`nnlite.func.functional_call`), so the validation loss reaches only
# :math:`\alpha`; in the weight step it is the other way round.
search_train, search_val, train, test = nas.mnist1d_search_split(train_size=2000, seed=0)
net, history = nas.darts_search(search_train, search_val, epochs=5, channels=8, seed=0)
for entry in history:
    print(f"epoch {entry['epoch']}: train loss {entry['train_loss']:.3f}, "
          f"search network val accuracy {entry['val_accuracy']:.3f}")
assert history[-1]["train_loss"] < history[0]["train_loss"]

# %%
# How the architecture weights moved, edge by edge:
weights = np.array([h["alpha_softmax"] for h in history])     # epochs x edges x operations
edges = [(i, j) for j in range(1, 4) for i in range(j)]
fig, axes = plt.subplots(2, 3, figsize=(9, 4.8), sharex=True, sharey=True)
for e, ax in enumerate(axes.ravel()):
    for o, name in enumerate(nas.PRIMITIVES):
        ax.plot(range(1, len(history) + 1), weights[:, e, o], label=name)
    ax.set_title(f"edge {edges[e][0]} -> {edges[e][1]}", fontsize=9)
axes[0, 0].legend(fontsize=6)
fig.supxlabel("search epoch")
fig.supylabel("softmax(alpha)")
fig.tight_layout()
assert np.abs(weights[-1] - weights[0]).max() > 0.02   # the architecture did move

# %%
# The derived cell
# ----------------
# The paper's rule turns the blend back into a discrete cell: for every node
# keep the two strongest incoming edges, an edge's strength being its largest
# weight among the operations other than ``none``, and put that operation on
# it (:func:`~nnlite.nas.derive_genotype`).
genotype = net.genotype()
print(genotype.edges)
final = weights[-1]
for name, i, j in genotype.edges:
    e = edges.index((i, j))
    usable = [o for o, p in enumerate(nas.PRIMITIVES) if p != "none"]
    assert name == nas.PRIMITIVES[max(usable, key=lambda o: final[e, o])]

fig, ax = plt.subplots(figsize=(6, 2.6))
positions = {n: (2.0 * n, 0.0) for n in range(4)}
for name, i, j in genotype.edges:
    (x0, _), (x1, _) = positions[i], positions[j]
    bend = 0.35 * (j - i - 1) + 0.15
    ax.annotate("", xy=(x1, 0), xytext=(x0, 0), arrowprops=dict(arrowstyle="->", connectionstyle=f"arc3,rad=-{bend}"))
    ax.text((x0 + x1) / 2, bend * (x1 - x0) / 2 + 0.08, name, ha="center", fontsize=8)
for n, (x, y) in positions.items():
    ax.add_patch(plt.Circle((x, y), 0.3, color="lightsteelblue", zorder=3))
    ax.text(x, y, "in" if n == 0 else str(n), ha="center", va="center", zorder=4)
ax.set(xlim=(-0.6, 6.6), ylim=(-0.6, 1.6), aspect="equal", title="derived cell (output: concat of 1, 2, 3)")
ax.axis("off")
fig.tight_layout()

# %%
# The cell is then trained from scratch, in a network of the same skeleton,
# and scored once on the test set.
_, derived_accuracy = nas.train_from_scratch(genotype, train, test, epochs=6, channels=8, seed=0)
print(f"derived network, retrained: test accuracy {derived_accuracy:.3f}")
assert derived_accuracy > 0.8

# %%
# Hardware-aware search
# ---------------------
# A good architecture for a phone is not the one for a server. The search can
# pay for speed: measure each candidate once on this machine with nnlite's
# kernels (:class:`~nnlite.nas.LatencyTable`, cached on disk), and add the
# *expected* latency to the architecture's objective,
#
# .. math::
#
#    L_{val} + \lambda \sum_{e}\sum_o \mathrm{softmax}(\alpha_e)_o\, t_o ,
#
# which is differentiable in :math:`\alpha` although the latencies are only
# numbers.
table = nas.LatencyTable()
costs = table.costs(channels=8, lengths=[40, 20])      # the two cells see lengths 40 and 20
for name, cost in zip(nas.PRIMITIVES, costs):
    print(f"{name:>13}: {cost * 1e3:7.1f} us")

sweep = []
for weight in (0.0, 2.0):
    swept, _ = nas.darts_search(search_train, search_val, epochs=3, channels=8, latency=costs,
                                latency_weight=weight, seed=0)
    g = swept.genotype()
    _, acc = nas.train_from_scratch(g, train, test, epochs=4, channels=8, seed=0)
    sweep.append((weight, nas.genotype_latency(g, table, 8, [40, 20]), acc, [n for n, _, _ in g.edges]))
    print(f"lambda {weight}: cell latency {sweep[-1][1] * 1e3:.0f} us, test accuracy {acc:.3f}, {sweep[-1][3]}")

fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot([s[1] * 1e3 for s in sweep], [s[2] for s in sweep], "o-")
for weight, latency, acc, _ in sweep:
    ax.annotate(f"lambda = {weight}", (latency * 1e3, acc), textcoords="offset points", xytext=(5, -12))
ax.set(xlabel="latency of the derived cells (us, batch 1)", ylabel="test accuracy")
fig.tight_layout()
assert sweep[1][1] < 0.5 * sweep[0][1]      # much faster ...
assert sweep[1][2] < sweep[0][2]            # ... and it costs accuracy

# %%
# Growing a model: progressive search with Net2Net
# ------------------------------------------------
# Another way to search is to start small and grow, keeping what was learnt.
# Net2WiderNet copies hidden units and divides their outgoing weights by the
# number of copies, so the wider network computes *exactly* the same function;
# Net2DeeperNet inserts an identity layer after a ReLU.
nl.manual_seed(0)
small = nl.nn.Sequential(nl.nn.Linear(40, 8), nl.nn.ReLU(), nl.nn.Linear(8, 10))
x = nl.tensor(test[0][:100])
wider = nas.net2wider(small, 0, 32, rng=0)
deeper = nas.net2deeper(wider, 0)
print(f"parameters {small.num_parameters()} -> {wider.num_parameters()} -> {deeper.num_parameters()}; "
      f"largest output change {np.abs(deeper(x).data - small(x).data).max():.1e}")
assert np.allclose(deeper(x).data, small(x).data, atol=1e-5)

# %%
# :func:`~nnlite.nas.progressive_search` tries, each round, widening every
# hidden layer and adding one, trains each child for a few epochs and keeps
# the best while validation accuracy improves. (A plain MLP is a weak model of
# MNIST-1D; what matters here is that every step starts from the trained
# parent.)
grown, rounds = nas.progressive_search(small, search_train, search_val, rounds=3, epochs=30, lr=1e-2, seed=0)
for r in rounds:
    print(f"round {r['round']}: {r['choice']:<26} val accuracy {r['val_accuracy']:.3f}, "
          f"{r['parameters']} parameters")
fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot([r["parameters"] for r in rounds], [r["val_accuracy"] for r in rounds], "o-")
ax.set(xscale="log", xlabel="parameters", ylabel="validation accuracy", title="progressive growth")
fig.tight_layout()
assert rounds[-1]["val_accuracy"] > rounds[0]["val_accuracy"] + 0.05
assert grown.num_parameters() > small.num_parameters()

elapsed = time.perf_counter() - start
print(f"tutorial ran in {elapsed:.1f} s")

# %%
# Summary
# -------
# * Architecture choices become Parameters when every candidate is kept and
#   blended by a softmax; they are learnt on validation data, the weights on
#   training data.
# * The discrete cell is read off the architecture weights by a fixed rule and
#   retrained from scratch.
# * Adding the expected measured latency to the objective trades accuracy for
#   speed: a large weight fills the cell with skips and pools.
# * Function-preserving growth lets a search reuse every parameter already
#   trained instead of starting each candidate from scratch.
#
# Exercises
# ---------
# 1. Run the search with ``second_order=True``. It costs about three times as
#    much per step; does the derived cell change?
# 2. Set every ``alpha`` to zero and derive a genotype. Which operations win,
#    and why is that a problem for the rule? (Ties are broken by the order of
#    ``PRIMITIVES``.)
# 3. Build the latency table at batch size 64 instead of 1. Which operations
#    become relatively cheaper?
# 4. Add a "deepen" step that inserts a whole DARTS cell instead of a Linear
#    layer. How would you keep it function-preserving?
