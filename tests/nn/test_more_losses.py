"""Margin, likelihood and embedding losses and the distance functions, against PyTorch and finite differences.

Every function is compared with PyTorch in float64 (value and the gradient of
every differentiable argument, for each reduction); central differences check
first and second derivatives; bad input must raise an error that names what
was expected and what was given.
"""
import inspect
import math
import re

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck

F = nl.nn.functional
REDUCTIONS = ["mean", "sum", "none"]
LEGACY = [(False, None), (None, False), (True, True), (False, True), (True, None)]

rng = np.random.default_rng(7)
N, C = 6, 4
X = rng.standard_normal((N, C))
Y = rng.standard_normal((N, C))
Z = rng.standard_normal((N, C))
PROBS = rng.uniform(0.05, 0.95, (N, C))
SOFT_TARGETS = rng.uniform(0.0, 1.0, (N, C))
SIGNS = np.where(rng.random((N, C)) < 0.5, -1.0, 1.0)
CLASS_WEIGHT = rng.uniform(0.5, 2.0, C)


def check(torch, ours, theirs, arrays, grads=None, rtol=1e-10, atol=1e-12):
    """Same value as PyTorch, and the same gradients for the arrays numbered in ``grads`` (default: all)."""
    grads = range(len(arrays)) if grads is None else grads
    ours_in = [nl.tensor(a, requires_grad=i in grads) for i, a in enumerate(arrays)]
    theirs_in = [torch.tensor(a, requires_grad=i in grads) for i, a in enumerate(arrays)]
    y, yt = ours(*ours_in), theirs(*theirs_in)
    assert y.shape == tuple(yt.shape)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    if not grads:
        return y
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(nl.tensor(g))
    yt.backward(torch.tensor(g))
    for i in grads:
        theirs_grad = theirs_in[i].grad   # None where PyTorch's graph never reaches the input (p=0 norms)
        expected = np.zeros(arrays[i].shape) if theirs_grad is None else theirs_grad.numpy()
        np.testing.assert_allclose(ours_in[i].grad.data, expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of argument {i}")
    return y


def leaves(*arrays):
    return [nl.tensor(a, requires_grad=True) for a in arrays]


# --------------------------------------------------------------- binary cross-entropy ---

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (N, C), (C,), (N, 1)])
def test_binary_cross_entropy_matches_torch(reduction, weight_shape):
    torch = torch_or_skip()
    TF = torch.nn.functional
    if weight_shape is None:
        check(torch, lambda x, t: F.binary_cross_entropy(x, t, reduction=reduction),
              lambda x, t: TF.binary_cross_entropy(x, t, reduction=reduction), [PROBS, SOFT_TARGETS])
        return
    w = rng.uniform(0.1, 2.0, weight_shape)
    check(torch, lambda x, t: F.binary_cross_entropy(x, t, nl.tensor(w), reduction=reduction),
          lambda x, t: TF.binary_cross_entropy(x, t, torch.tensor(w), reduction=reduction), [PROBS, SOFT_TARGETS])


def test_binary_cross_entropy_at_the_boundaries():
    torch = torch_or_skip()
    TF = torch.nn.functional
    # Certain and right (0 | 0, 1 | 1), certain and wrong (0 | 1, 1 | 0: each log floored at -100),
    # a probability too small for log to stay above -100, and an ordinary one.
    x = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.3])
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.6])
    y = check(torch, lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
              lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"), [x, t], grads=[0])
    np.testing.assert_allclose(y.data[:5], [0.0, 0.0, 100.0, 100.0, 100.0], atol=1e-12)
    # The target's gradient is the slope of the floored loss, floored log(1 - x) - floored log x:
    # finite where PyTorch's unfloored logit gives +-inf or -logit(1e-50).
    xn, tn = nl.tensor(x), nl.tensor(t, requires_grad=True)
    F.binary_cross_entropy(xn, tn, reduction="sum").backward()
    floored = np.maximum(np.log1p(-x), -100) - np.maximum(np.log(np.maximum(x, 1e-300)), -100)
    np.testing.assert_allclose(tn.grad.data, floored, rtol=1e-12)
    assert np.all(np.isfinite(tn.grad.data))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_empty_batch_and_legacy_arguments(reduction):
    torch = torch_or_skip()
    TF = torch.nn.functional
    empty = np.zeros((0, C))
    check(torch, lambda x, t: F.binary_cross_entropy(x, t, reduction=reduction),
          lambda x, t: TF.binary_cross_entropy(x, t, reduction=reduction), [empty, empty])
    for size_average, reduce in LEGACY:
        check(torch, lambda x, t: F.binary_cross_entropy(x, t, None, size_average, reduce),
              lambda x, t: TF.binary_cross_entropy(x, t, None, size_average, reduce), [PROBS, SOFT_TARGETS])


def test_binary_cross_entropy_derivatives():
    x, t = leaves(PROBS[:3], SOFT_TARGETS[:3])
    w = nl.tensor(CLASS_WEIGHT)
    for reduction in REDUCTIONS:
        fn = lambda a, b: F.binary_cross_entropy(a, b, w, reduction=reduction)  # noqa: E731
        assert gradcheck(fn, [x, t])
        assert gradgradcheck(fn, [x, t])


def test_binary_cross_entropy_refuses_values_outside_zero_one():
    target = nl.tensor(SOFT_TARGETS[:1, :3].astype(np.float32))   # the input's dtype, as PyTorch requires
    for bad in (1.5, -0.25, float("nan")):
        with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\].*"
                                             r"got 1 value\(s\) outside, e\.g\. " + re.escape(str(bad))):
            F.binary_cross_entropy(nl.tensor([[0.5, bad, 0.2]]), target)


# ------------------------------------------------------------------ likelihoods ---

COUNTS = rng.integers(0, 7, (N, C)).astype(np.float64)
COUNTS[0, :3] = [0.0, 1.0, 0.5]   # no Stirling term at or below 1
RATES = rng.uniform(0.2, 3.0, (N, C))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_loss_matches_torch(reduction, log_input, full):
    torch = torch_or_skip()
    TF = torch.nn.functional
    x = X if log_input else RATES
    # PyTorch's target gradient with full=True is NaN at t = 0 (0 * log 0 before the mask), so
    # the target is compared where it is positive, and the input everywhere.
    targets = np.where(COUNTS == 0, 2.0, COUNTS) if full else COUNTS
    for t, grads in ((targets, [0, 1]), (COUNTS, [0])):
        check(torch, lambda a, b: F.poisson_nll_loss(a, b, log_input, full, reduction=reduction),
              lambda a, b: TF.poisson_nll_loss(a, b, log_input, full, reduction=reduction), [x, t], grads)
    check(torch, lambda a, b: F.poisson_nll_loss(a, b, log_input, full, eps=0.1, reduction=reduction),
          lambda a, b: TF.poisson_nll_loss(a, b, log_input, full, eps=0.1, reduction=reduction),
          [x, targets[0] + 1], [0, 1])   # a (C,) target broadcasts


def test_poisson_nll_loss_stirling_term_and_derivatives():
    t = np.array([0.0, 1.0, 2.0, 5.0])
    loss = F.poisson_nll_loss(nl.zeros(4, dtype=nl.float64), nl.tensor(t), full=True, reduction="none")
    stirling = [0.0, 0.0] + [k * math.log(k) - k + 0.5 * math.log(2 * math.pi * k) for k in (2.0, 5.0)]
    np.testing.assert_allclose(loss.data, 1.0 + np.array(stirling), rtol=1e-14)
    tn = nl.tensor(t, requires_grad=True)
    F.poisson_nll_loss(nl.zeros(4, dtype=nl.float64), tn, full=True, reduction="sum").backward()
    assert np.all(np.isfinite(tn.grad.data))     # no log 0 reaches the gradient at t = 0
    x, rates, counts = leaves(X[:2], RATES[:2], COUNTS[2:4] + 1.5)   # targets away from the mask at 1
    for fn, inputs in [(lambda a, b: F.poisson_nll_loss(a, b, full=True), [x, counts]),
                       (lambda a, b: F.poisson_nll_loss(a, b, log_input=False, full=True, reduction="sum"),
                        [rates, counts])]:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


VARIANCES = rng.uniform(0.1, 2.0, (N, C))
VARIANCES[0, :3] = [0.0, 1e-8, 1e-6]   # raised to eps in value; the gradient ignores the floor


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(N, C), (N,), (N, 1), (1, C)])
def test_gaussian_nll_loss_matches_torch(reduction, full, var_shape):
    torch = torch_or_skip()
    TF = torch.nn.functional
    var = VARIANCES if var_shape == (N, C) else rng.uniform(0.1, 2.0, var_shape)
    check(torch, lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=full, reduction=reduction),
          lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full=full, reduction=reduction), [X, Y, var])
    check(torch, lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=full, eps=0.5, reduction=reduction),
          lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full=full, eps=0.5, reduction=reduction),
          [X, Y[0], var])   # the target broadcasts


def test_gaussian_nll_loss_float_variance_and_derivatives():
    torch = torch_or_skip()
    TF = torch.nn.functional
    check(torch, lambda x, t: F.gaussian_nll_loss(x, t, 0.7), lambda x, t: TF.gaussian_nll_loss(x, t, 0.7), [X, Y])
    x, t, v = leaves(X[:2], Y[:2], VARIANCES[2:4])
    per_row = nl.tensor(VARIANCES[2:4, 0], requires_grad=True)
    for fn, inputs in [(lambda a, b, c: F.gaussian_nll_loss(a, b, c, full=True), [x, t, v]),
                       (lambda a, b, c: F.gaussian_nll_loss(a, b, c, reduction="none"), [x, t, per_row])]:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


def test_gaussian_nll_loss_errors():
    x, t = nl.tensor(X), nl.tensor(Y)
    var = np.ones((N, C))
    var[3, 2], var[4, 1] = -0.5, -0.25
    with pytest.raises(ValueError, match=r"var must be >= 0 everywhere, got 2 negative entries \(smallest -0\.5\)"):
        F.gaussian_nll_loss(x, t, nl.tensor(var))
    with pytest.raises(ValueError, match="var must be >= 0, got -1.0"):
        F.gaussian_nll_loss(x, t, -1.0)
    for shape in [(C,), (N, 2), (1, 1), (N, C, 1)]:
        with pytest.raises(ValueError, match=r"var must have the input's shape \(6, 4\), that shape without its "
                                             r"last dim \(6,\), or that shape with one dim of size 1; got "
                                             + re.escape(str(shape))):
            F.gaussian_nll_loss(x, t, nl.ones(*shape, dtype=nl.float64))


# ----------------------------------------------------------------- margin losses ---

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss_matches_torch(reduction, margin):
    torch = torch_or_skip()
    TF = torch.nn.functional
    x1, x2 = X[:, 0].copy(), X[:, 1].copy()
    x1[0], x2[0] = 0.5, 0.0      # exactly at the kink for margin 0.5 with y = 1: both pass the gradient
    y = SIGNS[:, 0].copy()
    y[0] = 1.0
    for a, b, t in [(x1, x2, y), (X, Y[:1], SIGNS)]:   # broadcasting, same number of dims
        check(torch, lambda p, q, s: F.margin_ranking_loss(p, q, s, margin, reduction=reduction),
              lambda p, q, s: TF.margin_ranking_loss(p, q, s, margin, reduction=reduction), [a, b, t])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_hinge_embedding_loss_matches_torch(reduction, margin):
    torch = torch_or_skip()
    TF = torch.nn.functional
    distance = np.abs(X)
    distance[0, 0] = margin          # the kink of max(0, margin - x)
    labels = SIGNS.copy()
    labels[1, :2] = [0.0, 2.0]       # neither +1 nor -1: both terms count, as in PyTorch
    for x, t in [(distance, labels), (distance, labels[0]), (distance[0], labels)]:
        check(torch, lambda a, b: F.hinge_embedding_loss(a, b, margin, reduction=reduction),
              lambda a, b: TF.hinge_embedding_loss(a, b, margin, reduction=reduction), [x, t], grads=[0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin_loss_matches_torch_and_stays_finite(reduction):
    torch = torch_or_skip()
    TF = torch.nn.functional
    for t in (SIGNS, SIGNS[0]):
        check(torch, lambda a, b: F.soft_margin_loss(a, b, reduction=reduction),
              lambda a, b: TF.soft_margin_loss(a, b, reduction=reduction), [X * 3, t], grads=[0])
    # Where exp(-y x) overflows, PyTorch gives inf (and a NaN gradient); softplus(-y x) is exact.
    x = nl.tensor([-800.0, 800.0, 0.0], dtype=nl.float64, requires_grad=True)
    loss = F.soft_margin_loss(x, nl.tensor([1.0, -1.0, 1.0], dtype=nl.float64), reduction="none")
    np.testing.assert_allclose(loss.data, [800.0, 800.0, math.log(2)], rtol=1e-15)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [-1.0, 1.0, -0.5], rtol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape", [None, (C,), (N, 1)])
def test_multilabel_soft_margin_loss_matches_torch(reduction, weight_shape):
    torch = torch_or_skip()
    TF = torch.nn.functional
    labels = (SIGNS > 0).astype(np.float64)
    w = None if weight_shape is None else rng.uniform(0.5, 2.0, weight_shape)
    for x, t in [(X * 4, labels), (X[0], labels[0]), (np.stack([X, Y]), np.stack([labels, SOFT_TARGETS]))]:
        if w is not None and w.shape == (N, 1) and x.ndim == 1:
            continue
        check(torch, lambda a, b: F.multilabel_soft_margin_loss(a, b, None if w is None else nl.tensor(w),
                                                                reduction=reduction),
              lambda a, b: TF.multilabel_soft_margin_loss(a, b, None if w is None else torch.tensor(w),
                                                          reduction=reduction), [x, t])


# The second row puts a wrong class exactly margin (1.0) below the true one: the hinge is at its kink.
MULTI_X = np.concatenate([X, [[0.5, -0.5, 0.25, 2.0]]])
MULTI_T = np.array([0, 3, 1, 2, 2, 1, 0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_loss_matches_torch(reduction, p, margin, weighted):
    torch = torch_or_skip()
    TF = torch.nn.functional
    w, wt = (nl.tensor(CLASS_WEIGHT), torch.tensor(CLASS_WEIGHT)) if weighted else (None, None)
    for x, t in [(MULTI_X, MULTI_T), (MULTI_X[6], np.array(0)), (MULTI_X[1], np.array([3]))]:
        check(torch, lambda a: F.multi_margin_loss(a, nl.tensor(t), p, margin, w, reduction=reduction),
              lambda a: TF.multi_margin_loss(a, torch.tensor(t), p, margin, wt, reduction=reduction), [x])


def test_multi_margin_loss_empty_batch_and_derivatives():
    torch = torch_or_skip()
    TF = torch.nn.functional
    empty, no_targets = np.zeros((0, C)), np.zeros(0, dtype=np.int64)
    check(torch, lambda a: F.multi_margin_loss(a, nl.tensor(no_targets), reduction="none"),
          lambda a: TF.multi_margin_loss(a, torch.tensor(no_targets), reduction="none"), [empty])
    # PyTorch's sum and mean of no samples are whatever its output buffer held (a different number
    # from run to run); the sum of nothing is 0 and its mean NaN.
    assert F.multi_margin_loss(nl.tensor(empty), nl.tensor(no_targets), reduction="sum").item() == 0.0
    assert np.isnan(F.multi_margin_loss(nl.tensor(empty), nl.tensor(no_targets)).item())
    x = nl.tensor(X * 0.3, requires_grad=True)     # small scores: most hinges active, none at a kink
    for p in (1, 2):
        fn = lambda a: F.multi_margin_loss(a, nl.tensor(MULTI_T[:N]), p, 1.0, nl.tensor(CLASS_WEIGHT))  # noqa: E731
        assert gradcheck(fn, [x])
        assert gradgradcheck(fn, [x])


def test_multi_margin_loss_errors():
    x, t = nl.tensor(X), nl.tensor(MULTI_T[:N])
    with pytest.raises(ValueError, match=r"multi_margin_loss: p must be 1 or 2, got 3"):
        F.multi_margin_loss(x, t, p=3)
    with pytest.raises(ValueError, match=r"MultiMarginLoss: p must be 1 or 2, got 0"):
        nl.nn.MultiMarginLoss(p=0)
    with pytest.raises(IndexError, match="target 4 is out of bounds for C=4 classes"):
        F.multi_margin_loss(x, nl.tensor([0, 1, 4, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"one class index per sample \(6\) for input of shape \(6, 4\), "
                                         r"got shape \(5,\)"):
        F.multi_margin_loss(x, nl.tensor([0, 1, 2, 0, 0]))
    with pytest.raises(ValueError, match=r"weight must be 1-D with one weight per class, shape \(4,\), got \(3,\)"):
        F.multi_margin_loss(x, t, weight=nl.ones(3, dtype=nl.float64))
    with pytest.raises(ValueError, match=r"input must be \(N, C\) or \(C,\) with C >= 1, got shape \(2, 3, 4\)"):
        F.multi_margin_loss(nl.ones(2, 3, 4), nl.tensor([0, 1]))
    with pytest.raises(TypeError, match="target must hold integer class indices, got float64"):
        F.multi_margin_loss(x, nl.tensor(MULTI_T[:N].astype(np.float64)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.2, -0.3])
def test_cosine_embedding_loss_matches_torch(reduction, margin):
    torch = torch_or_skip()
    TF = torch.nn.functional
    a, b = X.copy(), Y.copy()
    a[2] = 0.0                     # a zero vector: cosine 0 (PyTorch's 1e-12 in each squared norm)
    labels = SIGNS[:, 0]
    for x1, x2, t in [(a, b, labels), (a, b[:1], labels), (a[0], b[0], np.array(-1.0)), (a[1], b[1], np.array(1.0))]:
        check(torch, lambda p, q: F.cosine_embedding_loss(p, q, nl.tensor(t), margin, reduction=reduction),
              lambda p, q: TF.cosine_embedding_loss(p, q, torch.tensor(t), margin, reduction=reduction), [x1, x2])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [2, 1, 3])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_loss_matches_torch(reduction, p, swap):
    torch = torch_or_skip()
    TF = torch.nn.functional
    positive = Y.copy()
    positive[0] = X[0]             # anchor == positive: eps keeps the distance's gradient finite
    for a, pos, neg in [(X, positive, Z), (X[0], Y[0], Z[0]), (X, Y[:1], Z),
                        (np.stack([X, Z]), np.stack([Y, X]), np.stack([Z, Y]))]:
        for margin, eps in [(1.0, 1e-6), (0.4, 0.0)]:
            check(torch, lambda u, v, w: F.triplet_margin_loss(u, v, w, margin, p, eps, swap, reduction=reduction),
                  lambda u, v, w: TF.triplet_margin_loss(u, v, w, margin, p, eps, swap, reduction=reduction),
                  [a, pos, neg])


def test_margin_losses_empty_batch_and_legacy_arguments():
    torch = torch_or_skip()
    TF = torch.nn.functional
    empty, no_labels = np.zeros((0, C)), np.zeros(0)
    # (PyTorch refuses a gradient for soft_margin_loss's target; hinge_embedding_loss's only selects.)
    for reduction in REDUCTIONS:
        for ours, theirs, arrays, grads in [
                (F.soft_margin_loss, TF.soft_margin_loss, [empty, empty], [0]),
                (F.multilabel_soft_margin_loss, TF.multilabel_soft_margin_loss, [empty, empty], None),
                (F.hinge_embedding_loss, TF.hinge_embedding_loss, [empty, empty], [0]),
                (F.margin_ranking_loss, TF.margin_ranking_loss, [no_labels, no_labels, no_labels], None),
                (F.triplet_margin_loss, TF.triplet_margin_loss, [empty, empty, empty], None),
                (F.poisson_nll_loss, TF.poisson_nll_loss, [empty, empty], None),
                (F.gaussian_nll_loss, TF.gaussian_nll_loss, [empty, empty, empty], None)]:
            check(torch, lambda *a: ours(*a, reduction=reduction), lambda *a: theirs(*a, reduction=reduction),
                  arrays, grads)
        check(torch, lambda p, q: F.cosine_embedding_loss(p, q, nl.tensor(no_labels), reduction=reduction),
              lambda p, q: TF.cosine_embedding_loss(p, q, torch.tensor(no_labels), reduction=reduction), [empty, empty])
    labels = (SIGNS > 0).astype(np.float64)
    for size_average, reduce in LEGACY:
        legacy = dict(size_average=size_average, reduce=reduce)
        for ours, theirs, arrays, grads in [
                (F.soft_margin_loss, TF.soft_margin_loss, [X, SIGNS], [0]),
                (F.multilabel_soft_margin_loss, TF.multilabel_soft_margin_loss, [X, labels], None),
                (F.hinge_embedding_loss, TF.hinge_embedding_loss, [np.abs(X), SIGNS], [0]),
                (F.margin_ranking_loss, TF.margin_ranking_loss, [X, Y, SIGNS], None),
                (F.triplet_margin_loss, TF.triplet_margin_loss, [X, Y, Z], None),
                (F.poisson_nll_loss, TF.poisson_nll_loss, [X, COUNTS], None)]:
            check(torch, lambda *a: ours(*a, **legacy), lambda *a: theirs(*a, **legacy), arrays, grads)
        check(torch, lambda a: F.multi_margin_loss(a, nl.tensor(MULTI_T), **legacy),
              lambda a: TF.multi_margin_loss(a, torch.tensor(MULTI_T), **legacy), [MULTI_X])
        check(torch, lambda p, q: F.cosine_embedding_loss(p, q, nl.tensor(SIGNS[:, 0]), **legacy),
              lambda p, q: TF.cosine_embedding_loss(p, q, torch.tensor(SIGNS[:, 0]), **legacy), [X, Y])


def test_margin_losses_derivatives():
    x, y, z, labels = leaves(X[:3], Y[:3], Z[:3], (SIGNS[:3] > 0).astype(np.float64))
    d = nl.tensor(np.abs(X[:3]) + 0.05, requires_grad=True)   # distances, none at the kink margin - x = 0
    signs = nl.tensor(SIGNS[:3])
    cases = [(lambda a, b: F.margin_ranking_loss(a, b, signs, 0.1), [x, y]),
             (lambda a: F.hinge_embedding_loss(a, signs, 1.3), [d]),
             (lambda a: F.soft_margin_loss(a, signs), [x]),
             (lambda a, b: F.multilabel_soft_margin_loss(a, b, nl.tensor(CLASS_WEIGHT)), [x, labels]),
             (lambda a, b: F.cosine_embedding_loss(a, b, nl.tensor([1.0, -1.0, 1.0]), -0.9), [x, y]),
             (lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=5.0), [x, y, z]),
             (lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=5.0, p=3, swap=True), [x, y, z])]
    for fn, inputs in cases:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


def test_margin_losses_shape_errors():
    x, y = nl.tensor(X), nl.tensor(Y)
    with pytest.raises(ValueError, match=r"margin_ranking_loss: input1, input2 and target must have the same number "
                                         r"of dims, got shapes \(6, 4\), \(4,\) and \(6, 4\)"):
        F.margin_ranking_loss(x, y[0], nl.tensor(SIGNS))
    with pytest.raises(ValueError, match=r"margin_ranking_loss: shapes must broadcast together, got input1 \(6, 4\), "
                                         r"input2 \(6, 4\), target \(6, 2\)"):
        F.margin_ranking_loss(x, y, nl.tensor(SIGNS[:, :2]))
    with pytest.raises(ValueError, match=r"hinge_embedding_loss: shapes must broadcast together, got input \(6, 4\), "
                                         r"target \(6, 2\)"):
        F.hinge_embedding_loss(x, nl.tensor(SIGNS[:, :2]))
    with pytest.raises(ValueError, match=r"soft_margin_loss: target of shape \(2, 6, 4\) must broadcast to the "
                                         r"input's shape \(6, 4\)"):
        F.soft_margin_loss(x, nl.tensor(np.stack([SIGNS, SIGNS])))
    with pytest.raises(ValueError, match=r"multilabel_soft_margin_loss: shapes must broadcast together, got input "
                                         r"\(6, 4\), target \(6, 4\), weight \(3,\)"):
        F.multilabel_soft_margin_loss(x, y, weight=nl.ones(3, dtype=nl.float64))
    with pytest.raises(ValueError, match=r"cosine_embedding_loss: target must be 1-D \(N,\) or 0-d, "
                                         r"got shape \(6, 4\)"):
        F.cosine_embedding_loss(x, y, nl.tensor(SIGNS))
    with pytest.raises(ValueError, match=r"cosine_embedding_loss: a 1-D target needs 2-D inputs, got shapes \(4,\) "
                                         r"and \(6, 4\)"):
        F.cosine_embedding_loss(x[0], y, nl.tensor(SIGNS[:, 0]))
    with pytest.raises(ValueError, match=r"triplet_margin_loss: anchor, positive and negative must have the same "
                                         r"number of dims, got shapes \(6, 4\), \(4,\) and \(6, 4\)"):
        F.triplet_margin_loss(x, y[0], x)
    with pytest.raises(ValueError, match="triplet_margin_loss: margin must be greater than 0, got 0"):
        F.triplet_margin_loss(x, y, x, margin=0)
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input has shape \(6, 4\) but target has shape "
                                         r"\(4,\)"):
        F.binary_cross_entropy(nl.tensor(PROBS), nl.tensor(PROBS[0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: weight of shape \(6,\) must broadcast to the "
                                         r"input's shape \(6, 4\)"):
        F.binary_cross_entropy(nl.tensor(PROBS), nl.tensor(PROBS), nl.ones(6, dtype=nl.float64))
    with pytest.raises(ValueError, match=r"poisson_nll_loss: shapes must broadcast together, got input \(6, 4\), "
                                         r"target \(3,\)"):
        F.poisson_nll_loss(x, nl.ones(3, dtype=nl.float64))
    with pytest.raises(ValueError, match=r"gaussian_nll_loss: shapes must broadcast together, got input \(6, 4\), "
                                         r"target \(3,\)"):
        F.gaussian_nll_loss(x, nl.ones(3, dtype=nl.float64), 1.0)


ALL_LOSSES = {
    "binary_cross_entropy": lambda r: F.binary_cross_entropy(nl.tensor(PROBS), nl.tensor(PROBS), reduction=r),
    "poisson_nll_loss": lambda r: F.poisson_nll_loss(nl.tensor(X), nl.tensor(COUNTS), reduction=r),
    "gaussian_nll_loss": lambda r: F.gaussian_nll_loss(nl.tensor(X), nl.tensor(Y), nl.tensor(PROBS), reduction=r),
    "margin_ranking_loss": lambda r: F.margin_ranking_loss(nl.tensor(X), nl.tensor(Y), nl.tensor(SIGNS), reduction=r),
    "hinge_embedding_loss": lambda r: F.hinge_embedding_loss(nl.tensor(X), nl.tensor(SIGNS), reduction=r),
    "soft_margin_loss": lambda r: F.soft_margin_loss(nl.tensor(X), nl.tensor(SIGNS), reduction=r),
    "multilabel_soft_margin_loss": lambda r: F.multilabel_soft_margin_loss(nl.tensor(X), nl.tensor(PROBS),
                                                                           reduction=r),
    "multi_margin_loss": lambda r: F.multi_margin_loss(nl.tensor(X), nl.tensor(MULTI_T[:N]), reduction=r),
    "cosine_embedding_loss": lambda r: F.cosine_embedding_loss(nl.tensor(X), nl.tensor(Y), nl.tensor(SIGNS[:, 0]),
                                                               reduction=r),
    "triplet_margin_loss": lambda r: F.triplet_margin_loss(nl.tensor(X), nl.tensor(Y), nl.tensor(Z), reduction=r),
}


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_unknown_reduction_is_refused_by_name(name):
    with pytest.raises(ValueError, match=name + r": reduction must be one of \('none', 'mean', 'sum'\), got 'avg'"):
        ALL_LOSSES[name]("avg")


# ------------------------------------------------------------------- distances ---

@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, math.inf])
@pytest.mark.parametrize("dim", [1, 0, -1])
def test_normalize_matches_torch(p, dim):
    torch = torch_or_skip()
    TF = torch.nn.functional
    x = X.copy()
    x[2] = 0.0                   # a zero vector (and a zero column): divided by eps, stays zero
    x[:, 3] = 0.0
    for eps in (1e-12, 0.5):
        check(torch, lambda a: F.normalize(a, p, dim, eps), lambda a: TF.normalize(a, p, dim, eps), [x])
    check(torch, lambda a: F.normalize(a, p, 0), lambda a: TF.normalize(a, p, 0), [X[0]])


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_cosine_similarity_matches_torch(dim):
    torch = torch_or_skip()
    TF = torch.nn.functional
    a, b = X.copy(), Y.copy()
    a[:, 1] = 0.0
    a[1] = 0.0                   # a zero vector: cosine 0
    a[2] = 1e-10 * Y[2]          # shorter than eps: its norm is raised to eps in value only
    b[3] = 3e-9 * X[3]
    for eps in (1e-8, 0.1):
        check(torch, lambda u, v: F.cosine_similarity(u, v, dim, eps),
              lambda u, v: TF.cosine_similarity(u, v, dim, eps), [a, b])
    for u, v in [(X[0], Y), (np.stack([X, Y])[:, :, None, :], Z[None, :, :])]:   # broadcast, dim counted in the result
        check(torch, lambda s, t: F.cosine_similarity(s, t, dim=-1), lambda s, t: TF.cosine_similarity(s, t, dim=-1),
              [u, v])


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, math.inf, 0.0, -1.0, -math.inf])
@pytest.mark.parametrize("keepdim", [False, True])
def test_pairwise_distance_matches_torch(p, keepdim):
    torch = torch_or_skip()
    TF = torch.nn.functional
    b = Y.copy()
    b[0] = X[0]                  # identical vectors: eps keeps the gradient finite
    for u, v in [(X, b), (X[0], b), (X, b[:1]), (X[0], b[1]), (np.stack([X, Y]), Z)]:
        for eps in (1e-6, 0.25):
            check(torch, lambda s, t: F.pairwise_distance(s, t, p, eps, keepdim),
                  lambda s, t: TF.pairwise_distance(s, t, p, eps, keepdim), [u, v])


def test_distances_on_empty_and_scalar_inputs():
    torch = torch_or_skip()
    TF = torch.nn.functional
    for shape in [(0, C), (3, 0)]:
        e = np.zeros(shape)
        check(torch, lambda u, v: F.pairwise_distance(u, v), lambda u, v: TF.pairwise_distance(u, v), [e, e])
        check(torch, lambda u: F.normalize(u), lambda u: TF.normalize(u), [e])
        check(torch, lambda u, v: F.cosine_similarity(u, v), lambda u, v: TF.cosine_similarity(u, v), [e, e])
    check(torch, lambda u, v: F.pairwise_distance(u, v), lambda u, v: TF.pairwise_distance(u, v),
          [np.array(1.5), np.array(-2.0)])


def test_distance_derivatives():
    x, y = leaves(X[:3], Y[:3])
    cases = [(lambda a: F.normalize(a), [x]), (lambda a: F.normalize(a, p=3.0, dim=0), [x]),
             (lambda a, b: F.cosine_similarity(a, b), [x, y]), (lambda a, b: F.cosine_similarity(a, b, dim=0), [x, y]),
             (lambda a, b: F.pairwise_distance(a, b), [x, y]),
             (lambda a, b: F.pairwise_distance(a, b, p=3.0, keepdim=True), [x, y]),
             (lambda a, b: F.pairwise_distance(a, b, p=1.0), [x, y])]
    for fn, inputs in cases:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


def test_distance_errors():
    with pytest.raises(ValueError, match=r"cosine_similarity: shapes must broadcast together, got x1 \(6, 4\), "
                                         r"x2 \(3,\)"):
        F.cosine_similarity(nl.tensor(X), nl.tensor(X[0, :3]))
    with pytest.raises(ValueError, match=r"pairwise_distance: shapes must broadcast together, got x1 \(6, 4\), "
                                         r"x2 \(5, 4\)"):
        F.pairwise_distance(nl.tensor(X), nl.tensor(X[:5]))
    with pytest.raises(IndexError, match="normalize: dim 2 is out of range for a tensor with 2 dims"):
        F.normalize(nl.tensor(X), dim=2)


DISTANCE_DIMS = [(F.cosine_similarity, [1.0, 2.0], 1), (F.cosine_similarity, [1.0, 2.0], -2),
                 (F.cosine_similarity, 3.0, 1), (F.normalize, [1.0, 2.0], 1), (F.normalize, 3.0, -2)]


def _operands(fn, lib, x):
    """The tensor arguments of ``fn`` made of ``x``: two for cosine_similarity, one for normalize."""
    return [lib.tensor(x)] * (2 if fn is F.cosine_similarity else 1)


@pytest.mark.parametrize("fn,x,dim", DISTANCE_DIMS)
def test_a_dim_out_of_range_names_the_operation(fn, x, dim):
    ndim = np.ndim(x)
    with pytest.raises(IndexError, match=rf"{fn.__name__}: dim {dim} is out of range for a tensor with {ndim} dims "
                                         r"\(expected a dim in \[-1, 0\]\)"):
        fn(*_operands(fn, nl, x), dim=dim)
    with pytest.raises(TypeError, match=rf"{fn.__name__}: dim must be an int, got float"):
        fn(*_operands(fn, nl, x), dim=0.0)
    # a 0-dim input takes dims 0 and -1, as if it had one dim (PyTorch's rule)
    assert fn(*_operands(fn, nl, 3.0), dim=-1).item() == 1.0


@pytest.mark.parametrize("fn,x,dim", DISTANCE_DIMS)
def test_a_dim_out_of_range_is_an_index_error_in_torch_too(fn, x, dim):
    torch = torch_or_skip()
    with pytest.raises(IndexError, match="Dimension out of range"):
        getattr(torch.nn.functional, fn.__name__)(*_operands(fn, torch, x), dim=dim)


def test_float32_in_float32_out():
    x, y = nl.tensor(X, dtype=nl.float32), nl.tensor(Y, dtype=nl.float32)
    p = nl.tensor(PROBS, dtype=nl.float32)
    signs = nl.tensor(SIGNS.astype(np.int64))    # integer labels take the input's dtype
    outputs = [F.binary_cross_entropy(p, p), F.poisson_nll_loss(x, nl.tensor(COUNTS.astype(np.int64))),
               F.gaussian_nll_loss(x, y, p), F.gaussian_nll_loss(x, y, 0.5), F.margin_ranking_loss(x, y, signs),
               F.hinge_embedding_loss(x, signs), F.soft_margin_loss(x, signs),
               F.multilabel_soft_margin_loss(x, nl.tensor((SIGNS > 0).astype(np.int64))),
               F.multi_margin_loss(x, nl.tensor(MULTI_T[:N]), weight=nl.ones(C)),
               F.cosine_embedding_loss(x, y, nl.tensor(SIGNS[:, 0].astype(np.int64))), F.triplet_margin_loss(x, y, x),
               F.normalize(x), F.cosine_similarity(x, y), F.pairwise_distance(x, y)]
    assert [o.dtype for o in outputs] == [np.float32] * len(outputs)


# ---------------------------------------------------------------------- modules ---

MODULES = ["BCELoss", "PoissonNLLLoss", "GaussianNLLLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
           "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "CosineEmbeddingLoss",
           "TripletMarginLoss", "CosineSimilarity", "PairwiseDistance"]


@pytest.mark.parametrize("name", MODULES)
def test_module_constructor_arguments_are_torch(name):
    torch = torch_or_skip()

    def params(cls):
        return [(k, v.default, v.kind) for k, v in inspect.signature(cls.__init__).parameters.items()]
    assert params(getattr(nl.nn, name)) == params(getattr(torch.nn, name))


def test_modules_match_torch_and_keep_weights_as_buffers():
    torch = torch_or_skip()
    w = rng.uniform(0.5, 2.0, C)
    labels = (SIGNS > 0).astype(np.float64)
    cases = [
        (nl.nn.BCELoss(weight=nl.tensor(w), reduction="sum"), torch.nn.BCELoss(torch.tensor(w), reduction="sum"),
         [PROBS, SOFT_TARGETS]),
        (nl.nn.PoissonNLLLoss(log_input=False, full=True), torch.nn.PoissonNLLLoss(log_input=False, full=True),
         [RATES, COUNTS + 1]),
        (nl.nn.GaussianNLLLoss(full=True, eps=1e-3), torch.nn.GaussianNLLLoss(full=True, eps=1e-3), [X, Y, VARIANCES]),
        (nl.nn.MarginRankingLoss(margin=0.2), torch.nn.MarginRankingLoss(margin=0.2), [X, Y, SIGNS]),
        (nl.nn.HingeEmbeddingLoss(margin=0.5, reduction="none"),
         torch.nn.HingeEmbeddingLoss(margin=0.5, reduction="none"), [np.abs(X), SIGNS]),
        (nl.nn.SoftMarginLoss(size_average=False), torch.nn.SoftMarginLoss(size_average=False), [X, SIGNS]),
        (nl.nn.MultiLabelSoftMarginLoss(nl.tensor(w)), torch.nn.MultiLabelSoftMarginLoss(torch.tensor(w)), [X, labels]),
        (nl.nn.MultiMarginLoss(p=2, margin=0.7, weight=nl.tensor(w)),
         torch.nn.MultiMarginLoss(p=2, margin=0.7, weight=torch.tensor(w)), [MULTI_X, MULTI_T]),
        (nl.nn.CosineEmbeddingLoss(margin=0.1), torch.nn.CosineEmbeddingLoss(margin=0.1), [X, Y, SIGNS[:, 0]]),
        (nl.nn.TripletMarginLoss(margin=2.0, p=1.0, swap=True),
         torch.nn.TripletMarginLoss(margin=2.0, p=1.0, swap=True), [X, Y, Z]),
        (nl.nn.CosineSimilarity(dim=0, eps=1e-3), torch.nn.CosineSimilarity(dim=0, eps=1e-3), [X, Y]),
        (nl.nn.PairwiseDistance(p=3.0, keepdim=True), torch.nn.PairwiseDistance(p=3.0, keepdim=True), [X, Y]),
    ]
    for ours, theirs, arrays in cases:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert list(ours.parameters()) == []
        if isinstance(ours, nl.nn.MultiMarginLoss):
            check(torch, lambda x: ours(x, nl.tensor(MULTI_T)), lambda x: theirs(x, torch.tensor(MULTI_T)), [MULTI_X])
        else:   # +-1 labels only select terms: no gradient for them
            labelled = (nl.nn.HingeEmbeddingLoss, nl.nn.SoftMarginLoss, nl.nn.CosineEmbeddingLoss)
            check(torch, ours, theirs, arrays, grads=range(len(arrays) - isinstance(ours, labelled)))
    assert nl.nn.BCELoss(weight=nl.tensor(w)).weight.shape == (C,)


def test_module_reprs_show_their_options():
    assert repr(nl.nn.BCELoss()) == "BCELoss(reduction='mean')"
    assert repr(nl.nn.MarginRankingLoss(0.5)) == "MarginRankingLoss(margin=0.5, reduction='mean')"
    assert repr(nl.nn.TripletMarginLoss(swap=True, reduction="sum")) == \
        "TripletMarginLoss(margin=1.0, p=2.0, eps=1e-06, swap=True, reduction='sum')"
    assert repr(nl.nn.PoissonNLLLoss(log_input=False)) == \
        "PoissonNLLLoss(log_input=False, full=False, eps=1e-08, reduction='mean')"
    assert repr(nl.nn.GaussianNLLLoss()) == "GaussianNLLLoss(full=False, eps=1e-06, reduction='mean')"
    assert repr(nl.nn.MultiMarginLoss()) == "MultiMarginLoss(p=1, margin=1.0, reduction='mean')"
    assert repr(nl.nn.CosineSimilarity()) == "CosineSimilarity(dim=1, eps=1e-08)"
    assert repr(nl.nn.PairwiseDistance()) == "PairwiseDistance(p=2.0, eps=1e-06, keepdim=False)"
    assert repr(nl.nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"   # the older losses are unchanged
    assert nl.nn.HingeEmbeddingLoss(1.0, None, False).reduction == "none"   # PyTorch's positional legacy pair
    with pytest.raises(ValueError, match="SoftMarginLoss: reduction must be one of"):
        nl.nn.SoftMarginLoss(reduction="batchmean")
    with pytest.raises(TypeError, match="BCELoss: weight must be a Tensor or None, got list"):
        nl.nn.BCELoss(weight=[1.0, 2.0])


def test_infinity_norms_of_an_empty_batch_are_empty_as_in_pytorch():
    torch = torch_or_skip()
    empty, tempty = nl.zeros(0, 4), torch.zeros(0, 4)
    for p in (float("inf"), float("-inf")):
        assert F.pairwise_distance(empty, empty, p=p).shape == tuple(
            torch.nn.functional.pairwise_distance(tempty, tempty, p=p).shape)
        assert F.normalize(empty, p=p).shape == (0, 4)
    assert F.triplet_margin_loss(empty, empty, empty, p=float("-inf"), reduction="sum").item() == 0.0
    x = nl.zeros(0, 4, requires_grad=True)
    nl.amax(x, 1).sum().backward()
    assert x.grad.shape == (0, 4)
    with pytest.raises(RuntimeError, match=r"amax\(\): cannot reduce over an empty dim of a tensor of shape \(0, 4\)"):
        nl.amax(empty, 0)
