"""nnlite shares the process with NumPy's OpenBLAS thread pool: its idle threads sleep at once."""
import os
import subprocess
import sys


def test_numpy_blas_threads_sleep_at_once_when_nnlite_loads_first():
    # The other process-wide setting about threads nnlite shares with NumPy: OpenBLAS's idle
    # timeout, read when NumPy loads OpenBLAS (benchmarks/bench_thread_pools.py measures why).
    code = "import os, nnlite; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.split() == ["4"], out.stderr
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**env, "OPENBLAS_THREAD_TIMEOUT": "20"})
    assert out.stdout.split() == ["20"], out.stderr
