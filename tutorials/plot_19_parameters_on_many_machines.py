r"""
Parameters on many machines
===========================

One computer trains a small model in seconds; a class that shares a room of
lab PCs, or a sweep too big for one laptop, wants several machines to train
*one* model together. The simplest way is **data parallelism**: every machine
(every *rank*) holds a complete copy of the parameters and works on its own
slice of each batch. This tutorial shows what is copied and what is
exchanged, why the result equals training on one big batch, and what the
exchange costs — measured on two processes of this machine with MPI.
"""

# %%
# What is replicated and what is reduced
# --------------------------------------
# Take a batch of :math:`B` examples and :math:`W` ranks, each with
# :math:`B / W` of them. The loss of the batch is the mean of the example
# losses, so its gradient is the mean of the ranks' gradients of *their* mean
# losses:
#
# .. math::
#
#    g = \nabla_\theta \frac{1}{B} \sum_{i=1}^{B} \ell_i
#      = \frac{1}{W} \sum_{r=0}^{W-1}
#        \underbrace{\nabla_\theta \frac{W}{B} \sum_{i \in \text{rank } r} \ell_i}_{g_r}.
#
# So each rank computes :math:`g_r` on its share, the ranks add their
# gradients up (an **all-reduce**: every rank sends its array and receives the
# elementwise sum) and divide by :math:`W`. Every rank then holds the same
# :math:`g` and takes the same optimizer step, so the parameter copies never
# drift apart. *Replicated*: parameters, buffers, optimizer state. *Reduced*:
# only the gradients, once per step.
#
# Before any MPI, the identity itself, with four "ranks" simulated in one
# process: four copies of a model, each on a quarter of the batch.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.distributed import gradient_buckets


def make_model():
    nl.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5)).double()


rng = np.random.default_rng(0)
x = nl.tensor(rng.standard_normal((32, 20)))
y = nl.tensor(rng.integers(0, 5, 32))

whole = make_model()
nn.functional.cross_entropy(whole(x), y).backward()

W = 4
replicas = [make_model() for _ in range(W)]
for r, replica in enumerate(replicas):
    share = slice(r * 8, (r + 1) * 8)           # rank r's 8 examples
    nn.functional.cross_entropy(replica(x[share]), y[share]).backward()

for name, p in whole.named_parameters():
    averaged = sum(dict(rep.named_parameters())[name].grad.data for rep in replicas) / W
    np.testing.assert_allclose(averaged, p.grad.data, rtol=1e-12, atol=1e-14)
print("the average of 4 ranks' gradients equals the whole batch's gradient")

# %%
# The identity holds for the gradient, so it holds for every step of any
# optimizer that only sees gradients (SGD, Adam...): data parallelism changes
# *where* the arithmetic happens, not the training. It is exact up to rounding
# — the sums are taken in another order — and it needs equal shares: a rank
# with fewer examples would weigh each of them more. That is why
# :class:`~nnlite.distributed.DistributedSampler` pads or drops examples so
# every rank gets the same number. What it does *not* cover is BatchNorm,
# whose statistics each rank takes over its own share only — unless the layer
# is a :class:`~nnlite.distributed.SyncBatchNorm`, which all-reduces them.
#
# The all-reduce works on buckets of the gradient arena
# -----------------------------------------------------
# nnlite's optimizers keep all gradients of a parameter group in one flat,
# aligned buffer (see tutorial 6). The all-reduce needs no packing: the buffer
# is cut into *buckets* of at most ``bucket_cap_mb`` and each bucket is one
# in-place ``MPI_Allreduce``. Frozen parameters are skipped (their bytes never
# travel); a tied parameter has one slot, so it travels once.
model = make_model()
model[2].bias.requires_grad_(False)               # frozen: a gap in the buckets
optimizer = nl.optim.SGD(model.parameters(), lr=0.1)
nn.functional.cross_entropy(model(x), y).backward()
[arena] = optimizer.arenas[0]
print(arena)
trainable = [p for p in model.parameters() if p.requires_grad]
buckets = gradient_buckets(trainable, cap_bytes=8192)          # 8 KB messages
print([(offset, count) for _, _, offset, count in buckets])

sent = np.zeros(arena.size, dtype=int)
for _, flat, offset, count in buckets:
    start = (flat.ctypes.data - arena.grads.ctypes.data) // 8 + offset
    sent[start:start + count] += 1
for slot in arena.slots:
    times = sent[slot.offset:slot.offset + slot.numel]
    assert np.all(times == (1 if slot.param.requires_grad else 0))   # once, or never if frozen

fig, ax = plt.subplots(figsize=(8, 2.2))
for slot in arena.slots:
    ax.barh(0, slot.numel, left=slot.offset, color="tab:blue" if slot.param.requires_grad else "lightgray",
            edgecolor="white")
for i, (_, flat, offset, count) in enumerate(buckets):
    start = (flat.ctypes.data - arena.grads.ctypes.data) // 8 + offset
    ax.barh(1, count, left=start, color=f"C{i % 10}", edgecolor="black")
ax.set_yticks([0, 1], ["arena slots\n(gray: frozen)", "all-reduce\nbuckets"])
ax.set_xlabel("element offset in the gradient buffer (float64)")
ax.set_title("One in-place all-reduce per bucket; the frozen bias never travels")
fig.tight_layout()

# %%
# Two real ranks
# --------------
# :class:`~nnlite.distributed.DistributedDataParallel` does the averaging inside
# ``loss.backward()``: a hook on each parameter notices the backward pass, and
# once every gradient is in, the buckets are all-reduced — so the training loop
# is the one-process loop, unchanged. The script below runs on two ranks
# (``mpiexec -n 2``), each with 16 of the batch's 32 examples, and also times
# ``MPI_Allreduce`` for messages from 256 bytes to 4 MB.
worker = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    import nnlite as nl
    from nnlite import nn, distributed as dist
    from mpi4py import MPI

    dist.init()
    nl.set_num_threads(1)
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    data = nl.data.TensorDataset(rng.standard_normal((256, 20)), rng.integers(0, 5, 256))
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5)).double()
    ddp = dist.DistributedDataParallel(model)
    optimizer = nl.optim.Adam(model.parameters(), lr=0.01)
    loader = nl.data.DataLoader(data, batch_size=32 // world,
                                sampler=dist.DistributedSampler(data, shuffle=False))
    for x, y in loader:                         # one epoch: 8 steps of 32 examples
        optimizer.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()
    timings = []
    for k in range(8, 23, 2):                   # 256 B ... 4 MB
        buf = np.ones(2**k // 4, dtype=np.float32)
        best = float("inf")
        for _ in range(10):
            MPI.COMM_WORLD.Barrier()
            t = time.perf_counter()
            MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buf)
            best = min(best, time.perf_counter() - t)
        timings.append((2**k, MPI.COMM_WORLD.allreduce(best, op=MPI.MAX)))
    if rank == 0:
        params = np.concatenate([p.data.ravel() for p in model.parameters()])
        json.dump({"world": world, "params": params.tolist(), "timings": timings,
                   "buckets": len(ddp.last_buckets)}, open(sys.argv[1], "w"))
''')
mpiexec = shutil.which("mpiexec")
if mpiexec is None:
    raise RuntimeError('this tutorial runs two MPI ranks: pip install "nnlite[mpi]" (mpi4py and mpich)')
root = os.path.dirname(os.path.dirname(nl.__file__))
with tempfile.TemporaryDirectory() as tmp:
    script, result = os.path.join(tmp, "worker.py"), os.path.join(tmp, "result.json")
    with open(script, "w") as f:
        f.write(worker)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    subprocess.run([mpiexec, "-n", "2", sys.executable, script, result], check=True, env=env, timeout=120)
    with open(result) as f:
        run = json.load(f)

# The same training in this one process, with the whole batch of 32.
rng = np.random.default_rng(0)
data = nl.data.TensorDataset(rng.standard_normal((256, 20)), rng.integers(0, 5, 256))
single = make_model()
optimizer = nl.optim.Adam(single.parameters(), lr=0.01)
for xb, yb in nl.data.DataLoader(data, batch_size=32):
    optimizer.zero_grad()
    nn.functional.cross_entropy(single(xb), yb).backward()
    optimizer.step()
ours = np.concatenate([p.data.ravel() for p in single.parameters()])
theirs = np.array(run["params"])
print(f"{run['world']} ranks vs 1 process after 8 Adam steps: max |difference| "
      f"{np.max(np.abs(ours - theirs)):.1e}, gradients sent in {run['buckets']} bucket(s)")
assert run["world"] == 2
np.testing.assert_allclose(theirs, ours, rtol=1e-6, atol=1e-12)

# %%
# The parameters agree to about :math:`10^{-15}` in float64 — rounding, since
# the two ranks sum their halves first. (Bit-identical results are not promised, for the
# same reason.)
#
# What the exchange costs
# -----------------------
# An all-reduce of :math:`n` bytes costs roughly
# :math:`t(n) = \alpha + n\beta`: a fixed *latency* :math:`\alpha` per message
# and a time per byte :math:`\beta` (one over the bandwidth). Between two
# processes on one machine the bytes go through shared memory.
sizes = np.array([s for s, _ in run["timings"]], dtype=float)
seconds = np.array([t for _, t in run["timings"]])
(alpha, beta), *_ = np.linalg.lstsq(np.stack([1 / seconds, sizes / seconds], axis=1), np.ones_like(seconds),
                                    rcond=None)
print(f"latency about {alpha * 1e6:.1f} us, bandwidth about {1 / beta / 1e9:.2f} GB/s")
assert np.all(np.diff(seconds[-3:]) > 0)   # large messages: more bytes take longer

gradient_bytes = 4 * 108_288          # the character transformer's float32 gradient
caps = np.logspace(3, 6, 40)          # bucket caps from 1 KB to 1 MB
buckets_needed = np.ceil(gradient_bytes / caps)
cost = buckets_needed * alpha + gradient_bytes * beta

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
left.loglog(sizes, seconds * 1e6, "o", label="measured (best of 10)")
left.loglog(sizes, (alpha + sizes * beta) * 1e6, "-", label=r"$\alpha + n\beta$")
left.set_xlabel("message size n (bytes)")
left.set_ylabel("all-reduce time (us)")
left.set_title("2 ranks, shared memory")
left.legend()
right.semilogx(caps / 1024, cost * 1e6)
right.set_xlabel("bucket cap (KB)")
right.set_ylabel("time to reduce 433 KB (us)")
right.set_title("small buckets pay the latency many times")
fig.tight_layout()

# %%
# The right plot is the bucket trade-off: tiny buckets multiply the latency,
# large ones pay it once. Frameworks that overlap communication with the
# backward pass (PyTorch's default cap is 25 MB) start sending the last
# layers' bucket while earlier layers are still being differentiated, so a
# cap lets the first message leave early; nnlite sends after the backward
# pass, where one bucket per buffer is best.
#
# Across machines the latency is tens of microseconds and the bandwidth a
# gigabit or ten. A ring all-reduce among :math:`W` machines sends
# :math:`2(W-1)` messages of :math:`n / W` bytes one after the other, so it
# takes :math:`2(W-1)(\alpha + n\beta / W)`. The bandwidth part stays near
# :math:`2n\beta`, but the latency part grows with every machine — while each
# machine's share of the computation shrinks as :math:`1/W`. Past some
# :math:`W` the ranks spend more time talking than computing.
# ``benchmarks/results/distributed.md`` works this out for nnlite's recipes.
t1 = 0.060                                  # a step of the 108k-parameter transformer on one machine (s)
machines = np.array([1, 2, 4, 8, 16, 32, 64])
for gbit in (1, 10):
    per_byte = 8 / (gbit * 1e9)
    ring = np.where(machines > 1, 2 * (machines - 1) * (50e-6 + gradient_bytes / machines * per_byte), 0.0)
    speedup = t1 / (t1 / machines + ring)
    print(f"{gbit:>2} Gb/s: speed-up " + "  ".join(f"W={w}: {s:.1f}x" for w, s in zip(machines, speedup)))
    assert speedup[machines.tolist().index(2)] > 1.5 and speedup[-1] < speedup.max()

# %%
# Summary
# -------
# * Data parallelism replicates parameters, buffers and optimizer state and
#   reduces only gradients; with equal shares, the averaged gradient is the
#   whole batch's gradient, so training is the one-process training.
# * nnlite all-reduces the optimizer arena's gradient buffer in place, a
#   bucket per message, inside ``backward()``; frozen parameters stay home,
#   tied ones travel once.
# * The cost of an all-reduce is latency plus bytes over bandwidth; small
#   models on many machines drown in latency.
#
# To run a recipe this way: ``mpiexec -n 2 python -m mpi4py -m nnlite train
# mnist1d-cnn --distributed``.
#
# Exercises
# ---------
# 1. Add a ``BatchNorm1d`` after the first layer and rerun the two-rank
#    comparison. Why do the parameters no longer agree? Convert the model with
#    ``SyncBatchNorm.convert_sync_batchnorm``: which sums does it all-reduce
#    in the forward pass, and which in the backward pass?
# 2. Give the sampler ``drop_last=True`` with 250 examples and two ranks: how
#    many examples does each rank see per epoch, and which are never used?
# 3. With the fitted :math:`\alpha` and :math:`\beta`, at which model size does
#    one all-reduce between the two local ranks cost as much as a step of the
#    MNIST-1D MLP (about 1 ms)?
