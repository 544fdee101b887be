"""nn.utils.parametrizations.orthogonal: torch's keys, values and gradients for every map,
shape and trivialization; orthogonality kept through training; finite differences; assignment
and bad input."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn
from nnlite.autograd import gradcheck, gradgradcheck
from nnlite.nn.utils import parametrizations
from nnlite.nn.utils.parametrizations import orthogonal

from helpers import torch_or_skip

MAPS = ["matrix_exp", "cayley", "householder"]
SHAPES = [(6, 6), (4, 7), (7, 4)]


def _gram_error(w):
    """How far the columns (tall or square) or rows (wide) of ``w`` are from orthonormal."""
    w = np.asarray(w, dtype=np.float64)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    return np.abs(gram - np.eye(min(w.shape))).max()


def _move_below_diagonal(layer, rng, scale=0.3):
    """Change the unconstrained matrix below its diagonal (Householder reads the diagonal's
    integer part as column signs, which a change there could flip or zero)."""
    x = layer.parametrizations.weight.original
    n, k = x.shape
    with nl.no_grad():
        x.data[...] += scale * rng.standard_normal((n, k)) * np.tri(n, k, -1)


@pytest.mark.parametrize("trivialization", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("orthogonal_map", MAPS)
def test_matches_torch(orthogonal_map, shape, trivialization):
    torch = torch_or_skip()
    from torch.nn.utils.parametrizations import orthogonal as torch_orthogonal
    rng = np.random.default_rng(1)
    ours = nn.Linear(shape[1], shape[0]).double()
    theirs = torch.nn.Linear(shape[1], shape[0]).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    torch_orthogonal(theirs, orthogonal_map=orthogonal_map, use_trivialization=trivialization)
    orthogonal(ours, orthogonal_map=orthogonal_map, use_trivialization=trivialization)
    theirs_state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(theirs_state)
    for key, value in ours.state_dict().items():
        if not key.endswith(".base"):   # a tall base is completed with random columns
            np.testing.assert_allclose(value.data, theirs_state[key], rtol=1e-12, atol=1e-12, err_msg=key)
    # the same unconstrained matrix (and base) in both, moved off its start: same weight and gradients
    theirs_state["parametrizations.weight.original"] = theirs_state["parametrizations.weight.original"] + \
        0.3 * rng.standard_normal(shape) * np.tri(*shape, -1)
    ours.load_state_dict({k: nl.tensor(v) for k, v in theirs_state.items()})
    theirs.load_state_dict({k: torch.tensor(v) for k, v in theirs_state.items()})
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12, atol=1e-13)
    x = rng.standard_normal((3, shape[1]))
    g = rng.standard_normal((3, shape[0]))
    ours(nl.tensor(x)).backward(nl.tensor(g))
    theirs(torch.tensor(x)).backward(torch.tensor(g))
    np.testing.assert_allclose(ours.parametrizations.weight.original.grad.data,
                               theirs.parametrizations.weight.original.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert _gram_error(ours.weight.data) < 1e-12


@pytest.mark.parametrize("orthogonal_map", MAPS)
def test_stays_orthogonal_through_training(orthogonal_map):
    nl.manual_seed(0)
    layer = orthogonal(nn.Linear(8, 8), orthogonal_map=orthogonal_map)
    start = _gram_error(layer.weight.data)
    optimizer = nl.optim.Adam(layer.parameters(), lr=0.05)
    x, y = nl.randn(32, 8), nl.randn(32, 8)
    for _ in range(30):
        optimizer.zero_grad()
        loss = ((layer(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
    moved = layer.parametrizations.weight.original.data
    assert np.abs(moved - np.diag(np.diag(moved))).max() > 0.05 or orthogonal_map == "householder"
    assert start < 1e-5 and _gram_error(layer.weight.data) < 1e-5      # float32


def test_a_plain_linear_weight_leaves_the_orthogonal_set_but_the_parametrized_one_does_not():
    nl.manual_seed(0)
    plain = nn.Linear(8, 8)
    nn.init.orthogonal_(plain.weight)
    kept = orthogonal(nn.Linear(8, 8))
    x, y = nl.randn(32, 8), nl.randn(32, 8)
    for layer in (plain, kept):
        optimizer = nl.optim.SGD(layer.parameters(), lr=0.1)
        for _ in range(20):
            optimizer.zero_grad()
            ((layer(x) - y) ** 2).mean().backward()
            optimizer.step()
    assert _gram_error(plain.weight.data) > 1e-2 and _gram_error(kept.weight.data) < 1e-5


def test_an_orthogonal_weight_is_kept_as_it_is():
    layer = nn.Linear(5, 5).double()
    nn.init.orthogonal_(layer.weight)
    before = layer.weight.data.copy()
    orthogonal(layer)
    np.testing.assert_allclose(layer.weight.data, before, atol=1e-14)
    np.testing.assert_allclose(layer.parametrizations.weight[0].base.data, before, atol=1e-14)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("orthogonal_map", MAPS)
def test_gradients_match_finite_differences(orthogonal_map, shape):
    rng = np.random.default_rng(2)
    layer = orthogonal(nn.Linear(shape[1], shape[0]).double(), orthogonal_map=orthogonal_map)
    _move_below_diagonal(layer, rng)
    chain = layer.parametrizations.weight
    x = nl.tensor(chain.original.data.copy(), requires_grad=True)
    if orthogonal_map == "householder":
        # the diagonal's integer part picks signs: a step there across an integer is a jump, not a
        # slope, so only the entries below it (the reflectors) are moved
        below = nl.tensor(np.tri(*shape, -1))
        diagonal = nl.tensor(x.data * (1 - np.tri(*shape, -1)))
        assert gradcheck(lambda t: chain[0](t * below + diagonal), [x])
        return
    assert gradcheck(lambda t: chain[0](t), [x])
    assert gradgradcheck(lambda t: chain[0](t) * chain[0](t), [x], atol=1e-6, rtol=1e-5)


def test_matrix_exp_with_large_norm_and_against_torch():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 6)) * 4
    a = a - a.T                                     # skew: e^A is orthogonal, e^-A its inverse
    q = parametrizations._matrix_exp(nl.tensor(a)).data
    q_inverse = parametrizations._matrix_exp(nl.tensor(-a)).data
    np.testing.assert_allclose(q @ q_inverse, np.eye(6), atol=1e-12)
    assert _gram_error(q) < 1e-12
    torch = torch_or_skip()
    np.testing.assert_allclose(q, torch.linalg.matrix_exp(torch.tensor(a)).numpy(), rtol=1e-11, atol=1e-12)
    b = rng.standard_normal((2, 5, 5)).astype(np.float32)   # batched, float32, not skew
    np.testing.assert_allclose(parametrizations._matrix_exp(nl.tensor(b)).data,
                               torch.linalg.matrix_exp(torch.tensor(b)).numpy(), rtol=2e-5, atol=2e-5)


def test_a_batch_of_matrices():
    torch = torch_or_skip()
    from torch.nn.utils.parametrizations import orthogonal as torch_orthogonal

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(nl.randn(3, 5, 4, dtype=nl.float64))

    nl.manual_seed(0)
    ours = Holder()
    theirs = torch.nn.Module()
    theirs.weight = torch.nn.Parameter(torch.tensor(ours.weight.data))
    orthogonal(ours, orthogonal_map="householder", use_trivialization=False)
    torch_orthogonal(theirs, orthogonal_map="householder", use_trivialization=False)
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), atol=1e-12)
    for w in ours.weight.data:
        assert _gram_error(w) < 1e-12


def test_assignment():
    rng = np.random.default_rng(4)
    q = np.linalg.qr(rng.standard_normal((7, 4)))[0]
    layer = orthogonal(nn.Linear(4, 7).double(), orthogonal_map="householder", use_trivialization=False)
    layer.weight = nl.tensor(q)                      # X then holds q's reflectors
    np.testing.assert_allclose(layer.weight.data, q, atol=1e-13)
    layer = orthogonal(nn.Linear(4, 7).double())     # with a base: q becomes (the first columns of) the base
    layer.weight = nl.tensor(q)
    np.testing.assert_allclose(layer.weight.data, q, atol=1e-13)
    layer = orthogonal(nn.Linear(5, 5).double(), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        layer.weight = nl.tensor(np.eye(5))


def test_bad_input():
    with pytest.raises(ValueError, match="expected a matrix or batch of matrices, got a tensor of 1 dimensions"):
        orthogonal(nn.Linear(3, 3), name="bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder", '
                                         "got 'qr'"):
        orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match="has no parameter or buffer named 'kernel'"):
        orthogonal(nn.Linear(3, 3), name="kernel")
    layer = orthogonal(nn.Linear(3, 4))
    with pytest.raises(ValueError, match=r"of shape \(4, 3\), got a tensor of shape \(3, 4\)"):
        layer.weight = nl.randn(3, 4)


def test_non_finite_values_give_nan_not_a_crash_or_a_quiet_identity():
    a = np.array([[0.0, -np.inf], [np.inf, 0.0]])
    assert np.isnan(parametrizations._matrix_exp(nl.tensor(a)).data).any()
    huge = np.array([[0.0, -1e308, -1e308], [1e308, 0.0, -1e308], [1e308, 1e308, 0.0]])
    parametrizations._matrix_exp(nl.tensor(huge))      # the 1-norm overflows: bounded in logs
    layer = nn.Linear(3, 3).double()
    with nl.no_grad():
        layer.weight.data[...] = np.eye(3)
        layer.weight.data[0, 1] = np.nan
    orthogonal(layer)
    assert np.isnan(layer.weight.data).all()
    layer = orthogonal(nn.Linear(3, 3).double())
    layer.parametrizations.weight.original.data[1, 0] = np.inf
    assert np.isnan(layer.weight.data).any()


def test_a_conv_weight_and_second_derivatives_match_torch():
    torch = torch_or_skip()
    from torch.nn.utils.parametrizations import orthogonal as torch_orthogonal
    nl.manual_seed(0)
    ours = nn.Conv2d(2, 3, (3, 5)).double()
    theirs = torch.nn.Conv2d(2, 3, (3, 5)).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
    orthogonal(ours, orthogonal_map="cayley")
    torch_orthogonal(theirs, orthogonal_map="cayley")
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict({k: nl.tensor(v) for k, v in state.items()})
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), atol=1e-13)
    # second derivative of sum(W^2 * G) in the original, against torch's
    g = np.random.default_rng(5).standard_normal(ours.weight.shape)
    x = ours.parametrizations.weight.original
    (first,) = nl.grad((ours.weight * ours.weight * nl.tensor(g)).sum(), x, create_graph=True)
    (second,) = nl.grad(first.sum(), x)
    xt = theirs.parametrizations.weight.original
    (first_t,) = torch.autograd.grad((theirs.weight ** 2 * torch.tensor(g)).sum(), xt, create_graph=True)
    (second_t,) = torch.autograd.grad(first_t.sum(), xt)
    np.testing.assert_allclose(first.data, first_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(second.data, second_t.numpy(), rtol=1e-9, atol=1e-11)
