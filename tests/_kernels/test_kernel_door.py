"""The kernel door: what every kernel refuses before it touches raw memory, on both backends.

Regression tests for defects found by adversarial probing: byte-swapped arrays read
as garbage, shape products that wrap around, running statistics that alias their
input, precision lost in cross_entropy's backward for large logits, a half-swapped
kernel table, and a child process that hangs after ``fork``.
"""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from helpers import run_fresh, torch_or_skip

import nnlite as nl
import nnlite._kernels as kernels
from nnlite._kernels import K, checks, reference

F32 = np.float32


def _calls():
    """One valid call of every kernel: name -> (args). Arrays are small and fresh each time."""
    r = np.random.default_rng(0)

    def a(*shape):
        return r.standard_normal(shape).astype(F32)

    def buf(n=6):
        return np.zeros(n, F32)

    x4, w4 = a(2, 3, 6, 6), a(4, 3, 3, 3)
    g4 = a(2, 4, 4, 4)
    pooled = reference.max_pool2d_forward(x4, (2, 2), (2, 2), (0, 0), (1, 1), False)
    logits, target = a(4, 5), np.array([0, 1, 2, 4], dtype=np.int64)
    lse = reference.cross_entropy_forward(logits, target, None, -100, 0.0, "mean")[1]
    x3 = a(4, 3, 5)
    stats = reference.batch_norm_forward(x3, None, None, None, None, True, 0.1, 1e-5, "relu")
    rows = a(4, 6)
    ln = reference.layer_norm_forward(rows, a(6), a(6), 1e-5)
    gn = reference.group_norm_forward(x3, 3, a(3), a(3), 1e-5)
    rms = reference.rms_norm_forward(rows, a(6), 1e-6)
    codes, weights = r.integers(0, 256, (3, 8)).astype(np.uint8), r.integers(-127, 128, (4, 8)).astype(np.int8)
    qkv = a(2, 3, 12)   # two heads of width 2
    attention_weights = reference.packed_attention_forward(qkv, 2, 0.5, None, True)[1]
    return {
        "gemm": (a(3, 4), a(4, 5)),
        "bmm": (a(2, 3, 4), a(2, 4, 5)),
        "gemm_tiled": (a(3, 4), a(4, 5)),
        "linear_forward": (a(3, 4), a(5, 4), a(5), None),
        "bias_grad": (a(3, 4),),
        "relu_forward": (a(7),), "relu_backward": (a(7), a(7)),
        # GELU with its saved part (Phi(x)): the optional array is refused like the others
        "gelu_forward": (a(7), "none", True), "gelu_backward": (a(7), a(7), "none", a(7)),
        "erf_forward": (a(7),), "tanh_forward": (a(7),), "tanh_backward": (a(7), a(7)),
        "sigmoid_forward": (a(7),), "sigmoid_backward": (a(7), a(7)),
        "silu_forward": (a(7),), "silu_backward": (a(7), a(7)),
        "leaky_relu_forward": (a(7), 0.1, True), "hardtanh_forward": (a(7), -1.0, 1.0, True),
        "hardsigmoid_forward": (a(7), True), "masked_slope_backward": (a(7), a(7) > 0, 1.0, 0.1),
        "hardswish_forward": (a(7),), "hardswish_backward": (a(7), a(7)),
        "elu_forward": (a(7), 1.0, 1.0, True),
        "softplus_forward": (a(7), 1.0, 20.0), "softplus_backward": (a(7), a(7), 1.0, 20.0),
        "mish_forward": (a(7),), "mish_backward": (a(7), a(7)),
        "logsigmoid_forward": (a(7),), "logsigmoid_backward": (a(7), a(7)),
        "dropout_forward": (a(7), r.random(7).astype(F32), 0.5),
        "embedding_forward": (a(5, 3), np.array([0, 4, 2], dtype=np.int64)),
        "embedding_backward": (a(3, 3), np.array([0, 4, 2], dtype=np.int64), 5, -1),
        "softmax_forward": (a(3, 4),), "softmax_backward": (a(3, 4), a(3, 4)),
        "scaled_softmax_forward": (a(6, 4), 0.5, a(3, 4)),
        "log_softmax_forward": (a(3, 4),), "log_softmax_backward": (a(3, 4), a(3, 4)),
        "cross_entropy_forward": (logits, target, a(5), -100, 0.0, "mean"),
        "cross_entropy_backward": (np.array(1.0, F32), logits, target, None, lse, -100, 0.0, "mean"),
        "packed_attention_forward": (qkv, 2, 0.5, a(3, 3), True),
        "packed_attention_backward": (a(2, 3, 4), qkv, attention_weights, 2, 0.5),
        "conv2d_forward": (x4, w4, a(4), (1, 1), (0, 0), (1, 1), 1),
        "conv2d_backward_input": (g4, w4, x4.shape, (1, 1), (0, 0), (1, 1), 1),
        "conv2d_backward_weight": (g4, x4, w4.shape, (1, 1), (0, 0), (1, 1), 1),
        "conv2d_backward_bias": (g4,),
        "max_pool2d_forward": (x4, (2, 2), (2, 2), (0, 0), (1, 1), False),
        "max_pool2d_backward": (pooled[0], pooled[1], x4.shape),
        "avg_pool2d_forward": (x4, (2, 2), (2, 2), (0, 0), False, True, None),
        "avg_pool2d_backward": (a(2, 3, 3, 3), x4.shape, (2, 2), (2, 2), (0, 0), False, True, None),
        "batch_norm_forward": (x3, a(3), a(3), buf(3), np.ones(3, F32), True, 0.1, 1e-5),
        "batch_norm_backward": (a(4, 3, 5), x3, a(3), stats[1], stats[2], True, stats[3]),
        "layer_norm_forward": (rows, a(6), a(6), 1e-5),
        "layer_norm_backward": (a(4, 6), rows, a(6), ln[1], ln[2]),
        "group_norm_forward": (x3, 3, a(3), a(3), 1e-5),
        "group_norm_backward": (a(4, 3, 5), x3, 3, a(3), gn[1], gn[2]),
        "rms_norm_forward": (rows, a(6), 1e-6),
        "rms_norm_backward": (a(4, 6), rows, a(6), rms[1]),
        "sgd_step": (a(6), a(6), buf(), 0.1, 0.9, 0.0, False, 0.0, False, True),
        "adagrad_step": (a(6), a(6), buf(), 1, 0.1, 0.0, 0.0, 1e-10, False),
        "rmsprop_step": (a(6), a(6), buf(), None, None, 0.01, 0.99, 1e-8, 0.0, 0.0, False, False),
        "adam_step": (a(6), a(6), buf(), buf(), None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False,
                      False, False),
        "lstm_step_forward": (a(2, 12), a(2, 12), a(12), a(2, 3), a(2, 12), a(2, 3), a(2, 3)),
        "lstm_step_backward": (a(2, 3), a(2, 3), a(2, 12), a(2, 3), a(2, 3), a(2, 12)),
        "gru_step_forward": (a(2, 9), a(2, 9), a(9), a(2, 3), a(2, 12), a(2, 3)),
        "gru_step_backward": (a(2, 3), a(2, 12), a(2, 3), a(2, 9), a(2, 9), a(2, 3)),
        "rnn_step_forward": (a(2, 3), a(2, 3), a(3), a(2, 3), False),
        "rnn_step_backward": (a(2, 3), a(2, 3), a(2, 3), True),
        "recurrent_scan_forward": ("LSTM", a(2, 2, 12), a(12, 3), a(12), a(3, 2, 3), a(3, 2, 3), a(2, 2, 12)),
        "recurrent_scan_backward": ("LSTM", a(2, 2, 2, 3), a(12, 3), a(3, 2, 3), a(3, 2, 3), a(2, 2, 12),
                                    a(2, 2, 12), None, a(2, 3), a(2, 3)),
        "int8_linear": (codes, 5, weights, weights.sum(1, dtype=np.int32), a(4), a(4)),
        "quantize_u8": (a(7), 0.05, 7),
        "dynamic_qparams": (-1.0, 2.0),
        "pack_int8_weight": (weights,),
        "quantized_linear": (a(3, 8), reference.pack_int8_weight(weights), weights.sum(1, dtype=np.int32),
                             np.abs(a(4)), a(4)),
    }


def _backends():
    return {"cython": kernels._compiled, "reference": {n: getattr(reference, n) for n in reference.__all__}}


def test_the_call_table_covers_every_kernel():
    assert sorted(_calls()) == sorted(reference.__all__)


@pytest.mark.parametrize("backend", ["cython", "reference"])
@pytest.mark.parametrize("name", sorted(reference.__all__))
def test_every_kernel_runs_its_valid_call(backend, name):
    _backends()[backend][name](*_calls()[name])


@pytest.mark.parametrize("backend", ["cython", "reference"])
@pytest.mark.parametrize("name", sorted(reference.__all__))
def test_every_kernel_refuses_byte_swapped_arrays(backend, name):
    """Issue 14, item 3: '>f4' through relu gave 1e-41, through adam_step corrupt parameters."""
    fn = _backends()[backend][name]
    n_arrays = 0
    for i, arg in enumerate(_calls()[name]):
        if not isinstance(arg, np.ndarray) or arg.ndim == 0 or arg.dtype.itemsize == 1:
            continue   # one-byte codes (int8, uint8) have no byte order
        n_arrays += 1
        args = list(_calls()[name])
        args[i] = arg.astype(arg.dtype.newbyteorder("S"))   # same values, swapped bytes
        with pytest.raises(TypeError, match=r"byte order|>[fi][48]"):
            fn(*args)
    # dynamic_qparams takes only numbers, pack_int8_weight only one-byte codes
    assert n_arrays >= 1 or name in ("dynamic_qparams", "pack_int8_weight")


def test_tensors_convert_non_native_byte_order_on_the_way_in():
    data = np.array([-1.0, 2.0, 3.0], dtype=">f4" if sys.byteorder == "little" else "<f4")
    for t in (nl.tensor(data), nl.Tensor(data)):
        assert t.data.dtype.isnative and t.data.dtype == np.float32
        np.testing.assert_array_equal(t.relu().data, [0.0, 2.0, 3.0])


def test_from_numpy_refuses_non_native_byte_order_at_once():
    data = np.array([1.0, 2.0], dtype=">f8" if sys.byteorder == "little" else "<f8")
    with pytest.raises(TypeError, match="from_numpy: .*non-native byte order"):
        nl.from_numpy(data)
    assert nl.as_tensor(data).data.dtype.isnative


def test_checks_fits_uses_exact_products():
    assert checks.fits("op", "x", 2 ** 31, 2 ** 31) == 2 ** 62
    with pytest.raises(ValueError, match="op: x is 4294967296 x 4294967296 .* largest array index"):
        checks.fits("op", "x", 2 ** 32, 2 ** 32)


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_conv_geometry_does_not_wrap_for_huge_kernels(backend):
    """Issue 14, item 4: dh * (kh - 1) wrapped to 0 for kh = 2**34 + 1, dh = 2**30, and the
    depthwise path read out of bounds. The weight is a zero-stride view: no memory behind it."""
    fn = _backends()[backend]["conv2d_forward"]
    x = np.zeros((1, 2, 8, 8), F32)
    weight = np.lib.stride_tricks.as_strided(np.zeros(1, F32), shape=(2, 1, 2 ** 34 + 1, 1),
                                             strides=(0, 0, 0, 0))
    with pytest.raises(ValueError, match="output size would be"):
        fn(x, weight, None, (1, 1), (0, 0), (2 ** 30, 1), 2)


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_conv_and_pool_refuse_shapes_whose_products_overflow(backend):
    funcs = _backends()[backend]
    grad = np.zeros((1, 1, 1, 1), F32)
    weight = np.zeros((1, 1, 1, 1), F32)
    huge = (2 ** 62, 1, 4, 1)   # a valid-looking input_shape whose padded size needs 65 bits
    with pytest.raises(ValueError, match="largest array index"):
        funcs["conv2d_backward_input"](grad, weight, huge, (4, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="largest array index"):
        funcs["avg_pool2d_backward"](grad, huge, (4, 1), (4, 1), (0, 0), False, True, None)


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_attention_refuses_weights_past_the_largest_index_and_rows_past_32_bit_blas(backend):
    """A zero-stride qkv that claims 2**32 positions: its (N, H, L, L) weights need 2**64
    elements; one that claims rows of 3 * 2**31 numbers is past what a 32-bit BLAS indexes.
    Both are refused before any memory is asked for."""
    fn = _backends()[backend]["packed_attention_forward"]
    long = np.lib.stride_tricks.as_strided(np.zeros(1, F32), shape=(1, 2 ** 32, 3), strides=(0, 0, 0))
    with pytest.raises(ValueError, match="attention weights array is .* largest array index"):
        fn(long, 1, 1.0, None, True)
    wide = np.lib.stride_tricks.as_strided(np.zeros(1, F32), shape=(1, 1, 3 * 2 ** 31), strides=(0, 0, 0))
    with pytest.raises(ValueError, match=f"dimension {3 * 2 ** 31} is too large for 32-bit BLAS"):
        fn(wide, 1, 1.0, None, False)


@pytest.mark.parametrize("backend", ["cython", "reference"])
def test_batch_norm_refuses_aliased_running_statistics(backend):
    """Issue 14, item 13: running_mean is running_var, or stats inside x, were accepted."""
    fn = _backends()[backend]["batch_norm_forward"]
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(F32)
    stats = np.zeros(3, F32)
    with pytest.raises(ValueError, match="running_mean and running_var overlap"):
        fn(x, None, None, stats, stats, True, 0.1, 1e-5)
    flat = x.reshape(-1)
    with pytest.raises(ValueError, match="running_mean and x overlap"):
        fn(x, None, None, flat[:3], np.ones(3, F32), True, 0.1, 1e-5)
    weight = np.ones(3, F32)
    with pytest.raises(ValueError, match="running_var and weight overlap"):
        fn(x, weight, None, np.zeros(3, F32), weight, True, 0.1, 1e-5)
    # separate buffers, and weight aliasing bias (both only read), are fine
    fn(x, weight, weight, np.zeros(3, F32), np.ones(3, F32), True, 0.1, 1e-5)
    # running stats inside the gaps of a strided x: their byte ranges meet, the memory does not
    base = np.zeros((4, 3, 10), F32)
    strided_x = base[:, :, :5]
    strided_x[...] = np.random.default_rng(1).standard_normal(strided_x.shape)
    gap = base.reshape(-1)
    running_mean, running_var = gap[5:8], gap[15:18]
    running_var[...] = 1
    fn(strided_x, None, None, running_mean, running_var, True, 0.1, 1e-5)
    assert np.abs(running_mean).sum() > 0     # updated in place, through the gap


@pytest.mark.parametrize("scale", [1e5, 1e6, 1e7, 1e8])
def test_cross_entropy_gradient_keeps_precision_for_large_logits(scale):
    """Issue 14, item 6: relative error was 2e-3 at 1e5, 8% at 1e7 and 100% at 1e8."""
    torch = torch_or_skip()
    r = np.random.default_rng(1)
    logits = (scale * (1 + 1e-6 * r.standard_normal((6, 5)))).astype(F32)
    target = r.integers(0, 5, 6).astype(np.int64)
    exact = torch.tensor(logits.astype(np.float64), requires_grad=True)
    torch.nn.functional.cross_entropy(exact, torch.tensor(target)).backward()
    want = exact.grad.numpy()
    t32 = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(t32, torch.tensor(target)).backward()
    torch_err = np.abs(t32.grad.numpy() - want).max() / np.abs(want).max()
    for backend in ("cython", "reference"):
        funcs = _backends()[backend]
        _, lse = funcs["cross_entropy_forward"](logits, target, None, -100, 0.0, "mean")
        got = funcs["cross_entropy_backward"](np.array(1.0, F32), logits, target, None, lse,
                                              -100, 0.0, "mean")
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err <= max(10 * torch_err, 1e-6), (backend, err, torch_err)


def test_set_backend_swaps_the_whole_table_at_once():
    """Issue 14, item 12: the namespace was emptied, then refilled; a concurrent call could
    meet an AttributeError in between."""
    x = np.ones(4, F32)
    errors, stop = [], threading.Event()

    def call():
        while not stop.is_set():
            try:
                K.relu_forward(x)
                K.gemm
            except AttributeError as e:   # pragma: no cover - the defect
                errors.append(e)
                return

    worker = threading.Thread(target=call)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    worker.start()
    try:
        for i in range(3000):
            nl.set_backend("reference" if i % 2 else "cython")
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(old_interval)
        nl.set_backend("cython")
    assert errors == []


FORK_CHILD = textwrap.dedent("""
    import multiprocessing, os, sys
    import numpy as np
    import nnlite as nl
    from nnlite._kernels import K, _threads

    nl.set_num_threads(2)
    _threads.set_serial_threshold(0)
    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    K.gemm(a, a)                       # the parent has used the OpenMP thread pool
    x = np.ones(1 << 16, np.float32)
    K.relu_forward(x)

    def work(_):
        return float(K.gemm(a, a)[0, 0]) + float(K.relu_forward(x).sum()), nl.get_num_threads()

    pid = os.fork()
    if pid == 0:
        os._exit(0 if work(0)[1] == 1 else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(work, range(4))
    assert results == [work(0)[:1] + (1,)] * 4, results
    print("ok")
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_runs_kernels_after_the_parent_ran_parallel_ones(tmp_path):
    """Issue 14, item 1: the child of a process that had run a 2-thread kernel hung at 0% CPU."""
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CHILD)
    try:
        out = run_fresh([str(script)], tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a forked child hung in a kernel")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
