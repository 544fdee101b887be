"""optimizer.step() on a ~10M-parameter model held in many tensors, against torch.optim.

The model is a BERT-base-sized stack (width 768, one encoder layer plus token
and position embeddings): weight matrices, biases and LayerNorm parameters of
realistic shapes, ~10.6M parameters in 20 tensors, float32. nnlite's optimizer keeps
them in one aligned arena and makes one fused kernel call per step; torch runs
its ``fused=True`` (one kernel over all tensors) and ``foreach=True``
(multi-tensor ops) implementations with the same thread count. Gradients are
in place before timing (nnlite: in the arena's grad buffer, where autograd puts
them), so only the update is measured.
"""
import sys

import numpy as np

import nnlite as nl

from .harness import format_table, paired_medians, torch_or_none


def shapes(width=768, layers=1, vocab=4096, positions=512):
    out = [(vocab, width), (positions, width), (width,), (width,)]
    for _ in range(layers):
        out += [(width, width), (width,)] * 4                  # q, k, v, out projections
        out += [(width,), (width,)]                            # LayerNorm
        out += [(4 * width, width), (4 * width,), (width, 4 * width), (width,)]   # MLP
        out += [(width,), (width,)]                            # LayerNorm
    return out


OPTIMIZERS = {
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
    "SGD-momentum": dict(lr=1e-2, momentum=0.9),
}


def _nnlite_step(name, values, grads):
    params = [nl.nn.Parameter(v.copy()) for v in values]
    cls = nl.optim.SGD if name == "SGD-momentum" else getattr(nl.optim, name)
    opt = cls(params, **OPTIMIZERS[name])
    for p, g in zip(params, grads):
        p._accumulate_grad(nl.tensor(g))      # what backward does: lands in the arena slot
    opt.step()  # allocate the state outside the timing
    return opt.step


def _torch_step(torch, name, values, grads, **mode):
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    cls = torch.optim.SGD if name == "SGD-momentum" else getattr(torch.optim, name)
    try:
        opt = cls(params, **OPTIMIZERS[name], **mode)
        opt.step()
    except (RuntimeError, ValueError, TypeError):   # a mode this torch build lacks on CPU
        return None
    return opt.step


def run(quick=False):
    torch = torch_or_none()
    threads = nl.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    model = shapes(width=256 if quick else 768)
    values = [rng.standard_normal(s).astype(np.float32) * 0.02 for s in model]
    grads = [rng.standard_normal(s).astype(np.float32) for s in model]
    numel = sum(v.size for v in values)
    repeat = 7 if quick else 21
    rows = []
    for name in OPTIMIZERS:
        contenders = {"nnlite": _nnlite_step(name, values, grads)}
        if torch is not None:
            contenders["fused"] = _torch_step(torch, name, values, grads, fused=True)
            contenders["foreach"] = _torch_step(torch, name, values, grads, foreach=True)
        times = paired_medians(contenders, repeat=repeat, warmup=3)
        for mode in ("fused", "foreach"):
            rows.append({"workload": f"{name} step, {numel / 1e6:.1f}M params in {len(model)} "
                                     f"tensors (torch {mode}=True)",
                         "nnlite_ms": times["nnlite"], "torch_ms": times.get(mode),
                         "numpy_ms": None, "note": f"float32, {threads} threads"})
    return rows


if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv)))
