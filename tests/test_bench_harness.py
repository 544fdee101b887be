"""benchmarks/harness.py: the tables `nnlite bench` prints for every benchmark module."""
import importlib.util
import os

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def _harness():
    # Loaded from its file under its own name: other tests import stand-in modules called "harness".
    spec = importlib.util.spec_from_file_location("nnlite_bench_harness", os.path.join(BENCHMARKS, "harness.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_against_contenders_get_the_ratio_table():
    table = _harness().format_table([{"workload": "gemm 256", "nnlite_ms": 1.0, "torch_ms": 2.0, "numpy_ms": None}])
    assert table.splitlines()[0].startswith("| workload | nnlite ms | torch ms")
    assert "| gemm 256 | 1.000 | 2.000 | — | 0.500 | — |  |" in table


def test_rows_of_another_shape_get_a_table_of_their_own_columns():
    # bench_denormal's rows: no workload, no contenders (they once stopped `nnlite bench` with a KeyError).
    rows = [{"operands": "normal", "flush": "off", "nnlite_ms": 0.25, "numpy_ms": 0.5},
            {"operands": "10% subnormal", "flush": "on", "nnlite_ms": 0.3, "numpy_ms": None, "note": "x"}]
    lines = _harness().format_table(rows).splitlines()
    assert lines[0] == "| operands | flush | nnlite_ms | numpy_ms | note |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| normal | off | 0.250 | 0.500 | — |"
    assert lines[3] == "| 10% subnormal | on | 0.300 | — | x |"


def test_rows_with_columns_of_their_own_keep_them():
    # bench_jax's rows: a JAX time beside PyTorch's, which the ratio table has no column for.
    rows = [{"workload": "MLP step", "nnlite_ms": 1.0, "torch_ms": 2.0, "jax_ms": 4.0, "nnlite/jax": 0.25}]
    lines = _harness().format_table(rows).splitlines()
    assert lines[0] == "| workload | nnlite_ms | torch_ms | jax_ms | nnlite/jax |"
    assert lines[2] == "| MLP step | 1.000 | 2.000 | 4.000 | 0.250 |"


def test_the_targets_summary_gives_each_round_its_own_verdict():
    import sys
    root = os.path.dirname(BENCHMARKS)
    sys.path.insert(0, root)
    try:
        from benchmarks import run_all
    finally:
        sys.path.remove(root)
    results = {"bench_training": [{"workload": "MLP 784-256-256-10 b128 Adam step", "nnlite_ms": 1.3, "torch_ms": 2.0},
                                  {"workload": "import", "nnlite_ms": 100.0, "torch_ms": 1000.0}],
               "bench_recipes": [{"workload": "train mnist1d-cnn", "nnlite_ms": 450.0, "torch_ms": 1000.0}]}
    rows = {r["workload"]: r for r in run_all.summary(results)}
    mlp = rows["MLP 784-256-256-10 b128 Adam step"]   # 0.65: under the first round's 0.8, over the second's 0.6
    assert (mlp["verdict"], mlp["verdict_round_two"]) == ("PASS", "MISS")
    recipe = rows["train mnist1d-cnn"]                 # a second-round target only
    assert (recipe["target"], recipe["verdict"], recipe["verdict_round_two"]) == (None, "—", "PASS")
    assert rows["LeNet-5 b64 SGD-momentum step"]["verdict_round_two"] == "not run"
    table = run_all.format_summary(run_all.summary(results))
    assert "| train mnist1d-cnn | 450.0 | 1000.0 | 0.450 | — | — | <= 0.5 | PASS |" in table
