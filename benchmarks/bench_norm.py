"""Layer norm and 2-D batch norm, forward + backward, against PyTorch and the NumPy twins.

Both sides call their kernels directly (torch's ``native_*`` ops, no autograd
graph), float32, with torch held to nnlite's thread count.
"""

import numpy as np

import nnlite._kernels as kernels
from nnlite._kernels import _norm, reference

from .harness import format_table, paired_medians, thread_speedup, torch_or_none


def _layer_norm(impl, x, w, b, g):
    def run():
        y, mean, rstd = impl.layer_norm_forward(x, w, b, 1e-5)
        impl.layer_norm_backward(g, x, w, mean, rstd)
    return run


def _batch_norm(impl, x3, w, b, g3):
    rm, rv = np.zeros_like(w), np.ones_like(w)

    def run():
        y, mean, invstd = impl.batch_norm_forward(x3, w, b, rm, rv, True, 0.1, 1e-5)
        impl.batch_norm_backward(g3, x3, w, mean, invstd, True)
    return run


def _torch_layer_norm(torch, x, w, b, g):
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, g))
    shape = [x.shape[1]]

    def run():
        y, mean, rstd = torch.native_layer_norm(xt, shape, wt, bt, 1e-5)
        torch.ops.aten.native_layer_norm_backward(gt, xt, shape, mean, rstd, wt, bt,
                                                  [True, True, True])
    return run


def _torch_batch_norm(torch, x, w, b, g):
    xt, wt, bt, gt = (torch.from_numpy(a) for a in (x, w, b, g))
    rm, rv = torch.zeros_like(wt), torch.ones_like(wt)

    def run():
        y, mean, invstd = torch.native_batch_norm(xt, wt, bt, rm, rv, True, 0.1, 1e-5)
        torch.ops.aten.native_batch_norm_backward(gt, xt, wt, rm, rv, mean, invstd, True, 1e-5,
                                                  [True, True, True])
    return run


def run(quick=False):
    torch = torch_or_none()
    threads = kernels.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    repeat = 5 if quick else 21
    rows = []
    ln_shape = (512, 512) if quick else (4096, 512)
    x = rng.standard_normal(ln_shape, dtype=np.float32)
    g = rng.standard_normal(ln_shape, dtype=np.float32)
    w = rng.standard_normal(ln_shape[1], dtype=np.float32)
    b = rng.standard_normal(ln_shape[1], dtype=np.float32)
    speedup = thread_speedup(_layer_norm(_norm, x, w, b, g), repeat=3 if quick else 11)  # before torch runs
    t = paired_medians({
        "nnlite": _layer_norm(_norm, x, w, b, g),
        "torch": _torch_layer_norm(torch, x, w, b, g) if torch else None,
        "numpy": _layer_norm(reference, x, w, b, g),
    }, repeat=repeat)
    rows.append(dict(workload=f"layer_norm fwd+bwd {ln_shape} f32", nnlite_ms=t["nnlite"],
                     torch_ms=t["torch"], numpy_ms=t["numpy"],
                     note=f"{threads} threads; nnlite 2T/1T speed-up x{speedup:.2f}"))
    bn_shapes = [(8, 64, 16, 16)] if quick else [(64, 64, 16, 16), (64, 128, 8, 8)]
    for shape in bn_shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        g = rng.standard_normal(shape, dtype=np.float32)
        w = rng.standard_normal(shape[1], dtype=np.float32)
        b = rng.standard_normal(shape[1], dtype=np.float32)
        x3, g3 = x.reshape(shape[0], shape[1], -1), g.reshape(shape[0], shape[1], -1)
        speedup = thread_speedup(_batch_norm(_norm, x3, w, b, g3), repeat=3 if quick else 11)
        t = paired_medians({
            "nnlite": _batch_norm(_norm, x3, w, b, g3),
            "torch": _torch_batch_norm(torch, x, w, b, g) if torch else None,
            "numpy": _batch_norm(reference, x3, w, b, g3),
        }, repeat=repeat)
        rows.append(dict(workload=f"batch_norm2d train fwd+bwd {shape} f32", nnlite_ms=t["nnlite"],
                         torch_ms=t["torch"], numpy_ms=t["numpy"],
                         note=f"{threads} threads; nnlite 2T/1T speed-up x{speedup:.2f}"))
    return rows


if __name__ == "__main__":
    print(format_table(run()))
