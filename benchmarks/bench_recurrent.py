"""LSTM and GRU classifier training steps: nnlite (fused scan and readable loop) against PyTorch.

The model: a one-layer LSTM or GRU (input 32, hidden 128) over 32 time steps
of a batch of 64 (``batch_first``), a Linear(128, 10) head on the last hidden
state, cross-entropy, Adam. One step is forward, loss, backward, optimizer
step and zero_grad, with the weights copied into PyTorch's model so both run
the same numbers. Three contenders, paired medians in one run:

* ``nnlite``: the layer as it runs, with the fused scan (``nnlite/ops/recurrent.py``);
* ``nnlite_loop``: the same layer through the readable step-by-step loop
  (the cells' ``gate_math``, one autograd node per operation) — how the layers
  ran before the fused scan, for the before/after comparison;
* ``torch``: PyTorch on the same thread count.

    python -m benchmarks.bench_recurrent [--quick]   # writes results/<machine kind>-recurrent.md
"""
import sys

import numpy as np

import nnlite as nl
import nnlite.nn.recurrent as recurrent_layers
from nnlite.nn import functional as F
from nnlite.ops import recurrent as scan_ops

from .harness import paired_medians, torch_or_none
from .machine import describe, write_markdown

BATCH, STEPS, INPUT, HIDDEN, CLASSES = 64, 32, 32, 128, 10


def _readable_loop_scan(gi, h0, c0, w_hh, b_hh, mode, reverse=False):
    """recurrent_scan's result from the readable step-by-step loop."""
    y = scan_ops._readable_scan(gi, h0, c0, w_hh, b_hh, mode, reverse)
    last = 0 if reverse else y.shape[0] - 1
    return y[:, 0], ((y[last, 0], y[last, 1]) if mode == "LSTM" else (y[last, 0],))


class _Classifier(nl.nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = getattr(nl.nn, kind)(INPUT, HIDDEN, batch_first=True)
        self.head = nl.nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def _torch_classifier(torch, kind):
    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(INPUT, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, CLASSES)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])
    return Classifier()


def _nl_step(model, opt, x, y, readable):
    def step():
        saved = recurrent_layers.recurrent_scan
        if readable:
            recurrent_layers.recurrent_scan = _readable_loop_scan
        try:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        finally:
            recurrent_layers.recurrent_scan = saved
        opt.step()
        opt.zero_grad()
    return step


def run(quick=False):
    torch = torch_or_none()
    threads = nl.get_num_threads()
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    y_np = rng.integers(0, CLASSES, BATCH)
    rows = []
    for kind in ("LSTM", "GRU"):
        nl.manual_seed(0)
        model = _Classifier(kind)
        fused = _nl_step(model, nl.optim.Adam(model.parameters(), lr=1e-3), nl.tensor(x_np), nl.tensor(y_np), False)
        model_loop = _Classifier(kind)
        model_loop.load_state_dict(model.state_dict())
        loop = _nl_step(model_loop, nl.optim.Adam(model_loop.parameters(), lr=1e-3), nl.tensor(x_np),
                        nl.tensor(y_np), True)
        contenders = {"nnlite": fused, "nnlite_loop": loop, "torch": None}
        if torch is not None:
            torch.set_num_threads(threads)
            tm = _torch_classifier(torch, kind)
            tm.load_state_dict({k: torch.tensor(np.asarray(v.data)) for k, v in model.state_dict().items()})
            t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
            xt, yt = torch.tensor(x_np), torch.tensor(y_np)

            def torch_step():
                loss = torch.nn.functional.cross_entropy(tm(xt), yt)
                loss.backward()
                t_opt.step()
                t_opt.zero_grad()
            contenders["torch"] = torch_step
        t = paired_medians(contenders, repeat=7 if quick else 31, warmup=2)
        rows.append({"workload": f"{kind} 1x{HIDDEN} T{STEPS} b{BATCH} Adam step", "nnlite_ms": t["nnlite"],
                     "nnlite_loop_ms": t["nnlite_loop"], "torch_ms": t["torch"],
                     "nnlite/torch": None if t["torch"] is None else t["nnlite"] / t["torch"],
                     "loop/torch": None if t["torch"] is None else t["nnlite_loop"] / t["torch"]})
    return rows


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    path = write_markdown("recurrent", "Recurrent classifier training steps", rows,
                          ["workload", "nnlite_ms", "nnlite_loop_ms", "torch_ms", "nnlite/torch", "loop/torch"],
                          notes=[f"{nl.get_num_threads()} threads; paired medians in one run; "
                                 "nnlite_loop = the readable step-by-step loop (the layers before the fused scan)"])
    print(describe())
    print(open(path).read())
