"""Two thread pools in one process: nnlite's 1024^3 product right after NumPy's threaded BLAS.

NumPy's OpenBLAS has its own worker threads. After a threaded ``numpy.matmul``
they keep polling for more work for a while (OpenBLAS's thread timeout), and
on a machine with as many cores as threads they hold the cores that nnlite's
OpenMP threads need for the next product. Measured here, paired in one run:

* ``alone``: ``K.gemm`` 1024^3 after another ``K.gemm`` (nnlite's pool only);
* ``after numpy``: the same call right after a threaded 1024^3 ``numpy.matmul``;
* ``after numpy, BLAS on 1 thread``: the same, with NumPy's OpenBLAS limited to
  one thread (``threadpoolctl.threadpool_limits(1, "blas")``, or
  ``OPENBLAS_NUM_THREADS=1`` before start), so it has no pool to leave spinning.

The whole measurement runs twice, in fresh processes: with OpenBLAS's default
thread timeout (its idle threads poll for 2^28 cycles, about 0.1 s, before
they sleep) and with ``OPENBLAS_THREAD_TIMEOUT=4`` (2^4 cycles: they sleep at
once), which must be in the environment before NumPy loads OpenBLAS.

    python -m benchmarks.bench_thread_pools   # writes results/<machine kind>-thread-pools.md
"""
import os
import statistics
import sys
import time

import numpy as np

import nnlite as nl
from nnlite._kernels import K

from .harness import package_root
from .machine import describe, write_markdown


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def run(quick=False, n=1024):
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
    nnlite_gemm, numpy_gemm = (lambda: K.gemm(a, b)), (lambda: a @ b)
    for _ in range(3):
        nnlite_gemm(), numpy_gemm()
    samples = {"alone": [], "after numpy": [], "after numpy, BLAS on 1 thread": []}
    for _ in range(7 if quick else 25):     # the three cases interleaved: same noise for all
        nnlite_gemm()
        samples["alone"].append(_timed(nnlite_gemm))
        numpy_gemm()
        samples["after numpy"].append(_timed(nnlite_gemm))
        with threadpool_limits(1, "blas"):
            numpy_gemm()
            samples["after numpy, BLAS on 1 thread"].append(_timed(nnlite_gemm))
    base = statistics.median(samples["alone"])
    return [{"case": k, "nnlite_ms": statistics.median(v), "vs_alone": statistics.median(v) / base,
             "gflops": 2 * n ** 3 / (statistics.median(v) * 1e-3) / 1e9} for k, v in samples.items()]


def _child(timeout):
    """Run the measurement in a fresh process with OPENBLAS_THREAD_TIMEOUT set (or not); its rows."""
    import json
    import subprocess
    env = dict(os.environ)
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    if timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = str(timeout)
    # NumPy (and so OpenBLAS) loads before anything imports nnlite, which would set the timeout.
    code = (f"import json, numpy; from {__package__} import bench_thread_pools as b; "
            f"print(json.dumps(b.run(quick={'--quick' in sys.argv!r})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=package_root())
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    for r in rows:
        r["OPENBLAS_THREAD_TIMEOUT"] = "default (28)" if timeout is None else str(timeout)
    return rows


if __name__ == "__main__":
    rows = _child(None) + _child(4)
    path = write_markdown("thread-pools", "K.gemm 1024^3 float32 after NumPy's threaded BLAS", rows,
                          ["OPENBLAS_THREAD_TIMEOUT", "case", "nnlite_ms", "vs_alone", "gflops"],
                          notes=[f"{nl.get_num_threads()} nnlite threads; medians of interleaved samples; "
                                 "each OPENBLAS_THREAD_TIMEOUT in its own fresh process, one after the other",
                                 f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"])
    print(describe())
    print(open(path).read())
