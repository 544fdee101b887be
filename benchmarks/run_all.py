"""Run the benchmark modules, print their tables, check the speed targets, save the results.

    python benchmarks/run_all.py [--quick] [--only NAME[:WORKLOAD,...]] ...

``NAME`` is a module (``training`` or ``bench_training``); the optional
workload list is passed to modules whose ``run`` takes ``names`` (for example
``--only recipes:mnist1d-cnn``). Each module's rows are printed as a markdown
table; then a summary compares the issue's targets (``bench_training.TARGETS``,
nnlite time / PyTorch time) with the measured ratios, PASS or MISS.

Results go to ``benchmarks/results/latest.json`` (rows grouped by module, plus
when and how each module was measured) and ``latest.md`` (the tables the docs'
Benchmarks page shows). A run of a subset replaces only the modules it ran.
"""
import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import sys
import time
import traceback

# Every contender's idle threads sleep. nnlite's OpenMP threads do by default
# (OMP_WAIT_POLICY=PASSIVE, which torch's OpenMP also reads when imported after
# nnlite); NumPy's OpenBLAS threads otherwise spin for ~0.1 s after each product,
# taking the second core from whichever contender runs next in the paired loop.
# Set before NumPy loads OpenBLAS; an explicit setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

HERE = os.path.dirname(os.path.abspath(__file__))
# `nnlite bench` names the nnlite it runs (the installed package, compiled) and where results
# go; run directly from a checkout, the checkout's package is measured and results stay here.
sys.path.insert(0, os.environ.get("NNLITE_BENCH_PACKAGE") or os.path.dirname(HERE))
sys.path.insert(0, HERE)

from harness import format_table, ratio  # noqa: E402

import nnlite as nl  # noqa: E402

RESULTS = os.environ.get("NNLITE_BENCH_RESULTS") or os.path.join(HERE, "results")
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


def run_module(name, quick, workloads):
    module = importlib.import_module(name)
    kwargs = {"quick": quick}
    if workloads is not None:
        if "names" not in inspect.signature(module.run).parameters:
            raise SystemExit(f"run_all: {name}.run() does not take a list of workloads")
        kwargs["names"] = workloads
    return module.run(**kwargs)


def summary(results):
    """One row per target: the measured ratio against the target, PASS or MISS."""
    from bench_training import TARGETS
    rows = {r["workload"]: r for r in results.get("bench_training", [])}
    out = []
    for workload, target in TARGETS.items():
        r = rows.get(workload)
        value = None if r is None else ratio(r["nnlite_ms"], r["torch_ms"])
        verdict = "not run" if value is None else ("PASS" if value <= target else "MISS")
        out.append({"workload": workload, "nnlite_ms": r and r["nnlite_ms"], "torch_ms": r and r["torch_ms"],
                    "ratio": value, "target": target, "verdict": verdict})
    for r in results.get("bench_recipes", []):
        if r["workload"] == "train mnist1d-cnn":   # the full-run workload of the issue; no numeric target
            out.append({"workload": r["workload"], "nnlite_ms": r["nnlite_ms"], "torch_ms": r["torch_ms"],
                        "ratio": ratio(r["nnlite_ms"], r["torch_ms"]), "target": None, "verdict": "reported"})
    return out


def format_summary(rows):
    fmt = lambda v: "—" if v is None else (f"{v:.3f}" if v < 100 else f"{v:.1f}")
    lines = ["| workload | nnlite ms | torch ms | nnlite/torch | target | verdict |", "|" + "---|" * 6]
    for r in rows:
        lines.append(f"| {r['workload']} | {fmt(r['nnlite_ms'])} | {fmt(r['torch_ms'])} | {fmt(r['ratio'])} | "
                     f"{'—' if r['target'] is None else '<= ' + str(r['target'])} | {r['verdict']} |")
    return "\n".join(lines)


def load_previous():
    path = os.path.join(RESULTS, "latest.json")
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
                  f"{' (quick)' if m.get('quick') else ''}, {m.get('seconds', 0):.0f} s, "
                  f"OMP_WAIT_POLICY {m.get('omp_wait_policy', 'default')}.", "",
                  format_table(results[name]), ""]
    return "\n".join(lines)


def save(results):
    os.makedirs(RESULTS, exist_ok=True)
    for filename, text in (("latest.json", json.dumps(results, indent=1, sort_keys=True) + "\n"),
                           ("latest.md", to_markdown(results))):
        path = os.path.join(RESULTS, filename)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)   # a reader (the docs build) never sees half a file


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument("--only", action="append", default=[], metavar="NAME[:WORKLOAD,...]",
                        help="run only this module (repeatable), e.g. training or recipes:mnist1d-cnn")
    parser.add_argument("--no-save", action="store_true", help="print only; leave benchmarks/results alone")
    args = parser.parse_args(argv)
    chosen = parse_only(args.only) if args.only else dict.fromkeys(module_names())

    results = load_previous()
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
                               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
                               "python": platform.python_version()}
    results[SUMMARY] = summary(results)
    print("\n## Targets (nnlite time / PyTorch time)\n\n" + format_summary(results[SUMMARY]), flush=True)
    if not args.no_save:
        save(results)
        print(f"\nsaved {os.path.relpath(RESULTS)}/latest.json and latest.md")
    if failed:
        print(f"run_all: failed modules: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
