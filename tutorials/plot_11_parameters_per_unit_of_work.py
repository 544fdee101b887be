r"""
Parameters per unit of work
===========================

Some layers buy the same kind of computation with far fewer parameters.
This tutorial derives the parameter counts of the usual tricks — depthwise-
separable convolutions, bottlenecks, grouped-query and multi-query attention,
sharing one set of weights in many places — checks each formula against
nnlite's layers, and then measures what the savings cost in accuracy on two
small tasks.
"""

# %%
# Depthwise-separable convolutions
# --------------------------------
# A :math:`k \times k` convolution from :math:`C_{in}` to :math:`C_{out}`
# channels has a filter for every (output, input) channel pair:
#
# .. math::
#
#    P_{plain} = C_{in} C_{out} k^2 + C_{out}.
#
# A depthwise-separable convolution splits the job: a *depthwise* :math:`k \times k`
# convolution filters each channel on its own (``groups=C_in``), then a
# *pointwise* :math:`1 \times 1` convolution mixes the channels:
#
# .. math::
#
#    P_{sep} = (C_{in} k^2 + C_{in}) + (C_{in} C_{out} + C_{out}),
#    \qquad \frac{P_{sep}}{P_{plain}} \approx \frac{1}{C_{out}} + \frac{1}{k^2}.
#
# The multiply-adds per output position shrink by the same factor, since
# every weight is used once per position.
import time

import matplotlib.pyplot as plt

import nnlite as nl
from nnlite import efficiency, nn

start = time.perf_counter()


def plain_count(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def separable_count(c_in, c_out, k):
    return c_in * k * k + c_in + c_in * c_out + c_out


for c_in, c_out, k in [(32, 64, 3), (64, 64, 5), (3, 16, 3), (128, 256, 3)]:
    plain = nn.Conv2d(c_in, c_out, k)
    separable = nn.DepthwiseSeparableConv2d(c_in, c_out, k)
    assert plain.num_parameters() == plain_count(c_in, c_out, k)
    assert separable.num_parameters() == separable_count(c_in, c_out, k)
    ratio = separable.num_parameters() / plain.num_parameters()
    print(f"C_in={c_in:3d} C_out={c_out:3d} k={k}: plain {plain.num_parameters():7d}, "
          f"separable {separable.num_parameters():6d} ({ratio:.3f}; 1/C_out + 1/k^2 = {1 / c_out + 1 / k ** 2:.3f})")
    if c_in >= 32:
        assert abs(ratio - (1 / c_out + 1 / k ** 2)) < 0.02

# The FLOPs follow: nl.analysis.flops counts 2 per multiply-add.
x = nl.randn(1, 32, 16, 16)
flops_plain = nl.analysis.flops(nn.Conv2d(32, 64, 3, padding=1), x)
flops_sep = nl.analysis.flops(nn.DepthwiseSeparableConv2d(32, 64, 3, padding=1), x)
assert flops_plain == 2 * 16 * 16 * 64 * 32 * 9
assert flops_sep == 2 * 16 * 16 * (32 * 9 + 64 * 32)
print(f"FLOPs on a 16x16 image: plain {flops_plain}, separable {flops_sep} ({flops_plain / flops_sep:.1f}x fewer)")

# %%
# Bottlenecks
# -----------
# ResNet's bottleneck block runs its expensive :math:`3 \times 3` convolution
# on :math:`b` channels only, between a :math:`1 \times 1` reduction from
# :math:`C` and a :math:`1 \times 1` expansion back (each followed by a
# batch norm with 2 parameters per channel, and no conv bias):
#
# .. math::
#
#    P_{bottleneck} = C b + 9 b^2 + b C + 2(2b + C),
#
# against :math:`2(9C^2 + 2C)` for two full-width :math:`3 \times 3`
# convolutions. With :math:`b = C/4` the :math:`3 \times 3` part costs
# :math:`9C^2/16`: the block is dominated by the two :math:`1 \times 1` maps.
for C in (32, 64, 256):
    b = C // 4
    block = nn.Bottleneck(C, b)
    formula = C * b + 9 * b * b + b * C + 2 * (2 * b + C)
    assert block.num_parameters() == formula
    print(f"C={C:3d}, b={b:2d}: bottleneck {formula:6d} parameters, two 3x3 convs {2 * (9 * C * C + 2 * C):7d}")

# %%
# Grouped-query and multi-query attention
# ---------------------------------------
# Multi-head attention with width :math:`E` and :math:`H` heads of
# :math:`d = E/H` dimensions projects queries, keys and values with three
# :math:`E \times E` matrices. Grouped-query attention keeps :math:`H` query
# heads but only :math:`G` key/value heads, each shared by :math:`H/G` query
# heads:
#
# .. math::
#
#    P = \underbrace{E^2 + E}_{W_q} + \underbrace{2 (E G d + G d)}_{W_k, W_v}
#        + \underbrace{E^2 + E}_{W_o}.
#
# A decoder also stores keys and values of every past token: :math:`2 G d`
# numbers per token and layer instead of :math:`2E` — the *KV cache* shrinks
# by :math:`H/G`, which is why large language models use GQA.
E, H = 512, 8
d = E // H
counts = {}
for G in (8, 4, 2, 1):
    layer = nn.GroupedQueryAttention(E, H, G)
    formula = (E * E + E) + 2 * (E * G * d + G * d) + (E * E + E)
    assert layer.num_parameters() == formula
    counts[G] = (layer.num_parameters(), 2 * G * d)
    print(f"G={G}: {layer.num_parameters():7d} parameters, KV cache {2 * G * d:4d} numbers per token")
mha = nn.MultiheadAttention(E, H)
assert counts[8][0] == mha.num_parameters()       # G = H is ordinary multi-head attention
assert counts[1][1] * H == counts[8][1]            # MQA: an 8x smaller cache
# Every query head still attends over keys of the full length, so the outputs keep their shape:
assert nn.GroupedQueryAttention(E, H, 1)(nl.randn(2, 7, E)).shape == (2, 7, E)

# %%
# Shared against unshared parameters
# -----------------------------------
# A convolution is a Linear map applied at every position with the *same*
# weights. A *locally connected* layer does the same sliding but gives every
# position its own weights: the computation is identical, the parameters are
# multiplied by the number of output positions :math:`L_{out}`:
#
# .. math::
#
#    P_{conv} = C_{in} k C_{out} + C_{out}, \qquad P_{local} = L_{out} (C_{in} k C_{out} + C_{out}).
c_in, c_out, k, length = 4, 8, 3, 40
conv = nn.Conv1d(c_in, c_out, k)
l_out = conv(nl.randn(1, c_in, length)).shape[-1]
local = nn.ModuleList([nn.Linear(c_in * k, c_out) for _ in range(l_out)])   # one Linear per position
assert local.num_parameters() == l_out * conv.num_parameters()
print(f"Conv1d: {conv.num_parameters()} parameters; locally connected over {l_out} positions: "
      f"{local.num_parameters()}")

# Sharing across depth (as ALBERT does): one layer applied four times counts once.
shared_layer = nn.Linear(64, 64)
shared = nn.Sequential(shared_layer, nn.ReLU(), shared_layer, nn.ReLU(), shared_layer, nn.ReLU(), shared_layer)
unshared = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(64, 64), nn.ReLU())][:-1])
assert shared.num_parameters() == shared_layer.num_parameters()
assert unshared.num_parameters() == 4 * shared_layer.num_parameters()
assert nl.analysis.flops(shared, nl.randn(1, 64)) == nl.analysis.flops(unshared, nl.randn(1, 64))
print(f"depth 4: shared {shared.num_parameters()} parameters, unshared {unshared.num_parameters()}, "
      "same FLOPs")

# %%
# What the savings cost
# ---------------------
# Parameters are only half the story: a block with fewer parameters may
# also learn less. :mod:`nnlite.efficiency` trains the same small network
# with each block for a few epochs, on scikit-learn's 8x8 digits (conv
# blocks) and on MNIST-1D read as 10 tokens (attention), all from seed 0.
conv_rows = efficiency.compare_conv_blocks(seed=0, epochs=6)
attention_rows = efficiency.compare_attention(seed=0, epochs=8)
print(efficiency.format_table(conv_rows))
print(efficiency.format_table(attention_rows))
by_name = {r["model"]: r for r in conv_rows + attention_rows}
plain, sep, bott = by_name["plain"], by_name["depthwise_separable"], by_name["bottleneck"]
assert sep["parameters"] < plain["parameters"] / 4 and sep["flops_per_example"] < plain["flops_per_example"] / 4
assert bott["parameters"] < sep["parameters"]
assert plain["accuracy"] > 0.9 and sep["accuracy"] > plain["accuracy"] - 0.05
mha_row, mqa_row = attention_rows[0], attention_rows[-1]
assert mqa_row["attention_parameters"] < 0.6 * mha_row["attention_parameters"]
assert all(r["accuracy"] > 0.4 for r in attention_rows)     # all three learn the task (chance: 10%)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, rows, title in ((axes[0], conv_rows, "conv blocks on 8x8 digits"),
                        (axes[1], attention_rows, "attention on MNIST-1D tokens")):
    for r in rows:
        ax.scatter(r["parameters"], 100 * r["accuracy"], s=50)
        ax.annotate(r["model"], (r["parameters"], 100 * r["accuracy"]), textcoords="offset points",
                    xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
fig.tight_layout()
print(f"total time {time.perf_counter() - start:.0f} s")

# %%
# Summary
# -------
# * A depthwise-separable convolution needs about :math:`1/C_{out} + 1/k^2`
#   of a plain one's parameters and multiply-adds.
# * A bottleneck puts the :math:`3 \times 3` work on a quarter of the
#   channels; its :math:`1 \times 1` maps dominate the count.
# * Grouped-query attention shrinks the key/value projections and the KV
#   cache by :math:`H/G`; multi-query attention is :math:`G = 1`.
# * Sharing weights across positions (convolutions) or depth (one layer
#   reused) divides the parameters, not the FLOPs.
# * The short trainings above show what each saving costs on small tasks;
#   with so few epochs and one seed, differences of a few points are noise.
#
# Exercises
# ---------
# 1. For which :math:`C_{in}, C_{out}, k` does a depthwise-separable
#    convolution save *less* than 2x? Check with ``num_parameters``.
# 2. Run :func:`nnlite.efficiency.compare_attention` with three seeds. Is the
#    gap between MHA and MQA larger than the spread between seeds?
# 3. Add a ``"bottleneck"`` variant with :math:`b = C/2`. Where does it land
#    between the plain block and :math:`b = C/4`?
# 4. Compute the KV cache in megabytes of a 32-layer model with
#    :math:`E = 4096`, :math:`H = 32`, a context of 8192 tokens in float16,
#    for :math:`G = 32, 8, 1`.
