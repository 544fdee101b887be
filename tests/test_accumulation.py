"""fit(accumulate_grad_batches=k) takes the step one batch of the whole group would take."""
import numpy as np

import nnlite as nl
from nnlite import nn
from nnlite.data import DataLoader, TensorDataset
from nnlite.nn import functional as F
from nnlite.train import fit


def _data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(np.float64), rng.integers(0, 3, n)


def _trained(batch_size, accumulate, x, y, epochs=1):
    nl.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    opt = nl.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(nl.tensor(x), nl.tensor(y)), batch_size=batch_size)
    history = fit(model, F.cross_entropy, opt, loader, epochs=epochs, accumulate_grad_batches=accumulate,
                  progress=False)
    return model, history


def test_unequal_last_batch_is_weighted_by_its_examples():
    x, y = _data(10)
    one, h1 = _trained(10, 1, x, y)             # one step on all ten examples
    acc, h2 = _trained(4, 3, x, y)              # batches of 4, 4 and 2, one step
    assert h1["steps"] == h2["steps"] == 1
    for (name, a), (_, b) in zip(one.named_parameters(), acc.named_parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12, err_msg=name)


def test_several_groups_per_epoch_and_a_short_last_group():
    x, y = _data(22, seed=1)
    # batches 4,4,4,4,4,2 in groups of 2 -> steps on 8, 8, 6 examples; compare with batches of 8, 8, 6.
    big, h1 = _trained(8, 1, x[:16], y[:16], epochs=1)
    acc, h2 = _trained(4, 2, x, y, epochs=1)
    assert h2["steps"] == 3
    nl.manual_seed(0)
    ref = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    opt = nl.optim.SGD(ref.parameters(), lr=0.5)
    for lo, hi in ((0, 8), (8, 16), (16, 22)):
        opt.zero_grad()
        F.cross_entropy(ref(nl.tensor(x[lo:hi])), nl.tensor(y[lo:hi])).backward()
        opt.step()
    for (name, a), (_, b) in zip(ref.named_parameters(), acc.named_parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12, err_msg=name)
