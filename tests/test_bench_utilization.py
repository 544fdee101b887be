"""benchmarks/step_flops.py and bench_utilization.py: a training step's FLOPs, counted by hand, and its share of peak."""
import importlib

import numpy as np
import pytest

import nnlite as nl
from nnlite import cli, nn
from nnlite.nn import functional as F


@pytest.fixture
def bench(monkeypatch):
    """Imports a module of the benchmarks package (``benchmarks`` in a checkout, ``nnlite.benchmarks`` installed)."""
    package, root = cli._benchmarks_package()
    monkeypatch.syspath_prepend(root)
    return lambda name: importlib.import_module(f"{package}.{name}")


def test_a_linear_layer_on_the_data_does_its_product_twice(bench):
    # Forward: 100 rows x 40 inputs x 10 outputs multiply-adds, 2 FLOPs each. Backward: the
    # weight gradient (the same multiply-adds again), but no input gradient, as x needs none.
    step_flops = bench("step_flops").step_flops
    forward = 2 * 100 * 40 * 10
    assert step_flops(nn.Linear(40, 10), (nl.randn(100, 40),)) == 2 * forward
    assert step_flops(nn.Linear(40, 10), (nl.randn(100, 40, requires_grad=True),)) == 3 * forward


def test_only_the_first_layer_skips_the_input_gradient(bench):
    step_flops = bench("step_flops").step_flops
    model = nn.Sequential(nn.Linear(40, 10), nn.ReLU(), nn.Linear(10, 5))
    first, second = 2 * 100 * 40 * 10, 2 * 100 * 10 * 5
    assert step_flops(model, (nl.randn(100, 40),)) == 2 * first + 3 * second
    fused = nn.fuse_linear_relu(nn.Sequential(nn.Linear(40, 10), nn.ReLU(), nn.Linear(10, 5)))
    assert step_flops(fused, (nl.randn(100, 40),)) == 2 * first + 3 * second   # LinearReLU is still a Linear


def test_convolution_counts_one_dot_product_per_output_value(bench):
    step_flops = bench("step_flops").step_flops
    # 2 images x 8 channels x 10 x 10 outputs (padding 1 keeps the size), each a dot product
    # over 3 channels x 3 x 3 taps; with groups=2 each output sees only its group's 2 of 4 channels.
    x = nl.randn(2, 3, 10, 10, requires_grad=True)
    assert step_flops(nn.Conv2d(3, 8, 3, padding=1), (x,)) == 3 * (2 * (3 * 3 * 3) * (2 * 8 * 10 * 10))
    grouped = nn.Conv2d(4, 8, 3, groups=2)
    assert step_flops(grouped, (nl.randn(1, 4, 5, 5),)) == 2 * (2 * (2 * 3 * 3) * (1 * 8 * 3 * 3))


def test_the_causal_transformer_step_by_hand(bench):
    bench_transformer = bench("bench_transformer")
    D, V, FF, B, T = bench_transformer.D_MODEL, bench_transformer.VOCAB, bench_transformer.FF, 2, 8
    model = bench_transformer.build(nl.nn, T, F)
    rows = B * T
    block = (2 * rows * D * 3 * D          # the query, key and value projections
             + 2 * B * T * T * D * 2       # scores Q K^T and weights @ V, all heads (the mask is not skipped)
             + 2 * rows * D * D            # the output projection
             + 2 * 2 * rows * D * FF)      # the feed-forward pair
    head = 2 * rows * D * V                # the tied output layer, F.linear on the embedding's weight
    # Every product's input comes from the embeddings, which are trained: all need input gradients.
    assert bench_transformer.step_products(model, seq=T, size=B) == 3 * (bench_transformer.LAYERS * block + head)


def test_a_row_is_the_share_of_peak_of_each_contender(bench):
    row = bench("bench_utilization").utilization_row("step", 2e9, 10.0, None, peak=400.0)
    assert row["GFLOP per step"] == 2.0
    assert row["nnlite GFLOP/s"] == pytest.approx(200.0) and row["nnlite % of peak"] == pytest.approx(50.0)
    assert row["torch GFLOP/s"] is None and row["torch % of peak"] is None


def test_the_peak_is_the_best_contender(bench, monkeypatch):
    utilization = bench("bench_utilization")
    monkeypatch.setattr(utilization, "PEAK_SIZE", 64)
    times, rates = utilization.sgemm_peak(None, repeat=1)
    assert times["torch"] is None and rates["torch"] is None
    assert rates["peak"] == max(rates["K.gemm"], rates["numpy"]) > 0
    assert rates["numpy"] == pytest.approx(2 * 64 ** 3 / (times["numpy"] * 1e-3) / 1e9)
    assert np.isfinite(rates["peak"])
