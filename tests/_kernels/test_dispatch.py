"""The seam: every twin has a compiled kernel, backends switch, threads are configurable."""
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import threads

import nnlite as nl
import nnlite._kernels as kernels
from nnlite._kernels import K, reference


def test_every_reference_twin_has_a_compiled_kernel():
    assert kernels._threads is not None, "the compiled extension modules are not built"
    missing = sorted(set(reference.__all__) - set(kernels.compiled_kernels()))
    assert missing == []


def test_backends_switch_the_functions_behind_K():
    try:
        nl.set_backend("reference")
        assert K.gemm is reference.gemm and nl.get_backend() == "reference"
        nl.set_backend("cython")
        assert K.gemm is not reference.gemm and nl.get_backend() == "cython"
    finally:
        nl.set_backend("cython")
    with pytest.raises(ValueError, match="'cython' or 'reference'"):
        nl.set_backend("cuda")


def test_a_model_gives_the_same_numbers_on_both_backends():
    x = nl.randn(8, 5, dtype=nl.float64)
    w = nl.randn(5, 3, dtype=nl.float64, requires_grad=True)

    def run():
        w.grad = None
        loss = nl.log_softmax(nl.gelu(x @ w), dim=1).sum()
        loss.backward()
        return loss.item(), w.grad.data.copy()

    try:
        nl.set_backend("reference")
        ref_loss, ref_grad = run()
    finally:
        nl.set_backend("cython")
    loss, grad = run()
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)


def test_environment_variable_selects_the_backend():
    env = dict(os.environ, NNLITE_BACKEND="reference")
    out = subprocess.run([sys.executable, "-c", "import nnlite; print(nnlite.get_backend())"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "reference"


def test_thread_count_is_configurable_and_validated():
    old = nl.get_num_threads()
    try:
        nl.set_num_threads(1)
        assert nl.get_num_threads() == 1 and kernels._threads.get_num_threads() == 1
    finally:
        nl.set_num_threads(old)
    for bad in (0, -2, 1.5, "2", True, np.int64(0), np.float64(2)):
        with pytest.raises(ValueError, match="positive int"):
            nl.set_num_threads(bad)


def test_thread_count_may_be_a_numpy_int():
    # as torch.set_num_threads takes one (a count read off an array, np.int64(2))
    old = nl.get_num_threads()
    try:
        nl.set_num_threads(np.int64(1))
        assert type(nl.get_num_threads()) is int and nl.get_num_threads() == 1
        assert kernels._threads.get_num_threads() == 1
    finally:
        nl.set_num_threads(old)


@pytest.mark.parametrize("count", [kernels.MAX_THREADS + 1, 100_000, 2 ** 31])
def test_thread_count_above_the_limit_is_refused_and_changes_nothing(count):
    # OpenMP builds a team on the calling thread's stack: a parallel kernel under 100000
    # threads overflowed it (a segfault), and 2**31 met the C int as an OverflowError after
    # get_num_threads() already reported it
    old = nl.get_num_threads()
    with pytest.raises(ValueError, match=f"at most {kernels.MAX_THREADS}, got {count}"):
        nl.set_num_threads(count)
    assert nl.get_num_threads() == old and kernels._threads.get_num_threads() == old


def test_omp_num_threads_above_the_limit_is_not_the_default():
    for value in ("100000", str(2 ** 31)):
        env = dict(os.environ, OMP_NUM_THREADS=value)
        out = subprocess.run([sys.executable, "-c", "import nnlite; print(nnlite.get_num_threads())"],
                             capture_output=True, text=True, env=env, check=True)
        assert 1 <= int(out.stdout.strip()) <= kernels.MAX_THREADS


def test_omp_num_threads_sets_the_default():
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", "import nnlite; print(nnlite.get_num_threads())"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "3"


def test_freed_memory_setting_applies_on_glibc_and_can_be_turned_off(monkeypatch):
    from nnlite._kernels import allocator

    glibc = bool(getattr(os, "confstr", lambda name: None)("CS_GNU_LIBC_VERSION"))
    assert allocator.keep_freed_memory() is glibc
    monkeypatch.setenv("NNLITE_KEEP_FREED_MEMORY", "0")
    assert allocator.keep_freed_memory() is False


def _train(backend, make_model, x, y, steps):
    """Losses of ``steps`` AdamW steps from the same seed on one backend."""
    try:
        nl.set_backend(backend)
        nl.manual_seed(0)
        model = make_model()
        opt = nl.optim.AdamW(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(steps):
            out = model(x)
            loss = nl.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        return losses
    finally:
        nl.set_backend("cython")


def _small_cnn():
    nn = nl.nn
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 8 * 8, 10))


def _char_transformer():
    from nnlite.recipes import CharTransformer
    return CharTransformer(29, block_size=32, d_model=256, nhead=4, num_layers=2, dim_feedforward=256)


@pytest.mark.parametrize("make_model,shapes", [
    (_small_cnn, ((16, 3, 16, 16), (16,), 10)),
    (_char_transformer, ((16, 32), (16, 32), 29)),
], ids=["cnn", "transformer"])
def test_training_follows_the_reference_backend(make_model, shapes):
    """A few training steps on the compiled kernels (two threads, every parallel path on)
    track the NumPy twins' losses: a kernel that is wrong only in parallel, or only on
    shapes the kernel tests do not draw, shows here as a loss that drifts away."""
    x_shape, y_shape, classes = shapes
    rng = np.random.default_rng(0)
    if len(x_shape) == 2:   # token ids
        x = nl.from_numpy(rng.integers(0, classes, x_shape))
    else:
        x = nl.from_numpy(rng.standard_normal(x_shape).astype(np.float32))
    y = nl.from_numpy(rng.integers(0, classes, y_shape))
    reference_losses = _train("reference", make_model, x, y, 12)
    with threads(2):
        losses = _train("cython", make_model, x, y, 12)
    assert reference_losses[-1] < reference_losses[0] - 0.1     # it learns at all
    np.testing.assert_allclose(losses, reference_losses, rtol=2e-3)


def test_the_kernel_table_lists_every_compiled_function_and_its_twin():
    import importlib

    from nnlite._kernels.table import KERNELS, MODULES
    names = [name for name, _, _ in KERNELS]
    assert len(names) == len(set(names)) and sorted(names) == reference.__all__
    for name, module, twins in KERNELS:
        compiled = importlib.import_module(f"nnlite._kernels.{module}")
        assert getattr(compiled, name) is kernels._compiled[name]
        assert twins.__name__ == f"nnlite._kernels.reference.{module}"   # twin beside it by name
        assert getattr(twins, name) is getattr(reference, name)
    for module in MODULES:
        compiled = importlib.import_module(f"nnlite._kernels.{module}")
        assert set(compiled.__all__) == {n for n, m, _ in KERNELS if m == module}


def test_each_twin_module_lists_every_twin_it_defines_and_nothing_else():
    # __all__ is written out by hand so a reader sees the public twins; this keeps the lists whole.
    import importlib
    import pkgutil

    def public_functions(module, defined_here=True):
        return sorted(name for name, value in vars(module).items()
                      if callable(value) and not name.startswith("_")
                      and (not defined_here or getattr(value, "__module__", None) == module.__name__))

    modules = [info.name for info in pkgutil.iter_modules(reference.__path__)]
    assert "_gemm" in modules and "_elementwise" in modules
    for name in modules:
        if name == "_denormal":   # not a twin of table rows: reached through nnlite.denormal (its __all__ is [])
            continue
        module = importlib.import_module(f"{reference.__name__}.{name}")
        assert sorted(module.__all__) == public_functions(module), name
    assert reference.__all__ == public_functions(reference, defined_here=False)
