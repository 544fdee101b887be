"""The machine a benchmark table was measured on: CPU model, vector instruction set, cores, BLAS,
and the vector width and cache blocks nnlite's kernels were built and tuned for there.

Every table written by the round-two benchmarks (bench_denormal, bench_thread_pools,
bench_recurrent) starts with this line, since ratios measured on one CPU say little
about another (AVX2 and AVX-512 machines rank the contenders differently).
"""
import os
import platform

from .harness import results_dir


def _cpuinfo():
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def describe():
    """One line: CPU model, widest vector ISA, cores, BLAS, and the vector width and GEMM blocks
    nnlite's kernels use here (e.g. ``AMD EPYC, AVX2+FMA, 2 cores, OpenBLAS 0.3.31, nnlite
    vectors 256-bit, GEMM blocks kc 256 mc 96 block 256``)."""
    model, flags = _cpuinfo()
    isa = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "AVX" if "avx" in flags
           else "SSE" if "sse2" in flags else platform.machine())
    if "fma" in flags:
        isa += "+FMA"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    blas = "unknown BLAS"
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                blas = f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('architecture')})"
                break
    except Exception:
        pass
    return f"{model}, {isa}, {cores} cores, {blas}{_kernel_build()}"


def _kernel_build():
    """``, nnlite vectors 256-bit, GEMM blocks kc 256 mc 96 block 256`` (empty without nnlite)."""
    try:
        from nnlite._kernels import machine
        built = machine()
    except Exception:
        return ""
    bits = f"{built['vector_bits']}-bit" if built["vector_bits"] else "not compiled"
    if built["vector_emulated"]:
        bits += " (emulated)"
    return (f", nnlite vectors {bits}, GEMM blocks kc {built['kc']} mc {built['mc']} "
            f"block {built['block']}")


def kind():
    """A short file-name stem for the machine kind, e.g. ``amd-epyc-avx2``."""
    model, flags = _cpuinfo()
    vendor = "amd" if "AMD" in model else "intel" if "Intel" in model else platform.machine()
    family = "epyc" if "EPYC" in model else "xeon" if "Xeon" in model else "cpu"
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "simd"
    return f"{vendor}-{family}-{isa}"


def write_markdown(name, title, rows, columns, notes=()):
    """Write ``<results>/<kind>-<name>.md``: machine line, notes, and a table of ``rows`` (dicts)."""
    folder = results_dir()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{kind()}-{name}.md")
    lines = [f"# {title}", "", f"Machine: {describe()}", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)
