r"""
Which parameters matter
=======================

Not every parameter of a trained network matters equally: some can be set to
zero with no effect on the loss, others cannot be touched. This tutorial
scores the weights of the MNIST-1D CNN in four ways — magnitude, gradient,
first-order Taylor and Fisher — removes the least important ones by each
score, and measures the loss. It then looks at sensitivity layer by layer
(Gaussian perturbations) and along directions (the Hessian's top
eigenvalues), and counts the *effective* parameters. This is the question
pruning starts from.
"""

# %%
# A trained model and two sets of data
# ------------------------------------
# The scores are computed on 1000 training examples; the loss after removal
# is measured on the 1000 test examples.
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import recipes
from nnlite.data import MNIST1D, DataLoader
from nnlite.nn import functional as F

analysis = nl.analysis
nl.manual_seed(0)
train, test = MNIST1D(train=True), MNIST1D(train=False)
model = recipes.MNIST1DCNN()
optimizer = nl.optim.Adam(model.parameters(), lr=1e-2)
history = nl.train.fit(model, F.cross_entropy, optimizer, DataLoader(train, batch_size=100, shuffle=True),
                       epochs=15, val_loader=DataLoader(test, batch_size=1000), progress=False)
model.eval()
scoring_data = next(iter(DataLoader(train, batch_size=1000, shuffle=True)))
test_data = next(iter(DataLoader(test, batch_size=1000)))
with nl.no_grad():
    base_loss = F.cross_entropy(model(test_data[0]), test_data[1]).item()
print(f"test accuracy {history['val_accuracy'][-1]:.3f}, test loss {base_loss:.3f}")
assert history["val_accuracy"][-1] > 0.8

# %%
# Four importance scores
# ----------------------
# Each score estimates how much the loss :math:`L` would change if weight
# :math:`\theta_i` were set to zero. With :math:`g_i = \partial L/\partial\theta_i`
# and the Taylor expansion
#
# .. math::
#
#    L(\theta - \theta_i e_i) \approx L(\theta) - g_i\,\theta_i + \tfrac12 H_{ii}\,\theta_i^2,
#
# * **magnitude** :math:`|\theta_i|` ignores the loss altogether;
# * **gradient** :math:`|g_i|` keeps only how steep the loss is;
# * **first-order Taylor** :math:`|\theta_i g_i|` (Molchanov et al., 2017) keeps
#   the first-order term;
# * **Fisher** :math:`\tfrac12 F_{ii}\theta_i^2` keeps the second-order term, with
#   the diagonal of the empirical Fisher :math:`F_{ii} = \frac1N\sum_n
#   (\partial \ell_n/\partial\theta_i)^2` standing in for the Hessian's
#   (LeCun et al., 1990; Theis et al., 2018). Each sample's gradient is
#   computed on its own by :func:`~nnlite.analysis.fisher_diagonal`.
#
# We score the weights only (biases are few and stay), and add a random score
# as the baseline any real criterion must beat.
def weights_only(scores):
    return {name: s for name, s in scores.items() if name.endswith("weight")}


taylor = analysis.taylor_importance(model, F.cross_entropy, scoring_data)
scores = {
    "magnitude": weights_only(analysis.magnitude_importance(model)),
    "gradient": weights_only(analysis.gradient_importance(model, F.cross_entropy, scoring_data)),
    "taylor": weights_only(taylor),
    "fisher": weights_only(analysis.fisher_importance(model, F.cross_entropy, scoring_data)),
}
random_generator = np.random.default_rng(0)
scores["random"] = {name: nl.tensor(random_generator.random(s.shape)) for name, s in scores["magnitude"].items()}

fisher = analysis.fisher_diagonal(model, F.cross_entropy, scoring_data)
w = model.get_parameter("conv2.weight").data
assert np.allclose(scores["fisher"]["conv2.weight"].data, 0.5 * fisher["conv2.weight"].data * w ** 2)

# SNIP (Lee et al., 2019) is the Taylor score normalised to sum to one, meant
# for pruning at initialisation: on a trained model it ranks like Taylor.
snip = analysis.snip_importance(model, F.cross_entropy, scoring_data)
taylor_total = sum(float(t.data.sum()) for t in taylor.values())
assert np.allclose(snip["linear.weight"].data, taylor["linear.weight"].data / taylor_total, rtol=1e-4)

# %%
# Removing the least important weights
# ------------------------------------
# For each score and each fraction :math:`f`, zero the fraction :math:`f` of
# weights with the lowest scores over the whole network (one global
# threshold), measure the test loss, and put the weights back
# (:func:`~nnlite.analysis.loss_after_removal`).
fractions = np.linspace(0, 0.9, 10)
curves = {name: analysis.loss_after_removal(model, F.cross_entropy, test_data, s, fractions)
          for name, s in scores.items()}
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, losses in curves.items():
    ax.plot(fractions, losses, marker="o", ms=3, label=name, ls="--" if name == "random" else "-")
ax.set_yscale("log")
ax.set_xlabel("fraction of weights set to zero")
ax.set_ylabel("test loss")
ax.legend()
fig.tight_layout()

half = list(fractions).index(0.5)
print("test loss with half of the weights removed:")
for name, losses in curves.items():
    print(f"  {name:10} {losses[half]:.3f}")
for name in ("magnitude", "taylor", "fisher"):
    assert curves[name][half] < 0.5 * curves["random"][half]
assert curves["random"][1] > curves["magnitude"][half]

# %%
# Two things stand out. Removing a random 10% of the weights costs more than
# removing the half with the smallest magnitudes: importance is very uneven.
# And the three scores built from gradients lose *nothing* for the first 20%:
# these are weights whose gradient is exactly zero on every one of the 1000
# scoring examples — the weights of ReLU units that never fire, and the
# weights that read from them. Such weights can go at no cost at all.
for name in ("gradient", "taylor", "fisher"):
    assert abs(curves[name][2] - base_loss) < 1e-3
zero_gradient = sum(int((s.data == 0).sum()) for s in scores["fisher"].values())
total_weights = sum(s.data.size for s in scores["fisher"].values())
print(f"{zero_gradient} of {total_weights} weights ({zero_gradient / total_weights:.0%}) have a zero Fisher score")
assert zero_gradient > 0.15 * total_weights

# %%
# Beyond those, the plain magnitude is as good as anything here: at half the
# weights removed it is the best score or within a quarter of the best (which
# of magnitude and the diagonal Fisher leads changes with the last bits of
# training: one build of nnlite ranks them one way, another the other). The
# gradient alone is the worst real criterion: it says how steep the loss is,
# not how far a weight would move. The first-order Taylor term vanishes at a
# minimum (the gradient is nearly zero there, and its estimate is noisy), and
# the diagonal Fisher misses the interactions of weights removed together.
best = min(curves[name][half] for name in ("gradient", "taylor", "fisher"))
assert curves["magnitude"][half] < 1.25 * best
assert curves["gradient"][half] > max(curves[name][half] for name in ("magnitude", "taylor", "fisher"))

# %%
# Sensitivity per layer: Gaussian perturbations
# ---------------------------------------------
# :func:`~nnlite.analysis.perturbation_sensitivity` adds noise
# :math:`\epsilon \sim \mathcal N(0, (s\,r)^2)` to one parameter at a time,
# with :math:`r` the root-mean-square of that parameter's values, and reports
# the mean loss increase. At the same *relative* noise, the small first
# layer is by far the most sensitive: every later feature is built from its
# five-tap filters.
scales = [0.05, 0.1, 0.2, 0.5]
sensitivity = analysis.perturbation_sensitivity(model, F.cross_entropy, test_data, scales, n_draws=3,
                                                generator=nl.Generator(0))
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, increases in sensitivity.items():
    if name.endswith("weight"):
        ax.plot(scales, np.maximum(increases, 1e-4), "o-", label=name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("noise std / rms of the weights")
ax.set_ylabel("loss increase")
ax.legend()
fig.tight_layout()
at = scales.index(0.2)
for name in ("conv2.weight", "conv3.weight", "linear.weight"):
    assert sensitivity["conv1.weight"][at] > 3 * sensitivity[name][at]

# %%
# Sensitivity along directions: the Hessian
# -----------------------------------------
# The diagonal scores look at one weight at a time. The Hessian
# :math:`H = \nabla^2 L` describes all directions; it has 5210² entries, but its
# product with a vector costs two backward passes,
# :math:`Hv = \nabla_\theta(\nabla_\theta L\cdot v)`, which is all the Lanczos
# iteration (top eigenvalues) and Hutchinson's estimator
# :math:`\operatorname{tr} H = \mathbb E[v^\top H v]` for random signs
# :math:`v` need.
eigenvalues = analysis.hessian_top_eigenvalues(model, F.cross_entropy, scoring_data, k=8, iters=24,
                                               generator=nl.Generator(0))
trace = analysis.hessian_trace(model, F.cross_entropy, scoring_data, n_probes=16, generator=nl.Generator(1))
print("top Hessian eigenvalues:", np.round(eigenvalues, 2))
print(f"trace estimate {trace:.1f}; the top 8 directions hold {eigenvalues.sum() / trace:.0%} of it")
assert np.all(np.diff(eigenvalues) <= 0) and eigenvalues[0] > 5
assert eigenvalues.sum() < trace

# %%
# The *effective dimensionality* (MacKay, 1992; Maddox et al., 2020) counts the
# directions the data pins down, relative to a prior precision :math:`\alpha`:
#
# .. math::
#
#    N_\text{eff}(\alpha) = \sum_i \frac{\lambda_i}{\lambda_i + \alpha}.
#
# Directions with :math:`\lambda_i \gg \alpha` count one, flat ones zero. From
# the top 8 eigenvalues we get a lower bound; the remaining eigenvalues, if
# non-negative, add at most :math:`(\operatorname{tr}H - \sum_{i\le 8}\lambda_i)/\alpha`.
alpha = 10.0
lower = analysis.effective_dimensionality(eigenvalues, alpha)
upper = lower + max(trace - eigenvalues.sum(), 0) / alpha
print(f"N_eff(alpha={alpha:g}) between {lower:.1f} and {upper:.1f}, of {model.num_parameters()} parameters")
assert 1 < lower < 8 and upper < 0.01 * model.num_parameters()

# %%
# Effective parameters by removal
# -------------------------------
# The other count asks how many weights, kept in order of magnitude, are
# needed for the test loss to rise by at most 0.05 nats
# (:func:`~nnlite.analysis.effective_parameters`, a bisection over the number
# removed).
effective = analysis.effective_parameters(model, F.cross_entropy, test_data, threshold=0.05)
print(f"{effective} of {model.num_parameters()} parameters keep the test loss within 0.05 of {base_loss:.3f}")
assert effective < 0.9 * model.num_parameters()

# %%
# The two counts answer different questions. Along directions, only a few
# are stiff: :math:`N_\text{eff}` is a handful. Weight by weight, about a
# fifth of the parameters can be removed for free, but beyond that every
# removal costs: sparsity in the coordinates we happen to use is much less
# than the flatness of the loss in well-chosen directions.
#
# Summary
# -------
# * Importance is very uneven: a random 10% of the weights matters more than
#   the half with the smallest magnitudes.
# * Weights with zero gradient on every example (dead units) can be removed for
#   free; beyond them, magnitude is a strong criterion for a trained model.
# * Per-layer perturbations show which layers need precision (here the first);
#   the Hessian's spectrum shows that only a few directions are stiff.
# * The next step is to remove weights for good and retrain: pruning.
#
# Exercises
# ---------
# 1. Score the biases as well. Which score removes them first, and why?
# 2. Compute the scores on the test data instead of the training data. Do the
#    curves change?
# 3. Train for 50 epochs and repeat. Does the Taylor score improve as the
#    gradient gets smaller and noisier, or get worse?
# 4. Use ``analysis.removal_mask`` to zero the 50% lowest weights by magnitude,
#    fine-tune for two epochs with the mask re-applied after every step, and
#    measure the accuracy.
