"""Dynamic int8 inference against float32 on a 784-256-256-10 MLP, batch 1 to 64.

Contenders, paired medians in one loop (``harness.paired_medians``):

* ``nnlite`` — ``nl.quantization.quantize_dynamic(model, {nl.nn.Linear})``: int8
  weights per output row, activations quantized per batch to 7-bit codes (the
  default, as PyTorch's dynamic Linear), one call of ``_int8.pyx``'s
  ``quantized_linear`` per layer (input range, uint8 codes, u8 x s8 GEMM,
  epilogue); the note adds the same model with ``reduce_range=False`` (all 8
  bits of the codes) and the default model after ``fuse_modules`` (each
  Linear + ReLU pair one call, the ReLU in the epilogue);
* ``torch`` — ``torch.ao.quantization.quantize_dynamic`` of the same model (its
  fbgemm int8 kernels), when PyTorch is installed;
* ``numpy`` — left empty; the note gives nnlite's own float32 model instead, and
  the speed-up int8 / float32 that the issue targets (>= 2x at batch 1,
  >= 1.5x at batch 64), with the CPU and the instruction set the kernel ran on.

Run on its own (``python -m benchmarks.bench_int8``), it also writes
``results/<machine kind>-int8.md``: the machine line (``machine.describe``),
the kernel's dot-product path (``_int8.simd_path()``) and one row per batch
size with every contender's time and each int8 variant's speed-up over float32.
"""
import os
import platform
import sys
import warnings

# Run on its own, under the same thread policy as run_all: NumPy's OpenBLAS threads (behind
# the float32 model) sleep when idle instead of spinning for ~0.1 s on the second core, which
# the int8 kernel's OpenMP thread, timed next, needs. Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

import nnlite as nl  # noqa: E402

from .harness import format_table, paired_medians, torch_or_none  # noqa: E402
from .machine import describe, write_markdown  # noqa: E402

SIZES = (784, 256, 256, 10)
TARGETS = {1: 2.0, 64: 1.5}     # float32 time / int8 time the issue asks for

# What bounds the default (8-bit) path at large batches on a CPU without VNNI.
WHY_AVX2 = ("what bounds the 8-bit path at large batches here: without VNNI an exact u8 x s8 sum of 8-bit "
            "codes takes a vpmaddwd (16 products) and a vpaddd per 16 products, plus a share of splitting the "
            "weight bytes: about the instructions float32 spends (one FMA per 8). The integer path gains only "
            "because its multiplies and adds spread over four vector pipes where the FMAs have two (at most ~2x "
            "in the sums), before the per-batch range and quantization passes and the thread wake-ups; 7-bit "
            "codes (vpmaddubsw) or VNNI (vpdpbusd: 32 products and their sums in one instruction) remove most of that")


def cpu_and_isa():
    """The CPU's name and the widest integer dot-product instructions it has."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine(), "x86_64"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    if "avx512_vnni" in flags:
        isa = "AVX-512 VNNI"
    elif "avx_vnni" in flags:
        isa = "AVX-VNNI"
    elif "avx2" in flags:
        isa = "AVX2 (vpmaddwd; vpmaddubsw for 7-bit codes), no VNNI"
    else:
        isa = "portable (no AVX2)"
    return name, isa


def mlp(seed=0):
    nl.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nl.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(nl.nn.ReLU())
    return nl.nn.Sequential(*layers).eval()


def torch_twin(model, torch):
    layers = []
    for m in model:
        if isinstance(m, nl.nn.Linear):
            lin = torch.nn.Linear(m.in_features, m.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(m.weight.detach().numpy()))
                lin.bias.copy_(torch.from_numpy(m.bias.detach().numpy()))
            layers.append(lin)
        else:
            layers.append(torch.nn.ReLU())
    with warnings.catch_warnings():   # torch.ao.quantization's deprecation notices
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(*layers).eval(), {torch.nn.Linear},
                                                      dtype=torch.qint8)


def run(quick=False):
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(nl.get_num_threads())
    model = mlp()
    qmodel = nl.quantization.quantize_dynamic(model, {nl.nn.Linear}, dtype=nl.qint8)
    q8 = nl.quantization.quantize_dynamic(model, {nl.nn.Linear}, dtype=nl.qint8, reduce_range=False)
    pairs = [[str(i), str(i + 1)] for i in range(len(model) - 1)
             if isinstance(model[i], nl.nn.Linear) and isinstance(model[i + 1], nl.nn.ReLU)]
    fused = nl.quantization.fuse_modules(model, pairs)
    qfused = nl.quantization.quantize_dynamic(fused, dtype=nl.qint8)
    tq = torch_twin(model, torch) if torch is not None else None
    cpu, isa = cpu_and_isa()
    from nnlite._kernels import _int8
    isa += f"; kernel path {_int8.simd_path()}"
    rows = []
    for batch in ((1, 64) if quick else (1, 8, 16, 32, 64)):
        x = nl.tensor(np.random.default_rng(batch).standard_normal((batch, SIZES[0])).astype(np.float32))
        tx = torch.from_numpy(x.numpy()) if torch is not None else None

        def fp32():
            with nl.no_grad():
                return model(x)

        def tq_call():
            with torch.no_grad():
                return tq(tx)
        times = paired_medians({"int8": lambda: qmodel(x), "int8_8bit": lambda: q8(x),
                                "int8_fused": lambda: qfused(x), "fp32": fp32,
                                "torch": tq_call if torch is not None else None},
                               repeat=21 if quick else 61, warmup=5, number=20 if batch < 16 else 5)
        speedup, fused = times["fp32"] / times["int8"], times["fp32"] / times["int8_fused"]
        target = TARGETS.get(batch)
        verdict = "" if target is None else f" (target >= {target}x: {'PASS' if speedup >= target else 'MISS'})"
        verdict += (f"; with 8-bit activation codes {times['int8_8bit']:.3f} ms, "
                    f"x{times['fp32'] / times['int8_8bit']:.2f}; with Linear+ReLU fused "
                    f"{times['int8_fused']:.3f} ms, x{fused:.2f}")
        rows.append({"workload": f"MLP 784-256-256-10 int8 dynamic, batch {batch}",
                     "nnlite_ms": times["int8"], "torch_ms": times["torch"], "numpy_ms": None,
                     "note": f"nnlite float32 {times['fp32']:.3f} ms, int8 speed-up x{speedup:.2f}{verdict}; "
                             f"{nl.get_num_threads()} threads; {cpu}; {isa}",
                     "_times": times})
    return rows


def write_table(rows):
    """``results/<machine kind>-int8.md``: one row per batch size, times in ms and speed-ups."""
    from nnlite._kernels import _int8
    table = []
    for r in rows:
        t = r["_times"]
        table.append({"batch": r["workload"].rsplit(" ", 1)[1], "float32_ms": t["fp32"], "int8_ms": t["int8"],
                      "int8_8bit_ms": t["int8_8bit"], "int8_fused_ms": t["int8_fused"],
                      "torch_int8_ms": t["torch"], "x int8": t["fp32"] / t["int8"],
                      "x 8-bit": t["fp32"] / t["int8_8bit"], "x fused": t["fp32"] / t["int8_fused"],
                      "target": TARGETS.get(int(r["workload"].rsplit(" ", 1)[1]))})
    return write_markdown("int8", "Dynamic int8 MLP 784-256-256-10 against nnlite's float32", table,
                          ["batch", "float32_ms", "int8_ms", "int8_8bit_ms", "int8_fused_ms", "torch_int8_ms",
                           "x int8", "x 8-bit", "x fused", "target"],
                          notes=[f"kernel dot-product path: {_int8.simd_path()}; {nl.get_num_threads()} threads; "
                                 "paired alternating medians in one run; OPENBLAS_THREAD_TIMEOUT="
                                 f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT')}, OMP_WAIT_POLICY="
                                 f"{os.environ.get('OMP_WAIT_POLICY')}",
                                 "x = float32 time / int8 time; target = the issue's speed-up at that batch size",
                                 "int8: quantize_dynamic's default, 7-bit activation codes as PyTorch's dynamic "
                                 "Linear; 8-bit: reduce_range=False; fused: the default with each Linear + ReLU "
                                 "one kernel call"]
                          + [f"batch {r['batch']}: x{r['x int8']:.2f} against a target of {r['target']}x: "
                             f"{'PASS' if r['x int8'] >= r['target'] else 'MISS'}" for r in table if r["target"]]
                          + ([WHY_AVX2] if _int8.simd_path() == "AVX2" else []))


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    print(format_table(rows))
    print(describe())
    print(open(write_table(rows)).read())
