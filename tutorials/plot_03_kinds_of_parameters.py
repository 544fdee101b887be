r"""
Kinds of parameters
===================

All parameters are arrays of numbers updated by gradient descent, but they
play different roles, and the role decides how they are initialised, whether
weight decay should touch them, and how to read them. nnlite records the
role in ``Parameter.kind``:

================  ==================================================================
kind              role
================  ==================================================================
``weight``        connection strengths: linear layers, convolution filters,
                  attention projections, recurrent matrices
``bias``          an offset added after a weighted sum
``scale``         a multiplier per channel: the :math:`\gamma` of a normalisation
                  layer, the negative slope of a PReLU
``shift``         the additive :math:`\beta` of a normalisation layer
``embedding``     one learned vector per token of a vocabulary
``positional``    one learned vector per position in a sequence
``temperature``   a scalar that sharpens or flattens a softmax
``gate``          a learned multiplier on how much of a signal passes
================  ==================================================================

(``architecture`` and ``other`` complete the list.) This tutorial builds a
small transformer and a small CNN and reads the kinds off their parameter
tables — and sets them beside what is *not* a parameter: running
statistics and fixed positional encodings, which are buffers. Two layers then
stretch the picture: an activation function with a learned slope, and a
weight with three axes. It ends with pooling, whose layers have settings but nothing to learn, until the way a
window is summarised is itself given a learned exponent.
"""

# %%
# A small transformer
# -------------------
# Token embeddings and learned positions feed one pre-norm encoder layer, then
# a final layer norm, an output projection and a learned temperature on the
# logits. One encoder layer holds the attention projections
# :math:`W_Q, W_K, W_V` (stacked in ``in_proj_weight``, PyTorch's layout),
# the output projection :math:`W_O`, two feed-forward matrices, and two layer
# norms, each with a scale and a shift:
#
# .. math::
#
#    \operatorname{LayerNorm}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta .
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn


class TinyTransformer(nn.Module):
    def __init__(self, vocab=50, d_model=32, heads=4, max_len=16):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, d_model)
        self.position = nn.LearnedPositionalEmbedding(max_len, d_model)
        self.encoder = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.0,
                                                  batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.temperature = nn.Temperature(init=1.0)

    def forward(self, ids):
        h = self.encoder(self.position(self.token_embedding(ids)))
        return self.temperature(self.head(self.norm(h)))


def parameter_table(model):
    rows = [(name, p.kind, tuple(p.shape), p.data.size, p.trainable)
            for name, p in model.named_parameters()]
    print(f"{'name':<34} {'kind':<12} {'shape':<12} {'count':>6}")
    for name, kind, shape, count, _ in rows:
        print(f"{name:<34} {kind:<12} {str(shape):<12} {count:>6}")
    return rows


nl.manual_seed(0)
transformer = TinyTransformer()
t_rows = parameter_table(transformer)
t_kind = {name: kind for name, kind, *_ in t_rows}

assert t_kind["token_embedding.weight"] == "embedding"
assert t_kind["position.weight"] == "positional"
assert t_kind["encoder.self_attn.in_proj_weight"] == "weight"
assert transformer.encoder.self_attn.in_proj_weight.shape == (3 * 32, 32)   # W_Q, W_K, W_V stacked
assert t_kind["encoder.self_attn.out_proj.weight"] == "weight"
assert t_kind["encoder.norm1.weight"] == "scale" and t_kind["encoder.norm1.bias"] == "shift"
assert t_kind["temperature.log_temperature"] == "temperature"
assert transformer(nl.randint(0, 50, (2, 16))).shape == (2, 16, 50)

# %%
# Attention projections are ordinary weights with a structured job. Splitting
# ``in_proj_weight`` into its three blocks gives :math:`W_Q`, :math:`W_K` and
# :math:`W_V`; each head uses a slice of :math:`d/h = 8` rows of each.
w = transformer.encoder.self_attn.in_proj_weight.data
w_q, w_k, w_v = np.split(w, 3)
print("W_Q", w_q.shape, "W_K", w_k.shape, "W_V", w_v.shape, "rows per head:", 32 // 4)
assert w_q.shape == w_k.shape == w_v.shape == (32, 32)

# %%
# A temperature and a gate
# ------------------------
# The temperature is stored as :math:`\log T`, so :math:`T = e^{\log T}`
# stays positive whatever step the optimizer takes. Dividing logits by
# :math:`T > 1` flattens the softmax; :math:`T < 1` sharpens it, and the
# argmax never changes.
#
# nnlite's GLU and the LSTM/GRU gates compute their gate values from ordinary
# weights. A *gate parameter* of its own is a learned number that scales a
# whole branch, as in ReZero (Bachlechner et al., 2020):
# :math:`x + \alpha\, f(x)` with :math:`\alpha` starting at zero, so that each
# residual block starts as the identity. No built-in layer owns one, so we
# write the module here — five lines — with a Parameter of kind ``gate``.


class GatedResidual(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.branch = nn.Linear(dim, dim)
        self.alpha = nn.Parameter(nl.zeros(()), kind="gate")

    def forward(self, x):
        return x + self.alpha * nl.tanh(self.branch(x))


logits = nl.tensor([[2.0, 1.0, 0.0]])
probs = {}
for T in (0.5, 1.0, 2.0):
    probs[T] = nn.functional.softmax(nn.Temperature(init=T)(logits), dim=-1).data[0]
    print(f"T = {T}: {np.round(probs[T], 3)}")
assert probs[0.5][0] > probs[1.0][0] > probs[2.0][0]
assert len({int(np.argmax(p)) for p in probs.values()}) == 1

block = GatedResidual(8)
x = nl.randn(4, 8)
assert np.array_equal(block(x).data, x.data)           # alpha = 0: the block starts as the identity
assert dict(block.named_parameters())["alpha"].kind == "gate"

# %%
# A small CNN, and what is not a parameter
# ----------------------------------------
# A convolution's weight is a stack of filters, shape
# :math:`(C_\text{out}, C_\text{in}, k_h, k_w)`; the same filter is applied at
# every position of the image. Batch norm contributes a scale and a shift per
# channel — and three *buffers* that are not parameters at all: the running
# mean, the running variance and a batch counter, moved by averaging during
# training, never by a gradient.
cnn = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
c_rows = parameter_table(cnn)
print("buffers:", [name for name, _ in cnn.named_buffers()])

assert cnn[0].weight.shape == (8, 1, 3, 3) and cnn[0].weight.kind == "weight"
assert cnn[1].weight.kind == "scale" and cnn[1].bias.kind == "shift"
buffers = dict(cnn.named_buffers())
assert set(buffers) == {f"{i}.{b}" for i in (1, 5) for b in ("running_mean", "running_var", "num_batches_tracked")}
param_ids = {id(p) for p in cnn.parameters()}
assert not any(id(b) in param_ids for b in buffers.values())

# One training-mode forward pass moves the running mean; no optimizer is involved.
before = cnn[1].running_mean.data.copy()
cnn.train()
cnn(nl.randn(16, 1, 8, 8) + 3.0)
assert not np.allclose(cnn[1].running_mean.data, before)
assert cnn[1].weight.grad is None

# %%
# The same filters, read the other way: a transposed convolution (the
# upsampling layer of decoders and GAN generators) holds a weight of the same
# size as a convolution between the same channels, stored as
# :math:`(C_\text{in}, C_\text{out}, k_h, k_w)`. It is the convolution's
# adjoint: for a convolution :math:`y = Wx` with stride 2, the transposed
# layer computes :math:`W^\top y`, spreading each input pixel over a window of
# the output instead of summing a window into one pixel, so
# :math:`\langle Wx, y \rangle = \langle x, W^\top y \rangle`.
down = nn.Conv2d(8, 16, 4, stride=2, padding=1, bias=False)
up = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, bias=False)
with nl.no_grad():
    up.weight.copy_(down.weight)           # the same numbers, (16, 8, 4, 4) in both
x_img, y_img = nl.randn(2, 8, 16, 16), nl.randn(2, 16, 8, 8)
lhs = float((down(x_img) * y_img).sum().item())
rhs = float((x_img * up(y_img)).sum().item())
print(f"down {tuple(x_img.shape)} -> {tuple(down(x_img).shape)}; up {tuple(y_img.shape)} -> "
      f"{tuple(up(y_img).shape)}; <Wx, y> = {lhs:.4f}, <x, W^T y> = {rhs:.4f}")
assert up.weight.shape == down.weight.shape == (16, 8, 4, 4)
assert up(y_img).shape == (2, 8, 16, 16)
assert abs(lhs - rhs) < 1e-3 * max(1.0, abs(lhs))

# %%
# Instance norm standardises each image's channels over that image's own
# positions, not over the batch. By default (``affine=False``, as in PyTorch)
# it has no scale and no shift, and keeps no running statistics: nothing to
# learn and nothing to save, where batch norm has two parameters per channel.
assert nn.InstanceNorm2d(8).num_parameters() == 0 and nn.InstanceNorm2d(8).state_dict() == {}
assert nn.BatchNorm2d(8).num_parameters() == 2 * 8
assert nn.InstanceNorm2d(8, affine=True).weight.kind == "scale"

# %%
# A fixed positional encoding is a buffer too: the sinusoids of Vaswani et al.
# are computed, not learned, and not even saved (``persistent=False``).
sinus = nn.SinusoidalPositionalEncoding(32, max_len=16)
assert sinus.num_parameters() == 0 and "pe" in dict(sinus.named_buffers())
assert "pe" not in sinus.state_dict()

# %%
# Both parameter tables, by kind
# ------------------------------
counts_t = Counter()
for name, kind, shape, count, _ in t_rows:
    counts_t[kind] += count
counts_c = Counter()
for name, kind, shape, count, _ in c_rows:
    counts_c[kind] += count
kinds = [k for k in nl.parameter.KINDS if counts_t[k] or counts_c[k]]

fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=False)
for ax, counts, title in ((axes[0], counts_t, "tiny transformer"), (axes[1], counts_c, "small CNN")):
    values = [counts[k] for k in kinds]
    ax.barh(kinds, values, color=[f"C{i}" for i in range(len(kinds))])
    ax.set_xscale("symlog", linthresh=1)
    ax.set_title(f"{title}: {sum(values)} parameters")
    ax.invert_yaxis()
    ax.set_xlabel("parameters (symlog)")
fig.tight_layout()

assert sum(counts_t.values()) == transformer.num_parameters()
assert sum(counts_c.values()) == cnn.num_parameters()
assert counts_t["temperature"] == 1 and counts_t["positional"] == 16 * 32
assert counts_c["scale"] == counts_c["shift"] == 8 + 16

# %%
# Why the kind matters: weight decay
# ----------------------------------
# Decaying a weight towards zero prefers simpler functions; decaying a bias, a
# norm's scale, an embedding or a single temperature towards zero does not mean
# anything as useful (the temperature is stored as :math:`\log T`, so decay would
# drag :math:`T` towards 1 whatever the data say).
# :func:`nnlite.optim.param_groups_by_kind` reads the kinds and builds the two
# usual parameter groups.
groups = nl.optim.param_groups_by_kind(transformer, weight_decay=0.1)
for g in groups:
    print(f"weight_decay={g['weight_decay']}: {Counter(p.kind for p in g['params'])}")
decayed = {p.kind for p in groups[0]["params"]}
assert decayed <= {"weight", "architecture", "other"}
assert {p.kind for p in groups[1]["params"]} == {"bias", "scale", "shift", "embedding", "positional",
                                                 "temperature"}

# %%
# Parameters beyond matrices
# --------------------------
# So far every parameter was a matrix that connects units, or a vector with
# one entry per unit. Two layers break that pattern.
#
# The first learns the *shape* of its activation function. PReLU (He et al.,
# 2015, "Delving Deep into Rectifiers") is a leaky ReLU whose negative slope
# :math:`a` is a parameter, one for the whole layer or one per channel:
#
# .. math::
#
#    \operatorname{PReLU}(x) = \max(0, x) + a \min(0, x) .
#
# The slope connects nothing to anything. It multiplies the negative half of
# each channel, as a norm layer's :math:`\gamma` multiplies the whole channel,
# so nnlite gives it the kind ``scale``, and weight decay leaves it alone. That
# is what the paper asks for: decay pulls :math:`a` towards 0, and a PReLU with
# :math:`a = 0` is a plain ReLU, so decay would favour one particular shape of
# activation rather than a simpler function.
act = nn.PReLU(8)
prelu_rows = parameter_table(act)
prelu_model = nn.Sequential(nn.Linear(4, 8), act)
slope_group = next(g for g in nl.optim.param_groups_by_kind(prelu_model, weight_decay=0.1)
                   if any(p is act.weight for p in g["params"]))
assert [(name, kind, count) for name, kind, _, count, _ in prelu_rows] == [("weight", "scale", 8)]
assert slope_group["weight_decay"] == 0.0 and len(slope_group["params"]) == 2   # with the bias

# %%
# Is the slope really learned? The data below were made by a leaky ReLU with
# slope 0.3, plus a little noise. A PReLU that starts as the identity
# (:math:`a = 1`) is fitted to them with Adam, once without weight decay and
# once with the (coupled) decay ``weight_decay=0.5``. Without decay the slope
# must end at the least-squares value, which the noise moves only slightly from
# 0.3. With decay the loss gains :math:`\tfrac{\lambda}{2} a^2`, and writing
# :math:`m = \min(0, x)` for the part of the input the slope multiplies, the
# gradient of the mean squared error vanishes at
#
# .. math::
#
#    a^\ast = \frac{\operatorname{mean}(m\, t)}{\operatorname{mean}(m^2) + \lambda / 2} ,
#
# about :math:`0.3 \cdot 0.5 / (0.5 + 0.25) = 0.2` here, since
# :math:`\operatorname{mean}(m^2) \approx 0.5` for standard normal inputs.


def fit_slope(weight_decay, steps=200):
    nl.manual_seed(0)
    model = nn.PReLU(init=1.0)
    x = nl.randn(512, 1)
    target = nn.functional.leaky_relu(x, 0.3) + 0.05 * nl.randn(512, 1)
    optimizer = nl.optim.Adam(model.parameters(), lr=0.05, weight_decay=weight_decay)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), target).backward()
        optimizer.step()
        history.append(model.weight.item())
    m = np.minimum(x.data, 0.0)
    best = (m * target.data).mean() / ((m * m).mean() + weight_decay / 2)
    return np.array(history), best


slopes, best = fit_slope(0.0)
slopes_decayed, best_decayed = fit_slope(0.5)
print(f"without weight decay: a = 1 -> {slopes[-1]:.4f} (least squares: {best:.4f})")
print(f"with weight_decay=0.5: a = 1 -> {slopes_decayed[-1]:.4f} (predicted: {best_decayed:.4f})")

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(slopes, label="no weight decay")
ax.plot(slopes_decayed, label="weight_decay=0.5")
ax.axhline(0.3, color="gray", lw=0.8, ls="--", label="slope that made the data")
ax.set_xlabel("Adam step")
ax.set_ylabel("learned slope a")
ax.legend()
fig.tight_layout()

assert abs(slopes[-1] - 0.3) < 0.01 and abs(slopes[-1] - best) < 1e-3
assert abs(slopes_decayed[-1] - best_decayed) < 1e-3 and slopes_decayed[-1] < 0.22

# %%
# The second layer has a weight with three axes. ``nn.Bilinear`` combines two
# inputs, and each output :math:`k` has its own matrix :math:`A_k`, which
# weighs every product of a feature of one input with a feature of the other:
#
# .. math::
#
#    y_k = x_1^\top A_k\, x_2 + b_k = \sum_{i, j} x_{1,i}\, (A_k)_{ij}\, x_{2,j} + b_k .
#
# The matrices are stacked into ``weight`` of shape
# :math:`(\text{out}, \text{in}_1, \text{in}_2)`, so the layer has
# :math:`\text{out} \cdot \text{in}_1 \cdot \text{in}_2 + \text{out}`
# parameters. The count grows with the *product* of the two widths; a Linear
# layer on the concatenated inputs needs only
# :math:`\text{out} \cdot (\text{in}_1 + \text{in}_2) + \text{out}`, but it can
# only add the two inputs' contributions, never multiply them.
pairs = nn.Bilinear(5, 3, 4)
pair_rows = parameter_table(pairs)
x1, x2 = nl.randn(2, 5), nl.randn(2, 3)
y = pairs(x1, x2)
by_hand = x1.data[1] @ pairs.weight.data[2] @ x2.data[1] + pairs.bias.data[2]   # y_2 of the second pair
print(f"y[1, 2] = {y.data[1, 2]:.5f}, x1^T A_2 x2 + b_2 = {by_hand:.5f}")

assert [(name, kind, shape) for name, kind, shape, *_ in pair_rows] == [("weight", "weight", (4, 5, 3)),
                                                                        ("bias", "bias", (4,))]
assert pairs.num_parameters() == 4 * 5 * 3 + 4
assert nn.Linear(5 + 3, 4).num_parameters() == 4 * (5 + 3) + 4 < pairs.num_parameters()
assert np.isclose(y.data[1, 2], by_hand, rtol=1e-5, atol=1e-6)

# %%
# Pooling parameters
# ------------------
# A pooling layer replaces each window of a feature map by a single number. Its
# window size and stride are *hyperparameters*: the model's author picks them,
# the layer's repr shows them, and no gradient ever reaches them. Max pooling,
# average pooling and power-average pooling with a fixed exponent have no
# parameters at all, so their state dicts are empty.
F = nn.functional
pools = [nn.MaxPool2d(2), nn.AvgPool2d(3, stride=2), nn.LPPool2d(2, 2)]
for pool in pools:
    print(f"{pool}: {pool.num_parameters()} parameters")
assert all(pool.num_parameters() == 0 and len(pool.state_dict()) == 0 for pool in pools)

# %%
# The rule that summarises a window can still hold a number. For a window
# :math:`X` of :math:`k` positive values, the *power mean* with exponent
# :math:`p` is
#
# .. math::
#
#    M_p(X) = \Big(\frac{1}{k} \sum_{x \in X} x^p\Big)^{1/p} .
#
# At :math:`p = 1` it is the plain average, at :math:`p = 2` the root mean
# square. It never decreases as :math:`p` grows, and it tends to the window's
# largest value: raised to a high power, the biggest entry dwarfs all the
# others, and the :math:`1/p`-th root then gives back that entry alone.
# ``nn.LPPool2d`` and :func:`nnlite.nn.functional.lp_pool1d` follow PyTorch
# and leave out the :math:`1/k`: they return
# :math:`(\sum_{x \in X} x^p)^{1/p} = k^{1/p} M_p(X)`, which is sum pooling at
# :math:`p = 1` and max pooling (of :math:`|x|`) at ``p = float("inf")``.
# Dividing by :math:`k^{1/p}` recovers the mean. Here is one window of eight
# values as :math:`p` runs from 1 to 100.
window = nl.tensor([[[0.15, 0.4, 0.9, 0.3, 0.65, 0.1, 0.5, 0.8]]])
k = window.shape[-1]


def power_mean(x, p, kernel_size):
    return F.lp_pool1d(x, p, kernel_size) / kernel_size ** (1 / p)


ps = np.geomspace(1, 100, 40)
means = np.array([power_mean(window, float(p), k).data.item() for p in ps])
for p in (1, 2, 4, 16, 100):
    print(f"p = {p:>3}: M_p = {power_mean(window, float(p), k).data.item():.3f}")

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.semilogx(ps, means, label=r"$M_p$ of the window")
ax.axhline(window.data.mean(), color="C1", ls="--", label="average")
ax.axhline(window.data.max(), color="C2", ls=":", label="maximum")
ax.set_xlabel("exponent p")
ax.set_ylabel("pooled value")
ax.legend()
fig.tight_layout()

assert np.isclose(means[0], window.data.mean(), rtol=1e-6)                  # p = 1: the average
assert np.all(np.diff(means) > 0)                                            # rising with p ...
assert window.data.max() - means[-1] < 0.05 * window.data.max()            # ... towards the max
assert F.lp_pool1d(window, float("inf"), k).data.item() == window.data.max()

# %%
# How much of the result each value is responsible for shows why :math:`p`
# acts like a temperature. Differentiating :math:`\log M_p` with respect to
# :math:`\log x_i` gives
#
# .. math::
#
#    \frac{\partial \log M_p}{\partial \log x_i} = \frac{x_i^p}{\sum_j x_j^p}
#    = \operatorname{softmax}(p \log x)_i ,
#
# a softmax over :math:`\log x` with inverse temperature :math:`p`. A large
# :math:`p` hands nearly all of the credit to the largest value, as a cold
# softmax does; as :math:`p` falls towards 0 the shares even out. Autograd
# agrees:
log_x = nl.tensor(np.log(window.data), requires_grad=True)
nl.log(power_mean(nl.exp(log_x), 4.0, k)).sum().backward()
shares = F.softmax(4.0 * log_x.detach(), dim=-1).data
print("shares of the window at p = 4:", np.round(log_x.grad.data.ravel(), 3))
assert np.allclose(log_x.grad.data, shares, atol=1e-6)

# %%
# Generalised-mean (GeM) pooling (Radenović et al., 2018) turns :math:`p`
# into a parameter, starts it at 3 and lets gradient descent choose how close
# to max pooling the network should be. nnlite's ``lp_pool1d`` and
# ``lp_pool2d`` accept a one-element tensor as the exponent (PyTorch documents
# a plain float), so the gradient reaches :math:`p` through both powers. We give
# that parameter the kind ``temperature``, for the reason just seen; weight
# decay then leaves it alone.
#
# Powers need positive inputs. A negative number has no real :math:`p`-th
# power for a non-integer :math:`p` (the result is NaN), and an even
# :math:`p` would count :math:`-x` as much as :math:`x`. Zero is a delicate
# point: the derivative of :math:`x^p` with respect to :math:`p` is
# :math:`x^p \log x`, which tends to 0 as :math:`x \to 0` but, written as it
# stands, multiplies 0 by :math:`\log 0 = -\infty`; a library must treat
# :math:`x = 0` on its own (nnlite's ``pow`` does, as PyTorch's does).
# Features after a ReLU are non-negative but often exactly zero, so GeM first
# clamps them to a small :math:`\epsilon`: every input is then strictly
# positive and no such special case is needed.


class GeMPool1d(nn.Module):
    def __init__(self, kernel_size, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(nl.tensor(p), kind="temperature")
        self.kernel_size, self.eps = kernel_size, eps

    def forward(self, x):
        return power_mean(x.clamp(min=self.eps), self.p, self.kernel_size)


gem_rows = parameter_table(GeMPool1d(4))
assert [(name, kind, count) for name, kind, _, count, _ in gem_rows] == [("p", "temperature", 1)]
assert [g["weight_decay"] for g in nl.optim.param_groups_by_kind(GeMPool1d(4), weight_decay=0.1)] == [0.0]

# %%
# Can gradient descent find the right aggregation when we know what it is?
# The inputs are random positive signals; the targets pool windows of four
# with a known rule. Two copies of the one-parameter model start at
# :math:`p = 3`: one is trained on targets made by max pooling, the other on
# targets made by average pooling, both with Adam on the mean squared error.


def learn_exponent(make_target, steps=150, seed=0):
    nl.manual_seed(seed)
    model = GeMPool1d(4)
    optimizer = nl.optim.Adam(model.parameters(), lr=0.05)
    x = nl.rand(64, 8, 32)
    target = make_target(x)
    history, losses = [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        history.append(model.p.data.item())
        losses.append(loss.item())
    return np.array(history), np.array(losses)


p_max, loss_max = learn_exponent(lambda x: F.max_pool1d(x, 4))
p_avg, loss_avg = learn_exponent(lambda x: F.avg_pool1d(x, 4))
print(f"targets by max pooling:     p = 3 -> {p_max[-1]:.2f}")
print(f"targets by average pooling: p = 3 -> {p_avg[-1]:.3f}")

fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(p_max, label="targets: max pooling")
ax.plot(p_avg, label="targets: average pooling")
ax.axhline(1.0, color="gray", lw=0.8)
ax.set_xlabel("Adam step")
ax.set_ylabel("learned exponent p")
ax.legend()
fig.tight_layout()

assert p_max[-1] > 6.0 and np.all(np.diff(p_max) > 0)     # climbing towards max pooling
assert abs(p_avg[-1] - 1.0) < 0.02                        # settled on the average
assert loss_max[-1] < 0.5 * loss_max[0] and loss_avg[-1] < 1e-3 * loss_avg[0]

# %%
# Against max-pooled targets :math:`p` never stops rising: the maximum is the
# limit :math:`p \to \infty`, which no finite number of steps reaches, so each
# step only brings the power mean a little closer. Against average-pooled
# targets :math:`p` comes down to 1, where the power mean *is* the average, and
# the loss all but vanishes. In a real network nobody knows the right rule in
# advance, and that is the point of learning :math:`p`: the data choose a
# place between the average and the maximum.

# %%
# Summary
# -------
# * ``Parameter.kind`` records each parameter's role: the tiny transformer has
#   embeddings, learned positions, weights (:math:`W_Q, W_K, W_V` stacked in
#   ``in_proj_weight``), the scales and shifts of its layer norms, and a
#   temperature.
# * :class:`~nnlite.nn.Temperature` stores :math:`\log T`, so :math:`T` stays
#   positive; it flattens or sharpens the softmax and never changes the argmax.
#   A ``gate`` parameter that starts at zero makes a residual block start as
#   the identity.
# * Batch norm's running statistics and the sinusoids of
#   :class:`~nnlite.nn.SinusoidalPositionalEncoding` are buffers, not
#   parameters: a forward pass in training mode moves the running mean with no
#   gradient, and the sinusoids are not even saved.
# * A transposed convolution holds the filters of the convolution between the
#   same channels, stored as :math:`(C_\text{in}, C_\text{out}, k_h, k_w)`, and
#   applies their adjoint: it upsamples where the convolution downsamples.
# * :func:`nnlite.optim.param_groups_by_kind` reads the kinds and decays only
#   the weights, leaving biases, scales, shifts, embeddings, positions and the
#   temperature alone.
# * Parameters need not connect units. PReLU's learned slope has the kind
#   ``scale`` and stays out of weight decay, which would pull it towards a plain
#   ReLU (from 0.3 to 0.2 in the fit above). Bilinear's weight has three axes,
#   one :math:`\text{in}_1 \times \text{in}_2` matrix per output, and a count
#   that grows with the product of the input widths.
# * Pooling layers have settings but no parameters. The power mean behind
#   :func:`nnlite.nn.functional.lp_pool1d` rises from the average at
#   :math:`p = 1` towards the maximum, and the gradient of its logarithm with
#   respect to :math:`\log x` is a softmax with inverse temperature :math:`p`.
# * Made a ``temperature`` parameter, :math:`p` is learned by Adam: it settles
#   at 1 on average-pooled targets and keeps climbing on max-pooled ones.
#
# Exercises
# ---------
# 1. Add ``nn.RMSNorm(32)`` to the transformer. Which kind does its parameter
#    get, and which weight-decay group does it join?
# 2. Pass ``no_decay_kinds=("bias",)`` to ``param_groups_by_kind``. Which
#    parameters are now decayed that were not before?
# 3. Build the CNN with ``bias=False`` in every convolution followed by a batch
#    norm. How many parameters does that save, and why is the bias redundant
#    there?
# 4. Make the targets with ``power_mean(x, 4.0, 4)`` instead of max or average
#    pooling. Does the learned exponent find 4, and how many steps does it need
#    from a start of 3 and from a start of 8?
# 5. Set ``eps=0`` in ``GeMPool1d`` and feed it signals that contain exact
#    zeros, and windows that are all zero. Is ``p.grad`` finite? Work out by
#    hand the limit of :math:`x^p \log x` as :math:`x \to 0` and compare it
#    with the gradient autograd returns for ``nl.tensor(0.0) ** p``.
# 6. Give ``nn.PReLU(2)`` inputs of shape ``(N, 2)`` whose two columns were made
#    by leaky ReLUs with slopes 0.1 and 0.5. Does each channel's slope find its
#    own value? Where does ``nn.PReLU()``, with one slope for both, settle?
