"""A two-layer MLP written with raw nnlite ops fits a toy regression."""
import numpy as np

import nnlite as nl


def test_two_layer_mlp_fits_a_sine():
    nl.manual_seed(0)
    x = nl.linspace(-3, 3, 128).reshape(-1, 1)
    y = nl.sin(x)
    w1 = nl.tensor(np.random.default_rng(0).normal(0, 1.0, (1, 32)), dtype=nl.float32, requires_grad=True)
    b1 = nl.zeros(32, requires_grad=True)
    w2 = nl.tensor(np.random.default_rng(1).normal(0, 0.2, (32, 1)), dtype=nl.float32, requires_grad=True)
    b2 = nl.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    first_loss = None
    for step in range(1500):
        pred = (x @ w1 + b1).tanh() @ w2 + b2
        loss = ((pred - y) ** 2).mean()
        if first_loss is None:
            first_loss = loss.item()
        for p in params:
            p.grad = None
        loss.backward()
        with nl.no_grad():
            for p in params:
                p.sub_(p.grad * 0.1)
    assert loss.item() < 0.01 < first_loss
