r"""
Saving, resuming, shipping
==========================

Trained parameters are the product of a training run; this tutorial follows
them out of it. A run is checkpointed and killed, and resumes to the same bytes
as a run that was never stopped; the seed and the thread count are shown to be
all that decides those bytes (the reproducibility contract of
:doc:`/practices`). The files carry a format version that old files are
migrated from, and a *model card* that records how the parameters were made and
which file they continue. Two checkpoints are compared as parameters, a served
model is updated in place after its new file has passed every check, the
model leaves nnlite as an ONNX graph that ``onnxruntime`` runs, and its size in
float32, float16 and int8 is weighed against its accuracy.
"""

# %%
# Checkpoints, and a resume that changes nothing
# ----------------------------------------------
# A checkpoint (:func:`nnlite.save_checkpoint`) holds everything the next step
# depends on: the parameters and buffers, the optimizer's state (Adam's moments
# and step counts), the scheduler, the data loader's position in its shuffled
# epoch, and the random generator. :class:`~nnlite.io.CheckpointManager` names
# the files by step, keeps the last few and finds the newest. The test of all
# that: kill a run half-way, resume it in fresh objects, and compare the final
# parameters with a run that was never interrupted — byte for byte.
import json
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader, Digits
from nnlite.nn import functional as F
from nnlite.optim import lr_scheduler

started = time.perf_counter()
workdir = tempfile.mkdtemp(prefix="nnlite-t18-")
train_set, test_set = Digits(train=True), Digits(train=False)
test_x, test_y = next(iter(DataLoader(test_set, batch_size=len(test_set))))
EPOCHS = 4


def setup(seed=0):
    """A model, its optimizer, schedule and loader, all from one seed."""
    nl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    opt = nl.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train_set, batch_size=32, shuffle=True)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS * len(loader))
    return model, opt, sched, loader


def train(model, opt, sched, loader, manager=None, stop_at=None, start_step=0):
    """The loop, with a checkpoint every 20 steps; ``stop_at`` simulates a crash."""
    step = start_step
    while step < EPOCHS * len(loader):
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
            step += 1
            if manager is not None and step % 20 == 0:
                manager.save(step, model=model, optimizer=opt, scheduler=sched, dataloader=loader)
            if step == stop_at:
                return step
    return step


def parameter_bytes(model):
    return [t.data.tobytes() for t in model.state_dict().values()]


# the reference: one uninterrupted run
reference = setup()
train(*reference)

# the same run, killed after 100 of its steps ...
manager = nl.io.CheckpointManager(os.path.join(workdir, "run"), keep_last=2)
train(*setup(), manager=manager, stop_at=100)
print("kept:", [os.path.basename(p) for _, p in manager.checkpoints()])

# ... and resumed from its newest checkpoint (step 100) in brand-new objects, built from another seed
model, opt, sched, loader = setup(seed=123)
info = manager.load_latest(model=model, optimizer=opt, scheduler=sched, dataloader=loader)
print(f"resumed at step {info.step}")
train(model, opt, sched, loader, start_step=info.step)
assert info.step == 100 and len(manager.checkpoints()) == 2
assert parameter_bytes(model) == parameter_bytes(reference[0])          # bit for bit
accuracy = float((reference[0].eval()(test_x).data.argmax(1) == test_y.data).mean())
print(f"test accuracy {100 * accuracy:.1f}%")
assert accuracy > 0.9

# %%
# Seeds and thread counts
# -----------------------
# The seed fixes every random draw: initial weights, the loader's shuffles, the
# dropout masks. The kernels add up partial sums in fixed blocks and a fixed
# order, so the number of threads does not change a bit of the result. The
# same run on one and on two threads, and with another seed:
runs = {}
for label, seed, threads in (("seed 0, 1 thread", 0, 1), ("seed 0, 2 threads", 0, 2), ("seed 1, 2 threads", 1, 2)):
    previous = nl.get_num_threads()
    nl.set_num_threads(threads)
    try:
        m = setup(seed)
        train(*m)
    finally:
        nl.set_num_threads(previous)
    runs[label] = parameter_bytes(m[0])
assert runs["seed 0, 1 thread"] == runs["seed 0, 2 threads"] == parameter_bytes(reference[0])
assert runs["seed 1, 2 threads"] != runs["seed 0, 2 threads"]

# %%
# What is *not* promised: the same bytes from the NumPy reference backend, from
# another BLAS library or another CPU. They compute the same formulas with a
# different order of additions; the results agree to rounding error and drift
# apart over a run (:doc:`/practices` lists the conditions).

# %%
# Format versions and migrations
# ------------------------------
# Every file records its format number. A reader that meets an *older* format
# migrates it in memory, one small documented step at a time
# (``nnlite.io.migrations.MIGRATIONS``); a *newer* one is refused with
# :class:`~nnlite.io.VersionError` instead of being guessed at. Here is a file
# in format 1 (everything in one JSON object, no checksum), as an old nnlite
# wrote it:
from safetensors.numpy import save_file  # noqa: E402

print("current format:", nl.io.FORMAT_VERSION, "- migrations from:", sorted(nl.io.migrations.MIGRATIONS))
old_path = os.path.join(workdir, "format1.safetensors")
blob = {"format_version": 1, "format": "checkpoint", "nnlite_version": "0.0.9", "step": 384,
        "model": {"class": "Sequential", "config": None, "keys": list(reference[0].state_dict())}}
save_file({"model." + k: v.data for k, v in reference[0].state_dict().items()}, old_path,
          metadata={"nnlite": json.dumps(blob)})
old = nl.io.read_checkpoint(old_path)
print(f"stored format {old.stored_format_version}, read as format {old.format_version}, step {old.step}")
revived = setup(seed=5)[0]
nl.load_checkpoint(old_path, model=revived)
assert old.stored_format_version == 1 and old.format_version == nl.io.FORMAT_VERSION
assert parameter_bytes(revived) == parameter_bytes(reference[0])

future = os.path.join(workdir, "future.safetensors")
with open(nl.save_checkpoint(os.path.join(workdir, "now.safetensors"), model=revived), "rb") as f:
    raw = f.read().replace(b'"nnlite.format_version":"2"', b'"nnlite.format_version":"3"')
with open(future, "wb") as f:
    f.write(raw)
try:
    nl.io.read_checkpoint(future)
    raise AssertionError("a newer format must be refused")
except nl.io.VersionError as e:
    print("refused:", str(e)[:100], "...")

# %%
# Model cards and lineage
# -----------------------
# A weights file says what the numbers are, not how they came about. A model
# card (Mitchell et al., 2019) records it: the recipe and hyperparameters, the
# optimizer's groups, the seed, the thread count and backend, the nnlite, NumPy
# and Python versions and the machine — the conditions of the contract above —
# plus the data, the metrics, and for every parameter its kind, its
# initialization scheme and why that scheme was chosen. ``nnlite train`` and
# :func:`~nnlite.train.fit` put one into every checkpoint; ``nnlite inspect``
# shows it and ``nnlite card CKPT`` prints it as Markdown. Its *lineage* names
# the SHA-256 of the checkpoint the parameters continued from.
model_v1 = reference[0]
card_v1 = nl.io.model_card(model_v1, recipe="digits-mlp (tutorial 18)", seed=0, optimizer=reference[1],
                           hyperparameters={"epochs": EPOCHS, "batch_size": 32, "lr": 3e-3},
                           data="scikit-learn digits, 1438 training images", metrics={"test_accuracy": accuracy})
v1 = nl.save_checkpoint(os.path.join(workdir, "v1.safetensors"), model=model_v1, extra={"card": card_v1})
print(nl.io.card_markdown(card_v1)[:900], "...")
assert card_v1["parameters"]["0.weight"]["init"] == "kaiming_uniform_"
assert card_v1["training"]["seed"] == 0 and card_v1["lineage"]["parent_sha256"] is None

# Fine-tune v1 for one more epoch at a small rate: v2, whose card names v1 as its parent.
model_v2, opt2, _, loader2 = setup()
nl.load_checkpoint(v1, model=model_v2)
opt2.param_groups[0]["lr"] = 3e-4
for x, y in loader2:
    opt2.zero_grad()
    F.cross_entropy(model_v2(x), y).backward()
    opt2.step()
card_v2 = nl.io.model_card(model_v2, recipe="digits-mlp, one more epoch", parent=v1)
v2 = nl.save_checkpoint(os.path.join(workdir, "v2.safetensors"), model=model_v2, extra={"card": card_v2})
assert card_v2["lineage"]["parent_sha256"] == nl.io.card.file_sha256(v1)

# %%
# Version control of parameters: a diff
# -------------------------------------
# :func:`nnlite.io.diff` (``nnlite diff A B``) compares two files name by name:
# the L2 distance of the change, the change relative to the old norm, and the
# cosine between old and new (fine-tuning stays close to 1), plus names that
# appeared, disappeared or changed shape, and the lineage from the cards.
d = nl.io.diff(v1, v2)
print(d.format())
relative = {r["name"]: r["relative"] for r in d.rows}
assert d.lineage == "A -> B" and not d.added and not d.removed
assert all(r["cosine"] > 0.99 for r in d.rows) and 0 < max(relative.values()) < 0.2

fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(list(relative), list(relative.values()))
ax.set_xlabel("|v2 - v1| / |v1|")
ax.set_title("what one epoch of fine-tuning changed")
fig.tight_layout()

# %%
# Updating a served model: hot swap
# ---------------------------------
# A service holds ``model_v1`` in memory and must switch to v2 without a
# restart. :func:`nnlite.io.hot_swap` first checks the new file completely —
# checksum, format version, names, shapes, dtypes, and with ``parent=`` that
# its card continues the file being served — and only then copies the values
# in place. A damaged file is refused and the served model keeps answering with
# the old parameters.
served = setup(seed=9)[0]
nl.load_checkpoint(v1, model=served)
served.eval()
damaged = os.path.join(workdir, "v2-damaged.safetensors")
with open(v2, "rb") as f:
    raw = bytearray(f.read())
raw[-3] ^= 0x01                                  # one flipped bit in the last parameter
with open(damaged, "wb") as f:
    f.write(bytes(raw))
before = served(test_x).data.copy()
for path in (damaged, v1):                       # damaged; and a file that does not descend from v1
    try:
        nl.io.hot_swap(served, path, parent=v1)
        raise AssertionError("must be refused")
    except nl.io.CheckpointError as e:
        print(f"refused {os.path.basename(path)}: {type(e).__name__}")
assert np.array_equal(served(test_x).data, before)      # untouched
result = nl.io.hot_swap(served, v2, parent=v1)
print("swapped to", result["sha256"][:16], "...")
assert np.array_equal(served(test_x).data, model_v2.eval()(test_x).data)

# %%
# Shipping: ONNX and onnxruntime
# ------------------------------
# Outside Python, or on a runtime tuned for inference, the model travels as an
# ONNX graph. :func:`nnlite.onnx.export` runs the model on the example and writes
# the graph of operations that pass recorded — ``Gemm`` for the linear layers,
# ``Relu``, the dropout gone in eval mode — with the batch dimension left free.
# (It then runs the model on other inputs like the example, once with a batch
# of another size, and checks that they give the same graph: nothing of the
# example's values or batch size is frozen into it.)
# ``nnlite export CKPT --onnx model.onnx`` does the same from a checkpoint of
# ``nnlite train``. onnxruntime then computes what nnlite computes.
import onnxruntime  # noqa: E402

onnx_path = os.path.join(workdir, "digits.onnx")
graph = nl.onnx.export(served, test_x[:1], onnx_path, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
print("ONNX nodes:", [node.op_type for node in graph.graph.node])
session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
onnx_out = session.run(None, {"input": test_x.data})[0]
assert np.allclose(onnx_out, served(test_x).data, atol=1e-5)
assert np.array_equal(onnx_out.argmax(1), served(test_x).data.argmax(1))

# %%
# Memory constraints: bytes per parameter
# ---------------------------------------
# A deployed model's size is its parameter count times the bytes per value.
# float16 halves float32 (the values are rounded to 11 significant bits);
# int8 quarters it (:func:`nnlite.quantization.quantize_dynamic`: one scale per
# output row, activations quantized per batch at run time). The files below are
# the real safetensors files of the served model, and the accuracy is measured
# on the test set with each.
from nnlite.quantization import model_size_bytes, quantize_dynamic  # noqa: E402

fp16_path = os.path.join(workdir, "fp16.safetensors")
nl.save_state_dict({k: v.data.astype(np.float16) for k, v in served.state_dict().items()}, fp16_path)
from_fp16 = setup(seed=9)[0].eval()
from_fp16.load_state_dict({k: v.data.astype(np.float32) for k, v in nl.load_state_dict(fp16_path).items()})
int8_model = quantize_dynamic(served)
rows = []
for dtype, size, net in (("float32", model_size_bytes(served), served), ("float16", os.path.getsize(fp16_path), from_fp16),
                         ("int8", model_size_bytes(int8_model), int8_model)):
    acc = float((net(test_x).data.argmax(1) == test_y.data).mean())
    rows.append((dtype, size, acc))
print(f"{'dtype':8} {'file bytes':>10} {'test accuracy':>14}")
for dtype, size, acc in rows:
    print(f"{dtype:8} {size:10,d} {100 * acc:13.1f}%")

fig, ax = plt.subplots(figsize=(5, 3))
ax.bar([r[0] for r in rows], [r[1] / 1024 for r in rows], color=["C0", "C1", "C2"])
for i, (_, size, acc) in enumerate(rows):
    ax.text(i, size / 1024, f"{100 * acc:.1f}%", ha="center", va="bottom", fontsize=8)
ax.set_ylabel("file size (KiB)")
ax.set_title("the served model per dtype (labels: test accuracy)")
fig.tight_layout()
n = served.num_parameters()
assert abs(rows[0][1] - 4 * n) < 0.05 * 4 * n and abs(rows[1][1] - 2 * n) < 0.05 * 2 * n
assert rows[2][1] < 0.35 * rows[0][1]
assert rows[1][2] >= rows[0][2] - 0.01 and rows[2][2] >= rows[0][2] - 0.02
print(f"tutorial ran in {time.perf_counter() - started:.1f} s")

# %%
# Summary
# -------
# * A checkpoint holds model, optimizer, scheduler, loader position and
#   generator; a resumed run ends with the same bytes as an uninterrupted one.
# * Seed and code decide the bytes; the thread count does not. Another
#   backend, BLAS or CPU gives results equal only to rounding.
# * Old file formats are migrated on reading, newer ones refused; a model card
#   records how parameters were made and which file they continue.
# * ``nl.io.diff`` compares parameter files as parameters; ``nl.io.hot_swap``
#   replaces served parameters only after every check passed.
# * ONNX export carries the model to other runtimes; float16 and int8 cut its
#   size by 2 and 4 at almost no cost in accuracy here.
#
# Exercises
# ---------
# 1. Resume from the *older* of the two kept checkpoints (step 80). Do the final
#    bytes still match the reference?
# 2. Set ``nl.set_backend("reference")`` for the second run of the thread
#    experiment. How large is the largest parameter difference after 4 epochs?
# 3. Write a card for a model loaded with ``load_state_dict`` from a file: what
#    does the per-parameter rationale say, and why?
# 4. Export the CNN of tutorial 1 to ONNX and list the node types. Which nnlite
#    layer became which ONNX operator?
