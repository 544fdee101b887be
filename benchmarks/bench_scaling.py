"""Cost as work grows: step time against batch size and width (MLP) and sequence length (transformer).

Three curves, nnlite and PyTorch paired at every point (and JAX when
installed, for the MLP):

* MLP 784-256-256-10 Adam step, batch 1 ... 1024;
* MLP 784-w-w-10 Adam step at batch 128, width w = 64 ... 2048;
* the causal transformer of ``bench_transformer.py`` (AdamW step, batch 32),
  sequence length 16 ... 256.

Small problems measure per-operation overhead (Python, dispatch, allocation),
large ones the matrix products; where the ratio nnlite / PyTorch crosses 1
tells which of the two a library is better at. Writes
``results/<machine kind>-scaling.md`` and ``results/<machine kind>-scaling.png``.

    python -m benchmarks.bench_scaling [--quick]
"""
import os
import sys

import numpy as np

import nnlite as nl

from .bench_jax import jax_or_none, mlp_contenders, transformer_contenders
from .harness import paired_medians, torch_or_none
from .machine import describe, kind, write_markdown


def run(quick=False):
    torch, jax = torch_or_none(), jax_or_none()
    if torch is not None:
        torch.set_num_threads(nl.get_num_threads())
    batches = (1, 16, 256, 1024) if quick else (1, 4, 16, 64, 256, 1024)
    widths = (64, 512, 2048) if quick else (64, 128, 256, 512, 1024, 2048)
    seqs = (16, 64) if quick else (16, 32, 64, 128, 256)
    rows = []

    def point(curve, x, contenders, repeat):
        t = paired_medians(contenders, repeat=repeat, warmup=2)
        rows.append({"curve": curve, "x": x, "nnlite_ms": t["nnlite"], "torch_ms": t["torch"],
                     "jax_ms": t.get("jax"),
                     "nnlite/torch": None if t["torch"] is None else t["nnlite"] / t["torch"]})
    for b in batches:
        point("MLP 784-256-256-10 Adam, batch", b, mlp_contenders(torch, jax, batch=b), 5 if quick else 15)
    for w in widths:
        point("MLP 784-w-w-10 Adam b128, width", w, mlp_contenders(torch, jax, width=w), 5 if quick else 11)
    for s in seqs:
        point("causal transformer AdamW b32, sequence length", s, transformer_contenders(torch, None, seq=s),
              3 if quick else 7)
    return rows


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curves = list(dict.fromkeys(r["curve"] for r in rows))
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4))
    for ax, curve in zip(np.atleast_1d(axes), curves):
        pts = [r for r in rows if r["curve"] == curve]
        xs = [r["x"] for r in pts]
        for name in ("nnlite", "torch", "jax"):
            ys = [r.get(f"{name}_ms") for r in pts]
            if all(v is not None for v in ys):
                ax.loglog(xs, ys, "o-", label=name, base=2)
        ax.set_xlabel(curve.rsplit(", ", 1)[-1])
        ax.set_ylabel("step time (ms)")
        ax.set_title(curve.rsplit(", ", 1)[0], fontsize=9)
        ax.legend()
    fig.suptitle(describe(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    path = write_markdown("scaling", "Step time as work grows", rows,
                          ["curve", "x", "nnlite_ms", "torch_ms", "jax_ms", "nnlite/torch"],
                          notes=[f"{nl.get_num_threads()} threads; paired medians at every point, one run"])
    plot(rows, os.path.join(os.path.dirname(path), f"{kind()}-scaling.png"))
    print(describe())
    print(open(path).read())
