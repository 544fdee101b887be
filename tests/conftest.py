"""Shared test helpers: a torch oracle that skips cleanly, thread switching, gradcheck."""
import contextlib

import numpy as np
import pytest

import nnlite._kernels as kernels


def torch_or_skip():
    """Return the torch module, or skip the calling test when PyTorch is not installed."""
    return pytest.importorskip("torch")


@contextlib.contextmanager
def threads(n, serial_below=0):
    """Run kernels on ``n`` threads with the serial threshold lowered, so parallel paths run."""
    old_n = kernels.get_num_threads()
    old_thr = kernels._threads.get_serial_threshold() if kernels._threads else None
    kernels.set_num_threads(n)
    if kernels._threads is not None:
        kernels._threads.set_serial_threshold(serial_below)
    try:
        yield
    finally:
        kernels.set_num_threads(old_n)
        if kernels._threads is not None:
            kernels._threads.set_serial_threshold(old_thr)


def same_bytes_across_threads(fn, *args, counts=(1, 2, 4), **kwargs):
    """Call ``fn`` under each thread count; assert every array result is byte-identical."""
    results = []
    for n in counts:
        with threads(n):
            out = fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        results.append([np.ascontiguousarray(o).tobytes() if isinstance(o, np.ndarray) else o for o in outs])
    for n, r in zip(counts[1:], results[1:]):
        assert r == results[0], f"{getattr(fn, '__name__', fn)}: {n} threads differ from {counts[0]}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
