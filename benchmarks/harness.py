"""Shared timing for nnlite's benchmarks.

Shared machines are noisy, so every comparison is *paired*: the contenders run
alternately in the same loop, after warm-up, and we compare medians. Each
``bench_*.py`` module defines ``run(quick=False) -> list[dict]`` whose rows hold
``workload`` and the median milliseconds of each contender (``nnlite_ms``,
``torch_ms``, ``numpy_ms``; None when a contender is missing), plus optional
``note``. ``python benchmarks/run_all.py`` prints and saves them together; it
also makes every library's idle threads sleep, so that threads one contender
leaves spinning do not slow the next (run a module through it for fair numbers).
"""
import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def paired_medians(contenders, repeat=21, warmup=3, number=1):
    """Time each callable in ``contenders`` (name -> fn) alternately; medians in ms.

    ``number`` calls make one sample, for calls too short to time one at a time. The
    order rotates every round, so each contender follows each other one equally often:
    whoever runs right after the slow NumPy twin finds the caches cold, and whoever runs
    after a contender on the same arrays finds them warm.
    """
    names = [n for n, fn in contenders.items() if fn is not None]
    for _ in range(warmup):
        for n in names:
            contenders[n]()
    samples = {n: [] for n in names}
    for r in range(repeat):
        for n in names[r % len(names):] + names[:r % len(names)]:
            fn = contenders[n]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples[n].append((time.perf_counter() - t0) * 1e3 / number)
    return {n: (statistics.median(samples[n]) if n in samples else None) for n in contenders}


def thread_speedup(fn, repeat):
    """nnlite's median time of ``fn`` on 1 thread over its median on 2 threads, sampled alternately."""
    import nnlite._kernels as kernels

    old = kernels.get_num_threads()
    samples = {1: [], 2: []}
    try:
        for _ in range(repeat):
            for n in (1, 2):
                kernels.set_num_threads(n)
                fn()  # one untimed call after each switch: BLAS and OpenMP pools settle
                t0 = time.perf_counter()
                fn()
                samples[n].append(time.perf_counter() - t0)
    finally:
        kernels.set_num_threads(old)
    return statistics.median(samples[1]) / statistics.median(samples[2])


def ratio(a, b):
    """a / b, or None when either is missing."""
    return None if a is None or b is None or b == 0 else a / b


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


CONTENDER_COLUMNS = {"workload", "nnlite_ms", "torch_ms", "numpy_ms", "note"}


def format_table(rows):
    """A markdown table: workload, times, and nnlite's ratio against each contender.

    Rows of another shape get a plain table of their own columns, so that nothing they
    hold is dropped: rows of a module measuring something other than nnlite against its
    contenders (bench_denormal), or with columns of their own (bench_jax's JAX times).
    Keys starting with ``_`` are a module's own data for its other tables; they are left out.
    """
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    if any("workload" not in r or set(r) - CONTENDER_COLUMNS for r in rows):
        return plain_table(rows)
    head = "| workload | nnlite ms | torch ms | numpy ms | nnlite/torch | nnlite/numpy | note |"
    lines = [head, "|" + "---|" * 7]
    fmt = lambda v: "—" if v is None else (f"{v:.3f}" if v < 100 else f"{v:.1f}")
    for r in rows:
        n, t, p = r.get("nnlite_ms"), r.get("torch_ms"), r.get("numpy_ms")
        lines.append(f"| {r['workload']} | {fmt(n)} | {fmt(t)} | {fmt(p)} | "
                     f"{fmt(ratio(n, t))} | {fmt(ratio(n, p))} | {r.get('note', '')} |")
    return "\n".join(lines)


def plain_table(rows):
    """A markdown table with one column per key of the rows, in the order they first appear."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def package_root():
    """The folder holding the top package of these benchmarks and the nnlite they measure.

    In a source checkout the benchmarks are the package ``benchmarks`` next to ``nnlite/``;
    installed from a wheel they are ``nnlite.benchmarks``, inside nnlite. A fresh interpreter
    started in this folder imports the same benchmarks and the same nnlite as this one.
    """
    root = HERE
    for _ in __package__.split("."):
        root = os.path.dirname(root)
    return root


def results_dir():
    """Where result tables go: ``NNLITE_BENCH_RESULTS`` (``--results`` sets it), else the checkout's results/.

    An installed nnlite has no default: its benchmarks sit in site-packages, which
    is no place for a user's files (and may not be writable).
    """
    chosen = os.environ.get("NNLITE_BENCH_RESULTS")
    if chosen:
        return os.path.abspath(chosen)
    if __package__ == "benchmarks":
        return os.path.join(HERE, "results")
    raise SystemExit("nnlite benchmarks: say where the results go, with --results DIR (or NNLITE_BENCH_RESULTS)")
