"""Loss functions and modules against PyTorch; cross-entropy's first and second derivatives."""
import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.autograd import gradcheck, gradgradcheck

F = nl.nn.functional
REDUCTIONS = ["mean", "sum", "none"]
rng = np.random.default_rng(0)
X = rng.standard_normal((6, 4)) * 2
T = np.array([0, 3, 1, -100, 2, 2])
W = rng.random(4) + 0.5
Y = rng.standard_normal((6, 4))
P = rng.random((6, 4))
P[0, 0] = 0.0


def both(ours, theirs, arrays, rtol=1e-10, atol=1e-12):
    """Compare values and the gradients of every array argument in float64."""
    torch = pytest.importorskip("torch")
    xn = [nl.tensor(a, requires_grad=True) for a in arrays]
    xt = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, yt = ours(*xn), theirs(*xt)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(nl.tensor(g))
    yt.backward(torch.tensor(g))
    for a, b in zip(xn, xt):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_class_indices(reduction, smoothing, weighted):
    torch = pytest.importorskip("torch")
    w, wt = (nl.tensor(W), torch.tensor(W)) if weighted else (None, None)
    both(lambda x: F.cross_entropy(x, nl.tensor(T), w, reduction=reduction, label_smoothing=smoothing),
         lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(T), wt, reduction=reduction,
                                                     label_smoothing=smoothing), [X])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_spatial_unbatched_and_probabilities(reduction):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x3, t3 = rng.standard_normal((3, 4, 5)), rng.integers(0, 4, (3, 5))
    both(lambda x: F.cross_entropy(x, nl.tensor(t3), reduction=reduction, ignore_index=1),
         lambda x: TF.cross_entropy(x, torch.tensor(t3), reduction=reduction, ignore_index=1), [x3])
    both(lambda x: F.cross_entropy(x, nl.tensor(np.array(2)), reduction=reduction),
         lambda x: TF.cross_entropy(x, torch.tensor(2), reduction=reduction), [X[0]])
    probs = P / P.sum(1, keepdims=True)
    both(lambda x, p: F.cross_entropy(x, p, nl.tensor(W), reduction=reduction, label_smoothing=0.1),
         lambda x, p: TF.cross_entropy(x, p, torch.tensor(W), reduction=reduction, label_smoothing=0.1), [X, probs])


def test_cross_entropy_first_and_second_derivatives():
    x = nl.tensor(X, requires_grad=True)
    for reduction in ("mean", "none", "sum"):
        fn = lambda x: F.cross_entropy(x, nl.tensor(T), nl.tensor(W), reduction=reduction,  # noqa: E731
                                       label_smoothing=0.2)
        assert gradcheck(fn, [x])
        assert gradgradcheck(fn, [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_and_regression_losses(reduction):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    both(lambda x: F.nll_loss(F.log_softmax(x, 1), nl.tensor(T), nl.tensor(W), reduction=reduction),
         lambda x: TF.nll_loss(TF.log_softmax(x, 1), torch.tensor(T), torch.tensor(W), reduction=reduction), [X])
    both(lambda a, b: F.mse_loss(a, b, reduction=reduction),
         lambda a, b: TF.mse_loss(a, b, reduction=reduction), [X, Y])
    both(lambda a, b: F.l1_loss(a, b, reduction=reduction), lambda a, b: TF.l1_loss(a, b, reduction=reduction), [X, Y])
    both(lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=0.7),
         lambda a, b: TF.huber_loss(a, b, reduction=reduction, delta=0.7), [X, Y])
    for beta in (0.0, 0.5):
        both(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
             lambda a, b: TF.smooth_l1_loss(a, b, reduction=reduction, beta=beta), [X, Y])


@pytest.mark.filterwarnings("ignore:reduction")
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
def test_probability_losses(reduction):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    # A zero target contributes 0 (0 log 0 = 0); torch's gradient there is nan, so only x gets one.
    both(lambda x: F.kl_div(x, nl.tensor(P), reduction=reduction),
         lambda x: TF.kl_div(x, torch.tensor(P), reduction=reduction),
         [X])
    both(lambda x, p: F.kl_div(x, p, reduction=reduction),
         lambda x, p: TF.kl_div(x, p, reduction=reduction), [X, P + 0.1])
    both(lambda x, p: F.kl_div(x, p, reduction=reduction, log_target=True),
         lambda x, p: TF.kl_div(x, p, reduction=reduction, log_target=True), [X, Y])
    if reduction == "batchmean":
        return
    pos = rng.random(4) + 0.5
    both(lambda x, p: F.binary_cross_entropy_with_logits(x * 20, p, nl.tensor(W), reduction=reduction,
                                                            pos_weight=nl.tensor(pos)),
         lambda x, p: TF.binary_cross_entropy_with_logits(x * 20, p, torch.tensor(W), reduction=reduction,
                                                          pos_weight=torch.tensor(pos)), [X, P])
    both(lambda x, p: F.binary_cross_entropy_with_logits(x, p, reduction=reduction),
         lambda x, p: TF.binary_cross_entropy_with_logits(x, p, reduction=reduction), [X, P])


def test_composite_losses_second_derivatives():
    x, y = nl.tensor(X[:3], requires_grad=True), nl.tensor(Y[:3], requires_grad=True)
    p = nl.tensor(P[:3])
    for fn, inputs in [(lambda a, b: F.mse_loss(a, b), [x, y]), (lambda a, b: F.huber_loss(a, b, delta=0.5), [x, y]),
                       (lambda a: F.binary_cross_entropy_with_logits(a, p), [x]),
                       (lambda a: F.kl_div(F.log_softmax(a, 1), p, reduction="batchmean"), [x]),
                       (lambda a, b: F.smooth_l1_loss(a, b, beta=0.8), [x, y]),
                       (lambda a: F.nll_loss(F.log_softmax(a, 1), nl.tensor(T[:3]), nl.tensor(W)), [x]),
                       (lambda a: F.cross_entropy(a, p / p.sum(1, keepdim=True), label_smoothing=0.1), [x])]:
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


def test_loss_modules_match_torch_and_keep_weights_as_buffers():
    torch = pytest.importorskip("torch")
    cases = [(nl.nn.CrossEntropyLoss(weight=nl.tensor(W), label_smoothing=0.1, ignore_index=3),
              torch.nn.CrossEntropyLoss(weight=torch.tensor(W), label_smoothing=0.1, ignore_index=3), T % 4),
             (nl.nn.NLLLoss(reduction="sum"), torch.nn.NLLLoss(reduction="sum"), T),
             (nl.nn.MSELoss(), torch.nn.MSELoss(), Y),
             (nl.nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), Y),
             (nl.nn.HuberLoss(delta=2.0), torch.nn.HuberLoss(delta=2.0), Y),
             (nl.nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), Y),
             (nl.nn.BCEWithLogitsLoss(pos_weight=nl.tensor(W)),
              torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(W)), P),
             (nl.nn.KLDivLoss(reduction="batchmean", log_target=True),
              torch.nn.KLDivLoss(reduction="batchmean", log_target=True), Y)]
    for ours, theirs, target in cases:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        t_ours = nl.tensor(target)
        t_theirs = torch.tensor(target)
        both(lambda x: ours(x, t_ours), lambda x: theirs(x, t_theirs), [X])
    assert list(nl.nn.CrossEntropyLoss(weight=nl.tensor(W)).buffers())[0].shape == (4,)
    assert list(nl.nn.CrossEntropyLoss(weight=nl.tensor(W)).parameters()) == []


def test_loss_errors():
    with pytest.raises(ValueError, match=r"needs a target of shape \(6,\), got \(5,\)"):
        F.cross_entropy(nl.tensor(X), nl.tensor(T[:5]))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(nl.tensor(X), nl.tensor([0, 1, 2, 3, 4, 9]))
    with pytest.raises(ValueError, match="reduction"):
        nl.nn.MSELoss(reduction="avg")
    assert nl.nn.MSELoss(size_average=False).reduction == "sum"     # PyTorch's legacy arguments
    assert nl.nn.L1Loss(None, False).reduction == "none"
    with pytest.raises(ValueError, match=r"mse_loss: input has shape \(6, 4\) but target has shape \(6, 1\)"):
        F.mse_loss(nl.tensor(X), nl.tensor(Y[:, :1]))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.cross_entropy(nl.tensor(X), nl.tensor(T), weight=nl.ones(3, dtype=nl.float64))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_weights_and_legacy_arguments(reduction):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    w = np.random.default_rng(2).random(X.shape)
    for name in ("mse_loss", "l1_loss", "huber_loss"):
        both(lambda a, b: getattr(F, name)(a, b, reduction=reduction, weight=nl.tensor(w)),
             lambda a, b: getattr(TF, name)(a, b, reduction=reduction, weight=torch.tensor(w)), [X, Y])
    with pytest.raises(ValueError, match="weight must have the input's shape"):
        F.mse_loss(nl.tensor(X), nl.tensor(Y), weight=nl.ones(4, dtype=nl.float64))
    # The deprecated positional pair (size_average, reduce) means what it means in PyTorch.
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        ours = F.mse_loss(nl.tensor(X), nl.tensor(Y), size_average, reduce)
        theirs = TF.mse_loss(torch.tensor(X), torch.tensor(Y), size_average, reduce)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("targets,weight", [([-100, -100], None), ([-100, 1], [1.0, 0.0, 2.0])],
                         ids=["all_ignored", "ignored_and_weight_zero"])
def test_nll_loss_with_no_weight_left_is_nan_and_ignored_targets_get_no_gradient(targets, weight):
    x = nl.tensor([[0.1, 0.2, 0.3], [0.5, -1.0, 2.0]], dtype=nl.float64, requires_grad=True)
    w = None if weight is None else nl.tensor(weight, dtype=nl.float64)
    with np.errstate(all="ignore"):
        loss = F.nll_loss(x, nl.tensor(targets), weight=w)
        loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(x.grad.data[0], [0.0, 0.0, 0.0])   # ignored: nothing flows back
    torch = torch_or_skip()
    xt = torch.tensor(x.data, requires_grad=True)
    torch.nn.functional.nll_loss(xt, torch.tensor(targets), weight=None if weight is None else torch.tensor(weight,
                dtype=torch.float64)).backward()
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())
