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
``scale``         the multiplicative :math:`\gamma` of a normalisation layer
``shift``         the additive :math:`\beta` of a normalisation layer
``embedding``     one learned vector per token of a vocabulary
``positional``    one learned vector per position in a sequence
``temperature``   a scalar that sharpens or flattens a softmax
``gate``          a learned multiplier on how much of a signal passes
================  ==================================================================

(``architecture`` and ``other`` complete the list.) This tutorial builds a
small transformer and a small CNN and reads the kinds off their parameter
tables — and sets them beside what is *not* a parameter: running
statistics and fixed positional encodings, which are buffers.
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
# Exercises
# ---------
# 1. Add ``nn.RMSNorm(32)`` to the transformer. Which kind does its parameter
#    get, and which weight-decay group does it join?
# 2. Pass ``no_decay_kinds=("bias",)`` to ``param_groups_by_kind``. Which
#    parameters are now decayed that were not before?
# 3. Build the CNN with ``bias=False`` in every convolution followed by a batch
#    norm. How many parameters does that save, and why is the bias redundant
#    there?
