"""``nnlite train digits-tune``: successive halving against random search at the same budget."""
import math

import numpy as np

from .search import random_search, successive_halving
from .space import loguniform

__all__ = ["run"]


def _digits_search_problem(seed):
    """The digits training split cut into train (1000) and validation (438) examples; the test split kept apart."""
    from .. import nn, optim
    from ..autograd import no_grad
    from ..data import DataLoader, Digits
    from ..nn import functional as F
    from ..random import manual_seed
    from ..train import accuracy

    x, y = next(iter(DataLoader(Digits(train=True), batch_size=2000)))
    test_x, test_y = next(iter(DataLoader(Digits(train=False), batch_size=2000)))
    train_x, train_y, val_x, val_y = x[:1000], y[:1000], x[1000:], y[1000:]

    def train(config, epochs, with_test_accuracy=False):
        manual_seed(seed)
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        opt = optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9, weight_decay=config["weight_decay"])
        order = np.random.default_rng(seed)
        for _ in range(int(epochs)):
            perm = order.permutation(len(train_y))
            for i in range(0, len(perm), 100):
                opt.zero_grad()
                F.cross_entropy(model(train_x[perm[i:i + 100]]), train_y[perm[i:i + 100]]).backward()
                opt.step()
        with no_grad():
            val_loss = float(F.cross_entropy(model(val_x), val_y).data)
        scores = {"val_loss": val_loss if math.isfinite(val_loss) else 10.0}
        if with_test_accuracy:   # only the chosen configuration is tested, once, after the search
            scores["test_accuracy"] = accuracy(model, test_x, test_y)
        return scores

    return train


def run(*, seed, epochs=None, progress=True):
    """``nnlite train digits-tune``: successive halving against random search at the same budget.

    A two-layer MLP on scikit-learn's digits; the search space is
    ``lr ~ loguniform(1e-4, 3)``, ``weight_decay ~ loguniform(1e-6, 0.1)``;
    configurations are scored by the loss on a validation split. Successive
    halving starts 27 configurations at 1 epoch with ``eta = 3`` up to
    ``epochs`` (9 by default); random search trains as many configurations for
    ``epochs`` each as the same total budget allows. The test accuracy of each
    search's best configuration is measured once, after the search.
    """
    max_budget = int(epochs or 9)
    train = _digits_search_problem(seed)
    space = {"lr": loguniform(1e-4, 3.0), "weight_decay": loguniform(1e-6, 1e-1)}

    def objective(config, budget):
        return train(config, budget)["val_loss"]

    halving = successive_halving(objective, space, 27, min_budget=1, max_budget=max_budget, eta=3, seed=seed)
    num_random = max(1, int(halving.total_budget // max_budget))
    random = random_search(objective, space, num_random, budget=max_budget, seed=seed + 1)
    results = {}
    for name, res in (("successive_halving", halving), ("random_search", random)):
        final = train(res.best_config, max_budget, with_test_accuracy=True)
        results[name] = {"configurations": len(res), "total_budget": res.total_budget,
                         "best_config": res.best_config, "best_val_loss": res.best.score,
                         "test_accuracy": final["test_accuracy"], "table": res.table(top=10),
                         "search": res.to_dict()}
        if progress:
            print(f"{name}:\n{results[name]['table']}")
    h, r = results["successive_halving"], results["random_search"]
    summary = (f"digits MLP, lr and weight decay, {h['total_budget']:.0f} epochs per search: successive halving "
               f"({h['configurations']} configurations) best validation loss {h['best_val_loss']:.3f}, test "
               f"accuracy {h['test_accuracy']:.1%}; random search ({r['configurations']}) "
               f"{r['best_val_loss']:.3f}, {r['test_accuracy']:.1%}")
    return {"experiment": "digits-tune", "seed": seed, "max_budget": max_budget, **results, "summary": summary}
