r"""
Initialization
==============

Training starts from the values the parameters have before the first step,
and those values matter more than one would think. Start everything at zero
and many networks cannot learn at all; start with a random scale that is a
little too small or too large and the signal fades or explodes over the
layers of a deep network. This tutorial shows both failures and the
variance-preserving schemes that avoid them — Xavier (Glorot), He (Kaiming),
LeCun and orthogonal — then two starts that do more than keep the scale:
LeCun weights with SELU, which hold every layer at mean 0 and variance 1, and
``eye_``/``dirac_``, which make each layer the identity. It ends by starting a
model from pre-trained values.
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
# Self-normalising networks: LeCun normal with SELU
# -------------------------------------------------
# The table pairs LeCun's scheme with SELU, and the reason fits in a few
# lines. With zero-mean weights of variance :math:`1/n_\text{in}`, a layer's
# pre-activation :math:`z = W h` has mean about 0 and second moment
# :math:`\mathbb{E}[z^2] = q`, where :math:`q = \mathbb{E}[h^2]` is the second
# moment of the layer's input; being a sum of many small independent terms, it
# is also close to normal. The activation :math:`f` then hands the next layer
# the second moment
#
# .. math::
#
#    q_\text{next} = g(q) = \mathbb{E}\big[f(\sqrt{q}\,\varepsilon)^2\big],
#    \qquad \varepsilon \sim \mathcal{N}(0, 1).
#
# Depth applies :math:`g` over and over. The scale survives only if :math:`g`
# has a fixed point :math:`q^* = g(q^*)` above zero that pulls nearby values in,
# :math:`|g'(q^*)| < 1`. For ReLU, :math:`g(q) = q/2`, so the only fixed point is
# 0 (He's factor 2 in :math:`\operatorname{Var}(W)` is there to cancel the
# 1/2). For tanh, :math:`g(q) < q` for every :math:`q > 0` and the slope at 0
# is 1: the signal fades, slowly. For small :math:`z`,
# :math:`\tanh^2 z \approx z^2 - \tfrac23 z^4`, so :math:`g(q) \approx q - 2q^2`
# and after :math:`l` layers :math:`q \approx 1/(2l)`. SELU (Klambauer et al.,
# 2017, "Self-Normalizing Neural Networks"),
#
# .. math::
#
#    \operatorname{selu}(z) = \lambda \begin{cases} z, & z > 0, \\
#                                                 \alpha\,(e^{z} - 1), & z \le 0, \end{cases}
#    \qquad \alpha \approx 1.6733, \quad \lambda \approx 1.0507,
#
# has two constants, and they are fixed by two equations: for a standard normal
# :math:`\varepsilon`, :math:`\mathbb{E}[\operatorname{selu}(\varepsilon)] = 0`
# and :math:`\mathbb{E}[\operatorname{selu}(\varepsilon)^2] = 1`. A layer fed
# mean 0 and variance 1 then returns mean 0 and variance 1, so :math:`q^* = 1`.
# The fixed point attracts because the two sides pull in opposite directions:
# above 0 the slope :math:`\lambda > 1` enlarges the signal, while below 0 the
# output never falls under :math:`-\lambda\alpha`, which squeezes the negative
# half of a large signal. The two balance at :math:`q = 1`.
#
# We can evaluate :math:`g` by numerical integration over a fine grid of
# :math:`\varepsilon`, with the activations themselves.
F = nn.functional
grid = np.linspace(-10, 10, 20001)
density = np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi) * (grid[1] - grid[0])


def moment_map(f, q, power=2):
    """E[f(sqrt(q) eps)^power] for a standard normal eps, by summing over the grid."""
    values = f(nl.tensor(np.sqrt(q) * grid)).data
    return float(np.sum(values ** power * density))


selu_mean, selu_q = moment_map(F.selu, 1.0, power=1), moment_map(F.selu, 1.0)
selu_slope = (moment_map(F.selu, 1.01) - moment_map(F.selu, 0.99)) / 0.02
print(f"SELU of a standard normal: mean {selu_mean:.2e}, second moment {selu_q:.8f}; g'(1) = {selu_slope:.3f}")
# (0, 1) is a fixed point, and an attracting one: a deviation of q from 1 shrinks at every layer.
assert abs(selu_mean) < 1e-6 and abs(selu_q - 1) < 1e-6
assert 0 < selu_slope < 1
# ReLU halves q; tanh lowers it everywhere.
assert abs(moment_map(nl.relu, 2.0) - 1.0) < 1e-6
assert all(moment_map(nl.tanh, q) < q for q in (0.1, 1.0, 3.0))

# %%
# Now the experiment: 50 layers of width 256, LeCun-normal weights, no
# biases, on inputs standardised to mean 0 and variance 1 per feature. Two
# more SELU runs start from inputs scaled by 2 and by 1/2 (variance 4 and 1/4)
# to see the fixed point pull them back.
selu_depth, selu_width = 50, 256
raw = nl.randn(512, selu_width)
standardised = (raw - raw.mean(0, keepdim=True)) / raw.std(0, keepdim=True)


def layer_statistics(activation, start):
    """Mean and variance of every layer's output in a LeCun-initialised MLP."""
    nl.manual_seed(3)
    h, means, variances = start, [], []
    with nl.no_grad():
        for _ in range(selu_depth):
            layer = nn.Linear(selu_width, selu_width, bias=False)
            init.lecun_normal_(layer.weight)
            h = activation(layer(h))
            values = h.data.astype(np.float64)
            means.append(values.mean())
            variances.append(values.var())
    return np.array(means), np.array(variances)


selu_runs = {
    "SELU": (F.selu, standardised),
    "SELU, inputs × 2": (F.selu, standardised * 2.0),
    "SELU, inputs × 1/2": (F.selu, standardised * 0.5),
    "tanh": (nl.tanh, standardised),
    "ReLU": (nl.relu, standardised),
}
selu_stats = {name: layer_statistics(*run) for name, run in selu_runs.items()}

fig, (ax, ax_map) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
for name, (means, var) in selu_stats.items():
    ax.plot(np.arange(1, selu_depth + 1), var, label=f"LeCun + {name}", lw=2 if name == "SELU" else 1.2)
ax.axhline(1.0, color="gray", lw=0.8, ls=":")
ax.set_yscale("log")
ax.set_ylim(1e-4, 10)   # ReLU leaves the chart: it halves the variance at every layer
ax.set_xlabel("layer")
ax.set_ylabel("variance of the layer's output")
ax.set_title(f"{selu_depth} LeCun-normal layers of width {selu_width}")
ax.legend(fontsize=7)
qs = np.linspace(0.01, 3, 60)
for name, f in (("SELU", F.selu), ("tanh", nl.tanh), ("ReLU", nl.relu)):
    ax_map.plot(qs, [moment_map(f, q) for q in qs], label=name)
ax_map.plot(qs, qs, color="gray", lw=0.8, ls=":", label="$g(q) = q$")
ax_map.plot([1], [1], "ko", ms=4)
ax_map.set_xlabel("$q$, second moment in")
ax_map.set_ylabel("$g(q)$, second moment out")
ax_map.set_title("the map one layer applies")
ax_map.legend(fontsize=7)
fig.tight_layout()

for name, (means, var) in selu_stats.items():
    print(f"LeCun + {name:<20} variance at layers 1, 10, 50: {var[0]:.3g}, {var[9]:.3g}, {var[-1]:.3g}"
          f"   largest |mean|: {np.abs(means).max():.3f}")

# SELU: every one of the 50 layers stays near mean 0 and variance 1.
means, var = selu_stats["SELU"]
assert np.abs(means).max() < 0.1 and np.all((var > 0.85) & (var < 1.15))
# Started at variance 4 or 1/4, the first layer is where g puts it, far from 1;
# the last ten layers are back near 1.
for name, q in (("SELU, inputs × 2", 4.0), ("SELU, inputs × 1/2", 0.25)):
    var = selu_stats[name][1]
    predicted = moment_map(F.selu, q) - moment_map(F.selu, q, power=1) ** 2
    assert abs(var[0] / predicted - 1) < 0.1 and abs(var[0] - 1) > 0.5, name
    assert np.all(np.abs(var[-10:] - 1) < 0.15), name
# The same weights with tanh fade like 1/(2l); with ReLU geometrically (a factor 2 per layer).
tanh_var = selu_stats["tanh"][1]
assert 0.5 < tanh_var[-1] * 2 * selu_depth < 2 and tanh_var[-1] < 0.5 * tanh_var[9]
assert selu_stats["ReLU"][1][-1] < 1e-10

# %%
# Identity-preserving starts: ``eye_`` and ``dirac_``
# ---------------------------------------------------
# Every scheme so far keeps the *size* of the signal, on average. One can ask
# for more: that each layer start as the identity map, so that a deep stack
# computes :math:`f(x) = x` before training and each layer learns a change
# from "pass the input on". ``init.eye_`` writes the identity matrix into a
# Linear weight; ``init.dirac_`` writes its convolutional counterpart, a kernel
# that is 1 at its centre and 0 elsewhere and connects output channel
# :math:`i` to input channel :math:`i` only. With zero biases the identity is
# exact, not approximate: each output is one input times 1 plus other inputs
# times 0, and floating point rounds none of that.
#
# This is not the symmetric start of the first section: unit :math:`i` listens
# to input :math:`i` alone, so the units receive different gradients.


def identity_linear(width):
    layer = nn.Linear(width, width)
    init.eye_(layer.weight)
    init.zeros_(layer.bias)
    return layer


def identity_conv(channels, kernel_size, groups=1):
    conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=groups)
    init.dirac_(conv.weight, groups=groups)
    init.zeros_(conv.bias)
    return conv


signal = nl.randn(32, 64)
eye_stack = nn.Sequential(*[identity_linear(64) for _ in range(50)])
assert np.array_equal(eye_stack(signal).data, signal.data)   # bit for bit, through 50 layers
# With a ReLU after every layer the first ReLU removes the negative part; after
# that each layer hands its (non-negative) input on unchanged.
h = signal
for layer in eye_stack:
    h = nl.relu(layer(h))
assert np.array_equal(h.data, nl.relu(signal).data)

# 20 convolutions with kernels of size 1, 3 and 5, padded to keep 16 × 16, some
# grouped (groups=8 is a depthwise convolution).
image = nl.randn(2, 8, 16, 16)
conv_stack = nn.Sequential(*[identity_conv(8, k, g) for k, g in [(3, 1), (5, 1), (3, 4), (1, 1), (3, 8)] * 4])
assert np.array_equal(conv_stack(image).data, image.data)

# %%
# Neither function needs a square weight: ``eye_`` puts ones on the main
# diagonal of whatever shape it gets, so a layer with more outputs than inputs
# copies its input and pads zeros, and one with fewer keeps the first inputs and
# drops the rest; ``dirac_`` does the same with the channels inside each of
# its ``groups``, which must equal the convolution's own ``groups`` for the
# layer to be the identity.
wider, narrower = nn.Linear(4, 6), nn.Linear(5, 3)
for layer in (wider, narrower):
    init.eye_(layer.weight)
    init.zeros_(layer.bias)
a, b = nl.randn(3, 4), nl.randn(3, 5)
assert np.array_equal(wider(a).data[:, :4], a.data) and np.all(wider(a).data[:, 4:] == 0)
assert np.array_equal(narrower(b).data, b.data[:, :3])
mismatched = nn.Conv2d(8, 8, 3, padding=1, groups=4)
init.dirac_(mismatched.weight)   # groups=1: only the channels of the first group pass
init.zeros_(mismatched.bias)
assert np.array_equal(mismatched(image).data[:, :2], image.data[:, :2])
assert np.all(mismatched(image).data[:, 2:] == 0)

# %%
# Why start at the identity? In a deep stack *without* skip connections, the
# identity passes the signal forward and the gradient backward untouched,
# however deep the stack. A random start multiplies both by a random matrix at
# every layer, and their sizes drift geometrically. Below, 50 linear layers
# of width 64 (zero biases) start from ``eye_``, from ``nn.Linear``'s own
# default (``kaiming_uniform_`` with :math:`a = \sqrt 5`, so
# :math:`\operatorname{Var}(W) = 1/(3 n_\text{in})`), and from LeCun normal. For each
# layer we record the size of its output relative to the input and the size
# of the loss's gradient there relative to the gradient at the top.
nl.manual_seed(4)
target = nl.randn(32, 64)


def signal_and_gradient(fill):
    layers = [nn.Linear(64, 64) for _ in range(50)]
    for layer in layers:
        fill(layer.weight)
        init.zeros_(layer.bias)
    start = signal.detach().requires_grad_()
    hs = [start]
    for layer in layers:
        hs.append(layer(hs[-1]))
    loss = ((hs[-1] - target) ** 2).sum() * 0.5
    grads = nl.grad(loss, hs)
    size = [float(np.linalg.norm(h.data) / np.linalg.norm(signal.data)) for h in hs]
    grad_size = [float(np.linalg.norm(g.data) / np.linalg.norm(grads[-1].data)) for g in grads]
    return np.array(size), np.array(grad_size), grads


deep_runs = {
    "eye_": init.eye_,
    "nn.Linear default": lambda w: init.kaiming_uniform_(w, a=np.sqrt(5)),
    "LeCun normal": init.lecun_normal_,
}
deep = {name: signal_and_gradient(fill) for name, fill in deep_runs.items()}

fig, (ax_f, ax_b) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for name, (size, grad_size, _) in deep.items():
    ax_f.plot(size, label=name, lw=2 if name == "eye_" else 1.2)
    ax_b.plot(grad_size, label=name, lw=2 if name == "eye_" else 1.2)
ax_f.set_yscale("log")
ax_f.set_xlabel("layer")
ax_f.set_ylabel("relative size")
ax_f.set_title("forward: output size / input size")
ax_b.set_xlabel("layer")
ax_b.set_title("backward: gradient size / gradient at the top")
ax_b.legend(fontsize=8)
fig.tight_layout()

for name, (size, grad_size, _) in deep.items():
    print(f"{name:<18} output/input {size[-1]:.3g}   gradient at the input / at the top {grad_size[0]:.3g}")

# The identity keeps both exactly: the gradient reaching the input is the top's, bit for bit.
size, grad_size, grads = deep["eye_"]
assert np.all(size == 1.0) and np.array_equal(grads[0].data, grads[-1].data)
# The default start shrinks both by about sqrt(3) per layer: some 1e-12 after 50 layers.
size, grad_size, _ = deep["nn.Linear default"]
assert size[-1] < 1e-9 and grad_size[0] < 1e-9
# LeCun keeps the size on average, but a product of 50 random matrices wanders.
size, grad_size, _ = deep["LeCun normal"]
assert 0.02 < size[-1] < 50 and 0.02 < grad_size[0] < 50
# An orthogonal start keeps every length as well, but turns the vector: the
# output has the input's norm and is a different vector.
orth_stack = nn.Sequential(*[nn.Linear(64, 64, bias=False) for _ in range(50)])
for layer in orth_stack:
    init.orthogonal_(layer.weight)
turned = orth_stack(signal).data
assert abs(np.linalg.norm(turned) / np.linalg.norm(signal.data) - 1) < 1e-4
assert np.abs(turned - signal.data).max() > 0.5

# %%
# Both starts are in use. Le, Jaitly & Hinton (2015, "A Simple Way to
# Initialize Recurrent Networks of Rectified Linear Units") set a ReLU RNN's
# hidden-to-hidden matrix to the identity and its bias to zero (the IRNN): at
# first the hidden state is carried from step to step unchanged except for what
# each new input adds, so gradients through a long sequence keep their size,
# and the network could learn dependencies across hundreds of steps that
# defeated a randomly started one. Zagoruyko & Komodakis (2017, "DiracNets:
# Training Very Deep Neural Networks Without Skip-Connections") write every
# convolution's weight as a Dirac delta plus a learned part: the delta does the
# job of a ResNet's skip connection inside the weight itself, and very deep
# plain networks train.

# %%
# Keeping a weight orthogonal while it trains
# -------------------------------------------
# An initializer only chooses where training starts. The first gradient step
# moves an orthogonal matrix off the set of orthogonal matrices, and nothing
# brings it back: after training, its singular values have spread out. For a
# recurrent weight that matters, because the hidden state is multiplied by the
# same :math:`W` at every step, so a direction it stretches grows
# geometrically with the length of the sequence.
#
# ``nn.utils.parametrizations.orthogonal`` keeps the weight on the set for the
# whole of training. The optimizer no longer updates :math:`W` itself but an
# unconstrained matrix :math:`X`; the layer reads
#
# .. math:: W = B\, e^{A}, \qquad A = L - L^\top,
#
# where :math:`L` is the lower triangle of :math:`X` and :math:`B` (the buffer
# ``base``) is fixed when the parametrization is registered: the layer's weight
# at that moment if it is orthogonal, the Q of its QR decomposition if not.
# :math:`A` is skew-symmetric, so :math:`(e^{A})^\top e^{A} = e^{-A} e^{A} = I`:
# whatever :math:`X` holds, :math:`W` is orthogonal. :math:`X` starts at
# :math:`-I`, whose lower triangle cancels in :math:`L - L^\top`, so training
# starts at :math:`W = B`.
#
# The experiment: fit :math:`y = Mx` with a 64 x 64 linear layer, where
# :math:`M`'s singular values run from 0.5 to 2, once with a plain layer
# started by ``orthogonal_`` and once with the parametrization.
from nnlite.nn.utils.parametrizations import orthogonal

nl.manual_seed(5)
rng = np.random.default_rng(5)
u_m = np.linalg.qr(rng.standard_normal((64, 64)))[0]
v_m = np.linalg.qr(rng.standard_normal((64, 64)))[0]
target_map = (u_m * np.linspace(0.5, 2.0, 64)) @ v_m.T
inputs = nl.tensor(rng.standard_normal((256, 64)).astype(np.float32))
targets = nl.tensor((inputs.data @ target_map.T).astype(np.float32))

plain_layer = nn.Linear(64, 64, bias=False)
init.orthogonal_(plain_layer.weight)
kept_layer = orthogonal(nn.Linear(64, 64, bias=False))
final_loss = {}
for name, layer in (("plain", plain_layer), ("orthogonal", kept_layer)):
    optimizer = nl.optim.Adam(layer.parameters(), lr=0.02)
    for _ in range(500):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(layer(inputs), targets)
        loss.backward()
        optimizer.step()
    final_loss[name] = loss.item()

plain_sv = np.linalg.svd(plain_layer.weight.data, compute_uv=False)
kept_sv = np.linalg.svd(kept_layer.weight.data, compute_uv=False)
print(f"plain layer: singular values from {plain_sv.min():.3f} to {plain_sv.max():.3f}")
print(f"orthogonal parametrization: from {kept_sv.min():.6f} to {kept_sv.max():.6f}")
print(sorted(kept_layer.state_dict()))

# %%
# The plain layer learned :math:`M`, spread and all; the parametrized one
# could not, and every singular value is still 1 to float32 rounding.
assert plain_sv.min() < 0.51 and plain_sv.max() > 1.99 and final_loss["plain"] < 1e-6
assert np.abs(kept_sv - 1).max() < 1e-5

# %%
# What did it learn instead? Among orthogonal matrices, the one that best
# maps these inputs :math:`X` onto the targets :math:`Y` is :math:`UV^\top`
# from the SVD :math:`Y^\top X = U \Sigma V^\top` (the orthogonal
# Procrustes problem): roughly :math:`M` with its stretching taken out.
# Training comes close to it, and to its loss.
u_p, _, vt_p = np.linalg.svd(targets.data.T.astype(np.float64) @ inputs.data)
procrustes = u_p @ vt_p
procrustes_loss = np.mean((inputs.data @ procrustes.T - targets.data) ** 2)
print(f"loss {final_loss['orthogonal']:.4f}; the best orthogonal matrix's {procrustes_loss:.4f}")
assert final_loss["orthogonal"] < 1.01 * procrustes_loss
assert np.abs(kept_layer.weight.data - procrustes).max() < 0.05

# %%
# Now use each trained weight as a recurrence, :math:`h_{t+1} = W h_t`, for
# 50 steps. The orthogonal one carries the state's length unchanged; the plain
# one's grows by a factor per step that approaches the size of its largest
# eigenvalue.
start = rng.standard_normal(64)
states = {"plain": start, "orthogonal": start}
lengths = {"plain": [1.0], "orthogonal": [1.0]}
for _ in range(50):
    for name, layer in (("plain", plain_layer), ("orthogonal", kept_layer)):
        states[name] = layer.weight.data @ states[name]
        lengths[name].append(np.linalg.norm(states[name]) / np.linalg.norm(start))
rho = np.abs(np.linalg.eigvals(plain_layer.weight.data)).max()
print(f"after 50 steps: plain x{lengths['plain'][-1]:.3g} (largest |eigenvalue| {rho:.3f}), "
      f"orthogonal x{lengths['orthogonal'][-1]:.6f}")
assert abs(lengths["orthogonal"][-1] - 1) < 1e-3 and lengths["plain"][-1] > 1e4

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3))
ax1.plot(plain_sv, label="plain, orthogonal_ start")
ax1.plot(kept_sv, label="orthogonal parametrization")
ax1.set_xlabel("index")
ax1.set_ylabel("singular value after training")
ax1.legend()
ax2.semilogy(lengths["plain"], label="plain")
ax2.semilogy(lengths["orthogonal"], label="orthogonal parametrization")
ax2.set_xlabel("step t")
ax2.set_ylabel(r"$\|h_t\| / \|h_0\|$")
ax2.legend()
fig.tight_layout()

# %%
# The price is expressiveness: an orthogonal layer cannot scale, so it fits
# :math:`M` only up to its stretching. Recurrent networks that must remember
# across thousands of steps pay it gladly (Arjovsky, Shah & Bengio, 2016,
# "Unitary Evolution Recurrent Neural Networks"; Lezcano-Casado &
# Martínez-Rubio, 2019, "Cheap Orthogonal Constraints in Neural Networks",
# whose parametrization this is).

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
# Summary
# -------
# * Equal starting values make equal units; random values break the tie.
# * The scale of the random values must match the fan-in and the
#   nonlinearity, or the signal shrinks or grows geometrically with depth.
# * LeCun-normal weights with SELU hold every layer near mean 0 and variance
#   1 without a normalisation layer: SELU's two constants make that an
#   attracting fixed point of the map from one layer's second moment to the next.
# * ``eye_`` and ``dirac_`` start a layer as the exact identity, so a deep
#   stack passes its input, and the gradient, through unchanged at the start.
# * An orthogonal start is left behind by the first gradient step;
#   ``nn.utils.parametrizations.orthogonal`` keeps the weight orthogonal for the
#   whole of training by computing it as ``base @ matrix_exp(L - L^T)`` of an
#   unconstrained matrix.
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
# 5. Run the 50-layer experiment with ELU (``nn.functional.elu``) in place of
#    SELU. Plot its :math:`g(q)` next to SELU's: where is its fixed point, and
#    what happens to the variance with depth?
# 6. Start each of the 50 identity layers with a little noise on top,
#    ``eye_`` followed by ``layer.weight += 0.01 * nl.randn(64, 64)`` under
#    ``nl.no_grad()``. How far is the output from the input after 10, 25 and
#    50 layers, and how does that change with a noise of 0.1?
# 7. Build an IRNN: ``nn.RNN(16, 16, nonlinearity="relu")`` with
#    ``init.eye_`` on ``weight_hh_l0`` and both biases zeroed. Feed it a
#    sequence whose first step is random and whose other 99 steps are zero.
#    What is the hidden state after 100 steps, and what is it with the default
#    initialisation?
# 8. Repeat the orthogonal experiment with ``orthogonal_map="cayley"`` and
#    ``"householder"``. Do all three reach the Procrustes solution, and in how
#    many steps?
