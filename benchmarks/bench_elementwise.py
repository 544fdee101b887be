"""Activation, softmax and cross-entropy kernels, forward + backward, on (4096, 1024) float32.

The activations with a parameter or a corner run as their autograd nodes do: the
piecewise-linear ones keep a mask in the forward and read it in the backward
(``masked_slope_backward``), ELU keeps its slope, the smooth ones read x again.

Each workload runs one forward and one backward kernel call. Contenders:
nnlite's compiled kernels (nnlite's thread count), PyTorch's ATen kernels for the
same forward and backward (``torch.ops.aten.*_backward``, no autograd
bookkeeping; cross-entropy goes through autograd, which is how PyTorch users
call it), and the NumPy reference twins in the numpy column. The note holds
nnlite's speed-up on 2 threads over 1 thread, timed in the same paired loop.
"""

import numpy as np

import nnlite._kernels as kernels
from nnlite._kernels import K, reference

from .harness import format_table, paired_medians, torch_or_none


def _on_threads(n, fn):
    """``fn`` run on ``n`` OpenMP threads (the kernels' setting only: cheap to switch)."""
    def call():
        old = kernels._threads.get_num_threads()
        kernels._threads.set_num_threads(n)
        try:
            fn()
        finally:
            kernels._threads.set_num_threads(old)
    return call


def _workloads(torch, x, g, target):
    aten = torch.ops.aten if torch is not None else None
    tx = tg = tt = None
    if torch is not None:
        tx, tg, tt = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(target)

    def ce_torch():
        xt = tx.detach().requires_grad_()
        torch.nn.functional.cross_entropy(xt, tt, label_smoothing=0.1).backward()

    def ce(k):
        def call():
            loss, lse = k.cross_entropy_forward(x, target, None, -100, 0.1, "mean")
            k.cross_entropy_backward(np.ones((), np.float32), x, target, None, lse, -100, 0.1, "mean")
        return call

    return {
        "relu fwd+bwd": (
            lambda k: lambda: k.relu_backward(g, k.relu_forward(x)),
            lambda: aten.threshold_backward(tg, torch.relu(tx), 0)),
        "gelu (erf) fwd+bwd": (
            lambda k: lambda: (k.gelu_forward(x, "none"), k.gelu_backward(g, x, "none")),
            lambda: (aten.gelu(tx), aten.gelu_backward(tg, tx))),
        # what F.gelu's node does: the forward keeps Phi(x), the backward reads it instead of erf again
        "gelu (erf) fwd+bwd, Phi kept": (
            lambda k: lambda: k.gelu_backward(g, x, "none", k.gelu_forward(x, "none", save=True)[1]),
            lambda: (aten.gelu(tx), aten.gelu_backward(tg, tx))),
        "gelu (tanh) fwd+bwd": (
            lambda k: lambda: (k.gelu_forward(x, "tanh"), k.gelu_backward(g, x, "tanh")),
            lambda: (aten.gelu(tx, approximate="tanh"), aten.gelu_backward(tg, tx, approximate="tanh"))),
        "leaky_relu(0.01) fwd+bwd": (
            lambda k: lambda: k.masked_slope_backward(g, k.leaky_relu_forward(x, 0.01, True)[1], 1.0, 0.01),
            lambda: (aten.leaky_relu(tx, 0.01), aten.leaky_relu_backward(tg, tx, 0.01, False))),
        "hardtanh fwd+bwd": (
            lambda k: lambda: k.masked_slope_backward(g, k.hardtanh_forward(x, -1.0, 1.0, True)[1], 1.0, 0.0),
            lambda: (aten.hardtanh(tx), aten.hardtanh_backward(tg, tx, -1.0, 1.0))),
        "hardswish fwd+bwd": (
            lambda k: lambda: (k.hardswish_forward(x), k.hardswish_backward(g, x)),
            lambda: (aten.hardswish(tx), aten.hardswish_backward(tg, tx))),
        "elu fwd+bwd": (
            lambda k: lambda: g * k.elu_forward(x, 1.0, 1.0, True)[1],
            lambda: (aten.elu(tx), aten.elu_backward(tg, 1.0, 1.0, 1.0, False, tx))),
        "softplus fwd+bwd": (
            lambda k: lambda: (k.softplus_forward(x, 1.0, 20.0), k.softplus_backward(g, x, 1.0, 20.0)),
            lambda: (aten.softplus(tx, 1.0, 20.0), aten.softplus_backward(tg, tx, 1.0, 20.0))),
        "mish fwd+bwd": (
            lambda k: lambda: (k.mish_forward(x), k.mish_backward(g, x)),
            lambda: (aten.mish(tx), aten.mish_backward(tg, tx))),
        "logsigmoid fwd+bwd": (
            lambda k: lambda: (k.logsigmoid_forward(x), k.logsigmoid_backward(g, x)),
            lambda: aten.log_sigmoid_backward(tg, tx, aten.log_sigmoid_forward(tx)[1])),
        "softmax fwd+bwd": (
            lambda k: lambda: k.softmax_backward(g, k.softmax_forward(x)),
            lambda: aten._softmax_backward_data(tg, torch.softmax(tx, 1), 1, torch.float32)),
        "log_softmax fwd+bwd": (
            lambda k: lambda: k.log_softmax_backward(g, k.log_softmax_forward(x)),
            lambda: aten._log_softmax_backward_data(tg, torch.log_softmax(tx, 1), 1, torch.float32)),
        "cross_entropy fwd+bwd (mean, smoothing 0.1)": (ce, ce_torch),
    }


def run(quick=False):
    torch = torch_or_none()
    threads = kernels.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    rows_n, cols = (1024, 1024) if quick else (4096, 1024)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows_n, cols)).astype(np.float32)
    g = rng.standard_normal((rows_n, cols)).astype(np.float32)
    target = rng.integers(0, cols, size=rows_n)
    rows = []
    for name, (ours, theirs) in _workloads(torch, x, g, target).items():
        fn = ours(K)
        times = paired_medians({
            "nnlite": fn,
            "one_thread": _on_threads(1, fn),
            "two_threads": _on_threads(2, fn),
            "torch": theirs if torch is not None else None,
            "numpy": ours(reference),
        }, repeat=7 if quick else 15, warmup=2)
        speedup = times["one_thread"] / times["two_threads"]
        rows.append({"workload": f"{name} ({rows_n}, {cols}) float32", "nnlite_ms": times["nnlite"],
                     "torch_ms": times["torch"], "numpy_ms": times["numpy"],
                     "note": f"2T/1T speed-up {speedup:.2f}; {threads} threads; numpy = reference twin"})
    return rows


if __name__ == "__main__":
    print(format_table(run()))
