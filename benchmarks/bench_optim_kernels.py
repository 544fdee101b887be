"""Optimizer update kernels over one big flat buffer, against torch.optim and the NumPy twins.

An optimizer step is memory-bound, so each row also reports nnlite's effective
bandwidth: bytes read plus bytes written per element, times elements, over time.
AdamW reads param, grad, exp_avg, exp_avg_sq and writes param, exp_avg,
exp_avg_sq (7 accesses); SGD with momentum reads param, grad, buffer and writes
param, buffer (5 accesses).
"""

import numpy as np

import nnlite._kernels as kernels
from nnlite._kernels import _optim, reference

from .harness import format_table, paired_medians, torch_or_none

ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)


def _adamw(impl, n, rng):
    param = rng.standard_normal(n, dtype=np.float32)
    grad = rng.standard_normal(n, dtype=np.float32)
    exp_avg, exp_avg_sq = np.zeros(n, np.float32), np.zeros(n, np.float32)
    state = {"step": 0}

    def run():
        state["step"] += 1
        impl.adam_step(param, grad, exp_avg, exp_avg_sq, None, state["step"], ADAMW["lr"],
                       *ADAMW["betas"], ADAMW["eps"], ADAMW["weight_decay"], True, False, False)
    return run


def _sgd(impl, n, rng):
    param = rng.standard_normal(n, dtype=np.float32)
    grad = rng.standard_normal(n, dtype=np.float32)
    buf = np.zeros(n, np.float32)
    state = {"first": True}

    def run():
        impl.sgd_step(param, grad, buf, 0.01, 0.9, 0.0, False, 0.0, False, state["first"])
        state["first"] = False
    return run


def _torch_step(torch, n, make):
    tensor = torch.randn(n, dtype=torch.float32, requires_grad=True)
    tensor.grad = torch.randn(n, dtype=torch.float32)
    opt = make([tensor])
    opt.step()  # allocate the state outside the timing
    return opt.step


def _gbs(ms, n, accesses):
    return n * 4 * accesses / (ms * 1e-3) / 1e9


def _with_threads(n_threads, fn):
    def run():
        old = kernels.get_num_threads()
        kernels.set_num_threads(n_threads)
        try:
            fn()
        finally:
            kernels.set_num_threads(old)
    return run


def run(quick=False):
    torch = torch_or_none()
    threads = kernels.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n = 1_000_000 if quick else 10_000_000
    repeat = 5 if quick else 15
    label = f"{n // 1_000_000}M f32"
    rows = []

    adamw = _adamw(_optim, n, rng)
    contenders = {"nnlite": adamw, "numpy": _adamw(reference, n, rng)}
    if torch is not None:
        contenders["fused"] = _torch_step(torch, n, lambda p: torch.optim.AdamW(p, fused=True, **ADAMW))
        contenders["foreach"] = _torch_step(torch, n, lambda p: torch.optim.AdamW(p, foreach=True, **ADAMW))
    t = paired_medians(contenders, repeat=repeat)
    one = paired_medians({"one": _with_threads(1, adamw), "all": adamw}, repeat=repeat)
    speedup = one["one"] / one["all"]
    for name in ("fused", "foreach"):
        rows.append(dict(
            workload=f"adam_step (AdamW) {label} vs torch AdamW({name}=True)",
            nnlite_ms=t["nnlite"], torch_ms=t.get(name), numpy_ms=t["numpy"],
            note=(f"nnlite {_gbs(t['nnlite'], n, 7):.1f} GB/s"
                  + (f", torch {_gbs(t[name], n, 7):.1f} GB/s" if t.get(name) else "")
                  + f"; {threads} threads, {threads}-thread/1-thread speedup {speedup:.2f}x")))

    sgd = _sgd(_optim, n, rng)
    contenders = {"nnlite": sgd, "numpy": _sgd(reference, n, rng)}
    if torch is not None:
        contenders["torch"] = _torch_step(torch, n, lambda p: torch.optim.SGD(
            p, lr=0.01, momentum=0.9, foreach=True))
    t = paired_medians(contenders, repeat=repeat)
    one = paired_medians({"one": _with_threads(1, sgd), "all": sgd}, repeat=repeat)
    rows.append(dict(
        workload=f"sgd_step momentum=0.9 {label} vs torch SGD(foreach=True)",
        nnlite_ms=t["nnlite"], torch_ms=t.get("torch"), numpy_ms=t["numpy"],
        note=(f"nnlite {_gbs(t['nnlite'], n, 5):.1f} GB/s"
              + (f", torch {_gbs(t['torch'], n, 5):.1f} GB/s" if t.get("torch") else "")
              + f"; {threads} threads, {threads}-thread/1-thread speedup "
              f"{one['one'] / one['all']:.2f}x")))
    return rows


if __name__ == "__main__":
    print(format_table(run()))
