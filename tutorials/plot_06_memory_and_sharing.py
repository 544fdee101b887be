r"""
Memory and sharing
==================

Parameters take memory, and training takes more: a gradient for every
parameter, plus whatever the optimizer remembers about each one. This
tutorial looks at how nnlite lays that memory out — one contiguous, aligned
*arena* per parameter group — counts what gradients and optimizer state cost,
and ends with the cheapest parameter of all: one that is shared.
"""

# %%
# The contiguous arena
# --------------------
# A model's parameters start life as separate arrays scattered over the heap.
# When an optimizer is built, nnlite copies them, once, into one flat buffer
# per group and dtype, and makes each ``param.data`` a *view* into it. The
# gradients get a second buffer with the same layout, and each piece of
# optimizer state (Adam's :math:`m` and :math:`v`) a further one. One kernel
# call then updates every parameter of the group in a single pass over
# contiguous memory, instead of one call per parameter.
#
# Each parameter starts on a 64-byte boundary — a cache line, and the width of
# the widest vector load — so no two parameters share a line. The element
# offset of parameter :math:`i` is
#
# .. math::
#
#    o_{i+1} = o_i + \left\lceil \frac{n_i\, s}{64} \right\rceil \frac{64}{s},
#
# for :math:`n_i` elements of :math:`s` bytes each; the gap is zero padding.
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn

nl.manual_seed(0)
model = nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.LayerNorm(100), nn.Linear(100, 10))
model.name_parameters()
opt = nl.optim.Adam(model.parameters(), lr=1e-3)
[buffer] = opt.arenas[0]
print(buffer)

for slot in buffer.slots:
    p = slot.param
    assert np.shares_memory(p.data, buffer.params)            # a view, not a copy
    assert p.data.ctypes.data % nl.optim.arena.ALIGNMENT == 0  # aligned to a cache line (64 bytes)
    assert slot.offset % (64 // 4) == 0                       # 16 float32 per line
per_line = 64 // 4
expected_size = sum(-(-s.numel // per_line) * per_line for s in buffer.slots)
assert buffer.size == expected_size
print(f"{buffer.size} elements per buffer, of which {buffer.padding} are padding")

# %%
# After a backward pass the gradients are already in the arena: autograd
# accumulates straight into each parameter's slot of the gradient buffer, and
# the optimizer reads the whole buffer at once.
x, y = nl.randn(32, 40), nl.randint(0, 10, (32,))
nn.functional.cross_entropy(model(x), y).backward()
assert all(np.shares_memory(p.grad.data, buffer.grads) for p in model.parameters())
opt.step()
print("state buffers after one Adam step:", list(buffer.state))
assert set(buffer.state) == {"exp_avg", "exp_avg_sq"}

# %%
# Drawing the layout: one row per buffer, one colour per parameter, padding
# in grey. The buffers line up, so element :math:`j` of every row belongs to
# the same parameter.
fig, ax = plt.subplots(figsize=(8, 2.6))
rows = ["params", "grads"] + list(buffer.state)
for r, row in enumerate(rows):
    for i, slot in enumerate(buffer.slots):
        ax.barh(r, slot.numel, left=slot.offset, color=f"C{i}", label=slot.param.name if r == 0 else None)
        ends = [s.offset for s in buffer.slots[1:]] + [buffer.size]
        pad = ends[i] - slot.offset - slot.numel
        if pad:
            ax.barh(r, pad, left=slot.offset + slot.numel, color="0.75")
ax.set_yticks(range(len(rows)), rows)
ax.set_xlabel("element offset in the arena")
ax.invert_yaxis()
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
ax.set_title("one arena, four aligned buffers (grey: padding)")
fig.tight_layout()

# %%
# What training costs
# -------------------
# Counting in copies of the parameters :math:`P`:
#
# ===========================  =======================================  ============
# optimizer                    kept per parameter                        total
# ===========================  =======================================  ============
# SGD                          value, gradient                           :math:`2P`
# SGD with momentum            value, gradient, velocity                 :math:`3P`
# RMSprop / AdaGrad            value, gradient, one average or sum       :math:`3P`
# Adam / AdamW                 value, gradient, :math:`m`, :math:`v`     :math:`4P`
# ===========================  =======================================  ============
#
# ``optimizer.memory_report()`` counts the bytes from the arena itself, per
# group and per kind of parameter, padding included.


def report_for(make):
    nl.manual_seed(0)
    m = nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.LayerNorm(100), nn.Linear(100, 10))
    o = make(m.parameters())
    nn.functional.cross_entropy(m(x), y).backward()
    o.step()
    return m, o.memory_report()


reports = {
    "SGD": report_for(lambda ps: nl.optim.SGD(ps, lr=0.1)),
    "SGD + momentum": report_for(lambda ps: nl.optim.SGD(ps, lr=0.1, momentum=0.9)),
    "RMSprop": report_for(lambda ps: nl.optim.RMSprop(ps)),
    "Adam": report_for(lambda ps: nl.optim.Adam(ps)),
}
print(reports["Adam"][1])

copies = {"SGD": 2, "SGD + momentum": 3, "RMSprop": 3, "Adam": 4}
for name, (m, rep) in reports.items():
    total = rep["total"]
    param_bytes = m.num_parameters() * 4
    assert total["param_bytes"] == total["grad_bytes"] == param_bytes
    assert total["param_bytes"] + total["grad_bytes"] + total["state_bytes"] == copies[name] * param_bytes
    assert total["total_bytes"] == copies[name] * param_bytes + total["padding_bytes"]

fig, ax = plt.subplots(figsize=(6, 3))
names = list(reports)
parts = [("param_bytes", "parameters"), ("grad_bytes", "gradients"), ("state_bytes", "optimizer state"),
         ("padding_bytes", "alignment padding")]
left = np.zeros(len(names))
for key, label in parts:
    values = np.array([reports[n][1]["total"][key] / 1024 for n in names])
    ax.barh(names, values, left=left, label=label)
    left += values
ax.set_xlabel("KiB")
ax.invert_yaxis()
ax.legend(fontsize=8)
ax.set_title(f"training memory of a {reports['SGD'][0].num_parameters()}-parameter model")
fig.tight_layout()

# %%
# Weight tying
# ------------
# A language model reads tokens through an embedding matrix
# :math:`E \in \mathbb{R}^{V \times d}` and writes them through an output
# layer of the same shape. *Tying* the two (Press & Wolf, 2017) uses one
# matrix for both: :math:`V d` fewer parameters, and every update of the
# output layer also improves the input embedding. In nnlite, tying is
# assigning the same Parameter object to both modules. Gradients from the two
# uses add up:
#
# .. math::
#
#    \frac{\partial L}{\partial E} = \frac{\partial L}{\partial E}\Big|_\text{as embedding}
#    + \frac{\partial L}{\partial E}\Big|_\text{as output layer}.
V, d = 30, 16


class TinyLM(nn.Module):
    def __init__(self, tie):
        super().__init__()
        self.embedding = nn.Embedding(V, d)
        self.head = nn.Linear(d, V, bias=False)
        if tie:
            self.head.weight = self.embedding.weight

    def forward(self, ids):
        return self.head(nl.tanh(self.embedding(ids)))


nl.manual_seed(0)
tied, untied = TinyLM(tie=True), TinyLM(tie=False)
print("tied groups:", tied.tied_parameters())
assert tied.tied_parameters() == [["embedding.weight", "head.weight"]]
assert untied.num_parameters() - tied.num_parameters() == V * d
# The state_dict lists the shared tensor under both names, as PyTorch does.
sd = tied.state_dict()
assert set(sd) == {"embedding.weight", "head.weight"}
assert np.shares_memory(sd["embedding.weight"].data, sd["head.weight"].data)

# Same values in both models (the untied one with two equal copies), same data:
with nl.no_grad():
    untied.embedding.weight.data[...] = tied.embedding.weight.data
    untied.head.weight.data[...] = tied.embedding.weight.data
ids = nl.randint(0, V, (8, 12))
targets = nl.randint(0, V, (8, 12))
for m in (tied, untied):
    nn.functional.cross_entropy(m(ids).reshape(-1, V), targets.reshape(-1)).backward()
summed = untied.embedding.weight.grad.data + untied.head.weight.grad.data
assert np.allclose(tied.embedding.weight.grad.data, summed, rtol=1e-5, atol=1e-7)
print("the tied gradient is the sum of the two untied ones")

# An optimizer gives the shared parameter one slot in its arena.
arena = nl.optim.SGD(tied.parameters(), lr=0.1).arenas[0][0]
assert len(arena.slots) == 1
assert tied.head.weight is tied.embedding.weight

# %%
# Sharing is everywhere once you look for it: a convolution applies one filter
# at every position, a recurrent layer applies one set of matrices at every
# time step. Their parameter counts do not grow with the input's length:
conv = nn.Conv1d(4, 8, kernel_size=3)
rnn = nn.RNN(4, 8)
counts = []
for length in (10, 100, 1000):
    out_conv = conv(nl.randn(1, 4, length))
    out_rnn, _ = rnn(nl.randn(length, 1, 4))
    counts.append((length, conv.num_parameters(), rnn.num_parameters()))
print("length, conv parameters, RNN parameters:", counts)
assert len({c[1] for c in counts}) == 1 and len({c[2] for c in counts}) == 1
assert conv.num_parameters() == 8 * 4 * 3 + 8
assert rnn.num_parameters() == 8 * 4 + 8 * 8 + 8 + 8

# %%
# Summary
# -------
# * An optimizer copies its parameters once into an arena, one flat
#   :class:`~nnlite.optim.arena.ArenaBuffer` per group and dtype; each
#   ``param.data`` becomes a view into it that starts on a 64-byte boundary,
#   with zero padding in the gaps.
# * Gradients and optimizer state get buffers with the same layout: autograd
#   accumulates straight into the gradient buffer, and Adam's first step adds
#   ``exp_avg`` and ``exp_avg_sq``.
# * Training stores the parameters' bytes twice over with SGD, three times
#   with momentum or RMSprop and four times with Adam, plus the padding;
#   :meth:`~nnlite.optim.Optimizer.memory_report` counts them from the arena.
# * Tying is assigning one Parameter to two modules: :math:`V d` fewer
#   parameters, :meth:`~nnlite.nn.Module.tied_parameters` lists both names,
#   the gradient is the sum of the two uses, and the arena has one slot for it.
# * A convolution and a recurrent layer reuse their parameters at every
#   position or time step, so their counts do not grow with the input's length.
#
# Exercises
# ---------
# 1. Compare ``memory_report()`` of SGD with and without momentum and of Adam
#    with ``amsgrad=True``. How many bytes per parameter does each keep?
# 2. Tie the two hidden layers of an MLP to one weight. How does
#    ``num_parameters()`` change, and how many slots does the arena have?
# 3. Run the RNN on a sequence of 10,000 steps. Does the parameter count change?
#    Does the memory that backward needs?
