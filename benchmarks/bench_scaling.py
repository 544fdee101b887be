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

    python benchmarks/bench_scaling.py [--quick]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_transformer as bt  # noqa: E402
from bench_jax import _Frozen, jax_or_none, mlp_jax  # noqa: E402
from harness import paired_medians, torch_or_none  # noqa: E402
from machine import describe, kind, write_markdown  # noqa: E402

import nnlite as nl  # noqa: E402
from nnlite.nn import functional as F  # noqa: E402


def _mlp_pair(torch, batch, width, jax=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    nl.manual_seed(0)
    model = nl.nn.fuse_linear_relu(nl.nn.Sequential(nl.nn.Linear(784, width), nl.nn.ReLU(),
                                                    nl.nn.Linear(width, width), nl.nn.ReLU(),
                                                    nl.nn.Linear(width, 10)))
    fresh = {k: np.array(v.data) for k, v in model.state_dict().items()}
    opt = nl.optim.Adam(model.parameters(), lr=1e-3)
    xn, yn = nl.tensor(x), nl.tensor(y)

    def nl_step():
        loss = F.cross_entropy(model(xn), yn)
        loss.backward()
        opt.step()
        opt.zero_grad()
    t_step = None
    if torch is not None:
        t = torch.nn
        tm = t.Sequential(t.Linear(784, width), t.ReLU(), t.Linear(width, width), t.ReLU(), t.Linear(width, 10))
        tm.load_state_dict({k: torch.tensor(np.asarray(v.data)) for k, v in model.state_dict().items()})
        t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        xt, yt = torch.tensor(x), torch.tensor(y)

        def t_step():
            loss = torch.nn.functional.cross_entropy(tm(xt), yt)
            loss.backward()
            t_opt.step()
            t_opt.zero_grad()
    j_step = None
    if jax is not None:
        j_step = mlp_jax(jax, _Frozen(fresh), x, y)
        j_step()   # compiles
    return {"nnlite": nl_step, "torch": t_step, "jax": j_step}


def _transformer_pair(torch, seq):
    nl_step, model = bt.nnlite_step(seq=seq)
    c = {"nnlite": nl_step, "torch": None}
    if torch is not None:
        c["torch"] = bt.torch_step(torch, model, seq=seq)
    return c


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
        point("MLP 784-256-256-10 Adam, batch", b, _mlp_pair(torch, b, 256, jax), 5 if quick else 15)
    for w in widths:
        point("MLP 784-w-w-10 Adam b128, width", w, _mlp_pair(torch, 128, w, jax), 5 if quick else 11)
    for s in seqs:
        point("causal transformer AdamW b32, sequence length", s, _transformer_pair(torch, s), 3 if quick else 7)
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
