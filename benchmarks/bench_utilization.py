"""Each training step's achieved GFLOP/s against the machine's measured sgemm peak.

A training step of these models is mostly matrix products, and the fastest a
machine multiplies float32 matrices is what a tuned BLAS reaches on a large
square product. So the run measures that peak: the best GFLOP/s of
``K.gemm`` (nnlite's BLAS-backed product), ``numpy.matmul`` and
``torch.matmul`` on 2048 x 2048 float32 operands, paired and alternating, on
nnlite's thread count, before and after the steps (the better of the two
counts). It times the training steps of
``bench_training.py`` (MLP, LeNet-5, small CNN+BN, char transformer) and of
``bench_transformer.py`` (the causal transformer, subnormal flushing off and
on), nnlite and PyTorch paired as there, and divides each step's FLOPs by its
time. The FLOPs are the products of forward and backward, counted by
``step_flops.py`` (nnlite's layer counter for the forward pass, 3 times that
for forward + backward, less the input gradient nobody computes for the first
layer on the data); the elementwise passes and the optimizer update are not
counted, though they take part of each step's time.

The percentage of peak says how much of the step's time goes to products at
full BLAS speed: 100% is out of reach, since the uncounted work, the per-op
overhead, and products too small or thin to run at the large square product's
speed all take time without adding counted FLOPs.

    python -m benchmarks.run_all --only utilization [--quick]
    python -m benchmarks.bench_utilization [--quick]   # writes results/<machine kind>-utilization.md
"""
import numpy as np

import nnlite as nl
from nnlite._kernels import K

from . import bench_training, bench_transformer
from .harness import paired_medians, torch_or_none

PEAK_SIZE = 2048
TRAINING = ("mlp", "lenet", "cnn", "transformer")   # bench_training's training-step workloads


def gflops(flops, ms):
    return None if ms is None or not flops else flops / (ms * 1e-3) / 1e9


def sgemm_peak(torch, repeat):
    """({contender: median ms}, {contender: GFLOP/s}) of the float32 ``PEAK_SIZE``-cubed product.

    The rates hold the best of the contenders under ``"peak"``.
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((PEAK_SIZE, PEAK_SIZE)).astype(np.float32) for _ in range(2))
    ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch is not None else (None, None)
    times = paired_medians({"K.gemm": lambda: K.gemm(a, b), "numpy": lambda: np.matmul(a, b),
                            "torch": (lambda: torch.matmul(ta, tb)) if torch is not None else None},
                           repeat=repeat, warmup=2)
    rates = {name: gflops(2 * PEAK_SIZE ** 3, ms) for name, ms in times.items()}
    rates["peak"] = max(r for r in rates.values() if r is not None)
    return times, rates


def utilization_row(workload, flops, nnlite_ms, torch_ms, peak):
    """One table row: the step's GFLOP, both times, both GFLOP/s and their share of ``peak`` (GFLOP/s)."""
    row = {"workload": workload, "GFLOP per step": flops / 1e9, "nnlite_ms": nnlite_ms, "torch_ms": torch_ms}
    for name, ms in (("nnlite", nnlite_ms), ("torch", torch_ms)):
        rate = gflops(flops, ms)
        row[f"{name} GFLOP/s"] = rate
        row[f"{name} % of peak"] = None if rate is None else 100 * rate / peak
    return row


def run(quick=False):
    torch = torch_or_none()
    threads = nl.get_num_threads()
    nl.set_num_threads(threads)   # also limits the BLAS under NumPy
    if torch is not None:
        torch.set_num_threads(threads)
    before = sgemm_peak(torch, repeat=5 if quick else 11)
    nl.manual_seed(0)
    if torch is not None:
        torch.manual_seed(0)
    steps = [bench_training.WORKLOADS[name](torch, 7 if quick else 31) for name in TRAINING]
    steps += bench_transformer.run(quick)
    after = sgemm_peak(torch, repeat=5 if quick else 11)
    # Measured before and after the steps, and the better kept: other work on a shared machine
    # during one of them must not lower the peak the steps are held against.
    times, rates = max(before, after, key=lambda measured: measured[1]["peak"])
    peak = rates["peak"]
    measured = ", ".join(f"{k} {v:.1f}" for k, v in rates.items() if k != "peak" and v is not None)
    # The peak's own row: nnlite's column is K.gemm, torch's is torch.matmul.
    rows = [utilization_row(f"sgemm {PEAK_SIZE}^3 float32 on {threads} threads, the peak: best of {measured} GFLOP/s",
                            2 * PEAK_SIZE ** 3, times["K.gemm"], times["torch"], peak)]
    for r in steps:
        rows.append(utilization_row(r["workload"], r["_step_flops"], r["nnlite_ms"], r["torch_ms"], peak))
    return rows


if __name__ == "__main__":
    import sys

    from .machine import describe, write_markdown

    rows = run(quick="--quick" in sys.argv)
    path = write_markdown("utilization", "Training steps' GFLOP/s against the measured sgemm peak", rows, list(rows[0]),
                          notes=[f"{nl.get_num_threads()} threads; paired medians in one run; FLOPs of the products "
                                 "of forward and backward (benchmarks/step_flops.py)"])
    print(describe())
    print(open(path).read())
