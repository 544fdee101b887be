r"""
Hyperparameters, learned regularisation and conditioning
========================================================

Three ways a setting that is normally fixed by hand becomes something a
procedure chooses. First, a **hyperparameter search** (:mod:`nnlite.tune`)
picks a learning rate and a weight decay; the search has settings of its own —
the search space, the budget, the halving rate — the *meta-parameters*.
Second, the weight-decay strength becomes a **learned parameter**
(:mod:`nnlite.hyper`), moved by the gradient of the validation loss through one
training step; a dropout rate is learned too (:class:`~nnlite.nn.ConcreteDropout`).
Third, the scale and shift of a normalisation become
**functions of another input** (:class:`~nnlite.nn.FiLM`,
:class:`~nnlite.nn.ConditionalBatchNorm1d`), so one network does two tasks.
"""

# %%
# The meta-parameters of a search
# -------------------------------
# A small network classifies scikit-learn's 8x8 digits. The learning rate and
# the weight decay of its SGD optimizer are the hyperparameters; both matter by
# orders of magnitude, so the **search space** draws them log-uniformly
# (:func:`~nnlite.tune.loguniform`). The **budget** is counted in epochs.
#
# *Successive halving* (:func:`~nnlite.tune.successive_halving`) trains
# :math:`n` configurations for :math:`r` epochs, keeps the best :math:`n/\eta`,
# trains those for :math:`\eta r` epochs, and so on. With :math:`n = 27`,
# :math:`r = 1` and the **halving rate** :math:`\eta = 3`: 27 runs of 1 epoch, 9
# of 3, 3 of 9 — 81 epochs in all, the price of 9 full runs of random search
# (:func:`~nnlite.tune.random_search`). The bet: a configuration that is bad
# after one epoch stays bad. The score is the loss on a validation split, never
# on the test split, which is kept for the final number.
import math
import time

import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import hyper, nn, tune
from nnlite.data import DataLoader, Digits
from nnlite.nn import functional as F

started = time.perf_counter()
x, y = next(iter(DataLoader(Digits(train=True), batch_size=2000)))       # 1438 digits
test_x, test_y = next(iter(DataLoader(Digits(train=False), batch_size=2000)))   # 359 digits
train_x, train_y, val_x, val_y = x[:1000], y[:1000], x[1000:], y[1000:]


def make_classifier(seed=0):
    nl.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def train_digits(config, epochs):
    """Train with ``config``'s lr and weight decay for ``epochs``; return (model, validation loss)."""
    model = make_classifier()
    opt = nl.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9,
                       weight_decay=config["weight_decay"])
    order = np.random.default_rng(0)
    for _ in range(epochs):
        perm = order.permutation(len(train_y))
        for i in range(0, len(perm), 100):
            batch = perm[i:i + 100]
            opt.zero_grad()
            F.cross_entropy(model(train_x[batch]), train_y[batch]).backward()
            opt.step()
    with nl.no_grad():
        val_loss = float(F.cross_entropy(model(val_x), val_y).data)
    return model, val_loss if math.isfinite(val_loss) else 10.0   # a diverged run scores badly, not NaN


def objective(config, budget):
    return train_digits(config, budget)[1]


space = {"lr": tune.loguniform(1e-4, 3.0), "weight_decay": tune.loguniform(1e-6, 1e-1)}
halving = tune.successive_halving(objective, space, 27, min_budget=1, max_budget=9, eta=3, seed=0)
random = tune.random_search(objective, space, 9, budget=9, seed=1)
print(halving.table(top=6))
print(f"successive halving: {len(halving)} configurations, {halving.total_budget:.0f} epochs, "
      f"best validation loss {halving.best.score:.3f}")
print(f"random search:      {len(random)} configurations, {random.total_budget:.0f} epochs, "
      f"best validation loss {random.best.score:.3f}")

# %%
# Each line below is one configuration; it ends where the halving stopped it.
# The configurations that reach 9 epochs were among the best at every rung.
# Left, where the 27 configurations lie: with a learning rate below
# :math:`10^{-3}` the network barely moves in one epoch (validation loss still
# near :math:`\ln 10 \approx 2.3`) and is dropped at once; above 1 the steps
# are too large and the loss stays high.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for t in halving:
    budgets, scores = zip(*t.history)
    axes[1].plot(budgets, scores, "o-", color="C0" if t.budget == 9 else "0.7", lw=1, ms=3)
axes[1].set_xscale("log", base=3)
axes[1].set_yscale("log")
axes[1].set_xlabel("budget (epochs)")
axes[1].set_ylabel("validation loss")
axes[1].set_title("successive halving, eta = 3")
lr = np.array([t.config["lr"] for t in halving])
wd = np.array([t.config["weight_decay"] for t in halving])
rung = np.array([len(t.history) for t in halving])
points = axes[0].scatter(lr, wd, c=rung, s=20 + 30 * rung, cmap="viridis")
axes[0].set_xscale("log")
axes[0].set_yscale("log")
axes[0].set_xlabel("learning rate")
axes[0].set_ylabel("weight decay")
fig.colorbar(points, ax=axes[0], label="rungs survived")
fig.tight_layout()

# The cheapest configurations to reject are rejected first, and the search's
# pick does well on the test split it never saw.
assert halving.total_budget == random.total_budget == 81
assert all(t.budget == 1 for t in halving if t.config["lr"] < 1e-3)
assert all(t.budget < 9 for t in halving if t.config["lr"] > 1)
assert halving.best.score <= random.best.score       # three times the configurations paid off here
best_model, _ = train_digits(halving.best_config, 9)
with nl.no_grad():
    test_accuracy = float((best_model(test_x).data.argmax(1) == test_y.data).mean())
print(f"best configuration {halving.best_config}: test accuracy {100 * test_accuracy:.1f}%")
assert halving.best.score < 0.2 and test_accuracy > 0.93

# %%
# A regularisation strength learned by its hypergradient
# -------------------------------------------------------
# Weight decay could also be one of the searched hyperparameters. Or it can be
# learned while the model trains. With the strength :math:`\lambda = e^{s}`,
# one SGD step makes :math:`w' = w - \eta(\nabla L_\text{train}(w) + \lambda w)`,
# and the loss on held-out data after that step depends on :math:`s`:
#
# .. math::
#
#    \frac{\partial L_\text{val}(w')}{\partial s} = -\eta\,\lambda\, \nabla L_\text{val}(w') \cdot w .
#
# It is negative — raise the strength — when shrinking the weights would have
# lowered the validation loss (Luketina et al., 2016).
# :func:`~nnlite.hyper.hyper_step` computes it by differentiating through the
# step (``nl.grad(..., create_graph=True)``), applies an optimizer step to
# :math:`s` — a Parameter of kind ``"regularization"`` in
# :class:`~nnlite.hyper.LearnedWeightDecay` — and lets the model take its step.
#
# The problem is chosen to need regularisation: 30 noisy measurements of a
# linear function of 30 features. Least squares can fit them exactly, noise
# included. A hand-picked sweep of fixed strengths shows the U-shape of the
# test loss; the learned strength starts at a tiny :math:`10^{-3}`.
rng = np.random.default_rng(1)
w_true = np.full((30, 1), 0.3)


def measurements(n):
    features = rng.standard_normal((n, 30))
    noisy = features @ w_true + rng.standard_normal((n, 1))
    return nl.tensor(features, dtype=nl.float32), nl.tensor(noisy, dtype=nl.float32)


reg_train, reg_val, reg_test = measurements(30), measurements(30), measurements(1000)


def fit_regression(strength, learn=False, steps=300, lr=0.05, model=None):
    """Full-batch SGD with an L2 penalty; with ``learn`` the strength follows its hypergradient."""
    if model is None:
        nl.manual_seed(0)
        model = nn.Linear(30, 1)
    decay = hyper.LearnedWeightDecay(model, init=strength)
    hyper_opt = nl.optim.Adam(decay.parameters(), lr=0.1)
    path = []
    for _ in range(steps):
        if learn:
            hyper.hyper_step(model, F.mse_loss, reg_train, reg_val, decay, lr=lr, hyper_optimizer=hyper_opt)
        else:   # the same step with the strength held fixed, without the hypergradient's cost
            for p in model.parameters():
                p.grad = None
            (F.mse_loss(model(reg_train[0]), reg_train[1]) + decay.penalty(model)).backward()
            with nl.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
        path.append(decay.strengths.data.copy())
    with nl.no_grad():
        test_loss = float(F.mse_loss(model(reg_test[0]), reg_test[1]).data)
    return test_loss, np.array(path), decay


fixed = [1e-3, 1e-2, 1e-1, 0.3, 1.0, 3.0]
fixed_loss = [fit_regression(s)[0] for s in fixed]
learned_loss, learned_path, learned_decay = fit_regression(1e-3, learn=True)
print("fixed strengths:", {s: round(v, 3) for s, v in zip(fixed, fixed_loss)})
print(f"learned: strength {float(learned_path[-1, 0]):.3f}, test loss {learned_loss:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].plot(fixed, fixed_loss, "o-", label="hand-picked, fixed")
axes[0].axhline(learned_loss, color="C1", ls="--", label="learned from 1e-3")
axes[0].set_xscale("log")
axes[0].set_xlabel("L2 strength")
axes[0].set_ylabel("test loss (MSE)")
axes[0].legend(fontsize=8)
axes[1].plot(learned_path[:, 0], color="C1")
axes[1].set_yscale("log")
axes[1].set_xlabel("training step")
axes[1].set_ylabel("learned strength")
fig.tight_layout()

# The learned strength climbs by three orders of magnitude and lands near the
# best of the sweep — at the price of one run instead of six.
assert learned_decay.log_strength.kind == "regularization"
assert learned_path[-1, 0] > 0.1
assert learned_loss < 0.6 * fixed_loss[0]                  # far better than the tiny start
assert learned_loss < 1.1 * min(fixed_loss)                # as good as the best hand-picked value

# %%
# One strength per layer
# ----------------------
# :class:`~nnlite.hyper.LearnedWeightDecay` makes one strength per layer that
# owns weights, and the layers need not agree. A small two-layer network on the
# same data ends with very different strengths for its two weight matrices — a
# choice no single hand-picked value could make.
nl.manual_seed(0)
two_layers = nn.Sequential(nn.Linear(30, 32), nn.Tanh(), nn.Linear(32, 1))
per_layer_loss, per_layer_path, per_layer_decay = fit_regression(1e-3, learn=True, model=two_layers)
strengths = {name: round(float(s), 3) for name, s in zip(per_layer_decay.group_names, per_layer_path[-1])}
print(f"per-layer strengths {strengths}, test loss {per_layer_loss:.3f}")
assert per_layer_decay.group_names == ("0", "2")
assert max(per_layer_path[-1]) > 3 * min(per_layer_path[-1]) and max(per_layer_path[-1]) > 0.1

# %%
# A dropout rate learned with the weights
# ---------------------------------------
# Dropout's rate is a regularisation strength too. Bernoulli masks give no
# gradient with respect to :math:`p`, but their continuous relaxation does:
# :class:`~nnlite.nn.ConcreteDropout` (Gal et al., 2017) draws soft masks
# :math:`z = \sigma\big((\operatorname{logit} p + \log u - \log(1-u))/t\big)`
# and adds a penalty whose two terms scale as :math:`1/N`: one pulls
# :math:`p` down, the other (an entropy) towards 1/2. With few examples the
# penalty wins and the learned rate is high; with many, the data win and the
# rate falls — the model becomes surer as it sees more. Its ``p_logit`` is a
# parameter of kind ``"regularization"``, trained by the same optimizer as the
# weights.


def learned_dropout_rate(n, steps=400):
    data_rng = np.random.default_rng(0)
    inputs = data_rng.uniform(-1, 1, (n, 1))
    targets = np.sin(3 * inputs) + 0.3 * data_rng.standard_normal((n, 1))
    inputs, targets = nl.tensor(inputs, dtype=nl.float32), nl.tensor(targets, dtype=nl.float32)
    nl.manual_seed(0)
    first = nn.Linear(1, 32)
    # prior length-scale 1 and model precision 10, as in the paper's regression setting
    head = nn.ConcreteDropout(nn.Linear(32, 1), init_p=0.1, weight_regularizer=1.0 / n,
                              dropout_regularizer=2 / (10 * n))
    opt = nl.optim.Adam([*first.parameters(), *head.parameters()], lr=0.01)
    rates = []
    for _ in range(steps):
        batch = data_rng.integers(0, n, 20)
        opt.zero_grad()
        loss = F.mse_loss(head(F.relu(first(inputs[batch]))), targets[batch]) + head.regularization()
        loss.backward()
        opt.step()
        rates.append(float(head.p.data))
    return head, rates


dropout_rates = {n: learned_dropout_rate(n) for n in (20, 2000)}
fig, ax = plt.subplots(figsize=(6, 3.2))
for n, (head, rates) in dropout_rates.items():
    ax.plot(rates, label=f"N = {n}: p = {rates[-1]:.3f}")
ax.set_xlabel("training step")
ax.set_ylabel("learned dropout rate p")
ax.legend(fontsize=8)
fig.tight_layout()
print({n: round(rates[-1], 3) for n, (_, rates) in dropout_rates.items()})
assert dropout_rates[20][0].p_logit.kind == "regularization"
assert dropout_rates[20][1][-1] > 0.2 and dropout_rates[2000][1][-1] < 0.1

# %%
# Normalisation conditioned on a task
# -----------------------------------
# A normalisation layer ends with a learned scale and shift, the same for every
# example. FiLM (Perez et al., 2018) computes them from a second input instead:
#
# .. math::
#
#    \mathrm{FiLM}(h, c) = \gamma(c) \odot h + \beta(c), \qquad
#    \gamma(c) = W_\gamma c + b_\gamma,\ \beta(c) = W_\beta c + b_\beta .
#
# Here one network answers two questions about a digit, chosen by a one-hot
# task code :math:`c`: task 0, "is it 5 or more?", and task 1, "is it even?".
# The image alone cannot say which answer is wanted, so a network without the
# code is stuck near chance on the examples where the two answers differ. The
# FiLM layer's parameters have the kinds ``"scale"`` (those producing
# :math:`\gamma`) and ``"shift"``; it starts as the identity. A conditional
# batch norm (:class:`~nnlite.nn.ConditionalBatchNorm1d`) does the same with a
# batch norm and one row of scale and shift per task.
task = np.random.default_rng(2).integers(0, 2, len(y))
answer = np.where(task == 0, y.data >= 5, y.data % 2 == 0).astype(np.int64)
code = nl.tensor(np.eye(2, dtype=np.float32)[task])
task_t, answer_t = nl.tensor(task), nl.tensor(answer)


class TwoTaskNet(nn.Module):
    def __init__(self, condition):
        super().__init__()
        nl.manual_seed(0)
        self.hidden, self.out, self.condition = nn.Linear(64, 64), nn.Linear(64, 2), condition
        if condition == "film":
            self.film = nn.FiLM(64, cond_features=2)
        elif condition == "batchnorm":
            self.norm = nn.ConditionalBatchNorm1d(64, num_classes=2)

    def forward(self, x, code, task):
        h = self.hidden(x)
        if self.condition == "film":
            h = self.film(h, code)
        elif self.condition == "batchnorm":
            h = self.norm(h, task)
        return self.out(F.relu(h))


def train_two_tasks(condition, steps=300):
    net = TwoTaskNet(condition)
    opt = nl.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):     # full batch: the first 1000 examples
        opt.zero_grad()
        F.cross_entropy(net(x[:1000], code[:1000], task_t[:1000]), answer_t[:1000]).backward()
        opt.step()
    net.eval()
    with nl.no_grad():
        right = net(x[1000:], code[1000:], task_t[1000:]).data.argmax(1) == answer[1000:]
    return net, [float(right[task[1000:] == k].mean()) for k in (0, 1)]


results = {name: train_two_tasks(name) for name in ("none", "film", "batchnorm")}
for name, (_, accuracy) in results.items():
    print(f"{name:9}  held-out accuracy: task 0 {100 * accuracy[0]:.1f}%, task 1 {100 * accuracy[1]:.1f}%")

# %%
# What the code switches: the scale :math:`\gamma` each task gives every
# hidden unit (``scale.weight[:, k] + scale.bias``). Every :math:`\gamma`
# started at 1; units far from the diagonal are now amplified much more for one
# task than for the other, so each task reads its answer from a differently
# weighted mix of the same hidden features.
film = results["film"][0].film
gamma = film.scale.weight.data.T + film.scale.bias.data      # row k: gamma for task k
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].scatter(gamma[0], gamma[1], s=12)
axes[0].plot([-2, 3], [-2, 3], color="0.6", lw=1)
axes[0].set_xlabel("gamma, task 0 (5 or more?)")
axes[0].set_ylabel("gamma, task 1 (even?)")
names = list(results)
for k in (0, 1):
    axes[1].bar(np.arange(3) + 0.4 * k - 0.2, [results[n][1][k] for n in names], width=0.4, label=f"task {k}")
axes[1].set_xticks(range(3), ["no code", "FiLM", "conditional BN"])
axes[1].set_ylim(0, 1)
axes[1].set_ylabel("held-out accuracy")
axes[1].legend(fontsize=8)
fig.tight_layout()

assert {p.kind for p in film.parameters()} == {"scale", "shift"}
assert min(results["film"][1]) > 0.9 and min(results["batchnorm"][1]) > 0.9
assert min(results["none"][1]) < 0.8                        # without the code one task must lose
assert np.abs(gamma[0] - gamma[1]).max() > 0.5             # the tasks scale the units differently
print(f"tutorial ran in {time.perf_counter() - started:.1f} s")

# %%
# Summary
# -------
# * A hyperparameter search is a procedure with its own settings: the search
#   space (log-uniform for scale-like hyperparameters), the budget and, for
#   successive halving and Hyperband, the halving rate :math:`\eta`. Halving
#   spends the same budget as random search on three times as many
#   configurations by stopping the bad ones early.
# * A regularisation strength can be a parameter (kind ``"regularization"``)
#   learned from the validation loss through one unrolled training step; here
#   it rose from :math:`10^{-3}` to the region of the best hand-picked value, in
#   one run, and chose a different strength for each layer. Concrete dropout
#   learns a dropout rate the same way, high for little data, low for much.
# * Conditional normalisation (FiLM, conditional batch norm) makes the scale and
#   shift functions of another input; a task code then switches one network
#   between tasks.
#
# Exercises
# ---------
# 1. Run successive halving with :math:`\eta = 2` and the same 81-epoch budget
#    (how many configurations can it start?). Does it find a better
#    configuration? Then try :func:`~nnlite.tune.hyperband`.
# 2. Start the learned strength at 10 instead of :math:`10^{-3}`. Does it come
#    down to the same region?
# 3. Replace the one-step hypergradient by a search over the strength with
#    :func:`~nnlite.tune.random_search`. How many runs does it need to match?
# 4. Give FiLM a third task ("is it 3?") and a three-entry code. Which hidden
#    units does the new task reuse?
