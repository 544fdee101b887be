"""Products with subnormal operands, with and without flushing (``nl.set_flush_denormal``).

The shapes are a tied output layer's gradient products (vocabulary 65, d_model
128, 2048 tokens): (65x2048)@(2048x128) with ~10% of the logit gradient's
entries subnormal, as the issue measured in a character transformer. nnlite's
``K.gemm`` and ``numpy.matmul``, paired medians in one run, on normal operands
and on 10%-subnormal ones, flushing off and on.

    python -m benchmarks.bench_denormal      # writes results/<machine kind>-denormal.md
"""
import os
import sys

# What ``import nnlite`` sets when it comes first: without it NumPy's idle OpenBLAS threads
# poll while nnlite's product runs (and the reverse), and the paired loop measures that
# contention instead of the subnormals (see bench_thread_pools.py).
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import nnlite as nl  # noqa: E402
from nnlite._kernels import K  # noqa: E402

from .harness import paired_medians  # noqa: E402
from .machine import describe, write_markdown  # noqa: E402


def _with_subnormals(rng, x, fraction=0.1):
    x = x.copy()
    where = rng.random(x.shape) < fraction
    x[where] = (rng.uniform(0.05, 1.0, where.sum()) * np.finfo(np.float32).tiny).astype(np.float32)
    return x


def run(quick=False):
    nl.set_flush_denormal(False)
    rng = np.random.default_rng(0)
    g = rng.standard_normal((2048, 65)).astype(np.float32)     # logit gradient
    h = rng.standard_normal((2048, 128)).astype(np.float32)    # hidden states
    operands = {"normal": (g, h), "10% subnormal": (_with_subnormals(rng, g), _with_subnormals(rng, h))}
    rows = []
    for flush in (False, True):
        nl.set_flush_denormal(flush)
        for name, (a, b) in operands.items():
            t = paired_medians({"nnlite": lambda a=a, b=b: K.gemm(a, b, trans_a=True),
                                "numpy": lambda a=a, b=b: a.T @ b},
                               repeat=11 if quick else 61, number=5, warmup=20)
            rows.append({"operands": name, "flush": "on" if flush else "off",
                         "nnlite_ms": t["nnlite"], "numpy_ms": t["numpy"]})
    nl.set_flush_denormal(False)
    base = {r["flush"]: r for r in rows if r["operands"] == "normal"}
    for r in rows:
        r["nnlite_vs_normal"] = r["nnlite_ms"] / base[r["flush"]]["nnlite_ms"]
        r["numpy_vs_normal"] = r["numpy_ms"] / base[r["flush"]]["numpy_ms"]
    return rows


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    cols = ["operands", "flush", "nnlite_ms", "numpy_ms", "nnlite_vs_normal", "numpy_vs_normal"]
    path = write_markdown("denormal", "(65x2048)@(2048x128) float32 with subnormal operands", rows, cols,
                          notes=[f"{nl.get_num_threads()} threads; paired medians of 5-call samples, one run"])
    print(describe())
    print(open(path).read())
