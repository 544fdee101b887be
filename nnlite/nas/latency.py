"""Per-operation latencies measured on this machine with nnlite's kernels, for hardware-aware search.

Counting FLOPs says little about speed on a particular CPU: a pooling layer
has few FLOPs but is memory-bound, a depthwise convolution has few FLOPs but
poor arithmetic intensity. Hardware-aware searches (ProxylessNAS, FBNet)
therefore *measure* each candidate operation once on the target device and
put the expected latency of the architecture into the search objective:

.. math::

    \\mathcal L(\\alpha) = L_{val} + \\lambda \\sum_{e} \\sum_{o}
    \\mathrm{softmax}(\\alpha_e)_o\\, t_o,

which is differentiable in :math:`\\alpha` because the expectation is, even
though the latencies themselves are just numbers. Larger :math:`\\lambda`
pushes edges towards cheap operations (skip, pooling, none).

A :class:`LatencyTable` times each operation's forward pass (inference mode,
median of repeats) for a given input shape, with the thread count and the
kernel backend in the key, and keeps the results in a JSON file, so the table
is built once per machine and then read back.
"""
import json
import os
import time

import numpy as np

from .._kernels.checks import is_int
from .. import _kernels
from ..autograd import no_grad
from ..data.datasets import cache_dir
from ..ops import randn
from ..random import get_rng_state, set_rng_state
from .operations import PRIMITIVES, make_operation

__all__ = ["LatencyTable", "measure_latency"]


def measure_latency(name, channels, length, batch_size=1, repeats=30):
    """Median forward time in milliseconds of operation ``name`` on a (batch_size, channels, length) input."""
    if not is_int(repeats) or repeats < 1:
        raise ValueError(f"measure_latency: repeats must be a positive integer, got {repeats!r}")
    # The operation's initial weights and the input are drawn, then the global generator is put
    # back: a search seeded after building a table must not depend on whether the table was cached.
    state = get_rng_state()
    try:
        op = make_operation(name, channels).eval()
        x = randn(batch_size, channels, length)
    finally:
        set_rng_state(state)
    times = []
    with no_grad():
        for i in range(repeats + 3):
            start = time.perf_counter()
            op(x)
            if i >= 3:   # the first calls warm caches and allocators
                times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _read_table(path):
    """The entries of a saved table; a damaged file is refused by name rather than priced into a search."""
    again = "delete it to measure the latencies again"
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except ValueError as e:   # not JSON (cut off, or not a table at all), or not UTF-8
        raise ValueError(f"LatencyTable: {path} is not a latency table ({e}); {again}") from None
    if not isinstance(entries, dict):
        raise ValueError(f"LatencyTable: {path} must hold a JSON object of times in ms, got "
                         f"{type(entries).__name__}; {again}")
    bad = {key: value for key, value in entries.items()
           if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < np.inf}
    if bad:
        shown = dict(list(bad.items())[:3])
        raise ValueError(f"LatencyTable: {path}: every entry must be a finite time >= 0 in ms, got {shown}; "
                         f"{again}")
    return {key: float(value) for key, value in entries.items()}


class LatencyTable:
    """Measured latency (ms) per (operation, channels, length, batch size), cached in a JSON file.

    ``path`` defaults to ``latency-<backend>-<threads>threads.json`` in the
    nnlite cache directory. ``measure`` is the timing function (replaceable,
    e.g. by a FLOP count). ``measured`` counts the measurements this object
    had to make, so a reader can see the cache at work.

    >>> table = LatencyTable(path=None, measure=lambda name, c, l, b: {"none": 0.0}.get(name, 1.0))
    >>> table.costs(channels=8, lengths=[40, 20])[:2]
    [0.0, 2.0]
    """

    def __init__(self, path="default", batch_size=1, measure=None):
        if path == "default":
            key = f"latency-{_kernels.get_backend()}-{_kernels.get_num_threads()}threads.json"
            path = os.path.join(cache_dir(), key)
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(f"LatencyTable: batch_size must be a positive integer, got {batch_size!r}")
        self.path, self.batch_size = path, int(batch_size)
        self._measure = measure or (lambda name, c, l, b: measure_latency(name, c, l, b))
        self.entries = {}
        self.measured = 0
        if path and os.path.exists(path):
            self.entries = _read_table(path)

    def latency(self, name, channels, length):
        """One operation's latency in ms: from the table, or measured now and saved."""
        key = f"{name}|C={channels}|L={length}|N={self.batch_size}"
        if key not in self.entries:
            value = float(self._measure(name, channels, length, self.batch_size))
            if not 0 <= value < np.inf:   # it would be saved to the table and cost every later search
                raise ValueError(f"LatencyTable: the measure gave {value} ms for {key}; expected a finite time >= 0")
            self.entries[key] = value
            self.measured += 1
            self._save()
        return self.entries[key]

    def costs(self, channels, lengths, primitives=PRIMITIVES):
        """Latency of each operation summed over cells that see inputs of the given ``lengths``.

        The result is the vector :math:`t` of the search objective: with the
        architecture parameters shared by all cells, one edge choice is paid
        once per cell.
        """
        return [sum(self.latency(name, channels, length) for length in lengths) for name in primitives]

    def _save(self):
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.entries, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)   # atomic: a reader never sees half a table
