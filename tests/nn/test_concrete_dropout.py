"""Concrete dropout: relaxed masks at rate p, gradients in p, the paper's penalty, and p falling with more data."""
import doctest
import math

import numpy as np
import pytest

import nnlite as nl
from helpers import torch_or_skip
from nnlite.autograd import gradcheck
from nnlite.nn import concrete_dropout

F = nl.nn.functional


def test_doctests_run():
    failures, tried = doctest.testmod(concrete_dropout, verbose=False)
    assert tried >= 3 and failures == 0


def test_parameters_eval_and_errors():
    layer = nl.nn.ConcreteDropout(nl.nn.Linear(5, 3), init_p=0.3)
    kinds = {name: p.kind for name, p in layer.named_parameters()}
    assert kinds == {"p_logit": "regularization", "layer.weight": "weight", "layer.bias": "bias"}
    assert layer.p_logit.init == {"scheme": "constant_", "val": math.log(0.3 / 0.7)}
    x = nl.randn(4, 5)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, layer.layer(x).data)
    with pytest.raises(ValueError, match=r"init_p must be in \(0, 1\), got 1.0"):
        nl.nn.ConcreteDropout(nl.nn.Linear(2, 2), init_p=1.0)
    with pytest.raises(TypeError, match="cannot tell the input size of ReLU"):
        nl.nn.ConcreteDropout(nl.nn.ReLU()).regularization()


def test_masks_drop_at_rate_p():
    nl.manual_seed(0)
    layer = nl.nn.ConcreteDropout(nl.nn.Identity(), init_p=0.25, temperature=0.01)
    out = layer(nl.ones(200, 200)).data
    # a kept element is 1 / (1 - p); a dropped one is 0 (nearly, at this temperature)
    dropped = out < 0.5
    assert abs(dropped.mean() - 0.25) < 0.01
    np.testing.assert_allclose(out[~dropped].mean(), 1 / 0.75, rtol=1e-2)
    np.testing.assert_allclose(out.mean(), 1.0, rtol=2e-2)     # expectation kept


def _seeded(layer, seed=3):
    def fn(x, *params):
        nl.manual_seed(seed)      # the same uniform noise at every evaluation
        return layer(x)
    return fn


def test_gradcheck_in_p_input_and_weight(rng):
    layer = nl.nn.ConcreteDropout(nl.nn.Linear(4, 3).double(), init_p=0.3, temperature=0.5, dtype=nl.float64)
    x = nl.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    assert gradcheck(_seeded(layer), [x, layer.p_logit, layer.layer.weight])
    assert gradcheck(lambda p, w: layer.regularization(), [layer.p_logit, layer.layer.weight])


def test_matches_torch(rng):
    torch = torch_or_skip()
    layer = nl.nn.ConcreteDropout(nl.nn.Linear(4, 3).double(), init_p=0.2, temperature=0.1,
                                  weight_regularizer=1e-2, dropout_regularizer=1e-1, dtype=nl.float64)
    x = rng.standard_normal((6, 4))
    xn = nl.tensor(x, requires_grad=True)
    nl.manual_seed(5)
    u = nl.rand_like(xn).data
    nl.manual_seed(5)
    out = layer(xn)
    total = (out ** 2).sum() + layer.regularization()
    total.backward()

    a = torch.tensor(float(layer.p_logit.data), dtype=torch.float64, requires_grad=True)
    w = torch.tensor(layer.layer.weight.data, requires_grad=True)
    b = torch.tensor(layer.layer.bias.data, requires_grad=True)
    xt, ut = torch.tensor(x, requires_grad=True), torch.tensor(u)
    p = torch.sigmoid(a)
    z = torch.sigmoid((torch.log(p) - torch.log(1 - p) + torch.log(ut + 1e-7) - torch.log(1 - ut + 1e-7)) / 0.1)
    ref = torch.nn.functional.linear(xt * (1 - z) / (1 - p), w, b)
    reg = 1e-2 * (w ** 2).sum() / (1 - p) + 1e-1 * 4 * (p * torch.log(p) + (1 - p) * torch.log(1 - p))
    ref_total = (ref ** 2).sum() + reg
    ref_total.backward()
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(float(total.data), ref_total.item(), rtol=1e-10)
    np.testing.assert_allclose(float(layer.p_logit.grad.data), float(a.grad), rtol=1e-8)
    np.testing.assert_allclose(layer.layer.weight.grad.data, w.grad.numpy(), rtol=1e-8)
    np.testing.assert_allclose(xn.grad.data, xt.grad.numpy(), rtol=1e-8)


def test_learned_rate_falls_with_more_data():
    """Gal et al.'s regularisers scale as 1/N (length-scale 1, precision 10): the same model learns a large p
    from 20 noisy examples and a small one from 2000 (measured: 0.43 and 0.035)."""
    rng = np.random.default_rng(0)
    rates = {}
    for n in (20, 2000):
        x = rng.uniform(-1, 1, (n, 1))
        y = np.sin(3 * x) + 0.3 * rng.standard_normal((n, 1))
        xt, yt = nl.tensor(x, dtype=nl.float32), nl.tensor(y, dtype=nl.float32)
        nl.manual_seed(0)
        dropped = nl.nn.ConcreteDropout(nl.nn.Linear(32, 1), init_p=0.1, weight_regularizer=1.0 / n,
                                        dropout_regularizer=2 / (10 * n))
        first = nl.nn.Linear(1, 32)
        params = [*first.parameters(), *dropped.parameters()]
        opt = nl.optim.Adam(params, lr=0.01)
        for step in range(400):
            batch = rng.integers(0, n, 20)
            opt.zero_grad()
            loss = F.mse_loss(dropped(F.relu(first(xt[batch]))), yt[batch]) + dropped.regularization()
            loss.backward()
            opt.step()
        rates[n] = float(dropped.p.data)
    assert rates[20] > 0.2 and rates[2000] < 0.1, rates


def test_the_wrapped_layer_must_be_a_module():
    from nnlite.nn import ConcreteDropout
    with pytest.raises(TypeError, match="ConcreteDropout: layer must be an nn.Module, got int"):
        ConcreteDropout(42)
    with pytest.raises(ValueError, match="ConcreteDropout: weight_regularizer must be >= 0, got -1e-06"):
        ConcreteDropout(nl.nn.Linear(2, 2), weight_regularizer=-1e-6)
    with pytest.raises(ValueError, match="ConcreteDropout: dropout_regularizer must be >= 0, got nan"):
        ConcreteDropout(nl.nn.Linear(2, 2), dropout_regularizer=float("nan"))
