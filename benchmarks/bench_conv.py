"""Convolution forward + backward (input, weight and bias gradients) against PyTorch and the twins.

Shapes from LeNet-5 and a small CIFAR-style CNN (batch 64, float32) plus a
depthwise 3x3 layer. Both sides call their kernels directly: nnlite's
``conv2d_*`` kernels, torch's ``aten.convolution`` and ``aten.convolution_backward``
(no autograd graph), with torch held to nnlite's thread count. A second pass
times nnlite alone on 1 and on 2 threads, for the speed-up note.
"""

import numpy as np

import nnlite._kernels as kernels
from nnlite._kernels import _conv, reference

from .harness import format_table, paired_medians, thread_speedup, torch_or_none

# (name, input shape, weight shape, padding, groups); stride 1, dilation 1 throughout
WORKLOADS = [
    ("LeNet conv1 1->6 5x5 28x28 p2", (64, 1, 28, 28), (6, 1, 5, 5), 2, 1),
    ("LeNet conv2 6->16 5x5 14x14", (64, 6, 14, 14), (16, 6, 5, 5), 0, 1),
    ("CNN 3->32 3x3 32x32 p1", (64, 3, 32, 32), (32, 3, 3, 3), 1, 1),
    ("CNN 32->64 3x3 16x16 p1", (64, 32, 16, 16), (64, 32, 3, 3), 1, 1),
    ("CNN 64->128 3x3 8x8 p1", (64, 64, 8, 8), (128, 64, 3, 3), 1, 1),
    ("depthwise 64ch 3x3 16x16 p1", (64, 64, 16, 16), (64, 1, 3, 3), 1, 64),
]


def _nnlite_step(impl, x, w, b, grad, padding, groups):
    geo = ((1, 1), (padding, padding), (1, 1), groups)

    def run():
        impl.conv2d_forward(x, w, b, *geo)
        impl.conv2d_backward_input(grad, w, x.shape, *geo)
        impl.conv2d_backward_weight(grad, x, w.shape, *geo)
        impl.conv2d_backward_bias(grad)
    return run


def _torch_step(torch, x, w, b, grad, padding, groups):
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, grad))
    conv, conv_backward = torch.ops.aten.convolution, torch.ops.aten.convolution_backward

    def run():
        conv(xt, wt, bt, [1, 1], [padding, padding], [1, 1], False, [0, 0], groups)
        conv_backward(gt, xt, wt, [wt.shape[0]], [1, 1], [padding, padding], [1, 1], False,
                      [0, 0], groups, [True, True, True])
    return run


def run(quick=False):
    torch = torch_or_none()
    threads = kernels.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    repeat = 5 if quick else 21
    rows = []
    for name, x_shape, w_shape, padding, groups in WORKLOADS:
        if quick:
            x_shape = (8,) + x_shape[1:]
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        b = rng.standard_normal(w_shape[0], dtype=np.float32)
        y_shape = _conv.conv2d_forward(x, w, b, (1, 1), (padding, padding), (1, 1), groups).shape
        grad = rng.standard_normal(y_shape, dtype=np.float32)
        nnlite_step = _nnlite_step(_conv, x, w, b, grad, padding, groups)
        # Before the comparison: threads torch or NumPy leave busy would skew it.
        speedup = thread_speedup(nnlite_step, repeat=3 if quick else 11)
        t = paired_medians({
            "nnlite": nnlite_step,
            "torch": _torch_step(torch, x, w, b, grad, padding, groups) if torch else None,
        }, repeat=repeat)
        # The twins take seconds here; a few samples are enough to place them.
        t.update(paired_medians({"numpy": _nnlite_step(reference, x, w, b, grad, padding, groups)},
                                repeat=3, warmup=1))
        rows.append(dict(workload=f"conv2d fwd+bwd {name} f32 (N={x_shape[0]})",
                         nnlite_ms=t["nnlite"], torch_ms=t["torch"], numpy_ms=t["numpy"],
                         note=f"{threads} threads; nnlite 2T/1T speed-up x{speedup:.2f}"))
    return rows


if __name__ == "__main__":
    print(format_table(run()))
