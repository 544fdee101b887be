"""The graph holds no reference cycles: activations of a forward pass that is never
differentiated are freed by reference counting alone, without the garbage collector."""
import gc
import weakref

import numpy as np

import nnlite as nl
from nnlite import nn


def _small_cnn():
    nl.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.GELU(), nn.Flatten(), nn.Linear(16 * 8 * 8, 10),
        nn.Tanh(), nn.LogSoftmax(dim=1))


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_outputs_of_every_saving_op_die_without_the_collector():
    x = nl.randn(4, 6, requires_grad=True)
    gc.disable()
    try:
        for make in (lambda: x.exp(), lambda: x.abs().sqrt(), lambda: x.relu(), lambda: x.tanh(),
                     lambda: x.sigmoid(), lambda: x.softmax(1), lambda: x.log_softmax(1),
                     lambda: x.logsumexp(1), lambda: (x * x + 1).rsqrt(), lambda: _small_cnn()(nl.randn(2, 1, 16, 16))):
            out = make()
            ref = weakref.ref(out)
            del out
            assert ref() is None, "a graph node outlived its last reference (a reference cycle)"
    finally:
        gc.enable()


def test_forward_passes_with_grad_on_and_no_backward_keep_memory_flat():
    model = _small_cnn()
    batch = nl.randn(32, 1, 16, 16)
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):   # warm up the allocator
            model(batch)
        start = _rss_bytes()
        for _ in range(200):
            logits = model(batch)
        grown = _rss_bytes() - start
    finally:
        gc.enable()
    # One forward's activations are ~0.5 MB; 200 of them held would be ~100 MB.
    assert grown < 20e6, f"RSS grew by {grown / 1e6:.1f} MB over 200 forwards"
    assert np.isfinite(logits.data).all()
