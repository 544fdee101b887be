"""The losses over operands of two float dtypes: PyTorch's result dtype, values and gradients'
dtypes, and its refusals (a RuntimeError) where it refuses.

PyTorch's losses are not one rule: ``mse_loss`` promotes, ``binary_cross_entropy`` refuses a
target of another dtype, ``binary_cross_entropy_with_logits`` gives the target's dtype (it
builds the loss in place in ``1 - target``), ``soft_margin_loss`` the input's, the class
weights of ``cross_entropy``, ``nll_loss`` and ``multi_margin_loss`` must have the input's
dtype, and ``huber_loss`` refuses two dtypes only when a gradient is wanted. Values agree to
float32's precision: the libraries round different intermediate steps to the float32 operand's dtype.
"""
import itertools

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip

# name: (function name, operands as (shape, kind, requires_grad); None leaves a place empty)
LOSSES = {
    "mse_loss": ("mse_loss", [((3, 4), "x", True), ((3, 4), "x", True)]),
    "l1_loss": ("l1_loss", [((3, 4), "x", True), ((3, 4), "x", True)]),
    "huber_loss": ("huber_loss", [((3, 4), "x", True), ((3, 4), "x", True)]),
    "huber_loss without grad": ("huber_loss", [((3, 4), "x", False), ((3, 4), "x", False)]),
    "smooth_l1_loss": ("smooth_l1_loss", [((3, 4), "x", True), ((3, 4), "x", True)]),
    "bce_with_logits": ("binary_cross_entropy_with_logits", [((3, 4), "x", True), ((3, 4), "p", True)]),
    "bce_with_logits weight": ("binary_cross_entropy_with_logits",
                               [((3, 4), "x", True), ((3, 4), "p", False), ((3, 4), "positive", False)]),
    "bce_with_logits pos_weight": ("binary_cross_entropy_with_logits",
                                   [((3, 4), "x", True), ((3, 4), "p", False), None, ((4,), "positive", False)]),
    "kl_div": ("kl_div", [((3, 4), "x", True), ((3, 4), "p", True)]),
    "binary_cross_entropy": ("binary_cross_entropy", [((3, 4), "p", True), ((3, 4), "p", True)]),
    "binary_cross_entropy weight": ("binary_cross_entropy",
                                    [((3, 4), "p", True), ((3, 4), "p", False), ((3, 4), "positive", False)]),
    "poisson_nll_loss": ("poisson_nll_loss", [((3, 4), "x", True), ((3, 4), "positive", True)]),
    "gaussian_nll_loss": ("gaussian_nll_loss", [((3, 4), "x", True), ((3, 4), "x", True), ((3, 4), "positive", True)]),
    "margin_ranking_loss": ("margin_ranking_loss", [((5,), "x", True), ((5,), "x", True), ((5,), "sign", False)]),
    "hinge_embedding_loss": ("hinge_embedding_loss", [((5,), "x", True), ((5,), "sign", False)]),
    "soft_margin_loss": ("soft_margin_loss", [((5,), "x", True), ((5,), "sign", False)]),
    "multilabel_soft_margin_loss": ("multilabel_soft_margin_loss", [((3, 4), "x", True), ((3, 4), "01", False)]),
    "cosine_embedding_loss": ("cosine_embedding_loss", [((3, 4), "x", True), ((3, 4), "x", True), ((3,), "sign", False)]),
    "triplet_margin_loss": ("triplet_margin_loss", [((3, 4), "x", True), ((3, 4), "x", True), ((3, 4), "x", True)]),
    "cosine_similarity": ("cosine_similarity", [((3, 4), "x", True), ((3, 4), "x", True)]),
    "pairwise_distance": ("pairwise_distance", [((3, 4), "x", True), ((3, 4), "x", True)]),
    "cross_entropy soft": ("cross_entropy", [((3, 4), "x", True), ((3, 4), "p", True)]),
    "cross_entropy weight": ("cross_entropy", [((3, 4), "x", True), ((3,), "class", False), ((4,), "positive", False)]),
    "nll_loss weight": ("nll_loss", [((3, 4), "x", True), ((3,), "class", False), ((4,), "positive", False)]),
    "multi_margin_loss weight": ("multi_margin_loss",
                                 [((3, 4), "x", True), ((3,), "class", False), ((4,), "positive", False)]),
}
DTYPES = {"float32": np.float32, "float64": np.float64}


def _values(seed, shape, kind):
    x = np.random.default_rng(seed).standard_normal(shape)
    return {"x": x, "p": 1 / (1 + np.exp(-x)), "positive": np.abs(x) + 0.1, "sign": np.where(x < 0, -1.0, 1.0),
            "01": (x > 0).astype(float), "class": np.array([0, 2, 3])}[kind]


def _call(lib, name, dtypes):
    """The loss ``name`` from ``lib`` (torch or nnlite) on operands of ``dtypes``: (loss, leaves)."""
    function, specs = LOSSES[name]
    functional = lib.nn.functional
    args, leaves = [], []
    for seed, (spec, dtype) in enumerate(zip(specs, dtypes)):
        if spec is None:
            args.append(None)
            continue
        shape, kind, requires_grad = spec
        values = _values(seed, shape, kind)
        if kind != "class":
            values = values.astype(DTYPES[dtype])
        t = lib.tensor(values, requires_grad=requires_grad)
        args.append(t)
        leaves.append(t if requires_grad else None)
    weights = {}
    if function == "binary_cross_entropy_with_logits" and len(args) == 4:
        weights["pos_weight"] = args.pop()
        args.pop()
    elif len(args) == 3 and function in ("binary_cross_entropy", "binary_cross_entropy_with_logits",
                                         "cross_entropy", "nll_loss", "multi_margin_loss"):
        weights["weight"] = args.pop()
    loss = getattr(functional, function)(*args, **weights)
    if loss.requires_grad:
        loss.sum().backward()
    return loss, leaves


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_of_two_float_dtypes_follow_torch(name):
    torch = torch_or_skip()
    n = len(LOSSES[name][1])
    for dtypes in itertools.product(DTYPES, repeat=n):
        if len(set(dtypes)) == 1:
            continue
        try:
            expected, their_leaves = _call(torch, name, dtypes)
        except RuntimeError:
            with pytest.raises(RuntimeError, match="float32|float64"):
                _call(nl, name, dtypes)
            continue
        given, our_leaves = _call(nl, name, dtypes)
        assert str(given.dtype) == str(expected.dtype).removeprefix("torch."), dtypes
        # to float32's precision: one operand is float32, and some steps are rounded to it in one library only
        np.testing.assert_allclose(given.data, expected.detach().numpy(), rtol=1e-6, err_msg=str(dtypes))
        for ours, theirs in zip(our_leaves, their_leaves):
            if theirs is not None and theirs.grad is not None:
                assert str(ours.grad.dtype) == str(theirs.grad.dtype).removeprefix("torch."), dtypes


def test_bce_with_logits_refuses_an_integer_target_as_torch():
    torch = torch_or_skip()
    message = "result type Float can't be cast to the desired output type Long"
    with pytest.raises(RuntimeError, match=message):
        torch.nn.functional.binary_cross_entropy_with_logits(torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=message):
        nl.nn.functional.binary_cross_entropy_with_logits(nl.zeros(2), nl.tensor([0, 1]))
