r"""
Gradients
=========

Training needs, for every parameter, the derivative of the loss with respect
to it: which way, and how strongly, nudging that number changes the loss.
Backpropagation computes all of them in one backward sweep by applying the
chain rule from the loss back to the parameters. This tutorial does it by
hand on a small graph, checks the result against nnlite's autograd, shows
how gradients accumulate, and takes a second derivative.
"""

# %%
# The chain rule on a small graph
# -------------------------------
# One neuron with a squared error:
#
# .. math::
#
#    z = w x + b, \qquad a = \sigma(z), \qquad L = \tfrac12 (a - y)^2 .
#
# Going backwards, each step multiplies by one local derivative:
#
# .. math::
#
#    \frac{\partial L}{\partial a} = a - y, \qquad
#    \frac{\partial L}{\partial z} = \frac{\partial L}{\partial a}\, \sigma(z)\,(1 - \sigma(z)), \qquad
#    \frac{\partial L}{\partial w} = \frac{\partial L}{\partial z}\, x, \qquad
#    \frac{\partial L}{\partial b} = \frac{\partial L}{\partial z} .
import matplotlib.pyplot as plt
import numpy as np

import nnlite as nl
from nnlite import nn

x_val, y_val, w_val, b_val = 1.5, 0.2, 0.8, -0.3

# by hand, in plain floats
z = w_val * x_val + b_val
a = 1 / (1 + np.exp(-z))
L = 0.5 * (a - y_val) ** 2
dL_da = a - y_val
dL_dz = dL_da * a * (1 - a)
dL_dw, dL_db = dL_dz * x_val, dL_dz

# with autograd, in float64
w = nl.tensor(w_val, dtype=nl.float64, requires_grad=True)
b = nl.tensor(b_val, dtype=nl.float64, requires_grad=True)
loss = 0.5 * (nl.sigmoid(w * x_val + b) - y_val) ** 2
loss.backward()
print(f"loss     by hand {L:.10f}   autograd {loss.item():.10f}")
print(f"dL/dw    by hand {dL_dw:.10f}   autograd {w.grad.item():.10f}")
print(f"dL/db    by hand {dL_db:.10f}   autograd {b.grad.item():.10f}")
assert abs(loss.item() - L) < 1e-12
assert abs(w.grad.item() - dL_dw) < 1e-12 and abs(b.grad.item() - dL_db) < 1e-12

# %%
# A derivative is a slope, so a finite difference must agree with it:
# :math:`\partial L / \partial w \approx (L(w + h) - L(w - h)) / 2h`.
# ``nnlite.autograd.gradcheck`` does this for every input of a function; here
# we draw the loss as a function of :math:`w` with its tangent line.


def loss_of(wv):
    return 0.5 * (1 / (1 + np.exp(-(wv * x_val + b_val))) - y_val) ** 2


h = 1e-6
assert abs((loss_of(w_val + h) - loss_of(w_val - h)) / (2 * h) - w.grad.item()) < 1e-8
nl.autograd.gradcheck(lambda w_, b_: 0.5 * (nl.sigmoid(w_ * x_val + b_) - y_val) ** 2,
                      (nl.tensor(w_val, dtype=nl.float64, requires_grad=True),
                       nl.tensor(b_val, dtype=nl.float64, requires_grad=True)))

ws = np.linspace(-4, 4, 200)
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(ws, loss_of(ws), label=r"$L(w)$")
ax.plot(ws, L + w.grad.item() * (ws - w_val), "--", label=r"tangent, slope $\partial L/\partial w$")
ax.plot([w_val], [L], "o", color="C3")
ax.set_ylim(-0.02, 0.35)
ax.set_xlabel("w")
ax.legend()
ax.set_title("the gradient is the slope of the loss")
fig.tight_layout()

# %%
# Gradient accumulation
# ---------------------
# ``backward()`` *adds* into ``.grad`` rather than overwriting it, as in
# PyTorch. Two backward passes through the same loss give twice the gradient;
# that is why training loops call ``zero_grad()`` before each step. The same
# behaviour gives gradient accumulation on purpose: a batch too large for
# memory is split into :math:`N` micro-batches, each loss is divided by
# :math:`N`, and the summed gradients equal those of the mean loss over the
# whole batch,
#
# .. math::
#
#    \nabla_\theta \frac1N \sum_{k=1}^N L_k(\theta) = \sum_{k=1}^N \nabla_\theta \frac{L_k(\theta)}{N} .
nl.manual_seed(0)
model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)).double()
inputs = nl.randn(64, 5, dtype=nl.float64)
targets = nl.randn(64, 1, dtype=nl.float64)

model.zero_grad()
nn.functional.mse_loss(model(inputs), targets).backward()
full = [p.grad.data.copy() for p in model.parameters()]

model.zero_grad()
n_micro = 4
for xb, yb in zip(inputs.chunk(n_micro), targets.chunk(n_micro)):
    (nn.functional.mse_loss(model(xb), yb) / n_micro).backward()
accumulated = [p.grad.data.copy() for p in model.parameters()]
for g_full, g_acc in zip(full, accumulated):
    assert np.allclose(g_full, g_acc, rtol=1e-10, atol=1e-12)

# Forgetting zero_grad doubles the gradient.
nn.functional.mse_loss(model(inputs), targets).backward()
assert np.allclose(model[0].weight.grad.data, accumulated[0] + full[0])
print("four micro-batches of 16 give the gradient of one batch of 64")

# %%
# A second derivative
# -------------------
# nnlite writes every backward pass with differentiable operations, so the
# backward pass can itself be recorded (``create_graph=True``) and
# differentiated again. For :math:`f(x) = \tanh(x)`:
#
# .. math::
#
#    f'(x) = 1 - \tanh^2 x, \qquad f''(x) = -2 \tanh x \,(1 - \tanh^2 x).
#
# Second derivatives give curvature (Newton steps, Hessian-vector products),
# gradient penalties and meta-learning (MAML differentiates through a
# gradient step).
xs = nl.linspace(-3, 3, 121, dtype=nl.float64, requires_grad=True)
f = nl.tanh(xs)
(df,) = nl.grad(f.sum(), xs, create_graph=True)
(d2f,) = nl.grad(df.sum(), xs)
t = np.tanh(xs.data)
assert np.allclose(df.data, 1 - t ** 2, atol=1e-12)
assert np.allclose(d2f.data, -2 * t * (1 - t ** 2), atol=1e-12)

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(xs.data, f.data, label=r"$\tanh x$")
ax.plot(xs.data, df.data, label="first derivative (autograd)")
ax.plot(xs.data, d2f.data, label="second derivative (autograd)")
ax.plot(xs.data[::10], (-2 * t * (1 - t ** 2))[::10], "k.", label="closed form")
ax.axhline(0, color="0.8", lw=0.8)
ax.set_xlabel("x")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# A Hessian-vector product :math:`H v = \nabla_\theta (\nabla_\theta L \cdot v)`
# costs two backward passes and never forms :math:`H`. On a quadratic
# :math:`L = \tfrac12 \theta^\top A \theta` the Hessian is :math:`A` itself.
rng = np.random.default_rng(0)
m = rng.standard_normal((6, 6))
A = nl.tensor(m @ m.T)
theta = nl.tensor(rng.standard_normal(6), requires_grad=True, dtype=nl.float64)
v = nl.tensor(rng.standard_normal(6), dtype=nl.float64)
quad = 0.5 * (theta * (A @ theta)).sum()
(g,) = nl.grad(quad, theta, create_graph=True)
(hv,) = nl.grad((g * v).sum(), theta)
assert np.allclose(hv.data, A.data @ v.data, atol=1e-10)
print("Hessian-vector product matches A v")

# %%
# Summary
# -------
# * On one neuron, the chain rule worked by hand gives the same loss and
#   gradients as nnlite's autograd, to :math:`10^{-12}` in float64.
# * A gradient is a slope: a central finite difference agrees with it, and
#   :func:`~nnlite.autograd.gradcheck` makes that check for every input.
# * ``backward()`` adds into ``.grad``. Four micro-batches, each loss divided
#   by 4, give the gradient of the whole batch of 64; a backward pass without
#   ``zero_grad()`` adds its gradient to the one already there.
# * With ``create_graph=True``, :func:`~nnlite.grad` records the backward pass
#   so it can be differentiated again: the second derivative of
#   :math:`\tanh` matches its closed form.
# * A Hessian-vector product takes two backward passes and never forms
#   :math:`H`; on a quadratic it equals :math:`A v`.
#
# Exercises
# ---------
# 1. Check the gradient of ``nl.tanh`` with ``gradcheck`` in float32 instead of
#    float64. Why does it fail, and what does that say about ``eps``?
# 2. Accumulate the gradients of four batches of 25 and compare them with one
#    batch of 100. What factor makes them equal?
# 3. Use a Hessian-vector product and power iteration to estimate the largest
#    eigenvalue of :math:`A`; compare with ``np.linalg.eigvalsh``.
