r"""
Initialization
==============

Training starts from the values the parameters have before the first step,
and those values matter more than one would think. Start everything at zero
and many networks cannot learn at all; start with a random scale that is a
little too small or too large and the signal fades or explodes over the
layers of a deep network. This tutorial shows both failures and the
variance-preserving schemes that avoid them — Xavier (Glorot), He (Kaiming),
LeCun and orthogonal — and then starts a model from pre-trained values.
"""

# %%
# Zero initialization and the symmetry problem
# --------------------------------------------
# Take a hidden layer :math:`h = \tanh(W_1 x)` followed by :math:`y = W_2 h`.
# If every row of :math:`W_1` starts equal, every hidden unit computes the
# same function of the input. Their gradients are then equal too,
#
# .. math::
#
#    \frac{\partial L}{\partial W_{1,i}} = (W_{2})_{:,i}^\top \frac{\partial L}{\partial y}
#    \, \tanh'(W_{1,i} x)\, x^\top ,
#
# as long as the columns of :math:`W_2` are equal as well, so the units stay
# copies of one another forever: a layer of 32 units behaves like a layer of
# one. With all zeros it is worse still: :math:`W_2 = 0` sends no gradient to
# :math:`W_1` at all. Random values *break the symmetry*.
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.nn import init

nl.manual_seed(0)
x = nl.randn(256, 4)
y = (x[:, :1] * x[:, 1:2] - x[:, 2:3]).tanh()


def train_mlp(setup, steps=200):
    """A 4-32-1 tanh network whose weights are set by ``setup``; returns it and its losses."""
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
    setup(model)
    opt = nl.optim.SGD(model.parameters(), lr=0.2)
    losses = []
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


def all_zero(model):
    for p in model.parameters():
        init.zeros_(p)


def all_constant(model):
    for p in model.parameters():
        init.constant_(p, 0.1)


def random(model):
    init.xavier_uniform_(model[0].weight, gain=init.calculate_gain("tanh"))
    init.xavier_uniform_(model[2].weight)
    init.zeros_(model[0].bias)
    init.zeros_(model[2].bias)


results = {name: train_mlp(fn) for name, fn in
           [("zeros", all_zero), ("constant 0.1", all_constant), ("random (Xavier)", random)]}
zero_model = results["zeros"][0]
const_model = results["constant 0.1"][0]

# All zeros: the first layer never received a gradient.
assert np.all(zero_model[0].weight.data == 0)
# Constant: the 32 hidden units are still identical copies after 200 steps.
assert np.ptp(const_model[0].weight.data, axis=0).max() < 1e-6
# Random: the units differ, and the loss is far lower.
assert np.ptp(results["random (Xavier)"][0][0].weight.data, axis=0).max() > 0.1
assert results["random (Xavier)"][1][-1] < 0.5 * min(results["zeros"][1][-1], results["constant 0.1"][1][-1])

fig, ax = plt.subplots(figsize=(6, 3.2))
for name, (_, losses) in results.items():
    ax.plot(losses, label=name)
ax.set_yscale("log")
ax.set_xlabel("SGD step")
ax.set_ylabel("mean squared error")
ax.set_title("symmetric starts cannot use their width")
ax.legend()
fig.tight_layout()

# %%
# Choosing the scale: variance through depth
# ------------------------------------------
# For a layer :math:`y_j = \sum_{i=1}^{n_\text{in}} W_{ji} x_i` with
# independent zero-mean weights and inputs,
#
# .. math::
#
#    \operatorname{Var}(y_j) = n_\text{in}\, \operatorname{Var}(W)\, \mathbb{E}[x_i^2].
#
# Keeping the signal's scale from layer to layer therefore asks for
# :math:`\operatorname{Var}(W) \approx 1 / n_\text{in}`, corrected by what the
# nonlinearity does to the second moment:
#
# ==============================  =================================================  ==========================
# scheme                          :math:`\operatorname{Var}(W)`                      made for
# ==============================  =================================================  ==========================
# LeCun (1998)                    :math:`1 / n_\text{in}`                            linear, tanh-like, SELU
# Xavier / Glorot (2010)          :math:`2 / (n_\text{in} + n_\text{out})`           tanh, sigmoid
# He / Kaiming (2015)             :math:`2 / n_\text{in}`                            ReLU (it zeroes half)
# orthogonal (Saxe et al. 2014)   rows orthonormal, times a gain                     deep linear, recurrent
# ==============================  =================================================  ==========================
#
# First, each initializer must produce the variance it promises. These
# checks fail if a formula in ``nnlite/nn/init.py`` is wrong.
fan_in, fan_out = 400, 300
expected_std = {
    init.lecun_normal_: np.sqrt(1 / fan_in),
    init.xavier_normal_: np.sqrt(2 / (fan_in + fan_out)),
    init.kaiming_normal_: np.sqrt(2 / fan_in),
    init.lecun_uniform_: np.sqrt(1 / fan_in),
    init.xavier_uniform_: np.sqrt(2 / (fan_in + fan_out)),
    init.kaiming_uniform_: np.sqrt(2 / fan_in),
}
for fn, std in expected_std.items():
    w = nl.empty(fan_out, fan_in)
    if fn in (init.kaiming_normal_, init.kaiming_uniform_):
        fn(w, nonlinearity="relu")
    else:
        fn(w)
    measured = float(w.data.std())
    print(f"{fn.__name__:<17} std {measured:.5f}  expected {std:.5f}")
    assert abs(measured / std - 1) < 0.03, fn.__name__

q = init.orthogonal_(nl.empty(64, 64)).data
assert np.allclose(q @ q.T, np.eye(64), atol=1e-5)

# %%
# Now push a batch through 30 layers of width 128 and record the scale of
# each layer's output (its second moment :math:`\mathbb{E}[h^2]`, the
# quantity the formula above carries from layer to layer). Every scheme is tried with the activation it was made
# for and, to see what goes wrong otherwise, ReLU networks are also started
# with Xavier and with a "small random" N(0, 0.01²).
depth, width = 30, 128
inputs = nl.randn(512, width)


def activation_variances(fill, activation):
    nl.manual_seed(1)
    h, out = inputs, []
    with nl.no_grad():
        for _ in range(depth):
            layer = nn.Linear(width, width, bias=False)
            fill(layer.weight)
            h = activation(layer(h))
            out.append(float(np.mean(h.data.astype(np.float64) ** 2)))
    return np.array(out)


relu, tanh, identity = nl.relu, nl.tanh, (lambda t: t)
runs = {
    "He + ReLU": (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), relu),
    "Xavier + ReLU": (init.xavier_normal_, relu),
    "N(0, 0.01²) + ReLU": (lambda w: init.normal_(w, std=0.01), relu),
    "Xavier + tanh": (lambda w: init.xavier_normal_(w, gain=init.calculate_gain("tanh")), tanh),
    "LeCun + linear": (init.lecun_normal_, identity),
    "orthogonal + linear": (init.orthogonal_, identity),
}
variances = {name: activation_variances(*run) for name, run in runs.items()}

fig, ax = plt.subplots(figsize=(6.5, 4))
for name, v in variances.items():
    ax.plot(np.arange(1, depth + 1), v, label=name, lw=2 if "He" in name or "orth" in name else 1.2)
ax.set_yscale("log")
ax.set_xlabel("layer")
ax.set_ylabel("mean square of the layer's output")
ax.set_ylim(1e-12, 1e2)   # the N(0, 0.01²) start leaves the chart after a few layers
ax.set_title(f"scale of the activations through {depth} layers")
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()

for name, v in variances.items():
    print(f"{name:<22} layer 1: {v[0]:.3g}   layer {depth}: {v[-1]:.3g}")

# He keeps a ReLU network's signal; Xavier halves it at every layer; 0.01 kills it.
he = variances["He + ReLU"]
# At finite width the product of 30 random layers wanders by a small factor either
# way; a wrong scale would move it by a factor of about 2**30 instead.
assert 1 / 20 < he[-1] / he[0] < 20
# Xavier's Var(W) = 2 / (128 + 128) = 1 / 128 is half of He's, and ReLU keeps half of
# the second moment, so each layer multiplies E[h^2] by 128 * (1/128) * 1/2 = 1/2.
xavier = variances["Xavier + ReLU"]
per_layer = (xavier[-1] / xavier[0]) ** (1 / (depth - 1))
print(f"Xavier + ReLU: mean factor per layer {per_layer:.3f}")
assert 0.4 < per_layer < 0.6 and xavier[-1] / xavier[0] < 1e-6
assert variances["N(0, 0.01²) + ReLU"][-1] < 1e-30
# Orthogonal matrices preserve every vector's length exactly: the variance stays put.
orth = variances["orthogonal + linear"]
assert np.allclose(orth, float(np.mean(inputs.data.astype(np.float64) ** 2)), rtol=1e-3)
# LeCun keeps a linear stack's variance on average (it wanders, but does not explode or vanish).
assert 0.1 < variances["LeCun + linear"][-1] < 10
# tanh with Xavier's gain shrinks slowly rather than geometrically.
assert variances["Xavier + tanh"][-1] > 0.01

# %%
# Starting from pre-trained values
# --------------------------------
# The best starting point is often someone else's end point: parameters
# trained on a related task. Training once, saving the ``state_dict`` to a
# safetensors file and loading it into a freshly built model of the same
# shape gives back exactly the same function; fine-tuning continues from
# there instead of from random values.
nl.manual_seed(2)
pretrained, pre_losses = train_mlp(random, steps=300)
path = os.path.join(tempfile.mkdtemp(), "mlp.safetensors")
nl.save_state_dict(pretrained.state_dict(), path)

fresh = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
loss_before = nn.functional.mse_loss(fresh(x), y).item()
fresh.load_state_dict(nl.load_state_dict(path))
loss_after = nn.functional.mse_loss(fresh(x), y).item()
print(f"fresh random model: loss {loss_before:.4f}; after load_state_dict: {loss_after:.4f}")

assert np.array_equal(fresh(x).data, pretrained(x).data)
assert loss_after < 0.2 * loss_before

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(pre_losses, label="training from random values")
ax.axhline(loss_after, color="C3", ls="--", label="pre-trained start")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("mean squared error")
ax.legend()
fig.tight_layout()

# %%
# What to take away
# -----------------
# * Equal starting values make equal units; random values break the tie.
# * The scale of the random values must match the fan-in and the
#   nonlinearity, or the signal shrinks or grows geometrically with depth.
# * Every scheme lives in ``nnlite/nn/init.py`` and records itself in
#   ``param.init``; ``load_state_dict`` starts from trained values instead.

#
# Exercises
# ---------
# 1. Repeat the depth experiment with width 512. Does He + ReLU wander less
#    from layer to layer, and why would width matter?
# 2. Use Xavier with ReLU but a gain of :math:`\sqrt 2`
#    (``gain=init.calculate_gain("relu")``). Which scheme does it become?
# 3. Initialise the 30-layer ReLU network with ``init.orthogonal_`` and gain
#    :math:`\sqrt 2`. Compare its curve with He's.
# 4. Fine-tune the loaded model for 50 steps at a 10 times smaller learning
#    rate than it was trained with. How far do its parameters move
#    (``nl.io.diff`` on the two saved files)?
