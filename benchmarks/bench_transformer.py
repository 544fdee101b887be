"""The issue's causal transformer: one AdamW training step, nnlite against PyTorch (and JAX: bench_jax.py).

Decoder-only, as a character model is built in PyTorch out of the box:
vocabulary 65, d_model 128, 4 heads, 2 pre-norm blocks (feed-forward 512 with
*exact* GELU), a boolean causal mask passed to ``MultiheadAttention`` as
``attn_mask`` (True = may not attend), ``Embedding``'s default N(0, 1)
initialisation (no rescaling), and the output layer tied to the token
embedding (logits = h E^T). Batch 32 of 64 tokens. The N(0, 1) embedding tied
to the head gives logits with a large spread, so the logit gradient holds
subnormal values (see ``bench_denormal.py``); rows are measured with
flushing off (both libraries' defaults) and on (``nl.set_flush_denormal`` and
``torch.set_flush_denormal``).

    python -m benchmarks.bench_transformer [--quick]   # writes results/<machine kind>-transformer.md
"""
import sys

import numpy as np

import nnlite as nl

from .harness import paired_medians, torch_or_none
from .machine import describe, write_markdown
from .step_flops import step_flops

VOCAB, D_MODEL, HEADS, LAYERS, FF, SEQ, BATCH = 65, 128, 4, 2, 512, 64, 32


def build(lib, seq=SEQ, functional=None):
    """The model in ``lib`` (``nnlite.nn`` or ``torch.nn``); ``functional`` is that library's F."""
    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = lib.LayerNorm(D_MODEL), lib.LayerNorm(D_MODEL)
            self.attn = lib.MultiheadAttention(D_MODEL, HEADS, batch_first=True)
            self.ff = lib.Sequential(lib.Linear(D_MODEL, FF), lib.GELU(), lib.Linear(FF, D_MODEL))

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.ff(self.ln2(x))

    class CausalTransformer(lib.Module):
        def __init__(self):
            super().__init__()
            self.tok = lib.Embedding(VOCAB, D_MODEL)
            self.pos = lib.Embedding(seq, D_MODEL)
            self.blocks = lib.ModuleList([Block() for _ in range(LAYERS)])
            self.ln = lib.LayerNorm(D_MODEL)

        def forward(self, ids, positions, mask):
            x = self.tok(ids) + self.pos(positions)
            for block in self.blocks:
                x = block(x, mask)
            return functional.linear(self.ln(x), self.tok.weight)   # the tied output layer
    return CausalTransformer()


def causal_mask(seq):
    return np.triu(np.ones((seq, seq), dtype=bool), k=1)


def batch(seq=SEQ, size=BATCH, seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (size, seq + 1))
    return ids[:, :-1].copy(), ids[:, 1:].copy()


def nnlite_step(seq=SEQ, size=BATCH):
    """(step function, model) for nnlite; the model's weights seed the other contenders."""
    from nnlite.nn import functional as F
    nl.manual_seed(0)
    model = build(nl.nn, seq, F)
    opt = nl.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    x, y = batch(seq, size)
    ids, targets = nl.tensor(x), nl.tensor(y.reshape(-1))
    positions, mask = nl.tensor(np.arange(seq)), nl.tensor(causal_mask(seq))

    def step():
        logits = model(ids, positions, mask)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.item())
    return step, model


def torch_step(torch, nl_model, seq=SEQ, size=BATCH):
    model = build(torch.nn, seq, torch.nn.functional)
    model.load_state_dict({k: torch.tensor(np.asarray(v.data)) for k, v in nl_model.state_dict().items()})
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    x, y = batch(seq, size)
    ids, targets = torch.tensor(x), torch.tensor(y.reshape(-1))
    positions, mask = torch.arange(seq), torch.tensor(causal_mask(seq))

    def step():
        logits = model(ids, positions, mask)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.item())
    return step


def step_products(model, seq=SEQ, size=BATCH):
    """FLOPs of the products of one training step (``step_flops.py``'s rule), the tied output layer included.

    The output layer is ``F.linear`` on the embedding's weight, not a Linear layer,
    so the layer counter does not see it: its ``2 * size * seq * D_MODEL * VOCAB``
    forward FLOPs are added here.
    """
    x, _ = batch(seq, size)
    inputs = (nl.tensor(x), nl.tensor(np.arange(seq)), nl.tensor(causal_mask(seq)))
    return step_flops(model, inputs, unseen_forward=2 * size * seq * D_MODEL * VOCAB)


def run(quick=False):
    torch = torch_or_none()
    rows = []
    for flush in (False, True):
        nl.set_flush_denormal(flush)
        nl_step, model = nnlite_step()
        first = {"nnlite": nl_step()}
        contenders = {"nnlite": nl_step, "torch": None}
        if torch is not None:
            torch.set_num_threads(nl.get_num_threads())
            torch.set_flush_denormal(flush)
            nl.manual_seed(0)
            fresh_step, fresh = nnlite_step()
            contenders["torch"] = torch_step(torch, fresh)
            first["torch"] = contenders["torch"]()
        t = paired_medians(contenders, repeat=5 if quick else 21, warmup=2)
        rows.append({"workload": f"causal transformer b{BATCH} T{SEQ} AdamW step, flush {'on' if flush else 'off'}",
                     "nnlite_ms": t["nnlite"], "torch_ms": t["torch"],
                     "nnlite/torch": None if t["torch"] is None else t["nnlite"] / t["torch"],
                     "first loss": " / ".join(f"{k} {v:.4f}" for k, v in first.items()),
                     "_step_flops": step_products(model)})   # for bench_utilization; not a column here
        if torch is not None:
            torch.set_flush_denormal(False)
    nl.set_flush_denormal(False)
    return rows


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    path = write_markdown("transformer", "Causal transformer (exact GELU, boolean mask, default Embedding init, "
                          "tied head) AdamW step", rows, ["workload", "nnlite_ms", "torch_ms", "nnlite/torch",
                                                          "first loss"],
                          notes=[f"{nl.get_num_threads()} threads; paired medians in one run"])
    print(describe())
    print(open(path).read())
