"""Losses at the edges of their domains, and their argument checks, as PyTorch has them.

Each case states the expected values or error on its own (so it runs without
PyTorch) and, where PyTorch is installed, compares values and gradients with it
in float64.
"""
import math

import numpy as np
import pytest
from helpers import torch_or_skip

import nnlite as nl
from nnlite.autograd import gradcheck

F = nl.nn.functional


def _grads(fn, arrays, module):
    """Value and gradients of ``sum(fn(*arrays))`` in float64, with nnlite or torch as ``module``."""
    leaves = [module.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.sum().backward()
    value = out.data if module is nl else out.detach().numpy()
    return np.asarray(value), [np.asarray(leaf.grad.data if module is nl else leaf.grad.numpy()) for leaf in leaves]


def _same_as_torch(ours, theirs, arrays):
    torch = torch_or_skip()
    value, grads = _grads(ours, arrays, nl)
    value_t, grads_t = _grads(theirs, arrays, torch)
    np.testing.assert_allclose(value, value_t, rtol=1e-12, atol=1e-12)
    for g, gt in zip(grads, grads_t):
        np.testing.assert_allclose(g, gt, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- kl_div ---

KL_INPUT, KL_TARGET = [-0.5, -1.0, -0.3], [-0.2, 0.5, 0.0]


def test_kl_div_negative_target_is_nan_and_zero_target_is_zero():
    loss, (g_input, g_target) = _grads(lambda x, t: F.kl_div(x, t, reduction="none"), [KL_INPUT, KL_TARGET], nl)
    assert math.isnan(loss[0])
    assert loss[1] == pytest.approx(0.5 * (math.log(0.5) + 1.0))
    assert loss[2] == 0.0
    np.testing.assert_array_equal(g_input, [0.2, -0.5, 0.0])        # d/d input = -target
    assert math.isnan(g_target[0]) and math.isnan(g_target[2])      # log of a negative; 0 / 0
    assert g_target[1] == pytest.approx(math.log(0.5) + 1.0 + 1.0)  # log t + 1 - input


def test_kl_div_target_gradient_by_finite_differences():
    x = nl.tensor([[-0.5, -1.0, -0.3]], dtype=nl.float64, requires_grad=True)
    t = nl.tensor([[0.2, 0.5, 1.3]], dtype=nl.float64, requires_grad=True)
    for reduction in ("none", "sum", "batchmean"):
        assert gradcheck(lambda a, b: F.kl_div(a, b, reduction=reduction), [x, t])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_kl_div_edges_match_torch(reduction):
    torch = torch_or_skip()
    _same_as_torch(lambda x, t: F.kl_div(x, t, reduction=reduction),
                   lambda x, t: torch.nn.functional.kl_div(x, t, reduction=reduction), [KL_INPUT, KL_TARGET])


# ---------------------------------------------------- binary_cross_entropy ---

@pytest.mark.parametrize("input, target, name", [([0.5, 0.5], [2.0, 0.5], "target"),
                                                  ([0.5, 0.5], [-0.1, 0.5], "target"),
                                                  ([0.5, 0.5], [float("nan"), 0.5], "target"),
                                                  ([1.5, 0.5], [2.0, 0.5], "input")])   # input is checked first
def test_binary_cross_entropy_refuses_values_outside_zero_one(input, target, name):
    with pytest.raises(ValueError, match=rf"binary_cross_entropy: {name} must hold probabilities in \[0, 1\].*"
                                         r"got 1 value\(s\) outside"):
        F.binary_cross_entropy(nl.tensor(input), nl.tensor(target))


def test_binary_cross_entropy_refuses_what_torch_refuses():
    torch = torch_or_skip()
    for input, target, name in [([0.5, 0.5], [2.0, 0.5], "target"), ([1.5, 0.5], [2.0, 0.5], "input")]:
        with pytest.raises(RuntimeError, match=f"all elements of {name} should be between 0 and 1"):
            torch.nn.functional.binary_cross_entropy(torch.tensor(input), torch.tensor(target))


def test_binary_cross_entropy_takes_targets_at_the_ends_of_zero_one():
    loss = F.binary_cross_entropy(nl.tensor([0.25, 0.5, 0.75]), nl.tensor([0.0, 1.0, 0.5]), reduction="none")
    np.testing.assert_allclose(loss.data, [-math.log(0.75), -math.log(0.5), -math.log(math.sqrt(0.75 * 0.25))],
                               rtol=1e-6)


# -------------------------------------------------------- poisson_nll_loss ---

POISSON_INPUT, POISSON_TARGET = [0.5, 2.0, 1.5, 3.0, 0.7], [0.0, 3.0, 1.0, 0.5, -0.5]


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_full_adds_stirling_only_above_one(log_input):
    loss, (g_input, g_target) = _grads(lambda x, t: F.poisson_nll_loss(x, t, log_input=log_input, full=True,
                                                                      reduction="none"),
                                       [POISSON_INPUT, POISSON_TARGET], nl)
    x, t = np.array(POISSON_INPUT), np.array(POISSON_TARGET)
    rate_term = np.exp(x) - t * x if log_input else x - t * np.log(x + 1e-8)
    stirling = np.where(t > 1, t * np.log(np.abs(t)) - t + 0.5 * np.log(2 * math.pi * np.abs(t)), 0.0)
    np.testing.assert_allclose(loss, rate_term + stirling, rtol=1e-12)
    # d/dt: the rate term's -input (or -log(input + eps)), plus Stirling's log t + 1 / (2 t) above 1
    slope = -x if log_input else -np.log(x + 1e-8)
    np.testing.assert_allclose(g_target, slope + np.where(t > 1, np.log(np.abs(t)) + 0.5 / np.abs(t), 0.0),
                               rtol=1e-12)
    assert np.isfinite(g_target[0])   # a target of 0: the Stirling term is 0 all around it


def test_poisson_full_gradients_by_finite_differences():
    x = nl.tensor(POISSON_INPUT, dtype=nl.float64, requires_grad=True)
    t = nl.tensor([0.0, 3.0, 1.2, 0.5, -0.5], dtype=nl.float64, requires_grad=True)   # the loss jumps at t = 1
    for log_input in (True, False):
        assert gradcheck(lambda a, b: F.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction="sum"),
                         [x, t])


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_full_matches_torch_except_its_nan_at_targets_up_to_zero(log_input):
    torch = torch_or_skip()
    ours = lambda x, t: F.poisson_nll_loss(x, t, log_input=log_input, full=True, reduction="none")  # noqa: E731
    theirs = lambda x, t: torch.nn.functional.poisson_nll_loss(x, t, log_input=log_input, full=True,  # noqa: E731
                                                               reduction="none")
    _same_as_torch(ours, theirs, [POISSON_INPUT[1:4], POISSON_TARGET[1:4]])
    value, (g_input, g_target) = _grads(ours, [POISSON_INPUT, POISSON_TARGET], nl)
    value_t, (g_input_t, g_target_t) = _grads(theirs, [POISSON_INPUT, POISSON_TARGET], torch)
    np.testing.assert_allclose(value, value_t, rtol=1e-12)
    np.testing.assert_allclose(g_input, g_input_t, rtol=1e-12)
    np.testing.assert_allclose(g_target[1:4], g_target_t[1:4], rtol=1e-12)
    # PyTorch masks a Stirling term it computed at t = 0 and t < 0 too, and its backward meets log'(0) or
    # log of a negative number; the loss there is the rate term alone
    x = np.array(POISSON_INPUT)
    slope = -x if log_input else -np.log(x + 1e-8)
    assert np.isnan(g_target_t[[0, 4]]).all()
    np.testing.assert_allclose(g_target[[0, 4]], slope[[0, 4]], rtol=1e-12)


# ------------------------------------------------------------ ignore_index ---

CLASS_LOGITS, CLASS_TARGET = np.array([[0.2, -1.0, 0.5], [1.5, 0.1, -0.3]]), np.array([0, 2])


@pytest.mark.parametrize("ignore_index, given", [(1.5, "float"), (True, "bool"), (2.0, "float"), (None, "NoneType")])
@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_ignore_index_that_is_not_an_int_is_refused_by_name(op, ignore_index, given):
    with pytest.raises(TypeError, match=f"{op}: ignore_index must be an int, got {given}"):
        getattr(F, op)(nl.tensor(CLASS_LOGITS), nl.tensor(CLASS_TARGET), ignore_index=ignore_index)


@pytest.mark.parametrize("module, op", [("CrossEntropyLoss", "cross_entropy"), ("NLLLoss", "nll_loss")])
def test_loss_modules_refuse_it_when_called_as_torch_does(module, op):
    loss = getattr(nl.nn, module)(ignore_index=1.5)
    with pytest.raises(TypeError, match=f"{op}: ignore_index must be an int, got float"):
        loss(nl.tensor(CLASS_LOGITS), nl.tensor(CLASS_TARGET))
    torch = torch_or_skip()
    with pytest.raises(TypeError, match="ignore_index.*must be int, not float"):
        getattr(torch.nn, module)(ignore_index=1.5)(torch.tensor(CLASS_LOGITS), torch.tensor(CLASS_TARGET))


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_an_integer_ignore_index_of_any_int_type_still_ignores(op):
    fn = getattr(F, op)
    x = nl.tensor(CLASS_LOGITS)
    only_first = fn(x[:1], nl.tensor(CLASS_TARGET[:1]))
    for ignore_index in (2, np.int64(2), np.int32(2)):
        assert fn(x, nl.tensor(CLASS_TARGET), ignore_index=ignore_index).item() == pytest.approx(only_first.item())


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_torch_refuses_a_float_or_bool_ignore_index(op):
    torch = torch_or_skip()
    for ignore_index, given in ((1.5, "float"), (True, "bool")):
        with pytest.raises(TypeError, match=f"must be int, not {given}"):
            getattr(torch.nn.functional, op)(torch.tensor(CLASS_LOGITS), torch.tensor(CLASS_TARGET),
                                             ignore_index=ignore_index)


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
def test_a_target_of_the_wrong_shape_names_the_class_dim_the_input_has(op):
    fn = getattr(F, op)
    with pytest.raises(ValueError, match=rf"{op}: input of shape \(3,\) \(class dim 0\) needs a target of "
                                         r"shape \(\), got \(2,\)"):
        fn(nl.tensor([1.0, 2.0, 3.0]), nl.tensor([1, 2]))
    with pytest.raises(ValueError, match=rf"{op}: input of shape \(2, 3\) \(class dim 1\) needs a target of "
                                         r"shape \(2,\), got \(3,\)"):
        fn(nl.tensor(CLASS_LOGITS), nl.tensor([0, 1, 2]))
