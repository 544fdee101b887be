"""JAX as a second peer: the MLP and the causal transformer, a jit-compiled training step each.

JAX is optional (``pip install "jax[cpu]"``); without it the JAX column is
empty. Each JAX step is one ``jax.jit``-compiled function doing forward, loss,
gradient and the optimizer update with the same model, the same weights
(copied from the nnlite model), the same batch and the same optimizer as the
nnlite and PyTorch steps (PyTorch's Adam and AdamW update rules, written out
below), so the first losses agree; the table shows them as a check. XLA's CPU
backend uses every core the process may run on (2 here), as do the others.

    python -m benchmarks.bench_jax [--quick]   # writes results/<machine kind>-jax.md
"""
import sys

import numpy as np

import nnlite as nl
from nnlite.nn import functional as F

from . import bench_transformer as bt
from .bench_training import mlp_nl, mlp_torch
from .harness import paired_medians, torch_or_none
from .machine import describe, write_markdown


def jax_or_none():
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", False)
    return jax


def _adam(jnp, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """PyTorch's Adam (``decoupled=False``, L2 in the gradient) or AdamW, as pure functions."""
    b1, b2 = betas

    def init(params):
        zeros = {k: jnp.zeros_like(v) for k, v in params.items()}
        return {"m": zeros, "v": dict(zeros), "t": jnp.zeros((), jnp.float32)}

    def update(params, grads, state):
        t = state["t"] + 1
        new_p, new_m, new_v = {}, {}, {}
        for k, p in params.items():
            g = grads[k]
            if weight_decay and not decoupled:
                g = g + weight_decay * p
            if weight_decay and decoupled:
                p = p * (1 - lr * weight_decay)
            m = b1 * state["m"][k] + (1 - b1) * g
            v = b2 * state["v"][k] + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            new_p[k] = p - lr * m_hat / (jnp.sqrt(v_hat) + eps)
            new_m[k], new_v[k] = m, v
        return new_p, {"m": new_m, "v": new_v, "t": t}
    return init, update


def _jit_step(jax, loss_fn, params, opt, *batch):
    """A jit-compiled step; returns a callable running it on the kept state (and the first loss)."""
    init, update = opt
    state = {"params": params, "opt": init(params)}

    @jax.jit
    def step(params, opt_state, *b):
        loss, grads = jax.value_and_grad(loss_fn)(params, *b)
        params, opt_state = update(params, grads, opt_state)
        return params, opt_state, loss

    def run():
        state["params"], state["opt"], loss = step(state["params"], state["opt"], *batch)
        loss.block_until_ready()
        return float(loss)
    return run


def _ce(jax, logits, targets):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -logp[np.arange(len(targets)), targets].mean()


def mlp_jax(jax, nl_model, x, y):
    jnp = jax.numpy
    params = {k: jnp.asarray(np.asarray(v.data)) for k, v in nl_model.state_dict().items()}
    names = sorted({k.rsplit(".", 1)[0] for k in params}, key=lambda s: int(s.split(".")[-1]))

    def loss_fn(p, x, y):
        h = x
        for i, layer in enumerate(names):
            h = h @ p[layer + ".weight"].T + p[layer + ".bias"]
            if i < len(names) - 1:
                h = jax.nn.relu(h)
        return _ce(jax, h, y)
    return _jit_step(jax, loss_fn, params, _adam(jnp, 1e-3), jnp.asarray(x), jnp.asarray(y))


def transformer_jax(jax, nl_model, seq=bt.SEQ, size=bt.BATCH):
    jnp = jax.numpy
    p0 = {k: jnp.asarray(np.asarray(v.data)) for k, v in nl_model.state_dict().items()}
    E, Hh = bt.D_MODEL, bt.HEADS
    mask = jnp.asarray(bt.causal_mask(seq))

    def ln(p, k, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * p[k + ".weight"] + p[k + ".bias"]

    def attn(p, k, x):
        B, T, _ = x.shape
        qkv = x @ p[k + ".in_proj_weight"].T + p[k + ".in_proj_bias"]
        q, kk, v = [a.reshape(B, T, Hh, E // Hh).transpose(0, 2, 1, 3) for a in jnp.split(qkv, 3, -1)]
        s = q @ kk.transpose(0, 1, 3, 2) / np.sqrt(E // Hh)
        s = jnp.where(mask, -jnp.inf, s)
        o = (jax.nn.softmax(s, -1) @ v).transpose(0, 2, 1, 3).reshape(B, T, E)
        return o @ p[k + ".out_proj.weight"].T + p[k + ".out_proj.bias"]

    def loss_fn(p, ids, targets):
        x = p["tok.weight"][ids] + p["pos.weight"][jnp.arange(seq)]
        for i in range(bt.LAYERS):
            b = f"blocks.{i}"
            x = x + attn(p, b + ".attn", ln(p, b + ".ln1", x))
            h = ln(p, b + ".ln2", x) @ p[b + ".ff.0.weight"].T + p[b + ".ff.0.bias"]
            h = jax.nn.gelu(h, approximate=False)
            x = x + h @ p[b + ".ff.2.weight"].T + p[b + ".ff.2.bias"]
        logits = ln(p, "ln", x) @ p["tok.weight"].T
        return _ce(jax, logits.reshape(-1, bt.VOCAB), targets)
    x, y = bt.batch(seq, size)
    return _jit_step(jax, loss_fn, p0, _adam(jnp, 3e-3, weight_decay=0.1, decoupled=True),
                     jnp.asarray(x), jnp.asarray(y.reshape(-1)))


def mlp_contenders(torch, jax, batch=128, width=256):
    """One Adam step of the MLP 784-width-width-10 for each library, all from the same weights and batch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    nl.manual_seed(0)
    model = mlp_nl(width)
    fresh = {k: np.array(v.data) for k, v in model.state_dict().items()}
    opt = nl.optim.Adam(model.parameters(), lr=1e-3)
    xn, yn = nl.tensor(x), nl.tensor(y)

    def nl_step():
        loss = F.cross_entropy(model(xn), yn)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss.item())
    c = {"nnlite": nl_step, "torch": None, "jax": None}
    if torch is not None:
        tm = mlp_torch(torch, width)
        tm.load_state_dict({k: torch.tensor(v) for k, v in fresh.items()})
        t_opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        xt, yt = torch.tensor(x), torch.tensor(y)

        def t_step():
            loss = torch.nn.functional.cross_entropy(tm(xt), yt)
            loss.backward()
            t_opt.step()
            t_opt.zero_grad()
            return float(loss.item())
        c["torch"] = t_step
    if jax is not None:
        c["jax"] = mlp_jax(jax, _Frozen(fresh), x, y)
    return c


class _Frozen:
    """A state_dict-shaped view of copied arrays (the contenders all start from the same weights)."""

    def __init__(self, arrays):
        self.arrays = arrays

    def state_dict(self):
        return {k: type("A", (), {"data": v})() for k, v in self.arrays.items()}


def transformer_contenders(torch, jax, seq=bt.SEQ):
    """One AdamW step of bench_transformer's causal transformer for each library, from the same weights."""
    nl_step, model = bt.nnlite_step(seq=seq)
    fresh = {k: np.array(v.data) for k, v in model.state_dict().items()}
    c = {"nnlite": nl_step, "torch": None, "jax": None}
    if torch is not None:
        c["torch"] = bt.torch_step(torch, _Frozen(fresh), seq=seq)
    if jax is not None:
        c["jax"] = transformer_jax(jax, _Frozen(fresh), seq=seq)
    return c


def run(quick=False):
    torch, jax = torch_or_none(), jax_or_none()
    if torch is not None:
        torch.set_num_threads(nl.get_num_threads())
    rows = []
    for name, make in (("MLP 784-256-256-10 b128 Adam step", mlp_contenders),
                       (f"causal transformer b{bt.BATCH} T{bt.SEQ} AdamW step", transformer_contenders)):
        c = make(torch, jax)
        first = {k: fn() for k, fn in c.items() if fn is not None}   # also compiles the JAX step
        t = paired_medians(c, repeat=7 if quick else 21, warmup=2)
        rows.append({"workload": name, "nnlite_ms": t["nnlite"], "torch_ms": t["torch"], "jax_ms": t["jax"],
                     "nnlite/torch": None if t["torch"] is None else t["nnlite"] / t["torch"],
                     "nnlite/jax": None if t["jax"] is None else t["nnlite"] / t["jax"],
                     "first loss": " / ".join(f"{k} {v:.4f}" for k, v in first.items())})
    return rows


if __name__ == "__main__":
    rows = run(quick="--quick" in sys.argv)
    jax = jax_or_none()
    path = write_markdown("jax", "nnlite, PyTorch and jit-compiled JAX training steps", rows,
                          ["workload", "nnlite_ms", "torch_ms", "jax_ms", "nnlite/torch", "nnlite/jax", "first loss"],
                          notes=[f"{nl.get_num_threads()} threads; paired medians in one run; "
                                 f"JAX {jax.__version__ if jax else 'not installed'}; flushing off"])
    print(describe())
    print(open(path).read())
