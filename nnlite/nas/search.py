"""Running a DARTS search on MNIST-1D: data split, search loop, retraining the derived network.

The search needs two disjoint sets: the weights learn on one, the
architecture on the other (DARTS halves its training set the same way). The
test set is used only once, to score the derived network after it has been
retrained from scratch on the whole training set.
"""
import time

import numpy as np

from .. import optim
from ..data import MNIST1D
from ..optim.lr_scheduler import CosineAnnealingLR
from ..random import manual_seed
from ..tensor import Tensor
from ..train import accuracy as train_accuracy
from .darts import BilevelSearch, DerivedNetwork, SearchNetwork
from .progressive import _train_classifier

__all__ = ["mnist1d_search_split", "darts_search", "train_from_scratch", "genotype_latency", "accuracy"]


def mnist1d_search_split(train_size=None, seed=0):
    """``(search_train, search_val, train, test)`` as (x, y) NumPy pairs.

    The 4000 MNIST-1D training examples (or their first ``train_size``) are
    shuffled with ``seed`` and halved into ``search_train`` and
    ``search_val``; ``train`` is all of them, ``test`` the 1000 test examples.
    """
    if train_size is not None and not 2 <= train_size:
        raise ValueError(f"mnist1d_search_split: train_size must be >= 2 (one example for each half), "
                         f"got {train_size}")
    x, y = MNIST1D(train=True).arrays
    x_test, y_test = MNIST1D(train=False).arrays
    x, y = x[:train_size], y[:train_size]
    order = np.random.default_rng(seed).permutation(len(y))
    half = len(y) // 2
    first, second = order[:half], order[half:]
    return (x[first], y[first]), (x[second], y[second]), (x, y), (x_test, y_test)


def accuracy(model, data, batch_size=500):
    """Fraction of ``data`` = (x, y) classified correctly (model in eval mode, restored after).

    :func:`nnlite.train.accuracy` with the split held as one pair.
    """
    from ..nn._checks import require_module
    require_module(model, "accuracy")
    x, y = data
    return train_accuracy(model, x, y, batch_size)


def darts_search(search_train, search_val, epochs=10, channels=16, cells=2, steps=3, batch_size=64,
                 second_order=False, latency=None, latency_weight=0.0, weight_lr=0.025, arch_lr=3e-3, seed=0,
                 progress=False):
    """Search with :class:`~nnlite.nas.BilevelSearch`; returns ``(network, history)``.

    Weights: SGD (momentum 0.9, weight decay 3e-4) with a cosine schedule;
    architecture: Adam (betas (0.5, 0.999), weight decay 1e-3), as in the
    paper but with a larger architecture learning rate for the short search.
    ``history`` has one entry per epoch: mean training loss, the search
    network's validation accuracy, ``softmax(alpha)`` and the genotype.
    """
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SearchNetwork(channels=channels, cells=cells, steps=steps)
    weight_opt = optim.SGD(net.weights(), lr=weight_lr, momentum=0.9, weight_decay=3e-4)
    arch_opt = optim.Adam(net.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    schedule = CosineAnnealingLR(weight_opt, T_max=epochs)
    searcher = BilevelSearch(net, weight_opt, arch_opt, second_order=second_order, latency=latency,
                             latency_weight=latency_weight)
    (x, y), (xv, yv) = search_train, search_val
    history = []
    for epoch in range(epochs):
        start, losses = time.perf_counter(), []
        order, val_order = rng.permutation(len(y)), rng.permutation(len(yv))
        for b, i in enumerate(range(0, len(y) - batch_size + 1, batch_size)):
            idx, vidx = order[i:i + batch_size], val_order[(b * batch_size) % len(yv):][:batch_size]
            out = searcher.step((Tensor(x[idx]), Tensor(y[idx])), (Tensor(xv[vidx]), Tensor(yv[vidx])))
            losses.append(out["train_loss"])
        schedule.step()
        weights = np.exp(net.alpha.data - net.alpha.data.max(1, keepdims=True))
        entry = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                 "val_accuracy": accuracy(net, search_val),
                 "alpha_softmax": (weights / weights.sum(1, keepdims=True)).tolist(),
                 "genotype": net.genotype().edges, "seconds": round(time.perf_counter() - start, 2)}
        history.append(entry)
        if progress:
            print(f"search epoch {epoch + 1:>2}  train loss {entry['train_loss']:.3f}  "
                  f"search-network val accuracy {entry['val_accuracy']:.3f}", flush=True)
    return net, history


def train_from_scratch(genotype, train, test, epochs=15, channels=16, cells=2, lr=3e-3, batch_size=64, seed=0):
    """A fresh :class:`~nnlite.nas.DerivedNetwork` trained with Adam; returns ``(network, test_accuracy)``."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = DerivedNetwork(genotype, channels=channels, cells=cells)
    _train_classifier(net, *train, epochs, lr, batch_size, rng,
                     schedule=lambda optimizer: CosineAnnealingLR(optimizer, T_max=epochs))
    return net, accuracy(net, test)


def genotype_latency(genotype, table, channels, lengths):
    """Latency (ms) of a derived cell's operations, summed over cells with inputs of the given ``lengths``."""
    return sum(table.latency(name, channels, length) for name, _, _ in genotype.edges for length in lengths)
