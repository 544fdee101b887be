"""Square float32 matrix multiply: nnlite's BLAS-backed ``K.gemm`` and its teaching
kernel ``gemm_tiled`` against ``np.matmul`` and ``torch.matmul``.

All contenders use nnlite's thread count (torch via ``torch.set_num_threads``,
the BLAS under NumPy and ``K.gemm`` via ``nl.set_num_threads``). Times are
paired medians; the note gives each contender's GFLOP/s (2 n^3 flops).
"""

import numpy as np

from nnlite._kernels import K, get_num_threads, set_num_threads

from .harness import format_table, paired_medians, thread_speedup, torch_or_none


def _gflops(n, ms):
    return "—" if ms is None else f"{2 * n ** 3 / (ms * 1e-3) / 1e9:.1f}"


def run(quick=False):
    torch = torch_or_none()
    threads = get_num_threads()
    set_num_threads(threads)                 # also limits the BLAS under NumPy
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    sizes = (256, 512) if quick else (256, 512, 1024, 2048)
    operands = {n: (rng.standard_normal((n, n)).astype(np.float32),
                    rng.standard_normal((n, n)).astype(np.float32)) for n in sizes}
    # The thread speed-ups first: after a NumPy or torch product their BLAS/OpenMP
    # threads keep spinning for a while and would take the second core from ours.
    speedups = {n: thread_speedup(lambda a=a, b=b: K.gemm(a, b), repeat=3 if quick or n >= 2048 else 7)
                for n, (a, b) in operands.items()}
    rows = []
    for n in sizes:
        a, b = operands[n]
        ta = tb = None
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        repeat = 5 if quick or n >= 2048 else 11
        times = paired_medians({
            "gemm": lambda: K.gemm(a, b),
            "tiled": lambda: K.gemm_tiled(a, b),
            "numpy": lambda: np.matmul(a, b),
            "torch": (lambda: torch.matmul(ta, tb)) if torch is not None else None,
        }, repeat=repeat, warmup=2)
        note = (f"GFLOP/s: K.gemm {_gflops(n, times['gemm'])}, gemm_tiled {_gflops(n, times['tiled'])}, "
                f"numpy {_gflops(n, times['numpy'])}, torch {_gflops(n, times['torch'])}; "
                f"{threads} threads; K.gemm 2T/1T speed-up x{speedups[n]:.2f}")
        for name, label in (("gemm", "K.gemm"), ("tiled", "gemm_tiled")):
            rows.append({"workload": f"matmul {n}x{n} float32, {label}", "nnlite_ms": times[name],
                         "torch_ms": times["torch"], "numpy_ms": times["numpy"],
                         "note": note if name == "gemm" else
                         f"gemm_tiled / numpy = {times['numpy'] / times['tiled']:.2f} of BLAS speed"})
    return rows


if __name__ == "__main__":
    print(format_table(run()))
