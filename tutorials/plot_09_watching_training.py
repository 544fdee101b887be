r"""
Watching training
=================

A training run is thousands of parameter updates, and the final accuracy
says little about how they went. This tutorial looks inside with
:mod:`nnlite.monitor` and :mod:`nnlite.plot`: how large the gradients are in
each layer (and how they vanish in a deep sigmoid network), how large each
update is compared with the weight it changes, which learning rates make
gradient descent diverge and how to stop such a run cleanly, how early
stopping and a plateau-driven learning-rate schedule end and steer training,
what the loss looks like along a line and over a plane through parameter
space, and what the computation graph of a small model is.

Every record here can also go to TensorBoard: pass
``nl.monitor.TensorBoardLogger("runs/name")`` among ``fit``'s callbacks (or
run ``nnlite train mnist1d-mlp --tensorboard runs/tb``), then open the
dashboard with ``tensorboard --logdir runs/tb``. The tags are ``train/loss``,
``val/loss``, ``val/accuracy``, ``lr`` and the histograms
``params/<name>`` and ``grads/<name>``.
"""

# %%
# Gradient flow: vanishing gradients
# ----------------------------------
# Backpropagation multiplies, layer by layer, by the weights and by the
# derivative of the activation. The sigmoid's derivative is at most
# :math:`\sigma'(0) = 1/4`, so through :math:`L` sigmoid layers the gradient
# shrinks roughly like :math:`(\tfrac14 \lVert W\rVert)^L`: the first layers of a
# deep sigmoid network hardly receive any gradient. ReLU's derivative is 1
# where the unit is active, and He initialisation
# (:math:`\operatorname{Var} W = 2/\text{fan\_in}`) keeps the signal's size
# from layer to layer, so the gradient reaches every layer.
#
# Two networks of ten hidden layers of 32 units on MNIST-1D, one with
# sigmoids and Glorot initialisation, one with ReLUs and He initialisation;
# :func:`nnlite.monitor.gradient_flow` gives mean and largest :math:`|g|` for
# each weight after one backward pass.
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.nn import functional as F

train_set, test_set = nl.data.MNIST1D(train=True), nl.data.MNIST1D(train=False)
x_train, y_train = train_set.tensors


def deep_mlp(activation, init, depth=10, width=32):
    nl.manual_seed(0)
    layers, size = [], 40
    for _ in range(depth):
        linear = nn.Linear(size, width)
        init(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, activation()]
        size = width
    return nn.Sequential(*layers, nn.Linear(size, 10))


def glorot(w):
    nn.init.xavier_uniform_(w)


def he(w):
    nn.init.kaiming_normal_(w, nonlinearity="relu")


setups = {"sigmoid, Glorot": (nn.Sigmoid, glorot), "ReLU, He": (nn.ReLU, he)}
flows = {}
for label, (activation, init) in setups.items():
    model = deep_mlp(activation, init)
    F.cross_entropy(model(x_train[:500]), y_train[:500]).backward()
    flows[label] = dict(nl.monitor.gradient_flow(model.named_parameters()), label=label)
    first, last = flows[label]["mean_abs"][0], flows[label]["mean_abs"][-1]
    print(f"{label:<16} mean |grad| first layer {first:.1e}, last layer {last:.1e}")

ax = nl.plot.gradient_flow([flows[label] for label in setups])
ax.set_title("mean |gradient| per weight, one batch at initialisation")
ax.figure.tight_layout()

sig, relu = flows["sigmoid, Glorot"]["mean_abs"], flows["ReLU, He"]["mean_abs"]
assert sig[0] < 1e-6 * sig[-1]          # six orders of magnitude lost on the way to layer 1
assert relu[0] > 0.1 * relu[-1]         # ReLU + He: within one order of magnitude
assert np.all(np.diff(np.log10(sig[:-1])) > 0.3)   # it shrinks at every sigmoid layer

# %%
# The same loss seen from inside the network: a backward hook
# (:meth:`~nnlite.nn.Module.register_full_backward_hook`) is called with
# ``grad_input`` and ``grad_output``, the gradients of a module's inputs and
# outputs, as backward passes through it. Hooked on each sigmoid, it shows how
# much gradient reaches each layer's output, without touching the weights.
hooked = deep_mlp(nn.Sigmoid, glorot)
reaching = {}
for position, module in enumerate(hooked):
    if isinstance(module, nn.Sigmoid):
        module.register_full_backward_hook(
            lambda module, grad_input, grad_output, position=position:
            reaching.__setitem__(position, float(grad_output[0].abs().mean().item())))
F.cross_entropy(hooked(x_train[:500]), y_train[:500]).backward()
reaching = [reaching[p] for p in sorted(reaching)]
print("mean |grad| at each sigmoid's output, first to last:", ", ".join(f"{g:.0e}" for g in reaching))
assert np.all(np.diff(np.log10(reaching)) > 0.3)     # smaller at every layer on the way down
assert reaching[0] < 1e-4 * reaching[-1]

# %%
# The update/weight ratio
# -----------------------
# What matters for learning is not the gradient itself but how much a step
# changes a weight compared with its size,
#
# .. math:: r = \frac{\lVert \Delta\theta \rVert}{\lVert \theta \rVert},
#
# which a common rule of thumb (from the CS231n notes) wants near
# :math:`10^{-3}`: much smaller and the layer barely learns, much larger and
# the steps are unstable. :class:`nnlite.monitor.ParameterMonitor` records
# it for every parameter (with the gradient norm, the fraction of weights
# whose sign flips and the distance from the initial values) while
# :func:`~nnlite.train.fit` trains. Both networks train for five epochs with
# the same SGD settings; a small callback of our own also keeps a copy of the
# first layer's weights at the start and after every epoch.


class FirstLayerSnapshots(nl.train.Callback):
    def __init__(self):
        self.snapshots = []

    def on_fit_start(self, state):
        self.snapshots.append(state.model[0].weight.data.copy())

    def on_epoch_end(self, state, logs):
        self.snapshots.append(state.model[0].weight.data.copy())


test_loader = nl.data.DataLoader(test_set, batch_size=1000)
ratios, accuracy, snapshots = {}, {}, {}
for label, (activation, init) in setups.items():
    model = deep_mlp(activation, init)
    monitor = nl.monitor.ParameterMonitor(every_n_steps=5)
    recorder = FirstLayerSnapshots()
    loader = nl.data.DataLoader(train_set, batch_size=100, shuffle=True, generator=nl.Generator(0))
    history = nl.train.fit(model, F.cross_entropy, nl.optim.SGD(model.parameters(), lr=0.02, momentum=0.9),
                           loader, epochs=5, val_loader=test_loader, callbacks=[monitor, recorder],
                           progress=False)
    snapshots[label] = recorder.snapshots
    ratios[label] = {name: r for name, r in monitor.as_arrays("update_ratio").items() if name.endswith("weight")}
    accuracy[label] = history["val_accuracy"][-1]
    print(f"{label:<16} test accuracy {accuracy[label]:.1%}; median update/weight ratio of the first layer "
          f"{np.median(ratios[label]['0.weight']):.1e}, of the last {np.median(ratios[label]['20.weight']):.1e}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
for ax, (label, per_layer) in zip(axes, ratios.items()):
    for i, (name, r) in enumerate(per_layer.items()):
        ax.plot(monitor.records["step"], r, color=plt.get_cmap("viridis")(i / (len(per_layer) - 1)), lw=1)
    ax.axhline(1e-3, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(f"{label} (first layer dark, last yellow)", fontsize=9)
axes[0].set_ylabel(r"$\|\Delta\theta\| / \|\theta\|$")
fig.tight_layout()

relu_medians = [np.median(r) for r in ratios["ReLU, He"].values()]
sig_medians = [np.median(r) for r in ratios["sigmoid, Glorot"].values()]
assert all(5e-4 < m < 5e-2 for m in relu_medians)   # every ReLU layer learns at a healthy pace
assert sig_medians[0] < 1e-7                        # the sigmoid network's first layer is frozen in effect
assert accuracy["ReLU, He"] > 0.25 and accuracy["sigmoid, Glorot"] < 0.15   # chance is 10%

# %%
# The same story in the weights themselves: a ridge plot
# (:func:`nnlite.plot.weight_ridge`) stacks the histogram of the first
# layer's weights at the start and after each epoch. The sigmoid network's
# rows are identical; the ReLU network's distribution changes shape.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
for ax, (label, snaps) in zip(axes, snapshots.items()):
    nl.plot.weight_ridge(snaps, labels=["init"] + [f"epoch {e}" for e in range(1, len(snaps))], bins=30, ax=ax)
    ax.set_title(f"{label}: first-layer weights", fontsize=9)
fig.tight_layout()

sig_moved = np.abs(snapshots["sigmoid, Glorot"][-1] - snapshots["sigmoid, Glorot"][0]).max()
relu_moved = np.abs(snapshots["ReLU, He"][-1] - snapshots["ReLU, He"][0]).max()
print(f"largest change of a first-layer weight: sigmoid {sig_moved:.1e}, ReLU {relu_moved:.1e}")
assert sig_moved < 1e-5 and relu_moved > 1e-2

# %%
# A learning-rate sweep, and a run that diverges
# ----------------------------------------------
# Near a minimum the loss is close to a quadratic with Hessian :math:`H`.
# A gradient step multiplies the error along the eigenvector of each
# eigenvalue :math:`\lambda` by :math:`1 - \eta\lambda`, so gradient descent
# converges only if :math:`|1 - \eta\lambda| < 1` for every eigenvalue:
#
# .. math:: \eta < \frac{2}{\lambda_{max}}.
#
# For least squares the Hessian does not depend on the parameters and the
# bound is exact. A linear model fitted to one-hot targets of 1000 MNIST-1D
# signals by full-batch gradient descent: :func:`nnlite.analysis.hessian_top_eigenvalues`
# finds :math:`\lambda_{max}` with Hessian-vector products (Lanczos), which
# here can be checked against the closed form
# :math:`H = \tfrac{2}{NK} \tilde X^\top \tilde X` per output (:math:`\tilde X`
# the inputs with a column of ones for the bias, :math:`K = 10` outputs).
# A :class:`~nnlite.monitor.DivergenceGuard` watches each run: when the loss
# rises past ten times its lowest value (or turns NaN) it stops ``fit`` and
# restores the last parameters that gave a sound loss.
x_small, y_small = x_train[:1000], y_train[:1000]
one_hot = nl.tensor(np.eye(10, dtype=np.float32)[y_small.data])
full_batch = [(x_small, one_hot)]


def linear_model():
    nl.manual_seed(0)
    return nn.Linear(40, 10)


lam_max = float(nl.analysis.hessian_top_eigenvalues(linear_model(), F.mse_loss, full_batch, k=1, iters=30)[0])
x_tilde = np.hstack([x_small.data.astype(np.float64), np.ones((1000, 1))])
closed_form = np.linalg.eigvalsh(2 * x_tilde.T @ x_tilde / (1000 * 10))[-1]
print(f"lambda_max = {lam_max:.4f} (closed form {closed_form:.4f}); threshold 2/lambda_max = {2 / lam_max:.3f}")
assert abs(lam_max - closed_form) < 1e-4 * closed_form

runs = {}
for factor in (0.25, 0.5, 0.9, 1.1, 2.0):
    model = linear_model()
    guard = nl.monitor.DivergenceGuard(factor=10.0)
    history = nl.train.fit(model, F.mse_loss, nl.optim.SGD(model.parameters(), lr=factor * 2 / lam_max),
                           full_batch, epochs=60, callbacks=[guard], progress=False)
    runs[factor] = (history["train_loss"], guard)
    outcome = (f"diverged at step {guard.report['step']}, restored step {guard.report['restored_step']}"
               if guard.diverged else f"final loss {history['train_loss'][-1]:.4f}")
    print(f"lr = {factor:>4} x 2/lambda_max: {outcome}")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for factor, (losses, guard) in runs.items():
    ax.plot(np.arange(len(losses)), losses, "x-" if guard.diverged else "-", ms=4,
            label=fr"$\eta = {factor}\cdot 2/\lambda_{{max}}$" + (" (stopped)" if guard.diverged else ""))
ax.set_yscale("log")
ax.set_xlabel("step (full batch)")
ax.set_ylabel("training loss")
ax.legend(fontsize=8)
fig.tight_layout()

for factor, (losses, guard) in runs.items():
    assert guard.diverged == (factor > 1), factor     # the threshold predicts which runs blow up
stable = [runs[f][0][-1] for f in (0.25, 0.5, 0.9)]
assert stable[0] > stable[1] > stable[2]              # below it, larger steps get further in 60 steps
assert model.weight.data.tobytes() != linear_model().weight.data.tobytes()
assert np.isfinite(model.weight.data).all()           # the guard left finite parameters behind

# %%
# Early stopping and a learning rate that drops on plateaus
# ---------------------------------------------------------
# Trained on only 500 examples, an MLP soon fits them better and better
# while the loss on unseen data stops falling and then rises: it overfits.
# :class:`~nnlite.optim.lr_scheduler.ReduceLROnPlateau` divides the learning
# rate by ten when the validation loss has not improved for more than two
# epochs (``patience=2``),
# :class:`~nnlite.train.EarlyStopping` ends training when it has not
# improved for six, and :class:`~nnlite.monitor.PlateauDetector` notes where
# the curve flattened. :func:`nnlite.plot.training_curves` draws the history
# with the learning rate on a second axis.
nl.manual_seed(1)
mlp = nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 10))
small_train = nl.data.TensorDataset(x_train[:500], y_train[:500])
optimizer = nl.optim.Adam(mlp.parameters(), lr=1e-2)
stopper = nl.train.EarlyStopping(monitor="val_loss", patience=6)
detector = nl.monitor.PlateauDetector(monitor="val_loss", patience=3, rel_tol=1e-2)
history = nl.train.fit(mlp, F.cross_entropy, optimizer,
                       nl.data.DataLoader(small_train, batch_size=50, shuffle=True, generator=nl.Generator(1)),
                       epochs=80, val_loader=test_loader,
                       scheduler=nl.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=2),
                       callbacks=[stopper, detector], progress=False)
best = int(np.argmin(history["val_loss"]))
print(f"stopped after {len(history['epoch'])} of 80 epochs; best validation loss at epoch {best + 1}; "
      f"learning rates used {sorted(set(history['lr']), reverse=True)}; plateaus at epochs "
      f"{[e + 1 for e in detector.plateaus]}")

ax = nl.plot.training_curves(history)
ax.axvline(best + 1, color="0.6", ls=":", lw=1)
ax.set_title("500 training examples: early stopping and ReduceLROnPlateau")
ax.figure.tight_layout()

assert history["stopped_early"] and len(history["epoch"]) < 80
assert len(history["epoch"]) == best + 1 + stopper.patience    # it waited `patience` epochs past the best
assert min(history["lr"]) < 1e-2                               # the plateau rule lowered the lr
assert history["train_loss"][-1] < 0.5 * history["val_loss"][-1]   # the gap that early stopping limits

# %%
# Loss landscapes, with and without skip connections
# ---------------------------------------------------
# Goodfellow et al. (2015) looked at the loss along the straight line from
# the initial parameters :math:`\theta_0` to the trained ones
# :math:`\theta_1`, :math:`\theta(\alpha) = (1-\alpha)\theta_0 + \alpha\theta_1`
# (:func:`nnlite.monitor.loss_landscape_1d`). Li et al. (2018) drew the loss
# over a plane :math:`\theta_1 + \alpha\delta + \beta\eta` through the trained
# parameters along two random directions, each rescaled filter by filter to
# the size of the weights it moves (:func:`nnlite.monitor.loss_landscape_2d`),
# and showed that skip connections keep the landscape of deep networks smooth.
#
# Two networks with 12 hidden layers of 32 ReLUs, one plain and one with
# residual connections :math:`h \leftarrow h + \mathrm{relu}(W h + b)`, train
# for eight epochs with Adam from the same seed.


class DeepNet(nn.Module):
    def __init__(self, skip, depth=12, width=32):
        super().__init__()
        self.skip = skip
        self.inp = nn.Linear(40, width)
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.out = nn.Linear(width, 10)

    def forward(self, x):
        h = F.relu(self.inp(x))
        for layer in self.hidden:
            z = F.relu(layer(h))
            h = h + z if self.skip else z
        return self.out(h)


probe = [(x_train[:1000], y_train[:1000])]   # a fixed sample to measure the loss on
alphas = np.linspace(-0.25, 1.25, 25)
lines, planes = {}, {}
for skip, label in ((False, "plain"), (True, "residual")):
    nl.manual_seed(0)
    net = DeepNet(skip)
    start = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    loader = nl.data.DataLoader(train_set, batch_size=100, shuffle=True, generator=nl.Generator(0))
    nl.train.fit(net, F.cross_entropy, nl.optim.Adam(net.parameters(), lr=3e-3), loader, epochs=8, progress=False)
    end = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    lines[label] = nl.monitor.loss_landscape_1d(net, F.cross_entropy, probe, start, end, alphas)
    planes[label] = nl.monitor.loss_landscape_2d(net, F.cross_entropy, probe, steps=15, span=1.0,
                                                 generator=nl.Generator(1))
    assert all(np.array_equal(v.numpy(), end[k]) for k, v in net.state_dict().items())  # the scans left it as it was

fig = plt.figure(figsize=(11, 3.4))
ax = fig.add_subplot(1, 3, 1)
for label, line in lines.items():
    nl.plot.landscape_1d(line, ax=ax, label=label)
ax.set_yscale("log")
ax.set_title("init (0) to trained (1)", fontsize=9)
for i, (label, plane) in enumerate(planes.items()):
    nl.plot.landscape_contour(plane, ax=fig.add_subplot(1, 3, 2 + i))
    fig.axes[-2 if i == 0 else -1].set_title(f"{label} net, plane around it", fontsize=9)
fig.tight_layout()

inside = (alphas >= 0) & (alphas <= 1)
for label, line in lines.items():
    print(f"{label:<9} loss at init {line.loss[alphas == 0][0]:.3f}, highest on the way "
          f"{line.loss[inside].max():.3f}, trained {line.loss[alphas == 1][0]:.3f}")
# The plain network climbs a barrier first; the residual one goes downhill all the way.
assert lines["plain"].loss[inside].max() > lines["plain"].loss[alphas == 0][0]
assert np.all(np.diff(lines["residual"].loss[inside]) < 0)
for label, plane in planes.items():
    assert plane.loss[7, 7] == plane.loss.min()        # the trained net is the lowest point of its plane

ax = nl.plot.landscape_surface(planes["residual"], log=True)
ax.set_title("residual net: the plane as a surface", fontsize=9)

# %%
# The computation graph
# ---------------------
# ``backward`` walks the graph that the forward pass recorded: each result
# remembers the operation that made it and that operation its inputs.
# :func:`nnlite.monitor.draw_graph` writes that graph in Graphviz's DOT
# language — operations as boxes with their output shapes, parameters by
# name and kind (with their gradient norms once ``backward`` has run).
# Paste the text into any Graphviz viewer, or pass ``filename=`` to render
# an SVG when Graphviz's ``dot`` program is installed;
# :func:`nnlite.plot.computation_graph` draws the same graph with matplotlib
# alone.
nl.manual_seed(0)
tiny = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
loss = F.cross_entropy(tiny(nl.randn(5, 4)), nl.tensor([0, 1, 1, 0, 1]))
loss.backward()
dot = nl.monitor.draw_graph(loss, tiny.named_parameters())
print(dot)
assert dot.count("shape=box") == 4                   # linear, tanh, linear, cross-entropy
assert all(f'"{name}\\n' in dot for name, _ in tiny.named_parameters())
assert dot.count("grad norm") == 4

ax = nl.plot.computation_graph(loss, tiny.named_parameters())
ax.set_title("the graph behind a cross-entropy loss, after backward", fontsize=9)

# %%
# Logging to TensorBoard
# ----------------------
# The same records can go to TensorBoard, the dashboard most frameworks
# write to. :class:`nnlite.monitor.TensorBoardLogger` is a ``fit`` callback
# that writes event files with ``tensorboardX``: the loss of every step, the
# learning rate, the validation metrics of every epoch, histograms of every
# parameter and of its gradient, and convolution filters and embedding
# matrices as images. Here it watches a small 1-D convolutional network on
# 2000 MNIST-1D examples for three epochs.
import tempfile

nl.manual_seed(2)
cnn = nn.Sequential(nn.Unflatten(1, (1, 40)), nn.Conv1d(1, 8, 5, padding=2), nn.ReLU(),
                    nn.MaxPool1d(2), nn.Flatten(), nn.Linear(8 * 20, 10))
logdir = tempfile.mkdtemp(prefix="nnlite-tb-")
logger = nl.monitor.TensorBoardLogger(logdir)
cnn_loader = nl.data.DataLoader(nl.data.TensorDataset(x_train[:2000], y_train[:2000]), batch_size=100,
                                shuffle=True, generator=nl.Generator(2))
tb_history = nl.train.fit(cnn, F.cross_entropy, nl.optim.Adam(cnn.parameters(), lr=1e-2), cnn_loader,
                       epochs=3, val_loader=test_loader, callbacks=[logger], progress=False)
logger.close()
print(f"validation accuracy after 3 epochs: {tb_history['val_accuracy'][-1]:.3f}; events in {logdir}")

# %%
# Open the dashboard with
#
# .. code-block:: bash
#
#    tensorboard --logdir DIR
#
# (``DIR`` is the folder printed above; point ``--logdir`` at a parent
# folder to compare runs). The event files are plain data and can be read
# back without the dashboard: TensorBoard's ``EventAccumulator`` lists the
# tags and the logged steps. Twenty batches an epoch for three epochs give
# 60 ``train/loss`` and ``lr`` points; validation and the histograms come once
# an epoch.
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

events = event_accumulator.EventAccumulator(logdir, size_guidance={"scalars": 0, "histograms": 0, "images": 0})
events.Reload()
tags = events.Tags()
print("scalars:", sorted(tags["scalars"]))
print("histograms:", sorted(tags["histograms"]))
print("images:", sorted(tags["images"]))
names = [name for name, _ in cnn.named_parameters()]
assert {"train/loss", "lr", "val/loss", "val/accuracy"} <= set(tags["scalars"])
assert {f"params/{n}" for n in names} <= set(tags["histograms"])
assert {f"grads/{n}" for n in names} <= set(tags["histograms"])
assert tags["images"] == ["weights/1.weight"]            # only the convolution's weight is drawn as an image
assert len(events.Scalars("train/loss")) == 60 and len(events.Scalars("lr")) == 60
assert [e.step for e in events.Scalars("val/loss")] == [20, 40, 60]
assert len(events.Histograms("params/1.weight")) == 3
assert tb_history["val_accuracy"][-1] > 0.25                 # chance is 10%

# %%
# The first layer's filters are what TensorBoard shows under ``weights/``:
# :func:`nnlite.plot.filters` draws the eight learned 5-tap filters, one
# colour scale centred at zero. A filter is a small pattern the layer looks
# for along the signal (a rising edge, a bump, a dip).
fig = nl.plot.filters(cnn[1].weight, ncols=8)
fig.suptitle("first-layer filters after 3 epochs (Conv1d, 8 x 1 x 5)", fontsize=9)
assert cnn[1].weight.shape == (8, 1, 5)

# %%
# Summary
# -------
# * Per-layer gradient statistics show vanishing gradients at a glance:
#   through ten sigmoid layers the gradient lost six orders of magnitude,
#   with ReLU and He initialisation it stayed within one. Backward hooks on
#   the sigmoids showed the same loss in the gradients reaching each layer.
# * The update/weight ratio tells whether each layer learns at a sensible
#   pace (about :math:`10^{-3}`, as every layer of the ReLU network did);
#   the sigmoid network's first layer moved by less than :math:`10^{-8}` of
#   its size per step and the network stayed at chance.
# * Gradient descent on a quadratic diverges exactly above
#   :math:`2/\lambda_{max}`; a divergence guard stops such a run and keeps
#   the last sound parameters.
# * Early stopping and ReduceLROnPlateau act on the validation curve;
#   training curves with the learning rate show when and why.
# * Loss landscapes: along the path from initialisation the plain deep
#   network crossed a barrier that the residual one did not, and in this
#   run its plane around the trained parameters is the more irregular one.
# * :class:`~nnlite.monitor.TensorBoardLogger` writes the same records as
#   TensorBoard event files (scalars every step or epoch, histograms and
#   filter images every epoch); ``tensorboard --logdir DIR`` shows them and
#   ``EventAccumulator`` reads them back.
#
# Exercises
# ---------
# 1. Give the sigmoid network He-scaled weights, or batch normalisation after
#    each linear layer, and redraw its gradient flow. Which helps more?
# 2. Sweep the SGD learning rate of the ReLU network over 0.001–1 and plot
#    the median update/weight ratio of each layer against it. Where is the
#    ratio near :math:`10^{-3}`, and which run learns best?
# 3. Repeat the divergence sweep with the MLP on cross-entropy. Is
#    :math:`2/\lambda_{max}` at initialisation still the threshold? Measure
#    :math:`\lambda_{max}` again after some training ("edge of stability").
# 4. Increase the depth of the two landscape networks to 30 layers and
#    compare their planes with ``normalization="layer"`` and ``None``.
# 5. Log the early-stopping run to TensorBoard with
#    ``nl.monitor.TensorBoardLogger`` and a
#    :class:`~nnlite.monitor.ParameterMonitor` writing to it, and look at the
#    ``params/`` histograms over time.
# 6. With :meth:`~nnlite.nn.Module.register_full_backward_pre_hook`, multiply
#    the ``grad_output`` of each sigmoid by 4 (undoing :math:`\sigma'(0)`).
#    Does the first layer now receive a gradient like the last one's, and does
#    the network then learn?
