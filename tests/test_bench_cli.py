"""`nnlite bench`: the benchmarks of the nnlite that runs, installed or a checkout, results only in --results."""
import importlib
import json
import os
import shutil
import subprocess
import sys

import nnlite
from nnlite import cli

from helpers import one_line_error
from helpers import run_cli as run

# The nnlite under test, and the top of the source checkout these tests live in (the
# imported nnlite may be an installed one, whose folder holds no benchmarks/ of its own).
PACKAGE = os.path.dirname(os.path.abspath(nnlite.__file__))
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _files(folder):
    """Every file below ``folder`` except bytecode caches, relative to it."""
    return {os.path.relpath(os.path.join(d, f), folder) for d, dirs, files in os.walk(folder)
            if "__pycache__" not in d.split(os.sep) for f in files}


def _installed_layout(site):
    """nnlite as a wheel lays it out: the package, with benchmarks/ inside it as nnlite.benchmarks."""
    skip = shutil.ignore_patterns("__pycache__", "results")
    shutil.copytree(PACKAGE, site / "nnlite", ignore=skip)
    if not (site / "nnlite" / "benchmarks").is_dir():    # an installed nnlite already carries them
        shutil.copytree(os.path.join(SOURCE, "benchmarks"), site / "nnlite" / "benchmarks", ignore=skip)


def _env(site):
    env = dict(os.environ, PYTHONPATH=str(site))
    for name in ("NNLITE_BENCH_RESULTS", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"):
        env.pop(name, None)
    return env


def _bench(args, cwd, site):
    code = "import sys; from nnlite.cli import main; sys.exit(main(sys.argv[1:]))"
    env = _env(site)
    return subprocess.run([sys.executable, "-c", code] + args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_bench_from_an_installed_package_writes_only_to_results(tmp_path):
    site, cwd = tmp_path / "site", tmp_path / "elsewhere"
    _installed_layout(site)
    # A benchmarks/ folder where the user stands is not the installed nnlite's: it must not run.
    (cwd / "benchmarks").mkdir(parents=True)
    (cwd / "benchmarks" / "__init__.py").write_text("")
    (cwd / "benchmarks" / "run_all.py").write_text("open('decoy-ran', 'w').close()\n")
    before_site, before_cwd = _files(site), _files(cwd)
    results = tmp_path / "mine"
    proc = _bench(["bench", "--quick", "--only", "norm", "--results", str(results)], cwd, site)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    # The runner that ran is the installed one (Python cached what it imported beside it).
    assert any(n.startswith("run_all.") for n in os.listdir(site / "nnlite" / "benchmarks" / "__pycache__"))
    assert _files(cwd) == before_cwd and _files(site) == before_site    # nothing written beside the code
    assert _files(results) == {"latest.json", "latest.md"} and f"results in {results}" in out
    saved = json.loads((results / "latest.json").read_text())
    assert [r["workload"] for r in saved["bench_norm"]] and "## bench_norm" in out
    # The machine goes with the table: on screen before and after it, and in the saved details.
    machine = saved["_meta"]["bench_norm"]["cpu"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert f", {cores} cores, " in machine and any(isa in machine for isa in ("AVX", "SSE", "aarch64", "arm"))
    assert out.count(f"Machine: {machine}") == 2 and out.index(f"Machine: {machine}") < out.index("## bench_norm")
    assert machine in (results / "latest.md").read_text()
    # Run directly, the installed runner has nowhere of its own to write: it asks before measuring.
    proc = subprocess.run([sys.executable, "-m", "nnlite.benchmarks.run_all", "--only", "norm"], cwd=site,
                          env=_env(site), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "--results DIR" in proc.stderr and "## bench_norm" not in proc.stdout
    assert _files(site) == before_site


def test_bench_finds_the_benchmarks_of_the_running_nnlite():
    package, root = cli._benchmarks_package()
    assert os.path.join(root, "nnlite") == PACKAGE
    assert package in ("benchmarks", "nnlite.benchmarks")
    assert os.path.isfile(os.path.join(root, *package.split("."), "run_all.py"))


def test_bench_hands_the_runner_its_options(tmp_path, capsys, monkeypatch):
    calls = []
    def call(argv, cwd):     # the runner, standing in: it writes its tables where --results says
        calls.append((argv, cwd))
        open(os.path.join(argv[argv.index("--results") + 1], "latest.md"), "w").close()
        return 0
    monkeypatch.setattr(cli.subprocess, "call", call)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["bench", "--quick", "--only", "gemm", "--only", "training:mlp", "--results", "mine"], capsys)
    package, root = cli._benchmarks_package()
    assert code == 0 and calls[0] == ([sys.executable, "-m", f"{package}.run_all", "--results",
                                       str(tmp_path / "mine"), "--quick", "--only", "gemm", "--only",
                                       "training:mlp"], root)
    code, out, _ = run(["bench"], capsys)                # default: a fresh temporary folder, named at the end
    results = calls[1][0][calls[1][0].index("--results") + 1]
    assert os.listdir(results) == ["latest.md"] and f"results in {results}" in out
    assert not results.startswith(root)
    shutil.rmtree(results)
    monkeypatch.setattr(cli.subprocess, "call", lambda argv, cwd: 1)     # a runner that stopped before measuring
    code, out, _ = run(["bench", "--only", "gemm", "--results", "empty"], capsys)
    assert code == 1 and "results in" not in out
    # an unknown module is refused in one line before any folder is made or runner started
    code, _, err = run(["bench", "--only", "nope", "--results", "never"], capsys)
    assert code == 2 and one_line_error(err) and "no benchmark 'nope'" in err and "norm" in err
    assert not (tmp_path / "never").exists()
    (tmp_path / "a-file").write_text("")
    code, _, err = run(["bench", "--results", "a-file"], capsys)
    assert code == 2 and one_line_error(err) and "--results" in err and len(calls) == 2


def test_bench_without_benchmarks_says_so(capsys, monkeypatch, tmp_path):
    # An nnlite with neither a nnlite.benchmarks subpackage nor a checkout's benchmarks/ beside it.
    (tmp_path / "nnlite").mkdir()
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(nnlite, "__file__", str(tmp_path / "nnlite" / "__init__.py"))
    code, _, err = run(["bench"], capsys)
    assert code == 2 and one_line_error(err) and "has no benchmarks" in err


def test_the_runner_names_the_extra_that_brings_a_missing_peer(monkeypatch):
    package, root = cli._benchmarks_package()
    monkeypatch.syspath_prepend(root)
    run_all = importlib.import_module(f"{package}.run_all")
    real_find_spec = run_all.importlib.util.find_spec
    monkeypatch.setattr(run_all.importlib.util, "find_spec",
                        lambda name: None if name in ("torch", "jax") else real_find_spec(name))
    torch_line, jax_line = run_all.peers()
    assert torch_line.startswith("PyTorch: not installed") and 'pip install "nnlite[bench]"' in torch_line
    assert jax_line.startswith("JAX: not installed") and 'pip install "nnlite[bench]"' in jax_line
    monkeypatch.setattr(run_all.importlib.util, "find_spec", lambda name: object())
    assert [line.split(":")[0] for line in run_all.peers()] == ["PyTorch", "JAX"]
    assert all("not installed" not in line for line in run_all.peers())

