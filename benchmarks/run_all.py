"""Run the benchmark modules, print their tables, check the speed targets, save the results.

    python benchmarks/run_all.py [--quick] [--only NAME[:WORKLOAD,...]] ... [--results DIR]
    nnlite bench [--quick] [--only ...] [--results DIR]     # the same, from an installed nnlite

``NAME`` is a module (``training`` or ``bench_training``); the optional
workload list is passed to modules whose ``run`` takes ``names`` (for example
``--only recipes:mnist1d-cnn``). The machine (CPU model, vector instruction
set, cores, BLAS) and the peers found (PyTorch, JAX, or the extra that brings
them) are printed first; then each module's rows as a markdown table; then a
summary compares the targets (``bench_training.TARGETS`` and the stricter
``TARGETS_ROUND_TWO``, nnlite time / PyTorch time) with the measured ratios, PASS or
MISS on the machine that ran them.

Results go to ``latest.json`` (rows grouped by module, plus when, how and on
which machine each module was measured) and ``latest.md`` (the tables the docs'
Benchmarks page shows) in ``--results DIR``; from a source checkout the default
is ``benchmarks/results/``, the committed tables. A run of a subset replaces
only the modules it ran.

The benchmarks are one package: ``benchmarks`` in a source checkout (run from
its top folder, ``python -m benchmarks.run_all`` or this file's path) and
``nnlite.benchmarks`` in an installed nnlite, where ``nnlite bench`` runs it.
"""
import argparse
import datetime
import importlib
import importlib.util
import inspect
import json
import os
import platform
import sys
import time
import traceback

if __name__ == "__main__" and not __package__:
    # Started by path (python benchmarks/run_all.py): run as the module it is, with the
    # checkout's top folder first on sys.path, so that its nnlite is the one measured.
    import runpy
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runpy.run_module("benchmarks.run_all", run_name="__main__", alter_sys=True)
    raise SystemExit(0)

# Every contender's idle threads sleep. nnlite's OpenMP threads do by default
# (OMP_WAIT_POLICY=PASSIVE, which torch's OpenMP also reads when imported after
# nnlite); NumPy's OpenBLAS threads otherwise spin for ~0.1 s after each product,
# taking the second core from whichever contender runs next in the paired loop.
# Set before NumPy loads OpenBLAS; an explicit setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import nnlite as nl  # noqa: E402

from .harness import HERE, format_table, ratio, results_dir  # noqa: E402
from .machine import describe  # noqa: E402

META = "_meta"      # key of the per-module measurement details in latest.json
SUMMARY = "summary"


def module_names():
    return sorted(n[:-3] for n in os.listdir(HERE) if n.startswith("bench_") and n.endswith(".py"))


def parse_only(values):
    """``["training", "recipes:mnist1d-cnn"]`` -> ``{"bench_training": None, "bench_recipes": ["mnist1d-cnn"]}``."""
    known = module_names()
    chosen = {}
    for value in values:
        name, _, workloads = value.partition(":")
        name = name if name.startswith("bench_") else "bench_" + name
        if name not in known:
            raise SystemExit(f"run_all: no benchmark module {name!r}; expected one of {', '.join(known)}")
        chosen[name] = [w for w in workloads.split(",") if w] or None
    return chosen


def peers():
    """One line per peer library: found, or which extra brings it."""
    found = lambda name: importlib.util.find_spec(name) is not None
    return ["PyTorch: installed" if found("torch") else
            'PyTorch: not installed, its column stays empty (pip install "nnlite[bench]" brings it and JAX)',
            "JAX: installed, measured beside PyTorch where a module has a JAX contender (bench_jax, bench_scaling)"
            if found("jax") else
            'JAX: not installed, its column stays empty (pip install "nnlite[bench]" or "jax[cpu]" brings it)']


def run_module(name, quick, workloads):
    module = importlib.import_module(f"{__package__}.{name}")
    kwargs = {"quick": quick}
    if workloads is not None:
        if "names" not in inspect.signature(module.run).parameters:
            raise SystemExit(f"run_all: {name}.run() does not take a list of workloads")
        kwargs["names"] = workloads
    return module.run(**kwargs)


def summary(results):
    """One row per target: the measured ratio against the first round's target and the second's.

    A workload without a first-round target (``train mnist1d-cnn``) shows "—" there; the
    verdicts are this machine's, PASS or MISS.
    """
    from .bench_training import TARGETS, TARGETS_ROUND_TWO
    rows = {r["workload"]: r for r in results.get("bench_training", []) + results.get("bench_recipes", [])}
    out = []
    for workload in list(TARGETS) + [w for w in TARGETS_ROUND_TWO if w not in TARGETS]:
        r = rows.get(workload)
        value = None if r is None else ratio(r["nnlite_ms"], r["torch_ms"])
        row = {"workload": workload, "nnlite_ms": r and r["nnlite_ms"], "torch_ms": r and r["torch_ms"],
               "ratio": value}
        for key, targets in (("", TARGETS), ("_round_two", TARGETS_ROUND_TWO)):
            target = targets.get(workload)
            row["target" + key] = target
            row["verdict" + key] = ("—" if target is None else "not run" if value is None
                                    else "PASS" if value <= target else "MISS")
        out.append(row)
    return out


def format_summary(rows):
    fmt = lambda v: "—" if v is None else (f"{v:.3f}" if v < 100 else f"{v:.1f}")
    bound = lambda t: "—" if t is None else f"<= {t}"
    lines = ["| workload | nnlite ms | torch ms | nnlite/torch | target | verdict | round-two target | verdict |",
             "|" + "---|" * 8]
    for r in rows:
        lines.append(f"| {r['workload']} | {fmt(r['nnlite_ms'])} | {fmt(r['torch_ms'])} | {fmt(r['ratio'])} | "
                     f"{bound(r['target'])} | {r['verdict']} | {bound(r.get('target_round_two'))} | "
                     f"{r.get('verdict_round_two', '—')} |")
    return "\n".join(lines)


def load_previous(folder):
    path = os.path.join(folder, "latest.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def to_markdown(results):
    meta = results.get(META, {})
    lines = ["# nnlite benchmarks", "",
             "Times are medians of paired, alternating runs after warm-up (see benchmarks/harness.py); "
             "the ratio nnlite/torch below 1 means nnlite is faster.", ""]
    if results.get(SUMMARY):
        lines += ["## Targets", "", format_summary(results[SUMMARY]), ""]
    for name in sorted(k for k in results if k not in (META, SUMMARY)):
        m = meta.get(name, {})
        lines += [f"## {name}", "",
                  f"Measured {m.get('when', '?')} on {m.get('threads', '?')} threads"
                  f"{' of ' + m['cpu'] if m.get('cpu') else ''}"
                  f"{' (quick)' if m.get('quick') else ''}, {m.get('seconds', 0):.0f} s, "
                  f"OMP_WAIT_POLICY {m.get('omp_wait_policy', 'default')}.", "",
                  format_table(results[name]), ""]
    return "\n".join(lines)


def save(results, folder):
    os.makedirs(folder, exist_ok=True)
    for filename, text in (("latest.json", json.dumps(results, indent=1) + "\n"),
                           ("latest.md", to_markdown(results))):
        path = os.path.join(folder, filename)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)   # a reader (the docs build) never sees half a file


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument("--only", action="append", default=[], metavar="NAME[:WORKLOAD,...]",
                        help="run only this module (repeatable), e.g. training or recipes:mnist1d-cnn")
    parser.add_argument("--results", metavar="DIR",
                        help="where latest.json and latest.md go (default: benchmarks/results in a source checkout)")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result files")
    args = parser.parse_args(argv)
    chosen = parse_only(args.only) if args.only else dict.fromkeys(module_names())
    if args.results:   # through the environment, so modules and their child processes see it too
        os.environ["NNLITE_BENCH_RESULTS"] = os.path.abspath(args.results)
    folder = None if args.no_save else results_dir()   # refused before anything is measured
    # Ratios measured on one CPU say little about another: the machine goes with every table.
    machine = describe()
    print("\n".join([f"Machine: {machine}"] + peers()), flush=True)

    results = load_previous(folder) if folder else {}
    results.setdefault(META, {})
    failed = []
    for name, workloads in chosen.items():
        print(f"\n## {name}\n", flush=True)
        start = time.perf_counter()
        try:
            rows = run_module(name, args.quick, workloads)
            print(format_table(rows), flush=True)
        except Exception:   # one broken module must not hide the others' numbers
            traceback.print_exc()
            failed.append(name)
            continue
        results[name] = rows
        results[META][name] = {"when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                               "threads": nl.get_num_threads(), "quick": args.quick,
                               "seconds": time.perf_counter() - start, "machine": platform.machine(),
                               "cpu": machine,
                               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                               "python": platform.python_version()}
    results[SUMMARY] = summary(results)
    print("\n## Targets (nnlite time / PyTorch time)\n\n" + format_summary(results[SUMMARY]), flush=True)
    print(f"\nMachine: {machine}", flush=True)
    if folder:
        save(results, folder)
        print(f"saved {os.path.join(folder, 'latest.json')} and latest.md")
    if failed:
        print(f"run_all: failed modules: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
