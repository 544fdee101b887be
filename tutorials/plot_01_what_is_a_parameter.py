r"""
What a parameter is
===================

A neural network is a function with knobs. The knobs that training turns are
its **parameters**: arrays of numbers that gradient descent changes, step by
step, to make a loss smaller. Whatever the trained model "knows" is stored in
them. Everything else that shapes the model is something else:

* **hyperparameters** are chosen by a person (or a search) *before* training:
  the learning rate, the batch size, how many layers and how wide;
* **buffers** are arrays the model keeps and saves but does not learn by
  gradient descent, such as the running statistics of batch normalisation;
* **fixed values** are decided when the model is designed and never change:
  a convolution's stride, or the sinusoids of a fixed positional encoding.

This tutorial builds a small model, finds each of the four in it, counts the
parameters, trains with part of the model frozen, and keeps parameters in a
list and a dict where the model still sees them.
"""

# %%
# A layer and its parameters
# --------------------------
# A linear layer maps :math:`x \in \mathbb{R}^{n_\text{in}}` to
#
# .. math::
#
#    y = W x + b, \qquad W \in \mathbb{R}^{n_\text{out} \times n_\text{in}},
#    \quad b \in \mathbb{R}^{n_\text{out}} .
#
# :math:`W` and :math:`b` are its parameters. In nnlite each is a
# :class:`~nnlite.nn.Parameter`, a tensor that also knows what it is for
# (``kind``), whether it is trained (``trainable``) and how it was
# initialised (``init``).
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn

nl.manual_seed(0)
layer = nn.Linear(3, 2)
for name, p in layer.named_parameters():
    print(f"{name:<7} kind={p.kind:<7} shape={p.shape}  trainable={p.trainable}  init={p.init}")

assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)
assert layer.weight.kind == "weight" and layer.bias.kind == "bias"

# %%
# Parameters, hyperparameters, buffers and fixed values in one model
# ------------------------------------------------------------------
# The model below classifies 1-D signals of 40 samples. Its *hyperparameters*
# are ordinary Python values; the model never sees the learning rate at all.
# The batch-norm layer holds two parameters (a scale and a shift) and three
# buffers (``running_mean``, ``running_var``, ``num_batches_tracked``).
# The convolution's ``kernel_size``, ``stride`` and ``padding`` are fixed
# values: attributes of the module, not tensors.
hyperparameters = {"channels": 8, "hidden": 32, "lr": 0.1, "batch_size": 64}

model = nn.Sequential(
    nn.Unflatten(1, (1, 40)),                      # (N, 40) -> (N, 1, 40)
    nn.Conv1d(1, hyperparameters["channels"], kernel_size=5, stride=2, padding=2),
    nn.BatchNorm1d(hyperparameters["channels"]),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(hyperparameters["channels"] * 20, hyperparameters["hidden"]),
    nn.ReLU(),
    nn.Linear(hyperparameters["hidden"], 10),
)
print(model)
print("\nparameters:")
for name, p in model.named_parameters():
    print(f"  {name:<10} {p.kind:<7} {str(p.shape):<10} {p.data.size:>6}")
print("buffers:")
for name, b in model.named_buffers():
    print(f"  {name:<26} {str(b.shape):<6} (not learned)")
conv = model[1]
print(f"fixed values of the convolution: kernel_size={conv.kernel_size}, stride={conv.stride}, "
      f"padding={conv.padding}")

param_names = {n for n, _ in model.named_parameters()}
buffer_names = {n for n, _ in model.named_buffers()}
assert buffer_names == {"2.running_mean", "2.running_var", "2.num_batches_tracked"}
assert not param_names & buffer_names
# The state_dict saves both parameters and buffers, so a saved model is complete.
assert set(model.state_dict()) == param_names | buffer_names
assert model[2].weight.kind == "scale" and model[2].bias.kind == "shift"

# %%
# Counting parameters
# -------------------
# A linear layer has :math:`n_\text{in} n_\text{out} + n_\text{out}` of them;
# a 1-D convolution with :math:`C_\text{in}` input channels, :math:`C_\text{out}`
# filters of width :math:`k` has :math:`C_\text{out} C_\text{in} k + C_\text{out}`
# (the same filter slides over every position, so the count does not depend on
# the signal's length); batch norm has two per channel. The total is the sum:
c, h = hyperparameters["channels"], hyperparameters["hidden"]
by_hand = (c * 1 * 5 + c) + 2 * c + (c * 20 * h + h) + (h * 10 + 10)
print(f"by hand: {by_hand}, model.num_parameters(): {model.num_parameters()}")
assert model.num_parameters() == by_hand

# %%
# Where do the parameters sit? Almost all of them are in the first linear
# layer, which connects every one of the 160 features to every hidden unit.
layers = [(i, m) for i, m in enumerate(model) if any(True for _ in m.parameters())]
labels = [f"{i}: {type(m).__name__}" for i, m in layers]
weights = [sum(p.data.size for p in m.parameters() if p.kind in ("weight", "scale")) for _, m in layers]
biases = [sum(p.data.size for p in m.parameters() if p.kind in ("bias", "shift")) for _, m in layers]

fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(labels, weights, label="weight / scale")
ax.barh(labels, biases, left=weights, label="bias / shift")
ax.set_xscale("log")
ax.set_xlabel("number of parameters (log scale)")
ax.set_title(f"{model.num_parameters()} parameters in total")
ax.invert_yaxis()
ax.legend(loc="lower right")
fig.tight_layout()

assert max(weights) == weights[labels.index("5: Linear")]

# %%
# Trainable and frozen
# --------------------
# Freezing a parameter (``requires_grad = False``, the same as
# ``trainable = False``) keeps it out of training: no gradient is computed for
# it and the optimizer leaves it alone. Transfer learning freezes a
# pre-trained body and trains only a new head. Here we freeze the convolution
# and train the rest for 30 steps on 512 MNIST-1D examples, in minibatches of
# the ``batch_size`` hyperparameter declared above.
train = nl.data.MNIST1D(train=True)
x, y = nl.tensor(train.tensors[0].data[:512]), nl.tensor(train.tensors[1].data[:512])
loader = nl.data.DataLoader(nl.data.TensorDataset(x, y), batch_size=hyperparameters["batch_size"], shuffle=True)

model[1].freeze()
trainable = model.num_parameters(trainable_only=True)
print(f"trainable {trainable} of {model.num_parameters()}")
assert trainable == model.num_parameters() - (c * 5 + c)

before = {n: p.data.copy() for n, p in model.named_parameters()}
running_mean_before = model[2].running_mean.data.copy()
opt = nl.optim.SGD(model.parameters(trainable_only=True), lr=hyperparameters["lr"])
losses, step = [], 0
model.eval()                            # eval mode: measuring must not move the running statistics
loss_before = nn.functional.cross_entropy(model(x), y).item()
model.train()
while step < 30:
    for xb, yb in loader:               # 512 / 64 = 8 steps per pass over the examples
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step == 30:
            break

changed = {n: not np.array_equal(before[n], p.data) for n, p in model.named_parameters()}
print(changed)
assert not changed["1.weight"] and not changed["1.bias"], "a frozen parameter moved"
assert all(v for n, v in changed.items() if not n.startswith("1.")), "a trainable parameter did not move"
assert model[1].weight.grad is None
# The buffers changed too, but by a running average, not by gradient descent.
assert not np.allclose(model[2].running_mean.data, running_mean_before)
assert len(losses) == 30 and loader.batch_size == 64
model.eval()                            # the loss on all 512 examples, again in eval mode
assert nn.functional.cross_entropy(model(x), y).item() < loss_before
model.train()

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(losses)
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy of the minibatch")
ax.set_title("training with the convolution frozen")
fig.tight_layout()

# %%
# Parameters in a list or a dict
# ------------------------------
# Some models have a number of parameters that depends on a setting: one
# learned scale per layer, one temperature per task. A module finds its
# parameters by what is assigned to its attributes, and a Python list of
# parameters is a list, not a parameter, so nothing inside it is registered.
# The stack below takes the container as an argument; the two models are the
# same code, one with a ``list`` and one with a
# :class:`~nnlite.nn.ParameterList`.
class ScaledStack(nn.Module):
    def __init__(self, depth, container):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(depth)])
        self.scales = container(nn.Parameter(nl.ones(1), kind="scale") for _ in range(depth))

    def forward(self, x):
        for layer, scale in zip(self.layers, self.scales):
            x = nl.tanh(layer(x) * scale)
        return x


hidden, registered = ScaledStack(3, list), ScaledStack(3, nn.ParameterList)
print("list:         ", [n for n in hidden.state_dict() if "scales" in n])
print("ParameterList:", [n for n in registered.state_dict() if "scales" in n])
assert not any(s is p for s in hidden.scales for p in hidden.parameters())
assert [n for n in registered.state_dict() if "scales" in n] == ["scales.0", "scales.1", "scales.2"]
assert registered.num_parameters() == hidden.num_parameters() + 3

# %%
# The hidden scales still take part in the forward pass, so backward gives
# them a gradient. But the optimizer was handed ``model.parameters()``, which
# never listed them: the gradient is computed and then thrown away, and a saved
# ``state_dict`` would not contain them either.
x_small = nl.randn(8, 4)
for stack in (hidden, registered):
    optimizer = nl.optim.SGD(stack.parameters(), lr=0.5)
    (stack(x_small) ** 2).mean().backward()
    optimizer.step()
print(f"list scale: {hidden.scales[0].item():.4f}, ParameterList scale: {registered.scales[0].item():.4f}")
assert hidden.scales[0].grad is not None and hidden.scales[0].item() == 1.0, "a hidden scale moved"
assert registered.scales[0].item() != 1.0, "a registered scale did not move"

# %%
# A :class:`~nnlite.nn.ParameterDict` does the same by name. A classifier shared
# by several tasks can learn one temperature per task, the number its logits
# are divided by (stored as :math:`\log T`, so :math:`T` stays positive); the
# keys become part of the parameters' names. From a plain ``dict`` the keys
# are taken in sorted order, as PyTorch takes them.
tasks = ["shapes", "digits", "letters"]
classifier = nn.Module()
classifier.body = nn.Linear(4, 3)
classifier.log_temperature = nn.ParameterDict(
    {task: nn.Parameter(nl.zeros(1), kind="temperature") for task in tasks})
logits = classifier.body(x_small) / classifier.log_temperature["letters"].exp()
print(list(classifier.state_dict()))
assert list(classifier.state_dict())[2:] == [f"log_temperature.{task}" for task in sorted(tasks)]
assert logits.shape == (8, 3)
# Each entry is a parameter like any other: its kind keeps it out of weight decay.
decayed, undecayed = nl.optim.param_groups_by_kind(classifier, weight_decay=0.1)
assert {p.kind for p in undecayed["params"]} == {"bias", "temperature"}

# %%
# Summary
# -------
# * A :class:`~nnlite.nn.Parameter` is a tensor that also records its
#   ``kind``, whether it is ``trainable`` and how it was initialised; a linear
#   layer holds two, a ``weight`` and a ``bias``.
# * Hyperparameters such as the learning rate and the batch size are ordinary
#   Python values outside the model; fixed values such as a convolution's
#   ``kernel_size``, ``stride`` and ``padding`` are attributes of the module,
#   not tensors.
# * Batch norm's running statistics are buffers: the ``state_dict`` saves them
#   with the parameters, and training moves them by a running average, not by
#   gradient descent.
# * :meth:`~nnlite.nn.Module.num_parameters` agrees with the count by hand;
#   almost all of this model's parameters sit in its first linear layer.
# * :meth:`~nnlite.nn.Module.freeze` keeps a module out of training: the
#   frozen convolution got no gradient and did not move, while every other
#   parameter was trained and the loss fell.
# * Parameters kept in a plain Python list are invisible: they got a
#   gradient, but ``parameters()``, the optimizer and the ``state_dict`` never
#   saw them. :class:`~nnlite.nn.ParameterList` and
#   :class:`~nnlite.nn.ParameterDict` register them, under names such as
#   ``scales.0`` and ``log_temperature.letters``.
#
# Exercises
# ---------
# 1. Count the parameters of the model by hand for ``channels = 16`` and
#    ``hidden = 64``, then check with ``model.num_parameters()``.
# 2. Freeze the batch norm layer as well. Do its running statistics still
#    change during training, and why?
# 3. Train with ``batch_size`` 8 and 512 for the same 30 steps. Which loss
#    curve is noisier, and which ends lower?
# 4. Unfreeze the convolution after 15 steps. Does the loss fall faster
#    afterwards?
# 5. Keep the classifier's temperatures in a plain ``dict`` instead of a
#    ``ParameterDict`` and train it for a few steps on one task. Which keys
#    does ``state_dict()`` save, and which temperature would a model loaded
#    from it have?
