"""N micro-batches of gradient accumulation give the gradient (and the step) of one big batch."""
import numpy as np
import pytest

import nnlite as nl
from nnlite.nn import Parameter


def _model(seed=0):
    rng = np.random.default_rng(seed)
    w1 = Parameter(rng.standard_normal((6, 4)) * 0.5, kind="weight")
    b1 = Parameter(np.zeros(6), kind="bias")
    w2 = Parameter(rng.standard_normal((1, 6)) * 0.5, kind="weight")
    return [w1, b1, w2]


def _loss(params, x, y):
    w1, b1, w2 = params
    hidden = nl.tanh(x @ w1.T + b1)
    return (((hidden @ w2.T).reshape(-1) - y) ** 2).mean()


def _data(n=24):
    rng = np.random.default_rng(1)
    return nl.tensor(rng.standard_normal((n, 4))), nl.tensor(rng.standard_normal(n))


@pytest.mark.parametrize("micro_batches", [2, 3, 8])
@pytest.mark.parametrize("set_to_none", [True, False])
def test_micro_batches_give_the_large_batch_gradient(micro_batches, set_to_none):
    x, y = _data()
    big = _model()
    _loss(big, x, y).backward()

    params = _model()
    opt = nl.optim.Adam(params, lr=0.01)
    [buf] = opt._arenas[0]
    for _ in range(2):   # twice: the second round must not see the first round's gradients
        opt.zero_grad(set_to_none=set_to_none)
        for xs, ys in zip(nl.chunk(x, micro_batches), nl.chunk(y, micro_batches)):
            (_loss(params, xs, ys) / micro_batches).backward()
        for p, q in zip(params, big):
            np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-12, atol=1e-15)
            assert np.shares_memory(p.grad.data, buf.grads)


def test_accumulated_step_equals_large_batch_step():
    x, y = _data()
    results = []
    for micro_batches in (1, 4):
        params = _model()
        opt = nl.optim.SGD(params, lr=0.1, momentum=0.9)
        for _ in range(5):
            opt.zero_grad()
            for xs, ys in zip(nl.chunk(x, micro_batches), nl.chunk(y, micro_batches)):
                (_loss(params, xs, ys) / micro_batches).backward()
            opt.step()
        results.append([p.data.copy() for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
